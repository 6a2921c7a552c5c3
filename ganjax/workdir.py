"""One run per workdir: a lock file that a run holds from before it writes anything until it
exits.

    with workdir.hold(path):      # raises WorkdirInUse naming the holder
      ...                          # train, write checkpoints and logs

The lock is `<workdir>/run.lock`, a JSON object naming the holder (host, pid, start time and
command line). It is held with `fcntl.flock`, which the kernel releases when the holding process
dies however it dies, so the lock of a run killed with SIGKILL does not block the resume; the
file is removed when the holder exits normally. Where the file system does not support flock
(some network file systems), the file's existence is the lock, and a file left by a process that
is gone from this host (its pid absent, or reused by a later process) is taken over.

On several processes (a multi-host run), process 0 takes the lock for the run and the outcome is
broadcast, so that every process stops when it is refused.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import pathlib
import socket
import sys
from typing import Any, Iterator

LOCK_FILE = "run.lock"


class WorkdirInUse(RuntimeError):
  """Another process holds the workdir (the message names it)."""


def _process_start(pid: int) -> str | None:
  """The start time of process `pid` in clock ticks since boot (Linux), or None if unknown:
  together with the pid it names one process, even after its pid is reused."""
  try:
    with open(f"/proc/{pid}/stat") as file:
      # The command name (field 2) may hold spaces; the fields after its ')' are plain.
      return file.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _holder_record() -> dict[str, Any]:
  return {"host": socket.gethostname(), "pid": os.getpid(),
          "process_start": _process_start(os.getpid()),
          "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
          "command": " ".join(sys.argv)}


def _read_holder(path: pathlib.Path) -> dict[str, Any]:
  try:
    holder = json.loads(path.read_text())
    return holder if isinstance(holder, dict) else {}
  except (OSError, ValueError):
    return {}


def describe(holder: dict[str, Any]) -> str:
  """'pid 123 on host h (started ..., `command`)', from a lock file's record."""
  if not holder:
    return "another process (its lock file is empty or unreadable)"
  text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
  details = [holder[key] for key in ("started",) if holder.get(key)]
  if holder.get("command"):
    details.append(f"`{holder['command']}`")
  return text + (f" (started {', '.join(details)})" if details else "")


def _gone(holder: dict[str, Any]) -> bool:
  """Whether the process a lock record names has ended (known only on its own host)."""
  if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
    return False
  pid = holder["pid"]
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  except PermissionError:
    pass  # alive, another user's
  start = holder.get("process_start")
  return start is not None and _process_start(pid) not in (None, start)


def _refused(path: pathlib.Path, holder: dict[str, Any]) -> WorkdirInUse:
  return WorkdirInUse(f"workdir {path.parent} is in use by {describe(holder)}; wait for it to "
                      f"finish or stop it (nothing in the workdir was changed; if no such run is "
                      f"active, delete {path})")


def _write(fd: int, record: dict[str, Any]) -> None:
  os.ftruncate(fd, 0)
  os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
  os.fsync(fd)


def _acquire_flock(path: pathlib.Path) -> int:
  """Opens and flocks the lock file; returns its descriptor.

  Raises:
    WorkdirInUse: another process holds it.
    OSError: the file system does not support flock (errno ENOLCK, EOPNOTSUPP, ...).
  """
  import fcntl
  while True:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(fd)
      raise _refused(path, _read_holder(path)) from None
    except OSError:
      os.close(fd)
      raise
    try:
      same_file = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
      same_file = False
    if same_file:
      return fd
    # The previous holder removed the file between our open and our flock: lock the new one.
    os.close(fd)


def _acquire_exclusive(path: pathlib.Path) -> int:
  """The lock as the file's existence (no flock): created exclusively, or taken over from a
  holder that is gone from this host."""
  for _ in range(2):
    try:
      return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
      holder = _read_holder(path)
      if not _gone(holder):
        raise _refused(path, holder) from None
      print(f"taking over {path} from {describe(holder)}, which has ended", flush=True)
      with contextlib.suppress(FileNotFoundError):
        path.unlink()
  raise _refused(path, _read_holder(path))


_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


@contextlib.contextmanager
def _hold_here(workdir: pathlib.Path) -> Iterator[None]:
  created = not workdir.exists()
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / LOCK_FILE
  try:
    fd = _acquire_flock(path)
  except OSError as error:
    if error.errno not in _UNSUPPORTED:
      raise
    fd = _acquire_exclusive(path)
  try:
    _write(fd, _holder_record())
    yield
  finally:
    with contextlib.suppress(FileNotFoundError):
      path.unlink()
    os.close(fd)
    if created:
      # A run that stopped before writing anything (a bad config) leaves no empty workdir.
      with contextlib.suppress(OSError):
        workdir.rmdir()


@contextlib.contextmanager
def hold(workdir: str | os.PathLike) -> Iterator[None]:
  """Holds `workdir` for one run (created if needed) until the block exits.

  A workdir this call created is removed again if it is empty at the end.

  Raises:
    WorkdirInUse: another process holds it; nothing in the workdir was changed.
    NotADirectoryError: `workdir` is a file.
  """
  import jax
  workdir = pathlib.Path(workdir)
  if workdir.exists() and not workdir.is_dir():
    raise NotADirectoryError(f"workdir {workdir} is a file")
  if jax.process_count() == 1:
    with _hold_here(workdir):
      yield
    return
  from jax.experimental import multihost_utils
  import numpy as np
  with contextlib.ExitStack() as stack:
    error = None
    if jax.process_index() == 0:
      try:
        stack.enter_context(_hold_here(workdir))
      except WorkdirInUse as refused:
        error = refused
    held = multihost_utils.broadcast_one_to_all(np.int32(error is None))
    if error is not None:
      raise error
    if not int(held):
      raise WorkdirInUse(f"workdir {workdir} is in use by another run (process 0 was refused)")
    yield
