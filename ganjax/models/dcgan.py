"""Deep convolutional GAN generators and discriminators for 28x28, 32x32 and 64x64 images.

Three presets, chosen by the image's height and width (any channel count):
  28x28: the TensorFlow DCGAN tutorial's MNIST networks (ganjax's `dcgan28` benchmark workload);
    5x5 kernels, generator 7x7x(4b) -> 7x7x(2b) -> 14x14x(b) -> 28x28xC with LeakyReLU(0.2),
    discriminator conv b -> conv 2b -> Dense(1) without BatchNorm (b = base_features = 64).
  32x32 and 64x64: Radford et al.'s architecture; 4x4 kernels of stride 2, generator from
    4x4x(8b), halving the features at each upsampling, with BatchNorm and ReLU; discriminator the
    mirror image with LeakyReLU(0.2) and BatchNorm on every layer but the first.
Kernels are initialised N(0, 0.02^2) and BatchNorm scales N(1, 0.02^2), as in the DCGAN code.

`conv_impl` chooses how the generator's stride-2 transposed convolutions are computed: 'plain'
(Flax's `nn.ConvTranspose`), 'fast' (`fast_layers.SubPixelConvTranspose`: the same function as
stride-1 convolutions interleaved by depth to space, with the same parameters), or 'auto'
(the default: 'fast' when jax's default backend is the CPU, 'plain' otherwise). On XLA's CPU
backend the kernel gradient of `nn.ConvTranspose` is very slow, and 'fast' takes a dcgan28
training step at batch 64 from about 0.8 s to 0.5 s (2 CPU cores; with
`compilation.CPU_COMPILER_OPTIONS`, further to about 0.36 s, see benchmarks/README.md) and makes a
stride-2 4x4 layer of the 32x32 and 64x64 presets about 15 times faster; on accelerators XLA's
own transposed convolution is left in place. The discriminator's stride-2 convolutions are fast as
they are (a space-to-depth formulation measured 1.5 to 2 times slower), so its `conv_impl` is
accepted and validated, for one setting to serve both players, but every choice computes them
with `nn.Conv`. Parameter trees are identical whatever the choice, so variables trained with
one run with the other.

References:
  Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep Convolutional
  Generative Adversarial Networks", ICLR 2016.
  TensorFlow tutorial "Deep Convolutional Generative Adversarial Network",
  https://www.tensorflow.org/tutorials/generative/dcgan (the 28x28 preset).
"""
import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models import fast_layers, layers

CONV_IMPLS = ("auto", "plain", "fast")


@dataclasses.dataclass(frozen=True)
class _Preset:
  """One image size's architecture; widths are multiples of `base_features`."""
  start_size: int
  kernel_size: int
  generator_strides: tuple[int, ...]
  generator_widths: tuple[int, ...]
  discriminator_widths: tuple[int, ...]
  generator_activation: str
  discriminator_batch_norm: bool


_PRESETS = {
    28: _Preset(start_size=7, kernel_size=5, generator_strides=(1, 2, 2),
                generator_widths=(4, 2, 1), discriminator_widths=(1, 2),
                generator_activation="leaky_relu", discriminator_batch_norm=False),
    32: _Preset(start_size=4, kernel_size=4, generator_strides=(2, 2, 2),
                generator_widths=(8, 4, 2), discriminator_widths=(1, 2, 4),
                generator_activation="relu", discriminator_batch_norm=True),
    64: _Preset(start_size=4, kernel_size=4, generator_strides=(2, 2, 2, 2),
                generator_widths=(8, 4, 2, 1), discriminator_widths=(1, 2, 4, 8),
                generator_activation="relu", discriminator_batch_norm=True),
}


def _preset(image_shape: Sequence[int]) -> _Preset:
  """Returns the preset for `image_shape` or raises ValueError naming the supported shapes."""
  image_shape = tuple(image_shape)
  if len(image_shape) != 3 or image_shape[0] != image_shape[1] or image_shape[0] not in _PRESETS:
    supported = ", ".join(f"({size}, {size}, C)" for size in _PRESETS)
    raise ValueError(f"unsupported DCGAN image_shape {image_shape}; supported: {supported}")
  return _PRESETS[image_shape[0]]


def _check_conv_impl(conv_impl: str) -> None:
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f"unknown conv_impl {conv_impl!r}; valid choices: {', '.join(CONV_IMPLS)}")


def resolve_conv_impl(conv_impl: str) -> str:
  """Returns 'plain' or 'fast' for a `conv_impl` field value.

  The DCGAN modules call it when applied, not when built, so that building a module does not
  initialise jax's backends.

  Args:
    conv_impl: 'plain', 'fast', or 'auto' ('fast' when `jax.default_backend()` is 'cpu', where
      it is measured faster, 'plain' on accelerators).

  Returns:
    'plain' or 'fast'.

  Raises:
    ValueError: `conv_impl` is not one of `CONV_IMPLS`.
  """
  _check_conv_impl(conv_impl)
  if conv_impl == "auto":
    return "fast" if jax.default_backend() == "cpu" else "plain"
  return conv_impl


def _batch_norm(train: bool, axis_name: str | None, dtype: Any) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, axis_name=axis_name,
                      momentum=layers.BATCH_NORM_MOMENTUM, epsilon=layers.BATCH_NORM_EPSILON,
                      scale_init=layers.dcgan_scale_init, dtype=dtype)


class DCGANGenerator(nn.Module):
  """DCGAN generator: a Dense projection to a small feature map, then transposed convolutions.

  References:
    Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep Convolutional
    Generative Adversarial Networks", ICLR 2016.
    TensorFlow tutorial "Deep Convolutional Generative Adversarial Network" (28x28 preset).

  Attributes:
    image_shape: (height, width, channels) of a generated image; height = width in {28, 32, 64}.
    base_features: width of the last hidden layer; the others are multiples of it.
    activation: hidden activation name, or None for the preset's (leaky_relu for 28x28, relu
      for 32x32 and 64x64).
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32. Images are returned in this dtype.
    conv_impl: how the stride-2 transposed convolutions are computed: 'plain' (`nn.ConvTranspose`),
      'fast' (`fast_layers.SubPixelConvTranspose`, the same function and parameters) or 'auto'
      ('fast' on the CPU backend, 'plain' elsewhere). The variables do not depend on it.
  """
  image_shape: tuple[int, int, int] = (32, 32, 3)
  base_features: int = 64
  activation: str | None = None
  axis_name: str | None = None
  dtype: Any = jnp.float32
  conv_impl: str = "auto"

  def __post_init__(self):
    _preset(self.image_shape)
    if self.activation is not None:
      layers.get_activation(self.activation)
    _check_conv_impl(self.conv_impl)
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    """Generates images.

    Args:
      z: latent vectors of shape (batch, latent_dim).
      train: whether BatchNorm uses (and updates) batch statistics.

    Returns:
      Images of shape (batch, *image_shape) with values in [-1, 1].
    """
    preset = _preset(self.image_shape)
    activation = layers.get_activation(self.activation or preset.generator_activation)
    widths = [multiple * self.base_features for multiple in preset.generator_widths]
    size = preset.start_size
    kernel_size = (preset.kernel_size, preset.kernel_size)
    # Explicit names keep the parameter tree the same for both classes.
    conv_transpose = (fast_layers.SubPixelConvTranspose
                      if resolve_conv_impl(self.conv_impl) == "fast" else nn.ConvTranspose)

    x = nn.Dense(size * size * widths[0], use_bias=False, kernel_init=layers.dcgan_kernel_init,
                 dtype=self.dtype)(z)
    x = activation(_batch_norm(train, self.axis_name, self.dtype)(x))
    x = x.reshape(z.shape[0], size, size, widths[0])
    for index, (width, stride) in enumerate(zip(widths[1:], preset.generator_strides[:-1])):
      x = conv_transpose(width, kernel_size, strides=(stride, stride), padding="SAME",
                         use_bias=False, kernel_init=layers.dcgan_kernel_init, dtype=self.dtype,
                         name=f"ConvTranspose_{index}")(x)
      x = activation(_batch_norm(train, self.axis_name, self.dtype)(x))
    last_stride = preset.generator_strides[-1]
    x = conv_transpose(self.image_shape[-1], kernel_size, strides=(last_stride, last_stride),
                       padding="SAME", kernel_init=layers.dcgan_kernel_init, dtype=self.dtype,
                       name=f"ConvTranspose_{len(widths) - 1}")(x)
    return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
  """DCGAN discriminator: strided convolutions with LeakyReLU(0.2), then Dense(1).

  BatchNorm, when on, follows every convolution but the first (which then has no bias).

  References:
    Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep Convolutional
    Generative Adversarial Networks", ICLR 2016.
    TensorFlow tutorial "Deep Convolutional Generative Adversarial Network" (28x28 preset).

  Attributes:
    image_shape: (height, width, channels) of an input image; height = width in {28, 32, 64}.
    base_features: width of the first convolution; each next one doubles it.
    batch_norm: whether to use BatchNorm, or None for the preset's (off for 28x28, on for 32x32
      and 64x64).
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32. Logits are returned in float32.
    conv_impl: 'plain', 'fast' or 'auto', as for `DCGANGenerator`; validated, but the strided
      convolutions are `nn.Conv` under every choice (no faster formulation was found for them).
  """
  image_shape: tuple[int, int, int] = (32, 32, 3)
  base_features: int = 64
  batch_norm: bool | None = None
  axis_name: str | None = None
  dtype: Any = jnp.float32
  conv_impl: str = "auto"

  def __post_init__(self):
    _preset(self.image_shape)
    _check_conv_impl(self.conv_impl)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Scores images.

    Args:
      x: images of shape (batch, *image_shape).
      train: whether BatchNorm uses (and updates) batch statistics.

    Returns:
      Logits of shape (batch,), float32.
    """
    preset = _preset(self.image_shape)
    batch_norm = preset.discriminator_batch_norm if self.batch_norm is None else self.batch_norm
    kernel_size = (preset.kernel_size, preset.kernel_size)
    for index, multiple in enumerate(preset.discriminator_widths):
      normalised = batch_norm and index > 0
      x = nn.Conv(multiple * self.base_features, kernel_size, strides=(2, 2), padding="SAME",
                  use_bias=not normalised, kernel_init=layers.dcgan_kernel_init,
                  dtype=self.dtype)(x)
      if normalised:
        x = _batch_norm(train, self.axis_name, self.dtype)(x)
      x = nn.leaky_relu(x, negative_slope=layers.LEAKY_RELU_SLOPE)
    x = x.reshape(x.shape[0], -1)
    logits = nn.Dense(1, kernel_init=layers.dcgan_kernel_init, dtype=self.dtype)(x)
    return logits[:, 0].astype(jnp.float32)
