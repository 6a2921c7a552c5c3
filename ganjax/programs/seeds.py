"""The mode-collapse benchmark on the 2-D ring and grid: many seeds of one configuration trained
side by side in one compiled program, evaluated with the PacGAN protocol, written as a table row.

The program `seeds` of `ganjax.programs` (`config.program = "seeds"`,
`experiments/mode_collapse.py`); it runs with the same command line as a training run:

  python -m ganjax.main --config=experiments/mode_collapse.py:ring,fast,nonsat --workdir=<dir>

Seeds `config.seed, ..., config.seed + seeds - 1` are stacked along a leading axis
(`train.create_seed_states`) and trained by `train.vmap_seeds(train.adversarial_scan)` in the
training loop of every program (`ganjax.loop`), in scanned chunks of `train.log_every` steps
(gcd'ed with `eval.every` and `train.steps`); each seed follows exactly the numbers it would follow
alone. After training, each seed's generator (the EMA
one when kept) draws `eval.num_samples` samples from the fixed noise an ordinary run's summary uses,
and `ganjax.metrics.mode_statistics` measures them: modes captured, the high-quality fraction
(within 3 sigma of the nearest mode) and the reverse KL of the mode histogram against the uniform
one. The workdir gets:

  row.json          dataset, config, preset, seeds, steps, the mean and standard error over seeds
                    of modes, high-quality percentage and reverse KL, the per-seed values,
                    all_modes_and_hq_target_seeds (seeds with every mode captured and at least the
                    target high-quality percentage: 97 on the ring, 95 on the grid),
                    non_finite_seeds (diverged seeds, whose samples are not finite: they count
                    as 0 modes and 0 % high quality), compile, training and wall seconds; for a
                    class-conditional configuration also label_accuracy and label_accuracy_min
                    (percent: the samples made for class k that are high-quality samples of mode
                    k, `ganjax.metrics.conditional_mode_statistics`), their standard errors,
                    per-seed values, and per_class_accuracy_mean
  metrics.jsonl     every `train.log_every` steps the training metrics averaged over seeds and
                    the steps since the last line, steps_per_sec; every `eval.every` steps (0: off)
                    the mode statistics averaged over seeds (also TensorBoard events)
  samples.npy       (seeds, eval.num_samples, 2) final samples; samples.png of the first seed

No checkpoints are kept: a workdir must be new or empty.
"""
from __future__ import annotations

import json
import math
import pathlib
import time
from typing import Any

import jax
import numpy as np

from ganjax import experiment as experiment_lib
from ganjax import loop as loop_lib
from ganjax import metrics as metrics_lib
from ganjax import pictures
from ganjax import progress
from ganjax import train
from ganjax.experiment import RunError

# Target high-quality fraction, in percent, with every mode captured: the benchmark's goal.
HQ_TARGETS = {"ring": 97.0, "grid": 95.0}
# What the console line shows: the losses averaged over seeds, the mean mode statistics.
SHOWN = ("d_loss", "g_loss", "modes_mean", "high_quality_mean")


def run(config, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains `config.seeds` seeds side by side and writes the benchmark row into `workdir`.

  Returns:
    The row written to row.json.

  Raises:
    RunError: a bad config field, or a workdir that already holds files (nothing in it is
      changed).
  """
  started = time.perf_counter()
  data_name = config.data.name
  if data_name not in HQ_TARGETS:
    raise RunError(f"the mode-collapse benchmark needs data.name ring or grid, not "
                   f"{data_name!r}")
  experiment = experiment_lib.build(config)
  spec = experiment.spec
  evaluation = config.get("eval", {}) or {}
  seeds, every = config.seeds, int(evaluation.get("every", 0) or 0)
  num_samples = int(evaluation.get("num_samples", 2500) or 2500)
  if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
    raise RunError(f"seeds must be a positive integer, got {seeds!r}")
  pack = dict(config.model.get("discriminator_kwargs", {})).get("pack", 1)
  if spec.batch_size % pack:
    raise RunError(f"train.batch_size {spec.batch_size} is not divisible by the "
                   f"discriminator's pack {pack}")
  workdir = experiment_lib.new_workdir(workdir)

  steps, log_every = config.train.steps, int(config.train.get("log_every", 0) or 0)
  steps_per_call = loop_lib.chunk(steps, (log_every, every))
  states = experiment.create_seed_states(config.seed + np.arange(seeds))
  compile_start = time.perf_counter()
  update = train.vmap_seeds(train.adversarial_scan, num_steps=steps_per_call).lower(
      states).compile()
  compile_seconds = time.perf_counter() - compile_start
  progress.say(f"compiled {seeds} seeds x {steps_per_call} steps in {compile_seconds:.1f} s")
  evaluate = jax.jit(lambda states: jax.vmap(
      lambda state: _statistics(state, spec.data, num_samples))(states))

  def log(step, states, window):
    del step, states
    return window.take()

  def mode_statistics(step, states, window):
    del step, window
    return {f"{name}_mean": float(np.mean(value)) for name, value in evaluate(states)[1].items()
            if name != "per_class_accuracy"}

  writer = loop_lib.writers(workdir, resume_step=0, total_steps=steps, shown=SHOWN)
  train_start = time.perf_counter()
  try:
    states = loop_lib.Loop(
        lambda states, batch: update(states), total_steps=steps, steps_per_call=steps_per_call,
        hooks=[loop_lib.Hook("log", log_every, log),
               loop_lib.Hook("evaluate", every, mode_statistics)],
        writer=writer).run(states, start_step=0)
    jax.block_until_ready(states)
  finally:
    writer.close()
  train_seconds = time.perf_counter() - train_start

  samples, statistics = jax.device_get(evaluate(states))
  np.save(workdir / "samples.npy", samples)
  pictures.save_samples(workdir / "samples.png", samples[0], spec.data,
                        title=f"seed {config.seed}, step {steps}")
  labels = config.get("benchmark", {}) or {}
  row = summarize(statistics, data_name=data_name, num_modes=len(spec.data.means))
  row["non_finite_seeds"] = int(np.sum(~np.isfinite(samples).all(axis=(1, 2))))
  row = {"dataset": data_name, "config": labels.get("config", config.loss),
         "preset": labels.get("preset", ""), "seeds": seeds, "steps": steps, **row,
         "compile_seconds": round(compile_seconds, 1), "train_seconds": round(train_seconds, 1),
         "wall_seconds": round(time.perf_counter() - started, 1)}
  (workdir / "row.json").write_text(json.dumps(row, indent=2) + "\n")
  progress.say(f"{row['dataset']} {row['config']} ({row['preset']}, {seeds} seeds, {steps} "
               f"steps): modes {row['modes_mean']:.2f} +- {row['modes_se']:.2f}, high quality "
               f"{row['hq_mean']:.2f} +- {row['hq_se']:.2f} %, reverse KL "
               f"{row['reverse_kl_mean']:.3f}, target met by "
               f"{row['all_modes_and_hq_target_seeds']}/{seeds} seeds"
               + (f", label accuracy {row['label_accuracy_mean']:.2f} +- "
                  f"{row['label_accuracy_se']:.2f} %" if "label_accuracy_mean" in row else "")
               + f", {row['wall_seconds']} s")
  return row


def _statistics(state: train.GANState, data, num_samples: int
                ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """One seed's samples from fixed noise (those of an ordinary run's summary) and their mode
  statistics, with the per-class ones of a class-conditional run (its samples made for the
  classes in turn); jit- and vmap-able."""
  labels = train.default_labels(state, num_samples)
  samples = experiment_lib.fixed_noise_samples(state, num_samples, labels)
  statistics = metrics_lib.mixture_mode_statistics(samples, data)
  if labels is not None:
    conditional = metrics_lib.mixture_conditional_mode_statistics(samples, labels, data)
    statistics.update(label_accuracy=conditional["label_accuracy"],
                      label_accuracy_min=conditional["label_accuracy_min"],
                      per_class_accuracy=conditional["per_class_accuracy"])
  return samples, statistics


def summarize(statistics: dict[str, np.ndarray], data_name: str, num_modes: int) -> dict[str, Any]:
  """Means, standard errors and per-seed values of per-seed mode statistics.

  Args:
    statistics: per-seed arrays 'modes', 'high_quality' (a fraction) and 'reverse_kl'.
    data_name: 'ring' or 'grid' (which high-quality target applies).
    num_modes: the mixture's number of modes.

  Returns:
    modes_mean, modes_se, hq_mean and hq_se (percent), reverse_kl_mean, reverse_kl_se, per_seed
    (lists), num_modes, hq_target (percent) and all_modes_and_hq_target_seeds.
  """
  modes = np.asarray(statistics["modes"], np.int64)
  hq = 100.0 * np.asarray(statistics["high_quality"], np.float64)
  reverse_kl = np.asarray(statistics["reverse_kl"], np.float64)
  target = HQ_TARGETS[data_name]

  def mean_se(values):
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return float(np.mean(values)), se

  row = {}
  for name, values in (("modes", modes), ("hq", hq), ("reverse_kl", reverse_kl)):
    row[f"{name}_mean"], row[f"{name}_se"] = mean_se(values)
  row["per_seed"] = {"modes": modes.tolist(), "hq": hq.tolist(), "reverse_kl": reverse_kl.tolist()}
  if "label_accuracy" in statistics:
    # A class-conditional run: the percentage of each class's samples on its own mode.
    for name in ("label_accuracy", "label_accuracy_min"):
      values = 100.0 * np.asarray(statistics[name], np.float64)
      row[f"{name}_mean"], row[f"{name}_se"] = mean_se(values)
      row["per_seed"][name] = values.round(2).tolist()
    per_class = 100.0 * np.asarray(statistics["per_class_accuracy"], np.float64)
    row["per_class_accuracy_mean"] = per_class.mean(axis=0).round(2).tolist()
  row["num_modes"] = num_modes
  row["hq_target"] = target
  row["all_modes_and_hq_target_seeds"] = int(np.sum((modes == num_modes) & (hq >= target)))
  return row
