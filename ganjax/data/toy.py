"""Toy distributions with known densities, sampled on the device inside the jitted step.

Each distribution is an isotropic Gaussian mixture: it can draw samples from a key and evaluate
its exact log-density, which is what makes the derivation (the optimal discriminator, C(G), the
JSD) checkable against a trained network.

The 2-D ring and grid follow the PacGAN code (Lin et al. 2018), which follows Metz et al. 2017
and Srivastava et al. 2017: ring modes at angles 2*pi*k/8 (k = 0..7, not linspace(0, 2*pi, 8),
which repeats the first mode), sigma 0.01; grid modes at {-4, -2, 0, 2, 4}^2, sigma 0.05.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


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
    if num_modes == 0 or len(self.stds) != num_modes or len(self.weights) != num_modes:
      raise ValueError("a mixture needs as many stds and weights as means")
    if not math.isclose(sum(self.weights), 1.0, rel_tol=1e-6):
      raise ValueError(f"mixture weights sum to {sum(self.weights)}, not 1")
    if min(self.stds) <= 0:
      raise ValueError("mixture stds must be positive")

  @property
  def dim(self) -> int:
    return len(self.means[0])

  @property
  def shape(self) -> tuple[int, ...]:
    """The shape of one sample."""
    return (self.dim,)

  def sample(self, key: jax.Array, num: int) -> jax.Array:
    """`num` samples, shape (num, dim)."""
    mode_key, noise_key = jax.random.split(key)
    modes = jax.random.choice(mode_key, len(self.means), (num,), p=jnp.asarray(self.weights))
    noise = jax.random.normal(noise_key, (num, self.dim))
    return jnp.asarray(self.means)[modes] + jnp.asarray(self.stds)[modes, None] * noise

  def sample_one(self, key: jax.Array) -> jax.Array:
    """One sample, shape (dim,): vmapped over per-example keys inside the training step."""
    return self.sample(key, 1)[0]

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


def mixture(means: Sequence[Sequence[float]] | Sequence[float], stds: Sequence[float] | float,
            weights: Sequence[float] | None = None) -> GaussianMixture:
  """A mixture from plain lists; 1-D means may be given as scalars, a scalar std is shared."""
  means = tuple(tuple(float(v) for v in np.atleast_1d(m)) for m in means)
  stds = (float(stds),) * len(means) if np.isscalar(stds) else tuple(float(s) for s in stds)
  if weights is None:
    weights = (1.0 / len(means),) * len(means)
  return GaussianMixture(means, stds, tuple(float(w) for w in weights))


def gaussian_1d(mean: float = 0.0, std: float = 1.0) -> GaussianMixture:
  """A single 1-D Gaussian N(mean, std^2)."""
  return mixture([mean], std)


def mixture_1d(means: Sequence[float] = (-2.0, 2.0), stds: Sequence[float] | float = 0.5,
               weights: Sequence[float] | None = None) -> GaussianMixture:
  """A 1-D Gaussian mixture (two well-separated modes by default)."""
  return mixture(means, stds, weights)


def ring(num_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
  """Modes evenly spaced on a circle, at angles 2*pi*k/num_modes."""
  angles = [2 * math.pi * k / num_modes for k in range(num_modes)]
  return mixture([(radius * math.cos(a), radius * math.sin(a)) for a in angles], std)


def grid(size: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
  """size x size modes on a square lattice centred at 0 ({-4, -2, 0, 2, 4}^2 by default)."""
  coords = [spacing * (i - (size - 1) / 2) for i in range(size)]
  return mixture(list(itertools.product(coords, coords)), std)


DISTRIBUTIONS = {
    "gaussian_1d": gaussian_1d,
    "mixture_1d": mixture_1d,
    "ring": ring,
    "grid": grid,
}


def get(name: str, **kwargs) -> GaussianMixture:
  """The toy distribution a config names, built with its keyword arguments.

  Raises:
    ValueError: for an unknown name, listing the valid ones.
  """
  if name not in DISTRIBUTIONS:
    raise ValueError(f"unknown toy dataset {name!r}; valid names: {', '.join(sorted(DISTRIBUTIONS))}")
  return DISTRIBUTIONS[name](**kwargs)
