"""The training loop: every program that trains steps goes through `Loop.run`.

    loop = Loop(step_fn, total_steps=5000, steps_per_call=500, hooks=[
        Hook("log", every=500, action=log, at_end=True),
        Hook("evaluate", every=1000, action=evaluate),
        Hook("checkpoint", every=1000, action=save, at_end=True)],
        writer=writer, stop=stop)
    state = loop.run(state, start_step=0)

One call `step_fn(state, batch)` advances `steps_per_call` steps (a `lax.scan` of steps on
on-device data, or one step on a host batch from `batches`); every period divides it (`chunk`), so
that a resumed run makes the same calls as an uninterrupted one. After each call, at step s:

  1. `clu.periodic_actions.Profile` traces `profile_steps` steps once, when asked;
  2. each hook whose time it is (`itstime`) runs, in order, inside `ReportProgress.timed(name)`;
     what its action returns goes into one line of scalars for step s: the step's metrics.jsonl
     line, TensorBoard scalars and console line (`writers`);
  3. `clu.periodic_actions.ReportProgress` measures the training's steps per second (on a clock
     that stops while the hooks run, which start once the step's computation has finished) and
     the time since the loop started, written into the line as `steps_per_sec` and `uptime` on
     the steps of the "log" hook;
  4. when `stop()` says so (a preemption signal) and s is not the last step,
     `on_stop(s, state, window)` runs (it saves and raises).

The step's metrics are collected in a `MetricsWindow` that the hooks read: the "log" hook takes
their means since the last line, a checkpoint checks them for non-finite values before saving.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import signal
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import jax
import numpy as np
from clu import metric_writers
from clu import periodic_actions

from ganjax import progress as progress_lib

Values = Mapping[str, float]


def itstime(step: int, every: int, total_steps: int, at_end: bool = False) -> bool:
  """Whether a periodic action of period `every` (0: never) is due at `step`; with `at_end`
  also at the last step, `total_steps`. The one predicate of every periodic action."""
  return (every > 0 and step % every == 0) or (at_end and step == total_steps)


def chunk(total_steps: int, periods: Sequence[int]) -> int:
  """The most steps per compiled call such that every period (0: none) falls on a call's end,
  and so does the last step: the gcd of `total_steps` and the periods."""
  steps = total_steps
  for period in periods:
    if period > 0:
      steps = math.gcd(steps, period)
  return steps


@dataclasses.dataclass(frozen=True)
class Hook:
  """A periodic action of the loop.

  Attributes:
    name: what the action is ('log', 'evaluate', 'checkpoint', ...), as ReportProgress times it.
    every: its period in steps (0: never, but for `at_end`).
    action: `action(step, state, window) -> values to log, or None`.
    at_end: also run at the last step.
  """
  name: str
  every: int
  action: Callable[[int, Any, "MetricsWindow"], Values | None]
  at_end: bool = False


class MetricsWindow:
  """The metrics of the calls since the last `take()`, kept on the device until read."""

  def __init__(self):
    self._pending: list[Mapping[str, jax.Array]] = []

  def add(self, metrics: Mapping[str, jax.Array]) -> None:
    self._pending.append(metrics)

  def means(self) -> dict[str, float]:
    """The mean of each metric over every step (and seed) of the window; {} when empty."""
    if not self._pending:
      return {}
    fetched = jax.device_get(self._pending)
    return {name: float(np.mean(np.concatenate([np.ravel(m[name]) for m in fetched])))
            for name in fetched[0]}

  def take(self) -> dict[str, float]:
    """`means()`, and a new window."""
    values = self.means()
    self._pending.clear()
    return values


class _StepLines(metric_writers.MetricWriter):
  """A writer of one line per step: the scalars of every write for a step are merged, and the
  line is emitted on `flush()` or when a later step is written. Process 0 only; only scalars."""

  def __init__(self):
    self.enabled = jax.process_index() == 0
    self._step, self._values = None, {}

  def _emit(self, step: int, values: dict[str, float]) -> None:
    raise NotImplementedError

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    if step != self._step:
      self.flush()
      self._step = step
    self._values.update({name: float(value) for name, value in scalars.items()})

  def flush(self) -> None:
    values, self._values = self._values, {}
    if values and self.enabled:
      self._emit(self._step, values)

  def close(self) -> None:
    self.flush()

  def write_summaries(self, step, values, metadata=None): pass
  def write_images(self, step, images): pass
  def write_videos(self, step, videos): pass
  def write_audios(self, step, audios, *, sample_rate): pass
  def write_texts(self, step, texts): pass
  def write_histograms(self, step, arrays, num_buckets=None): pass
  def write_hparams(self, hparams): pass


class JsonlWriter(_StepLines):
  """metrics.jsonl: one JSON object per step ({"step": s, name: value, ...}). On a resume, the
  lines past the step resumed from (the part of the run being redone) are dropped first."""

  def __init__(self, path: pathlib.Path, resume_step: int = 0):
    super().__init__()
    self.path = pathlib.Path(path)
    if self.enabled and self.path.exists():
      kept = [line for line in self.path.read_text().splitlines()
              if line and json.loads(line)["step"] <= resume_step]
      self.path.write_text("".join(line + "\n" for line in kept))

  def _emit(self, step: int, values: dict[str, float]) -> None:
    with open(self.path, "a") as file:
      file.write(json.dumps({"step": step, **values}) + "\n")


class ConsoleWriter(_StepLines):
  """One console line per step that writes one of the `shown` scalars:

    step 500/5000  d_loss 1.386  g_loss 0.6924  ...  138.5 steps/s  1m07s left

  `shown` names the scalars printed, in order. Steps/s is ReportProgress's `steps_per_sec` (the
  training's); the time left is the steps left at the loop's average wall time per step so far
  (`uptime` since `start_step`), periodic work included."""

  def __init__(self, total_steps: int, shown: Sequence[str], start_step: int = 0):
    super().__init__()
    self.total_steps, self.shown, self.start_step = total_steps, tuple(shown), start_step

  def _emit(self, step: int, values: dict[str, float]) -> None:
    shown = [f"{name} {values[name]:.4g}" for name in self.shown if name in values]
    if not shown:
      return
    speed = ""
    if "steps_per_sec" in values:
      speed = f"  {values['steps_per_sec']:.1f} steps/s"
    if "uptime" in values and step > self.start_step:
      left = values["uptime"] / (step - self.start_step) * (self.total_steps - step)
      speed += f"  {progress_lib.duration(left)} left"
    print(f"step {step}/{self.total_steps}  {'  '.join(shown)}{speed}", flush=True)


def writers(workdir: pathlib.Path, *, resume_step: int, total_steps: int,
            shown: Sequence[str]) -> metric_writers.MetricWriter:
  """The writers of a run in `workdir`: clu's default writer (TensorBoard events; process 0
  only), metrics.jsonl and the console line."""
  default = metric_writers.create_default_writer(str(workdir),
                                                 just_logging=jax.process_index() > 0)
  return metric_writers.MultiWriter([
      default, JsonlWriter(workdir / "metrics.jsonl", resume_step),
      ConsoleWriter(total_steps, shown, start_step=resume_step)])


class Signals:
  """SIGTERM and SIGINT turned into a flag that the loop reads at step boundaries."""

  def __init__(self):
    self.received: int | None = None
    self._previous = {}

  def __enter__(self) -> "Signals":
    for number in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[number] = signal.signal(number, self._handle)
      except ValueError:  # not the main thread: leave the handlers alone
        pass
    return self

  def _handle(self, number, frame):
    del frame
    self.received = number

  def __exit__(self, *exc_info) -> None:
    for number, handler in self._previous.items():
      signal.signal(number, handler)


@dataclasses.dataclass
class Loop:
  """The loop of the module docstring.

  Attributes:
    step_fn: `step_fn(state, batch) -> (state, metrics)`, advancing `steps_per_call` steps; a
      compiled function (`jax.stages.Wrapped` or `Compiled`) or anything with that signature.
    total_steps: the step the run ends at.
    steps_per_call: the steps one call advances; divides every hook's period and the steps left.
    hooks: the periodic actions, in the order they run at a step.
    writer: where each step's values go (`writers`).
    batches: host batches, one per call, or None for on-device data.
    stop: whether to stop at the next step boundary (a preemption signal), read after the hooks.
    on_stop: `on_stop(step, state, window)`, run when `stop()` says so before the last step; it
      should raise (and save first).
    profile_steps: steps to trace with jax.profiler into the writer's workdir, once, starting at
      the second call (0: none).
    profile_dir: where the profile goes.
  """
  step_fn: Callable[[Any, Any], tuple[Any, Mapping[str, jax.Array]]]
  total_steps: int
  steps_per_call: int
  hooks: Sequence[Hook]
  writer: metric_writers.MetricWriter
  batches: Iterator[Any] | None = None
  stop: Callable[[], bool] = lambda: False
  on_stop: Callable[[int, Any, MetricsWindow], None] | None = None
  profile_steps: int = 0
  profile_dir: pathlib.Path | None = None
  window: MetricsWindow = dataclasses.field(default_factory=MetricsWindow)

  def run(self, state: Any, start_step: int, batch_fn: Callable[[Any], Any] = lambda b: b) -> Any:
    """Runs calls from `start_step` to `total_steps`; returns the final state.

    Args:
      state: the state at `start_step`.
      start_step: the first step's number minus one (0 for a new run, the checkpoint's step on a
        resume).
      batch_fn: applied to each host batch before the call (placing it on the devices).
    """
    log_every = next((hook.every for hook in self.hooks if hook.name == "log"), 0)
    report = periodic_actions.ReportProgress(
        num_train_steps=self.total_steps, writer=self.writer, every_secs=None,
        on_steps=range(start_step + log_every, self.total_steps + 1, log_every or 1)
        if log_every else ())
    hook_seconds = 0.0
    report(start_step, time.monotonic())  # the first call only sets the start
    profile = None
    if self.profile_steps:
      profile = periodic_actions.Profile(
          logdir=self.profile_dir, num_profile_steps=self.profile_steps,
          profile_duration_ms=None, first_profile=start_step + self.steps_per_call,
          every_secs=None)
    step = start_step
    while step < self.total_steps:
      batch = None if self.batches is None else batch_fn(next(self.batches))
      state, metrics = self.step_fn(state, batch)
      self.window.add(metrics)
      step += self.steps_per_call
      if profile is not None:
        profile(step)
      values: dict[str, float] = {}
      due = [hook for hook in self.hooks
             if itstime(step, hook.every, self.total_steps, hook.at_end)]
      if due:
        jax.block_until_ready(state)  # the hooks' time starts when the training's ends
        hooks_start = time.monotonic()
        for hook in due:
          with report.timed(hook.name, wait_jax_async_dispatch=False):
            values.update(hook.action(step, state, self.window) or {})
        hook_seconds += time.monotonic() - hooks_start
      # ReportProgress on a clock that stops during the hooks: steps per second of training.
      report(step, time.monotonic() - hook_seconds)
      if values:
        self.writer.write_scalars(step, values)
      self.writer.flush()
      if step < self.total_steps and self.stop() and self.on_stop is not None:
        self.on_stop(step, state, self.window)
    return state
