"""The limited-data effect on real images, and what DiffAugment and ADA do about it: DCGAN and SNGAN
on all of scikit-learn's digits (1,797 8x8 greyscale images) and on a tenth of them, without
augmentation, with DiffAugment and with ADA, every run measured against all the digits.

  python benchmarks/limited_data.py --out=benchmarks/limited_data

Needs scikit-learn (`pip install scikit-learn`; only the benchmarks use it). The digits are
written as image folders <out>/digits<S>[_10]/train/<digit>/<n>.png, upsampled bilinearly to
S = 28 (DCGAN) and 32 (SNGAN, whose ResNet generator makes 32x32 only): all 1,797 (fraction
1.0) and every tenth, index % 10 == 0 (fraction 0.1: 180 images). Each run is `python -m
ganjax.main` on one folder, with the networks narrowed to --width channels, one channel out,
batch --batch_size and the evaluation off:

  dcgan  experiments/mnist_dcgan.py (the TensorFlow tutorial's 28x28 pair, the non-saturating
         loss, Adam 2e-4 b1 0.5), --dcgan_steps steps
  sngan  experiments/cifar10_sngan.py (SNGAN's ResNet pair, the hinge loss, Adam 2e-4 (0, 0.9)),
         one discriminator update per step, --sngan_steps steps

and the augmentations of `ganjax.augment` on the discriminator's real and fake inputs:

  none         off
  diffaugment  --config.augment.policy=color,translation,cutout --config.augment.p=1
  ada          --config.augment.policy=bgc --config.augment.target=0.6, p adjusted every 4
               discriminator updates, from 0 to 1 over --ada_speed images at most

for seeds 0, 1, 2: 2 models x 2 fractions x 3 augmentations x 3 seeds = 36 runs. After each run
this process loads its final generator (EMA weights where the config keeps them), draws
--num_samples images and measures them with a classifier of the digits at that size (one per
size, trained here on all the digits by `ganjax.classifier.train_for_dataset`: its command line
has no --channels and would read the greyscale folder as RGB): classifier FID, and precision and
recall (k = 3), each against the features of all 1,797 digits, whatever the run trained on.

The results go to <out>/results.json, rewritten after every run; a run already there is skipped,
so the script can be stopped and started again (with the same settings: a results.json of other
settings stops it). --models, --fractions, --augments and --seeds pick a part of the runs. The
tables go to <out>/results.md, the folders and the classifiers to <out>, each run's workdir to
<out>/runs/<name>; <out>/.gitignore keeps all but the results out of git.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

from conditional_digits import write_digits

REPO = pathlib.Path(__file__).resolve().parents[1]
MODELS = {
    # model: (experiment file, image size, the width fields)
    "dcgan": ("experiments/mnist_dcgan.py", 28,
              ("model.generator_kwargs.base_features", "model.discriminator_kwargs.base_features")),
    "sngan": ("experiments/cifar10_sngan.py", 32,
              ("model.generator_kwargs.features", "model.discriminator_kwargs.features")),
}
FRACTIONS = (0.1, 1.0)
AUGMENTS = ("none", "diffaugment", "ada")
SEEDS = (0, 1, 2)
# The fields of results.json that must match for its runs to be kept.
SETTINGS = ("dcgan_steps", "sngan_steps", "width", "batch_size", "num_samples",
            "classifier_steps", "ada_speed")
IGNORED = "# written by benchmarks/limited_data.py: only the results are kept\n*\n" \
          "!.gitignore\n!results.json\n!results.md\n"


def open_results(args, settings: tuple[str, ...], ignored: str, **empty
                 ) -> tuple[pathlib.Path, pathlib.Path, dict]:
  """(out, out/results.json, the results so far) of a resumable benchmark: `args.out` created
  with a .gitignore of `ignored`; the results of an earlier start when its `settings` (names of
  `args`) are these (else the process exits naming the differences), or new ones holding the
  settings, `empty` and no runs."""
  out = pathlib.Path(args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  if not (out / ".gitignore").exists():
    (out / ".gitignore").write_text(ignored)
  values = {key: getattr(args, key) for key in settings}
  results_path = out / "results.json"
  if not results_path.exists():
    return out, results_path, {**values, **empty, "runs": {}}
  results = json.loads(results_path.read_text())
  changed = [key for key in settings if results.get(key) != values[key]]
  if changed:
    differences = ", ".join(f"{key} {results.get(key)} there, {values[key]} here"
                            for key in changed)
    sys.exit(f"error: {results_path} holds runs of other settings ({differences}); pass "
             "those or another --out")
  return out, results_path, results


def folder_for(out: pathlib.Path, size: int, fraction: float) -> pathlib.Path:
  return out / (f"digits{size}" if fraction == 1.0 else f"digits{size}_{round(fraction * 100)}")


def write_folders(out: pathlib.Path, size: int) -> None:
  """The full folder of the digits at `size` and the 10% one (every tenth digit by index)."""
  full, tenth = folder_for(out, size, 1.0), folder_for(out, size, 0.1)
  if not (full / "train").exists():
    print(f"wrote {write_digits(full, size)} digits to {full}", flush=True)
  if not (tenth / "train").exists():
    count = 0
    for path in sorted((full / "train").glob("*/*.png")):
      if int(path.stem) % 10 == 0:
        target = tenth / "train" / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        count += 1
    print(f"wrote {count} digits to {tenth}", flush=True)


def read_folder(folder: pathlib.Path) -> np.ndarray:
  """Every image of the folder as float32 (N, S, S, 1) in [-1, 1] (x / 127.5 - 1)."""
  from PIL import Image
  paths = sorted((folder / "train").glob("*/*.png"))
  images = np.stack([np.asarray(Image.open(path).convert("L")) for path in paths])
  return (images.astype(np.float32) / 127.5 - 1.0)[..., None]


def train_classifier(out: pathlib.Path, size: int, steps: int) -> dict:
  """The classifier of the digits at `size` (trained once, on the full folder): its metadata."""
  from ganjax import classifier
  path = out / f"classifier{size}.msgpack"
  if not path.exists():
    data_config = {"name": "folder", "folder": str(folder_for(out, size, 1.0)), "split": "train",
                   "image_size": size, "channels": 1}
    metadata = classifier.train_for_dataset(data_config, path, steps=steps)
    print(f"wrote a classifier of the {size}x{size} digits to {path}: accuracy "
          f"{metadata['accuracy']:.4f} on its {metadata['accuracy_split']!r} split", flush=True)
  _, metadata = classifier.load(path)
  return {"file": path.name, "steps": steps, "accuracy": round(metadata["accuracy"], 4),
          "accuracy_split": metadata.get("accuracy_split", "train")}


def run_name(model: str, fraction: float, augment: str, seed: int) -> str:
  return f"{model}_{round(fraction * 100)}pct_{augment}_s{seed}"


def overrides(model: str, folder: pathlib.Path, augment: str, seed: int, args) -> list[str]:
  _, size, widths = MODELS[model]
  steps = args.dcgan_steps if model == "dcgan" else args.sngan_steps
  values = {
      "seed": seed,
      "data.name": "folder", "data.folder": str(folder), "data.channels": 1,
      "data.image_size": size,
      **{field: args.width for field in widths},
      "train.steps": steps, "train.batch_size": args.batch_size,
      "train.log_every": max(steps // 10, 1), "train.checkpoint_every": steps,
      "train.sample_every": steps,
      "eval.metrics": "", "eval.every": 0, "eval.best": "",
  }
  if model == "sngan":
    values["model.generator_kwargs.channels"] = 1
    values["train.n_critic"] = 1
  if augment == "diffaugment":
    values.update({"augment.policy": "color,translation,cutout", "augment.p": 1})
  elif augment == "ada":
    values.update({"augment.policy": "bgc", "augment.target": 0.6,
                   "augment.speed": args.ada_speed, "augment.interval": 4})
  return [f"--config.{key}={value}" for key, value in values.items()]


def last_losses(workdir: pathlib.Path) -> dict:
  """The last logged line of the run's training metrics (losses, ada_p), if it has one."""
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return {}
  last = {}
  for line in path.read_text().splitlines():
    try:
      record = json.loads(line)
    except json.JSONDecodeError:
      continue
    if any("loss" in key for key in record):
      last = record
  return {key: value for key, value in last.items()
          if isinstance(value, (int, float)) and ("loss" in key or key in ("step", "ada_p"))}


def measure(workdir: pathlib.Path, real: np.ndarray, feature_fn, num_samples: int) -> dict:
  """Classifier FID, precision and recall of the run's final generator against `real` images,
  and ADA's final p."""
  from ganjax import metrics
  from ganjax import sample
  state, _ = sample.load_state(str(workdir))
  fake = sample.generate(state, num_samples, seed=0)
  ada = getattr(state, "ada", None)
  row = {"ada_p": None if ada is None else round(float(np.asarray(ada["p"])), 4)}
  if not np.all(np.isfinite(fake)):
    return {**row, "fid": None, "precision": None, "recall": None, "diverged": True}
  real_features, fake_features = feature_fn(real), feature_fn(fake)
  quality = metrics.precision_recall(real_features, fake_features, k=3)
  return {**row, "fid": round(float(metrics.frechet_distance(real_features, fake_features)), 3),
          "precision": round(quality["precision"], 4), "recall": round(quality["recall"], 4)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/limited_data")
  parser.add_argument("--dcgan_steps", type=int, default=2000)
  parser.add_argument("--sngan_steps", type=int, default=800)
  parser.add_argument("--width", type=int, default=16)
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--num_samples", type=int, default=2000)
  parser.add_argument("--classifier_steps", type=int, default=1000)
  parser.add_argument("--ada_speed", type=int, default=20_000,
                      help="images over which ADA's p can go from 0 to 1")
  parser.add_argument("--models", default=",".join(MODELS))
  parser.add_argument("--fractions", default=",".join(map(str, FRACTIONS)))
  parser.add_argument("--augments", default=",".join(AUGMENTS))
  parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
  args = parser.parse_args()
  models = args.models.split(",")
  fractions = [float(value) for value in args.fractions.split(",")]
  augments = args.augments.split(",")
  seeds = [int(value) for value in args.seeds.split(",")]
  for name, chosen, valid in (("models", models, MODELS), ("fractions", fractions, FRACTIONS),
                               ("augments", augments, AUGMENTS)):
    unknown = [value for value in chosen if value not in valid]
    if unknown:
      parser.error(f"--{name}: {unknown[0]} is not one of {', '.join(map(str, valid))}")

  out, results_path, results = open_results(args, SETTINGS, IGNORED, classifiers={})

  real, features = {}, {}  # per image size: all the digits, the classifier's feature function
  for model in models:
    size = MODELS[model][1]
    if size in real:
      continue
    from ganjax import classifier
    write_folders(out, size)
    results["classifiers"][str(size)] = train_classifier(out, size, args.classifier_steps)
    real[size] = read_folder(folder_for(out, size, 1.0))
    features[size] = classifier.features_from_file(out / f"classifier{size}.msgpack")
  results_path.write_text(json.dumps(results, indent=2) + "\n")

  for model in models:
    config, size, _ = MODELS[model]
    for fraction in fractions:
      for augment in augments:
        for seed in seeds:
          name = run_name(model, fraction, augment, seed)
          if name in results["runs"]:
            continue
          workdir = out / "runs" / name
          shutil.rmtree(workdir, ignore_errors=True)  # a run stopped half-way starts again
          folder = folder_for(out, size, fraction)
          command = [sys.executable, "-m", "ganjax.main", f"--config={config}",
                     f"--workdir={workdir}", *overrides(model, folder, augment, seed, args)]
          print(f"{name}: {' '.join(command[1:])}", flush=True)
          started = time.perf_counter()
          subprocess.run(command, cwd=REPO, check=True)
          wall = round(time.perf_counter() - started, 1)
          row = {"model": model, "fraction": fraction, "augment": augment, "seed": seed,
                 "images": len(list((folder / "train").glob("*/*.png"))),
                 **measure(workdir, real[size], features[size], args.num_samples),
                 "wall_seconds": wall, "last_log": last_losses(workdir)}
          results["runs"][name] = row
          print(name, json.dumps(row), flush=True)
          results_path.write_text(json.dumps(results, indent=2) + "\n")
          (out / "results.md").write_text(table(results))
  (out / "results.md").write_text(table(results))


def _mean_std(values) -> str:
  values = [value for value in values if value is not None]
  if not values:
    return "-"
  if len(values) == 1:
    return f"{values[0]:.2f}"
  return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"


def _mean(values, digits: int = 3) -> str:
  values = [value for value in values if value is not None]
  return f"{np.mean(values):.{digits}f}" if values else "-"


def table(results) -> str:
  options = " ".join(f"--{key}={results[key]}" for key in SETTINGS)
  classifiers = "; ".join(
      f"{size}x{size}: {value['steps']} steps, accuracy {value['accuracy']:.4f} on its "
      f"{value['accuracy_split']!r} split" for size, value in results["classifiers"].items())
  lines = [f"`python benchmarks/limited_data.py {options}`", "",
           f"Digits (1,797 at fraction 1.0, 180 at 0.1); dcgan {results['dcgan_steps']} steps, "
           f"sngan {results['sngan_steps']} steps (n_critic 1), width {results['width']}, batch "
           f"{results['batch_size']}, ADA speed {results['ada_speed']} images; "
           f"{results['num_samples']} generated images per run against all 1,797 digits, "
           f"precision/recall with k = 3. Classifiers: {classifiers}. FID: mean ± std (sample) "
           "over the seeds; the other columns: means.", ""]
  for model in MODELS:
    rows = [row for row in results["runs"].values() if row["model"] == model]
    if not rows:
      continue
    lines += [f"## {model}", "",
              "| fraction | augmentation | seeds | classifier FID | precision | recall | "
              "ADA final p | wall s/run |",
              "|---|---|---|---|---|---|---|---|"]
    for fraction in FRACTIONS:
      for augment in AUGMENTS:
        group = sorted((row for row in rows
                        if row["fraction"] == fraction and row["augment"] == augment),
                       key=lambda row: row["seed"])
        if not group:
          continue
        diverged = sum(bool(row.get("diverged")) for row in group)
        ada_p = ("-" if augment != "ada" else
                 " / ".join(f"{row['ada_p']:.2f}" for row in group if row["ada_p"] is not None))
        seeds = ",".join(str(row["seed"]) for row in group)
        if diverged:
          seeds += f" ({diverged} diverged: NaN samples)"
        lines.append(
            f"| {fraction:g} | {augment} | {seeds} | {_mean_std(row['fid'] for row in group)} | "
            f"{_mean(row['precision'] for row in group)} | "
            f"{_mean(row['recall'] for row in group)} | {ada_p} | "
            f"{_mean((row['wall_seconds'] for row in group), 1)} |")
    lines.append("")
  return "\n".join(lines)


if __name__ == "__main__":
  main()
