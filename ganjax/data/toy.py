"""Toy distributions with known densities, sampled on the device inside the jitted step.

Each distribution is an isotropic Gaussian mixture: it can draw samples from a key and evaluate
its exact log-density, which is what makes the derivation (the optimal discriminator, C(G), the
JSD) checkable against a trained network.

The 2-D ring and grid follow the PacGAN code (Lin et al. 2018), which follows Metz et al. 2017
and Srivastava et al. 2017: ring modes at angles 2*pi*k/8 (k = 0..7, not linspace(0, 2*pi, 8),
which repeats the first mode), sigma 0.01; grid modes at {-4, -2, 0, 2, 4}^2, sigma 0.05.

Labels: each sample's label is the component it was drawn from (ring and grid: its mode, in the
order of `means`; the 1-D mixtures: its component), for class-conditional GANs.
"""
from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import errors
from ganjax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class GaussianMixture:
  """A mixture of isotropic Gaussians in `dim` dimensions.

  Fields are tuples so that the distribution is hashable and can be a static argument of a
  jitted function.

  Attributes:
    means: (num_modes, dim) mode centres.
    stds: per-mode standard deviation.
    weights: mixture weights summing to 1.
  """
  means: tuple[tuple[float, ...], ...]
  stds: tuple[float, ...]
  weights: tuple[float, ...]

  def __post_init__(self):
    num_modes = len(self.means)
    if num_modes == 0:
      raise ConfigError("a mixture needs at least one mode (means is empty)")
    if len(self.stds) != num_modes or len(self.weights) != num_modes:
      raise ConfigError(f"a mixture needs as many stds and weights as means ({num_modes}), got "
                        f"{len(self.stds)} stds and {len(self.weights)} weights")
    if len({len(mean) for mean in self.means}) != 1:
      raise ConfigError(f"mixture means must all have the same dimension, got {self.means}")
    if min(self.weights) < 0 or not math.isclose(sum(self.weights), 1.0, rel_tol=1e-6):
      raise ConfigError(f"mixture weights must be non-negative and sum to 1, got {self.weights}")
    if min(self.stds) <= 0:
      raise ConfigError(f"mixture stds must be positive, got {self.stds}")

  @property
  def dim(self) -> int:
    return len(self.means[0])

  @property
  def shape(self) -> tuple[int, ...]:
    """The shape of one sample."""
    return (self.dim,)

  @property
  def num_classes(self) -> int:
    """The number of labels of its samples: one per mixture component."""
    return len(self.means)

  def sample_with_labels(self, key: jax.Array, num: int) -> tuple[jax.Array, jax.Array]:
    """`num` samples, shape (num, dim), and the component each was drawn from (its label, int32
    of shape (num,)): the same samples as `sample` with the same key."""
    mode_key, noise_key = jax.random.split(key)
    modes = jax.random.choice(mode_key, len(self.means), (num,), p=jnp.asarray(self.weights))
    noise = jax.random.normal(noise_key, (num, self.dim))
    samples = jnp.asarray(self.means)[modes] + jnp.asarray(self.stds)[modes, None] * noise
    return samples, modes.astype(jnp.int32)

  def sample(self, key: jax.Array, num: int) -> jax.Array:
    """`num` samples, shape (num, dim)."""
    return self.sample_with_labels(key, num)[0]

  def sample_one(self, key: jax.Array) -> jax.Array:
    """One sample, shape (dim,): vmapped over per-example keys inside the training step."""
    return self.sample(key, 1)[0]

  def sample_one_with_label(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One sample and its label (its component), as `sample_one` draws it."""
    samples, labels = self.sample_with_labels(key, 1)
    return samples[0], labels[0]

  def log_prob(self, x: jax.typing.ArrayLike) -> jax.Array:
    """Exact log-density at points x of shape (..., dim)."""
    x = jnp.asarray(x)
    means, stds = jnp.asarray(self.means), jnp.asarray(self.stds)
    sq_dist = jnp.sum((x[..., None, :] - means) ** 2, axis=-1)
    log_components = (-0.5 * sq_dist / stds ** 2 - self.dim * jnp.log(stds)
                      - 0.5 * self.dim * math.log(2 * math.pi))
    return jax.nn.logsumexp(log_components, axis=-1, b=jnp.asarray(self.weights))

  def prob(self, x: jax.typing.ArrayLike) -> jax.Array:
    return jnp.exp(self.log_prob(x))


def _floats(field: str, values) -> tuple[float, ...]:
  """`values`, a number or a flat sequence of numbers, as a tuple of floats."""
  try:
    return tuple(float(value) for value in np.atleast_1d(values))
  except (TypeError, ValueError):
    raise ConfigError(f"{field} must be a number or numbers, got {values!r}") from None


def _positive_int(field: str, value) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ConfigError(f"{field} must be a positive integer, got {value!r}")
  return int(value)


def mixture(means: Sequence[Sequence[float]] | Sequence[float], stds: Sequence[float] | float,
            weights: Sequence[float] | None = None) -> GaussianMixture:
  """A mixture from plain lists; 1-D means may be given as scalars, a scalar std is shared.

  Raises:
    ConfigError: a field that is not numbers, or values that make no mixture.
  """
  means = tuple(_floats("means", mean) for mean in means)
  stds = _floats("stds", stds) * (len(means) if np.isscalar(stds) else 1)
  if weights is None:
    weights = (1.0 / len(means),) * len(means) if means else ()
  return GaussianMixture(means, stds, _floats("weights", weights))


def gaussian_1d(mean: float = 0.0, std: float = 1.0) -> GaussianMixture:
  """A single 1-D Gaussian N(mean, std^2)."""
  return mixture([mean], std)


def mixture_1d(means: Sequence[float] = (-2.0, 2.0), stds: Sequence[float] | float = 0.5,
               weights: Sequence[float] | None = None) -> GaussianMixture:
  """A 1-D Gaussian mixture (two well-separated modes by default)."""
  return mixture(means, stds, weights)


def ring(num_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
  """Modes evenly spaced on a circle, at angles 2*pi*k/num_modes."""
  num_modes, (radius,) = _positive_int("num_modes", num_modes), _floats("radius", radius)
  angles = [2 * math.pi * k / num_modes for k in range(num_modes)]
  return mixture([(radius * math.cos(a), radius * math.sin(a)) for a in angles], std)


def grid(size: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
  """size x size modes on a square lattice centred at 0 ({-4, -2, 0, 2, 4}^2 by default)."""
  size, (spacing,) = _positive_int("size", size), _floats("spacing", spacing)
  coords = [spacing * (i - (size - 1) / 2) for i in range(size)]
  return mixture(list(itertools.product(coords, coords)), std)


DISTRIBUTIONS = {
    "gaussian_1d": gaussian_1d,
    "mixture_1d": mixture_1d,
    "ring": ring,
    "grid": grid,
}


def get(name: str, **kwargs) -> GaussianMixture:
  """The toy distribution a config names (`data.name`), built with its keyword arguments
  (`data.kwargs`).

  Raises:
    ConfigError: for an unknown name or keyword, listing the valid ones, or an invalid value.
  """
  constructor = errors.lookup(DISTRIBUTIONS, name, "toy dataset")
  fields = inspect.signature(constructor).parameters
  unknown = sorted(set(kwargs) - set(fields))
  if unknown:
    raise ConfigError(f"toy dataset {name!r} has no field {', '.join(map(repr, unknown))} "
                      f"(data.kwargs); its fields: {', '.join(fields)}")
  return constructor(**kwargs)
