"""What class conditioning adds on real images: cGAN-PD and ACGAN against an unconditional GAN on
scikit-learn's digits (1,797 8x8 greyscale images of 10 classes, upsampled to 32x32 and written
as an image folder), measured by the accuracy of a classifier trained on the digits, per class.

  python benchmarks/conditional_digits.py --out=benchmarks/conditional_digits

Needs scikit-learn (`pip install scikit-learn`; only this script uses it). Every run is
`experiments/cifar10_sngan_projection.py` (the SNGAN ResNet pair, the hinge loss, Adam 2e-4
(0, 0.9)) on the folder, with the networks narrowed to --width channels and --n_critic
discriminator updates per step, for --steps steps:

  projection     class-conditional batch norm in G, the projection discriminator (cGAN-PD)
  acgan          class-conditional batch norm in G, a class head on D and ACGAN's loss
  unconditional  the unconditional pair (conditional.enabled=False)

Each run evaluates its final generator with one classifier (`ganjax.classifier`, trained on the
folder's labels by the first run and given to the others with eval.classifier): classifier FID of
`--num_samples` images made for the classes in turn against the digits, and for the conditional
runs the accuracy of the classifier on them against the labels they were made for (overall,
worst class, per class). For the unconditional run, the share of its images the classifier puts
in each class. The results go to <out>/results.json and <out>/results.md, and each run's
workdir to <out>/runs/<name>.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
RUNS = ("projection", "acgan", "unconditional")


def write_digits(folder: pathlib.Path, size: int = 32) -> int:
  """scikit-learn's digits as <folder>/train/<digit>/<n>.png, 8x8 upsampled to `size` (bilinear);
  returns the number of images."""
  from PIL import Image
  from sklearn.datasets import load_digits
  digits = load_digits()
  for index, (image, label) in enumerate(zip(digits.images, digits.target)):
    directory = folder / "train" / str(label)
    directory.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(image * (255.0 / 16.0), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "L").resize((size, size), Image.BILINEAR).save(
        directory / f"{index:04d}.png")
  return len(digits.target)


def overrides(name: str, folder: pathlib.Path, args, classifier: pathlib.Path | None
              ) -> list[str]:
  values = {
      "data.name": "folder", "data.folder": str(folder), "data.channels": 1,
      "model.generator_kwargs.channels": 1,
      "model.generator_kwargs.features": args.width,
      "model.discriminator_kwargs.features": args.width,
      "train.steps": args.steps, "train.n_critic": args.n_critic,
      "train.log_every": max(args.steps // 10, 1), "train.checkpoint_every": args.steps,
      "train.sample_every": args.steps,
      "optimizer.generator.decay_steps": args.steps,
      "optimizer.discriminator.decay_steps": args.steps * args.n_critic,
      "eval.features": "classifier", "eval.every": 0, "eval.best": "",
      "eval.num_samples": args.num_samples, "eval.num_real": 1797,
      "eval.classifier_steps": args.classifier_steps,
      "eval.metrics": "fid,accuracy" if name != "unconditional" else "fid",
  }
  if classifier is not None:
    values["eval.classifier"] = str(classifier)
  if name == "unconditional":
    values["conditional.enabled"] = False
  if name == "acgan":
    values["model.discriminator_kwargs.conditioning"] = "acgan"
  return [f"--config.{key}={value}" for key, value in values.items()]


def unconditional_class_shares(workdir: pathlib.Path, path: pathlib.Path) -> list[float]:
  """The share of the run's final samples that the classifier in `path` puts in each class."""
  import jax.numpy as jnp
  from ganjax import classifier
  params, metadata = classifier.load(path)
  samples = np.load(workdir / "samples.npy")
  logits = classifier.logits(params, jnp.asarray(samples), num_classes=metadata["num_classes"],
                             feature_dim=metadata["feature_dim"])
  predicted = np.argmax(np.asarray(logits), -1)
  counts = np.bincount(predicted, minlength=metadata["num_classes"])
  return (counts / counts.sum()).round(4).tolist()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/conditional_digits")
  parser.add_argument("--steps", type=int, default=1500)
  parser.add_argument("--n_critic", type=int, default=2)
  parser.add_argument("--width", type=int, default=32)
  parser.add_argument("--num_samples", type=int, default=2000)
  parser.add_argument("--classifier_steps", type=int, default=1000)
  parser.add_argument("--runs", default=",".join(RUNS))
  args = parser.parse_args()
  out = pathlib.Path(args.out).resolve()
  folder = out / "digits"
  if not (folder / "train").exists():
    print(f"wrote {write_digits(folder)} digits to {folder}", flush=True)
  results = {"steps": args.steps, "n_critic": args.n_critic, "width": args.width,
             "num_samples": args.num_samples, "runs": {}}
  classifier = None  # trained by the first run, then shared: every run is measured by it
  for name in args.runs.split(","):
    workdir = out / "runs" / name
    command = [sys.executable, "-m", "ganjax.main",
               "--config=experiments/cifar10_sngan_projection.py", f"--workdir={workdir}",
               *overrides(name, folder, args, classifier)]
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    summary = json.loads((workdir / "summary.json").read_text())
    classifier = classifier or workdir / "classifier.msgpack"
    row = {key: summary[key] for key in ("fid", "accuracy", "accuracy_min",
                                         "per_class_accuracy") if key in summary}
    if name == "unconditional":
      row["class_shares"] = unconditional_class_shares(workdir, classifier)
    row["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["runs"][name] = row
    print(name, json.dumps(row), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
  (out / "results.md").write_text(table(results))


def table(results) -> str:
  lines = [f"Digits, {results['steps']} steps, n_critic {results['n_critic']}, width "
           f"{results['width']}, {results['num_samples']} generated images per run "
           "(`python benchmarks/conditional_digits.py`).", "",
           "| run | classifier FID | accuracy | worst class | per class (0-9) |",
           "|---|---|---|---|---|"]
  for name, row in results["runs"].items():
    per_class = row.get("per_class_accuracy") or row.get("class_shares")
    shown = " ".join(f"{value:.2f}" for value in per_class) if per_class else ""
    if name == "unconditional":
      shown = "shares: " + shown
    accuracy = f"{row['accuracy']:.3f}" if "accuracy" in row else "-"
    worst = f"{row['accuracy_min']:.3f}" if "accuracy_min" in row else "-"
    lines.append(f"| {name} | {row['fid']:.2f} | {accuracy} | {worst} | {shown} |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  main()
