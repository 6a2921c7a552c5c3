"""Progress lines for the long phases of a run (training the feature classifier, computing
the real images' features, converting weights), printed by process 0 only.

    progress = Progress("feature classifier", total=2000, unit="steps")
    for step in range(1, 2001):
      ...
      progress.update(step, f"loss {loss:.3f}")   # a line at most every 10 s, and at the end
"""
from __future__ import annotations

import time
from typing import Callable


def duration(seconds: float) -> str:
  """'4m05s', or '1h02m' from an hour on."""
  seconds = int(seconds)
  return (f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else
          f"{seconds // 60}m{seconds % 60:02d}s")


def say(message: str) -> None:
  """Prints one line on process 0 (flushed, so that a batch job's log shows it at once)."""
  import jax
  if jax.process_index() == 0:
    print(message, flush=True)


class Progress:
  """'<what>: <done>/<total> <unit>, <extra>, <rate>/s, <time> left' lines.

  Args:
    what: the phase, as the lines name it.
    total: the amount of work (steps, images).
    unit: what `total` counts.
    every_seconds: the least time between two lines (the last line is always printed).
  """

  def __init__(self, what: str, total: int, unit: str = "steps", every_seconds: float = 10.0):
    self.what, self.total, self.unit, self.every_seconds = what, total, unit, every_seconds
    self.start = self.last = time.perf_counter()

  def update(self, done: int, extra: str | Callable[[], str] = "") -> None:
    """Reports that `done` of `total` are done (a line when it is time, or at the end).

    `extra` is more to say (a loss), or a function that returns it, called only when a line is
    printed (so that a value on the device is fetched only then).
    """
    now = time.perf_counter()
    if done < self.total and now - self.last < self.every_seconds:
      return
    self.last = now
    extra = extra() if callable(extra) else extra
    rate = done / max(now - self.start, 1e-9)
    left = (self.total - done) / max(rate, 1e-9)
    parts = [f"{self.what}: {done:,}/{self.total:,} {self.unit}", extra,
             f"{rate:.1f} {self.unit}/s",
             f"{duration(left)} left" if done < self.total else f"{duration(now - self.start)}"]
    say(", ".join(part for part in parts if part))
