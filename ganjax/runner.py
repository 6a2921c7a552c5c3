"""The experiment runner: config -> training loop -> metrics, samples and pictures in a workdir.

`train_and_evaluate(config, workdir)` trains a GAN on a toy distribution sampled on the device,
`config.train.log_every` steps per compiled call (`ganjax.train.adversarial_updates`), and writes:

  metrics.jsonl   one JSON object per logged step: the step, the mean of each training metric
                  over the steps since the last line, and steps per second
  samples.npy     `config.eval.num_samples` samples from the final generator
  samples.png     those samples over the contours of the true density (2-D data)
  summary.json    the final mode statistics (`ganjax.metrics.mode_statistics`) and wall time
"""
from __future__ import annotations

import json
import math
import pathlib
import time
from typing import Any

import jax
import numpy as np

from ganjax import metrics as metrics_lib
from ganjax import train
from ganjax.data import toy


class RunError(Exception):
  """A problem the user can fix (a bad config field, a workdir in use): reported in one line."""


def _build(config):
  try:
    generator, discriminator, g_tx, d_tx, spec = train.build_from_config(config)
  except (ValueError, TypeError, KeyError, AttributeError) as error:
    raise RunError(str(error)) from None
  if spec.data is None:
    raise RunError(f"data.name {config.data.name!r} is not a toy distribution; valid names: "
                   f"{', '.join(sorted(toy.DISTRIBUTIONS))}")
  if config.train.parallel not in train.PARALLEL_MODES:
    raise RunError(f"train.parallel {config.train.parallel!r} is not one of "
                   f"{', '.join(train.PARALLEL_MODES)}")
  return generator, discriminator, g_tx, d_tx, spec


def _prepare_workdir(workdir: pathlib.Path) -> None:
  if workdir.exists() and any(workdir.iterdir()):
    raise RunError(f"workdir {workdir} already holds files; give a new or empty directory "
                   "(nothing in it was changed)")
  workdir.mkdir(parents=True, exist_ok=True)


def _plot_samples(path: pathlib.Path, samples: np.ndarray, data) -> None:
  import matplotlib
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt

  means = np.asarray(data.means)
  low, high = means.min(0) - 1.0, means.max(0) + 1.0
  xs, ys = np.meshgrid(np.linspace(low[0], high[0], 300), np.linspace(low[1], high[1], 300))
  log_density = np.asarray(data.log_prob(np.stack([xs, ys], -1).reshape(-1, 2))).reshape(xs.shape)
  figure, axes = plt.subplots(figsize=(5, 5))
  axes.contour(xs, ys, np.maximum(log_density, log_density.max() - 12), levels=8, cmap="Blues")
  axes.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:red", alpha=0.5)
  axes.set_xlim(low[0], high[0])
  axes.set_ylim(low[1], high[1])
  axes.set_aspect("equal")
  figure.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(figure)


def train_and_evaluate(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains the experiment `config` and writes its outputs to `workdir`.

  Returns:
    The summary also written to summary.json.

  Raises:
    RunError: for a bad config field, a workdir already in use or a non-finite loss.
  """
  workdir = pathlib.Path(workdir)
  generator, discriminator, g_tx, d_tx, spec = _build(config)
  _prepare_workdir(workdir)
  parallel = config.train.parallel
  state = train.create_state(generator, discriminator, g_tx, d_tx, spec, spec.data.shape,
                             config.seed)
  state = train.replicate(state, parallel)
  total_steps, log_every = config.train.steps, max(1, min(config.train.log_every, config.train.steps))
  compiled = {}
  start = time.perf_counter()
  step = 0
  with open(workdir / "metrics.jsonl", "w") as log:
    while step < total_steps:
      num_steps = min(log_every, total_steps - step)
      if num_steps not in compiled:
        compiled[num_steps] = train.parallelize(train.adversarial_updates, parallel,
                                                num_steps=num_steps)
      chunk_start = time.perf_counter()
      state, chunk_metrics = compiled[num_steps](state, None)
      chunk_metrics = jax.device_get(train.unreplicate(chunk_metrics, parallel))
      step += num_steps
      record = {"step": step, **{k: float(np.mean(v)) for k, v in sorted(chunk_metrics.items())},
                "steps_per_s": num_steps / (time.perf_counter() - chunk_start)}
      log.write(json.dumps(record) + "\n")
      log.flush()
      print(f"step {step}/{total_steps}  d_loss {record['d_loss']:.4f}  "
            f"g_loss {record['g_loss']:.4f}  D(x) {record['d_real']:.3f}  "
            f"D(G(z)) {record['d_fake']:.3f}  {record['steps_per_s']:.0f} steps/s", flush=True)
      if not all(math.isfinite(v) for v in record.values()):
        bad = sorted(k for k, v in record.items() if not math.isfinite(v))
        raise RunError(f"non-finite {', '.join(bad)} in the {num_steps} steps up to step {step}")
  train_seconds = time.perf_counter() - start

  state = train.unreplicate(state, parallel)
  samples = np.asarray(train.sample(state, config.eval.num_samples,
                                    jax.random.fold_in(state.key, 0xE7A1)))
  np.save(workdir / "samples.npy", samples)
  summary = {"step": step, "train_seconds": round(train_seconds, 2)}
  if spec.data.dim == 2:
    stats = metrics_lib.mode_statistics(samples, np.asarray(spec.data.means), spec.data.stds[0])
    summary.update(modes=int(stats["modes"]), num_modes=len(spec.data.means),
                   high_quality=float(stats["high_quality"]),
                   reverse_kl=float(stats["reverse_kl"]))
    _plot_samples(workdir / "samples.png", samples, spec.data)
  (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
  print("summary: " + json.dumps(summary), flush=True)
  return summary
