"""Several processes (hosts) in one run: JAX's distributed runtime, and what a run needs of it.

One process runs on each host (or, for a test, several on one machine); `initialize` joins them
with `jax.distributed.initialize`, after which `jax.devices()` lists every process's devices and
the mapped updates (`ganjax.train.parallelize`: 'pmap' or 'shard_map') span them all. Where the
processes find each other:

  * on a recognised cluster (SLURM, a Cloud TPU pod slice, Open MPI, Kubernetes with the
    `kubernetes` package) JAX reads it from the environment: nothing to pass;
  * elsewhere, the coordinator's address (process 0's host and a free port), the number of
    processes and this process's index are passed, as arguments here or as the environment
    variables JAX_COORDINATOR_ADDRESS, GANJAX_NUM_PROCESSES and GANJAX_PROCESS_ID (what
    `python -m ganjax.launch` sets for processes on one machine).

On the CPU backend the processes' collectives go through gloo (TCP), set here before the backend
starts.

The rest of this module is what a multi-process run does differently, each a no-op on one
process:

  * `agree(value)`: the largest of the processes' values, so that a decision taken at a step
    boundary (stop after a preemption signal that reached one host) is taken by all at the same
    step, and `barrier(name)`;
  * `global_copy(tree)`, `global_target(abstract)`, `local_copy(tree)`: a checkpoint holds the
    state as global arrays replicated over one device of each process (Orbax saves only global
    arrays in a multi-process run, and writes each replicated array once); the training and the
    evaluation use each process's own copy.

A process that dies (a killed job, a lost host) must not leave the others waiting in a
collective. `Watchdog` (started by `initialize`) has every process write a heartbeat to the
coordinator's key-value store every second and read the others'; when one has not changed for
`heartbeat_timeout` seconds, the process prints one line naming it and exits with status 1.
JAX's own runtime is the backstop, at twice that timeout, and is what ends the others at once
when process 0 (which holds the coordinator) dies: its fatal-error line says that the service
is gone. A process that ends normally marks its heartbeat done, so that the others, still
writing their summaries, do not count it as dead.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import jax
import numpy as np

NUM_PROCESSES_ENV = "GANJAX_NUM_PROCESSES"
PROCESS_ID_ENV = "GANJAX_PROCESS_ID"
COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"  # read by JAX itself too
DEFAULT_HEARTBEAT_TIMEOUT = 100  # seconds (JAX's runtime gets twice this, as the backstop)


class DistributedError(Exception):
  """The processes could not be joined; the message is one line saying why."""


def _int_from_env(name: str) -> int | None:
  value = os.environ.get(name)
  if value in (None, ""):
    return None
  try:
    return int(value)
  except ValueError:
    raise DistributedError(f"{name}={value!r} is not an integer") from None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None,
               heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT) -> None:
  """Joins this process to the others (`jax.distributed.initialize`); call it before anything
  uses a device.

  Args:
    coordinator_address: 'host:port' of process 0's coordinator (default: the environment's
      JAX_COORDINATOR_ADDRESS, else what JAX detects on a recognised cluster).
    num_processes, process_id: the number of processes and this one's index (default: the
      environment's GANJAX_NUM_PROCESSES and GANJAX_PROCESS_ID, else JAX's detection).
    heartbeat_timeout: seconds without a heartbeat after which a process counts as dead and the
      others are stopped.

  Raises:
    DistributedError: the arguments are inconsistent, or the processes could not be joined.
  """
  coordinator_address = coordinator_address or os.environ.get(COORDINATOR_ENV) or None
  if num_processes is None:
    num_processes = _int_from_env(NUM_PROCESSES_ENV)
  if process_id is None:
    process_id = _int_from_env(PROCESS_ID_ENV)
  if num_processes is not None and num_processes < 1:
    raise DistributedError(f"the number of processes must be at least 1, got {num_processes}")
  if (num_processes is not None and process_id is not None
      and not 0 <= process_id < num_processes):
    raise DistributedError(f"process id {process_id} is not in [0, {num_processes})")
  if heartbeat_timeout < 1:
    raise DistributedError(f"the heartbeat timeout must be at least 1 s, got {heartbeat_timeout}")
  # Collectives between processes on the CPU backend (ignored by the others).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               heartbeat_timeout_seconds=2 * int(heartbeat_timeout))
  except (RuntimeError, ValueError) as error:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    hint = ""
    if coordinator_address is None or num_processes is None or process_id is None:
      hint = (" (outside SLURM, a TPU pod or Open MPI, give --coordinator_address, "
              "--num_processes and --process_id, or run under python -m ganjax.launch)")
    raise DistributedError(f"jax.distributed.initialize failed: {first}{hint}") from None
  if jax.process_count() > 1:
    global _watchdog
    _watchdog = Watchdog(heartbeat_timeout)
    _watchdog.start()


_watchdog: "Watchdog | None" = None
_DONE = "done"


def finish() -> None:
  """Marks this process's heartbeat done, so that the others stop watching it: call it when the
  process ends together with the others (the run is complete, or all were preempted at the
  same step), not when it fails alone. A no-op without `initialize`."""
  if _watchdog is not None:
    _watchdog.finish()


class Watchdog:
  """Heartbeats through the coordinator's key-value store (module docstring)."""

  def __init__(self, timeout: float, interval: float = 1.0):
    from jax._src import distributed as jax_distributed  # the runtime's client
    self.client = jax_distributed.global_state.client
    self.timeout, self.interval = float(timeout), interval
    self.me, self.count = jax.process_index(), jax.process_count()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, name="ganjax-watchdog", daemon=True)

  def _key(self, process: int) -> str:
    return f"ganjax/heartbeat/{process}"

  def start(self) -> None:
    self._thread.start()

  def finish(self) -> None:
    self._stop.set()
    self._thread.join(timeout=10)
    try:
      self.client.key_value_set(self._key(self.me), _DONE, allow_overwrite=True)
    except Exception:  # pylint: disable=broad-except
      pass  # the coordinator is gone: nobody is watching

  def _value(self, process: int) -> str | None:
    try:
      return self.client.key_value_try_get(self._key(process))
    except Exception as error:  # pylint: disable=broad-except
      if "NOT_FOUND" in str(error) or "not found" in str(error).lower():
        return None  # not started yet
      raise

  def _run(self) -> None:
    started = time.monotonic()
    seen = {p: (None, started) for p in range(self.count) if p != self.me}
    beat = 0
    while not self._stop.is_set():
      beat += 1
      try:
        self.client.key_value_set(self._key(self.me), str(beat), allow_overwrite=True)
        now = time.monotonic()
        for process, (value, since) in list(seen.items()):
          current = self._value(process)
          if current == _DONE:
            del seen[process]
          elif current != value:
            seen[process] = (current, now)
          elif now - since > self.timeout and not self._stop.is_set():
            self._exit(f"process {process} has not answered for {self.timeout:g} s (a killed "
                       "process or a lost host); stopping")
      except Exception as error:  # pylint: disable=broad-except
        if self._stop.is_set():
          return
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        self._exit(f"lost the coordinator of the processes (process 0): {first}")
      self._stop.wait(self.interval)

  def _exit(self, message: str) -> None:
    print(f"error: process {self.me}: {message}", file=sys.stderr, flush=True)
    os._exit(1)  # pylint: disable=protected-access


def agree(value: int) -> int:
  """The largest of every process's `value` (a non-negative int); `value` on one process. A
  collective: every process must call it at the same point."""
  if jax.process_count() == 1:
    return int(value)
  from jax.experimental import multihost_utils
  return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def barrier(name: str) -> None:
  """Waits until every process has reached the barrier `name`; nothing on one process."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def _replicated_sharding() -> jax.sharding.NamedSharding:
  """A sharding that replicates an array over the first device of every process."""
  devices = [min(jax.local_devices(process_index=p), key=lambda d: d.id)
             for p in range(jax.process_count())]
  return jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), ("process",)),
                                    jax.sharding.PartitionSpec())


def _first_local_device():
  return min(jax.local_devices(), key=lambda d: d.id)


def _local(leaf: Any) -> Any:
  """This process's copy of a replicated global array; anything else unchanged."""
  if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
    return leaf.addressable_data(0)
  return leaf


def local_copy(tree: Any) -> Any:
  """Each array of `tree` as this process's copy, on one of its devices: the inverse of
  `global_copy` (and the local part of a replicated global array). Unchanged on one process."""
  if jax.process_count() == 1:
    return tree
  return jax.tree.map(_local, tree)


def global_copy(tree: Any) -> Any:
  """Each array of `tree` (this process's copy, equal on every process) as one global array
  replicated over the first device of every process: what Orbax saves in a multi-process run.
  Unchanged on one process."""
  if jax.process_count() == 1:
    return tree
  sharding = _replicated_sharding()
  device = _first_local_device()

  def to_global(leaf):
    if not isinstance(leaf, jax.Array):
      return leaf
    local = jax.device_put(_local(leaf).addressable_data(0), device)
    return jax.make_array_from_single_device_arrays(leaf.shape, sharding, [local])
  return jax.tree.map(to_global, tree)


def global_target(abstract: Any) -> Any:
  """`abstract` (shapes and dtypes, `jax.eval_shape`'s output) with the sharding of
  `global_copy`: the target a multi-process run restores a checkpoint into. Unchanged on one
  process."""
  if jax.process_count() == 1:
    return abstract
  sharding = _replicated_sharding()

  def target(leaf):
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
      return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)
    return leaf
  return jax.tree.map(target, abstract)


def share(count: int) -> range:
  """This process's consecutive share of `count` items (batches of an evaluation): process p of
  P takes items p * ceil(count / P) onwards; all of them on one process."""
  per = -(-count // jax.process_count())
  start = jax.process_index() * per
  return range(min(start, count), min(start + per, count))


def gather_rows(rows: np.ndarray | None, count: int) -> np.ndarray | None:
  """Every process's `rows` (the rows of its `share` of `count` rows, in order) concatenated in
  process order, on every process: the whole (count, ...) array. A collective (every process
  calls it at the same point); `rows` unchanged on one process. None stays None."""
  if rows is None or jax.process_count() == 1:
    return rows
  from jax.experimental import multihost_utils
  per = -(-count // jax.process_count())
  padded = np.zeros((per, *rows.shape[1:]), rows.dtype)
  padded[:len(rows)] = rows
  gathered = np.asarray(multihost_utils.process_allgather(padded, tiled=False))
  return gathered.reshape(-1, *rows.shape[1:])[:count]
