"""Tests of ganjax.regularizers against closed forms, numpy and finite differences."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from ganjax import errors
from ganjax import regularizers

INPUT_SHAPE = (3, 4)
BATCH = 8


def linear_critic(weights, bias=0.5):
  """f(x) = <x, w> + b per example; its input gradient is w everywhere."""
  return lambda x: jnp.sum(x * weights, axis=(1, 2)) + bias


def quadratic_critic(x):
  """f(x) = 0.5 * ||x||^2 per example; its input gradient is x."""
  return 0.5 * jnp.sum(jnp.square(x), axis=(1, 2))


def weights_with_norm(norm, seed=0):
  direction = np.random.default_rng(seed).normal(size=INPUT_SHAPE)
  return jnp.asarray(norm * direction / np.linalg.norm(direction), jnp.float32)


def random_inputs(seed, scale=1.0):
  return jnp.asarray(
      scale * np.random.default_rng(seed).normal(size=(BATCH,) + INPUT_SHAPE), jnp.float32)


def mlp_critic(params, x):
  hidden = jnp.tanh(jnp.reshape(x, (x.shape[0], -1)) @ params["w1"] + params["b1"])
  return hidden @ params["w2"] + params["b2"]


def mlp_params(seed, dtype):
  rng = np.random.default_rng(seed)
  features = int(np.prod(INPUT_SHAPE))
  return {
      "w1": jnp.asarray(rng.normal(size=(features, 5)) / np.sqrt(features), dtype),
      "b1": jnp.asarray(0.1 * rng.normal(size=5), dtype),
      "w2": jnp.asarray(rng.normal(size=5), dtype),
      "b2": jnp.asarray(0.3, dtype),
  }


@pytest.mark.parametrize("weight_norm", [2.5, 0.4])
def test_penalties_of_a_linear_critic_have_closed_forms(weight_norm):
  critic = linear_critic(weights_with_norm(weight_norm))
  real, fake = random_inputs(1), random_inputs(2, scale=3.0)
  key = jax.random.key(0)

  np.testing.assert_allclose(
      regularizers.gradient_penalty(critic, real, fake, key), (weight_norm - 1.0) ** 2, rtol=1e-5)
  np.testing.assert_allclose(
      regularizers.gradient_penalty(critic, real, fake, key, one_sided=True),
      max(0.0, weight_norm - 1.0) ** 2, rtol=1e-5, atol=1e-12)
  np.testing.assert_allclose(
      regularizers.gradient_penalty(critic, real, fake, key, target=2.0),
      (weight_norm - 2.0) ** 2, rtol=1e-5)
  np.testing.assert_allclose(regularizers.r1_penalty(critic, real), weight_norm ** 2, rtol=1e-5)
  np.testing.assert_allclose(regularizers.r2_penalty(critic, fake), weight_norm ** 2, rtol=1e-5)
  np.testing.assert_allclose(
      regularizers.dragan_penalty(critic, real, key), (weight_norm - 1.0) ** 2, rtol=1e-5)


def test_r1_and_r2_of_a_quadratic_critic_are_mean_squared_input_norms():
  real, fake = random_inputs(3), random_inputs(4, scale=2.0)
  expected_r1 = np.mean(np.sum(np.square(np.asarray(real)), axis=(1, 2)))
  expected_r2 = np.mean(np.sum(np.square(np.asarray(fake)), axis=(1, 2)))
  np.testing.assert_allclose(regularizers.r1_penalty(quadratic_critic, real), expected_r1, rtol=1e-5)
  np.testing.assert_allclose(regularizers.r2_penalty(quadratic_critic, fake), expected_r2, rtol=1e-5)


def test_gradient_penalty_of_a_quadratic_critic_with_equal_real_and_fake():
  real = random_inputs(5, scale=0.3)
  norms = np.linalg.norm(np.reshape(np.asarray(real), (BATCH, -1)), axis=-1)
  penalty = regularizers.gradient_penalty(quadratic_critic, real, real, jax.random.key(1))
  np.testing.assert_allclose(penalty, np.mean((norms - 1.0) ** 2), rtol=1e-5)


def test_gradient_penalty_interpolates_with_one_weight_per_example():
  real, fake = random_inputs(6), random_inputs(7, scale=2.0)
  key = jax.random.key(2)
  eps = np.asarray(jax.random.uniform(key, (BATCH, 1, 1)))
  interpolates = eps * np.asarray(real) + (1.0 - eps) * np.asarray(fake)
  norms = np.linalg.norm(np.reshape(interpolates, (BATCH, -1)), axis=-1)
  np.testing.assert_allclose(
      regularizers.gradient_penalty(quadratic_critic, real, fake, key),
      np.mean((norms - 1.0) ** 2), rtol=1e-5)
  np.testing.assert_allclose(
      regularizers.gradient_penalty(quadratic_critic, real, fake, key, one_sided=True),
      np.mean(np.maximum(norms - 1.0, 0.0) ** 2), rtol=1e-5)


def test_dragan_without_perturbation_penalises_the_real_points():
  real = random_inputs(8, scale=0.3)
  norms = np.linalg.norm(np.reshape(np.asarray(real), (BATCH, -1)), axis=-1)
  penalty = regularizers.dragan_penalty(
      quadratic_critic, real, jax.random.key(3), perturbation_scale=0.0)
  np.testing.assert_allclose(penalty, np.mean((norms - 1.0) ** 2), rtol=1e-5)


def test_dragan_perturbation_matches_its_moments():
  # Half the examples are 0 and half 1, so std(x) = 1/2 over the batch. With a quadratic critic
  # and target 0 the penalty is mean ||x + k b u||^2 with k = scale * std(x), b = 1 - alpha ~ U[0, 1]
  # per example and u ~ U[0, 1] per element, whose expectation over d elements is
  # E||x||^2 + 2 k E[b] E[u] E[sum x] + k^2 d E[b^2] E[u^2] = d/2 + k d/4 + k^2 d/9.
  batch, elements = 8192, int(np.prod(INPUT_SHAPE))
  real = jnp.asarray(np.arange(batch) % 2, jnp.float32)[:, None, None] * jnp.ones(INPUT_SHAPE)
  scale = 2.0
  k = scale * 0.5
  expected = elements / 2 + k * elements / 4 + k ** 2 * elements / 9
  penalty = regularizers.dragan_penalty(
      quadratic_critic, real, jax.random.key(4), perturbation_scale=scale, target=0.0)
  np.testing.assert_allclose(penalty, expected, rtol=0.01)


def test_gradient_penalty_gradient_for_a_linear_critic_matches_closed_form():
  # GP(w) = (||w|| - 1)^2, so dGP/dw = 2 (||w|| - 1) w / ||w||: this goes through second-order autodiff.
  weights = weights_with_norm(1.7, seed=1)
  real, fake = random_inputs(10), random_inputs(11)

  def penalty_of_weights(w):
    return regularizers.gradient_penalty(linear_critic(w), real, fake, jax.random.key(5))

  norm = np.linalg.norm(np.asarray(weights))
  expected = 2.0 * (norm - 1.0) * np.asarray(weights) / norm
  np.testing.assert_allclose(jax.grad(penalty_of_weights)(weights), expected, rtol=1e-5, atol=1e-7)


def np_mlp_input_gradients(params, x):
  """grad_x of tanh(x W1 + b1) w2 + b2 for each example by the chain rule: W1 (w2 (1 - h^2))."""
  params = {name: np.asarray(value, np.float64) for name, value in params.items()}
  flat = np.asarray(x, np.float64).reshape(len(x), -1)
  hidden = np.tanh(flat @ params["w1"] + params["b1"])
  return (params["w2"] * (1.0 - hidden ** 2)) @ params["w1"].T


def test_penalties_of_an_mlp_critic_match_its_input_gradients_by_hand():
  params = mlp_params(2, jnp.float32)
  critic = functools.partial(mlp_critic, params)
  real, fake = random_inputs(19), random_inputs(20, scale=2.0)
  key = jax.random.key(9)
  eps = np.asarray(jax.random.uniform(key, (BATCH, 1, 1)), np.float64)
  interpolates = eps * np.asarray(real, np.float64) + (1.0 - eps) * np.asarray(fake, np.float64)
  real_norms, fake_norms, interpolate_norms = (
      np.linalg.norm(np_mlp_input_gradients(params, x), axis=-1)
      for x in (real, fake, interpolates))
  # The norms vary from example to example, so each must be taken at its own point.
  assert np.ptp(interpolate_norms) > 0.1
  penalties = {
      "r1": (regularizers.r1_penalty(critic, real), np.mean(real_norms ** 2)),
      "r2": (regularizers.r2_penalty(critic, fake), np.mean(fake_norms ** 2)),
      "gradient_penalty": (regularizers.gradient_penalty(critic, real, fake, key),
                           np.mean((interpolate_norms - 1.0) ** 2)),
      # Norms of 1.46 to 2.04: the one-sided penalty drops some of them.
      "gradient_penalty one-sided, target 1.75": (
          regularizers.gradient_penalty(critic, real, fake, key, target=1.75, one_sided=True),
          np.mean(np.maximum(interpolate_norms - 1.75, 0.0) ** 2)),
      "dragan without perturbation": (
          regularizers.dragan_penalty(critic, real, key, perturbation_scale=0.0),
          np.mean((real_norms - 1.0) ** 2)),
  }
  for name, (penalty, expected) in penalties.items():
    # float32 input gradients (sums of 5 and 12 products) against float64.
    np.testing.assert_allclose(penalty, expected, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", ["r1", "r2", "gradient_penalty", "dragan"])
def test_penalty_gradients_for_an_mlp_critic_match_finite_differences(name):
  with jax.enable_x64(True):
    params = mlp_params(0, jnp.float64)
    real = jnp.asarray(np.random.default_rng(12).normal(size=(4,) + INPUT_SHAPE))
    fake = jnp.asarray(np.random.default_rng(13).normal(size=(4,) + INPUT_SHAPE))
    key = jax.random.key(6)
    penalties = {
        "r1": lambda critic: regularizers.r1_penalty(critic, real),
        "r2": lambda critic: regularizers.r2_penalty(critic, fake),
        "gradient_penalty": lambda critic: regularizers.gradient_penalty(critic, real, fake, key),
        "dragan": lambda critic: regularizers.dragan_penalty(critic, real, key),
    }

    def penalty_of_params(p):
      return penalties[name](functools.partial(mlp_critic, p))

    check_grads(penalty_of_params, (params,), order=1, modes=["rev"], eps=1e-5, atol=1e-6,
                rtol=1e-6)


def test_constant_critic_gives_target_squared_with_finite_gradients():
  real, fake = random_inputs(14), random_inputs(15)
  key = jax.random.key(7)

  def constant_critic(bias):
    return lambda x: jnp.zeros(x.shape[0]) + bias

  penalties = {
      "gradient_penalty": lambda b: regularizers.gradient_penalty(constant_critic(b), real, fake, key),
      "dragan": lambda b: regularizers.dragan_penalty(constant_critic(b), real, key),
  }
  for name, penalty_of_bias in penalties.items():
    value, gradient = jax.value_and_grad(penalty_of_bias)(jnp.float32(0.3))
    np.testing.assert_allclose(value, 1.0, err_msg=name)
    assert np.isfinite(gradient), name

  def penalty_of_weights(w):
    return regularizers.gradient_penalty(linear_critic(w), real, fake, key)

  gradient = jax.grad(penalty_of_weights)(jnp.zeros(INPUT_SHAPE))
  assert np.all(np.isfinite(gradient))


def test_penalties_are_the_same_under_jit():
  params = mlp_params(1, jnp.float32)
  critic = functools.partial(mlp_critic, params)
  real, fake = random_inputs(16), random_inputs(17)
  key = jax.random.key(8)
  calls = {
      "gradient_penalty": (functools.partial(regularizers.gradient_penalty, critic),
                           (real, fake, key)),
      "r1": (functools.partial(regularizers.r1_penalty, critic), (real,)),
      "r2": (functools.partial(regularizers.r2_penalty, critic), (fake,)),
      "dragan": (functools.partial(regularizers.dragan_penalty, critic), (real, key)),
  }
  for name, (penalty, args) in calls.items():
    np.testing.assert_allclose(jax.jit(penalty)(*args), penalty(*args), rtol=1e-5, err_msg=name)


def clip_step(clip_value, params, gradients, learning_rate=1.0):
  optimizer = optax.chain(optax.sgd(learning_rate), regularizers.weight_clipping(clip_value))
  updates, _ = optimizer.update(gradients, optimizer.init(params), params)
  return optax.apply_updates(params, updates)


def test_weight_clipping_keeps_every_parameter_inside_the_box():
  rng = np.random.default_rng(18)
  params = {"w": jnp.asarray(rng.uniform(-0.01, 0.01, size=(200, 50)), jnp.float32),
            "b": jnp.asarray(rng.normal(size=50) * 10, jnp.float32)}
  gradients = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape) * 10, p.dtype), params)
  new_params = jax.jit(functools.partial(clip_step, 0.01))(params, gradients)
  for name, leaf in new_params.items():
    leaf = np.asarray(leaf)
    expected = np.clip(np.asarray(params[name]) - np.asarray(gradients[name]), -0.01, 0.01)
    assert np.all(np.abs(leaf) <= np.float32(0.01)), name
    np.testing.assert_allclose(leaf, expected, atol=1e-5, err_msg=name)
  assert np.sum(np.abs(np.asarray(new_params["w"])) == np.float32(0.01)) > 1000


def test_weight_clipping_leaves_parameters_inside_with_zero_gradient_unchanged():
  params = {"w": jnp.asarray([[-0.009, 0.0], [0.004, 0.01]], jnp.float32)}
  gradients = jax.tree.map(jnp.zeros_like, params)
  np.testing.assert_array_equal(clip_step(0.01, params, gradients)["w"], params["w"])


def test_weight_clipping_rejects_missing_params_and_bad_clip_values():
  transformation = regularizers.weight_clipping(0.01)
  params = {"w": jnp.ones(3)}
  with pytest.raises(ValueError, match="params"):
    transformation.update(params, transformation.init(params))
  for clip_value in (0.0, -0.01, "0.01", True, None):
    with pytest.raises(errors.ConfigError, match="clip_value.*optimizer's clip"):
      regularizers.weight_clipping(clip_value)


def test_get_returns_the_penalties_and_rejects_unknown_names():
  assert regularizers.get("gradient_penalty") is regularizers.gradient_penalty
  assert regularizers.get("r1") is regularizers.r1_penalty
  assert regularizers.get("r2") is regularizers.r2_penalty
  assert regularizers.get("dragan") is regularizers.dragan_penalty
  expected = ("unknown penalty 'wgan_gp' (penalty.name); valid names: dragan, gradient_penalty, "
              "r1, r2")
  for find in (regularizers.get, regularizers.penalty):
    with pytest.raises(errors.ConfigError) as error:
      find("wgan_gp")
    assert str(error.value) == expected


def test_every_registered_penalty_is_its_public_function():
  critic = functools.partial(mlp_critic, mlp_params(4, jnp.float32))
  real, fake, key = random_inputs(5), random_inputs(6, scale=2.0), jax.random.key(7)
  public = {"gradient_penalty": regularizers.gradient_penalty(critic, real, fake, key),
            "r1": regularizers.r1_penalty(critic, real),
            "r2": regularizers.r2_penalty(critic, fake),
            "dragan": regularizers.dragan_penalty(critic, real, key)}
  assert set(regularizers.PENALTIES) == set(public)
  for name, expected in public.items():
    np.testing.assert_array_equal(regularizers.penalty(name)(critic, real, fake, key), expected,
                                  err_msg=name)


def test_a_registered_penalty_is_found_by_name(monkeypatch):
  def mean_output(disc_fn, real, fake, key):
    del fake, key
    return jnp.mean(disc_fn(real))

  monkeypatch.setitem(regularizers.PENALTIES, "mean_output", mean_output)
  assert regularizers.penalty("mean_output") is mean_output
  assert regularizers.get("mean_output") is mean_output
  real = random_inputs(8)
  np.testing.assert_allclose(
      regularizers.penalty("mean_output")(quadratic_critic, real, real, jax.random.key(0)),
      np.mean(quadratic_critic(real)), rtol=1e-6)
  with pytest.raises(errors.ConfigError, match="valid names: dragan, gradient_penalty, "
                                               "mean_output, r1, r2$"):
    regularizers.penalty("mean")


# ----------------------------------------------------------------------------- limited data


def test_consistency_penalty_is_the_mean_squared_output_change():
  rng = np.random.default_rng(0)
  logits, augmented = rng.normal(size=(2, 16)).astype(np.float32)
  np.testing.assert_allclose(regularizers.consistency_penalty(logits, augmented),
                             np.mean((augmented - logits) ** 2), rtol=1e-6)
  # Outputs with more axes: the squared norm per example, then the mean over examples.
  logits, augmented = rng.normal(size=(2, 8, 3)).astype(np.float32)
  np.testing.assert_allclose(regularizers.consistency_penalty(logits, augmented),
                             np.mean(np.sum((augmented - logits) ** 2, -1)), rtol=1e-6)
  grads = jax.grad(regularizers.consistency_penalty, argnums=(0, 1))(logits, augmented)
  np.testing.assert_allclose(grads[1], 2 * (augmented - logits) / 8, rtol=1e-5)
  np.testing.assert_allclose(grads[0], -grads[1], rtol=1e-6)


def test_debiased_moving_average_is_the_geometrically_weighted_mean():
  """After t values v_1..v_t, the debiased EMA is sum_i decay^(t-i) v_i / sum_i decay^(t-i)."""
  values = np.array([3.0, -1.0, 0.5, 2.0, 7.0])
  decay, average = 0.9, 0.0
  for t, value in enumerate(values, start=1):
    average, debiased = regularizers.ema_update(average, value, decay, t)
    weights = decay ** np.arange(t - 1, -1, -1)
    np.testing.assert_allclose(debiased, np.sum(weights * values[:t]) / weights.sum(), rtol=1e-5)
  np.testing.assert_allclose(regularizers.ema_update(0.0, 4.0, 0.99, 1)[1], 4.0, rtol=1e-6)


@pytest.mark.parametrize("one_sided", [True, False])
def test_lecam_penalty_against_numpy(one_sided):
  rng = np.random.default_rng(1)
  real, fake = rng.normal(size=(2, 32)).astype(np.float32)
  alpha_r, alpha_f = 0.3, -0.2
  real_gap, fake_gap = real - alpha_f, alpha_r - fake
  if one_sided:
    real_gap, fake_gap = np.maximum(real_gap, 0), np.maximum(fake_gap, 0)
  expected = np.mean(real_gap ** 2) + np.mean(fake_gap ** 2)
  penalty = regularizers.lecam_penalty(real, fake, alpha_r, alpha_f, one_sided=one_sided)
  np.testing.assert_allclose(penalty, expected, rtol=1e-6)
  # The averages are constants of the penalty: no gradient reaches them.
  grads = jax.grad(regularizers.lecam_penalty, argnums=(2, 3))(real, fake, alpha_r, alpha_f,
                                                                one_sided)
  assert grads == (0.0, 0.0)
  check_grads(lambda r, f: regularizers.lecam_penalty(r, f, alpha_r, alpha_f, one_sided),
              (real.astype(np.float64), fake.astype(np.float64)), order=1, modes=["rev"])
