"""One run per workdir (`ganjax.workdir`): a second process is refused naming the holder and
changes nothing; the lock of a run killed with SIGKILL does not block the resume; a run
releases the lock when it ends; without flock, a lock file whose process is gone is taken over."""
import errno
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys

import pytest

from _subprocess import command_env
from ganjax import runner
from ganjax import workdir as workdir_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
HOLD = """
import sys, time
from ganjax import workdir
with workdir.hold(sys.argv[1]):
  print("held", flush=True)
  time.sleep(600)
"""


def _ring_config():
  import importlib.util
  spec = importlib.util.spec_from_file_location("ring", REPO / "experiments" / "ring.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("tiny")
  config.train.steps = 100
  return config


@pytest.fixture
def holder(tmp_path):
  """A process holding tmp_path/run, killed (SIGKILL) at the end of the test if still alive."""
  process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")], cwd=REPO,
                             env=command_env(), stdout=subprocess.PIPE, text=True)
  try:
    assert process.stdout.readline().strip() == "held"
    yield process
  finally:
    process.kill()
    process.wait(timeout=60)


def _listing(folder):
  return {path.relative_to(folder): path.read_bytes() for path in folder.rglob("*")
          if path.is_file()}


def test_second_run_is_refused_naming_the_holder_then_resumes_after_a_sigkill(tmp_path, holder):
  workdir = tmp_path / "run"
  before = _listing(workdir)
  assert list(before) == [pathlib.Path(workdir_lib.LOCK_FILE)]
  record = json.loads(before[pathlib.Path(workdir_lib.LOCK_FILE)])
  assert record["pid"] == holder.pid and record["host"] == socket.gethostname()
  with pytest.raises(runner.RunError) as refused:
    runner.train_and_evaluate(_ring_config(), workdir)
  message = str(refused.value)
  assert f"is in use by pid {holder.pid} on host {socket.gethostname()}" in message
  assert "\n" not in message and "nothing in the workdir was changed" in message
  assert _listing(workdir) == before

  # SIGKILL leaves the lock file behind; the kernel has released the lock, so a run starts.
  holder.send_signal(signal.SIGKILL)
  holder.wait(timeout=60)
  assert (workdir / workdir_lib.LOCK_FILE).exists()
  summary = runner.train_and_evaluate(_ring_config(), workdir)
  assert summary["step"] == 100
  assert not (workdir / workdir_lib.LOCK_FILE).exists()  # released at the end of the run


def test_a_run_holds_its_workdir_while_it_runs(tmp_path, monkeypatch):
  # A second start from inside the run (as a second process would see it, the lock is held).
  from ganjax.programs import gan
  seen = []
  original = gan.run

  def train_and_try_again(config, workdir):
    with pytest.raises(workdir_lib.WorkdirInUse, match=f"pid {os.getpid()} "):
      with workdir_lib.hold(workdir):
        pass
    seen.append(json.loads((workdir / workdir_lib.LOCK_FILE).read_text())["pid"])
    return original(config, workdir)

  monkeypatch.setattr(gan, "run", train_and_try_again)
  runner.train_and_evaluate(_ring_config(), tmp_path / "run")
  assert seen == [os.getpid()]


def test_a_refused_bad_config_leaves_no_new_workdir(tmp_path):
  config = _ring_config()
  config.loss = "hinj"
  with pytest.raises(runner.RunError, match="hinj"):
    runner.train_and_evaluate(config, tmp_path / "new")
  assert not (tmp_path / "new").exists()


@pytest.fixture
def no_flock(monkeypatch):
  """A file system without flock (as some network file systems are)."""
  import fcntl

  def unsupported(fd, operation):
    raise OSError(errno.ENOLCK, "No locks available")

  monkeypatch.setattr(fcntl, "flock", unsupported)


def _dead_pid():
  process = subprocess.Popen([sys.executable, "-c", "pass"])
  process.wait(timeout=60)
  return process.pid


def test_without_flock_a_lock_of_a_process_gone_from_this_host_is_taken_over(tmp_path, no_flock,
                                                                            capsys):
  lock = tmp_path / workdir_lib.LOCK_FILE
  lock.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid()}))
  with workdir_lib.hold(tmp_path):
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    # While held, the file's existence refuses a second holder.
    with pytest.raises(workdir_lib.WorkdirInUse, match=f"pid {os.getpid()} "):
      with workdir_lib.hold(tmp_path):
        pass
  assert not lock.exists()
  assert "taking over" in capsys.readouterr().out


def test_without_flock_a_live_or_remote_holder_is_refused(tmp_path, no_flock, holder):
  lock = tmp_path / workdir_lib.LOCK_FILE
  for record in ({"host": socket.gethostname(), "pid": holder.pid},  # alive here
                 {"host": "another-host", "pid": _dead_pid()}):       # unknowable from here
    lock.write_text(json.dumps(record))
    with pytest.raises(workdir_lib.WorkdirInUse, match=f"pid {record['pid']} on host "
                                                       f"{record['host']}"):
      with workdir_lib.hold(tmp_path):
        pass
    assert json.loads(lock.read_text()) == record


def test_a_reused_pid_does_not_keep_a_stale_lock(tmp_path, no_flock):
  # The pid is alive (this process) but started at another time than the record says.
  lock = tmp_path / workdir_lib.LOCK_FILE
  lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                              "process_start": "1"}))
  if workdir_lib._process_start(os.getpid()) is None:
    pytest.fail("/proc/<pid>/stat is not readable here: the start time cannot be checked")
  with workdir_lib.hold(tmp_path):
    assert json.loads(lock.read_text())["process_start"] != "1"
