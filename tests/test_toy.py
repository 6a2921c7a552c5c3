"""Toy distributions: exact densities against scipy, samples against their moments."""
import jax
import numpy as np
import pytest
from scipy import stats

from ganjax import errors
from ganjax.data import toy


def test_log_prob_matches_scipy_mixtures():
  mixture = toy.mixture_1d(means=(-2.0, 1.0, 3.0), stds=(0.5, 1.0, 0.3), weights=(0.2, 0.5, 0.3))
  x = np.linspace(-5, 6, 101)[:, None]
  expected = sum(w * stats.norm.pdf(x[:, 0], m, s)
                 for m, s, w in zip((-2.0, 1.0, 3.0), (0.5, 1.0, 0.3), (0.2, 0.5, 0.3)))
  np.testing.assert_allclose(np.exp(mixture.log_prob(x)), expected, rtol=1e-5, atol=1e-12)
  ring = toy.ring(std=0.2)
  points = np.random.default_rng(0).normal(size=(50, 2))
  expected = np.mean([stats.multivariate_normal.pdf(points, m, 0.04) for m in ring.means], 0)
  np.testing.assert_allclose(ring.prob(points), expected, rtol=1e-4)


def test_samples_have_the_mixture_moments():
  mixture = toy.mixture_1d(means=(-2.0, 2.0), stds=0.5, weights=(0.25, 0.75))
  samples = np.asarray(mixture.sample(jax.random.PRNGKey(0), 200_000))[:, 0]
  mean = 0.25 * -2 + 0.75 * 2
  variance = 0.25 + 0.25 * 4 + 0.75 * 4 - mean ** 2
  np.testing.assert_allclose(samples.mean(), mean, atol=0.01)
  np.testing.assert_allclose(samples.var(), variance, rtol=0.01)
  np.testing.assert_allclose(np.mean(samples < 0), 0.25, atol=0.005)


def test_bad_names_and_arguments():
  with pytest.raises(errors.ConfigError,
                     match="unknown toy dataset 'moons'; valid names: gaussian_1d"):
    toy.get("moons")
  with pytest.raises(errors.ConfigError, match="weights"):
    toy.mixture_1d(means=(0.0, 1.0), stds=1.0, weights=(0.3, 0.3))


@pytest.mark.parametrize("name, kwargs, message", [
    ("ring", {"radious": 1.0},
     r"^toy dataset 'ring' has no field 'radious' \(data.kwargs\); its fields: num_modes, "
     r"radius, std$"),
    ("ring", {"num_modes": 0}, r"^num_modes must be a positive integer, got 0$"),
    ("ring", {"num_modes": 2.5}, r"^num_modes must be a positive integer, got 2.5$"),
    ("ring", {"radius": "one"}, r"^radius must be a number or numbers, got 'one'$"),
    ("ring", {"std": -0.1}, r"^mixture stds must be positive"),
    ("grid", {"size": 0}, r"^size must be a positive integer, got 0$"),
    ("grid", {"spacing": None}, r"^spacing must be a number or numbers, got None$"),
    ("gaussian_1d", {"std": 0.0}, r"^mixture stds must be positive, got \(0.0,\)$"),
    ("mixture_1d", {"means": ()}, r"^a mixture needs at least one mode"),
    ("mixture_1d", {"means": ("a", 1.0)}, r"^means must be a number or numbers, got 'a'$"),
    ("mixture_1d", {"stds": (0.5,)}, r"^a mixture needs as many stds and weights as means"),
    ("mixture_1d", {"weights": (1.5, -0.5)}, r"^mixture weights must be non-negative"),
])
def test_bad_toy_fields_are_config_errors_naming_the_field(name, kwargs, message):
  with pytest.raises(errors.ConfigError, match=message) as error:
    toy.get(name, **kwargs)
  assert "\n" not in str(error.value)
