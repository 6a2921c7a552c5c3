"""Residual generator and discriminator for 32x32 images (SNGAN's CIFAR-10 ResNet).

Convolutions on the residual path are initialised Glorot-uniform with gain sqrt(2) and the
shortcut convolutions, the Dense layers and the generator's last convolution Glorot-uniform with
gain 1, as in the SNGAN authors' Chainer code (pfnet-research/sngan_projection). With spectral
normalisation on, Flax stores each initial kernel divided by its estimated spectral norm (see
`layers.maybe_spectral_norm`).

References:
  Miyato, Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative Adversarial
  Networks", ICLR 2018 (Table 4 and Appendix B.4).
  Gulrajani, Ahmed, Arjovsky, Dumoulin and Courville, "Improved Training of Wasserstein GANs",
  NeurIPS 2017 (the residual architecture).
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models import layers

residual_init = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")
shortcut_init = nn.initializers.xavier_uniform()


def _upsample(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling of (batch, height, width, channels)."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x: jax.Array) -> jax.Array:
  """2x2 average pooling of (batch, height, width, channels)."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class GeneratorBlock(nn.Module):
  """Upsampling residual block: BN, ReLU, upsample, conv3x3, BN, ReLU, conv3x3.

  The shortcut upsamples and then applies a 1x1 convolution.

  References:
    Miyato et al., "Spectral Normalization for Generative Adversarial Networks", ICLR 2018.

  Attributes:
    features: output channels.
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype.
  """
  features: int
  axis_name: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Maps (batch, h, w, c) to (batch, 2h, 2w, features)."""
    def batch_norm(h):
      return nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name,
                          momentum=layers.BATCH_NORM_MOMENTUM, epsilon=layers.BATCH_NORM_EPSILON,
                          dtype=self.dtype)(h)

    h = _upsample(nn.relu(batch_norm(x)))
    h = nn.Conv(self.features, (3, 3), padding="SAME", kernel_init=residual_init,
                dtype=self.dtype)(h)
    h = nn.relu(batch_norm(h))
    h = nn.Conv(self.features, (3, 3), padding="SAME", kernel_init=residual_init,
                dtype=self.dtype)(h)
    shortcut = nn.Conv(self.features, (1, 1), padding="VALID", kernel_init=shortcut_init,
                       dtype=self.dtype)(_upsample(x))
    return h + shortcut


class DiscriminatorBlock(nn.Module):
  """Discriminator residual block.

  With `optimized` (the first block, which sees the image): conv3x3, ReLU, conv3x3, avgpool, and
  a shortcut avgpool then conv1x1. Otherwise: ReLU, conv3x3, ReLU, conv3x3, then avgpool when
  `downsample`; the shortcut is conv1x1 then avgpool when `downsample` or the channel count
  changes, the identity otherwise.

  References:
    Miyato et al., "Spectral Normalization for Generative Adversarial Networks", ICLR 2018.

  Attributes:
    features: output channels.
    downsample: whether to halve the spatial size.
    optimized: whether this is the first block (no leading ReLU, pool before the shortcut conv).
    spectral_norm: whether to spectrally normalise every convolution.
    dtype: computation dtype.
  """
  features: int
  downsample: bool = True
  optimized: bool = False
  spectral_norm: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Maps (batch, h, w, c) to (batch, h', w', features), h' = h/2 when downsampling."""
    def conv(h, kernel_size, kernel_init):
      layer = nn.Conv(self.features, kernel_size, padding="SAME", kernel_init=kernel_init,
                      dtype=self.dtype)
      return layers.maybe_spectral_norm(layer, h, spectral_norm=self.spectral_norm, train=train)

    h = x if self.optimized else nn.relu(x)
    h = conv(h, (3, 3), residual_init)
    h = conv(nn.relu(h), (3, 3), residual_init)
    if self.downsample:
      h = _downsample(h)

    if self.optimized:
      shortcut = conv(_downsample(x), (1, 1), shortcut_init)
    elif self.downsample or x.shape[-1] != self.features:
      shortcut = conv(x, (1, 1), shortcut_init)
      if self.downsample:
        shortcut = _downsample(shortcut)
    else:
      shortcut = x
    return h + shortcut


class ResNetGenerator(nn.Module):
  """SNGAN's CIFAR-10 ResNet generator: 4x4 -> three upsampling blocks -> 32x32 images.

  Dense(4*4*features), three `GeneratorBlock`s, BN, ReLU, conv3x3(channels), tanh.

  References:
    Miyato, Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative Adversarial
    Networks", ICLR 2018 (Table 4).
    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.

  Attributes:
    channels: channels of a generated image.
    features: channels of every residual block.
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32. Images are returned in this dtype.
  """
  channels: int = 3
  features: int = 256
  axis_name: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    """Generates images.

    Args:
      z: latent vectors of shape (batch, latent_dim).
      train: whether BatchNorm uses (and updates) batch statistics.

    Returns:
      Images of shape (batch, 32, 32, channels) with values in [-1, 1].
    """
    x = nn.Dense(4 * 4 * self.features, kernel_init=shortcut_init, dtype=self.dtype)(z)
    x = x.reshape(z.shape[0], 4, 4, self.features)
    for _ in range(3):
      x = GeneratorBlock(self.features, axis_name=self.axis_name, dtype=self.dtype)(x, train)
    x = nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name,
                     momentum=layers.BATCH_NORM_MOMENTUM, epsilon=layers.BATCH_NORM_EPSILON,
                     dtype=self.dtype)(x)
    x = nn.Conv(self.channels, (3, 3), padding="SAME", kernel_init=shortcut_init,
                dtype=self.dtype)(nn.relu(x))
    return jnp.tanh(x)


class ResNetDiscriminator(nn.Module):
  """SNGAN's CIFAR-10 ResNet discriminator, spectrally normalised.

  An optimized downsampling block, a downsampling block and two plain blocks (32 -> 16 -> 8 -> 8
  -> 8), ReLU, a sum over the spatial positions, Dense(1). With `spectral_norm` every Conv and
  Dense is wrapped in Flax's `nn.SpectralNorm` (one power-iteration step per training call, its
  vectors in the 'batch_stats' collection).

  References:
    Miyato, Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative Adversarial
    Networks", ICLR 2018 (Table 4 and Appendix B.4).
    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.

  Attributes:
    features: channels of every residual block.
    spectral_norm: whether to spectrally normalise every layer.
    axis_name: accepted so that every discriminator takes the same fields; unused, as this
      network has no BatchNorm (its spectral-norm vectors depend only on the replicated weights).
    dtype: computation dtype; parameters stay float32. Logits are returned in float32.
  """
  features: int = 128
  spectral_norm: bool = True
  axis_name: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Scores images.

    Args:
      x: images of shape (batch, height, width, channels), 32x32 for the published network.
      train: whether to run and store a power-iteration step of the spectral normalisation.

    Returns:
      Logits of shape (batch,), float32.
    """
    block_settings = [dict(downsample=True, optimized=True), dict(downsample=True),
                      dict(downsample=False), dict(downsample=False)]
    for settings in block_settings:
      x = DiscriminatorBlock(self.features, spectral_norm=self.spectral_norm, dtype=self.dtype,
                             **settings)(x, train)
    x = jnp.sum(nn.relu(x), axis=(1, 2))
    dense = nn.Dense(1, kernel_init=shortcut_init, dtype=self.dtype)
    logits = layers.maybe_spectral_norm(dense, x, spectral_norm=self.spectral_norm, train=train)
    return logits[:, 0].astype(jnp.float32)
