"""BigGAN's generator and discriminator for 32x32 images (the CIFAR-10 architecture).

The architecture follows the authors' BigGAN-PyTorch (ajbrock/BigGAN-PyTorch, `BigGAN.py`
G_arch and D_arch for resolution 32, `layers.py`), with ch = 64 channels per width unit:

  Generator: z split into 4 equal chunks; Dense(chunk 0 -> 4x4x4ch); three upsampling
    residual blocks of 4ch channels (4 -> 8 -> 16 -> 32), block k's two batch norms
    conditioned on concat(shared(y), chunk k) (`conditional.VectorConditionalBatchNorm`, bias-free
    linear gain and bias maps, gain 1 + W_gain c); self-attention after the block that outputs
    `attention_resolution` (16 by default); BN (own scale and bias), ReLU, conv3x3(3), tanh.
    shared(y) is one class embedding of `shared_dim` dimensions, shared by all blocks
    ('shared_embedding', not spectrally normalised: BigGAN-PyTorch notes that spectral norm on
    G's embedding "seems to randomly cripple G").
  Discriminator (wide: every conv of a block has the block's output width): four residual
    blocks of 4ch channels, 32 -> 16 -> 8 -> 8 -> 8 (downsample True, True, False, False; the
    first without preactivation), self-attention after the first block whose output is at
    `attention_resolution` (16: the first block), ReLU, sum over positions phi(x),
    Dense(1) + the projection <E[y], phi(x)> (E spectrally normalised, BigGAN-PyTorch's
    SNEmbedding).
  Spectral normalisation on every Conv, Dense and the projection embedding of both players
  (BigGAN-PyTorch's default G_param = D_param = 'SN'), one power-iteration step per training
  call.

Unconditional networks (`num_classes = 0`): no embedding anywhere; the generator does not split
z (its first layer takes all of z, as BigGAN-PyTorch without `--hier`) and its blocks use
plain batch norm with a learned scale and bias, BigGAN-PyTorch's `layers.bn` (its class-
conditional `ccbn` with a single class reduces to this); the discriminator's output is Dense(1)
alone. This is a choice of ganjax: BigGAN-PyTorch has no unconditional switch.

The discriminator also accepts conditioning = "acgan" / "tac" (class heads on phi(x) instead of
the projection), as the other ganjax discriminators do.

Initialisation: every kernel and embedding is N(0, 0.02^2), the `--G_init N02 --D_init N02` of
BigGAN-PyTorch's CIFAR script (scripts/launch_cifar_ema.sh; its ImageNet default is 'ortho');
biases start at 0 (PyTorch draws them uniform). Flax's spectral normalisation stores each
normalised kernel at init (`layers.maybe_spectral_norm`), so only the shared embedding keeps the
0.02 scale.

BigGAN-PyTorch's CIFAR-10 recipe (scripts/launch_cifar_ema.sh, with utils.py defaults), for the
training code: batch 50, 4 D steps per G step, Adam lr 2e-4 for both, betas (0, 0.999),
eps 1e-8, hinge loss, EMA of G's weights with decay 0.9999 from iteration 1000, evaluated with
the EMA weights; `--G_attn 0 --D_attn 0` (no attention: `attention_resolution=0` here),
`--G_ortho 0.0` (no orthogonal regularisation), and no `--G_shared`/`--hier` (ganjax's
generator always uses the paper's shared embedding and hierarchical z when conditional). The
paper reports IS 9.22 and FID 14.73 for its CIFAR-10 BigGAN (Brock et al. 2019, appendix
table of CIFAR-10 results).

References:
  Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
  Synthesis", ICLR 2019.
  Zhang, Goodfellow, Metaxas and Odena, "Self-Attention Generative Adversarial Networks",
  ICML 2019.
  Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models import conditional, layers, resnet

biggan_init = nn.initializers.normal(stddev=0.02)

# The generator's blocks and the resolution each outputs (G_arch[32]: 4 -> 8 -> 16 -> 32).
GENERATOR_RESOLUTIONS = (8, 16, 32)
# The discriminator's blocks (D_arch[32]) as resnet.DiscriminatorBlock settings, and the
# resolution each outputs for a 32x32 input. (BigGAN-PyTorch labels all four '16', so its
# `--D_attn 16` would put attention after every block; ganjax puts one after the first.)
DISCRIMINATOR_BLOCKS = (dict(downsample=True, optimized=True), dict(downsample=True),
                        dict(downsample=False), dict(downsample=False))
DISCRIMINATOR_RESOLUTIONS = (16, 8, 8, 8)
# The generator's z chunks: one for the first layer, one per block.
LATENT_CHUNKS = len(GENERATOR_RESOLUTIONS) + 1


def _check_attention_resolution(owner: str, resolution: int, valid: tuple[int, ...]) -> None:
  if resolution not in (0, *valid):
    raise ValueError(f"{owner} attention_resolution must be 0 (no attention) or one of "
                     f"{', '.join(map(str, sorted(set(valid))))}, got {resolution}")


def _check_width(owner: str, ch: int) -> None:
  # 4ch channels; self-attention needs them divisible by 8.
  if ch < 2 or ch % 2:
    raise ValueError(f"{owner} needs an even ch >= 2 (its blocks have 4*ch channels), got {ch}")


class BigGANGenerator(nn.Module):
  """BigGAN's 32x32 generator (see the module docstring for the architecture).

  References:
    Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
    Synthesis", ICLR 2019 (architecture: appendix B; hierarchical z and shared embedding:
    section 3).

  Attributes:
    channels: channels of a generated image.
    num_classes: number of classes K of a conditional generator; 0 for an unconditional one.
    ch: width unit; every block has 4*ch channels (64, BigGAN-PyTorch's `G_ch` for CIFAR).
    shared_dim: dimension of the shared class embedding (128: BigGAN-PyTorch's shared_dim 0
      means dim_z, 128 for CIFAR).
    attention_resolution: resolution (8, 16 or 32) of the block followed by self-attention; 0
      for none.
    spectral_norm: whether to spectrally normalise every Conv and Dense.
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32. Images are returned in this dtype.
  """
  channels: int = 3
  num_classes: int = 0
  ch: int = 64
  shared_dim: int = 128
  attention_resolution: int = 16
  spectral_norm: bool = True
  axis_name: str | None = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    owner = type(self).__name__
    conditional.check_num_classes(self.num_classes)
    _check_width(owner, self.ch)
    _check_attention_resolution(owner, self.attention_resolution, GENERATOR_RESOLUTIONS)
    if self.shared_dim < 1:
      raise ValueError(f"{owner} needs shared_dim >= 1, got {self.shared_dim}")
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None, train: bool = True
               ) -> jax.Array:
    """Generates images.

    Args:
      z: latent vectors of shape (batch, latent_dim); for a conditional generator latent_dim
        must be divisible by 4 (the hierarchical chunks).
      labels: int class indices of shape (batch,), required when `num_classes > 0`; None
        otherwise.
      train: whether batch norm uses (and updates) batch statistics, and whether spectral
        normalisation runs a power-iteration step.

    Returns:
      Images of shape (batch, 32, 32, channels) with values in [-1, 1].
    """
    owner = type(self).__name__
    conditional.check_labels(labels, num_classes=self.num_classes, batch_size=z.shape[0],
                             owner=owner)
    width = 4 * self.ch
    blocks = len(GENERATOR_RESOLUTIONS)
    if self.num_classes:
      latent_dim = z.shape[-1]
      if latent_dim % LATENT_CHUNKS:
        raise ValueError(f"{owner} splits z into {LATENT_CHUNKS} equal chunks (the first layer's "
                         f"and one per block), so its dimension must be divisible by "
                         f"{LATENT_CHUNKS}; got {latent_dim}")
      z, *block_latents = jnp.split(z, LATENT_CHUNKS, axis=-1)
      shared = nn.Embed(self.num_classes, self.shared_dim, embedding_init=biggan_init,
                        dtype=self.dtype, name="shared_embedding")(labels)
      conditions = [jnp.concatenate([shared, chunk.astype(shared.dtype)], axis=-1)
                    for chunk in block_latents]
      norm = "vector"
    else:
      conditions, norm = [None] * blocks, "batch"

    dense = nn.Dense(4 * 4 * width, kernel_init=biggan_init, dtype=self.dtype)
    x = layers.maybe_spectral_norm(dense, z, spectral_norm=self.spectral_norm, train=train)
    x = x.reshape(z.shape[0], 4, 4, width)
    for resolution, condition in zip(GENERATOR_RESOLUTIONS, conditions):
      x = resnet.GeneratorBlock(width, norm=norm, spectral_norm=self.spectral_norm,
                                kernel_init=biggan_init, shortcut_kernel_init=biggan_init,
                                axis_name=self.axis_name, dtype=self.dtype)(
                                    x, condition, train=train)
      if resolution == self.attention_resolution:
        x = conditional.SelfAttention(spectral_norm=self.spectral_norm, kernel_init=biggan_init,
                                      dtype=self.dtype)(x, train=train)
    x = nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name,
                     momentum=layers.BATCH_NORM_MOMENTUM, epsilon=layers.BATCH_NORM_EPSILON,
                     dtype=self.dtype)(x)
    conv = nn.Conv(self.channels, (3, 3), padding="SAME", kernel_init=biggan_init,
                   dtype=self.dtype)
    x = layers.maybe_spectral_norm(conv, nn.relu(x), spectral_norm=self.spectral_norm,
                                   train=train)
    return jnp.tanh(x)


class BigGANDiscriminator(nn.Module):
  """BigGAN's 32x32 discriminator (see the module docstring for the architecture).

  References:
    Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
    Synthesis", ICLR 2019 (appendix B).
    Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018.

  Attributes:
    num_classes: number of classes K of a conditional discriminator; 0 for an unconditional one.
    conditioning: "projection" (BigGAN's), "acgan" or "tac" (`conditional.CONDITIONINGS`).
    ch: width unit; every block has 4*ch channels (64, BigGAN-PyTorch's `D_ch` for CIFAR).
    attention_resolution: 16 or 8, self-attention after the first block whose output has that
      resolution (for 32x32 inputs); 0 for none.
    spectral_norm: whether to spectrally normalise every layer.
    axis_name: accepted so that every discriminator takes the same fields; unused (no
      BatchNorm).
    dtype: computation dtype; parameters stay float32. Logits are returned in float32.
  """
  num_classes: int = 0
  conditioning: str = "projection"
  ch: int = 64
  attention_resolution: int = 16
  spectral_norm: bool = True
  axis_name: str | None = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    owner = type(self).__name__
    conditional.check_num_classes(self.num_classes)
    conditional.check_conditioning(self.conditioning)
    _check_width(owner, self.ch)
    _check_attention_resolution(owner, self.attention_resolution, DISCRIMINATOR_RESOLUTIONS)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None, train: bool = True
               ) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """Scores images.

    Args:
      x: images of shape (batch, 32, 32, channels).
      labels: int class indices of shape (batch,): required by a "projection" discriminator
        with `num_classes > 0`, unused by "acgan" and "tac", None when unconditional.
      train: whether to run and store power-iteration steps of the spectral normalisation.

    Returns:
      Logits of shape (batch,), float32; for "acgan" and "tac", (logits, heads) with heads
      {"classes": (batch, K)} and, for "tac", "twin" as well.
    """
    conditional.check_labels(labels, num_classes=self.num_classes, batch_size=x.shape[0],
                             owner=type(self).__name__,
                             required=self.conditioning == "projection")
    width = 4 * self.ch
    attention = DISCRIMINATOR_RESOLUTIONS.index(self.attention_resolution) if (
        self.attention_resolution) else None
    for index, settings in enumerate(DISCRIMINATOR_BLOCKS):
      x = resnet.DiscriminatorBlock(width, spectral_norm=self.spectral_norm,
                                    kernel_init=biggan_init, shortcut_kernel_init=biggan_init,
                                    dtype=self.dtype, **settings)(x, train=train)
      if index == attention:
        x = conditional.SelfAttention(spectral_norm=self.spectral_norm, kernel_init=biggan_init,
                                      dtype=self.dtype)(x, train=train)
    features = jnp.sum(nn.relu(x), axis=(1, 2))
    return conditional.discriminator_output(
        features, labels, num_classes=self.num_classes, conditioning=self.conditioning,
        spectral_norm=self.spectral_norm, train=train, kernel_init=biggan_init,
        embedding_init=biggan_init, dtype=self.dtype)
