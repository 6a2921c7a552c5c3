"""Helpers the tests share: experiment configs by file name, and comparisons of pytrees."""
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_experiment(name, arg="tiny"):
  """`get_config(arg)` of experiments/<name>.py."""
  spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def config_from_command_line(*args):
  """The config `ganjax.main` builds from its arguments (--config=<file>[:arg], overrides)."""
  from absl import flags
  from ml_collections import config_flags
  flag_values = flags.FlagValues()
  argv = ["ganjax", *args]
  config_flags.DEFINE_config_file("config", flag_values=flag_values, sys_argv=argv)
  flag_values(argv)
  return flag_values.config


def copy(tree):
  """A copy whose buffers survive donation of the original."""
  return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


def assert_same_leaves(a, b):
  """The array leaves are equal bit for bit."""
  leaves_a = jax.tree_util.tree_leaves_with_path(jax.device_get(a))
  leaves_b = jax.tree_util.tree_leaves_with_path(jax.device_get(b))
  assert len(leaves_a) == len(leaves_b)
  for (path, x), (_, y) in zip(leaves_a, leaves_b):
    assert np.array_equal(x, y), jax.tree_util.keystr(path)


def assert_trees_close(actual, expected, rtol=1e-5, atol=1e-6):
  """The array leaves agree (static fields, such as optimizer closures, are not compared)."""
  actual = jax.tree_util.tree_leaves_with_path(jax.device_get(actual))
  expected = jax.tree_util.tree_leaves_with_path(jax.device_get(expected))
  assert [path for path, _ in actual] == [path for path, _ in expected]
  for (path, a), (_, b) in zip(actual, expected):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=jax.tree_util.keystr(path))
