"""How much the Inception input's resize moves FID and IS, and how fast the 50k protocols run.

  python benchmarks/eval_protocols.py --out=benchmarks/eval_protocols \
      [--inception_weights=pt_inception-2015-12-05-6726825d.pth]

Trains a DCGAN on scikit-learn's digits at 32x32 (the folder and run of stylegan2_digits.py:
`--steps` steps at batch 32, seed 0; needs scikit-learn), then, for each of the two Inception
inputs of `ganjax.models.inception.preprocess` ('pytorch': pytorch-fid's F.interpolate and 2x - 1;
'tf1': the 2015 graph's own TensorFlow 1 ResizeBilinear and (x - 128) / 128), measures the same
`--num_images` generated images (the evaluation's fixed noise) against the first `--num_images`
digits:

  fid, is, is_std       FID against the digits; IS in 10 splits (logits without the bias)
  generated_per_s       generated images per second through generation, quantisation, resize,
                        the network's features and logits: one pass gives both FID and IS
                        features (`image_quality._Features`, batch `--batch`, after a warm-up)
  real_per_s            real images per second (read from the folder, resized, features)
  seconds_per_50k       50,000 / generated_per_s: a 50k protocol's generated side

and, between the two inputs: the FID and IS differences, the Fréchet distance between the two
inputs' features of the same generated images, and the mean and largest absolute difference of
the 299x299 inputs themselves (in the network's [-1, 1] units), which no weights affect.

Without --inception_weights the network's weights are random (`inception.random_state_dict`,
no weight file here): the speed is the real network's, the FID and IS values are not comparable
with any paper's, and only the input difference describes the real network's input. Results go
to <out>/results.json and <out>/results.md; the run and the features' cache to <out>/ (kept out
of git by <out>/.gitignore).
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

from limited_data import folder_for, write_folders
from stylegan2_digits import MODELS, SIZE, overrides

REPO = pathlib.Path(__file__).resolve().parents[1]
IGNORED = "# written by benchmarks/eval_protocols.py: only the results are kept\n*\n" \
          "!.gitignore\n!results.json\n!results.md\n"


def network_for(weights: str | None, resize: str):
  from ganjax import image_quality
  from ganjax.models import inception
  if weights:
    return image_quality.inception_network(weights, resize)
  variables = inception.convert_state_dict(inception.random_state_dict(0))
  return image_quality.inception_network_of(variables, "inception-random", resize)


def train(out: pathlib.Path, folder: pathlib.Path, args) -> pathlib.Path:
  """The DCGAN run on the digits (trained once)."""
  workdir = out / "runs" / "dcgan_s0"
  if not (workdir / "summary.json").exists():
    shutil.rmtree(workdir, ignore_errors=True)
    settings = argparse.Namespace(steps=args.steps, batch_size=32, dcgan_width=32)
    command = [sys.executable, "-m", "ganjax.main", f"--config={MODELS['dcgan']}",
               f"--workdir={workdir}", *overrides("dcgan", folder, 0, settings)]
    print(" ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=REPO, check=True)
  return workdir


def measure(state, data_config, resize: str, args, out: pathlib.Path) -> dict:
  import jax
  from ganjax import image_quality
  from ganjax import metrics
  network = network_for(args.inception_weights, resize)
  features = image_quality._Features(network, args.batch, logits=True)
  features.generated(state, args.batch)  # compiles
  started = time.perf_counter()
  generated = features.generated(state, args.num_images)
  generated_seconds = time.perf_counter() - started
  started = time.perf_counter()
  real, _ = image_quality.real_features_with_labels(
      data_config, network, num_real=args.num_images, batch_size=args.batch,
      stats_dir=out / "stats", features=features)
  real_seconds = time.perf_counter() - started
  score = metrics.inception_score(generated.logits, 10)
  return {"fid": metrics.frechet_distance(real, generated.features), **score,
          "generated_per_s": round(args.num_images / generated_seconds, 2),
          "real_per_s": round(args.num_images / real_seconds, 2),
          "seconds_per_50k": round(50_000 / (args.num_images / generated_seconds)),
          "device": jax.devices()[0].device_kind, "_features": generated.features}


def input_difference(state, args) -> dict:
  """The two inputs of the first `--batch` generated images, compared."""
  import jax
  from ganjax import image_quality
  from ganjax import train as train_lib
  from ganjax.models import inception
  key = jax.random.fold_in(state.key, image_quality._EVAL_STREAM)
  z = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i),
                                           (state.spec.latent_dim,)))(np.arange(args.batch))
  images = (image_quality.quantise(train_lib.generate(state, z, None)) + 1.0) / 2.0
  inputs = {resize: np.asarray(inception.preprocess(images, resize=resize))
            for resize in inception.RESIZES}
  difference = np.abs(inputs["pytorch"] - inputs["tf1"])
  return {"mean_abs": float(difference.mean()), "max_abs": float(difference.max())}


def table(results: dict) -> str:
  rows = ["| input | FID | IS | generated images/s | real images/s | 50k generated (s) |",
          "|---|---|---|---|---|---|"]
  for resize in ("pytorch", "tf1"):
    row = results[resize]
    rows.append(f"| {resize} | {row['fid']:.3f} | {row['is']:.4f} ± {row['is_std']:.4f} | "
                f"{row['generated_per_s']} | {row['real_per_s']} | {row['seconds_per_50k']:,} |")
    device = row["device"]
  difference = results["difference"]
  return "\n".join([
      f"Inception weights: {results['weights']}; {results['num_images']} generated images of a "
      f"{results['steps']}-step DCGAN on the 32x32 digits vs the first {results['num_images']} "
      f"digits; batch {results['batch']}; {device}.", "", *rows, "",
      f"tf1 - pytorch: FID {difference['fid']:+.3f} "
      f"({difference['fid'] / results['pytorch']['fid']:+.1%}), IS {difference['is']:+.4f}; "
      f"Fréchet distance between the two inputs' features of the same images "
      f"{difference['fid_between_inputs']:.4f} "
      f"({difference['fid_between_inputs'] / results['pytorch']['fid']:.1%} of the pytorch FID); "
      "the 299x299 inputs differ by "
      f"{difference['input']['mean_abs']:.4f} on average and {difference['input']['max_abs']:.4f} "
      "at most (in [-1, 1] units).", ""])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/eval_protocols")
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--num_images", type=int, default=1000)
  parser.add_argument("--batch", type=int, default=50)
  parser.add_argument("--inception_weights", default=None)
  args = parser.parse_args()
  from ganjax import metrics
  from ganjax import sample
  out = pathlib.Path(args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  if not (out / ".gitignore").exists():
    (out / ".gitignore").write_text(IGNORED)
  write_folders(out, SIZE)
  folder = folder_for(out, SIZE, 1.0)
  workdir = train(out, folder, args)
  state, config = sample.load_state(workdir)
  results = {"weights": args.inception_weights or "random", "steps": args.steps,
             "num_images": args.num_images, "batch": args.batch}
  for resize in ("pytorch", "tf1"):
    results[resize] = measure(state, config.data, resize, args, out)
    print(resize, json.dumps({k: v for k, v in results[resize].items() if k[0] != "_"}),
          flush=True)
  features = {resize: results[resize].pop("_features") for resize in ("pytorch", "tf1")}
  results["difference"] = {
      "fid": results["tf1"]["fid"] - results["pytorch"]["fid"],
      "is": results["tf1"]["is"] - results["pytorch"]["is"],
      "fid_between_inputs": metrics.frechet_distance(features["pytorch"], features["tf1"]),
      "input": input_difference(state, args)}
  (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
  (out / "results.md").write_text(table(results))
  print(table(results))


if __name__ == "__main__":
  main()
