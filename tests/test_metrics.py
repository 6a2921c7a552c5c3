"""Mode statistics and the image-feature metrics against direct numpy and scipy computations."""
import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance

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


def correlated_gaussian(rng, num_samples, dim, shift=0.0):
  mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
  return rng.standard_normal((num_samples, dim)) @ mixing + shift


def scipy_frechet_distance(mean_a, cov_a, mean_b, cov_b):
  covariance_sqrt = scipy.linalg.sqrtm(cov_a @ cov_b).real
  return (np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
          - 2 * np.trace(covariance_sqrt))


def scipy_frechet_distance_of_features(a, b):
  return scipy_frechet_distance(np.mean(a, axis=0), np.cov(a, rowvar=False),
                                np.mean(b, axis=0), np.cov(b, rowvar=False))


@pytest.mark.parametrize("seed,dim", [(0, 16), (1, 32), (2, 64)])
def test_frechet_distance_matches_scipy_sqrtm(seed, dim):
  rng = np.random.default_rng(seed)
  a = correlated_gaussian(rng, 400, dim)
  b = correlated_gaussian(rng, 300, dim, shift=0.3)
  fid = metrics.frechet_distance(a, b)
  assert isinstance(fid, float) and fid > 1.0
  np.testing.assert_allclose(fid, scipy_frechet_distance_of_features(a, b), rtol=1e-8)


def test_frechet_distance_of_gaussian_statistics_in_closed_form():
  rng = np.random.default_rng(3)
  dim = 24
  mean_a, mean_b = rng.standard_normal(dim), rng.standard_normal(dim)
  factor_a, factor_b = rng.standard_normal((2, dim, dim))
  cov_a, cov_b = factor_a @ factor_a.T / dim, factor_b @ factor_b.T / dim
  stats_a = metrics.FeatureStatistics(mean=mean_a, covariance=cov_a, count=1000)
  stats_b = metrics.FeatureStatistics(mean=mean_b, covariance=cov_b, count=1000)
  np.testing.assert_allclose(metrics.frechet_distance_from_statistics(stats_a, stats_b),
                             scipy_frechet_distance(mean_a, cov_a, mean_b, cov_b), rtol=1e-9)
  # Commuting (diagonal) covariances: sum of (sqrt(s_a) - sqrt(s_b))^2, no matrix square root.
  var_a, var_b = rng.uniform(0.1, 3.0, (2, dim))
  diagonal_a = metrics.FeatureStatistics(mean=mean_a, covariance=np.diag(var_a), count=2)
  diagonal_b = metrics.FeatureStatistics(mean=mean_b, covariance=np.diag(var_b), count=2)
  expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
  np.testing.assert_allclose(metrics.frechet_distance_from_statistics(diagonal_a, diagonal_b),
                             expected, rtol=1e-12)


def test_frechet_distance_of_identical_sets_is_zero():
  rng = np.random.default_rng(4)
  a = correlated_gaussian(rng, 500, 48, shift=5.0)
  trace = np.trace(np.cov(a, rowvar=False))
  assert abs(metrics.frechet_distance(a, a)) <= 1e-8 * trace
  assert abs(metrics.frechet_distance(a, a[::-1])) <= 1e-8 * trace


def test_frechet_distance_with_fewer_samples_than_dims():
  rng = np.random.default_rng(5)
  a, b = rng.standard_normal((10, 64)), rng.standard_normal((10, 64)) + 0.2
  fid = metrics.frechet_distance(a, b)
  assert np.isfinite(fid) and fid > 0
  np.testing.assert_allclose(fid, scipy_frechet_distance_of_features(a, b), rtol=1e-6)
  assert abs(metrics.frechet_distance(a, a)) <= 1e-8 * np.trace(np.cov(a, rowvar=False))


def test_frechet_distance_rejects_mismatched_dims_and_single_samples():
  with pytest.raises(ValueError, match="dim"):
    metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
  with pytest.raises(ValueError, match="2 samples"):
    metrics.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


@pytest.mark.parametrize("offset,spread", [(0.0, 1.0), (1e3, 1e-2)])
def test_running_statistics_over_uneven_batches_match_numpy(offset, spread):
  rng = np.random.default_rng(6)
  features = offset + spread * correlated_gaussian(rng, 1000, 8)
  running = metrics.RunningStatistics()
  start = 0
  for size in (1, 7, 0, 300, 2, 690):
    running.update(features[start:start + size])
    start += size
  stats = running.result()
  expected_cov = np.cov(features, rowvar=False)
  assert stats.count == 1000 and stats.mean.dtype == np.float64
  np.testing.assert_allclose(stats.mean, np.mean(features, axis=0), rtol=1e-13)
  np.testing.assert_allclose(stats.covariance, expected_cov, rtol=1e-9,
                             atol=1e-9 * np.max(np.abs(expected_cov)))
  whole = metrics.feature_statistics(features)
  np.testing.assert_allclose(whole.covariance, expected_cov, rtol=1e-9,
                             atol=1e-9 * np.max(np.abs(expected_cov)))
  with pytest.raises(ValueError, match="dim"):
    running.update(np.zeros((3, 9)))


def test_statistics_save_load_round_trip_and_missing_keys(tmp_path):
  stats = metrics.feature_statistics(np.random.default_rng(7).standard_normal((50, 6)))
  path = tmp_path / "real_stats.npz"
  metrics.save_statistics(path, stats)
  loaded = metrics.load_statistics(path)
  np.testing.assert_array_equal(loaded.mean, stats.mean)
  np.testing.assert_array_equal(loaded.covariance, stats.covariance)
  assert loaded.count == 50
  with np.load(path) as stored:  # the published files' keys, and the count beside them
    assert {"mu", "sigma"} <= set(stored.files)
  broken = tmp_path / "broken.npz"
  np.savez(broken, mean=stats.mean)
  with pytest.raises(ValueError, match=r"broken\.npz lacks .*'mu' and 'sigma' \(it holds mean\)"):
    metrics.load_statistics(broken)


def numpy_kid(a, b, num_subsets, subset_size, degree, gamma, coef0, seed):
  rng = np.random.default_rng(seed)
  m = min(subset_size, len(a), len(b))
  mmds = []
  for _ in range(num_subsets):
    x = a[rng.choice(len(a), m, replace=False)]
    y = b[rng.choice(len(b), m, replace=False)]
    sum_xx = sum_yy = sum_xy = 0.0
    for i in range(m):
      for j in range(m):
        if i != j:
          sum_xx += (gamma * x[i] @ x[j] + coef0) ** degree
          sum_yy += (gamma * y[i] @ y[j] + coef0) ** degree
        sum_xy += (gamma * x[i] @ y[j] + coef0) ** degree
    mmds.append((sum_xx + sum_yy) / (m * (m - 1)) - 2 * sum_xy / m**2)
  return np.mean(mmds), np.std(mmds)


@pytest.mark.parametrize("subset_size,degree,gamma,coef0", [(30, 3, None, 1.0),
                                                             (500, 2, 0.3, 0.5)])
def test_kid_matches_numpy_loop_over_the_same_subsets(subset_size, degree, gamma, coef0):
  rng = np.random.default_rng(8)
  a, b = rng.standard_normal((60, 10)), rng.standard_normal((45, 10)) * 1.3 + 0.2
  result = metrics.kernel_inception_distance(a, b, num_subsets=4, subset_size=subset_size,
                                             degree=degree, gamma=gamma, coef0=coef0, seed=11)
  kid, kid_std = numpy_kid(a, b, 4, subset_size, degree, 1 / 10 if gamma is None else gamma,
                           coef0, seed=11)
  assert kid > 0.01
  np.testing.assert_allclose(result["kid"], kid, rtol=1e-4)
  np.testing.assert_allclose(result["kid_std"], kid_std, rtol=1e-3, atol=1e-6)


def test_kid_near_zero_for_one_distribution_and_positive_for_two():
  rng = np.random.default_rng(9)
  a, b = rng.standard_normal((2, 600, 16))
  shifted = rng.standard_normal((600, 16)) + 0.5
  same = metrics.kernel_inception_distance(a, b, num_subsets=20, subset_size=200)
  different = metrics.kernel_inception_distance(a, shifted, num_subsets=20, subset_size=200)
  assert different["kid"] > 0.05 and different["kid"] > 10 * different["kid_std"] / np.sqrt(20)
  assert abs(same["kid"]) < 0.02 * different["kid"]


def knn_radii(features, k):
  distances = scipy.spatial.distance.cdist(features, features)
  np.fill_diagonal(distances, np.inf)
  return np.sort(distances, axis=1)[:, k - 1]


def numpy_precision_recall(real, fake, k):
  fake_to_real = scipy.spatial.distance.cdist(fake, real)
  precision = np.mean(np.any(fake_to_real <= knn_radii(real, k)[None, :], axis=1))
  recall = np.mean(np.any(fake_to_real.T <= knn_radii(fake, k)[None, :], axis=1))
  return precision, recall


def numpy_density_coverage(real, fake, k):
  radii = knn_radii(real, k)
  real_to_fake = scipy.spatial.distance.cdist(real, fake)
  density = np.sum(real_to_fake <= radii[:, None]) / (k * len(fake))
  coverage = np.mean(np.min(real_to_fake, axis=1) <= radii)
  return density, coverage


def overlapping_sets(seed, offset=0.0):
  rng = np.random.default_rng(seed)
  real = rng.standard_normal((203, 8)) + offset
  fake = 1.4 * rng.standard_normal((151, 8)) + 0.6 + offset
  return real, fake


@pytest.mark.parametrize("batch_size", [64, 4096])
def test_precision_recall_and_density_coverage_match_numpy(batch_size):
  real, fake = overlapping_sets(10)
  pr = metrics.precision_recall(real, fake, k=3, batch_size=batch_size)
  precision, recall = numpy_precision_recall(real, fake, 3)
  assert 0.1 < precision < 0.9 and 0.5 < recall < 0.99
  assert pr["precision"] == pytest.approx(precision) and pr["recall"] == pytest.approx(recall)
  dc = metrics.density_coverage(real, fake, k=5, batch_size=batch_size)
  density, coverage = numpy_density_coverage(real, fake, 5)
  assert 0.1 < density < 0.9 and 0.1 < coverage < 0.9
  assert dc["density"] == pytest.approx(density) and dc["coverage"] == pytest.approx(coverage)


def test_neighbourhood_metrics_with_a_large_common_offset():
  real, fake = overlapping_sets(12, offset=1e3)
  assert (metrics.precision_recall(real, fake, batch_size=64)["precision"]
          == pytest.approx(numpy_precision_recall(real, fake, 3)[0]))
  assert (metrics.density_coverage(real, fake, batch_size=64)["density"]
          == pytest.approx(numpy_density_coverage(real, fake, 5)[0]))


def test_neighbourhood_metrics_of_identical_and_far_apart_sets():
  real = np.random.default_rng(13).standard_normal((203, 8))
  same_pr = metrics.precision_recall(real, real.copy(), batch_size=64)
  same_dc = metrics.density_coverage(real, real.copy(), batch_size=64)
  assert same_pr == {"precision": 1.0, "recall": 1.0} and same_dc["coverage"] == 1.0
  assert same_dc["density"] >= 1.0  # each fake at least in the neighbourhood of its own copy
  far = real + 100.0
  assert metrics.precision_recall(real, far, batch_size=64) == {"precision": 0.0, "recall": 0.0}
  assert metrics.density_coverage(real, far, batch_size=64) == {"density": 0.0, "coverage": 0.0}
  with pytest.raises(ValueError, match="k must"):
    metrics.precision_recall(real[:3], real, k=3)


def test_neighbourhood_metrics_count_points_on_the_boundary():
  # Integer features and a real set with mean exactly 0: squared distances are exact small
  # integers, so many fakes lie exactly on a radius, where the balls are closed (<=).
  rng = np.random.default_rng(14)
  half = rng.integers(-1, 2, (101, 8))
  real = np.concatenate([half, -half, np.zeros((1, 8), int)]).astype(np.float32)
  fake = rng.integers(-1, 2, (151, 8)).astype(np.float32)
  radii = knn_radii(real, 3)
  fake_to_real = scipy.spatial.distance.cdist(fake, real)
  assert np.any(fake_to_real == radii[None, :])
  strict_precision = np.mean(np.any(fake_to_real < radii[None, :], axis=1))
  precision, recall = numpy_precision_recall(real, fake, 3)
  assert precision != strict_precision
  pr = metrics.precision_recall(real, fake, batch_size=64)
  assert pr["precision"] == pytest.approx(precision) and pr["recall"] == pytest.approx(recall)
  density, coverage = numpy_density_coverage(real, fake, 5)
  dc = metrics.density_coverage(real, fake, batch_size=64)
  assert dc["density"] == pytest.approx(density) and dc["coverage"] == pytest.approx(coverage)
  # Radii computed once and passed in give the same counts, ties on the boundary included.
  np.testing.assert_allclose(metrics.knn_radii(real, 3), radii, rtol=1e-6)
  assert metrics.precision_recall(real, fake, batch_size=64,
                                  real_radii=metrics.knn_radii(real, 3)) == pr
  assert metrics.density_coverage(real, fake, batch_size=64,
                                  real_radii=metrics.knn_radii(real, 5, batch_size=64)) == dc
  with pytest.raises(ValueError, match="one radius per real sample"):
    metrics.density_coverage(real, fake, real_radii=radii[:-1])


# ------------------------------------------------------------------------------------------------
# The Inception Score


def direct_inception_score(logits, splits):
  """The Inception Score image by image: scipy's softmax and KL divergence (`scipy.stats.entropy`
  of two distributions), each split's marginal the mean of its images' distributions."""
  import scipy.special
  import scipy.stats
  scores = []
  count = len(logits)
  for part in range(splits):
    probabilities = scipy.special.softmax(
        np.asarray(logits[part * count // splits:(part + 1) * count // splits], np.float64),
        axis=1)
    marginal = probabilities.mean(axis=0)
    kl = [scipy.stats.entropy(p, marginal) for p in probabilities]
    scores.append(np.exp(np.mean(kl)))
  return np.mean(scores), np.std(scores)


def test_inception_score_equals_a_direct_computation():
  # 103 images in 10 splits: parts of 10 and 11 images, cut where the original code cuts them.
  logits = np.random.default_rng(11).normal(0, 3, (103, 1008)).astype(np.float32)
  got = metrics.inception_score(logits, splits=10)
  mean, std = direct_inception_score(logits, 10)
  # Both in float64 from the same float32 logits; the sums differ only in order.
  assert got["is"] == pytest.approx(mean, rel=1e-10)
  assert got["is_std"] == pytest.approx(std, rel=1e-8)
  assert got["is_std"] > 0
  assert metrics.inception_score(logits, splits=1)["is_std"] == 0.0


@pytest.mark.parametrize("num_classes", [1, 2, 10, 1008])
def test_inception_score_of_confident_even_samples_is_the_number_of_classes(num_classes):
  # Every image puts all but e^-60 of its mass on one class, the classes in turn: each split's
  # marginal is uniform over num_classes, so the score is exp(log K - ~0) = K.
  images = 20 * num_classes
  logits = np.zeros((images, 1008), np.float32)
  logits[np.arange(images), np.arange(images) % num_classes] = 60.0
  got = metrics.inception_score(logits, splits=10 if num_classes < 1008 else 2)
  assert got["is"] == pytest.approx(num_classes, rel=1e-12)
  assert got["is_std"] == pytest.approx(0.0, abs=1e-9 * num_classes)


def test_inception_score_of_identical_distributions_is_one():
  # Not confident, but every image the same distribution: p(y|x) = p(y), every KL is 0.
  logits = np.tile(np.random.default_rng(12).normal(0, 5, (1, 1008)), (50, 1))
  got = metrics.inception_score(logits, splits=5)
  assert got["is"] == pytest.approx(1.0, abs=1e-12) and got["is_std"] == pytest.approx(0, abs=1e-12)


def test_inception_score_bad_inputs_are_one_line_errors():
  for logits, splits, message in ((np.zeros(5), 1, "num_images, num_classes"),
                                  (np.zeros((5, 3)), 6, "splits <= the number of images"),
                                  (np.zeros((5, 3)), 0, "splits")):
    with pytest.raises(ValueError, match=message) as error:
      metrics.inception_score(logits, splits)
    assert "\n" not in str(error.value)


def test_published_statistics_files_are_read_and_checked(tmp_path):
  # pytorch-fid's --save-stats, TTUR's and clean-fid's files: np.savez_compressed(mu=, sigma=).
  features = np.random.default_rng(13).normal(size=(40, 5))
  mu, sigma = features.mean(axis=0), np.cov(features, rowvar=False)
  published = tmp_path / "fid_stats_cifar10_train.npz"
  np.savez_compressed(published, mu=mu, sigma=sigma)
  loaded = metrics.load_statistics(published, dim=5)
  np.testing.assert_array_equal(loaded.mean, mu)
  np.testing.assert_array_equal(loaded.covariance, sigma)
  assert loaded.count is None  # not in the file: unknown
  with pytest.raises(ValueError, match="5-dimensional features, the features here have 2048"):
    metrics.load_statistics(published, dim=2048)
  misshapen = tmp_path / "misshapen.npz"
  np.savez(misshapen, mu=mu, sigma=sigma[:4])
  with pytest.raises(ValueError, match=r"sigma \(4, 5\)"):
    metrics.load_statistics(misshapen)
  single = tmp_path / "single.npy"
  np.save(single, mu)
  with pytest.raises(ValueError, match="single array"):
    metrics.load_statistics(single)
  text = tmp_path / "notes.txt"
  text.write_text("mu sigma")
  with pytest.raises(ValueError, match="not an .npz file"):
    metrics.load_statistics(text)
