"""Fully connected generators and discriminators for low-dimensional data (the toy mixtures).

References:
  Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (MLP players).
  Goodfellow et al., "Maxout Networks", ICML 2013, and Lin, Khetan, Fanti and Oh, "PacGAN: The
  power of two samples in generative adversarial networks", NeurIPS 2018 (maxout discriminator).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models import layers


class MLPGenerator(nn.Module):
  """A multilayer perceptron mapping latent vectors to points of R^output_dim.

  Each hidden layer is Dense, then BatchNorm when `batch_norm`, then the activation; the output
  layer is Dense with no activation.

  References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.

  Attributes:
    output_dim: dimension of a generated sample.
    hidden: widths of the hidden layers.
    activation: name of the hidden activation (see `layers.ACTIVATIONS`).
    batch_norm: whether to batch-normalise each hidden pre-activation.
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32.
  """
  output_dim: int = 2
  hidden: Sequence[int] = (128, 128)
  activation: str = "relu"
  batch_norm: bool = False
  axis_name: str | None = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.get_activation(self.activation)
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    """Generates samples.

    Args:
      z: latent vectors of shape (batch, latent_dim).
      train: whether BatchNorm uses (and updates) batch statistics.

    Returns:
      Samples of shape (batch, output_dim).
    """
    activation = layers.get_activation(self.activation)
    x = z
    for width in self.hidden:
      x = nn.Dense(width, dtype=self.dtype)(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name,
                         momentum=layers.BATCH_NORM_MOMENTUM, epsilon=layers.BATCH_NORM_EPSILON,
                         dtype=self.dtype)(x)
      x = activation(x)
    return nn.Dense(self.output_dim, dtype=self.dtype)(x)


class MLPDiscriminator(nn.Module):
  """A multilayer perceptron returning one logit per sample.

  The input is flattened to (batch, -1), so packed inputs (PacGAN) work unchanged. Each hidden
  layer is Dense, then BatchNorm when `batch_norm`, then the activation; with `maxout_pieces > 0`
  each hidden layer is instead a maxout layer of that many pieces (the activation is then unused,
  and BatchNorm, when on, normalises the pieces before the maximum). PacGAN's toy discriminator
  is `hidden=(200, 200, 200), maxout_pieces=5`.

  References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
    Goodfellow et al., "Maxout Networks", ICML 2013.
    Lin, Khetan, Fanti and Oh, "PacGAN", NeurIPS 2018.

  Attributes:
    hidden: widths of the hidden layers.
    activation: name of the hidden activation (see `layers.ACTIVATIONS`).
    batch_norm: whether to batch-normalise each hidden pre-activation.
    maxout_pieces: pieces per maxout unit; 0 for ordinary Dense layers.
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32. Logits are returned in float32.
  """
  hidden: Sequence[int] = (128, 128)
  activation: str = "relu"
  batch_norm: bool = False
  maxout_pieces: int = 0
  axis_name: str | None = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.get_activation(self.activation)
    if self.maxout_pieces < 0:
      raise ValueError(f"maxout_pieces must be >= 0, got {self.maxout_pieces}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Scores samples.

    Args:
      x: samples of shape (batch, ...).
      train: whether BatchNorm uses (and updates) batch statistics.

    Returns:
      Logits of shape (batch,), float32.
    """
    activation = layers.get_activation(self.activation)
    batch_size = x.shape[0]
    x = x.reshape(batch_size, -1)
    pieces = max(self.maxout_pieces, 1)
    for width in self.hidden:
      x = nn.Dense(width * pieces, dtype=self.dtype)(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name,
                         momentum=layers.BATCH_NORM_MOMENTUM, epsilon=layers.BATCH_NORM_EPSILON,
                         dtype=self.dtype)(x)
      if self.maxout_pieces:
        x = layers.maxout(x, pieces)
      else:
        x = activation(x)
    logits = nn.Dense(1, dtype=self.dtype)(x)
    return logits[:, 0].astype(jnp.float32)
