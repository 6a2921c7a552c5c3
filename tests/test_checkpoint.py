"""Checkpoints: exact round trips of a real GANState, retention, mismatches, damage, SIGKILL."""
import functools
import pathlib
import re
import shutil
import signal
import sys
import textwrap
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax import models
from ganjax import train
from ganjax.checkpoint import CheckpointError, Checkpointer
from ganjax.data import toy

from _subprocess import Child

CONFIG = {"experiment": "ring", "model": {"hidden": [16]}, "lr": 1e-3, "tags": ["a", "b"],
          "ema": None}
DATA = {"epoch": 3, "position": 17}
TMP_MARKER = ".orbax-checkpoint-tmp"


# Shared optimizer objects: states built from the same modules, optimizers and spec have equal
# tree definitions, so jitted steps compiled for one serve the others (compiles are the slow part).
G_TX, D_TX = optax.adam(1e-3), optax.adam(1e-3)


@functools.lru_cache(maxsize=None)
def setup(width=16, ema_decay=0.9, latent_dim=4):
  generator = models.get_generator("mlp", output_dim=2, hidden=(width,), batch_norm=True)
  discriminator = models.get_discriminator("mlp", hidden=(width,))
  spec = train.GANSpec(latent_dim=latent_dim, batch_size=8, ema_decay=ema_decay,
                       data=toy.ring())
  return generator, discriminator, G_TX, D_TX, spec


def make_state_fn(width=16, ema_decay=0.9, latent_dim=4, seed=0):
  return lambda: train.create_state(*setup(width, ema_decay, latent_dim), (2,), seed)


def abstract_state(**kwargs):
  return jax.eval_shape(make_state_fn(**kwargs))


@pytest.fixture(scope="module")
def trained():
  """Real states advanced two train steps (non-trivial optimizer states and batch statistics),
  with and without EMA generator parameters. The EMA-less one is the same training run with
  the EMA dropped, as create_state(ema_decay=0) lays it out (saving a second compile)."""
  # Committed to the device that restored arrays go to, so that the restored state hits the
  # compiled train_step.
  state = jax.device_put(make_state_fn(ema_decay=0.9)(), jax.local_devices()[0])
  for _ in range(2):
    state, _ = train.train_step(state, None)
  no_ema = state.replace(ema_g_params=None, spec=setup(ema_decay=0.0)[4])
  assert jax.tree.structure(no_ema) == jax.tree.structure(abstract_state(ema_decay=0.0))
  return {0.9: state, 0.0: no_ema}


def device_copy(state):
  return jax.tree.map(lambda x: jnp.array(x, copy=True), state)


def assert_bitwise_equal(actual, expected):
  """Same leaves (None subtrees included) with the same paths, dtypes, shapes and bits. (Tree
  definitions are not compared: a GANState's static optax closures differ between instances.)"""
  is_none = lambda x: x is None  # pylint: disable=unnecessary-lambda-assignment
  actual = jax.tree_util.tree_flatten_with_path(actual, is_leaf=is_none)[0]
  expected = jax.tree_util.tree_flatten_with_path(expected, is_leaf=is_none)[0]
  assert [p for p, _ in actual] == [p for p, _ in expected]
  for (path, a), (_, b) in zip(actual, expected):
    assert (a is None) == (b is None), jax.tree_util.keystr(path)
    if a is None:
      continue
    a, b = np.asarray(a), np.asarray(b)
    name = jax.tree_util.keystr(path)
    assert a.dtype == b.dtype, name
    assert a.shape == b.shape, name
    assert np.array_equal(a, b), name


def step_dirs(root):
  return sorted(p.name for p in (pathlib.Path(root) / "checkpoints").iterdir()
                if p.name.isdigit())


def save_steps(directory, state, steps, **kwargs):
  with Checkpointer(directory, **kwargs) as ckpt:
    for step in steps:
      assert ckpt.save(step, state, config=CONFIG, data={**DATA, "step": step})


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ema_decay", [0.9, 0.0])
def test_round_trip_is_bitwise(tmp_path, trained, ema_decay):
  state = trained[ema_decay]
  assert (state.ema_g_params is None) == (ema_decay == 0.0)
  assert state.g_collections["batch_stats"]
  with Checkpointer(tmp_path, keep=3) as ckpt:
    assert ckpt.save(2, state, config=CONFIG, data=DATA)
  with Checkpointer(tmp_path) as ckpt:
    assert ckpt.latest_step() == 2 and ckpt.all_steps() == [2]
    # A different seed: nothing can match by accident.
    restored, config, data = ckpt.restore(abstract_state(ema_decay=ema_decay, seed=1))
  assert isinstance(restored, train.GANState)
  assert jax.tree.structure(restored) == jax.tree.structure(state)
  assert_bitwise_equal(restored, state)
  assert restored.key.dtype == jnp.uint32 and restored.step.dtype == jnp.int32
  assert int(restored.step) == 2 and int(restored.d_updates) == 2
  assert (restored.ema_g_params is None) == (ema_decay == 0.0)
  assert restored.generator == state.generator and restored.spec == state.spec
  assert config == CONFIG and data == DATA
  # Restored arrays are on one device (the first) by default, whatever the checkpoint says.
  assert all(leaf.devices() == {jax.local_devices()[0]} for leaf in jax.tree.leaves(restored))
  if ema_decay:  # The restored state trains on exactly like the saved one (compiled already).
    a, _ = train.train_step(restored, None)
    b, _ = train.train_step(device_copy(state), None)
    assert_bitwise_equal(a, b)


def test_restore_into_real_state_uses_its_shapes_and_shardings(tmp_path, trained):
  state = trained[0.9]
  save_steps(tmp_path, state, [1])
  device = jax.devices()[-1]
  zeros = jax.tree.map(np.zeros_like, jax.device_get(state))  # values unused
  target = jax.device_put(zeros, device)
  with Checkpointer(tmp_path) as ckpt:
    restored, _, _ = ckpt.restore(target)
  assert_bitwise_equal(restored, state)
  assert all(leaf.devices() == {device} for leaf in jax.tree.leaves(restored))


def test_save_is_asynchronous_and_the_state_may_be_donated_at_once(tmp_path, trained):
  state = device_copy(trained[0.9])
  expected = jax.device_get(state)
  with Checkpointer(tmp_path, async_save=True) as ckpt:
    assert ckpt.save(2, state, config=CONFIG, data=DATA)
    for _ in range(2):  # donates the saved buffers while the save may still be writing
      state, _ = train.train_step(state, None)
    ckpt.wait()
    restored, _, _ = ckpt.restore(abstract_state())
  assert_bitwise_equal(restored, expected)


def test_save_never_overwrites_and_skips_old_steps(tmp_path, trained):
  state = trained[0.0]
  with Checkpointer(tmp_path) as ckpt:
    assert ckpt.save(5, state, config=CONFIG, data={"v": 5})
    assert not ckpt.save(5, state, config=CONFIG, data={"v": 6})
    assert not ckpt.save(5, state, config=CONFIG, data={"v": 6}, force=True)
    assert not ckpt.save(3, state, config=CONFIG, data={"v": 3}, force=True)
    assert ckpt.save(6, state, config=CONFIG, data={"v": 6}, force=True)
    ckpt.wait()
    assert ckpt.all_steps() == [5, 6] and ckpt.latest_step() == 6
    assert ckpt.restore(abstract_state(ema_decay=0.0), step=5)[2] == {"v": 5}
    with pytest.raises(ValueError, match="JSON"):
      ckpt.save(7, state, config={"bad": object()}, data={})


def test_keep_retains_the_latest_steps(tmp_path, trained):
  save_steps(tmp_path, trained[0.0], range(1, 6), keep=2)
  with Checkpointer(tmp_path, keep=2) as ckpt:
    assert ckpt.all_steps() == [4, 5]
    assert ckpt.latest_step() == 5
  assert step_dirs(tmp_path) == ["4", "5"]


def test_empty_directory(tmp_path):
  with Checkpointer(tmp_path / "run") as ckpt:
    assert ckpt.latest_step() is None and ckpt.all_steps() == []
    assert ckpt.read_config() is None
    with pytest.raises(CheckpointError, match="no checkpoint in"):
      ckpt.restore(abstract_state())
    with pytest.raises(CheckpointError, match="no checkpoint for step 3"):
      ckpt.read_config(3)
  # Read-only opening creates nothing.
  with Checkpointer(tmp_path / "other", read_only=True) as ckpt:
    assert ckpt.latest_step() is None
    with pytest.raises(ValueError, match="read-only"):
      ckpt.save(1, {"x": jnp.zeros(2)}, config={}, data={})
  assert not (tmp_path / "other").exists()


def test_read_config_does_not_read_arrays(tmp_path, trained):
  save_steps(tmp_path, trained[0.9], [1, 2])
  for step in ("1", "2"):  # every array of both steps gone: only the JSON is left
    shutil.rmtree(tmp_path / "checkpoints" / step / "state")
  with Checkpointer(tmp_path, read_only=True) as ckpt:
    assert ckpt.read_config() == CONFIG
    assert ckpt.read_config(1) == CONFIG
    with pytest.raises(CheckpointError, match="step 2"):
      ckpt.restore(abstract_state())


# ----------------------------------------------------------------------------- mismatches


def test_mismatched_width_names_the_leaf_and_both_shapes(tmp_path, trained):
  save_steps(tmp_path, trained[0.9], [1])
  with Checkpointer(tmp_path) as ckpt:
    with pytest.raises(CheckpointError) as info:
      ckpt.restore(abstract_state(width=8))
    message = str(info.value)
    assert "\n" not in message
    assert "step 1" in message and str(tmp_path / "checkpoints") in message
    leaf = re.search(r"leaf ([\w.]+) has shape (\([\d, ]+\)) in the checkpoint but "
                     r"(\([\d, ]+\)) in the state", message)
    assert leaf, message
    assert re.fullmatch(r"(g|d|ema_g)_params\.(Dense|BatchNorm)_0\.(kernel|bias|scale)",
                        leaf.group(1)), message
    assert "16" in leaf.group(2) and "8" in leaf.group(3) and "16" not in leaf.group(3)
    assert "more differences" in message

    with pytest.raises(CheckpointError) as info:
      ckpt.restore(abstract_state(latent_dim=6))
    message = str(info.value)
    assert "g_params.Dense_0.kernel has shape (4, 16) in the checkpoint but (6, 16)" in message

    with pytest.raises(CheckpointError, match=r"leaf ema_g_params\.\w+\.\w+ that the state lacks"):
      ckpt.restore(abstract_state(ema_decay=0.0))

    target = abstract_state()
    target = target.replace(key=jax.ShapeDtypeStruct((2,), jnp.int32))
    with pytest.raises(CheckpointError, match=r"leaf key has dtype uint32 in the checkpoint but "
                                              r"int32"):
      ckpt.restore(target)
    # The checkpoint itself is untouched by the failed attempts.
    assert_bitwise_equal(ckpt.restore(abstract_state())[0], trained[0.9])


def test_a_checkpoint_from_before_a_field_existed_restores_with_it_none(tmp_path):
  """A state field added later (None where its part is off, as GANState.path_length) is absent
  from older checkpoints: they restore bit for bit with it None; a state that has it on cannot
  restore them (one line naming the leaf)."""
  from flax import struct

  class Before(struct.PyTreeNode):
    params: Any
    step: Any

  class After(struct.PyTreeNode):
    params: Any
    step: Any
    added: Any

  before = Before(params={"w": jnp.arange(6.0).reshape(2, 3)}, step=jnp.int32(7))
  save_steps(tmp_path, before, [1])
  with Checkpointer(tmp_path) as ckpt:
    abstract = jax.eval_shape(lambda: After(params={"w": jnp.zeros((2, 3))},
                                            step=jnp.int32(0), added=None))
    restored, _, _ = ckpt.restore(abstract)
    assert isinstance(restored, After) and restored.added is None
    assert_bitwise_equal(restored.params, before.params)
    assert_bitwise_equal(restored.step, before.step)
    with pytest.raises(CheckpointError, match=r"leaf added\.mean is not in the checkpoint"):
      ckpt.restore(abstract.replace(added={"mean": jax.ShapeDtypeStruct((), jnp.float32)}))


# ----------------------------------------------------------------------------- damage


def _data_files(step_dir):
  return [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]


# Orbax's reader leaves TensorStore callbacks behind when reading fails; they complain later
# that their event loop is closed. That is Orbax's noise, not a failure of this code.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("damage", ["delete_data", "truncate_data", "garble_data",
                                    "garble_metadata", "delete_config"])
def test_damaged_step_is_reported_and_earlier_steps_restore(tmp_path, trained, damage):
  state = trained[0.9]
  save_steps(tmp_path, state, [1, 2])
  step_dir = tmp_path / "checkpoints" / "2"
  files = _data_files(step_dir)
  assert files
  if damage == "delete_data":
    for path in files:
      path.unlink()
  elif damage == "truncate_data":
    for path in files:
      with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 3)
  elif damage == "garble_data":
    for path in files:
      path.write_bytes(b"\xa5" * path.stat().st_size)
  elif damage == "garble_metadata":
    (step_dir / "state" / "_METADATA").write_text("{not json")
  else:
    (step_dir / "config" / "metadata").unlink()
  with Checkpointer(tmp_path) as ckpt:
    assert ckpt.latest_step() == 2
    with pytest.raises(CheckpointError) as info:
      ckpt.restore(abstract_state())
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message and len(message) < 800
    assert message.startswith(f"checkpoint step 2 in {tmp_path / 'checkpoints'} ")
    assert "other steps: 1" in message
    assert info.value.step == 2 and info.value.cause is not None
    restored, config, data = ckpt.restore(abstract_state(), step=1)
  assert_bitwise_equal(restored, state)
  assert config == CONFIG and data == {**DATA, "step": 1}
  # Nothing was replaced or deleted.
  assert step_dirs(tmp_path) == ["1", "2"]


# ----------------------------------------------------------------------------- SIGKILL


KILL_SCRIPT = """
import os, re, sys, threading
os.environ["JAX_PLATFORMS"] = "cpu"
import jax, jax.numpy as jnp, numpy as np
import orbax.checkpoint as ocp
from ganjax.checkpoint import Checkpointer

directory, size, blocked_step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = np.random.default_rng(0).standard_normal(size, dtype=np.float32)

def tree(step):
  return {"big": jnp.asarray(base + np.float32(step)), "step": jnp.int32(step),
          "key": jax.random.PRNGKey(step), "nothing": None}

# The save of blocked_step stops in its background thread once its arrays are written into the
# step's temporary directory, before the step is committed, and waits there to be killed.
finalize = ocp.handlers.StandardCheckpointHandler.finalize

def finalize_or_block(self, path):
  step = re.search(r"/(\\d+)\\.orbax-checkpoint-tmp", str(path))
  if step and int(step.group(1)) == blocked_step:
    print(f"blocked in the save of step {blocked_step}", flush=True)
    threading.Event().wait()
  return finalize(self, path)

ocp.handlers.StandardCheckpointHandler.finalize = finalize_or_block
ckpt = Checkpointer(directory, keep=2, async_save=True)
ckpt.save(1, tree(1), config={"run": "kill"}, data={"step": 1})
ckpt.wait()
print("saved 1", flush=True)
for step in range(2, blocked_step + 2):  # each save first waits for the one before
  ckpt.save(step, tree(step), config={"run": "kill"}, data={"step": step})
"""

KILL_SIZE = 1 << 18  # float32: 1 MiB a step
BLOCKED_STEP = 3


def expected_tree(step):
  base = np.random.default_rng(0).standard_normal(KILL_SIZE, dtype=np.float32)
  return {"big": base + np.float32(step), "step": np.int32(step),
          "key": np.asarray(jax.random.PRNGKey(step)), "nothing": None}


def test_sigkill_mid_save_leaves_the_previous_steps_restorable(tmp_path):
  script = tmp_path / "saver.py"
  script.write_text(textwrap.dedent(KILL_SCRIPT))
  workdir = tmp_path / "run"
  ckpt_dir = workdir / "checkpoints"
  with Child([sys.executable, str(script), str(workdir), str(KILL_SIZE), str(BLOCKED_STEP)]
             ) as child:
    child.wait_for("saved 1", timeout=120)
    child.wait_for(f"blocked in the save of step {BLOCKED_STEP}", timeout=120)
    unfinished = [p.name for p in ckpt_dir.iterdir() if TMP_MARKER in p.name]
    child.kill()
  assert child.process.returncode == -signal.SIGKILL
  # It died during the save of step 3, with step 2 saved asynchronously before it.
  assert [name.split(".")[0] for name in unfinished] == [str(BLOCKED_STEP)]
  assert [p.name for p in ckpt_dir.iterdir() if TMP_MARKER in p.name] == unfinished

  abstract = jax.tree.map(lambda x: None if x is None else jax.ShapeDtypeStruct(x.shape, x.dtype),
                          expected_tree(0), is_leaf=lambda x: x is None)
  with Checkpointer(workdir, keep=2) as ckpt:
    assert ckpt.all_steps() == [1, 2] and ckpt.latest_step() == 2
    for step in (None, 1, 2):  # None: the latest
      restored, config, data = ckpt.restore(abstract, step=step)
      assert_bitwise_equal(restored, expected_tree(step or 2))
      assert config == {"run": "kill"} and data == {"step": step or 2}
    # The run resumes: the unfinished step can be saved again, and the manager created above
    # has deleted the temporary directory.
    assert ckpt.save(BLOCKED_STEP, jax.tree.map(jnp.asarray, expected_tree(BLOCKED_STEP)),
                     config={"run": "kill"}, data={"step": BLOCKED_STEP})
    ckpt.wait()
    assert not [p for p in ckpt_dir.iterdir() if TMP_MARKER in p.name]
    assert ckpt.latest_step() == BLOCKED_STEP
    assert_bitwise_equal(ckpt.restore(abstract)[0], expected_tree(BLOCKED_STEP))
