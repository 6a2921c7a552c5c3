"""Residual generator and discriminator for 32x32 images (SNGAN's CIFAR-10 ResNet).

Convolutions on the residual path are initialised Glorot-uniform with gain sqrt(2) and the
shortcut convolutions, the Dense layers and the generator's last convolution Glorot-uniform with
gain 1, as in the SNGAN authors' Chainer code (pfnet-research/sngan_projection). With spectral
normalisation on, Flax stores each initial kernel divided by its estimated spectral norm (see
`layers.maybe_spectral_norm`).

With `num_classes > 0` they are the cGAN-PD networks of Miyato and Koyama (Mimicry's
`cgan_pd_32.py`): the generator's residual blocks use class-conditional batch normalisation
(the last BatchNorm, before the output convolution, stays unconditional), and the
discriminator adds the projection <E[y], phi(x)> of a spectrally normalised class embedding to
its logit, or carries AC-GAN / TAC-GAN class heads on phi(x). With `num_classes = 0` (the
default) the networks are the unconditional SNGAN ones, parameter for parameter.

References:
  Miyato, Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative Adversarial
  Networks", ICLR 2018 (Table 4 and Appendix B.4).
  Gulrajani, Ahmed, Arjovsky, Dumoulin and Courville, "Improved Training of Wasserstein GANs",
  NeurIPS 2017 (the residual architecture).
  Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018 (the conditional
  networks).
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models import conditional, layers

residual_init = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")
shortcut_init = nn.initializers.xavier_uniform()


def _upsample(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling of (batch, height, width, channels)."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x: jax.Array) -> jax.Array:
  """2x2 average pooling of (batch, height, width, channels)."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


NORMS = ("batch", "class", "vector")


class GeneratorBlock(nn.Module):
  """Upsampling residual block: BN, ReLU, upsample, conv3x3, BN, ReLU, conv3x3.

  The shortcut upsamples and then applies a 1x1 convolution. `norm` chooses the two batch
  normalisations: "batch", plain `nn.BatchNorm` with its own scale and bias (SNGAN); "class",
  `conditional.ClassConditionalBatchNorm`, called with int labels (cGAN-PD); "vector",
  `conditional.VectorConditionalBatchNorm`, called with conditioning vectors (BigGAN, whose
  GBlock is this block with spectrally normalised convolutions).

  References:
    Miyato et al., "Spectral Normalization for Generative Adversarial Networks", ICLR 2018.
    Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018.
    Brock, Donahue and Simonyan, ICLR 2019 (BigGAN-PyTorch `layers.GBlock`).

  Attributes:
    features: output channels.
    norm: "batch", "class" or "vector" (see above).
    num_classes: number of classes of a "class" block.
    spectral_norm: whether to spectrally normalise the convolutions (and a "vector" block's
      gain and bias maps).
    kernel_init: initialiser of the 3x3 convolutions (and a "vector" block's linear maps).
    shortcut_kernel_init: initialiser of the 1x1 shortcut convolution.
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype.
  """
  features: int
  norm: str = "batch"
  num_classes: int = 0
  spectral_norm: bool = False
  kernel_init: conditional.Initializer = residual_init
  shortcut_kernel_init: conditional.Initializer = shortcut_init
  axis_name: str | None = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    if self.norm not in NORMS:
      raise ValueError(f"unknown norm {self.norm!r}; valid values: {', '.join(NORMS)}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, condition: jax.Array | None = None, train: bool = True
               ) -> jax.Array:
    """Maps (batch, h, w, c) to (batch, 2h, 2w, features).

    Args:
      x: feature maps.
      condition: None for "batch", int labels (batch,) for "class", vectors (batch, d) for
        "vector".
      train: whether batch norm uses (and updates) batch statistics, and whether spectral
        normalisation runs a power-iteration step.
    """
    if (self.norm == "batch") != (condition is None):
      raise ValueError(f"a GeneratorBlock with norm={self.norm!r} "
                       f"{'takes no' if self.norm == 'batch' else 'needs a'} condition")

    def batch_norm(h):
      if self.norm == "class":
        return conditional.ClassConditionalBatchNorm(
            self.num_classes, axis_name=self.axis_name, dtype=self.dtype)(h, condition, train)
      if self.norm == "vector":
        return conditional.VectorConditionalBatchNorm(
            spectral_norm=self.spectral_norm, kernel_init=self.kernel_init,
            axis_name=self.axis_name, dtype=self.dtype)(h, condition, train)
      return nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name,
                          momentum=layers.BATCH_NORM_MOMENTUM, epsilon=layers.BATCH_NORM_EPSILON,
                          dtype=self.dtype)(h)

    def conv(h, kernel_size, kernel_init):
      layer = nn.Conv(self.features, kernel_size, padding="SAME", kernel_init=kernel_init,
                      dtype=self.dtype)
      return layers.maybe_spectral_norm(layer, h, spectral_norm=self.spectral_norm, train=train)

    h = _upsample(nn.relu(batch_norm(x)))
    h = conv(h, (3, 3), self.kernel_init)
    h = nn.relu(batch_norm(h))
    h = conv(h, (3, 3), self.kernel_init)
    shortcut = conv(_upsample(x), (1, 1), self.shortcut_kernel_init)
    return h + shortcut


class DiscriminatorBlock(nn.Module):
  """Discriminator residual block.

  With `optimized` (the first block, which sees the image): conv3x3, ReLU, conv3x3, avgpool, and
  a shortcut avgpool then conv1x1. Otherwise: ReLU, conv3x3, ReLU, conv3x3, then avgpool when
  `downsample`; the shortcut is conv1x1 then avgpool when `downsample` or the channel count
  changes, the identity otherwise. This is also BigGAN-PyTorch's wide `DBlock` (the first
  without preactivation).

  References:
    Miyato et al., "Spectral Normalization for Generative Adversarial Networks", ICLR 2018.

  Attributes:
    features: output channels.
    downsample: whether to halve the spatial size.
    optimized: whether this is the first block (no leading ReLU, pool before the shortcut conv).
    spectral_norm: whether to spectrally normalise every convolution.
    kernel_init: initialiser of the 3x3 convolutions.
    shortcut_kernel_init: initialiser of the 1x1 shortcut convolution.
    dtype: computation dtype.
  """
  features: int
  downsample: bool = True
  optimized: bool = False
  spectral_norm: bool = True
  kernel_init: conditional.Initializer = residual_init
  shortcut_kernel_init: conditional.Initializer = shortcut_init
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Maps (batch, h, w, c) to (batch, h', w', features), h' = h/2 when downsampling."""
    def conv(h, kernel_size, kernel_init):
      layer = nn.Conv(self.features, kernel_size, padding="SAME", kernel_init=kernel_init,
                      dtype=self.dtype)
      return layers.maybe_spectral_norm(layer, h, spectral_norm=self.spectral_norm, train=train)

    h = x if self.optimized else nn.relu(x)
    h = conv(h, (3, 3), self.kernel_init)
    h = conv(nn.relu(h), (3, 3), self.kernel_init)
    if self.downsample:
      h = _downsample(h)

    if self.optimized:
      shortcut = conv(_downsample(x), (1, 1), self.shortcut_kernel_init)
    elif self.downsample or x.shape[-1] != self.features:
      shortcut = conv(x, (1, 1), self.shortcut_kernel_init)
      if self.downsample:
        shortcut = _downsample(shortcut)
    else:
      shortcut = x
    return h + shortcut


class ResNetGenerator(nn.Module):
  """SNGAN's CIFAR-10 ResNet generator: 4x4 -> three upsampling blocks -> 32x32 images.

  Dense(4*4*features), three `GeneratorBlock`s, BN, ReLU, conv3x3(channels), tanh. With
  `num_classes > 0`, the cGAN-PD generator: the blocks' batch norms are class-conditional
  (`conditional.ClassConditionalBatchNorm`, at initialisation plain BN with gain 1), the last BN
  stays unconditional, as in Mimicry's `cgan_pd_32.ResNetGenerator32`.

  References:
    Miyato, Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative Adversarial
    Networks", ICLR 2018 (Table 4).
    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
    Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018.

  Attributes:
    channels: channels of a generated image.
    features: channels of every residual block.
    num_classes: number of classes K of a conditional generator; 0 for an unconditional one.
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32. Images are returned in this dtype.
  """
  channels: int = 3
  features: int = 256
  num_classes: int = 0
  axis_name: str | None = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    conditional.check_num_classes(self.num_classes)
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None, train: bool = True
               ) -> jax.Array:
    """Generates images.

    Args:
      z: latent vectors of shape (batch, latent_dim).
      labels: int class indices of shape (batch,), required when `num_classes > 0`; None
        otherwise.
      train: whether BatchNorm uses (and updates) batch statistics.

    Returns:
      Images of shape (batch, 32, 32, channels) with values in [-1, 1].
    """
    conditional.check_labels(labels, num_classes=self.num_classes, batch_size=z.shape[0],
                             owner=type(self).__name__)
    x = nn.Dense(4 * 4 * self.features, kernel_init=shortcut_init, dtype=self.dtype)(z)
    x = x.reshape(z.shape[0], 4, 4, self.features)
    norm = "class" if self.num_classes else "batch"
    for _ in range(3):
      x = GeneratorBlock(self.features, norm=norm, num_classes=self.num_classes,
                         axis_name=self.axis_name, dtype=self.dtype)(x, labels, train=train)
    x = nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name,
                     momentum=layers.BATCH_NORM_MOMENTUM, epsilon=layers.BATCH_NORM_EPSILON,
                     dtype=self.dtype)(x)
    x = nn.Conv(self.channels, (3, 3), padding="SAME", kernel_init=shortcut_init,
                dtype=self.dtype)(nn.relu(x))
    return jnp.tanh(x)


class ResNetDiscriminator(nn.Module):
  """SNGAN's CIFAR-10 ResNet discriminator, spectrally normalised.

  An optimized downsampling block, a downsampling block and two plain blocks (32 -> 16 -> 8 -> 8
  -> 8), ReLU, a sum over the spatial positions phi(x), Dense(1). With `spectral_norm` every
  Conv and Dense (and the class embedding) is wrapped in Flax's `nn.SpectralNorm` (one
  power-iteration step per training call, its vectors in the 'batch_stats' collection).

  With `num_classes = K > 0`: "projection" gives the cGAN-PD discriminator, logit =
  psi(phi) + <E[y], phi> with E a (K, features) embedding, Glorot-uniform initialised and
  spectrally normalised (the authors' SNEmbedID; Mimicry's `cgan_pd_32`); "acgan" and "tac" add
  Dense(K) class heads on phi (see `conditional.discriminator_output`).

  References:
    Miyato, Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative Adversarial
    Networks", ICLR 2018 (Table 4 and Appendix B.4).
    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
    Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018.

  Attributes:
    features: channels of every residual block.
    spectral_norm: whether to spectrally normalise every layer.
    num_classes: number of classes K of a conditional discriminator; 0 for an unconditional one.
    conditioning: how a conditional discriminator uses the class: "projection", "acgan" or
      "tac" (`conditional.CONDITIONINGS`).
    axis_name: accepted so that every discriminator takes the same fields; unused, as this
      network has no BatchNorm (its spectral-norm vectors depend only on the replicated weights).
    dtype: computation dtype; parameters stay float32. Logits are returned in float32.
  """
  features: int = 128
  spectral_norm: bool = True
  num_classes: int = 0
  conditioning: str = "projection"
  axis_name: str | None = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    conditional.check_num_classes(self.num_classes)
    conditional.check_conditioning(self.conditioning)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None, train: bool = True
               ) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """Scores images.

    Args:
      x: images of shape (batch, height, width, channels), 32x32 for the published network.
      labels: int class indices of shape (batch,): required by a "projection" discriminator
        with `num_classes > 0`, unused by "acgan" and "tac", None when unconditional.
      train: whether to run and store a power-iteration step of the spectral normalisation.

    Returns:
      Logits of shape (batch,), float32; for "acgan" and "tac", (logits, heads) with heads
      {"classes": (batch, K)} and, for "tac", "twin" as well.
    """
    conditional.check_labels(labels, num_classes=self.num_classes, batch_size=x.shape[0],
                             owner=type(self).__name__,
                             required=self.conditioning == "projection")
    block_settings = [dict(downsample=True, optimized=True), dict(downsample=True),
                      dict(downsample=False), dict(downsample=False)]
    for settings in block_settings:
      x = DiscriminatorBlock(self.features, spectral_norm=self.spectral_norm, dtype=self.dtype,
                             **settings)(x, train=train)
    features = jnp.sum(nn.relu(x), axis=(1, 2))
    return conditional.discriminator_output(
        features, labels, num_classes=self.num_classes, conditioning=self.conditioning,
        spectral_norm=self.spectral_norm, train=train, kernel_init=shortcut_init,
        dtype=self.dtype)
