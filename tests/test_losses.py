"""Tests of ganjax.losses against float64 numpy formulas, closed forms and scipy optimisation."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from jax.test_util import check_grads

from ganjax import divergences
from ganjax import errors
from ganjax import losses

BATCH = 16
LARGE = 1e4


def sigmoid(a):
  return 1.0 / (1.0 + np.exp(-a))


def np_log_d(a):
  return np.log(sigmoid(a))


def np_log_one_minus_d(a):
  return np.log(1.0 - sigmoid(a))


def random_logits(seed, shape=(BATCH,), scale=3.0):
  return scale * np.random.default_rng(seed).normal(size=shape)


def as_f32(x):
  return jnp.asarray(x, jnp.float32)


# Table 1 (f) and Table 2 (g_f, f*) of Nowozin et al. 2016, written out in numpy.
NP_FGAN = {
    "kl": dict(
        f=lambda u: u * np.log(u),
        g=lambda v: v,
        conjugate=lambda t: np.exp(t - 1.0)),
    "reverse_kl": dict(
        f=lambda u: -np.log(u),
        g=lambda v: -np.exp(-v),
        conjugate=lambda t: -1.0 - np.log(-t)),
    "pearson": dict(
        f=lambda u: (u - 1.0) ** 2,
        g=lambda v: v,
        conjugate=lambda t: 0.25 * t ** 2 + t),
    "squared_hellinger": dict(
        f=lambda u: (np.sqrt(u) - 1.0) ** 2,
        g=lambda v: 1.0 - np.exp(-v),
        conjugate=lambda t: t / (1.0 - t)),
    "jensen_shannon": dict(
        f=lambda u: -(u + 1.0) * np.log((1.0 + u) / 2.0) + u * np.log(u),
        g=lambda v: np.log(2.0) - np.log(1.0 + np.exp(-v)),
        conjugate=lambda t: -np.log(2.0 - np.exp(t))),
    "gan": dict(
        f=lambda u: u * np.log(u) - (u + 1.0) * np.log(u + 1.0),
        g=lambda v: -np.log(1.0 + np.exp(-v)),
        conjugate=lambda t: -np.log(1.0 - np.exp(t))),
}


def test_every_divergence_has_a_numpy_reference():
  assert set(NP_FGAN) == set(divergences.DIVERGENCES)


def _np_relativistic_average(favoured, other):
  return -(np.mean(np_log_d(favoured - np.mean(other)))
           + np.mean(np_log_one_minus_d(other - np.mean(favoured))))


# (name, loss on (real, fake), numpy reference on (real, fake)).
PAIR_CASES = [
    ("discriminator_loss", losses.discriminator_loss,
     lambda r, f: -(np.mean(np_log_d(r)) + np.mean(np_log_one_minus_d(f)))),
    ("value_function", losses.value_function,
     lambda r, f: np.mean(np_log_d(r)) + np.mean(np_log_one_minus_d(f))),
    ("minimax_generator_loss", lambda r, f: losses.minimax_generator_loss(f),
     lambda r, f: np.mean(np_log_one_minus_d(f))),
    ("non_saturating_generator_loss", lambda r, f: losses.non_saturating_generator_loss(f),
     lambda r, f: -np.mean(np_log_d(f))),
    ("wasserstein_discriminator_loss", losses.wasserstein_discriminator_loss,
     lambda r, f: np.mean(f) - np.mean(r)),
    ("wasserstein_generator_loss", lambda r, f: losses.wasserstein_generator_loss(f),
     lambda r, f: -np.mean(f)),
    ("hinge_discriminator_loss", losses.hinge_discriminator_loss,
     lambda r, f: np.mean(np.maximum(0.0, 1.0 - r)) + np.mean(np.maximum(0.0, 1.0 + f))),
    ("hinge_generator_loss", lambda r, f: losses.hinge_generator_loss(f),
     lambda r, f: -np.mean(f)),
    ("least_squares_discriminator_loss_0_1_1", losses.least_squares_discriminator_loss,
     lambda r, f: 0.5 * np.mean((r - 1.0) ** 2) + 0.5 * np.mean(f ** 2)),
    ("least_squares_generator_loss_0_1_1", lambda r, f: losses.least_squares_generator_loss(f),
     lambda r, f: 0.5 * np.mean((f - 1.0) ** 2)),
    ("least_squares_discriminator_loss_-1_1_0",
     lambda r, f: losses.least_squares_discriminator_loss(r, f, a=-1.0, b=1.0),
     lambda r, f: 0.5 * np.mean((r - 1.0) ** 2) + 0.5 * np.mean((f + 1.0) ** 2)),
    ("least_squares_generator_loss_-1_1_0",
     lambda r, f: losses.least_squares_generator_loss(f, c=0.0),
     lambda r, f: 0.5 * np.mean(f ** 2)),
    ("relativistic_discriminator_loss", losses.relativistic_discriminator_loss,
     lambda r, f: -np.mean(np.log(sigmoid(r - f)))),
    ("relativistic_generator_loss", losses.relativistic_generator_loss,
     lambda r, f: -np.mean(np.log(sigmoid(f - r)))),
    ("relativistic_average_discriminator_loss", losses.relativistic_average_discriminator_loss,
     _np_relativistic_average),
    ("relativistic_average_generator_loss", losses.relativistic_average_generator_loss,
     lambda r, f: _np_relativistic_average(f, r)),
]
for _name, _np_f in NP_FGAN.items():
  PAIR_CASES += [
      (f"fgan_discriminator_loss_{_name}",
       lambda r, f, name=_name: losses.fgan_discriminator_loss(r, f, name),
       lambda r, f, d=_np_f: -(np.mean(d["g"](r)) - np.mean(d["conjugate"](d["g"](f))))),
      (f"fgan_divergence_estimate_{_name}",
       lambda r, f, name=_name: losses.fgan_divergence_estimate(r, f, name),
       lambda r, f, d=_np_f: np.mean(d["g"](r)) - np.mean(d["conjugate"](d["g"](f)))),
      (f"fgan_generator_loss_{_name}",
       lambda r, f, name=_name: losses.fgan_generator_loss(f, name),
       lambda r, f, d=_np_f: np.mean(-d["conjugate"](d["g"](f)))),
      (f"fgan_generator_loss_{_name}_non_saturating",
       lambda r, f, name=_name: losses.fgan_generator_loss(f, name, non_saturating=True),
       lambda r, f, d=_np_f: -np.mean(d["g"](f))),
  ]


@pytest.mark.parametrize("shape", [(BATCH,), (4, 3, 2)])
@pytest.mark.parametrize("name,loss,reference", PAIR_CASES, ids=[c[0] for c in PAIR_CASES])
def test_loss_matches_numpy_formula(name, loss, reference, shape):
  real, fake = random_logits(0, shape), random_logits(1, shape)
  np.testing.assert_allclose(
      loss(as_f32(real), as_f32(fake)), reference(real, fake), rtol=2e-5, atol=1e-5)


def test_fgan_divergence_object_and_name_give_the_same_loss():
  real, fake = as_f32(random_logits(2)), as_f32(random_logits(3))
  np.testing.assert_allclose(
      losses.fgan_discriminator_loss(real, fake, divergences.JENSEN_SHANNON),
      losses.fgan_discriminator_loss(real, fake, "jensen_shannon"), rtol=1e-6)
  with pytest.raises(ValueError, match="unknown f-divergence"):
    losses.fgan_generator_loss(fake, "renyi")


def test_relativistic_loss_pairs_elements_in_order():
  real = np.array([2.0, -1.0, 0.5])
  fake = np.array([0.0, 1.0, -3.0])
  expected = -np.mean(np.log(sigmoid(real - fake)))
  np.testing.assert_allclose(
      losses.relativistic_discriminator_loss(as_f32(real), as_f32(fake)), expected, rtol=1e-6)
  # Pairing matters: a permuted fake batch gives another value, unlike the average variant.
  permuted = fake[[2, 0, 1]]
  assert not np.isclose(
      losses.relativistic_discriminator_loss(as_f32(real), as_f32(permuted)), expected)
  np.testing.assert_allclose(
      losses.relativistic_average_discriminator_loss(as_f32(real), as_f32(permuted)),
      losses.relativistic_average_discriminator_loss(as_f32(real), as_f32(fake)), rtol=1e-6)


# Extreme logits: finite values and gradients in float32.

EXTREME = np.array([LARGE, -LARGE, LARGE, -LARGE, 0.0, 2.0])
EXTREME_FAKE = np.array([LARGE, -LARGE, -LARGE, LARGE, -1.0, 0.0])

# Probability-based losses are finite on both batches at +-1e4.
PROBABILITY_LOSSES = {
    "discriminator_loss": losses.discriminator_loss,
    "value_function": losses.value_function,
    "minimax_generator_loss": lambda r, f: losses.minimax_generator_loss(f),
    "non_saturating_generator_loss": lambda r, f: losses.non_saturating_generator_loss(f),
    "relativistic_discriminator_loss": losses.relativistic_discriminator_loss,
    "relativistic_generator_loss": losses.relativistic_generator_loss,
    "relativistic_average_discriminator_loss": losses.relativistic_average_discriminator_loss,
    "relativistic_average_generator_loss": losses.relativistic_average_generator_loss,
    **{f"fgan_{d}_{part}": fn
       for d in ("gan", "jensen_shannon")
       for part, fn in (
           ("discriminator", lambda r, f, d=d: losses.fgan_discriminator_loss(r, f, d)),
           ("generator", lambda r, f, d=d: losses.fgan_generator_loss(f, d)),
           ("generator_non_saturating",
            lambda r, f, d=d: losses.fgan_generator_loss(f, d, non_saturating=True)))},
}


def _assert_finite_value_and_gradients(loss, real, fake):
  value, gradients = jax.value_and_grad(loss, argnums=(0, 1))(as_f32(real), as_f32(fake))
  assert np.isfinite(value)
  for gradient in gradients:
    assert np.all(np.isfinite(gradient)), gradient


@pytest.mark.parametrize("name", sorted(PROBABILITY_LOSSES))
def test_probability_losses_are_finite_at_extreme_logits(name):
  _assert_finite_value_and_gradients(PROBABILITY_LOSSES[name], EXTREME, EXTREME_FAKE)
  _assert_finite_value_and_gradients(PROBABILITY_LOSSES[name], EXTREME_FAKE, EXTREME)


# The f-GAN terms at v = +-1e4 and their slopes, from Table 2 of Nowozin et al. 2016: for each
# divergence and extreme, (g_f(v), g_f'(v)) and (f*(g_f(v)), (f* o g_f)'(v)), each in its limit
# (e^-1e4 = 0 and softplus(1e4) = 1e4 exactly in float32), or None where the exact value exceeds
# the float32 range:
#   kl:                f*(g(v)) = exp(v - 1): finite only for v below ~89.
#   reverse_kl:        g(v) = -exp(-v): finite only for v above ~-88; f*(g(v)) = v - 1.
#   squared_hellinger: g(v) = 1 - exp(-v) (v above ~-88) and f*(g(v)) = exp(v) - 1 (v below ~88).
#   pearson:           quadratic, finite everywhere (2.5e7 at 1e4).
#   jensen_shannon:    g(v) = log 2 - softplus(-v), f*(g(v)) = softplus(v) - log 2.
#   gan:               g(v) = -softplus(-v), f*(g(v)) = softplus(v).
LOG2 = np.log(2.0)
FGAN_LIMITS = {
    "kl": {LARGE: ((LARGE, 1.0), None), -LARGE: ((-LARGE, 1.0), (0.0, 0.0))},
    "reverse_kl": {LARGE: ((0.0, 0.0), (LARGE - 1.0, 1.0)), -LARGE: (None, (-LARGE - 1.0, 1.0))},
    "pearson": {LARGE: ((LARGE, 1.0), (LARGE ** 2 / 4 + LARGE, LARGE / 2 + 1.0)),
                -LARGE: ((-LARGE, 1.0), (LARGE ** 2 / 4 - LARGE, -LARGE / 2 + 1.0))},
    "squared_hellinger": {LARGE: ((1.0, 0.0), None), -LARGE: (None, (-1.0, 0.0))},
    "jensen_shannon": {LARGE: ((LOG2, 0.0), (LARGE - LOG2, 1.0)),
                       -LARGE: ((LOG2 - LARGE, 1.0), (-LOG2, 0.0))},
    "gan": {LARGE: ((0.0, 0.0), (LARGE, 1.0)), -LARGE: ((-LARGE, 1.0), (0.0, 0.0))},
}


def test_every_divergence_has_its_limits():
  assert set(FGAN_LIMITS) == set(divergences.DIVERGENCES)


def _fgan_terms(name, which):
  """Outputs v with the values and slopes of g_f (which = 0) or f* o g_f (which = 1) there.

  v holds the extremes where the term is representable, with the limits of FGAN_LIMITS, and
  three moderate values, with float64 numpy and its central differences.
  """
  np_f = NP_FGAN[name]
  term = np_f["g"] if which == 0 else lambda v: np_f["conjugate"](np_f["g"](v))
  extremes = [v for v, limits in FGAN_LIMITS[name].items() if limits[which] is not None]
  moderate, h = np.array([0.0, 1.5, -2.0]), 1e-5
  outputs = np.concatenate([extremes, moderate])
  values = np.concatenate([[FGAN_LIMITS[name][v][which][0] for v in extremes], term(moderate)])
  slopes = np.concatenate([[FGAN_LIMITS[name][v][which][1] for v in extremes],
                           (term(moderate + h) - term(moderate - h)) / (2.0 * h)])
  return outputs, values, slopes


@pytest.mark.parametrize("name", sorted(FGAN_LIMITS))
def test_fgan_losses_reach_their_limits_where_the_bound_is_representable(name):
  # Real outputs pass through g_f; fake outputs through f* o g_f, or through g_f alone in the
  # non-saturating generator loss.
  real_v, g, g_slope = _fgan_terms(name, 0)
  fake_v, conjugate, conjugate_slope = _fgan_terms(name, 1)
  n_real, n_fake = len(real_v), len(fake_v)
  no_gradient = np.zeros(n_real)
  # (loss of (real, fake), real, fake, value, gradient in real, gradient in fake).
  cases = {
      "estimate": (lambda r, f: losses.fgan_divergence_estimate(r, f, name), real_v, fake_v,
                   np.mean(g) - np.mean(conjugate), g_slope / n_real, -conjugate_slope / n_fake),
      "discriminator": (lambda r, f: losses.fgan_discriminator_loss(r, f, name), real_v, fake_v,
                        np.mean(conjugate) - np.mean(g), -g_slope / n_real,
                        conjugate_slope / n_fake),
      "generator": (lambda r, f: losses.fgan_generator_loss(f, name), real_v, fake_v,
                    -np.mean(conjugate), no_gradient, -conjugate_slope / n_fake),
      "generator_non_saturating": (
          lambda r, f: losses.fgan_generator_loss(f, name, non_saturating=True), real_v, real_v,
          -np.mean(g), no_gradient, -g_slope / n_real),
  }
  # float32 means of terms up to 2.5e7 (pearson): a few ulp of the terms' mean magnitude.
  scale = np.abs(g).mean() + np.abs(conjugate).mean()
  for part, (loss, real, fake, value, real_gradient, fake_gradient) in cases.items():
    got, gradients = jax.value_and_grad(loss, argnums=(0, 1))(as_f32(real), as_f32(fake))
    np.testing.assert_allclose(got, value, rtol=1e-6, atol=1e-6 * scale, err_msg=part)
    # Slopes that vanish in the limit (e^-1e4) must be exactly 0; the others are float32
    # elementary functions against central differences accurate to 1e-9.
    for gradient, expected in zip(gradients, (real_gradient, fake_gradient)):
      np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-30, err_msg=part)


def test_relativistic_average_losses_reach_their_limits():
  n = 4
  plus, minus = as_f32(np.full(n, LARGE)), as_f32(np.full(n, -LARGE))
  # Each term is softplus of +-2e4 (a logit less the other batch's mean logit): 0 where the
  # loss's player has the batches ranked as it wants with confidence, 2e4 where they are ranked
  # the other way. A term's slope is then 0 or 1 in the logit and in the other batch's mean, so
  # in the wrong ranking each logit has slope 2 / n, down for the batch the player favours (real
  # for the discriminator, fake for the generator) and up for the other.
  for loss, right, wrong, wrong_slopes in (
      (losses.relativistic_average_discriminator_loss, (plus, minus), (minus, plus), (-1, 1)),
      (losses.relativistic_average_generator_loss, (minus, plus), (plus, minus), (1, -1))):
    value, gradients = jax.value_and_grad(loss, argnums=(0, 1))(*right)
    np.testing.assert_allclose(value, 0.0, atol=1e-30)
    for gradient in gradients:
      np.testing.assert_allclose(gradient, 0.0, atol=1e-30)
    value, gradients = jax.value_and_grad(loss, argnums=(0, 1))(*wrong)
    np.testing.assert_allclose(value, 4.0 * LARGE, rtol=1e-6)
    for gradient, sign in zip(gradients, wrong_slopes):
      np.testing.assert_allclose(gradient, sign * 2.0 / n)

  # Mixed extreme and moderate logits against the float64 formula with a stable softplus
  # (log(1 + e^x) = logaddexp(0, x), exact at these magnitudes): float32 rounds the logit
  # differences of about 1e4 by 5e-4 at most.
  def np_relativistic_average(favoured, other):
    return (np.mean(np.logaddexp(0.0, np.mean(other) - favoured))
            + np.mean(np.logaddexp(0.0, other - np.mean(favoured))))

  for real, fake in ((EXTREME, EXTREME_FAKE), (EXTREME_FAKE, EXTREME)):
    np.testing.assert_allclose(
        losses.relativistic_average_discriminator_loss(as_f32(real), as_f32(fake)),
        np_relativistic_average(real, fake), rtol=1e-6)
    np.testing.assert_allclose(
        losses.relativistic_average_generator_loss(as_f32(real), as_f32(fake)),
        np_relativistic_average(fake, real), rtol=1e-6)


def test_extreme_logit_gradients_have_their_limiting_values():
  n = 4
  plus, minus = as_f32(np.full(n, LARGE)), as_f32(np.full(n, -LARGE))

  def grads(loss, real, fake):
    return [np.asarray(g) for g in jax.grad(loss, argnums=(0, 1))(real, fake)]

  # softplus(1e4) = 1e4 per term; softplus(-1e4) = 0.
  np.testing.assert_allclose(losses.discriminator_loss(minus, plus), 2.0 * LARGE, rtol=1e-6)
  np.testing.assert_allclose(losses.discriminator_loss(plus, minus), 0.0, atol=1e-30)
  # d/da of -log(1 - sigmoid(a)) / n is D / n: 1/n for a fake called real, 0 for one rejected.
  _, fake_grad = grads(losses.discriminator_loss, plus, plus)
  np.testing.assert_allclose(fake_grad, 1.0 / n)
  real_grad, fake_grad = grads(losses.discriminator_loss, minus, minus)
  np.testing.assert_allclose(real_grad, -1.0 / n)
  np.testing.assert_allclose(fake_grad, 0.0, atol=1e-30)
  real_grad, _ = grads(losses.discriminator_loss, plus, minus)
  np.testing.assert_allclose(real_grad, 0.0, atol=1e-30)

  np.testing.assert_allclose(jax.grad(losses.minimax_generator_loss)(plus), -1.0 / n)
  np.testing.assert_allclose(jax.grad(losses.minimax_generator_loss)(minus), 0.0, atol=1e-30)
  np.testing.assert_allclose(jax.grad(losses.non_saturating_generator_loss)(minus), -1.0 / n)
  np.testing.assert_allclose(
      jax.grad(losses.non_saturating_generator_loss)(plus), 0.0, atol=1e-30)

  # RSGAN: d/dC(x_r) of -log sigmoid(C(x_r) - C(x_f)) / n is -(1 - sigmoid(C(x_r) - C(x_f))) / n.
  real_grad, fake_grad = grads(losses.relativistic_discriminator_loss, minus, plus)
  np.testing.assert_allclose(real_grad, -1.0 / n)
  np.testing.assert_allclose(fake_grad, 1.0 / n)
  real_grad, fake_grad = grads(losses.relativistic_generator_loss, plus, minus)
  np.testing.assert_allclose(real_grad, 1.0 / n)
  np.testing.assert_allclose(fake_grad, -1.0 / n)


# The original GAN.


@pytest.mark.parametrize(
    "p_data,p_g", [(0.5, 0.5), (0.9, 0.1), (0.2, 0.6), (0.05, 0.7), (3.0, 1.0)])
def test_pointwise_minimiser_of_discriminator_loss_is_optimal_discriminator(p_data, p_g):
  with jax.enable_x64(True):

    def pointwise_loss(a):
      # A fake logit of -inf contributes log(1 - D) = 0, a real one of +inf log D = 0, so each
      # call isolates one term: p_data * softplus(-a) + p_g * softplus(a).
      a = jnp.array([a])
      real_term = losses.discriminator_loss(real_logits=a, fake_logits=jnp.array([-jnp.inf]))
      fake_term = losses.discriminator_loss(real_logits=jnp.array([jnp.inf]), fake_logits=a)
      return float(p_data * real_term + p_g * fake_term)

    result = scipy.optimize.minimize_scalar(
        pointwise_loss, bracket=(-5.0, 5.0), options=dict(xtol=1e-12))
  np.testing.assert_allclose(result.x, np.log(p_data / p_g), atol=1e-6)
  np.testing.assert_allclose(sigmoid(result.x), p_data / (p_data + p_g), atol=1e-7)


def test_value_function_relations_and_equilibrium_value():
  real, fake = random_logits(4), random_logits(5)
  value = losses.value_function(as_f32(real), as_f32(fake))
  np.testing.assert_allclose(value, -losses.discriminator_loss(as_f32(real), as_f32(fake)),
                             rtol=1e-6)
  real_term = np.mean(np.log(sigmoid(real)))
  np.testing.assert_allclose(
      losses.minimax_generator_loss(as_f32(fake)), value - real_term, rtol=1e-5)
  zeros = jnp.zeros((3, 5))
  np.testing.assert_allclose(losses.value_function(zeros, zeros), -np.log(4.0), rtol=1e-6)
  np.testing.assert_allclose(losses.discriminator_loss(zeros, zeros), np.log(4.0), rtol=1e-6)


@pytest.mark.parametrize("a", [-30.0, -8.0, -2.0, 0.0, 1.5, 6.0])
def test_minimax_generator_gradient_saturates_and_non_saturating_does_not(a):
  logit = jnp.array([a], jnp.float32)
  minimax_gradient = jax.grad(losses.minimax_generator_loss)(logit)[0]
  non_saturating_gradient = jax.grad(losses.non_saturating_generator_loss)(logit)[0]
  d = sigmoid(a)
  np.testing.assert_allclose(minimax_gradient, -d, rtol=1e-5, atol=1e-30)
  np.testing.assert_allclose(non_saturating_gradient, -(1.0 - d), rtol=1e-5, atol=1e-7)
  if a <= -8.0:
    # The discriminator rejects the fake (D < 3.4e-4): the minimax gradient has all but
    # vanished while the non-saturating one is still close to -1.
    assert abs(minimax_gradient) < 1e-3
    assert non_saturating_gradient < -0.999


# f-GAN.


def test_fgan_gan_row_is_the_original_gan():
  real, fake = as_f32(random_logits(6)), as_f32(random_logits(7))
  np.testing.assert_allclose(losses.fgan_discriminator_loss(real, fake, "gan"),
                             losses.discriminator_loss(real, fake), rtol=1e-6)
  np.testing.assert_allclose(losses.fgan_generator_loss(fake, "gan"),
                             losses.minimax_generator_loss(fake), rtol=1e-6)
  np.testing.assert_allclose(losses.fgan_generator_loss(fake, "gan", non_saturating=True),
                             losses.non_saturating_generator_loss(fake), rtol=1e-6)


# Two distributions on 5 bins with probabilities in twentieths: repeating each bin's critic value
# 20 p_i times makes a batch whose mean is the expectation under p.
P_COUNTS = np.array([1, 2, 3, 4, 10])
Q_COUNTS = np.array([6, 5, 4, 3, 2])


@pytest.mark.parametrize("name", sorted(NP_FGAN))
def test_maximised_variational_bound_is_the_f_divergence(name):
  p, q = P_COUNTS / 20.0, Q_COUNTS / 20.0
  np_f = NP_FGAN[name]
  true_divergence = np.sum(q * np_f["f"](p / q))

  with jax.enable_x64(True):

    def negative_bound(v):
      v = jnp.asarray(v)
      return losses.fgan_discriminator_loss(
          real_v=jnp.repeat(v, P_COUNTS), fake_v=jnp.repeat(v, Q_COUNTS), divergence=name)

    value_and_grad = jax.jit(jax.value_and_grad(negative_bound))
    result = scipy.optimize.minimize(
        lambda v: tuple(np.asarray(x) for x in value_and_grad(v)), np.zeros(5), jac=True,
        method="BFGS", options=dict(gtol=1e-8))
    estimate = float(losses.fgan_divergence_estimate(
        jnp.repeat(result.x, P_COUNTS), jnp.repeat(result.x, Q_COUNTS), name))

  np.testing.assert_allclose(-result.fun, true_divergence, rtol=1e-7, atol=1e-9)
  np.testing.assert_allclose(estimate, true_divergence, rtol=1e-7, atol=1e-9)
  # The maximiser is T*(x) = g_f(v*(x)) = f'(p(x) / q(x)).
  ratio, h = p / q, 1e-5
  f_prime = (np_f["f"](ratio + h) - np_f["f"](ratio - h)) / (2.0 * h)
  np.testing.assert_allclose(np_f["g"](result.x), f_prime, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", sorted(NP_FGAN))
def test_fgan_bound_is_below_the_divergence_for_any_critic(name):
  p, q = P_COUNTS / 20.0, Q_COUNTS / 20.0
  true_divergence = np.sum(q * NP_FGAN[name]["f"](p / q))
  for seed in range(5):
    v = random_logits(seed, (5,), scale=1.0)
    estimate = losses.fgan_divergence_estimate(
        as_f32(np.repeat(v, P_COUNTS)), as_f32(np.repeat(v, Q_COUNTS)), name)
    assert estimate <= true_divergence + 1e-6


@pytest.mark.parametrize("name", sorted(NP_FGAN))
def test_fgan_generator_loss_non_saturating_flips_to_the_activation(name):
  fake = random_logits(8)
  np_f = NP_FGAN[name]
  saturating = losses.fgan_generator_loss(as_f32(fake), name)
  non_saturating = losses.fgan_generator_loss(as_f32(fake), name, non_saturating=True)
  np.testing.assert_allclose(saturating, -np.mean(np_f["conjugate"](np_f["g"](fake))), rtol=1e-5)
  np.testing.assert_allclose(non_saturating, -np.mean(np_f["g"](fake)), rtol=1e-5)
  # The saturating loss is the fake term of the bound: the bound minus its real term.
  real = random_logits(9)
  np.testing.assert_allclose(
      saturating,
      losses.fgan_divergence_estimate(as_f32(real), as_f32(fake), name)
      - np.mean(np_f["g"](real)), rtol=1e-4, atol=1e-5)


# Least squares.


@pytest.mark.parametrize("coding,is_pearson", [("least_squares_symmetric", True),
                                               ("least_squares", False)])
def test_least_squares_coding_minus_one_one_zero_gives_pearson_chi2(coding, is_pearson):
  # Mao et al. 2017, section 3.2.2: with D optimal and b - c = 1, b - a = 2,
  # 2 C(G) = 2 (1/2 E_p_data[(D*(x) - c)^2] + 1/2 E_p_g[(D*(x) - c)^2])
  #        = Pearson chi^2(p_data + p_g || 2 p_g).
  objective = losses.get(coding)
  p_data, p_g = P_COUNTS / 20.0, Q_COUNTS / 20.0
  with jax.enable_x64(True):

    def discriminator_loss(outputs):
      outputs = jnp.asarray(outputs)
      return objective.discriminator(jnp.repeat(outputs, P_COUNTS), jnp.repeat(outputs, Q_COUNTS))

    value_and_grad = jax.jit(jax.value_and_grad(discriminator_loss))
    result = scipy.optimize.minimize(
        lambda d: tuple(np.asarray(x) for x in value_and_grad(d)), np.zeros(5), jac=True,
        method="BFGS", options=dict(gtol=1e-12))
    optimal = jnp.asarray(result.x)
    criterion = float(objective.generator(None, jnp.repeat(optimal, P_COUNTS))
                      + objective.generator(None, jnp.repeat(optimal, Q_COUNTS)))

  pearson = np.sum((2.0 * p_g - (p_data + p_g)) ** 2 / (p_data + p_g))
  if is_pearson:
    np.testing.assert_allclose(result.x, (p_data - p_g) / (p_data + p_g), atol=1e-7)
    np.testing.assert_allclose(2.0 * criterion, pearson, rtol=1e-7)
  else:
    np.testing.assert_allclose(result.x, p_data / (p_data + p_g), atol=1e-7)
    assert not np.isclose(2.0 * criterion, pearson)


# The registry.

EXPECTED_NAMES = {
    "minimax", "non_saturating", "wasserstein", "hinge", "least_squares",
    "least_squares_symmetric", "relativistic", "relativistic_average", "fgan_kl",
    "fgan_reverse_kl", "fgan_pearson", "fgan_squared_hellinger", "fgan_jensen_shannon", "fgan_gan",
}


# Each objective's (discriminator, generator) losses, by their names in PAIR_CASES.
OBJECTIVE_LOSSES = {
    "minimax": ("discriminator_loss", "minimax_generator_loss"),
    "non_saturating": ("discriminator_loss", "non_saturating_generator_loss"),
    "wasserstein": ("wasserstein_discriminator_loss", "wasserstein_generator_loss"),
    "hinge": ("hinge_discriminator_loss", "hinge_generator_loss"),
    "least_squares": ("least_squares_discriminator_loss_0_1_1",
                      "least_squares_generator_loss_0_1_1"),
    "least_squares_symmetric": ("least_squares_discriminator_loss_-1_1_0",
                                "least_squares_generator_loss_-1_1_0"),
    "relativistic": ("relativistic_discriminator_loss", "relativistic_generator_loss"),
    "relativistic_average": ("relativistic_average_discriminator_loss",
                             "relativistic_average_generator_loss"),
    **{f"fgan_{name}": (f"fgan_discriminator_loss_{name}", f"fgan_generator_loss_{name}")
       for name in NP_FGAN},
}


def test_every_objective_is_the_numpy_formula_of_its_losses():
  assert set(OBJECTIVE_LOSSES) == EXPECTED_NAMES
  references = {name: reference for name, _, reference in PAIR_CASES}
  real, fake = random_logits(16), random_logits(17)
  for name, loss_names in OBJECTIVE_LOSSES.items():
    for loss, loss_name in zip(losses.get(name), loss_names):
      # As in test_loss_matches_numpy_formula.
      np.testing.assert_allclose(loss(as_f32(real), as_f32(fake)),
                                 references[loss_name](real, fake), rtol=2e-5, atol=1e-5,
                                 err_msg=f"{name}: {loss_name}")


def test_objectives_are_the_documented_names():
  assert set(losses.OBJECTIVES) == EXPECTED_NAMES
  assert {f"fgan_{name}" for name in divergences.DIVERGENCES} <= EXPECTED_NAMES


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_get_unpacks_into_two_callables(name):
  objective = losses.get(name)
  assert objective is losses.OBJECTIVES[name]
  d_loss, g_loss = objective
  assert d_loss is objective.discriminator and g_loss is objective.generator
  assert callable(d_loss) and callable(g_loss)


def test_every_objective_gives_the_same_values_under_jit():
  real, fake = as_f32(random_logits(10, scale=1.0)), as_f32(random_logits(11, scale=1.0))

  def all_values(r, f):
    return {name: (objective.discriminator(r, f), objective.generator(r, f))
            for name, objective in losses.OBJECTIVES.items()}

  eager, jitted = all_values(real, fake), jax.jit(all_values)(real, fake)
  assert set(eager) == EXPECTED_NAMES
  for name in EXPECTED_NAMES:
    for value, jitted_value in zip(eager[name], jitted[name]):
      assert value.shape == () and np.isfinite(value), name
      np.testing.assert_allclose(jitted_value, value, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_objective_gradients_match_finite_differences(name):
  objective = losses.get(name)
  # Away from the hinge's kinks at +-1 so that finite differences are valid.
  real = np.array([0.3, -0.4, 1.7, -2.2, 0.05, 0.6])
  fake = np.array([-0.7, 0.2, -1.6, 2.4, 0.45, -0.1])
  with jax.enable_x64(True):
    args = (jnp.asarray(real), jnp.asarray(fake))
    for loss in objective:
      check_grads(loss, args, order=2, modes=["rev"], atol=1e-5, rtol=1e-5)


def test_generator_ignores_real_outputs_except_relativistic():
  real, fake = as_f32(random_logits(12)), as_f32(random_logits(13))
  other_real = as_f32(random_logits(14))
  for name in sorted(EXPECTED_NAMES):
    objective = losses.get(name)
    changes = not np.isclose(objective.generator(real, fake), objective.generator(other_real, fake))
    assert changes == objective.generator_uses_real, name


def test_objective_flags():
  uses_real = {name for name in EXPECTED_NAMES if losses.get(name).generator_uses_real}
  assert uses_real == {"relativistic", "relativistic_average"}
  probability = {name for name in EXPECTED_NAMES if losses.get(name).probability_outputs}
  assert probability == {
      "minimax", "non_saturating", "relativistic", "relativistic_average", "fgan_gan"}


def test_minimax_and_non_saturating_share_the_discriminator_loss():
  assert losses.get("minimax").discriminator is losses.discriminator_loss
  assert losses.get("non_saturating").discriminator is losses.discriminator_loss
  fake = as_f32(random_logits(15))
  np.testing.assert_allclose(losses.get("minimax").generator(None, fake),
                             losses.minimax_generator_loss(fake))
  np.testing.assert_allclose(losses.get("non_saturating").generator(None, fake),
                             losses.non_saturating_generator_loss(fake))


def test_objective_is_frozen():
  with pytest.raises(AttributeError):
    losses.get("hinge").generator_uses_real = True


@pytest.mark.parametrize("bad_name", ["wgan", "", "Hinge", None])
def test_unknown_name_lists_valid_names(bad_name):
  valid = ", ".join(sorted(EXPECTED_NAMES))
  expected = f"unknown loss {bad_name!r}; valid names: {valid}"
  with pytest.raises(errors.ConfigError, match=f"^{re.escape(expected)}$"):
    losses.get(bad_name)


def _numpy_cross_entropy(logits, labels):
  logits = np.asarray(logits, np.float64)
  shifted = logits - logits.max(-1, keepdims=True)
  log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
  return -np.mean(log_p[np.arange(len(labels)), labels])


def test_auxiliary_classifier_losses_against_numpy_cross_entropy():
  rng = np.random.default_rng(0)
  real, fake, twin = (rng.normal(0, 3, (32, 10)).astype(np.float32) for _ in range(3))
  real_labels, fake_labels = rng.integers(0, 10, 32), rng.integers(0, 10, 32)
  ce_real = _numpy_cross_entropy(real, real_labels)
  ce_fake = _numpy_cross_entropy(fake, fake_labels)
  ce_twin = _numpy_cross_entropy(twin, fake_labels)
  # float32 log-softmax against float64: relative 1e-6.
  np.testing.assert_allclose(losses.classification_loss(real, real_labels), ce_real, rtol=1e-6)
  np.testing.assert_allclose(losses.acgan_discriminator_loss(real, real_labels, fake, fake_labels),
                             ce_real + ce_fake, rtol=1e-6)
  np.testing.assert_allclose(losses.acgan_generator_loss(fake, fake_labels), ce_fake, rtol=1e-6)
  np.testing.assert_allclose(losses.tac_discriminator_loss(real, real_labels, twin, fake_labels),
                             ce_real + ce_twin, rtol=1e-6)
  np.testing.assert_allclose(losses.tac_generator_loss(fake, twin, fake_labels),
                             ce_fake - ce_twin, rtol=1e-5, atol=1e-6)
  # A confident, correct head costs nothing; a uniform one costs log K.
  confident = 50.0 * np.eye(10, dtype=np.float32)[real_labels]
  assert float(losses.classification_loss(confident, real_labels)) < 1e-6
  np.testing.assert_allclose(losses.classification_loss(np.zeros((4, 10)), [0, 1, 2, 3]),
                             np.log(10), rtol=1e-6)
