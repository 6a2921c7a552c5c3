"""StyleGAN2's training, in the update and in runs: path-length regularisation (lazy, with its
running mean in the state), the EMA generator by images seen, the optimizers' corrections for
both lazy intervals, per-example noise and style mixing on devices, truncation and interpolation
in w, and the CIFAR-10 configuration trained, resumed and sampled on mock data.

The path-length arithmetic is tested on a style-based generator of this file whose synthesis is
linear in w (its Jacobian is known); the library's StyleGAN2 runs in the device and run tests.
Runs with 4 fake CPU devices (tests/conftest.py).
"""
import json
import subprocess
import sys
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax import experiment as experiment_lib
from ganjax import regularizers
from ganjax import runner
from ganjax import sample as sample_lib
from ganjax import train
from ganjax.errors import ConfigError

from _trees import REPO, assert_same_leaves, assert_trees_close, copy, load_experiment

NUM_DEVICES = 4
SHAPE = (4, 4, 2)
LATENT, NUM_WS, W_DIM = 3, 2, 5
BATCH = 8


class LinearStyleGenerator(nn.Module):
  """w = z M (broadcast to NUM_WS rows), image = sum_{n, d} w_nd A_nd: style-based, and its
  synthesis is linear in w, so J_w^T y is A contracted with y."""
  takes_example_keys: ClassVar[bool] = True

  def setup(self):
    self.m = self.param("m", nn.initializers.normal(1.0), (LATENT, W_DIM))
    self.a = self.param("a", nn.initializers.normal(0.5), (NUM_WS, W_DIM, *SHAPE))

  def mapping(self, z, labels=None, train=False, truncation_psi=1.0):
    w = z @ self.m
    return jnp.broadcast_to(w[:, None], (w.shape[0], NUM_WS, W_DIM))

  def synthesis(self, ws, keys=None, train=False):
    return jnp.einsum("bnd,ndhwc->bhwc", ws, self.a)

  def __call__(self, z, labels=None, train=False, *, keys=None, truncation_psi=1.0):
    return self.synthesis(self.mapping(z, labels, train, truncation_psi), keys, train)


class Generator(nn.Module):
  """z -> an image (not style-based)."""

  @nn.compact
  def __call__(self, z, train=True):
    return jnp.tanh(nn.Dense(int(np.prod(SHAPE)))(z)).reshape((-1, *SHAPE))


class Discriminator(nn.Module):

  @nn.compact
  def __call__(self, x, train=True):
    return nn.Dense(1)(jnp.tanh(nn.Dense(8)(x.reshape((x.shape[0], -1)))))[:, 0]


def make_state(generator=None, g_tx=None, **spec_kwargs):
  spec = train.GANSpec(**{"latent_dim": LATENT, "batch_size": BATCH, **spec_kwargs})
  return train.create_state(generator or LinearStyleGenerator(), Discriminator(),
                            g_tx or optax.sgd(1.0), optax.sgd(0.1), spec, SHAPE, 0)


def directions(keys, shape):
  """The path-length directions as `regularizers.path_lengths` documents them: N(0, 1) from
  each example's key, divided by sqrt(H * W)."""
  return jax.vmap(lambda k: jax.random.normal(k, shape))(keys) / np.sqrt(shape[0] * shape[1])


def linear_lengths(a, ws_unused, y):
  """||J_w^T y|| / sqrt(NUM_WS) for the linear synthesis: J_w^T y = A contracted with y."""
  pulled = jnp.einsum("ndhwc,bhwc->bnd", a, y)
  return jnp.sqrt(jnp.mean(jnp.sum(pulled**2, -1), -1))


# ----------------------------------------------------------------------------- path length


def test_path_lengths_of_a_linear_synthesis_against_its_jacobian():
  state = make_state()
  a = state.g_params["a"]
  ws = jax.random.normal(jax.random.PRNGKey(1), (BATCH, NUM_WS, W_DIM))
  keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(BATCH))
  synthesize = lambda ws: state.generator.apply({"params": state.g_params}, ws,
                                                method="synthesis")
  lengths = regularizers.path_lengths(synthesize, ws, keys)
  y = np.asarray(directions(keys, SHAPE), np.float64)
  # J_w^T y by hand in float64: the rows of A (NUM_WS, W_DIM, H*W*C) times y.
  pulled = np.asarray(a, np.float64).reshape(NUM_WS * W_DIM, -1) @ y.reshape(BATCH, -1).T
  expected = np.sqrt(np.mean(np.sum(pulled.T.reshape(BATCH, NUM_WS, W_DIM)**2, -1), -1))
  # float32 products of a few dozen terms against float64.
  np.testing.assert_allclose(lengths, expected, rtol=1e-5)
  assert np.ptp(expected) > 0.01  # the examples' directions differ
  np.testing.assert_allclose(regularizers.path_length_penalty(lengths, 0.5),
                             np.mean((expected - 0.5)**2), rtol=1e-5)


def test_lazy_path_length_step_against_a_hand_computation():
  """Step 0 is regularised: after the main step (the same as without the regulariser), an SGD
  step on k * weight * E[(length - a)^2] over batch / shrink fresh latents, a = 0.01 * mean
  length; steps 1 to 3 are not, and step 4 is again."""
  kwargs = dict(path_length_weight=2.0, path_length_every=4, path_length_shrink=2,
                path_length_decay=0.01)
  state = make_state(**kwargs)
  plain = make_state()
  after_main, _ = train.g_step(copy(plain), None)
  regularised, metrics = train.g_step(copy(state), None)

  key = jax.random.fold_in(train._generator_key(state), train._PATH_LENGTH)
  z = train._draw_latents(state.spec, key, BATCH // 2, None)
  y = directions(train._example_keys(jax.random.fold_in(key, train._PATH_LENGTH), BATCH // 2,
                                     None), SHAPE)

  def loss(params):
    lengths = linear_lengths(params["a"], None, y)
    mean = 0.01 * jnp.mean(jax.lax.stop_gradient(lengths))
    return 4 * 2.0 * jnp.mean((lengths - mean)**2), (jnp.mean((lengths - mean)**2), mean)

  grads, (penalty, mean) = jax.grad(loss, has_aux=True)(after_main.g_params)
  expected = jax.tree.map(lambda p, g: p - g, after_main.g_params, grads)
  # Rounding: the same float32 operations in another order.
  assert_trees_close(regularised.g_params, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(regularised.path_length["mean"], mean, rtol=1e-5)
  np.testing.assert_allclose(metrics["g_path_length"], 4 * penalty, rtol=1e-5)
  assert float(jnp.abs(grads["a"]).max()) > 1e-3 and not jnp.any(grads["m"])
  for step in (1, 2, 3, 4):
    kept = float(regularised.path_length["mean"])
    regularised, metrics = train.g_step(regularised, None)
    if step < 4:
      assert float(metrics["g_path_length"]) == 0.0
      assert float(regularised.path_length["mean"]) == kept
    else:
      assert float(metrics["g_path_length"]) > 0.0
      assert float(regularised.path_length["mean"]) != kept


def test_path_length_and_shrink_errors_are_one_line_config_errors():
  with pytest.raises(ConfigError, match="style-based generator") as error:
    make_state(generator=Generator(), path_length_weight=2.0)
  assert "\n" not in str(error.value)
  with pytest.raises(ConfigError, match="path_length_shrink must divide"):
    train.GANSpec(batch_size=6, path_length_weight=2.0, path_length_shrink=4)
  with pytest.raises(ConfigError, match="regularizer.path_length_every"):
    train.GANSpec(path_length_weight=2.0, path_length_every=0)


# ----------------------------------------------------------------------------- EMA by images


def test_ema_beta_is_the_ada_codes_half_life_with_ramp_up():
  spec = train.GANSpec(batch_size=64, ema_kimg=500.0, ema_rampup=0.05)
  for step in (0, 1, 10, 1000, 10**6):
    half_life = min(500_000.0, step * 64 * 0.05)
    expected = 0.5 ** (64 / max(half_life, 1e-8))
    # float32 against float64 powers.
    np.testing.assert_allclose(float(train.ema_beta(spec, step)), expected, rtol=1e-5, atol=0)
  no_ramp = train.GANSpec(batch_size=32, ema_kimg=10.0)
  np.testing.assert_allclose(float(train.ema_beta(no_ramp, 0)), 0.5 ** (32 / 10_000), rtol=1e-6)
  assert train.ema_beta(train.GANSpec(ema_decay=0.999), 5) == 0.999


def test_ema_generator_follows_images_seen():
  """Step 0 (nothing seen, ramp-up): the EMA is the generator; step 1: beta_1 = 0.5 ** (batch /
  (0.05 * batch)) = 0.5 ** 20 of the old EMA."""
  state = make_state(generator=Generator(), ema_kimg=500.0, ema_rampup=0.05)
  first, _ = train.g_step(state, None)
  assert_same_leaves(first.ema_g_params, first.g_params)
  second, _ = train.g_step(copy(first), None)
  beta = 0.5 ** 20
  expected = jax.tree.map(lambda g, e: g + beta * (e - g), second.g_params, first.ema_g_params)
  assert_trees_close(second.ema_g_params, expected, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- optimizers


def first_adam_step(tx, value=3.0):
  """|update| of the first step of an Adam with beta1 = 0 on a gradient of `value`: its
  learning rate (the bias-corrected m / sqrt(v) is 1)."""
  params = {"w": jnp.zeros(())}
  updates, _ = tx.update({"w": jnp.asarray(value)}, tx.init(params), params)
  return float(jnp.abs(updates["w"]))


def test_stylegan2_experiments_correct_both_optimizers_for_their_lazy_intervals():
  _, _, g_tx, d_tx, spec = experiment_lib.build_players(load_experiment("celeba64_stylegan2",
                                                                        None), check_data=False)
  assert (spec.penalty_every, spec.path_length_every, spec.path_length_weight) == (16, 4, 2.0)
  # float32: Adam's bias correction 1 - beta2 (about 0.008) keeps about 5 significant digits;
  # the corrections tested are 20% and 6%.
  np.testing.assert_allclose(first_adam_step(g_tx), 0.002 * 4 / 5, rtol=1e-4)
  np.testing.assert_allclose(first_adam_step(d_tx), 0.002 * 16 / 17, rtol=1e-4)
  _, _, g_tx, d_tx, spec = experiment_lib.build_players(
      load_experiment("cifar10_stylegan2_ada", None), check_data=False)
  assert spec.path_length_weight == 0.0 and spec.ema_kimg == 500.0
  np.testing.assert_allclose(first_adam_step(g_tx), 0.0025, rtol=1e-4)
  np.testing.assert_allclose(first_adam_step(d_tx), 0.0025 * 16 / 17, rtol=1e-4)


# ----------------------------------------------------------------------------- the model in runs


def tiny_stylegan2_config(steps, **fields):
  """The CIFAR-10 configuration's :tiny at 16x16 (one block fewer to compile) with path-length
  regularisation and style mixing on (off in that configuration), so that one run exercises
  every StyleGAN2 part."""
  config = load_experiment("cifar10_stylegan2_ada")
  config.regularizer.path_length = 2.0
  config.model.generator_kwargs.style_mixing = 0.9
  config.train.steps = steps
  fields = {"data.image_size": 16, "model.generator_kwargs.resolution": 16,
            "model.discriminator_kwargs.resolution": 16, **fields}
  for dotted, value in fields.items():
    section, name = dotted.rsplit(".", 1)
    node = config
    for part in section.split("."):
      node = node[part]
    node[name] = value
  return config


def test_stylegan2_steps_on_devices_equal_one_device():
  """Noise inputs, style mixing, the path-length latents and w_avg come from each example's
  global index (and w_avg's batch mean is averaged over the devices): 4 devices give one
  device's numbers. Minibatch-stddev groups of 2 consecutive examples fit the per-device batch
  of 2. At 16x16, with SGD (Adam's first step divides each gradient by its own size, which turns
  the rounding of the mapping network's gradients, about 1e-8, into differences of the step)."""
  config = tiny_stylegan2_config(1, **{"model.discriminator_kwargs.mbstd_group": 2,
                                       "augment.policy": "", "augment.target": 0.0})
  config.conditional.enabled = False
  for player in ("generator", "discriminator"):
    config.optimizer[player] = {"name": "sgd", "learning_rate": 0.01}
  built = experiment_lib.build(config, check_data=False)
  state = built.create_state(0)
  devices = jax.devices()[:NUM_DEVICES]
  batch = jax.random.uniform(jax.random.PRNGKey(3), (1, 8, 16, 16, 3), minval=-1, maxval=1)
  single, single_metrics = train.train_step(copy(state), batch)
  step = train.parallelize(train.adversarial_update, "shard_map", devices, batch_axis=1)
  mapped, mapped_metrics = step(train.replicate(copy(state), "shard_map", devices),
                                train.shard_batch(batch, "shard_map", devices, batch_axis=1))
  # Means over devices of per-device means sum in another order, and XLA fuses the convolutions
  # of 2 and of 8 images differently: float32 rounding through a few layers.
  assert_trees_close(mapped, single, rtol=1e-3, atol=1e-6)
  assert_trees_close(mapped_metrics, single_metrics, rtol=1e-3, atol=1e-6)
  assert float(single_metrics["g_path_length"]) > 0
  assert np.any(np.asarray(single.g_collections["batch_stats"]["w_avg"]) != 0)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
  """The tiny StyleGAN2 on mock CIFAR-10: 4 steps straight, and 2 then resumed to 4."""
  import tensorflow_datasets as tfds

  root = tmp_path_factory.mktemp("stylegan2_runs")
  straight, resumed = root / "straight", root / "resumed"
  with tfds.testing.mock_data(num_examples=64):
    runner.train_and_evaluate(tiny_stylegan2_config(4), straight)
    runner.train_and_evaluate(tiny_stylegan2_config(2), resumed)
    runner.train_and_evaluate(tiny_stylegan2_config(4), resumed)
  return straight, resumed


def test_tiny_stylegan2_trains_and_resumes_exactly(tiny_runs):
  straight, resumed = tiny_runs
  lines = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
  assert lines and all(np.isfinite(line["d_loss"]) and np.isfinite(line["g_loss"])
                       for line in lines)
  assert any(line["g_path_length"] > 0 for line in lines)
  state_straight, _ = sample_lib.load_state(straight)
  state_resumed, _ = sample_lib.load_state(resumed)
  assert int(state_straight.step) == 4
  assert_same_leaves(state_resumed, state_straight)
  assert float(state_straight.path_length["mean"]) > 0
  # Training moved the generator: its samples at step 4 are not those at step 2.
  early, _ = sample_lib.load_state(straight, step=2)
  z = jax.random.normal(jax.random.PRNGKey(0), (4, state_straight.spec.latent_dim))
  labels = jnp.arange(4) % state_straight.spec.num_classes
  assert not np.allclose(train.generate(early, z, labels, use_ema=False),
                         train.generate(state_straight, z, labels, use_ema=False), atol=1e-6)


def test_truncation_and_interpolation_in_w(tiny_runs):
  state, _ = sample_lib.load_state(tiny_runs[0])
  z = jax.random.normal(jax.random.PRNGKey(1), (3, state.spec.latent_dim))
  labels = jnp.array([0, 1, 2])
  w_avg = state.g_collections["batch_stats"]["w_avg"]
  ws = train.mapping(state, z, labels)
  truncated = train.mapping(state, z, labels, truncation_psi=0.0)
  # psi = 0 is w_avg exactly (w_avg + 0 * (w - w_avg)); psi = 0.7 the straight line's point.
  np.testing.assert_array_equal(truncated, jnp.broadcast_to(w_avg, truncated.shape))
  np.testing.assert_allclose(train.mapping(state, z, labels, truncation_psi=0.7),
                             w_avg + 0.7 * (ws - w_avg), rtol=1e-5, atol=1e-6)
  # A latent gives the same image alone or in a batch (its noise comes from its own bits).
  np.testing.assert_allclose(train.generate(state, z[1:2], labels[1:2]),
                             train.generate(state, z, labels)[1:2], rtol=1e-5, atol=1e-5)
  rows = train.interpolate(state, z, z[::-1], 5, labels)
  assert rows.shape == (3, 5, 16, 16, 3)
  # The first point of each row is the first latent's image, noise included; the middle row
  # of a line from z to itself is constant.
  np.testing.assert_allclose(rows[:, 0], train.generate(state, z, labels), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(rows[1], jnp.broadcast_to(rows[1, 0], rows[1].shape), atol=1e-5)
  assert not np.allclose(rows[0, 0], rows[0, -1], atol=1e-3)


def test_sample_command_truncates_and_interpolates(tiny_runs, tmp_path):
  out = tmp_path / "rows.npy"
  result = subprocess.run(
      [sys.executable, "-m", "ganjax.sample", f"--workdir={tiny_runs[0]}", "--num=2",
       "--interpolate=4", "--truncation=0.7", f"--out={out}", f"--grid={tmp_path / 'rows.png'}"],
      capture_output=True, text=True, cwd=REPO, timeout=300)
  assert result.returncode == 0, result.stderr
  assert np.load(out).shape == (2, 4, 16, 16, 3) and (tmp_path / "rows.png").stat().st_size


def test_truncation_of_a_generator_without_mapping_is_one_line():
  state = make_state(generator=Generator())
  with pytest.raises(ValueError, match="style-based generator") as error:
    train.generate(state, jnp.zeros((2, LATENT)), truncation_psi=0.7)
  assert "\n" not in str(error.value)
  with pytest.raises(ValueError, match="--interpolate"):
    sample_lib.check_style_flags(state, 1.0, 4)
