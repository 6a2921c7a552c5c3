"""Mode statistics against a direct numpy computation on hand-made sample sets."""
import numpy as np
import pytest

from ganjax import metrics
from ganjax.data import toy


def numpy_mode_statistics(samples, means, sigma):
  modes_captured, high_quality, counts = set(), 0, np.zeros(len(means))
  for sample in samples:
    distances = [np.sqrt(np.sum((sample - mean) ** 2)) for mean in means]
    nearest = int(np.argmin(distances))
    counts[nearest] += 1
    if distances[nearest] < 3 * sigma:
      high_quality += 1
      modes_captured.add(nearest)
  histogram = counts / len(samples)
  nonzero = histogram > 0
  reverse_kl = np.sum(histogram[nonzero] * np.log(histogram[nonzero] * len(means)))
  return len(modes_captured), high_quality / len(samples), reverse_kl


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_perfect_collapsed_and_far_samplers(name):
  import jax
  data = toy.get(name)
  means, sigma = np.asarray(data.means), data.stds[0]
  rng = np.random.default_rng(0)
  perfect = np.asarray(data.sample(jax.random.PRNGKey(0), 2500))
  collapsed = means[3] + sigma * rng.standard_normal((2500, 2))
  far = means[rng.integers(len(means), size=2500)] + 10 * sigma
  for samples in (perfect, collapsed, far):
    stats = metrics.mode_statistics(samples, means, sigma)
    modes, high_quality, reverse_kl = numpy_mode_statistics(samples, means, sigma)
    assert int(stats["modes"]) == modes
    np.testing.assert_allclose(stats["high_quality"], high_quality, rtol=1e-6)
    np.testing.assert_allclose(stats["reverse_kl"], reverse_kl, rtol=1e-4, atol=1e-6)
  # What each sampler should score, independently of the numpy reference:
  perfect_stats = metrics.mode_statistics(perfect, means, sigma)
  assert int(perfect_stats["modes"]) == len(means)
  # within 3 sigma of a 2-D Gaussian's centre: 1 - exp(-9/2) = 98.89%
  np.testing.assert_allclose(perfect_stats["high_quality"], 1 - np.exp(-4.5), atol=0.01)
  collapsed_stats = metrics.mode_statistics(collapsed, means, sigma)
  assert int(collapsed_stats["modes"]) == 1
  np.testing.assert_allclose(collapsed_stats["reverse_kl"], np.log(len(means)), rtol=1e-5)
  far_stats = metrics.mode_statistics(far, means, sigma)
  assert int(far_stats["modes"]) == 0 and float(far_stats["high_quality"]) == 0.0


def test_ring_modes_are_eight_distinct_points():
  means = np.asarray(toy.ring().means)
  assert len({tuple(np.round(m, 6)) for m in means}) == 8
  np.testing.assert_allclose(np.linalg.norm(means, axis=1), 1.0, rtol=1e-6)
  grid = np.asarray(toy.grid().means)
  assert sorted(set(np.round(grid[:, 0], 6))) == [-4, -2, 0, 2, 4]
