"""The experiment runner: config -> training loop, checkpoints, logs and pictures in a workdir.

`train_and_evaluate(config, workdir)` is what `python -m ganjax.main` calls; a test or a notebook
can call it directly. Everything a config can get wrong (a name, a field, a dataset that is not
prepared, a workdir that holds another run) is checked before anything is compiled, and reported
as a `RunError` in one line.

A workdir holds:
  checkpoints/        Orbax checkpoints (state, config, data position), the latest `keep` kept
  metrics.jsonl       one JSON object per logged step: means of the training metrics since the
                      last line, steps per second; every `eval.every` steps on 2-D toy data, the
                      mode statistics (modes, high_quality, reverse_kl) of `eval.num_samples`
                      samples from fixed noise (`ganjax.metrics.mode_statistics`);
                      on image data with `eval.metrics`, the image-quality measures (fid, kid,
                      precision, recall, density, coverage; `ganjax.evaluation`) every
                      `eval.every` steps, with eval_seconds
  events.out.*        the same metrics for TensorBoard (clu metric writers)
  samples_<step>.png  samples from fixed noise (the EMA generator when the run keeps one)
  samples.npy, summary.json   final samples and their statistics (image-quality measures too)
  best/, best.json    with `eval.best`: the checkpoint with the best value of that measure
  classifier.msgpack  with `eval.features='classifier'`: the run's feature classifier

Starting in a workdir that holds checkpoints of the same experiment resumes from the latest one,
and continues exactly as an uninterrupted run would. SIGTERM or SIGINT (a batch job's
preemption) saves a checkpoint at the next step boundary and stops with `Preempted`.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import pathlib
import signal
import time
from typing import Any, Iterator

import jax
import ml_collections
import numpy as np

from ganjax import checkpoint as checkpoint_lib
from ganjax import metrics as metrics_lib
from ganjax import paths
from ganjax import pictures
from ganjax import progress
from ganjax import train
from ganjax import workdir as workdir_lib
from ganjax.data import toy

# Config fields that may change when a run is resumed; any other difference means the workdir
# holds another experiment.
RESUMABLE_FIELDS = ("train.steps", "train.log_every", "train.checkpoint_every",
                    "train.sample_every", "train.keep_checkpoints", "train.parallel", "eval",
                    "data.data_dir")
_SAMPLE_STREAM = 0x5A3E
# What a new run may find in its workdir before its first checkpoint: its own lock, the
# checkpoint folder, and the feature classifier an earlier, interrupted start trained.
_FIRST_FILES = (workdir_lib.LOCK_FILE, "checkpoints", "classifier.msgpack")


class RunError(Exception):
  """A problem the user can fix (a bad config field, a workdir in use, a diverged run)."""


class Preempted(RunError):
  """The run received SIGTERM or SIGINT and saved a checkpoint before stopping."""

  def __init__(self, message: str, signal_number: int):
    super().__init__(message)
    self.signal_number = signal_number


@dataclasses.dataclass
class Experiment:
  """What a config describes, built and validated before anything compiles."""
  generator: Any
  discriminator: Any
  g_tx: Any
  d_tx: Any
  spec: train.GANSpec
  data_shape: tuple[int, ...]


def config_to_dict(config) -> dict[str, Any]:
  """The config as plain JSON-compatible data (tuples become lists)."""
  as_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  return json.loads(json.dumps(as_dict))


def config_from_dict(data: dict[str, Any]) -> ml_collections.ConfigDict:
  """A ConfigDict from `config_to_dict` output, lists turned back into tuples (module fields
  must be hashable)."""
  def tuples(value):
    if isinstance(value, dict):
      return {k: tuples(v) for k, v in value.items()}
    if isinstance(value, list):
      return tuple(tuples(v) for v in value)
    return value
  return ml_collections.ConfigDict(tuples(data))


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in data.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(_flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
  def relevant(name):
    return not any(name == field or name.startswith(field + ".") for field in RESUMABLE_FIELDS)
  saved, current = _flatten(saved), _flatten(current)
  return sorted(name for name in set(saved) | set(current)
                if relevant(name) and saved.get(name) != current.get(name))


def build_experiment(config, check_data: bool = True) -> Experiment:
  """Models, optimizers and spec from a config, every name and field checked (and, with
  `check_data`, that an image dataset is prepared).

  Raises:
    RunError: naming the field at fault and the valid choices.
  """
  for field in ("seed", "loss", "model", "optimizer", "train", "data"):
    if field not in config:
      raise RunError(f"the config has no field {field!r}")
  if not isinstance(config.train.steps, int) or config.train.steps < 1:
    raise RunError(f"train.steps must be a positive integer, got {config.train.steps!r}")
  if config.train.parallel not in train.PARALLEL_MODES:
    raise RunError(f"train.parallel {config.train.parallel!r} is not one of: "
                   f"{', '.join(train.PARALLEL_MODES)}")
  try:
    generator, discriminator, g_tx, d_tx, spec = train.build_from_config(config)
    if spec.data is not None:
      data_shape = spec.data.shape
    else:
      from ganjax.data import images
      if config.data.get("name") not in images.VALID_NAMES:
        raise RunError(f"unknown dataset {config.data.get('name')!r} (data.name); valid names: "
                       f"{', '.join(sorted((*images.VALID_NAMES, *toy.DISTRIBUTIONS)))}")
      data_shape = images.image_shape(config.data)
      if check_data:
        images.check_dataset(config.data)
    # The players' shapes checked against the data's, without compiling anything.
    jax.eval_shape(functools.partial(train.create_state, generator, discriminator, g_tx, d_tx,
                                     spec, tuple(data_shape)), config.seed)
  except RunError:
    raise
  except (ValueError, TypeError, KeyError, AttributeError) as error:
    raise RunError(str(error).splitlines()[0]) from None
  return Experiment(generator, discriminator, g_tx, d_tx, spec, tuple(data_shape))


def _periods(config) -> dict[str, int]:
  train_config = config.train
  return {name: int(train_config.get(name, 0) or 0)
          for name in ("log_every", "checkpoint_every", "sample_every")}


def _eval_every(config) -> int:
  return int(config.get("eval", {}).get("every", 0) or 0)


def _chunk(config) -> int:
  """Steps per compiled call on on-device data: every logging, checkpoint, sample and evaluation
  step falls on a chunk boundary, and a resumed run calls the same chunks as an uninterrupted
  one."""
  chunk = config.train.steps
  for period in (*_periods(config).values(), _eval_every(config)):
    if period > 0:
      chunk = math.gcd(chunk, period)
  return chunk


class _Log:
  """metrics.jsonl and the clu writers (TensorBoard events and console), process 0 only."""

  def __init__(self, workdir: pathlib.Path, resume_step: int, total_steps: int):
    from clu import metric_writers
    self.enabled = jax.process_index() == 0
    self.writer = metric_writers.create_default_writer(str(workdir), just_logging=not self.enabled)
    self.path = workdir / "metrics.jsonl"
    self.total_steps = total_steps
    if self.enabled and self.path.exists():
      # Lines past the checkpoint resumed from belong to the part of the run being redone.
      kept = [line for line in self.path.read_text().splitlines()
              if line and json.loads(line)["step"] <= resume_step]
      self.path.write_text("".join(line + "\n" for line in kept))
    self.start_time = time.perf_counter()
    self.start_step = resume_step

  def write(self, step: int, values: dict[str, float], steps_per_s: float | None = None) -> None:
    """One line of values at `step` (steps per second only on lines that log training)."""
    if steps_per_s is not None:
      values = {**values, "steps_per_s": steps_per_s}
    self.writer.write_scalars(step, values)
    if not self.enabled:
      return
    with open(self.path, "a") as log:
      log.write(json.dumps({"step": step, **values}) + "\n")
    elapsed = time.perf_counter() - self.start_time
    rate = (step - self.start_step) / max(elapsed, 1e-9)
    left = (self.total_steps - step) / max(rate, 1e-9)
    shown = "  ".join(f"{k} {values[k]:.4g}" for k in ("d_loss", "g_loss", "d_real", "d_fake",
                                                       "modes", "high_quality", "reverse_kl",
                                                       "fid", "kid", "precision", "recall")
                      if k in values)
    speed = f"{steps_per_s:.1f} steps/s  " if steps_per_s is not None else ""
    print(f"step {step}/{self.total_steps}  {shown}  {speed}{progress.duration(left)} left",
          flush=True)

  def close(self):
    self.writer.flush()
    self.writer.close()


class _Signals:
  """Turns SIGTERM/SIGINT into a flag checked at step boundaries."""

  def __init__(self):
    self.received = None
    self.previous = {}

  def __enter__(self):
    for number in (signal.SIGTERM, signal.SIGINT):
      try:
        self.previous[number] = signal.signal(number, self._handle)
      except ValueError:  # not the main thread: leave the handlers alone
        pass
    return self

  def _handle(self, number, frame):
    self.received = number

  def __exit__(self, *exc):
    for number, handler in self.previous.items():
      signal.signal(number, handler)


def _host_batches(config, experiment: Experiment, start_batch: int) -> Iterator[np.ndarray] | None:
  if experiment.spec.data is not None:
    return None
  from ganjax.data import images
  return images.make_iterator(config.data, batch_size=experiment.spec.batch_size,
                              n_critic=experiment.spec.n_critic, seed=config.seed,
                              start_batch=start_batch)


def fixed_noise_samples(state: train.GANState, num: int) -> jax.Array:
  """`num` samples from the run's fixed noise (the same latents at every step and on resume):
  what sample pictures, periodic evaluation and summary.json show. Jit- and vmap-able."""
  return train.sample(state, num, jax.random.fold_in(state.key, _SAMPLE_STREAM))


def _fixed_noise_samples(state: train.GANState, num: int) -> np.ndarray:
  return np.asarray(fixed_noise_samples(state, num))


def _mode_statistics(samples: np.ndarray, data) -> dict[str, float]:
  """`metrics.mixture_mode_statistics` of samples from a 2-D toy mixture, as plain numbers."""
  stats = metrics_lib.mixture_mode_statistics(samples, data)
  return {"modes": int(stats["modes"]), "high_quality": float(stats["high_quality"]),
          "reverse_kl": float(stats["reverse_kl"])}


def _check_eval(config, experiment: Experiment) -> dict[str, Any] | None:
  """The image-quality evaluation settings (`ganjax.evaluation.settings`) of an image run that
  asks for any, else None; every eval field checked."""
  every = config.get("eval", {}).get("every", 0)
  if not isinstance(every, int) or every < 0:
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
  from ganjax import evaluation
  try:
    values = evaluation.settings(config)
  except evaluation.EvaluationError as error:
    raise RunError(str(error)) from None
  if every and not values["metrics"]:
    raise RunError("eval.every needs eval.metrics on image data (fid, kid, precision_recall, "
                   "density_coverage); set eval.every=0 or eval.metrics")
  return values if values["metrics"] else None


def new_workdir(workdir: str | pathlib.Path) -> pathlib.Path:
  """Creates `workdir` for a run that does not resume (a study, a benchmark row).

  Raises:
    RunError: the path exists and is a file or a non-empty directory (nothing in it is changed).
  """
  workdir = pathlib.Path(workdir)
  if workdir.exists() and (not workdir.is_dir() or any(
      path.name != workdir_lib.LOCK_FILE for path in workdir.iterdir())):
    raise RunError(f"workdir {workdir} is not a new or empty directory; give another "
                   "(nothing in it was changed)")
  workdir.mkdir(parents=True, exist_ok=True)
  return workdir


def train_and_evaluate(config, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains (or resumes) the experiment `config` in `workdir` and evaluates the final generator.

  A config with a `study` field is a derivation study instead (`ganjax.derivation.run`): it
  writes report.md/report.json and returns the report as a dict. A config with a `seeds` field is
  the mode-collapse benchmark (`ganjax.mode_collapse.run`): it trains that many seeds side by side
  and writes and returns a table row (row.json).

  `workdir` and the config's path fields (`ganjax.paths.CONFIG_PATH_FIELDS`) may be relative to
  the current directory; they are made absolute here, and the config is saved with them so. The
  run holds the workdir (`ganjax.workdir.hold`) from before it writes anything until it returns.

  Returns:
    The summary written to summary.json.

  Raises:
    RunError: a bad config, a workdir in use by another experiment or by another process, a
      damaged checkpoint, or a non-finite loss (naming the step and the last good checkpoint,
      which is kept).
    Preempted: after SIGTERM/SIGINT, once the checkpoint is saved.
  """
  workdir = pathlib.Path(paths.absolute(workdir))
  config = paths.with_absolute_paths(config)
  if "study" in config:
    from ganjax import derivation
    program = lambda: derivation.run(config, workdir).to_dict()
  elif "seeds" in config:
    from ganjax import mode_collapse
    program = lambda: mode_collapse.run(config, workdir)
  else:
    program = lambda: _train(config, workdir)
  try:
    with workdir_lib.hold(workdir):
      return program()
  except (workdir_lib.WorkdirInUse, NotADirectoryError) as error:
    raise RunError(str(error)) from None


def _train(config, workdir: pathlib.Path) -> dict[str, Any]:
  """The GAN training program of `train_and_evaluate`."""
  experiment = build_experiment(config)
  eval_settings = _check_eval(config, experiment)
  parallel = config.train.parallel
  config_json = config_to_dict(config)
  periods = _periods(config)
  total_steps = config.train.steps

  checkpoints = checkpoint_lib.Checkpointer(workdir, keep=int(config.train.get("keep_checkpoints",
                                                                               3) or 3))
  try:
    latest = checkpoints.latest_step()
    if latest is None and workdir.exists() and any(p.name not in _FIRST_FILES
                                                   for p in workdir.iterdir()):
      raise RunError(f"workdir {workdir} holds files but no checkpoint to resume; give a new or "
                     "empty directory (nothing in it was changed)")
    if latest is not None:
      differences = _differences(checkpoints.read_config(latest) or {}, config_json)
      if differences:
        raise RunError(f"workdir {workdir} holds a run of another experiment (it differs in "
                       f"{', '.join(differences[:5])}); give a new directory (nothing in it was "
                       "changed)")
    evaluator = _evaluator(config, workdir, experiment) if eval_settings else None
    return _run(config, workdir, experiment, checkpoints, latest, config_json, periods,
                total_steps, parallel, evaluator)
  except checkpoint_lib.CheckpointError as error:
    raise RunError(str(error)) from None
  finally:
    checkpoints.close()


def _evaluator(config, workdir: pathlib.Path, experiment: Experiment):
  """`ganjax.evaluation.Evaluator` of an image run (trains the run's feature classifier and
  computes the real features the first time)."""
  from ganjax import evaluation
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    return evaluation.Evaluator(config, workdir, experiment.data_shape)
  except evaluation.EvaluationError as error:
    raise RunError(str(error)) from None


class _Best:
  """The checkpoint with the best value of one measure, in `<workdir>/best/`, and best.json."""

  def __init__(self, workdir: pathlib.Path, measure: str):
    from ganjax import evaluation
    self.measure, self.sign = measure, evaluation.BEST[measure]
    self.path = workdir / "best.json"
    self.record = json.loads(self.path.read_text()) if self.path.exists() else None
    self.checkpoints = checkpoint_lib.Checkpointer(workdir / "best", keep=1, async_save=False)

  def update(self, step: int, values: dict[str, float], state, config_json) -> None:
    value = values[self.measure]
    if not math.isfinite(value) or (self.record is not None and
                                    self.sign * value <= self.sign * self.record["value"]):
      return
    self.checkpoints.save(step, state, config=config_json, data={"batches": step}, force=True)
    self.record = {"measure": self.measure, "value": value, "step": step, **values}
    if jax.process_index() == 0:
      self.path.write_text(json.dumps(self.record, indent=2) + "\n")

  def close(self):
    self.checkpoints.close()


def _run(config, workdir, experiment, checkpoints, latest, config_json, periods, total_steps,
         parallel, evaluator=None) -> dict[str, Any]:
  started = time.perf_counter()
  spec = experiment.spec
  create = functools.partial(train.create_state, experiment.generator, experiment.discriminator,
                             experiment.g_tx, experiment.d_tx, spec, experiment.data_shape)
  if latest is None:
    state, start_step = create(config.seed), 0
  else:
    state, _, data_position = checkpoints.restore(jax.eval_shape(create, config.seed), latest)
    start_step = int(state.step)
    if data_position.get("batches", start_step) != start_step:
      raise RunError(f"checkpoint {latest} in {workdir} records data position "
                     f"{data_position} for step {start_step}")
    print(f"resuming from step {start_step} in {workdir}", flush=True)
  if start_step >= total_steps:
    print(f"the run in {workdir} is complete ({start_step} steps)", flush=True)
  batches = _host_batches(config, experiment, start_step)
  on_device = batches is None
  chunk = _chunk(config) if on_device else 1
  if on_device:
    step_fn = train.parallelize(train.adversarial_updates, parallel, num_steps=chunk)
  else:
    step_fn = train.parallelize(train.adversarial_update, parallel, batch_axis=1)
  state = train.replicate(state, parallel)
  log = _Log(workdir, start_step, total_steps)
  num_samples = int(config.get("eval", {}).get("num_samples", 64) or 64)
  eval_every = _eval_every(config)
  best = (_Best(workdir, evaluator.settings["best"])
          if evaluator is not None and evaluator.settings["best"] else None)
  evaluated: dict[int, dict[str, float]] = {}
  last_saved = latest
  pending: list[dict[str, jax.Array]] = []
  step, window_start, window_time = start_step, start_step, time.perf_counter()

  def save(step):
    nonlocal last_saved
    checkpoints.save(step, train.unreplicate(state, parallel), config=config_json,
                     data={"batches": step}, force=True)
    last_saved = step

  def check_finite(step):
    if not pending:
      return {}
    fetched = jax.device_get(pending)
    means = {k: float(np.mean(np.concatenate([np.ravel(m[k]) for m in fetched])))
             for k in fetched[0]}
    bad = sorted(k for k, v in means.items() if not math.isfinite(v))
    if bad:
      checkpoints.wait()
      kept = (f"the last good checkpoint, step {last_saved}, is kept in {workdir / 'checkpoints'}"
              if last_saved is not None else "no checkpoint was saved")
      raise RunError(f"non-finite {', '.join(bad)} by step {step}; {kept}")
    return means

  try:
    with _Signals() as signals:
      while step < total_steps:
        num_steps = chunk  # divides total_steps (see _chunk)
        batch = None if on_device else train.shard_batch(next(batches), parallel, batch_axis=1)
        if step == start_step:
          # Compiled ahead of the first call, so that steps per second count training only.
          compile_start = time.perf_counter()
          step_fn = step_fn.lower(state, batch).compile()
          print(f"compiled the training step in {time.perf_counter() - compile_start:.1f} s",
                flush=True)
          window_time = time.perf_counter()
        state, step_metrics = step_fn(state, batch)
        pending.append(train.unreplicate(step_metrics, parallel))
        step += num_steps
        at = lambda name: periods[name] > 0 and step % periods[name] == 0
        evaluate = eval_every > 0 and step % eval_every == 0
        line, steps_per_s = {}, None
        if at("log_every") or at("checkpoint_every") or step == total_steps:
          means = check_finite(step)
          pending.clear()
          if means and (at("log_every") or step == total_steps):
            now = time.perf_counter()
            line, steps_per_s = means, (step - window_start) / (now - window_time)
            window_start, window_time = step, now
        if evaluate and evaluator is not None:
          single = train.unreplicate(state, parallel)
          evaluation_start = time.perf_counter()
          evaluated[step] = evaluator(single)
          line = {**line, **evaluated[step],
                  "eval_seconds": round(time.perf_counter() - evaluation_start, 2)}
          if best is not None:
            best.update(step, evaluated[step], single, config_json)
        elif evaluate:
          samples = _fixed_noise_samples(train.unreplicate(state, parallel), num_samples)
          line = {**line, **_mode_statistics(samples, spec.data)}
        if line:
          log.write(step, line, steps_per_s)
        if at("checkpoint_every"):
          save(step)
        if at("sample_every") and jax.process_index() == 0:
          single = train.unreplicate(state, parallel)
          samples = _fixed_noise_samples(single, min(num_samples, 64 if not on_device else 1000))
          pictures.save_samples(workdir / f"samples_{step:07d}.png", samples, spec.data,
                                title=f"step {step}")
          if samples.ndim == 4:
            log.writer.write_images(step, {"samples": pictures.image_grid(samples)[None]})
        if at("checkpoint_every") or at("sample_every") or evaluate:
          # Steps per second count training only, not saving, drawing and evaluating.
          jax.block_until_ready(state)
          window_start, window_time = step, time.perf_counter()
        if signals.received is not None and step < total_steps:
          check_finite(step)
          save(step)
          checkpoints.wait()
          name = signal.Signals(signals.received).name
          raise Preempted(f"{name} at step {step}: checkpoint saved in {workdir / 'checkpoints'}; "
                          "run the same command again to resume", signals.received)
      check_finite(step)
      if last_saved != step:
        save(step)
      checkpoints.wait()
  finally:
    log.close()
    if best is not None:
      best.close()

  state = train.unreplicate(state, parallel)
  samples = _fixed_noise_samples(state, num_samples)
  summary: dict[str, Any] = {"step": step, "wall_seconds": round(time.perf_counter() - started, 1)}
  if jax.process_index() == 0:
    np.save(workdir / "samples.npy", samples)
    if spec.data is not None and spec.data.dim == 2:
      summary.update(_mode_statistics(samples, spec.data), num_modes=len(spec.data.means))
    if evaluator is not None:
      summary.update(evaluated.get(step) or evaluator(state),
                     features=evaluator.network.name, num_samples=evaluator.settings["num_samples"],
                     num_real=evaluator.settings["num_real"])
      if best is not None and best.record is not None:
        summary["best"] = {"measure": best.measure, "value": best.record["value"],
                           "step": best.record["step"]}
    if spec.data is None or spec.data.dim <= 2:
      pictures.save_samples(workdir / "samples.png", samples, spec.data, title=f"step {step}")
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("summary: " + json.dumps(summary), flush=True)
  return summary
