"""The GAN trainer: trains (or resumes) an experiment in its workdir, then evaluates the final
generator. The program `gan` of `ganjax.programs`, the default.

A workdir holds:
  run.lock            while the run holds the workdir (`ganjax.workdir`)
  checkpoints/        Orbax checkpoints (state, config, data position), the latest `keep` kept
  metrics.jsonl       one JSON object per logged step: means of the training metrics since the
                      last line (or checkpoint), steps_per_sec and uptime (clu's
                      ReportProgress); every `eval.every` steps on 2-D toy data, the mode
                      statistics (modes, high_quality, reverse_kl) of `eval.num_samples`
                      samples from fixed noise (`ganjax.metrics.mode_statistics`); on image data
                      with `eval.metrics`, the image-quality measures (fid, kid, precision,
                      recall, density, coverage; `ganjax.image_quality`) every `eval.every` steps,
                      with eval_seconds
  events.out.*        the same scalars for TensorBoard (clu metric writers), and sample grids
  samples_<step>.png  samples from fixed noise (the EMA generator when the run keeps one)
  samples.npy, summary.json   final samples and their statistics (image-quality measures too;
                      for a class-conditional run on toy data, the per-class measures of
                      `ganjax.metrics.conditional_mode_statistics`)
  labels.npy          for a class-conditional run, the labels samples.npy was generated for
  best/, best.json    with `eval.best`: the checkpoint with the best value of that measure
  classifier.msgpack  with `eval.features='classifier'`: the run's feature classifier
  plugins/profile/    with `train.profile_steps`: a jax.profiler trace of that many steps

Starting in a workdir that holds checkpoints of the same experiment resumes from the latest one,
and continues exactly as an uninterrupted run would. SIGTERM or SIGINT (a batch job's
preemption) saves a checkpoint at the next step boundary and stops with `Preempted`.
"""
from __future__ import annotations

import itertools
import json
import math
import pathlib
import signal
import time
import warnings
from typing import Any

import jax
import numpy as np

from ganjax import checkpoint as checkpoint_lib
from ganjax import distributed
from ganjax import experiment as experiment_lib
from ganjax import loop as loop_lib
from ganjax import pictures
from ganjax import progress
from ganjax import train
from ganjax.experiment import Preempted, RunError

# What the console line shows, when the step has it.
# The fixed-noise images (pictures, summary.json) generated at a time: 10,000 images of a
# 512-channel StyleGAN2 at once would need tens of GiB.
GENERATE_BATCH = 500
SHOWN = ("d_loss", "g_loss", "d_real", "d_fake", "modes", "high_quality", "reverse_kl",
         "label_accuracy", "fid", "kid", "precision", "recall", "accuracy", "ada_p")


def run(config, workdir: pathlib.Path) -> dict[str, Any]:
  """Trains (or resumes) `config` in `workdir` (held by the caller) and evaluates it.

  Returns:
    The summary written to summary.json.

  Raises:
    RunError: a bad config, a workdir of another experiment, a damaged checkpoint, a non-finite
      loss (naming the step and the last good checkpoint, which is kept).
    Preempted: after SIGTERM/SIGINT, once the checkpoint is saved.
  """
  experiment = experiment_lib.build(config)
  config = experiment_lib.record_labels(config, experiment.spec)
  evaluation_settings = _evaluation_settings(config, experiment)
  try:
    with checkpoint_lib.Checkpointer(
        workdir, keep=int(config.train.get("keep_checkpoints", 3) or 3)) as checkpoints:
      return _Trainer(config, workdir, experiment, checkpoints).run(evaluation_settings)
  except checkpoint_lib.CheckpointError as error:
    raise RunError(str(error)) from None


def _evaluation_settings(config, experiment: experiment_lib.Experiment) -> dict[str, Any] | None:
  """The image-quality evaluation settings (`ganjax.image_quality.settings`) of an image run that
  asks for any, else None; every eval field checked."""
  every = config.get("eval", {}).get("every", 0)
  if isinstance(every, bool) or not isinstance(every, int) or every < 0:
    raise RunError(f"eval.every must be a non-negative integer (0: off), got {every!r}")
  data = experiment.spec.data
  if data is not None:
    if config.get("eval", {}).get("metrics"):
      raise RunError(f"eval.metrics needs image data, not data.name {config.data.get('name')!r}; "
                     "set eval.metrics=''")
    if every and data.dim != 2:
      raise RunError(f"eval.every needs 2-D toy data (ring, grid) or image data, not data.name "
                     f"{config.data.get('name')!r}; set eval.every=0")
    return None
  from ganjax import image_quality
  try:
    values = image_quality.settings(config)
  except image_quality.EvaluationError as error:
    raise RunError(str(error)) from None
  if every and not values["metrics"]:
    raise RunError("eval.every needs eval.metrics on image data (fid, kid, precision_recall, "
                   "density_coverage); set eval.every=0 or eval.metrics")
  return values if values["metrics"] else None


class _Best:
  """The checkpoint with the best value of one measure, in `<workdir>/best/`, and best.json."""

  def __init__(self, workdir: pathlib.Path, measure: str):
    from ganjax import image_quality
    self.measure, self.sign = measure, image_quality.BEST[measure]
    self.path = workdir / "best.json"
    self.record = json.loads(self.path.read_text()) if self.path.exists() else None
    self.checkpoints = checkpoint_lib.Checkpointer(workdir / "best", keep=1, async_save=False)

  def update(self, step: int, values: dict[str, float], state, config_json) -> None:
    value = values[self.measure]
    if not math.isfinite(value) or (self.record is not None and
                                    self.sign * value <= self.sign * self.record["value"]):
      return
    self.checkpoints.save(step, distributed.global_copy(state), config=config_json,
                          data={"batches": step}, force=True)
    self.record = {"measure": self.measure, "value": value, "step": step, **values}
    if jax.process_index() == 0:
      self.path.write_text(json.dumps(self.record, indent=2) + "\n")

  def close(self):
    self.checkpoints.close()


class _Trainer:
  """One run of the GAN trainer: its state between the hooks of the loop."""

  def __init__(self, config, workdir: pathlib.Path, experiment: experiment_lib.Experiment,
               checkpoints: checkpoint_lib.Checkpointer):
    self.config, self.workdir, self.experiment = config, workdir, experiment
    self.checkpoints = checkpoints
    self.spec = experiment.spec
    self.parallel = config.train.parallel
    self.config_json = experiment_lib.config_to_dict(config)
    self.total_steps = config.train.steps
    self.num_samples = int(config.get("eval", {}).get("num_samples", 64) or 64)
    # Images are generated GENERATE_BATCH at a time (all of a toy run's points at once).
    self.generate_batch = GENERATE_BATCH if self.spec.data is None else None
    self.last_saved: int | None = None
    self.stop_signal = 0  # the preemption signal any process received (agreed by all)
    self.evaluator = self.best = self.writer = None
    self.evaluated: dict[int, dict[str, float]] = {}

  # ----------------------------------------------------------------- set-up

  def _initial_state(self, latest: int | None) -> tuple[train.GANState, int]:
    if latest is None:
      return self.experiment.create_state(self.config.seed), 0
    # On several processes the checkpoint holds global arrays (`distributed.global_copy`).
    state, _, data_position = self.checkpoints.restore(
        distributed.global_target(self.experiment.abstract_state(self.config.seed)), latest)
    state = distributed.local_copy(state)
    start_step = int(state.step)
    if data_position.get("batches", start_step) != start_step:
      raise RunError(f"checkpoint {latest} in {self.workdir} records data position "
                     f"{data_position} for step {start_step}")
    progress.say(f"resuming from step {start_step} in {self.workdir}")
    return state, start_step

  def _evaluator(self, settings: dict[str, Any] | None):
    """`ganjax.image_quality.Evaluator` of an image run (trains the run's feature classifier and
    computes the real features the first time), and its best-checkpoint keeper."""
    if settings is None:
      return
    from ganjax import image_quality
    try:
      self.evaluator = image_quality.Evaluator(self.config, self.workdir,
                                               self.experiment.data_shape)
    except image_quality.EvaluationError as error:
      raise RunError(str(error)) from None
    if settings["best"]:
      self.best = _Best(self.workdir, settings["best"])

  def _periods(self) -> dict[str, int]:
    train_config = self.config.train
    periods = {name: int(train_config.get(f"{name}_every", 0) or 0)
               for name in ("log", "checkpoint", "sample")}
    periods["evaluate"] = int(self.config.get("eval", {}).get("every", 0) or 0)
    return periods

  def _compiled_step(self, state, batches, periods):
    """(step function, steps per call, batches): the update compiled ahead of the first call
    (so that steps per second count training only), on on-device data a `lax.scan` of as many
    steps as every period allows (`loop.chunk`)."""
    on_device = batches is None
    steps_per_call = loop_lib.chunk(self.total_steps, periods.values()) if on_device else 1
    first = None
    if on_device:
      update = train.parallelize(train.adversarial_scan, self.parallel, num_steps=steps_per_call)
    else:
      update = train.parallelize(train.adversarial_update, self.parallel, batch_axis=1)
      first = next(batches)
      batches = itertools.chain([first], batches)
    if self.parallel == "pmap" and jax.process_count() > 1:
      # A pmap compiled ahead of time takes the global device axis, not each process's part.
      # Its first call moves the state to the devices (a copy, once: JAX warns about it).
      warnings.filterwarnings("ignore", message="Donated pmap argument required resharding")
      compiled = update
      progress.say("the training step compiles at its first call (pmap on "
                   f"{jax.process_count()} processes)")
    else:
      compile_start = time.perf_counter()
      compiled = update.lower(state, self._place(first)).compile()
      progress.say(f"compiled the training step in {time.perf_counter() - compile_start:.1f} s")
    parallel = self.parallel

    def step_fn(state, batch):
      state, metrics = compiled(state, batch)
      return state, train.unreplicate(metrics, parallel)
    return step_fn, steps_per_call, batches

  def _place(self, batch):
    return train.shard_batch(batch, self.parallel, batch_axis=1)

  # ----------------------------------------------------------------- the hooks

  def _single(self, state) -> train.GANState:
    """This process's copy of the state (on one of its devices)."""
    return distributed.local_copy(train.unreplicate(state, self.parallel))

  def _take_finite(self, step: int, window: loop_lib.MetricsWindow) -> dict[str, float]:
    """The window's means (and a new window); a non-finite one stops the run, naming the step
    and the last good checkpoint."""
    means = window.take()
    names = sorted(name for name, value in means.items() if not math.isfinite(value))
    if not names:
      return means
    self.checkpoints.wait()
    kept = (f"the last good checkpoint, step {self.last_saved}, is kept in "
            f"{self.workdir / 'checkpoints'}" if self.last_saved is not None else
            "no checkpoint was saved")
    raise RunError(f"non-finite {', '.join(names)} by step {step}; {kept}")

  def log(self, step: int, state, window: loop_lib.MetricsWindow) -> dict[str, float]:
    """The means of the training metrics since the last line (or checkpoint)."""
    del state
    return self._take_finite(step, window)

  def evaluate_images(self, step: int, state, window) -> dict[str, float]:
    """The image-quality measures of the fixed-noise samples; the best checkpoint kept."""
    del window
    single = self._single(state)
    started = time.perf_counter()
    self.evaluated[step] = self.evaluator(single)
    if self.best is not None:
      self.best.update(step, self.evaluated[step], single, self.config_json)
    return {**self.evaluated[step], "eval_seconds": round(time.perf_counter() - started, 2)}

  def evaluate_modes(self, step: int, state, window) -> dict[str, float]:
    """The mode statistics of `eval.num_samples` fixed-noise samples of a 2-D mixture."""
    del step, window
    samples, labels = self._fixed_noise(self._single(state))
    values = experiment_lib.mode_statistics(samples, self.spec.data, labels)
    values.pop("per_class_accuracy", None)  # a list: in summary.json, not in the scalar logs
    return values

  def _fixed_noise(self, state, num: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """`num` (default `eval.num_samples`) fixed-noise samples and the labels they were made for
    (the classes in turn; None for an unconditional run)."""
    num = num or self.num_samples
    labels = train.default_labels(state, num)
    samples = experiment_lib.fixed_noise_samples(state, num, labels, self.generate_batch)
    return np.asarray(samples), None if labels is None else np.asarray(labels)

  def checkpoint(self, step: int, state, window: loop_lib.MetricsWindow) -> None:
    """Saves step `step` (unless it is saved), its metrics checked finite first."""
    self._take_finite(step, window)
    if self.last_saved != step:
      self.checkpoints.save(step, distributed.global_copy(self._single(state)),
                            config=self.config_json, data={"batches": step}, force=True)
      self.last_saved = step

  def sample(self, step: int, state, window) -> None:
    """A picture of fixed-noise samples (process 0), also to TensorBoard for images."""
    del window
    if jax.process_index() != 0:
      return
    samples, labels, columns = self._picture_samples(self._single(state))
    pictures.save_samples(self.workdir / f"samples_{step:07d}.png", samples, self.spec.data,
                          title=f"step {step}", labels=labels, columns=columns)
    if samples.ndim == 4:
      self.writer.write_images(step, {"samples": pictures.image_grid(samples, columns)[None]})

  def _picture_samples(self, state) -> tuple[np.ndarray, np.ndarray | None, int | None]:
    """(samples, labels, columns) of a sample picture: up to 1000 toy samples (the classes in
    turn) or 64 images; for a class-conditional image generator, a class grid of 8 images per
    class, one row per class."""
    if self.spec.data is not None:
      return (*self._fixed_noise(state, min(self.num_samples, 1000)), None)
    if not self.spec.num_classes:
      return self._fixed_noise(state, min(self.num_samples, 64))[0], None, None
    per_class = 8
    labels = experiment_lib.class_grid_labels(self.spec.num_classes, per_class)
    samples = experiment_lib.fixed_noise_samples(state, len(labels), labels, self.generate_batch)
    return np.asarray(samples), labels, per_class

  def should_stop(self, signals: loop_lib.Signals) -> bool:
    """Whether a preemption signal reached this process or, on several processes, any of them
    (agreed at every step boundary, so that all save the same step and stop)."""
    self.stop_signal = distributed.agree(signals.received or 0)
    return bool(self.stop_signal)

  def preempted(self, step: int, state, window: loop_lib.MetricsWindow) -> None:
    self.checkpoint(step, state, window)
    self.checkpoints.wait()
    name = signal.Signals(self.stop_signal).name
    raise Preempted(f"{name} at step {step}: checkpoint saved in {self.workdir / 'checkpoints'}; "
                    "run the same command again to resume", self.stop_signal)

  # ----------------------------------------------------------------- the run

  def run(self, evaluation_settings: dict[str, Any] | None) -> dict[str, Any]:
    started = time.perf_counter()
    latest = experiment_lib.resume_step(self.workdir, self.checkpoints, self.config_json)
    self.last_saved = latest
    self._evaluator(evaluation_settings)
    state, start_step = self._initial_state(latest)
    if start_step >= self.total_steps:
      progress.say(f"the run in {self.workdir} is complete ({start_step} steps)")
    batches = None
    if self.spec.data is None:
      from ganjax.data import images
      batches = images.make_iterator(self.config.data, batch_size=self.spec.batch_size,
                                     n_critic=self.spec.n_critic, seed=self.config.seed,
                                     start_batch=start_step,
                                     with_labels=bool(self.spec.num_classes))
    periods = self._periods()
    state = train.replicate(state, self.parallel)
    step_fn, steps_per_call, batches = self._compiled_step(state, batches, periods)
    evaluate = self.evaluate_images if self.evaluator is not None else self.evaluate_modes
    hooks = [loop_lib.Hook("log", periods["log"], self.log, at_end=True),
             loop_lib.Hook("evaluate", periods["evaluate"], evaluate),
             loop_lib.Hook("checkpoint", periods["checkpoint"], self.checkpoint, at_end=True),
             loop_lib.Hook("sample", periods["sample"], self.sample)]
    self.writer = loop_lib.writers(self.workdir, resume_step=start_step,
                                   total_steps=self.total_steps, shown=SHOWN)
    try:
      with loop_lib.Signals() as signals:
        state = loop_lib.Loop(
            step_fn, total_steps=self.total_steps, steps_per_call=steps_per_call, hooks=hooks,
            writer=self.writer, batches=batches, stop=lambda: self.should_stop(signals),
            on_stop=self.preempted,
            profile_steps=int(self.config.train.get("profile_steps", 0) or 0),
            profile_dir=self.workdir).run(state, start_step, batch_fn=self._place)
      self.checkpoints.wait()
    finally:
      self.writer.close()
      if self.best is not None:
        self.best.close()
    return self._summary(self._single(state), started)

  def _summary(self, state: train.GANState, started: float) -> dict[str, Any]:
    step = int(state.step)
    samples, labels = self._fixed_noise(state)
    summary: dict[str, Any] = {"step": step,
                               "wall_seconds": round(time.perf_counter() - started, 1)}
    # Evaluated by every process (each computes its share of the features).
    final = (None if self.evaluator is None else
             self.evaluated.get(step) or self.evaluator(state))
    if jax.process_index() != 0:
      return summary
    np.save(self.workdir / "samples.npy", samples)
    if labels is not None:
      np.save(self.workdir / "labels.npy", labels)
    data = self.spec.data
    if data is not None and data.dim == 2:
      summary.update(experiment_lib.mode_statistics(samples, data, labels),
                     num_modes=len(data.means))
    if self.evaluator is not None:
      summary.update(final, **self.evaluator.details,
                     features=self.evaluator.network.name,
                     num_samples=self.evaluator.settings["num_samples"],
                     num_real=self.evaluator.settings["num_real"],
                     evaluation=self.evaluator.description())
      if self.best is not None and self.best.record is not None:
        summary["best"] = {"measure": self.best.measure, "value": self.best.record["value"],
                           "step": self.best.record["step"]}
    if data is None or data.dim <= 2:
      picture, picture_labels, columns = (
          self._picture_samples(state) if data is None and self.spec.num_classes else
          (samples, labels, None))
      pictures.save_samples(self.workdir / "samples.png", picture, data, title=f"step {step}",
                            labels=picture_labels, columns=columns)
    (self.workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    progress.say("summary: " + json.dumps(summary))
    return summary
