"""Sample-quality measures.

`mode_statistics` is the mode-collapse protocol of the 2-D ring and grid benchmarks (Metz et al.
2017; Srivastava et al. 2017, VEEGAN; Lin et al. 2018, PacGAN, whose code this follows).

The image-feature metrics take (num_samples, dim) features of real and generated images (for
example Inception pool features): the Frechet distance (FID) from feature means and covariances,
which `RunningStatistics` accumulates batch by batch and `save_statistics` keeps for a data set;
the kernel distance (KID); precision and recall; density and coverage. `inception_score` takes a
classifier's logits of generated images instead. Means, covariances and the
Frechet distance are float64 numpy on the host; kernels and pairwise distances are float32 JAX,
the distances in blocks of query rows so that no (num_samples, num_samples) matrix is formed.
"""
from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np


def mode_statistics(samples: jax.typing.ArrayLike, means: jax.typing.ArrayLike,
                    sigma: float) -> dict[str, jax.Array]:
  """Modes captured, high-quality fraction and reverse KL of samples from a Gaussian mixture.

  A sample is high quality if it lies within 3 sigma of its nearest mode. A mode is captured if
  at least one high-quality sample is nearest to it. The reverse KL is KL(q || uniform) between
  the histogram q of all samples over their nearest modes and the uniform distribution over modes
  (0 for a perfectly balanced sampler, log K when every sample sits at one mode).

  Args:
    samples: (num_samples, dim) generated samples.
    means: (num_modes, dim) mode centres.
    sigma: the modes' standard deviation.

  Returns:
    A dict with 'modes' (number captured), 'high_quality' (fraction in [0, 1]) and 'reverse_kl'.

  References:
    Srivastava et al. 2017, "VEEGAN", section 5.1; Lin et al. 2018, "PacGAN", section 5.1.
  """
  samples, means = jnp.asarray(samples), jnp.asarray(means)
  distances = jnp.linalg.norm(samples[:, None, :] - means[None, :, :], axis=-1)
  nearest = jnp.argmin(distances, axis=1)
  high_quality = jnp.min(distances, axis=1) < 3.0 * sigma
  num_modes = means.shape[0]
  one_hot = jax.nn.one_hot(nearest, num_modes)
  captured = jnp.any(one_hot * high_quality[:, None] > 0, axis=0)
  histogram = jnp.mean(one_hot, axis=0)
  reverse_kl = jnp.sum(jax.scipy.special.xlogy(histogram, histogram * num_modes))
  return {"modes": jnp.sum(captured), "high_quality": jnp.mean(high_quality),
          "reverse_kl": reverse_kl}


def mixture_mode_statistics(samples: jax.typing.ArrayLike, mixture) -> dict[str, jax.Array]:
  """`mode_statistics` against a Gaussian mixture whose modes share one standard deviation
  (`ganjax.data.toy.ring()` and `grid()`): its `means` and `stds[0]`."""
  return mode_statistics(samples, jnp.asarray(mixture.means), mixture.stds[0])


def conditional_mode_statistics(samples: jax.typing.ArrayLike, labels: jax.typing.ArrayLike,
                                means: jax.typing.ArrayLike, sigma: float) -> dict[str, jax.Array]:
  """How well a class-conditional generator of a Gaussian mixture puts class k on mode k.

  A sample generated for class k is correct when it is a high-quality sample of mode k: mode k
  is its nearest mode and it lies within 3 sigma of it (as in `mode_statistics`). For each class,
  the fraction of its samples that are correct; a generator that ignores its labels and samples
  the K modes evenly scores high_quality / K.

  Args:
    samples: (num_samples, dim) generated samples.
    labels: (num_samples,) the classes they were generated for, in [0, num_modes).
    means: (num_modes, dim) mode centres; class k is mode k.
    sigma: the modes' standard deviation.

  Returns:
    A dict with 'per_class_accuracy' ((num_modes,), NaN for a class without samples),
    'label_accuracy' (its mean over the classes with samples), 'label_accuracy_min' (the
    worst class) and 'classes_on_mode' (the number of classes whose samples land on their own
    mode more often than on any other).
  """
  samples, means = jnp.asarray(samples), jnp.asarray(means)
  labels = jnp.asarray(labels)
  num_modes = means.shape[0]
  distances = jnp.linalg.norm(samples[:, None, :] - means[None, :, :], axis=-1)
  nearest = jnp.argmin(distances, axis=1)
  correct = (nearest == labels) & (jnp.min(distances, axis=1) < 3.0 * sigma)
  members = jax.nn.one_hot(labels, num_modes)                       # (n, K)
  counts = jnp.sum(members, axis=0)
  per_class = jnp.sum(members * correct[:, None], axis=0) / counts  # NaN where counts == 0
  landing = members.T @ jax.nn.one_hot(nearest, num_modes)          # (class, mode) counts
  on_mode = (jnp.argmax(landing, axis=1) == jnp.arange(num_modes)) & (counts > 0)
  return {"per_class_accuracy": per_class, "label_accuracy": jnp.nanmean(per_class),
          "label_accuracy_min": jnp.nanmin(per_class), "classes_on_mode": jnp.sum(on_mode)}


def mixture_conditional_mode_statistics(samples: jax.typing.ArrayLike,
                                        labels: jax.typing.ArrayLike,
                                        mixture) -> dict[str, jax.Array]:
  """`conditional_mode_statistics` against a Gaussian mixture whose modes share one standard
  deviation (as `mixture_mode_statistics`): class k is its mode k."""
  return conditional_mode_statistics(samples, labels, jnp.asarray(mixture.means),
                                     mixture.stds[0])


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureStatistics:
  """Mean, unbiased covariance and sample count of a set of features.

  Attributes:
    mean: (dim,) float64 mean.
    covariance: (dim, dim) float64 covariance, normalised by count - 1 (as `np.cov`).
    count: number of samples, or None where unknown (published statistics without it).
  """
  mean: np.ndarray
  covariance: np.ndarray
  count: int | None


class RunningStatistics:
  """Streaming mean and covariance of features in float64 numpy on the host.

  Each batch is centred on its own mean and merged with the running totals by the pairwise update
  of Chan et al., so features with a large common offset lose no precision.

  Example:
    running = RunningStatistics()
    for batch in batches:
      running.update(batch)
    stats = running.result()

  References:
    Chan, Golub and LeVeque 1979, "Updating formulae and a pairwise algorithm for computing sample
    variances".
  """

  def __init__(self):
    self.count = 0
    self._mean = None
    self._scatter = None  # sum of outer products of deviations from the running mean

  def update(self, features: jax.typing.ArrayLike) -> None:
    """Adds a (batch_size, dim) batch of features; any batch size, including 0 and 1."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
      raise ValueError(f"features must be (batch_size, dim), got shape {features.shape}")
    if self._mean is not None and features.shape[1] != self._mean.shape[0]:
      raise ValueError(f"features have dim {features.shape[1]}, earlier batches "
                       f"{self._mean.shape[0]}")
    batch_count = features.shape[0]
    if batch_count == 0:
      return
    batch_mean = features.mean(axis=0)
    deviations = features - batch_mean
    batch_scatter = deviations.T @ deviations
    if self._mean is None:
      self.count, self._mean, self._scatter = batch_count, batch_mean, batch_scatter
      return
    total = self.count + batch_count
    delta = batch_mean - self._mean
    self._mean = self._mean + delta * (batch_count / total)
    self._scatter = (self._scatter + batch_scatter
                     + np.outer(delta, delta) * (self.count * batch_count / total))
    self.count = total

  def result(self) -> FeatureStatistics:
    """The statistics of all features so far; a ValueError before 2 samples."""
    if self.count < 2:
      raise ValueError(f"a covariance needs at least 2 samples, got {self.count}")
    return FeatureStatistics(mean=self._mean.copy(), covariance=self._scatter / (self.count - 1),
                             count=self.count)


def feature_statistics(features: jax.typing.ArrayLike) -> FeatureStatistics:
  """Mean and unbiased covariance of (num_samples, dim) features, as `np.cov(rowvar=False)`."""
  running = RunningStatistics()
  running.update(features)
  return running.result()


def save_statistics(path: str | os.PathLike, stats: FeatureStatistics, **metadata: str) -> None:
  """Writes statistics to an .npz file at exactly `path` in the format pytorch-fid, TTUR and
  clean-fid distribute theirs: arrays 'mu' (dim,) and 'sigma' (dim, dim), here with 'count'
  and each `metadata` string (the protocol that produced them) beside them."""
  with open(path, "wb") as file:
    np.savez(file, mu=stats.mean, sigma=stats.covariance, count=stats.count,
             **{name: np.asarray(value) for name, value in metadata.items()})


def load_statistics(path: str | os.PathLike, dim: int | None = None) -> FeatureStatistics:
  """Reads feature statistics from an .npz file: 'mu' and 'sigma' as pytorch-fid, TTUR and
  clean-fid write them (and `save_statistics`), or 'mean' and 'covariance' of older ganjax files;
  'count' when the file has it (else None: unknown).

  Args:
    path: the file.
    dim: the feature dimension they must have (2048 for Inception pool features), or None.

  Raises:
    ValueError: naming the file, when it is not an .npz, lacks the arrays, or their shapes are
      not (dim,) and (dim, dim).
  """
  import zipfile
  name = os.fspath(path)
  try:
    data = np.load(path, allow_pickle=False)
  except (OSError, ValueError, zipfile.BadZipFile) as error:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    raise ValueError(f"{name} is not an .npz file of feature statistics ({reason})") from None
  if isinstance(data, np.ndarray):
    raise ValueError(f"{name} is a single array, not an .npz file with 'mu' and 'sigma'")
  with data:
    keys = next((pair for pair in (("mu", "sigma"), ("mean", "covariance"))
                 if set(pair) <= set(data.files)), None)
    if keys is None:
      raise ValueError(f"{name} lacks the feature statistics 'mu' and 'sigma' (it holds "
                       f"{', '.join(data.files) or 'nothing'})")
    mean = np.asarray(data[keys[0]], np.float64)
    covariance = np.asarray(data[keys[1]], np.float64)
    count = int(data["count"]) if "count" in data.files else None
  if mean.ndim != 1 or covariance.shape != (mean.size, mean.size):
    raise ValueError(f"{name}: mu has shape {mean.shape} and sigma {covariance.shape}; expected "
                     "(dim,) and (dim, dim)")
  if dim is not None and mean.size != dim:
    raise ValueError(f"{name} holds statistics of {mean.size}-dimensional features, the "
                     f"features here have {dim} dimensions")
  return FeatureStatistics(mean=mean, covariance=covariance, count=count)


def inception_score(logits: jax.typing.ArrayLike, splits: int = 10) -> dict[str, float]:
  """The Inception Score (Salimans et al. 2016) of generated images from their class logits.

  The softmax p(y|x) of each image's logits; the images in `splits` consecutive parts (part i:
  images [i N / splits, (i + 1) N / splits), rounded down, as the original code and
  torch-fidelity with samples_shuffle=False cut them); in each part the marginal p(y) = mean of
  p(y|x) and the score exp(mean over images of KL(p(y|x) || p(y))). In float64.

  For the number of papers, the logits are the 2015 Inception graph's 1008 without the
  classifier's bias (`ganjax.models.inception.extract_features_and_logits`), over 50,000 images
  in 10 splits. The score is 1 when every image gets the same distribution over classes, and
  K when the images are confidently and evenly spread over K classes.

  Args:
    logits: (num_images, num_classes) logits.
    splits: the number of parts, at most the number of images.

  Returns:
    {'is': mean of the parts' scores, 'is_std': their standard deviation (population, ddof=0,
    as the original code's np.std)}.

  Raises:
    ValueError: not a 2-D array, or fewer images than splits.
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2:
    raise ValueError(f"logits must be (num_images, num_classes), got shape {logits.shape}")
  count = logits.shape[0]
  if not isinstance(splits, int) or splits < 1 or splits > count:
    raise ValueError(f"the Inception Score needs 1 <= splits <= the number of images ({count}), "
                     f"got splits={splits!r}")
  log_p = logits - logits.max(axis=1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
  scores = []
  for part in range(splits):
    chunk = log_p[part * count // splits:(part + 1) * count // splits]
    p = np.exp(chunk)
    log_marginal = np.log(p.mean(axis=0))
    # A class no image of the part gives any probability adds nothing (0 log 0 = 0).
    kl = np.sum(np.where(p > 0, p * (chunk - log_marginal), 0.0), axis=1)
    scores.append(np.exp(kl.mean()))
  return {"is": float(np.mean(scores)), "is_std": float(np.std(scores))}


def _psd_eigh(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Eigenvalues and eigenvectors of a symmetric positive semi-definite matrix (symmetrised
  first), with the eigenvalues below the rounding level dim * eps * largest (the tolerance of
  `np.linalg.matrix_rank`), negative ones included, set to 0: the square root would turn rounding
  errors of 1e-16 into 1e-8 per null direction."""
  eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
  tolerance = matrix.shape[0] * np.finfo(np.float64).eps * np.max(np.abs(eigenvalues), initial=0.0)
  return np.where(eigenvalues > tolerance, eigenvalues, 0.0), eigenvectors


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric positive semi-definite matrix."""
  eigenvalues, eigenvectors = _psd_eigh(matrix)
  return (eigenvectors * np.sqrt(eigenvalues)) @ eigenvectors.T


def frechet_distance_from_statistics(stats_a: FeatureStatistics,
                                     stats_b: FeatureStatistics) -> float:
  """Frechet distance between the Gaussians with the given means and covariances (FID).

  ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^{1/2}), in float64, where the last trace
  is the sum of the square roots of the eigenvalues of the symmetric positive semi-definite
  sqrt(S_a) S_b sqrt(S_a), which has the eigenvalues of S_a S_b; eigenvalues at the rounding level
  count as 0. This stays finite and accurate for singular covariances (fewer samples than
  dimensions) with no offset added to the diagonal, and is 0 up to rounding (either sign) for
  identical statistics.

  Args:
    stats_a: statistics of one feature set (`feature_statistics`, `RunningStatistics.result`).
    stats_b: statistics of the other.

  Returns:
    The distance as a Python float.

  References:
    Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
    equilibrium", section 3; Dowson and Landau 1982 for the Frechet distance of Gaussians.
  """
  mean_a, mean_b = (np.asarray(s.mean, np.float64) for s in (stats_a, stats_b))
  cov_a, cov_b = (np.asarray(s.covariance, np.float64) for s in (stats_a, stats_b))
  if mean_a.shape != mean_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != 2 * mean_a.shape:
    raise ValueError(f"statistics differ in dim: means {mean_a.shape} and {mean_b.shape}, "
                     f"covariances {cov_a.shape} and {cov_b.shape}")
  if min(count for count in (stats_a.count, stats_b.count, 2) if count is not None) < 2:
    raise ValueError(f"statistics of at least 2 samples needed, got {stats_a.count} and "
                     f"{stats_b.count}")
  sqrt_a = _psd_sqrt(cov_a)
  trace_sqrt = np.sum(np.sqrt(_psd_eigh(sqrt_a @ cov_b @ sqrt_a)[0]))
  difference = mean_a - mean_b
  return float(difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)


def frechet_distance(features_a: jax.typing.ArrayLike, features_b: jax.typing.ArrayLike) -> float:
  """Frechet distance (FID) between two (num_samples, dim) feature sets; see
  `frechet_distance_from_statistics`.

  References:
    Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
    equilibrium", section 3.
  """
  features_a, features_b = np.asarray(features_a), np.asarray(features_b)
  if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
    raise ValueError(f"features must be (num_samples, dim) of one dim, got {features_a.shape} "
                     f"and {features_b.shape}")
  return frechet_distance_from_statistics(feature_statistics(features_a),
                                          feature_statistics(features_b))


def intra_class_frechet_distance(real_features: jax.typing.ArrayLike,
                                 real_labels: jax.typing.ArrayLike,
                                 fake_features: jax.typing.ArrayLike,
                                 fake_labels: jax.typing.ArrayLike, *,
                                 num_classes: int) -> dict[str, np.ndarray | float]:
  """Intra-class Frechet distance (intra-FID) of a class-conditional generator.

  For each class k, the Frechet distance (`frechet_distance`) between the features of the real
  examples of class k and those of the examples generated for class k; intra-FID is their mean
  over the classes. A generator that makes good images of the wrong class has a low FID and a
  high intra-FID.

  Args:
    real_features: (num_real, dim) features of real examples.
    real_labels: (num_real,) their classes, in [0, num_classes).
    fake_features: (num_fake, dim) features of generated examples.
    fake_labels: (num_fake,) the classes they were generated for.
    num_classes: the number of classes K.

  Returns:
    A dict with 'intra_fid' (a float, the mean) and 'per_class_fid' ((K,) float64).

  Raises:
    ValueError: features and labels of different lengths, or a class with fewer than 2 real or
      2 generated examples (a covariance needs 2), naming the class.

  References:
    Miyato and Koyama 2018, "cGANs with Projection Discriminator", section 5 (intra-FID).
  """
  sets = {}
  for kind, features, labels in (("real", real_features, real_labels),
                                 ("generated", fake_features, fake_labels)):
    features, labels = np.asarray(features), np.asarray(labels).reshape(-1)
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
      raise ValueError(f"{kind} features {features.shape} and labels {labels.shape} do not pair "
                       "up")
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    if np.min(counts) < 2:
      k = int(np.argmin(counts))
      raise ValueError(f"class {k} has {counts[k]} {kind} examples; intra-FID needs at least 2 of "
                       "each class")
    sets[kind] = (features, labels)
  (real, real_labels), (fake, fake_labels) = sets["real"], sets["generated"]
  per_class = np.asarray([frechet_distance(real[real_labels == k], fake[fake_labels == k])
                          for k in range(num_classes)])
  return {"intra_fid": float(np.mean(per_class)), "per_class_fid": per_class}


def _matmul(x: jax.Array, y: jax.Array) -> jax.Array:
  """x @ y in full float32 (no reduced-precision matmul on GPUs and TPUs)."""
  return jnp.matmul(x, y, precision=jax.lax.Precision.HIGHEST)


def _kid_subset_indices(num_a: int, num_b: int, num_subsets: int, subset_size: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(num_subsets, subset_size) row indices into each set: per subset, a draw without replacement
  from the first set, then one from the second, with `np.random.default_rng(seed)`."""
  rng = np.random.default_rng(seed)
  draws = [(rng.choice(num_a, subset_size, replace=False),
            rng.choice(num_b, subset_size, replace=False)) for _ in range(num_subsets)]
  indices_a, indices_b = zip(*draws)
  return np.stack(indices_a), np.stack(indices_b)


@functools.partial(jax.jit, static_argnames=("degree",))
def _kid_kernel_sums(features_a, features_b, indices_a, indices_b, gamma, coef0, *, degree):
  """Per subset, the row sums of the polynomial kernel matrices: off-diagonal a-a, off-diagonal
  b-b and a-b, as (num_subsets, 3, subset_size); one subset's kernels in memory at a time."""

  def subset_sums(indices):
    subset_a, subset_b = features_a[indices[0]], features_b[indices[1]]

    def kernel(x, y):
      return (gamma * _matmul(x, y.T) + coef0) ** degree

    kernel_aa, kernel_bb = kernel(subset_a, subset_a), kernel(subset_b, subset_b)
    return jnp.stack([jnp.sum(kernel_aa, axis=1) - jnp.diagonal(kernel_aa),
                      jnp.sum(kernel_bb, axis=1) - jnp.diagonal(kernel_bb),
                      jnp.sum(kernel(subset_a, subset_b), axis=1)])

  return jax.lax.map(subset_sums, (indices_a, indices_b))


def kernel_inception_distance(features_a: jax.typing.ArrayLike, features_b: jax.typing.ArrayLike,
                              *, num_subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                              gamma: float | None = None, coef0: float = 1.0,
                              seed: int = 0) -> dict[str, float]:
  """Kernel distance (KID): unbiased squared MMD with a polynomial kernel, averaged over subsets.

  With k(x, y) = (gamma x.y + coef0)^degree and m = min(subset_size, len(a), len(b)), each subset
  draws m rows without replacement from each set and scores
  (sum_{i!=j} k(a_i, a_j) + sum_{i!=j} k(b_i, b_j)) / (m (m - 1)) - 2 mean_{i,j} k(a_i, b_j).
  Kernels are float32 JAX; their row sums are added up in float64 on the host.

  Args:
    features_a: (num_a, dim) features of one set.
    features_b: (num_b, dim) features of the other.
    num_subsets: how many subsets to average over.
    subset_size: rows per subset and set, at most the smaller set's size.
    degree: the kernel's degree.
    gamma: the kernel's scale; 1 / dim by default.
    coef0: the kernel's constant.
    seed: seeds `np.random.default_rng`, which draws subset a then subset b for each subset.

  Returns:
    A dict with 'kid' (mean over subsets) and 'kid_std' (their standard deviation, ddof=0).

  References:
    Binkowski et al. 2018, "Demystifying MMD GANs", section 5 and appendix; the subset protocol of
    their code and of torch-fidelity.
  """
  features_a, features_b = np.asarray(features_a), np.asarray(features_b)
  if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
    raise ValueError(f"features must be (num_samples, dim) of one dim, got {features_a.shape} "
                     f"and {features_b.shape}")
  size = min(subset_size, features_a.shape[0], features_b.shape[0])
  if size < 2 or num_subsets < 1:
    raise ValueError(f"KID needs subsets of at least 2 samples and at least one subset, got "
                     f"{size} samples and {num_subsets} subsets")
  gamma = 1.0 / features_a.shape[1] if gamma is None else gamma
  indices_a, indices_b = _kid_subset_indices(features_a.shape[0], features_b.shape[0],
                                             num_subsets, size, seed)
  row_sums = _kid_kernel_sums(jnp.asarray(features_a, jnp.float32),
                              jnp.asarray(features_b, jnp.float32), indices_a, indices_b,
                              jnp.float32(gamma), jnp.float32(coef0), degree=degree)
  sum_aa, sum_bb, sum_ab = np.asarray(row_sums, np.float64).sum(axis=2).T
  mmds = (sum_aa + sum_bb) / (size * (size - 1)) - 2.0 * sum_ab / size**2
  return {"kid": float(np.mean(mmds)), "kid_std": float(np.std(mmds))}


def _squared_distances(x: jax.Array, y: jax.Array) -> jax.Array:
  """(len(x), len(y)) squared Euclidean distances |x|^2 + |y|^2 - 2 x.y, clipped at 0."""
  squared = (jnp.sum(x**2, axis=1)[:, None] + jnp.sum(y**2, axis=1)[None, :]
             - 2.0 * _matmul(x, y.T))
  return jnp.maximum(squared, 0.0)


def _map_query_blocks(per_block, queries: jax.Array, batch_size: int) -> jax.Array:
  """`per_block(block_queries, block_row_indices)` over blocks of `batch_size` rows of `queries`,
  the last block padded; the per-row results concatenated, padding dropped."""
  num_queries = queries.shape[0]
  batch_size = min(batch_size, num_queries)
  num_blocks = -(-num_queries // batch_size)
  padded = jnp.pad(queries, ((0, num_blocks * batch_size - num_queries), (0, 0)))
  blocks = padded.reshape(num_blocks, batch_size, queries.shape[1])
  row_indices = jnp.arange(num_blocks * batch_size).reshape(num_blocks, batch_size)
  results = jax.lax.map(lambda block: per_block(*block), (blocks, row_indices))
  return results.reshape(num_blocks * batch_size, *results.shape[2:])[:num_queries]


@functools.partial(jax.jit, static_argnames=("k", "batch_size", "exclude_self"))
def _kth_neighbour_squared_distances(queries, references, *, k, batch_size, exclude_self):
  """Squared distance from each query to its k-th nearest reference; with `exclude_self` the
  queries are the references and a row is not its own neighbour."""
  reference_indices = jnp.arange(references.shape[0])

  def per_block(block_queries, block_rows):
    squared = _squared_distances(block_queries, references)
    if exclude_self:
      squared = jnp.where(block_rows[:, None] == reference_indices[None, :], jnp.inf, squared)
    return -jax.lax.top_k(-squared, k)[0][:, k - 1]

  return _map_query_blocks(per_block, queries, batch_size)


@functools.partial(jax.jit, static_argnames=("batch_size",))
def _ball_counts(queries, centres, squared_radii, *, batch_size):
  """For each query, how many of the balls (centres, radii) contain it (distance <= radius)."""

  def per_block(block_queries, _):
    return jnp.sum(_squared_distances(block_queries, centres) <= squared_radii[None, :], axis=1)

  return _map_query_blocks(per_block, queries, batch_size)


def _centred_pair(real_features, fake_features, k: int) -> tuple[jax.Array, jax.Array]:
  """Both sets as float32, shifted by the real mean (distances are unchanged and |x|^2 + |y|^2 -
  2 x.y loses no precision to a common offset), after checking shapes and k against the reals."""
  real, fake = np.asarray(real_features), np.asarray(fake_features)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"features must be (num_samples, dim) of one dim, got {real.shape} and "
                     f"{fake.shape}")
  if not 1 <= k < real.shape[0]:
    raise ValueError(f"k must be at least 1 and below the {real.shape[0]} real samples, got {k}")
  offset = real.mean(axis=0, dtype=np.float64)
  return tuple(jnp.asarray(x - offset.astype(x.dtype), jnp.float32) for x in (real, fake))


def knn_radii(features: jax.typing.ArrayLike, k: int, *, batch_size: int = 1024) -> np.ndarray:
  """Distance from each row of (num_samples, dim) features to its k-th nearest other row: the
  neighbourhood radii of `precision_recall` and `density_coverage`, which take them precomputed
  (`real_radii`) so that a fixed real set's radii are computed once.

  Returns:
    (num_samples,) float64 distances (square roots of the float32 squared distances, which they
    give back exactly).
  """
  features, _ = _centred_pair(features, features, k)
  squared = _kth_neighbour_squared_distances(features, features, k=k, batch_size=batch_size,
                                             exclude_self=True)
  return np.sqrt(np.asarray(squared, np.float64))


def _squared_real_radii(real: jax.Array, real_radii, k: int, batch_size: int) -> jax.Array:
  """The reals' squared k-NN radii, from `real_radii` (`knn_radii`) when given."""
  if real_radii is None:
    return _kth_neighbour_squared_distances(real, real, k=k, batch_size=batch_size,
                                            exclude_self=True)
  real_radii = np.asarray(real_radii, np.float64)
  if real_radii.shape != (real.shape[0],):
    raise ValueError(f"real_radii must have one radius per real sample, shape "
                     f"({real.shape[0]},), got {real_radii.shape}")
  return jnp.asarray(np.square(real_radii).astype(np.float32))


def precision_recall(real_features: jax.typing.ArrayLike, fake_features: jax.typing.ArrayLike,
                     k: int = 3, *, batch_size: int = 1024,
                     real_radii: np.ndarray | None = None) -> dict[str, float]:
  """Improved precision and recall of generated features against real ones.

  Each sample's radius is the distance to its k-th nearest other sample of its own set. Precision
  is the fraction of fakes within (<=) the radius of at least one real; recall is the fraction of
  reals within the radius of at least one fake.

  Args:
    real_features: (num_real, dim) features of real samples.
    fake_features: (num_fake, dim) features of generated samples.
    k: the neighbourhood size, below both set sizes.
    batch_size: query rows per block of pairwise distances; memory grows as batch_size times the
      larger set size.
    real_radii: `knn_radii(real_features, k)`, if computed before.

  Returns:
    A dict with 'precision' and 'recall', each in [0, 1].

  References:
    Kynkaanniemi et al. 2019, "Improved precision and recall metric for assessing generative
    models", section 2.
  """
  real, fake = _centred_pair(real_features, fake_features, k)
  if k >= fake.shape[0]:
    raise ValueError(f"k must be below the {fake.shape[0]} fake samples, got {k}")
  radii = {"real": _squared_real_radii(real, real_radii, k, batch_size),
           "fake": _kth_neighbour_squared_distances(fake, fake, k=k, batch_size=batch_size,
                                                    exclude_self=True)}
  precision = _ball_counts(fake, real, radii["real"], batch_size=batch_size) > 0
  recall = _ball_counts(real, fake, radii["fake"], batch_size=batch_size) > 0
  return {"precision": float(np.mean(precision)), "recall": float(np.mean(recall))}


def density_coverage(real_features: jax.typing.ArrayLike, fake_features: jax.typing.ArrayLike,
                     k: int = 5, *, batch_size: int = 1024,
                     real_radii: np.ndarray | None = None) -> dict[str, float]:
  """Density and coverage of generated features against real ones.

  With r_i the distance from real i to its k-th nearest other real, N reals and M fakes:
  density = (1 / (k M)) sum_j sum_i 1[d(f_j, r_i) <= r_i], how many real neighbourhoods hold each
  fake on average over k (1 in expectation when both sets come from one distribution; it can
  exceed 1); coverage = (1 / N) sum_i 1[min_j d(r_i, f_j) <= r_i], the fraction of real
  neighbourhoods that hold at least one fake.

  Args:
    real_features: (num_real, dim) features of real samples.
    fake_features: (num_fake, dim) features of generated samples.
    k: the neighbourhood size, below the number of reals.
    batch_size: query rows per block of pairwise distances; memory grows as batch_size times the
      larger set size.
    real_radii: `knn_radii(real_features, k)`, if computed before.

  Returns:
    A dict with 'density' and 'coverage'.

  References:
    Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative models", section 3.
  """
  real, fake = _centred_pair(real_features, fake_features, k)
  squared_radii = _squared_real_radii(real, real_radii, k, batch_size)
  counts = _ball_counts(fake, real, squared_radii, batch_size=batch_size)
  nearest_fake = _kth_neighbour_squared_distances(real, fake, k=1, batch_size=batch_size,
                                                  exclude_self=False)
  return {"density": float(np.sum(counts) / (k * fake.shape[0])),
          "coverage": float(np.mean(nearest_fake <= squared_radii))}
