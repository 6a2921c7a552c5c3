"""Several processes of one job on this machine: what a cluster scheduler does, for a test or a
try-out of a multi-host run.

    python -m ganjax.launch --processes=2 --cpu_devices=2 -- \\
        python -m ganjax.main --config=experiments/ring.py:tiny --workdir=runs/ring_2x2 \\
        --distributed --config.train.parallel=pmap

starts the command `--processes` times, each with the environment `ganjax.distributed.initialize`
reads: JAX_COORDINATOR_ADDRESS (127.0.0.1 and a free port), GANJAX_NUM_PROCESSES and
GANJAX_PROCESS_ID; with `--cpu_devices=N`, each process runs on the CPU with N devices
(XLA_FLAGS=--xla_force_host_platform_device_count=N, JAX_PLATFORMS=cpu). Every line a process
prints is shown prefixed with its index ("[1] step 2/4 ..."), but for gloo's connection
reports. SIGTERM or SIGINT to the launcher goes on to every process (a preempted job). When a
process fails, the others are given `--grace` seconds to stop by themselves (a multi-process
run stops when one of its processes dies: `ganjax.distributed`), then killed; after `--timeout`
seconds all are killed. Nothing it started is left running when it exits. Its exit status is
the first failing process's (128 + N for signal N), or 0 when all succeed; each failure is one
line, "process 1: killed by SIGKILL after 8.1 s".
"""
from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Mapping, Sequence

from ganjax import distributed

# Lines a process prints that are not ganjax's and say nothing to act on: gloo's report of each
# connection it opens. They are kept in `Launch.output`, not shown.
_NOISE = ("[Gloo] Rank ",)


def free_port() -> int:
  """A TCP port on 127.0.0.1 that nothing listens on now."""
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def environment(process_id: int, processes: int, port: int, cpu_devices: int | None = None,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
  """The environment of process `process_id` of `processes` joined through 127.0.0.1:`port`
  (on `cpu_devices` CPU devices when given)."""
  env = dict(os.environ if base is None else base)
  env.update({distributed.COORDINATOR_ENV: f"127.0.0.1:{port}",
              distributed.NUM_PROCESSES_ENV: str(processes),
              distributed.PROCESS_ID_ENV: str(process_id),
              "PYTHONUNBUFFERED": "1"})
  if cpu_devices is not None:
    flags = [flag for flag in env.get("XLA_FLAGS", "").split()
             if not flag.startswith("--xla_force_host_platform_device_count")]
    env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={cpu_devices}"])
    env["JAX_PLATFORMS"] = "cpu"
  return env


def describe(returncode: int | None) -> str:
  """How a process ended, in words."""
  if returncode is None:
    return "still running"
  if returncode < 0:
    return f"killed by {signal.Signals(-returncode).name}"
  return f"exited with status {returncode}"


@dataclasses.dataclass
class Ended:
  """How one process ended: its index, exit status (negative: killed by that signal), seconds
  after the start, and whether the launcher killed it."""
  process_id: int
  returncode: int
  seconds: float
  killed_by_launcher: bool

  def line(self) -> str:
    by = " (by the launcher)" if self.killed_by_launcher else ""
    return f"process {self.process_id}: {describe(self.returncode)}{by} after {self.seconds:.1f} s"


class Launch:
  """`processes` copies of `command` joined as one job on 127.0.0.1 (see the module docstring).

  Attributes:
    processes: the `subprocess.Popen` of each process, by index (each leads its own process
      group, which the launcher kills as a whole).
    ended: how each process ended, by index, once it has.
  """

  def __init__(self, command: Sequence[str], processes: int, *, cpu_devices: int | None = None,
               cwd: str | None = None, env: Mapping[str, str] | None = None,
               output: Callable[[int, str], None] | None = None):
    if processes < 1:
      raise ValueError(f"processes must be at least 1, got {processes}")
    if not command:
      raise ValueError("no command to launch")
    self.command = list(command)
    port = free_port()
    self.started = time.monotonic()
    self.lines: list[list[str]] = [[] for _ in range(processes)]
    self._output = output or (lambda index, line: print(f"[{index}] {line}", end="", flush=True))
    self.processes = []
    self._readers = []
    self.ended: dict[int, Ended] = {}
    self._killed: set[int] = set()
    for index in range(processes):
      process = subprocess.Popen(self.command, cwd=cwd, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                 env=environment(index, processes, port, cpu_devices, env))
      self.processes.append(process)
      reader = threading.Thread(target=self._read, args=(index, process), daemon=True)
      reader.start()
      self._readers.append(reader)

  def _read(self, index: int, process: subprocess.Popen) -> None:
    for line in process.stdout:
      self.lines[index].append(line)
      if not line.startswith(_NOISE):
        self._output(index, line)

  def output(self, index: int) -> str:
    """What process `index` has printed so far."""
    return "".join(self.lines[index])

  def signal(self, number: int, index: int | None = None) -> None:
    """Sends signal `number` to process `index` (its whole group), or to every process."""
    for i, process in enumerate(self.processes):
      if (index is None or i == index) and process.poll() is None:
        try:
          os.killpg(process.pid, number)
        except ProcessLookupError:
          pass

  def _kill(self, index: int) -> None:
    self._killed.add(index)
    self.signal(signal.SIGKILL, index)

  def _collect(self) -> None:
    for index, process in enumerate(self.processes):
      if index not in self.ended and process.poll() is not None:
        self.ended[index] = Ended(index, process.returncode,
                                  time.monotonic() - self.started, index in self._killed)

  def wait(self, timeout: float, grace: float = 30.0) -> list[Ended]:
    """Waits until every process has ended and returns how each did, by index. Once one fails,
    the others have `grace` seconds to end by themselves before they are killed; after `timeout`
    seconds from the start, every process still running is killed."""
    deadline = self.started + timeout
    failed_at = None
    try:
      while len(self.ended) < len(self.processes):
        self._collect()
        now = time.monotonic()
        if failed_at is None and any(e.returncode != 0 for e in self.ended.values()):
          failed_at = now
        if now >= deadline or (failed_at is not None and now >= failed_at + grace):
          for index in range(len(self.processes)):
            if index not in self.ended:
              self._kill(index)
        time.sleep(0.05)
    finally:
      self.close()
    return [self.ended[index] for index in range(len(self.processes))]

  def close(self) -> None:
    """Kills every process still running (their whole groups) and waits for them."""
    for index, process in enumerate(self.processes):
      if process.poll() is None:
        self._kill(index)
      process.wait()
    self._collect()
    for reader in self._readers:
      reader.join(timeout=10)
    for process in self.processes:
      if process.stdout and not process.stdout.closed:
        process.stdout.close()

  def __enter__(self) -> "Launch":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def exit_status(ended: Sequence[Ended]) -> int:
  """0 when every process succeeded, else the first to fail's status (128 + N for signal N)."""
  failed = sorted((e for e in ended if e.returncode != 0), key=lambda e: e.seconds)
  if not failed:
    return 0
  code = failed[0].returncode
  return 128 - code if code < 0 else code


def main(argv: Sequence[str]) -> int:
  import argparse
  parser = argparse.ArgumentParser(
      prog="python -m ganjax.launch",
      description="Runs a command as several processes of one job on this machine.")
  parser.add_argument("--processes", type=int, default=2, help="how many processes (default 2)")
  parser.add_argument("--cpu_devices", type=int, default=None,
                      help="run each process on the CPU with this many devices")
  parser.add_argument("--timeout", type=float, default=24 * 3600,
                      help="seconds after which every process is killed (default a day)")
  parser.add_argument("--grace", type=float, default=150.0,
                      help="seconds the others have to stop after one fails (default 150: "
                      "more than ganjax.main's default 100 s heartbeat timeout)")
  parser.add_argument("command", nargs=argparse.REMAINDER,
                      help="the command, after --")
  args = parser.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command:
    parser.error("no command given (put it after --)")
  if args.processes < 1:
    parser.error(f"--processes must be at least 1, got {args.processes}")
  if args.cpu_devices is not None and args.cpu_devices < 1:
    parser.error(f"--cpu_devices must be at least 1, got {args.cpu_devices}")
  launch = Launch(command, args.processes, cpu_devices=args.cpu_devices)
  previous = {}

  def forward(number, frame):
    del frame
    launch.signal(number)
  for number in (signal.SIGTERM, signal.SIGINT):
    previous[number] = signal.signal(number, forward)
  try:
    ended = launch.wait(args.timeout, args.grace)
  finally:
    for number, handler in previous.items():
      signal.signal(number, handler)
  for end in ended:
    if end.returncode != 0:
      print(end.line(), file=sys.stderr)
  return exit_status(ended)


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
