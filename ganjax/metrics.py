"""Sample-quality measures.

`mode_statistics` is the mode-collapse protocol of the 2-D ring and grid benchmarks (Metz et al.
2017; Srivastava et al. 2017, VEEGAN; Lin et al. 2018, PacGAN, whose code this follows).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


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
