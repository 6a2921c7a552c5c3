"""Several real processes on this machine, joined by JAX's distributed runtime (gloo collectives
over 127.0.0.1), against one process with as many devices: `python -m ganjax.launch` and
`ganjax.main --distributed`.

The runs of two processes with two CPU devices each are marked `multiprocess` (run them alone
with `pytest -m multiprocess`); the data-order and launcher tests are quick and unmarked.

Tolerances. Two processes and one process with four devices run the same per-device programs on
the same data and keys; what differs is how the gradients' all-reduce adds the four devices'
values (gloo between processes, XLA's own within one), so parameters agree to float32 rounding
accumulated over the steps: 2.9e-6 at most after the ring's 200 steps, 2.2e-7 after the
DCGAN's 4 (measured), against changes from the initial parameters of 0.045 and 0.57. The
tolerance, 1e-4, is far below what a different batch or a different key makes (the data-order
test below shows the batches themselves are identical).
"""
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from _trees import assert_same_leaves, config_from_command_line
from ganjax import checkpoint as checkpoint_lib
from ganjax import experiment as experiment_lib
from ganjax import launch as launch_lib
from ganjax import runner

pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")

REPO = pathlib.Path(__file__).resolve().parent.parent
RING = [f"--config={REPO / 'experiments' / 'ring.py'}:tiny"]
# Seconds a process may go without heartbeats before the others stop (default 100).
HEARTBEAT = 10
PARAMETER_TOLERANCE = 1e-4  # see the module docstring


# ----------------------------------------------------------------------------- helpers


def _launch(args, workdir, *, processes=2, cpu_devices=2, timeout=300, grace=60.0):
  """Runs ganjax.main on `processes` processes of `cpu_devices` devices; returns (how each
  ended, each one's output). Every process is gone when it returns."""
  command = [sys.executable, "-m", "ganjax.main", *args, f"--workdir={workdir}",
             "--distributed", f"--heartbeat_timeout={HEARTBEAT}"]
  with launch_lib.Launch(command, processes, cpu_devices=cpu_devices, cwd=REPO,
                         output=lambda index, line: None) as launch:
    ended = launch.wait(timeout, grace)
    outputs = [launch.output(index) for index in range(processes)]
  assert all(process.poll() is not None for process in launch.processes)
  return ended, outputs


def _launch_ok(args, workdir, **kwargs):
  ended, outputs = _launch(args, workdir, **kwargs)
  assert all(end.returncode == 0 for end in ended), "\n".join(
      [end.line() for end in ended] + [f"--- process {i}:\n{out[-3000:]}"
                                       for i, out in enumerate(outputs)])
  return outputs


def _state(workdir, step=None):
  """The state saved in `workdir`'s checkpoint `step` (the latest when None), restored on this
  process's first device."""
  with checkpoint_lib.Checkpointer(workdir, read_only=True) as checkpoints:
    config = experiment_lib.config_from_dict(checkpoints.read_config(step))
    abstract = experiment_lib.build(config, check_data=False).abstract_state(config.seed)
    state, _, _ = checkpoints.restore(abstract, step)
  return state


def _leaves(state):
  return [np.asarray(leaf) for leaf in jax.tree.leaves(state)]


def _assert_close(a, b, tolerance=PARAMETER_TOLERANCE):
  for x, y in zip(_leaves(a), _leaves(b), strict=True):
    if x.dtype.kind == "f":
      np.testing.assert_allclose(x, y, rtol=0, atol=tolerance)
    else:
      np.testing.assert_array_equal(x, y)


def _losses(workdir):
  lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return {line["step"]: (line["d_loss"], line["g_loss"]) for line in lines if "d_loss" in line}


def _write_numbered_folder(root, count, side=8):
  """`count` greyscale images, image i of constant value 5 i (so that it can be told from the
  others after the [-1, 1] scaling), under two labels."""
  from PIL import Image
  for index in range(count):
    path = root / "train" / str(index % 2) / f"{index:03d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((side, side), 5 * index, np.uint8)).save(path)


def _numbers(batch):
  """The numbers of the images of a (n_critic, batch, H, W, 1) batch of `_write_numbered_folder`."""
  return np.rint((batch[..., 0, 0, 0] + 1.0) * 127.5 / 5).astype(int)


# ----------------------------------------------------------------------------- the data order


def _global_batches(folder, *, processes, shards, count, start_batch=0, batch_size=8):
  """The first `count` global batches (image numbers, (n_critic, batch)) that `processes`
  processes read together, each process's part side by side."""
  from ganjax.data import images
  data = {"name": "folder", "folder": str(folder), "channels": 1, "image_size": 8,
          "shuffle_buffer": 16, "shards": shards}
  iterators = [images.make_iterator(data, batch_size=batch_size, n_critic=2, seed=3,
                                    start_batch=start_batch, process_index=p,
                                    process_count=processes) for p in range(processes)]
  return [np.concatenate([_numbers(next(it)) for it in iterators], axis=1)
          for _ in range(count)]


def test_data_shards_give_every_process_count_the_same_disjoint_global_batches(tmp_path):
  folder = tmp_path / "numbers"
  _write_numbered_folder(folder, 48)
  # 48 images, 16 per global batch (2 critic slices of 8): 3 batches per epoch.
  one = _global_batches(folder, processes=1, shards=4, count=9)
  for processes in (2, 4):
    many = _global_batches(folder, processes=processes, shards=4, count=9)
    for a, b in zip(one, many):
      np.testing.assert_array_equal(a, b)
  # Each process's part: disjoint from the others', and together all 48 images, every epoch.
  from ganjax.data import images
  data = {"name": "folder", "folder": str(folder), "channels": 1, "image_size": 8,
          "shuffle_buffer": 16, "shards": 4}
  parts = [[_numbers(next(it)).ravel() for _ in range(9)] for it in
           (images.make_iterator(data, batch_size=8, n_critic=2, seed=3, process_index=p,
                                 process_count=2) for p in range(2))]
  for epoch in range(3):
    seen = [np.concatenate(part[3 * epoch:3 * epoch + 3]) for part in parts]
    assert not set(seen[0]) & set(seen[1])
    assert sorted(np.concatenate(seen)) == list(range(48))
  # A resumed reader (after 4 batches) reads what an uninterrupted one does, on 2 processes.
  resumed = _global_batches(folder, processes=2, shards=4, count=5, start_batch=4)
  for a, b in zip(one[4:], resumed):
    np.testing.assert_array_equal(a, b)
  # One shard per process (the default) is another order on another number of processes.
  default_one = _global_batches(folder, processes=1, shards=0, count=3)
  default_two = _global_batches(folder, processes=2, shards=0, count=3)
  assert any(not np.array_equal(a, b) for a, b in zip(default_one, default_two))


def test_data_shards_are_checked_with_one_line(tmp_path):
  from ganjax.data import images
  from ganjax.errors import ConfigError
  data = {"name": "folder", "folder": str(tmp_path), "channels": 1, "image_size": 8,
          "shards": 3}
  with pytest.raises(ConfigError, match=r"^data.shards=3 is not a multiple of the 2 processes$"):
    images.num_shards(data, 2)
  with pytest.raises(ConfigError, match="non-negative integer"):
    images.num_shards({**data, "shards": -1}, 1)
  config = config_from_command_line(f"--config={REPO / 'experiments' / 'mnist_dcgan.py'}:tiny",
                   "--config.data.shards=3")
  with pytest.raises(runner.RunError, match=r"batch_size 8 is not a multiple of the 3 data "):
    experiment_lib.build(config, check_data=False)


# ----------------------------------------------------------------------------- the launcher


def test_launcher_kills_every_process_it_started_at_its_timeout(tmp_path):
  # Each process starts a grandchild that would outlive it; both go at the timeout.
  marker = tmp_path / "pids"
  code = ("import os, subprocess, sys, time; "
          "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
          f"open({str(marker)!r} + os.environ['GANJAX_PROCESS_ID'], 'w').write(str(child.pid)); "
          "time.sleep(60)")
  started = time.monotonic()
  with launch_lib.Launch([sys.executable, "-c", code], 2, output=lambda i, line: None) as launch:
    while not all((tmp_path / f"pids{i}").exists() for i in range(2)):
      assert time.monotonic() - started < 30
      time.sleep(0.1)
    ended = launch.wait(timeout=3)
  assert time.monotonic() - started < 30
  assert [(e.returncode, e.killed_by_launcher) for e in ended] == [(-9, True)] * 2
  assert ended[0].line().startswith("process 0: killed by SIGKILL (by the launcher) after ")
  time.sleep(0.5)
  for i in range(2):
    pid = int((tmp_path / f"pids{i}").read_text())
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                           text=True).stdout.strip()
    assert state in ("", "Z"), f"grandchild {pid} still runs ({state})"
  assert launch_lib.exit_status(ended) == 128 + signal.SIGKILL


def test_launcher_gives_each_process_its_index_and_the_same_coordinator():
  code = ("import os; print(os.environ['GANJAX_PROCESS_ID'], os.environ['GANJAX_NUM_PROCESSES'], "
          "os.environ['JAX_COORDINATOR_ADDRESS'], os.environ['XLA_FLAGS'])")
  with launch_lib.Launch([sys.executable, "-c", code], 3, cpu_devices=2,
                         output=lambda i, line: None) as launch:
    ended = launch.wait(timeout=60)
    outputs = [launch.output(i).split() for i in range(3)]
  assert launch_lib.exit_status(ended) == 0
  assert [out[:2] for out in outputs] == [["0", "3"], ["1", "3"], ["2", "3"]]
  assert len({out[2] for out in outputs}) == 1 and outputs[0][2].startswith("127.0.0.1:")
  assert all(out[-1] == "--xla_force_host_platform_device_count=2" for out in outputs)


def test_bad_process_settings_are_one_line_errors(monkeypatch, tmp_path):
  from ganjax import distributed
  with pytest.raises(distributed.DistributedError, match=r"^process id 2 is not in \[0, 2\)$"):
    distributed.initialize("127.0.0.1:1", 2, 2)
  monkeypatch.setenv("GANJAX_NUM_PROCESSES", "two")
  with pytest.raises(distributed.DistributedError,
                     match=r"^GANJAX_NUM_PROCESSES='two' is not an integer$"):
    distributed.initialize("127.0.0.1:1")
  monkeypatch.delenv("GANJAX_NUM_PROCESSES")
  # The process flags without --distributed: one line, before anything runs.
  result = subprocess.run([sys.executable, "-m", "ganjax.main", *RING,
                           f"--workdir={tmp_path / 'run'}", "--num_processes=2"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "error: --coordinator_address, --num_processes, --process_id and --heartbeat_timeout "
      "need --distributed")
  assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- real processes


@pytest.fixture(scope="module")
def ring_runs(tmp_path_factory):
  """The ring (:tiny, pmap, 200 steps) on 1 process x 4 devices and on 2 processes x 2 devices,
  and the 2-process run stopped at its step-100 checkpoint and resumed."""
  root = tmp_path_factory.mktemp("ring")
  args = [*RING, "--config.train.parallel=pmap"]
  runner.train_and_evaluate(config_from_command_line(*args), root / "one")
  outputs = _launch_ok(args, root / "two")
  _launch_ok([*args, "--config.train.steps=100"], root / "two_resumed")
  shutil.copytree(root / "two_resumed", root / "two_at_100")
  _launch_ok(args, root / "two_resumed")
  return root, outputs


@pytest.mark.multiprocess
def test_two_processes_train_the_ring_as_one_process_with_four_devices(ring_runs):
  root, outputs = ring_runs
  one, two = _losses(root / "one"), _losses(root / "two")
  assert sorted(one) == sorted(two) == [50, 100, 150, 200]
  for step in one:
    np.testing.assert_allclose(one[step], two[step], rtol=1e-5)  # float32 means of the losses
  _assert_close(_state(root / "two"), _state(root / "one"))
  # Only process 0 writes: one line per logged step, one event file, the pictures; process 1
  # prints no progress line.
  steps = [json.loads(line)["step"] for line in
           (root / "two" / "metrics.jsonl").read_text().splitlines()]
  assert steps == sorted(set(steps))
  assert len(list((root / "two").glob("events.out.tfevents.*"))) == 1
  def files(workdir):
    return {"events" if p.name.startswith("events.") else p.name for p in workdir.iterdir()}
  assert files(root / "two") == files(root / "one")
  assert "step 200/200" in outputs[0] and "step " not in outputs[1]
  assert "summary:" in outputs[0] and "summary:" not in outputs[1]


@pytest.mark.multiprocess
def test_four_processes_of_one_device_train_the_ring_as_one_process(ring_runs, tmp_path):
  root, _ = ring_runs
  _launch_ok([*RING, "--config.train.parallel=pmap"], tmp_path / "four", processes=4,
             cpu_devices=1)
  _assert_close(_state(tmp_path / "four"), _state(root / "one"))


@pytest.mark.multiprocess
def test_two_process_checkpoints_resume_bit_for_bit_and_restore_on_one_process(ring_runs,
                                                                              tmp_path):
  root, _ = ring_runs
  # Stopped at 100 and resumed on 2 processes: the uninterrupted 2-process run, bit for bit.
  assert_same_leaves(_state(root / "two_resumed"), _state(root / "two"))
  # Written by 2 processes, resumed on 1 process with 4 devices: the 1-process run.
  shutil.copytree(root / "two_at_100", tmp_path / "to_one")
  runner.train_and_evaluate(config_from_command_line(*RING, "--config.train.parallel=pmap"),
                            tmp_path / "to_one")
  _assert_close(_state(tmp_path / "to_one"), _state(root / "one"))
  # Written by 1 process, resumed on 2: the same.
  runner.train_and_evaluate(config_from_command_line(*RING, "--config.train.parallel=pmap",
                                    "--config.train.steps=100"), tmp_path / "from_one")
  _launch_ok([*RING, "--config.train.parallel=pmap"], tmp_path / "from_one")
  _assert_close(_state(tmp_path / "from_one"), _state(root / "one"))


@pytest.mark.multiprocess
def test_two_processes_shard_map_matches_one_process_across_a_resume(ring_runs, tmp_path):
  root, _ = ring_runs
  # Stopped at step 100 and resumed: the state is restored and placed on both processes' mesh.
  _launch_ok([*RING, "--config.train.parallel=shard_map", "--config.train.steps=100"],
             tmp_path / "two")
  _launch_ok([*RING, "--config.train.parallel=shard_map"], tmp_path / "two")
  _assert_close(_state(tmp_path / "two"), _state(root / "one"))


@pytest.mark.multiprocess
def test_two_processes_train_and_evaluate_an_image_folder_as_one_process(tmp_path):
  _write_numbered_folder(tmp_path / "numbers", 48)
  # Evaluated at step 4 and at the end (6, in the summary) by the run's classifier features
  # (trained by process 0, read by both), 24 generated images split between the processes, the
  # best checkpoint kept.
  args = [f"--config={REPO / 'experiments' / 'mnist_dcgan.py'}:tiny",
          "--config.data.name=folder", f"--config.data.folder={tmp_path / 'numbers'}",
          "--config.data.channels=1", "--config.data.shards=2", "--config.train.parallel=pmap",
          "--config.train.steps=6", "--config.eval.metrics=fid,kid,precision_recall",
          "--config.eval.every=4", "--config.eval.best=fid", "--config.eval.num_samples=24"]
  runner.train_and_evaluate(config_from_command_line(*args), tmp_path / "one")
  outputs = _launch_ok(args, tmp_path / "two")
  one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
  assert sorted(one) == sorted(two) == [2, 4, 6]
  for step in one:
    np.testing.assert_allclose(one[step], two[step], rtol=1e-5)
  _assert_close(_state(tmp_path / "two"), _state(tmp_path / "one"))
  summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("one", "two")]
  for name in ("fid", "kid", "precision", "recall"):  # float32 features, float64 measures
    np.testing.assert_allclose(summaries[1][name], summaries[0][name], rtol=1e-4, atol=1e-6)
  assert summaries[1]["fid"] > 0 and summaries[1]["best"]["step"] == summaries[0]["best"]["step"]
  assert "training the feature classifier" in outputs[0]
  assert "feature classifier" not in outputs[1]
  _assert_close(_state(tmp_path / "two" / "best"), _state(tmp_path / "one" / "best"))


def _long_ring():
  return [*RING, "--config.train.parallel=pmap", "--config.train.steps=1000000",
          "--config.train.log_every=100", "--config.train.checkpoint_every=500000",
          "--config.train.sample_every=0", "--config.eval.every=0"]


def _launch_and_wait_for_training(workdir):
  command = [sys.executable, "-m", "ganjax.main", *_long_ring(), f"--workdir={workdir}",
             "--distributed", f"--heartbeat_timeout={HEARTBEAT}"]
  launch = launch_lib.Launch(command, 2, cpu_devices=2, cwd=REPO, output=lambda i, line: None)
  deadline = time.monotonic() + 120
  while "step 200/" not in launch.output(0):
    if time.monotonic() > deadline or any(p.poll() is not None for p in launch.processes):
      launch.close()
      pytest.fail("the run did not reach step 200:\n" + launch.output(0)[-3000:])
    time.sleep(0.2)
  return launch


@pytest.mark.multiprocess
def test_sigterm_to_one_process_makes_both_save_the_same_step_and_stop(tmp_path):
  with _launch_and_wait_for_training(tmp_path) as launch:
    launch.signal(signal.SIGTERM, index=1)
    ended = launch.wait(timeout=120, grace=60)
    outputs = [launch.output(i) for i in range(2)]
  assert [(e.returncode, e.killed_by_launcher) for e in ended] == [(128 + 15, False)] * 2, outputs
  stopped = [[line for line in out.splitlines() if line.startswith("stopped: SIGTERM at step ")]
             for out in outputs]
  assert all(len(lines) == 1 for lines in stopped), outputs
  step = int(stopped[0][0].split("step ")[1].split(":")[0])
  assert stopped[0] == stopped[1] and step >= 200
  with checkpoint_lib.Checkpointer(tmp_path, read_only=True) as checkpoints:
    assert checkpoints.all_steps() == [step]
  assert int(_state(tmp_path).step) == step


@pytest.mark.multiprocess
@pytest.mark.parametrize("killed", [1, 0])
def test_a_killed_process_stops_the_other_within_the_heartbeat_timeout(tmp_path, killed):
  survivor_index = 1 - killed
  with _launch_and_wait_for_training(tmp_path) as launch:
    killed_at = time.monotonic()
    launch.signal(signal.SIGKILL, index=killed)
    ended = launch.wait(timeout=240, grace=120)
    output = launch.output(survivor_index)
  survivor = ended[survivor_index]
  assert not survivor.killed_by_launcher and survivor.returncode != 0, output[-3000:]
  # Measured: 10.9 s after the kill with a 10 s timeout (process 1 killed), 0.2 s (process 0,
  # the coordinator, killed); the bound leaves room for a loaded machine.
  assert survivor.seconds - (killed_at - launch.started) < HEARTBEAT + 30
  if killed == 1:  # the watchdog's one line, and the exit status of an error
    assert survivor.returncode == 1
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: process 0: process 1 has not answered for {HEARTBEAT} s (a "
                      "killed process or a lost host); stopping"], output[-3000:]
  else:  # the coordinator is gone: JAX's runtime ends the process at once (or the watchdog)
    assert ("detected fatal errors" in output or
            "error: process 1: lost the coordinator" in output), output[-3000:]
