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


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_non_saturating_gradient_follows_kl_minus_2_jsd_not_the_jsd(family):
  density_fn, thetas = FAMILIES[family]
  for theta0 in thetas:
    gradient = float(theory.non_saturating_gradient_fixed_d(
        density_fn, jnp.float32(theta0), AB_DATA, AB_DX))
    predicted = _central_difference(
        lambda t: theory.kl_minus_2jsd(density_fn(jnp.float32(t)), AB_DATA, AB_DX), theta0)
    np.testing.assert_allclose(gradient, predicted, rtol=1e-3, atol=1e-4,
                               err_msg=f"{family}, theta0 = {theta0}")
    jsd_gradient = _central_difference(
        lambda t: theory.jensen_shannon_divergence(AB_DATA, density_fn(jnp.float32(t)), AB_DX),
        theta0)
    assert abs(gradient - jsd_gradient) > 0.1 * abs(jsd_gradient) + 1e-3
    assert abs(gradient - 2 * jsd_gradient) > 0.1 * abs(jsd_gradient) + 1e-3


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_minimax_gradient_with_fixed_optimal_d_is_the_jsd_gradient(family):
  density_fn, thetas = FAMILIES[family]
  for theta0 in thetas:
    gradient = float(theory.generator_gradient_fixed_d(
        "minimax", density_fn, jnp.float32(theta0), AB_DATA, AB_DX))
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
  h, steps = 0.1, 100
  trajectory = np.asarray(theory.simulate_dirac_gan(0.01, 0.01, steps, h, "simultaneous", loss))
  assert trajectory.shape == (steps + 1, 2)
  norms = np.linalg.norm(trajectory, axis=1)
  growth = norms[-1] / norms[0]
  predicted = float(theory.dirac_gan_update_matrix_spectral_radius(loss, h, "simultaneous"))
  np.testing.assert_allclose(growth, predicted ** steps, rtol=0.05)
  np.testing.assert_allclose(growth, (1 + h ** 2 * slope ** 2) ** (steps / 2), rtol=0.05)
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
