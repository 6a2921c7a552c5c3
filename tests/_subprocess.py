"""Commands the tests run: `ganjax_main` runs `python -m ganjax.main` to its end, and `Child` is a
child process whose output is read against deadlines.

A thread reads the child's output line by line, so that waiting for a line, or for the child to
exit, ends at its deadline even when the child hangs or goes silent: the child is then killed
and the test fails with what the child printed. Used as a context manager, the child is killed
on the way out if it still runs. The child leads a process group of its own, and killing it
kills the group: nothing it started is left holding its output open.
"""
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest


def command_env(**changes):
  """The environment of a command as a user's shell runs it: the test's, without the fake
  devices (one device) and with the command's own TensorFlow defaults; then `changes` (a value of
  None removes the variable)."""
  env = {**os.environ}
  env.pop("XLA_FLAGS", None)
  for name in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS"):
    env.pop(name, None)
  for name, value in changes.items():
    if value is None:
      env.pop(name, None)
    else:
      env[name] = value
  return env


def ganjax_main(*args, cwd, env=None, timeout=300):
  """`python -m ganjax.main *args` run to its end (`subprocess.run`, output captured as text),
  in `command_env()` unless `env` is given."""
  return subprocess.run([sys.executable, "-m", "ganjax.main", *args], cwd=cwd,
                        env=command_env() if env is None else env, capture_output=True,
                        text=True, timeout=timeout)


class Child:
  """`subprocess.Popen(args, **kwargs)` with stdout and stderr read together as text lines."""

  def __init__(self, args, **kwargs):
    self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, start_new_session=True, **kwargs)
    self.lines = []
    self._lines = queue.Queue()
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.process.stdout:
      self._lines.put(line)
    self._lines.put(None)  # the end of the output

  @property
  def output(self):
    """What the child has printed so far (what has been read of it)."""
    return "".join(self.lines)

  def _next_line(self, deadline):
    """The next line, None at the end of the output, or False at the deadline."""
    try:
      line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
      return False
    if line is not None:
      self.lines.append(line)
    return line

  def wait_for(self, text, timeout):
    """Reads until a line contains `text` and returns that line; fails (killing the child) when
    none does within `timeout` seconds or the child's output ends first."""
    deadline = time.monotonic() + timeout
    while True:
      line = self._next_line(deadline)
      if line is False:
        self.fail(f"{text!r} not printed within {timeout} s")
      if line is None:
        self.fail(f"the child ended (status {self.process.wait()}) without printing {text!r}")
      if text in line:
        return line

  def finish(self, timeout):
    """Waits for the child to exit and returns (its exit status, its whole output); fails (killing
    the child) when it runs longer than `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (line := self._next_line(deadline)) is not None:
      if line is False:
        self.fail(f"still running after {timeout} s")
    try:
      return self.process.wait(timeout=max(1.0, deadline - time.monotonic())), self.output
    except subprocess.TimeoutExpired:
      self.fail(f"its output ended but it still runs after {timeout} s")

  def kill(self):
    """SIGKILL to the child's process group; waits for the child to go."""
    try:
      os.killpg(self.process.pid, signal.SIGKILL)
    except ProcessLookupError:  # the whole group has exited
      pass
    self.process.wait()

  def fail(self, message):
    self.kill()
    self._reader.join(timeout=10)
    while self._next_line(time.monotonic()) not in (None, False):
      pass  # what the child printed before it was killed
    pytest.fail(f"{' '.join(map(str, self.process.args))}: {message}; its output:\n{self.output}",
                pytrace=False)

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.kill()
    self._reader.join(timeout=10)
    if not self._reader.is_alive():
      self.process.stdout.close()
