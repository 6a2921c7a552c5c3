"""Tests of ganjax.theory against independent computations.

Each result is checked against a computation that shares nothing with the code under test:
closed forms, scipy quadrature in float64, scipy optimisation or central finite differences.
Identities between ganjax.theory's own functions are checked in addition, not instead.
"""
import inspect
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from ganjax import divergences
from ganjax import losses
from ganjax import theory

LOG2 = math.log(2.0)
LOG4 = math.log(4.0)

# Wide enough that the densities below carry no mass beyond it, narrow enough that none of them
# underflows float32 (below ~1e-38) inside it, where KL(p || q) would see q = 0 < p.
X = np.linspace(-7.0, 8.0, 3001)
DX = float(X[1] - X[0])

GAUSSIAN_PAIRS = [  # (mean_p, std_p, mean_q, std_q)
    (0.0, 1.0, 1.0, 1.0),
    (0.0, 1.0, 1.5, 0.7),
    (-1.0, 0.8, 2.0, 1.3),
    (0.5, 1.2, 0.5, 0.6),
]


def _quad(integrand, low=-20.0, high=20.0):
  value, _ = integrate.quad(integrand, low, high, limit=400, epsabs=1e-11, epsrel=1e-10,
                            points=(-3.0, 0.0, 3.0))
  return value


def _gaussians(mean_p, std_p, mean_q, std_q):
  """Float32 grid densities and float64 scipy densities of the same pair."""
  p = theory.gaussian_density(X, mean_p, std_p)
  q = theory.gaussian_density(X, mean_q, std_q)
  p_exact = stats.norm(mean_p, std_p).pdf
  q_exact = stats.norm(mean_q, std_q).pdf
  return p, q, p_exact, q_exact


def _central_difference(fn, theta, step=1e-2):
  return (float(fn(theta + step)) - float(fn(theta - step))) / (2.0 * step)


# ------------------------------------------------------------------------------------------------
# Gaussian densities.


def test_gaussian_density_and_mixture_match_scipy():
  np.testing.assert_allclose(
      theory.gaussian_density(X, 0.7, 1.3), stats.norm(0.7, 1.3).pdf(X), rtol=1e-5, atol=1e-12)
  means, stds, weights = [-2.0, 0.5, 3.0], [0.5, 1.0, 0.8], [0.2, 0.5, 0.3]
  expected = sum(w * stats.norm(m, s).pdf(X) for m, s, w in zip(means, stds, weights))
  mixture = theory.gaussian_mixture_density(X, means, stds, weights)
  assert mixture.shape == X.shape
  np.testing.assert_allclose(mixture, expected, rtol=1e-5, atol=1e-12)
  np.testing.assert_allclose(float(jnp.sum(mixture) * DX), 1.0, rtol=1e-5)


@pytest.mark.parametrize("mean_p, std_p, mean_q, std_q", GAUSSIAN_PAIRS)
def test_gaussian_kl_matches_quadrature(mean_p, std_p, mean_q, std_q):
  p, q = stats.norm(mean_p, std_p), stats.norm(mean_q, std_q)
  expected = _quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)))
  np.testing.assert_allclose(
      float(theory.gaussian_kl(mean_p, std_p, mean_q, std_q)), expected, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------------------------
# The optimal discriminator, V and C(G).


def test_optimal_discriminator_pointwise_and_where_both_densities_vanish():
  p = np.array([0.3, 0.0, 2.0, 0.0, 1e-30, 5.0], np.float32)
  q = np.array([0.1, 0.4, 2.0, 0.0, 0.0, 1e-20], np.float32)
  d_star = theory.optimal_discriminator(p, q)
  np.testing.assert_allclose(d_star, [0.75, 0.0, 0.5, 0.5, 1.0, 1.0], rtol=1e-6)
  assert np.all(np.isfinite(d_star))


def test_value_function_is_maximised_by_the_optimal_discriminator():
  # Equal widths keep p / q within float32 range on the grid, so D* does not round to 0 or 1.
  p = theory.gaussian_density(X, 0.0, 1.0)
  q = theory.gaussian_density(X, 1.0, 1.0)
  d_star = theory.optimal_discriminator(p, q)
  best = float(theory.value_function(d_star, p, q, DX))
  np.testing.assert_allclose(best, float(theory.virtual_training_criterion(p, q, DX)), atol=1e-5)
  rng = np.random.default_rng(0)
  others = [np.full_like(X, 0.5), np.clip(d_star + 0.05, 1e-6, 1 - 1e-6),
            np.clip(d_star - 0.05, 1e-6, 1 - 1e-6),
            np.clip(d_star + rng.uniform(-0.2, 0.2, X.shape), 1e-6, 1 - 1e-6)]
  for other in others:
    assert float(theory.value_function(other, p, q, DX)) < best - 1e-4


def test_value_function_uses_zero_log_zero_and_disjoint_supports():
  # Uniform densities on [0, 1) and [2, 3): D* is 1 on the data, 0 on the fakes, 1/2 elsewhere.
  grid = np.arange(0.0, 4.0, 0.01)
  dx = 0.01
  p = np.where(grid < 1.0 - 1e-9, 1.0, 0.0).astype(np.float32)
  q = np.where((grid >= 2.0 - 1e-9) & (grid < 3.0 - 1e-9), 1.0, 0.0).astype(np.float32)
  d_star = theory.optimal_discriminator(p, q)
  assert float(theory.value_function(d_star, p, q, dx)) == 0.0
  assert float(theory.virtual_training_criterion(p, q, dx)) == pytest.approx(0.0, abs=1e-6)
  assert float(theory.jensen_shannon_divergence(p, q, dx)) == pytest.approx(LOG2, rel=1e-5)
  assert float(theory.kl_divergence(p, q, dx)) == np.inf
  # A discriminator that calls a data point fake costs -inf.
  assert float(theory.value_function(np.zeros_like(p), p, q, dx)) == -np.inf


@pytest.mark.parametrize("mean_p, std_p, mean_q, std_q", GAUSSIAN_PAIRS)
def test_virtual_training_criterion_matches_quadrature_and_theorem_1(mean_p, std_p, mean_q, std_q):
  p, q, p_exact, q_exact = _gaussians(mean_p, std_p, mean_q, std_q)

  def integrand(x):
    a, b = p_exact(x), q_exact(x)
    return special.xlogy(a, a / (a + b)) + special.xlogy(b, b / (a + b))

  criterion = float(theory.virtual_training_criterion(p, q, DX))
  np.testing.assert_allclose(criterion, _quad(integrand), atol=1e-4)
  jsd = float(theory.jensen_shannon_divergence(p, q, DX))
  np.testing.assert_allclose(criterion, -LOG4 + 2.0 * jsd, atol=1e-5)
  assert criterion > -LOG4 + 1e-3


def test_virtual_training_criterion_is_minus_log_4_at_the_equilibrium():
  p = theory.gaussian_mixture_density(X, [-2.0, 1.0], [0.6, 1.0], [0.3, 0.7])
  np.testing.assert_allclose(float(theory.virtual_training_criterion(p, p, DX)), -LOG4, atol=1e-5)
  np.testing.assert_allclose(theory.optimal_discriminator(p, p), 0.5)
  np.testing.assert_allclose(float(theory.jensen_shannon_divergence(p, p, DX)), 0.0, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# KL, JSD and f-divergences.


@pytest.mark.parametrize("mean_p, std_p, mean_q, std_q", GAUSSIAN_PAIRS)
def test_kl_divergence_on_a_grid_matches_closed_form_and_quadrature(mean_p, std_p, mean_q, std_q):
  p, q, p_exact, q_exact = _gaussians(mean_p, std_p, mean_q, std_q)
  closed_form = (math.log(std_q / std_p)
                 + (std_p ** 2 + (mean_p - mean_q) ** 2) / (2 * std_q ** 2) - 0.5)
  grid_value = float(theory.kl_divergence(p, q, DX))
  np.testing.assert_allclose(grid_value, closed_form, rtol=1e-4, atol=1e-5)
  quadrature = _quad(lambda x: p_exact(x) * (np.log(p_exact(x)) - np.log(q_exact(x))),
                     -10.0, 10.0)
  np.testing.assert_allclose(grid_value, quadrature, rtol=1e-4, atol=1e-5)


def test_jensen_shannon_divergence_symmetric_bounded_and_log_2_when_disjoint():
  for mean_p, std_p, mean_q, std_q in GAUSSIAN_PAIRS:
    p, q, p_exact, q_exact = _gaussians(mean_p, std_p, mean_q, std_q)
    forward = float(theory.jensen_shannon_divergence(p, q, DX))
    backward = float(theory.jensen_shannon_divergence(q, p, DX))
    np.testing.assert_allclose(forward, backward, atol=1e-6)
    assert 0.0 < forward < LOG2

    def integrand(x):
      a, b = p_exact(x), q_exact(x)
      return 0.5 * (special.xlogy(a, 2 * a / (a + b)) + special.xlogy(b, 2 * b / (a + b)))

    np.testing.assert_allclose(forward, _quad(integrand), atol=1e-5)
  narrow_p = theory.gaussian_density(X, -5.0, 0.2)
  narrow_q = theory.gaussian_density(X, 5.0, 0.2)
  np.testing.assert_allclose(
      float(theory.jensen_shannon_divergence(narrow_p, narrow_q, DX)), LOG2, rtol=1e-5)


# The divergences in their textbook forms, not through f, for two unit-variance Gaussians.
_TEXTBOOK_INTEGRANDS = {
    "kl": lambda p, q: special.xlogy(p, p / q),
    "reverse_kl": lambda p, q: special.xlogy(q, q / p),
    "pearson": lambda p, q: (p - q) ** 2 / q,
    "squared_hellinger": lambda p, q: (np.sqrt(p) - np.sqrt(q)) ** 2,
    "jensen_shannon": lambda p, q: (special.xlogy(p, 2 * p / (p + q))
                                    + special.xlogy(q, 2 * q / (p + q))),
    "gan": lambda p, q: special.xlogy(p, p / (p + q)) + special.xlogy(q, q / (p + q)),
}


def test_every_divergence_has_a_textbook_reference():
  assert set(_TEXTBOOK_INTEGRANDS) == set(divergences.DIVERGENCES)


@pytest.mark.parametrize("name", sorted(divergences.DIVERGENCES))
def test_f_divergence_matches_quadrature(name):
  p, q, p_exact, q_exact = _gaussians(0.0, 1.0, 0.8, 1.0)
  textbook = _TEXTBOOK_INTEGRANDS[name]
  expected = _quad(lambda x: textbook(p_exact(x), q_exact(x)), -15.0, 15.0)
  value = float(theory.f_divergence(p, q, DX, name))
  np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-5)


def test_f_divergence_closed_forms_and_identities():
  shift = 0.8
  p, q, _, _ = _gaussians(0.0, 1.0, shift, 1.0)
  value = lambda name: float(theory.f_divergence(p, q, DX, name))
  # Unit-variance Gaussians a distance s apart.
  np.testing.assert_allclose(value("kl"), shift ** 2 / 2, rtol=1e-4)
  np.testing.assert_allclose(value("reverse_kl"), shift ** 2 / 2, rtol=1e-4)
  np.testing.assert_allclose(value("pearson"), math.expm1(shift ** 2), rtol=1e-4)
  np.testing.assert_allclose(
      value("squared_hellinger"), 2 * (1 - math.exp(-shift ** 2 / 8)), rtol=1e-4)
  np.testing.assert_allclose(value("kl"), float(theory.kl_divergence(p, q, DX)), rtol=1e-5)
  np.testing.assert_allclose(value(divergences.KL), value("kl"), rtol=1e-7)
  np.testing.assert_allclose(
      value("reverse_kl"), float(theory.kl_divergence(q, p, DX)), rtol=1e-5)
  jsd = float(theory.jensen_shannon_divergence(p, q, DX))
  np.testing.assert_allclose(value("gan"), 2 * jsd - LOG4, atol=1e-5)
  np.testing.assert_allclose(value("jensen_shannon"), 2 * jsd, atol=1e-5)


def test_f_divergence_where_densities_vanish():
  grid = np.arange(0.0, 2.0, 0.001)
  dx = 0.001
  inside = grid < 1.0 - 1e-9
  q = np.where(inside, 1.0, 0.0).astype(np.float32)                    # U[0, 1)
  p = np.where(inside, 2.0 * grid, 0.0).astype(np.float32)             # triangular on [0, 1)
  # Points where both vanish contribute nothing: KL(triangular || uniform) = log 2 - 1/2.
  np.testing.assert_allclose(float(theory.f_divergence(p, q, dx, "kl")), LOG2 - 0.5, atol=2e-3)
  # p > 0 = q is outside what a grid quadrature of q f(p / q) can represent.
  assert np.isnan(float(theory.f_divergence(np.ones_like(q), q, dx, "kl")))
  with pytest.raises(ValueError, match="kl"):
    theory.f_divergence(p, q, dx, "not_a_divergence")


# ------------------------------------------------------------------------------------------------
# The same quantities from log-densities, on grids where float32 densities underflow.

# KL(N(0, 1) || N(1.5, 0.7^2)) and its like: [-10, 10] reaches 16 standard deviations of
# N(1.5, 0.7^2), where its float32 density is 0 (e^-135; float32 ends at e^-87, or e^-103 with
# subnormals, which XLA flushes) while N(0, 1)'s is not. dx is the exact spacing:
# x[1] - x[0] of a float32 grid is off by up to ulp(10) / dx ~ 1e-3 relative.
WIDE = np.linspace(-10.0, 10.0, 20001)
WIDE_DX = 20.0 / 20000
# Every f-divergence of P = N(0, 1) and Q = N(1, 1.2^2) is finite (Pearson needs 2 s_q^2 > s_p^2);
# beyond |x| = 14.4 at the latest p's float32 density is 0 where q's is not, which makes the
# density form of reverse KL inf.
F_GRID = np.linspace(-20.0, 20.0, 20001)
F_DX = 40.0 / 20000
# Float32 log-densities are exact to ~eps |log p| (eps = 6e-8), which moves each integral by
# ~eps times the mean |log p| under p (under 1e-6 relative here); the 20001-term float32 sums
# round to ~sqrt(n) eps = 1e-5 relative for a sequential sum, less for XLA's blocked one. The
# errors measured against the closed forms and scipy are at most 4e-7; 1e-4 is the accuracy
# promised for these grids, far below what a wrong integrand would give.
LOG_RTOL = 1e-4


def _log_gaussians(grid, mean_p, std_p, mean_q, std_q):
  return (theory.gaussian_log_density(grid, mean_p, std_p),
          theory.gaussian_log_density(grid, mean_q, std_q))


def _gaussian_kl(mean_p, std_p, mean_q, std_q):
  return math.log(std_q / std_p) + (std_p ** 2 + (mean_p - mean_q) ** 2) / (2 * std_q ** 2) - 0.5


def test_gaussian_log_densities_match_scipy_far_into_the_tails():
  x = np.linspace(-60.0, 60.0, 241)
  np.testing.assert_allclose(theory.gaussian_log_density(x, 0.7, 1.3),
                             stats.norm(0.7, 1.3).logpdf(x), rtol=1e-6)
  means, stds, weights = [-2.0, 0.5, 3.0], [0.5, 1.0, 0.8], [0.2, 0.5, 0.3]
  expected = special.logsumexp(
      [stats.norm(m, s).logpdf(x) for m, s in zip(means, stds)], axis=0,
      b=np.asarray(weights)[:, None])
  log_mixture = theory.gaussian_mixture_log_density(x, means, stds, weights)
  assert np.all(np.isfinite(log_mixture)) and log_mixture.shape == x.shape
  np.testing.assert_allclose(log_mixture, expected, rtol=1e-6)
  # Where the densities underflow, the log-densities still hold: p(60) = e^-1800.
  assert float(theory.gaussian_density(60.0, 0.7, 1.3)) == 0.0


def test_kl_divergence_from_log_densities_where_the_density_underflows():
  log_p, log_q = _log_gaussians(WIDE, 0.0, 1.0, 1.5, 0.7)
  p, q = np.exp(np.asarray(log_p, np.float32)), np.exp(np.asarray(log_q, np.float32))
  assert np.any((q == 0) & (p > 0))  # The density form cannot work here.
  assert float(theory.kl_divergence(p, q, WIDE_DX)) == np.inf
  kl = jax.jit(lambda log_p, log_q: theory.kl_divergence(log_p=log_p, log_q=log_q, dx=WIDE_DX))
  closed_form = math.log(0.7) + (1 + 1.5 ** 2) / (2 * 0.49) - 0.5
  assert closed_form == pytest.approx(2.4597, abs=1e-4)
  np.testing.assert_allclose(float(kl(log_p, log_q)), closed_form, rtol=LOG_RTOL)
  quadrature = _quad(lambda x: stats.norm.pdf(x) * (stats.norm.logpdf(x)
                                                     - stats.norm.logpdf(x, 1.5, 0.7)))
  np.testing.assert_allclose(float(kl(log_p, log_q)), quadrature, rtol=LOG_RTOL)


@pytest.mark.parametrize("mean_p, std_p, mean_q, std_q", GAUSSIAN_PAIRS)
def test_divergences_from_log_densities_match_closed_forms_and_quadrature(
    mean_p, std_p, mean_q, std_q):
  log_p, log_q = _log_gaussians(WIDE, mean_p, std_p, mean_q, std_q)
  p_exact, q_exact = stats.norm(mean_p, std_p), stats.norm(mean_q, std_q)
  kl = float(theory.kl_divergence(log_p=log_p, log_q=log_q, dx=WIDE_DX))
  np.testing.assert_allclose(kl, _gaussian_kl(mean_p, std_p, mean_q, std_q), rtol=LOG_RTOL)

  def jsd_integrand(x):
    log_a, log_b = p_exact.logpdf(x), q_exact.logpdf(x)
    log_m = np.logaddexp(log_a, log_b) - LOG2
    return 0.5 * (np.exp(log_a) * (log_a - log_m) + np.exp(log_b) * (log_b - log_m))

  jsd = float(theory.jensen_shannon_divergence(log_p=log_p, log_q=log_q, dx=WIDE_DX))
  expected_jsd = _quad(jsd_integrand)
  np.testing.assert_allclose(jsd, expected_jsd, rtol=LOG_RTOL)
  assert 0.0 < jsd < LOG2
  backward = float(theory.jensen_shannon_divergence(log_p=log_q, log_q=log_p, dx=WIDE_DX))
  np.testing.assert_allclose(backward, jsd, rtol=1e-6)  # The same terms, summed in another order.
  criterion = float(theory.virtual_training_criterion(log_p_data=log_p, log_p_g=log_q,
                                                      dx=WIDE_DX))
  np.testing.assert_allclose(criterion, -LOG4 + 2.0 * expected_jsd, rtol=LOG_RTOL)
  # C(G) = V(D*, G), D* given by its logit log p - log q (sigmoid(logit) would round to 0 or 1).
  value = float(theory.value_function(logits=log_p - log_q, log_p_data=log_p, log_p_g=log_q,
                                      dx=WIDE_DX))
  np.testing.assert_allclose(value, criterion, rtol=1e-6)
  combined = float(theory.kl_minus_2jsd(log_p_g=log_q, log_p_data=log_p, dx=WIDE_DX))
  np.testing.assert_allclose(
      combined, _gaussian_kl(mean_q, std_q, mean_p, std_p) - 2.0 * expected_jsd, rtol=LOG_RTOL)


def test_log_density_forms_at_equality_and_for_disjoint_supports():
  log_p = theory.gaussian_mixture_log_density(WIDE, [-2.0, 1.0], [0.6, 1.0], [0.3, 0.7])
  np.testing.assert_allclose(
      float(theory.virtual_training_criterion(log_p_data=log_p, log_p_g=log_p, dx=WIDE_DX)),
      -LOG4, rtol=1e-6)
  assert float(theory.jensen_shannon_divergence(log_p=log_p, log_q=log_p, dx=WIDE_DX)) == (
      pytest.approx(0.0, abs=1e-6))
  assert float(theory.kl_divergence(log_p=log_p, log_q=log_p, dx=WIDE_DX)) == 0.0
  np.testing.assert_allclose(theory.optimal_discriminator(log_p_data=log_p, log_p_g=log_p), 0.5)
  # Uniform densities on [0, 1) and [2, 3), -inf outside: D* is 1 on the data, 0 on the fakes
  # and 1/2 where neither has mass; JSD = log 2, C(G) = 0, KL = inf.
  grid = np.arange(0.0, 4.0, 0.01)
  log_uniform = lambda low: np.where((grid >= low - 1e-9) & (grid < low + 1 - 1e-9), 0.0,
                                     -np.inf).astype(np.float32)
  log_p, log_q = log_uniform(0.0), log_uniform(2.0)
  jsd = float(theory.jensen_shannon_divergence(log_p=log_p, log_q=log_q, dx=0.01))
  np.testing.assert_allclose(jsd, LOG2, rtol=1e-6)
  assert float(theory.virtual_training_criterion(log_p_data=log_p, log_p_g=log_q, dx=0.01)) == 0.0
  assert float(theory.kl_divergence(log_p=log_p, log_q=log_q, dx=0.01)) == np.inf
  d_star = np.asarray(theory.optimal_discriminator(log_p_data=log_p, log_p_g=log_q))
  np.testing.assert_array_equal(d_star, np.where(log_p == 0, 1.0, np.where(log_q == 0, 0.0, 0.5)))
  # V(D*, G) = 0 here, and a discriminator that calls a data point fake costs -inf.
  logits = np.where(log_p == 0, 50.0, -50.0).astype(np.float32)
  assert float(theory.value_function(logits=logits, log_p_data=log_p, log_p_g=log_q,
                                     dx=0.01)) == pytest.approx(0.0, abs=1e-12)
  assert float(theory.value_function(np.zeros_like(log_p), log_p_data=log_p, log_p_g=log_q,
                                     dx=0.01)) == -np.inf


def test_optimal_discriminator_from_log_densities_where_both_densities_underflow():
  log_p, log_q = _log_gaussians(F_GRID, 0.0, 1.0, 1.5, 0.7)
  expected = special.expit(stats.norm.logpdf(F_GRID) - stats.norm.logpdf(F_GRID, 1.5, 0.7))
  d_star = theory.optimal_discriminator(log_p_data=log_p, log_p_g=log_q)
  # Float32 log-densities of size up to 500 carry absolute errors of ~eps * 500 = 3e-5 into the
  # logit, hence into D* relative errors of (1 - D*) 3e-5 at most.
  np.testing.assert_allclose(d_star, expected, rtol=3e-5, atol=1e-30)
  # From densities, D* falls back to 1/2 where both underflow (x = -20), though it is 1 there.
  from_densities = theory.optimal_discriminator(np.exp(log_p), np.exp(log_q))
  assert float(from_densities[0]) == 0.5 and float(d_star[0]) == 1.0


def test_value_function_forms_agree_and_logits_avoid_rounding():
  p, q, _, _ = _gaussians(0.0, 1.0, 1.0, 1.0)
  log_p, log_q = np.log(p), np.log(q)
  logits = np.asarray(log_p - log_q)
  d_star = theory.optimal_discriminator(p, q)
  reference = float(theory.value_function(d_star, p, q, DX))
  # Equal widths keep D* within (0, 1) in float32 on X, so every form sees the same D; log D from
  # D* or from its logit, and exp(log p) against p, differ by float32 rounding (~1e-7 relative).
  for kwargs in (dict(logits=logits, p_data=p, p_g=q), dict(logits=logits, log_p_data=log_p,
                                                            log_p_g=log_q),
                 dict(discriminator=d_star, log_p_data=log_p, log_p_g=log_q)):
    np.testing.assert_allclose(float(theory.value_function(dx=DX, **kwargs)), reference,
                               rtol=1e-5)
  # Unequal widths: logits of 40 give D = 1 in float32, log(1 - D) = -inf against a positive
  # p_g; from the logit it is -40.
  log_p, log_q = _log_gaussians(WIDE, 0.0, 1.0, 1.5, 0.7)
  logits = log_p - log_q
  assert float(jnp.max(logits)) > 40.0
  assert float(theory.value_function(jax.nn.sigmoid(logits), log_p_data=log_p, log_p_g=log_q,
                                     dx=WIDE_DX)) == -np.inf
  best = float(theory.value_function(logits=logits, log_p_data=log_p, log_p_g=log_q, dx=WIDE_DX))
  for shift in (-0.1, 0.1):
    worse = theory.value_function(logits=logits + shift, log_p_data=log_p, log_p_g=log_q,
                                  dx=WIDE_DX)
    assert float(worse) < best - 1e-4


def test_f_divergences_from_log_densities_where_the_density_form_fails():
  log_p, log_q = _log_gaussians(F_GRID, 0.0, 1.0, 1.0, 1.2)
  p_exact, q_exact = stats.norm(0.0, 1.0).pdf, stats.norm(1.0, 1.2).pdf
  assert float(theory.f_divergence(np.exp(log_p), np.exp(log_q), F_DX, "reverse_kl")) == np.inf
  f_divergence = jax.jit(
      lambda log_p, log_q, name: theory.f_divergence(log_p=log_p, log_q=log_q, dx=F_DX,
                                                     divergence=name),
      static_argnames="name")
  for name, textbook in _TEXTBOOK_INTEGRANDS.items():
    expected = _quad(lambda x: textbook(p_exact(x), q_exact(x)))
    np.testing.assert_allclose(float(f_divergence(log_p, log_q, name)), expected,
                               rtol=LOG_RTOL, err_msg=name)
  np.testing.assert_allclose(float(f_divergence(log_p, log_q, "kl")),
                             _gaussian_kl(0.0, 1.0, 1.0, 1.2), rtol=LOG_RTOL)
  np.testing.assert_allclose(float(f_divergence(log_p, log_q, "reverse_kl")),
                             _gaussian_kl(1.0, 1.2, 0.0, 1.0), rtol=LOG_RTOL)


def test_f_divergences_from_log_densities_take_their_limits_where_one_density_vanishes():
  # P = U[0, 1) inside Q = U[0, 2), then the other way round, as log-densities (-inf outside).
  grid = np.arange(0.0, 3.0, 0.001) + 0.0005
  dx = 0.001
  log_narrow = np.where(grid < 1.0, 0.0, -np.inf).astype(np.float32)
  log_wide = np.where(grid < 2.0, -LOG2, -np.inf).astype(np.float32)
  # Closed forms: KL(U[0,1) || U[0,2)) = log 2; Pearson = int p^2 / q - 1 = 1; squared
  # Hellinger = int (sqrt(p) - sqrt(q))^2 = 2 - sqrt(2). Where q > 0 = p reverse KL is +inf, where
  # p > 0 = q KL and Pearson are.
  narrow_in_wide = {"kl": LOG2, "reverse_kl": np.inf, "pearson": 1.0,
                    "squared_hellinger": 2.0 - math.sqrt(2.0)}
  wide_in_narrow = {"kl": np.inf, "reverse_kl": LOG2, "pearson": np.inf,
                    "squared_hellinger": 2.0 - math.sqrt(2.0)}
  # JSD of the pair: (1/2) [int_0^1 log(1 / m) + int_0^2 (1/2) log((1/2) / m)], m = (p + q) / 2
  # = 3/4 on [0, 1) and 1/4 on [1, 2): (1/2) [log(4/3) + (1/2) log(2/3) + (1/2) log 2].
  jsd = 0.5 * (math.log(4 / 3) + 0.5 * math.log(2 / 3) + 0.5 * LOG2)
  for name, expected in (("jensen_shannon", 2 * jsd), ("gan", 2 * jsd - LOG4)):
    narrow_in_wide[name] = wide_in_narrow[name] = expected
  for (log_p, log_q), table in (((log_narrow, log_wide), narrow_in_wide),
                                ((log_wide, log_narrow), wide_in_narrow)):
    for name, expected in table.items():
      value = float(theory.f_divergence(log_p=log_p, log_q=log_q, dx=dx, divergence=name))
      # The uniform densities are integrated exactly by the midpoint grid, up to float32 sums.
      np.testing.assert_allclose(value, expected, rtol=1e-5, err_msg=name)
  # Disjoint supports: JSD = log 2, so 'jensen_shannon' = 2 log 2 and 'gan' = 0; squared
  # Hellinger = int p + q = 2; every other divergence is +inf.
  log_far = np.where(grid >= 2.0, 0.0, -np.inf).astype(np.float32)
  disjoint = {"kl": np.inf, "reverse_kl": np.inf, "pearson": np.inf, "squared_hellinger": 2.0,
              "jensen_shannon": 2 * LOG2, "gan": 0.0}
  for name, expected in disjoint.items():
    value = float(theory.f_divergence(log_p=log_narrow, log_q=log_far, dx=dx, divergence=name))
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-7, err_msg=name)


# Unit-variance Gaussians a distance s apart: each divergence and its derivative in s.
_SHIFT_CLOSED_FORMS = {
    "kl": (lambda s: s ** 2 / 2, lambda s: s),
    "reverse_kl": (lambda s: s ** 2 / 2, lambda s: s),
    "pearson": (lambda s: math.expm1(s ** 2), lambda s: 2 * s * math.exp(s ** 2)),
    "squared_hellinger": (lambda s: 2 * (1 - math.exp(-s ** 2 / 8)),
                          lambda s: s / 2 * math.exp(-s ** 2 / 8)),
}


@pytest.mark.parametrize("name", sorted(_SHIFT_CLOSED_FORMS))
def test_gradients_of_the_log_density_forms(name):
  value_of, derivative_of = _SHIFT_CLOSED_FORMS[name]
  log_q = theory.gaussian_log_density(WIDE, 0.0, 1.0)

  def divergence(shift):
    log_p = theory.gaussian_log_density(WIDE, shift, 1.0)
    return theory.f_divergence(log_p=log_p, log_q=log_q, dx=WIDE_DX, divergence=name)

  for shift in (0.0, 0.8):
    value, gradient = jax.value_and_grad(divergence)(jnp.float32(shift))
    np.testing.assert_allclose(float(value), value_of(shift), rtol=LOG_RTOL, atol=1e-7)
    # Finite at P = Q, where the gradient of every divergence is 0.
    np.testing.assert_allclose(float(gradient), derivative_of(shift), rtol=LOG_RTOL, atol=1e-6)


def test_log_density_forms_refuse_mixed_or_missing_arguments():
  log_p = theory.gaussian_log_density(X, 0.0, 1.0)
  with pytest.raises(ValueError, match="not a mixture"):
    theory.kl_divergence(np.exp(log_p), log_q=log_p, dx=DX)
  with pytest.raises(ValueError, match="log_p_data and log_p_g"):
    theory.virtual_training_criterion(log_p_data=log_p, dx=DX)
  with pytest.raises(ValueError, match="discriminator .*or logits"):
    theory.value_function(log_p_data=log_p, log_p_g=log_p, dx=DX)
  with pytest.raises(ValueError, match="dx"):
    theory.jensen_shannon_divergence(log_p=log_p, log_q=log_p)
  with pytest.raises(ValueError, match="generator_log_density_fn"):
    theory.generator_gradient_fixed_d("minimax", theta=0.0, dx=DX, log_p_data=log_p)


# The f-divergence definitions are the divergence maths that theory relies on; they are tested here.


@pytest.mark.parametrize("name", sorted(divergences.DIVERGENCES))
def test_conjugate_is_the_numerical_supremum(name):
  divergence = divergences.get(name)
  generator = jax.jit(divergence.generator)
  f = lambda u: float(generator(np.float32(u)))
  low, high = divergence.conjugate_domain
  # t = f'(u) for some u > 0, so that the supremum over u > 0 is attained.
  smallest_slope = float(jax.grad(divergence.generator)(jnp.float32(1e-6)))
  candidates = [t for t in (-3.0, -1.2, -0.4, -0.1, 0.0, 0.3, 0.6, 1.4)
                if low < t < high and t > smallest_slope]
  assert len(candidates) >= 4
  for t in candidates:
    result = optimize.minimize_scalar(lambda s: -(math.exp(s) * t - f(math.exp(s))),
                                      bounds=(-25.0, 10.0), method="bounded",
                                      options={"xatol": 1e-10})
    np.testing.assert_allclose(float(divergence.conjugate(jnp.float32(t))), -result.fun,
                               rtol=1e-4, atol=1e-5, err_msg=f"{name}, t = {t}")


@pytest.mark.parametrize("name", sorted(divergences.DIVERGENCES))
def test_activation_maps_into_the_conjugate_domain(name):
  divergence = divergences.get(name)
  low, high = divergence.conjugate_domain
  v = jnp.linspace(-10.0, 10.0, 201)
  t = divergence.activation(v)
  assert bool(jnp.all(t > low)) and bool(jnp.all(t < high))
  # Beyond |v| ~ 6, f*(g_f(v)) loses float32 precision (1 - t cancels); the stable form does not.
  v = jnp.linspace(-6.0, 6.0, 121)
  np.testing.assert_allclose(divergence.conjugate_of_activation(v),
                             divergence.conjugate(divergence.activation(v)), rtol=1e-4, atol=1e-4)
  # Nowozin et al.'s GAN row has f(1) = -log 4 (its divergence is 2 JSD - log 4); the others 0.
  f_at_one = -LOG4 if name == "gan" else 0.0
  assert float(divergence.generator(jnp.float32(1.0))) == pytest.approx(f_at_one, abs=1e-6)
  f = lambda u: float(divergence.generator(jnp.float32(u)))
  slope_at_one = (f(1.01) - f(0.99)) / 0.02
  assert slope_at_one == pytest.approx(divergence.threshold, abs=1e-3)


# ------------------------------------------------------------------------------------------------
# Saturation and Arjovsky & Bottou's Theorem 2.5.


def test_generator_logit_gradient_closed_forms():
  d = np.concatenate([np.geomspace(1e-6, 0.5, 25), 1.0 - np.geomspace(0.49, 1e-6, 25)])
  d = d.astype(np.float32)
  minimax = theory.generator_logit_gradient("minimax", d)
  non_saturating = theory.generator_logit_gradient("non_saturating", d)
  assert minimax.shape == d.shape
  np.testing.assert_allclose(minimax, -d, rtol=2e-3)
  np.testing.assert_allclose(non_saturating, -(1.0 - d.astype(np.float64)), rtol=2e-3)
  # The discriminator rejects the fakes (d[0] = 1e-6): the minimax gradient vanishes, the
  # non-saturating one stays at -1.
  assert abs(float(minimax[0])) < 2e-6
  assert float(non_saturating[0]) == pytest.approx(-1.0, abs=2e-6)
  np.testing.assert_allclose(
      theory.generator_logit_gradient("minimax", d.reshape(10, 5)), -d.reshape(10, 5),
      rtol=2e-3)


AB_GRID = np.linspace(-9.0, 9.0, 3601)
AB_DX = float(AB_GRID[1] - AB_GRID[0])
AB_DATA = theory.gaussian_mixture_density(AB_GRID, [-2.0, 1.5], [0.7, 1.0], [0.4, 0.6])
FAMILIES = {  # name: (theta -> density on AB_GRID, values of theta0)
    "location": (lambda theta: theory.gaussian_density(AB_GRID, theta, 1.0), (-1.0, 0.4, 2.5)),
    "scale": (lambda log_std: theory.gaussian_density(AB_GRID, 0.3, jnp.exp(log_std)),
              (math.log(0.6), math.log(1.6))),
}
# The same families and data as log-densities, for the log-density forms.
AB_LOG_DATA = theory.gaussian_mixture_log_density(AB_GRID, [-2.0, 1.5], [0.7, 1.0], [0.4, 0.6])
LOG_FAMILIES = {
    "location": lambda theta: theory.gaussian_log_density(AB_GRID, theta, 1.0),
    "scale": lambda log_std: theory.gaussian_log_density(AB_GRID, 0.3, jnp.exp(log_std)),
}
FORMS = pytest.mark.parametrize("in_logs", [False, True], ids=["densities", "log_densities"])


def _gradient_fixed_d(loss, family, theta0, in_logs):
  """The generator's gradient with D* fixed, from densities or from log-densities."""
  theta0 = jnp.float32(theta0)
  if loss == "non_saturating":
    if in_logs:
      return float(theory.non_saturating_gradient_fixed_d(
          generator_log_density_fn=LOG_FAMILIES[family], theta=theta0, log_p_data=AB_LOG_DATA,
          dx=AB_DX))
    return float(theory.non_saturating_gradient_fixed_d(
        FAMILIES[family][0], theta0, AB_DATA, AB_DX))
  if in_logs:
    return float(theory.generator_gradient_fixed_d(
        loss, theta=theta0, dx=AB_DX, generator_log_density_fn=LOG_FAMILIES[family],
        log_p_data=AB_LOG_DATA))
  return float(theory.generator_gradient_fixed_d(loss, FAMILIES[family][0], theta0, AB_DATA,
                                                 AB_DX))


@FORMS
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_non_saturating_gradient_follows_kl_minus_2_jsd_not_the_jsd(family, in_logs):
  density_fn, thetas = FAMILIES[family]
  for theta0 in thetas:
    gradient = _gradient_fixed_d("non_saturating", family, theta0, in_logs)
    predicted = _central_difference(
        lambda t: theory.kl_minus_2jsd(density_fn(jnp.float32(t)), AB_DATA, AB_DX), theta0)
    np.testing.assert_allclose(gradient, predicted, rtol=1e-3, atol=1e-4,
                               err_msg=f"{family}, theta0 = {theta0}")
    jsd_gradient = _central_difference(
        lambda t: theory.jensen_shannon_divergence(AB_DATA, density_fn(jnp.float32(t)), AB_DX),
        theta0)
    assert abs(gradient - jsd_gradient) > 0.1 * abs(jsd_gradient) + 1e-3
    assert abs(gradient - 2 * jsd_gradient) > 0.1 * abs(jsd_gradient) + 1e-3


@FORMS
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_minimax_gradient_with_fixed_optimal_d_is_the_jsd_gradient(family, in_logs):
  density_fn, thetas = FAMILIES[family]
  for theta0 in thetas:
    gradient = _gradient_fixed_d("minimax", family, theta0, in_logs)
    predicted = 2 * _central_difference(
        lambda t: theory.jensen_shannon_divergence(AB_DATA, density_fn(jnp.float32(t)), AB_DX),
        theta0)
    np.testing.assert_allclose(gradient, predicted, rtol=1e-3, atol=1e-4)


def test_kl_minus_2jsd_matches_its_parts():
  p_g = theory.gaussian_density(AB_GRID, 0.4, 1.0)
  expected = (float(theory.kl_divergence(p_g, AB_DATA, AB_DX))
              - 2 * float(theory.jensen_shannon_divergence(AB_DATA, p_g, AB_DX)))
  np.testing.assert_allclose(float(theory.kl_minus_2jsd(p_g, AB_DATA, AB_DX)), expected,
                             rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# Proposition 2: descent in the space of densities.

# float64 here: the identities below hold to rounding, which float32 would hide.
P2_GRID = np.linspace(-10.0, 10.0, 2001)
P2_DX = 20.0 / 2000


def _p2_densities():
  """The log-densities of a two-mode p_data and of a p_g on one of its modes, float64 numpy."""
  x = P2_GRID
  log_p_data = np.logaddexp(np.log(0.5) + stats.norm(-2.0, 0.6).logpdf(x),
                            np.log(0.5) + stats.norm(2.0, 0.6).logpdf(x))
  return log_p_data, stats.norm(2.0, 0.6).logpdf(x)


def _criterion64(log_p_data, log_p_g):
  """C(G) = integral p_data log(p_data / (p_data + p_g)) + p_g log(p_g / (p_data + p_g)), numpy."""
  log_sum = np.logaddexp(log_p_data, log_p_g)
  return float(np.sum(np.exp(log_p_data) * (log_p_data - log_sum)
                      + np.exp(log_p_g) * (log_p_g - log_sum)) * P2_DX)


def test_generator_functional_gradient_closed_forms_and_danskin():
  log_p_data, log_p_g = _p2_densities()
  with jax.enable_x64(True):
    minimax = np.asarray(theory.generator_functional_gradient(
        log_p_data=log_p_data, log_p_g=log_p_g))
    non_saturating = np.asarray(theory.generator_functional_gradient(
        log_p_data=log_p_data, log_p_g=log_p_g, loss="non_saturating"))
    from_densities = np.asarray(theory.generator_functional_gradient(
        np.exp(log_p_data), np.exp(log_p_g)))
  log_sum = np.logaddexp(log_p_data, log_p_g)
  np.testing.assert_allclose(minimax, log_p_g - log_sum, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(non_saturating, log_sum - log_p_data, rtol=1e-12, atol=1e-12)
  inside = np.exp(log_p_g) > 1e-300
  np.testing.assert_allclose(from_densities[inside], minimax[inside], rtol=1e-9)
  # Danskin: along p_t = t q + (1 - t) p_g, dC/dt at t = 1/2 is integral (q - p_g) log(1 - D*)
  # with D* that of p_(1/2): the derivative of V(D*, .) with D* held fixed. Central differences
  # of C in numpy (their error is ~1e-10 here).
  log_q = stats.norm(-1.0, 1.5).logpdf(P2_GRID)
  step = 1e-5
  mixed = lambda t: np.logaddexp(np.log(t) + log_q, np.log1p(-t) + log_p_g)
  differenced = (_criterion64(log_p_data, mixed(0.5 + step))
                 - _criterion64(log_p_data, mixed(0.5 - step))) / (2 * step)
  with jax.enable_x64(True):
    gradient = np.asarray(theory.generator_functional_gradient(
        log_p_data=log_p_data, log_p_g=mixed(0.5)))
  predicted = np.sum((np.exp(log_q) - np.exp(log_p_g)) * gradient) * P2_DX
  np.testing.assert_allclose(differenced, predicted, rtol=1e-7)


def test_density_descent_step_halves_the_distance_at_step_one():
  log_p_data, log_p_g = _p2_densities()
  with jax.enable_x64(True):
    stepped = np.asarray(theory.density_descent_step(log_p_data, log_p_g, P2_DX, 1.0))
    half = np.asarray(theory.density_descent_step(log_p_data, log_p_g, P2_DX, 0.5))
  # At h = 1 the step is (p_g + p_data) / 2; it is a density on the grid for every h.
  np.testing.assert_allclose(np.exp(stepped), (np.exp(log_p_g) + np.exp(log_p_data)) / 2,
                             rtol=1e-10, atol=1e-14)
  for log_p in (stepped, half):
    np.testing.assert_allclose(np.sum(np.exp(log_p)) * P2_DX, 1.0, rtol=1e-12)
  # At h = 1/2, p_g^(1/2) (p_g + p_data)^(1/2), normalised.
  expected = 0.5 * log_p_g + 0.5 * np.logaddexp(log_p_g, log_p_data)
  expected -= special.logsumexp(expected) + np.log(P2_DX)
  np.testing.assert_allclose(half, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("learning_rate", [0.25, 0.5, 1.0])
def test_density_descent_decreases_c_at_rate_one_over_k_and_then_geometrically(learning_rate):
  log_p_data, log_p = _p2_densities()
  kl_start = float(np.sum(np.exp(log_p_data) * (log_p_data - log_p)) * P2_DX)
  excess = [_criterion64(log_p_data, log_p) + LOG4]
  with jax.enable_x64(True):
    for _ in range(60):
      log_p = np.asarray(theory.density_descent_step(log_p_data, log_p, P2_DX, learning_rate))
      excess.append(_criterion64(log_p_data, log_p) + LOG4)
  excess = np.asarray(excess)
  # Mirror descent with step h <= 1 on C, convex and 1-smooth relative to the entropy: C never
  # increases (to float64 rounding) and C(p_k) + log 4 <= KL(p_data || p_0) / (h k).
  assert np.max(np.diff(excess)) <= 1e-13
  k = np.arange(1, len(excess))
  assert np.all(excess[1:] <= kl_start / (learning_rate * k))
  # Near p_data, 2 JSD falls by (1 - h / 2)^2 a step.
  window = np.flatnonzero((excess[:-1] < 1e-4) & (excess[1:] > 1e-11))
  assert window.size >= 3
  np.testing.assert_allclose(excess[window + 1] / excess[window], (1 - learning_rate / 2) ** 2,
                             rtol=2e-3)


def test_density_descent_with_too_large_a_step_is_not_monotone():
  log_p_data, log_p = _p2_densities()
  with jax.enable_x64(True):
    stepped = np.asarray(theory.density_descent_step(log_p_data, log_p, P2_DX, 2.0))
  # h = 2 > 1, beyond the guarantee: p_g^-1 (p_g + p_data)^2 moves all the mass onto the mode
  # p_g lacked, and C rises.
  assert _criterion64(log_p_data, stepped) > _criterion64(log_p_data, log_p) + 0.5


# ------------------------------------------------------------------------------------------------
# The Dirac-GAN.


@pytest.mark.parametrize("loss, slope", [("minimax", 0.5), ("non_saturating", 0.5),
                                         ("wasserstein", 1.0), ("hinge", 1.0)])
@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.5, 1.0, 2.0])
def test_dirac_gan_eigenvalues_closed_form(loss, slope, gamma):
  # Mescheder et al. 2018: -gamma/2 -+ sqrt(gamma^2/4 - f'(0)^2).
  root = np.sqrt(complex(gamma ** 2 / 4 - slope ** 2))
  expected = np.array([-gamma / 2 - root, -gamma / 2 + root])
  expected = expected[np.lexsort((expected.real, expected.imag))]
  eigenvalues = np.asarray(theory.dirac_gan_jacobian_eigenvalues(loss, gamma))
  assert np.iscomplexobj(eigenvalues) and eigenvalues.shape == (2,)
  np.testing.assert_allclose(eigenvalues, expected, atol=1e-5)
  np.testing.assert_allclose(
      theory.dirac_gan_jacobian(loss, gamma), [[0.0, slope], [-slope, -gamma]], atol=1e-6)


def _minimax_field(theta, psi, gamma):
  # L_D = softplus(-0) + softplus(psi theta) + gamma/2 psi^2, L_G = -softplus(psi theta):
  # dL_D/dpsi = theta sigma(psi theta) + gamma psi, dL_G/dtheta = -psi sigma(psi theta).
  sigma = special.expit(psi * theta)
  return psi * sigma, -theta * sigma - gamma * psi


POINTS = [(1.0, 1.0), (-0.7, 0.3), (2.0, -1.5), (0.0, 0.8), (0.25, -3.0)]


@pytest.mark.parametrize("gamma", [0.0, 0.7])
def test_dirac_gan_vector_field_minimax_closed_form(gamma):
  for theta, psi in POINTS:
    v_theta, v_psi = theory.dirac_gan_vector_field(theta, psi, "minimax", gamma)
    expected_theta, expected_psi = _minimax_field(theta, psi, gamma)
    np.testing.assert_allclose([float(v_theta), float(v_psi)], [expected_theta, expected_psi],
                               rtol=1e-5, atol=1e-6)
  thetas, psis = np.meshgrid([-1.0, 0.5, 2.0], [-0.5, 1.0])
  v_theta, v_psi = theory.dirac_gan_vector_field(thetas, psis, "minimax", gamma)
  expected_theta, expected_psi = _minimax_field(thetas, psis, gamma)
  np.testing.assert_allclose(v_theta, expected_theta, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(v_psi, expected_psi, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", ["minimax", "non_saturating", "wasserstein", "least_squares"])
def test_dirac_gan_vector_field_matches_finite_differences_of_the_library_losses(loss):
  d_loss, g_loss = losses.get(loss)
  gamma = 0.3
  real = np.zeros((1,))
  discriminator = lambda theta, psi: (float(d_loss(real, np.array([psi * theta])))
                                      + gamma / 2 * psi ** 2)
  generator = lambda theta, psi: float(g_loss(real, np.array([psi * theta])))
  step = 1e-2
  for theta, psi in POINTS:
    expected_theta = -(generator(theta + step, psi) - generator(theta - step, psi)) / (2 * step)
    expected_psi = -(discriminator(theta, psi + step)
                     - discriminator(theta, psi - step)) / (2 * step)
    v_theta, v_psi = theory.dirac_gan_vector_field(theta, psi, loss, gamma)
    np.testing.assert_allclose([float(v_theta), float(v_psi)], [expected_theta, expected_psi],
                               rtol=2e-3, atol=2e-3, err_msg=f"{loss} at {(theta, psi)}")


def test_non_saturating_field_differs_from_minimax_away_from_the_equilibrium():
  theta, psi = 2.0, -1.5
  v_minimax, _ = theory.dirac_gan_vector_field(theta, psi, "minimax")
  v_non_saturating, _ = theory.dirac_gan_vector_field(theta, psi, "non_saturating")
  np.testing.assert_allclose(float(v_non_saturating), psi * special.expit(-psi * theta), rtol=1e-5)
  assert abs(float(v_minimax) - float(v_non_saturating)) > 0.5


@pytest.mark.parametrize("gamma", [0.0, 0.6])
def test_dirac_gan_update_matrices_closed_form(gamma):
  h, c = 0.1, 0.5
  simultaneous = theory.dirac_gan_update_matrix("minimax", h, "simultaneous", gamma)
  np.testing.assert_allclose(simultaneous, [[1.0, h * c], [-h * c, 1.0 - h * gamma]], atol=1e-6)
  # psi first: A_psi = [[1, 0], [-h c, 1 - h gamma]], then A_theta = [[1, h c], [0, 1]].
  alternating = theory.dirac_gan_update_matrix("minimax", h, "alternating", gamma)
  expected = np.array([[1.0, h * c], [0.0, 1.0]]) @ np.array([[1.0, 0.0], [-h * c, 1 - h * gamma]])
  np.testing.assert_allclose(alternating, expected, atol=1e-6)
  simultaneous_expected = np.eye(2) + h * np.array([[0.0, c], [-c, -gamma]])
  for update, matrix in (("simultaneous", simultaneous_expected), ("alternating", expected)):
    radius = float(theory.dirac_gan_update_matrix_spectral_radius("minimax", h, update, gamma))
    np.testing.assert_allclose(radius, np.max(np.abs(np.linalg.eigvals(matrix))), rtol=1e-5)


def test_dirac_gan_spectral_radii_predict_divergence_circling_and_convergence():
  h = 0.1
  radius = lambda update, gamma=0.0, loss="minimax": float(
      theory.dirac_gan_update_matrix_spectral_radius(loss, h, update, gamma))
  np.testing.assert_allclose(radius("simultaneous"), math.sqrt(1 + h ** 2 / 4), rtol=1e-6)
  np.testing.assert_allclose(radius("simultaneous", loss="wasserstein"), math.sqrt(1 + h ** 2),
                             rtol=1e-6)
  np.testing.assert_allclose(radius("alternating"), 1.0, atol=1e-6)
  assert radius("simultaneous", 1.0) < 1.0 and radius("alternating", 1.0) < 1.0


@pytest.mark.parametrize("loss, slope", [("minimax", 0.5), ("non_saturating", 0.5),
                                         ("wasserstein", 1.0)])
def test_simultaneous_steps_spiral_out_at_the_predicted_rate(loss, slope):
  # A step z -> z + h v(z), z = (theta, psi), r = |z|, u = theta psi (|u| <= r^2 / 2), c = f'(0).
  # Linearised, v = c (psi, -theta) is orthogonal to z and |v| = c r, so each step multiplies r by
  # exactly sqrt(1 + h^2 c^2). The nonlinear terms change |z'|^2 / r^2 by: minimax (v = sigmoid(u)
  # (psi, -theta), still orthogonal) h^2 (sigmoid(u)^2 - 1/4), at most h^2 |u| / 4; non-saturating
  # (v = (psi sigmoid(-u), -theta sigmoid(u))) 2 h z.v / r^2 + h^2 (|v|^2 / r^2 - 1/4), where
  # z.v = -u tanh(u / 2), so at most (h / 4 + h^2 / 8) r^2; Wasserstein is linear. Over N steps the
  # growth is then off by at most N (h / 8 + h^2 / 16) r_max^2 relative: from (1e-3, 1e-3),
  # r_max = 1.6e-3 and N = 100, h = 0.1 give 3.4e-6 (non-saturating), 1.6e-7 (minimax). The float32
  # steps round each coordinate by eps = 6e-8 relative, at most 100 eps = 6e-6 over the run. So
  # rtol 2e-5 against the closed form (measured: at most 1.0e-6); against the float32 spectral
  # radius, whose own rounding (a few ulps, times N) adds up to 2.4e-5, 5e-5 (measured 3.6e-6).
  # A 10% error in f'(0) would change the growth by 2.7% (c = 1/2) or 11% (c = 1).
  h, steps = 0.1, 100
  trajectory = np.asarray(theory.simulate_dirac_gan(1e-3, 1e-3, steps, h, "simultaneous", loss))
  assert trajectory.shape == (steps + 1, 2)
  norms = np.linalg.norm(trajectory.astype(np.float64), axis=1)
  growth = norms[-1] / norms[0]
  predicted = float(theory.dirac_gan_update_matrix_spectral_radius(loss, h, "simultaneous"))
  np.testing.assert_allclose(growth, (1 + h ** 2 * slope ** 2) ** (steps / 2), rtol=2e-5)
  np.testing.assert_allclose(growth, predicted ** steps, rtol=5e-5)
  assert growth > 1.1


def test_simultaneous_steps_diverge_far_from_the_equilibrium():
  norms = np.linalg.norm(theory.simulate_dirac_gan(1.0, 1.0, 1000, 0.1, "simultaneous"), axis=1)
  assert norms[-1] > 1.5 * norms[0]
  assert np.all(np.diff(norms) > 0)


def test_alternating_steps_circle_forever():
  trajectory = np.asarray(theory.simulate_dirac_gan(1.0, 1.0, 1000, 0.1, "alternating"))
  norms = np.linalg.norm(trajectory, axis=1)
  assert 0.9 * norms[0] < norms.min() and norms.max() < 1.1 * norms[0]
  # It keeps moving: theta changes sign many times (about 8 turns at angular speed h/2 per step).
  assert np.sum(np.diff(np.sign(trajectory[:, 0])) != 0) >= 10


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_r1_makes_training_converge(update):
  trajectory = np.asarray(
      theory.simulate_dirac_gan(1.0, 1.0, 1000, 0.1, update, "minimax", gamma=1.0))
  assert np.linalg.norm(trajectory[-1]) < 1e-3


def test_simulation_steps_follow_the_vector_field_in_the_right_order():
  theta, psi, h, gamma = 0.8, -0.6, 0.2, 0.3
  v_theta, v_psi = _minimax_field(theta, psi, gamma)
  # 1000 steps, as elsewhere in this file, so that nothing recompiles; only rows 0 and 1 matter.
  simultaneous = theory.simulate_dirac_gan(theta, psi, 1000, h, "simultaneous", "minimax", gamma)
  np.testing.assert_allclose(simultaneous[1], [theta + h * v_theta, psi + h * v_psi], rtol=1e-5)
  next_psi = psi + h * v_psi
  next_theta = theta + h * _minimax_field(theta, next_psi, gamma)[0]
  alternating = theory.simulate_dirac_gan(theta, psi, 1000, h, "alternating", "minimax", gamma)
  np.testing.assert_allclose(alternating[1], [next_theta, next_psi], rtol=1e-5)
  np.testing.assert_allclose(alternating[0], [theta, psi])


def test_simulation_jits_once_and_is_deterministic():
  simulate = jax.jit(chex.assert_max_traces(inspect.unwrap(theory.simulate_dirac_gan), n=1),
                     static_argnames=("steps", "update", "loss"))
  kwargs = dict(steps=1000, update="alternating", loss="minimax")
  first = simulate(1.0, 1.0, learning_rate=0.1, gamma=0.2, **kwargs)
  again = simulate(1.0, 1.0, learning_rate=0.1, gamma=0.2, **kwargs)
  other = simulate(0.5, -0.3, learning_rate=0.05, gamma=0.0, **kwargs)
  np.testing.assert_array_equal(first, again)
  assert not np.allclose(first, other)
  eager = theory.simulate_dirac_gan(1.0, 1.0, learning_rate=0.1, gamma=0.2, **kwargs)
  np.testing.assert_allclose(first, eager, rtol=1e-5, atol=1e-6)


def test_unknown_update_or_loss_is_rejected():
  with pytest.raises(ValueError, match="simultaneous.*alternating"):
    theory.simulate_dirac_gan(1.0, 1.0, 10, 0.1, update="extragradient")
  with pytest.raises(ValueError, match="simultaneous.*alternating"):
    theory.dirac_gan_update_matrix_spectral_radius("minimax", 0.1, "gauss_seidel")
  with pytest.raises(ValueError, match="minimax"):
    theory.dirac_gan_vector_field(1.0, 1.0, "no_such_loss")
