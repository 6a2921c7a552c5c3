"""StyleGAN2 against DCGAN on real images at equal steps: both trained on all of scikit-learn's
digits (1,797 8x8 greyscale images upsampled to 32x32), measured with a classifier of the digits.

  python benchmarks/stylegan2_digits.py --out=benchmarks/stylegan2_digits

Needs scikit-learn (only the benchmarks use it). The folder, the classifier and the measure are
those of `limited_data.py` at 32x32 (classifier FID, precision and recall with k = 3 against
all 1,797 digits, --num_samples generated images from the final generator, EMA weights where
the config keeps them). Each run is `python -m ganjax.main`, batch --batch_size, --steps
training steps (one discriminator and one generator update each), evaluation off:

  dcgan      experiments/cifar10_dcgan.py at 32x32x1, --dcgan_width base features (Radford et
             al.'s 32x32 pair, the non-saturating loss, Adam 2e-4 b1 0.5)
  stylegan2  experiments/cifar10_stylegan2_ada.py (the ADA code's CIFAR-10 configuration:
             mapping depth 2, 'orig' D with minibatch-stddev groups of 32 (of the batch), lazy
             R1 gamma 0.01, Adam 0.0025 (0, 0.99), EMA half-life 500 kimg ramped up over 5% of
             the images seen) unconditional and without ADA, narrowed to --stylegan2_width
             channels at every resolution and a w of --stylegan2_w dimensions

for --seeds. Results go to <out>/results.json (rewritten after every run; a run already there is
skipped; other settings stop the script) and <out>/results.md; the runs' workdirs to
<out>/runs/<name>, and <out>/.gitignore keeps all but the results out of git.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import time

from limited_data import folder_for, last_losses, measure, open_results, read_folder
from limited_data import train_classifier, write_folders

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32
MODELS = {"dcgan": "experiments/cifar10_dcgan.py",
          "stylegan2": "experiments/cifar10_stylegan2_ada.py"}
SETTINGS = ("steps", "batch_size", "dcgan_width", "stylegan2_width", "stylegan2_w",
            "num_samples", "classifier_steps")
IGNORED = "# written by benchmarks/stylegan2_digits.py: only the results are kept\n*\n" \
          "!.gitignore\n!results.json\n!results.md\n"


def overrides(model: str, folder: pathlib.Path, seed: int, args) -> list[str]:
  values = {
      "seed": seed, "data.name": "folder", "data.folder": str(folder), "data.channels": 1,
      "data.image_size": SIZE, "train.steps": args.steps, "train.batch_size": args.batch_size,
      "train.log_every": max(args.steps // 10, 1), "train.checkpoint_every": args.steps,
      "train.sample_every": args.steps, "eval.metrics": "", "eval.every": 0, "eval.best": "",
  }
  if model == "dcgan":
    values.update({"model.generator_kwargs.image_shape": f"({SIZE},{SIZE},1)",
                   "model.discriminator_kwargs.image_shape": f"({SIZE},{SIZE},1)",
                   "model.generator_kwargs.base_features": args.dcgan_width,
                   "model.discriminator_kwargs.base_features": args.dcgan_width})
  else:
    values.update({"conditional.enabled": False, "augment.policy": "", "augment.target": 0.0,
                   "model.generator_kwargs.channels": 1,
                   "model.discriminator_kwargs.channels": 1,
                   "model.generator_kwargs.channel_max": args.stylegan2_width,
                   "model.discriminator_kwargs.channel_max": args.stylegan2_width,
                   "model.generator_kwargs.w_dim": args.stylegan2_w,
                   "model.latent_dim": args.stylegan2_w})
  return [f"--config.{key}={value}" for key, value in values.items()]


def table(results) -> str:
  lines = ["| run | classifier FID | precision | recall | wall s |", "|---|---|---|---|---|"]
  for name, row in sorted(results["runs"].items()):
    lines.append(f"| {name} | {row['fid']} | {row['precision']} | {row['recall']} | "
                 f"{row['wall_seconds']} |")
  settings = ", ".join(f"{key} {results[key]}" for key in SETTINGS)
  return (f"StyleGAN2 against DCGAN on the 1,797 digits at 32x32 ({settings}); "
          "`python benchmarks/stylegan2_digits.py`\n\n" + "\n".join(lines) + "\n")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/stylegan2_digits")
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--dcgan_width", type=int, default=32)
  parser.add_argument("--stylegan2_width", type=int, default=32)
  parser.add_argument("--stylegan2_w", type=int, default=64)
  parser.add_argument("--num_samples", type=int, default=2000)
  parser.add_argument("--classifier_steps", type=int, default=1000)
  parser.add_argument("--models", default=",".join(MODELS))
  parser.add_argument("--seeds", default="0,1,2")
  args = parser.parse_args()
  out, results_path, results = open_results(args, SETTINGS, IGNORED)
  from ganjax import classifier
  write_folders(out, SIZE)
  results["classifier"] = train_classifier(out, SIZE, args.classifier_steps)
  folder = folder_for(out, SIZE, 1.0)
  real = read_folder(folder)
  features = classifier.features_from_file(out / f"classifier{SIZE}.msgpack")
  for model in args.models.split(","):
    for seed in (int(value) for value in args.seeds.split(",")):
      name = f"{model}_s{seed}"
      if name in results["runs"]:
        continue
      workdir = out / "runs" / name
      shutil.rmtree(workdir, ignore_errors=True)
      command = [sys.executable, "-m", "ganjax.main", f"--config={MODELS[model]}",
                 f"--workdir={workdir}", *overrides(model, folder, seed, args)]
      print(f"{name}: {' '.join(command[1:])}", flush=True)
      started = time.perf_counter()
      subprocess.run(command, cwd=REPO, check=True)
      row = {"model": model, "seed": seed, **measure(workdir, real, features, args.num_samples),
             "wall_seconds": round(time.perf_counter() - started, 1),
             "last_log": last_losses(workdir)}
      results["runs"][name] = row
      print(name, json.dumps(row), flush=True)
      results_path.write_text(json.dumps(results, indent=2) + "\n")
      (out / "results.md").write_text(table(results))


if __name__ == "__main__":
  main()
