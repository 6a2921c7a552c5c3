"""StyleGAN2's generator and discriminator, structured as the ADA code (stylegan2-ada-pytorch).

The networks follow NVlabs/stylegan2-ada-pytorch (`training/networks.py`, with the resampling
of `torch_utils/ops/upfirdn2d.py` and `conv2d_resample.py`), in NHWC layout and plain XLA
operations (no custom kernels):

  Generator = mapping + synthesis. The mapping network normalises z (and, when conditional,
    an embedding of the one-hot label, concatenated to it) to unit second moment and passes it
    through `mapping_layers` equalised-lr dense layers (leaky ReLU, learning-rate multiplier
    0.01) to w, broadcast to the num_ws = 2 log2(resolution) - 2 style inputs of the
    synthesis; it tracks the average w_avg of w for truncation. The synthesis network is the
    'skip' architecture: a learned 4x4 constant, then one block per resolution 4, 8, ...,
    resolution (conv0, 3x3 with 2x upsampling, except at 4x4; conv1, 3x3; toRGB, 1x1), each
    layer a modulated convolution whose styles come from an affine map of its w, with
    per-pixel noise times a learned strength, a bias and leaky ReLU; the image is the sum of
    the blocks' toRGB outputs, each upsampled by the [1, 3, 3, 1] FIR filter.
  Discriminator ('resnet', or 'orig' without the residual skips): fromRGB 1x1 at the input
    resolution, one block per resolution down to 8x8 (conv0 3x3; conv1 3x3 with 2x FIR
    downsampling; resnet: a 1x1 skip without bias, the sum scaled by sqrt(1/2)), and at 4x4
    the epilogue: minibatch standard deviation, conv 3x3, dense, dense to the logit. The
    conditional discriminator is the projection of the ADA code: a label mapping network
    (embedding and `mapping_layers` dense layers) gives cmap, and the logit is
    <out(x), cmap> / sqrt(cmap_dim).

Channels per resolution: min(channel_base // res, channel_max) (config F: channel_base 32768,
channel_max 512). Every weight is stored N(0, 1) (the mapping layers' N(0, 1/0.01^2)) and
scaled at run time by 1/sqrt(fan_in) (times 0.01): the equalised learning rate. Leaky ReLU
(slope 0.2) is followed by the gain sqrt(2).

Reduced precision: the `reduced_resolutions` highest resolutions (at least 8x8; the ADA code's
num_fp16_res) compute in `dtype` (bfloat16 where chosen; the ADA code uses float16); the
mapping network, the 4x4 generator block, the discriminator's epilogue, every parameter and the
outputs are float32. `conv_clamp` clamps the activations of the convolution layers (every
synthesis layer and toRGB, fromRGB, conv0 and conv1 of the discriminator's blocks and the
epilogue's conv; not the skips or dense layers) to [-conv_clamp, conv_clamp], in every block
whatever its precision: that is what the ADA networks do with a conv_clamp, which its training
script sets to 256 together with num_fp16_res 4.

Noise and style mixing draw from per-example keys (the generator's `keys` argument), so an
example's image does not depend on which other examples share its batch nor on how the batch is
split over devices.

Departures from the ADA code: bfloat16 rather than float16 (so no rescaling of the modulated
kernels against overflow); the constant noise is drawn from PRNGKey(layer) when needed rather
than kept in a buffer; the style-mixing cutoff is drawn per example rather than per batch;
minibatch-stddev groups are consecutive examples rather than strided ones (so that a batch split
over devices in multiples of the group gives one device's numbers); `fused_modconv` is a field
(default off: the reference chooses the non-fused form in training); the epilogue's dense layer
reads the 4x4 features in NHWC order (a permutation of its inputs); and a 4x4 discriminator,
which the reference cannot build with 'resnet' or 'orig', gets a fromRGB before the epilogue.

References:
  Karras, Laine, Aittala, Hellsten, Lehtinen and Aila, "Analyzing and Improving the Image
  Quality of StyleGAN", CVPR 2020 (StyleGAN2: weight demodulation, skip generator, resnet
  discriminator).
  Karras, Aittala, Hellsten, Laine, Lehtinen and Aila, "Training Generative Adversarial
  Networks with Limited Data", NeurIPS 2020 (the ADA code, NVlabs/stylegan2-ada-pytorch, whose
  structure, constants and conditioning this follows).
  Karras, Laine and Aila, "A Style-Based Generator Architecture for Generative Adversarial
  Networks", CVPR 2019 (mapping network, noise inputs, style mixing, truncation).
  Karras, Aila, Laine and Lehtinen, "Progressive Growing of GANs for Improved Quality,
  Stability, and Variation", ICLR 2018 (equalised learning rate, minibatch standard deviation).
  Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018.
"""
import math
from typing import Any, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ganjax.models import conditional, layers

# The low-pass filter of every resampling (the ADA code's resample_filter).
RESAMPLE_TAPS = (1, 3, 3, 1)
LEAKY_RELU_SLOPE = 0.2
# The gain after each activation that keeps unit variance (the ADA code's def_gain).
ACTIVATION_GAINS = {"linear": 1.0, "lrelu": math.sqrt(2.0)}
ARCHITECTURES = ("resnet", "orig")
DTYPES = layers.DTYPES
# The number folded into an example's key for its style-mixing draws; the noise of synthesis
# layer j uses j, far below it.
STYLE_MIXING_STREAM = 1 << 20

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


# Resampling.

def fir_filter(taps: Sequence[float] = RESAMPLE_TAPS) -> np.ndarray:
  """The 2-D separable FIR filter outer(taps, taps) / sum, float32 (DC gain 1)."""
  taps = np.asarray(taps, np.float64)
  kernel = np.outer(taps, taps)
  return (kernel / kernel.sum()).astype(np.float32)


def upfirdn2d(x: jax.Array, f: Any, up: int = 1, down: int = 1,
              padding: Sequence[int] = (0, 0, 0, 0), gain: float = 1.0) -> jax.Array:
  """Upsamples, pads, FIR-filters and downsamples every channel of a batch of images.

  In this order: insert up - 1 zeros after each pixel, pad with zeros (negative padding crops),
  convolve with f (a true convolution, f flipped, as the reference) times `gain`, keep every
  `down`-th pixel. The output has (H * up + y0 + y1 - fh) // down + 1 rows (and the same for
  the columns).

  Args:
    x: images (batch, H, W, C).
    f: 2-D filter (fh, fw), e.g. `fir_filter()`.
    up: upsampling factor.
    down: downsampling factor.
    padding: (x0, x1, y0, y1): columns added left and right, rows added above and below, with
      respect to the upsampled image.
    gain: factor on the filter (up ** 2 keeps the magnitude of a zero-inserted image).

  Returns:
    The filtered images, in x's dtype.
  """
  x0, x1, y0, y1 = padding
  x = lax.pad(x, jnp.zeros((), x.dtype),
              ((0, 0, 0), (y0, y1 + up - 1, up - 1), (x0, x1 + up - 1, up - 1), (0, 0, 0)))
  channels = x.shape[-1]
  kernel = np.flip(np.asarray(f, np.float32), (0, 1)) * gain
  kernel = jnp.asarray(np.tile(kernel[:, :, None, None], (1, 1, 1, channels)), x.dtype)
  return lax.conv_general_dilated(x, kernel, (down, down), "VALID",
                                  dimension_numbers=_DIMENSIONS, feature_group_count=channels)


def upsample2d(x: jax.Array, f: Any, up: int = 2) -> jax.Array:
  """Upsamples by `up` with the FIR filter f: output exactly (H * up, W * up)."""
  fw = f.shape[1]
  low, high = (fw + up - 1) // 2, (fw - up) // 2
  return upfirdn2d(x, f, up=up, padding=(low, high, low, high), gain=up ** 2)


def downsample2d(x: jax.Array, f: Any, down: int = 2) -> jax.Array:
  """Downsamples by `down` with the FIR filter f: output exactly (H // down, W // down)."""
  fw = f.shape[1]
  low, high = (fw - down + 1) // 2, (fw - down) // 2
  return upfirdn2d(x, f, down=down, padding=(low, high, low, high))


def _resampled_conv(x: jax.Array, weight: jax.Array, up: int, down: int, f: Any,
                    groups: int = 1) -> jax.Array:
  """x convolved with an HWIO kernel of odd size k ('same' size, times up / down), resampled
  as the reference's conv2d_resample (groups: `feature_group_count`).

  up = down = 1: cross-correlation with zero padding k // 2.

  up > 1: the upsampled image is zero insertion, then the k x k kernel as a true convolution
    (the reference's up layers use flip_weight=False), then the FIR filter with gain up^2,
    computed in the order of the reference: a transposed convolution (the kernel, flipped, on
    the zero-dilated input) and the filter on its up (H - 1) + k rows. (Filtering first and
    convolving the upsampled image differs on the one-pixel border, where the zero padding of
    the second step cuts the first's support, and costs 4 times the convolution's arithmetic.)
  down > 1: the FIR filter first (padded to H + 1 rows for k = 3), then the kernel with stride
    `down`; for a 1x1 kernel the filter subsamples and the kernel is a plain 1x1 convolution.
  """
  k = weight.shape[0]
  padding = k // 2
  if up > 1:
    fw = f.shape[1]
    x = lax.conv_general_dilated(x, jnp.flip(weight, (0, 1)), (1, 1), [(k - 1, k - 1)] * 2,
                                 lhs_dilation=(up, up), dimension_numbers=_DIMENSIONS,
                                 feature_group_count=groups)
    low = padding + (fw + up - 1) // 2 - (k - 1)
    high = padding + (fw - up) // 2 - (k - up)
    return upfirdn2d(x, f, padding=(low, high, low, high), gain=up ** 2)
  stride = 1
  if down > 1:
    fw = f.shape[1]
    low, high = padding + (fw - down + 1) // 2, padding + (fw - down) // 2
    if k == 1:
      x = upfirdn2d(x, f, down=down, padding=(low, high, low, high))
    else:
      x, stride = upfirdn2d(x, f, padding=(low, high, low, high)), down
    padding = 0
  return lax.conv_general_dilated(x, weight, (stride, stride), [(padding, padding)] * 2,
                                  dimension_numbers=_DIMENSIONS, feature_group_count=groups)


# Normalisations.

def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """x / sqrt(mean(x^2 over the last axis) + eps)."""
  return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def minibatch_stddev(x: jax.Array, group_size: int = 4, num_channels: int = 1) -> jax.Array:
  """Appends the minibatch standard deviation as `num_channels` extra channels.

  The batch is split into groups of G = min(group_size, batch) consecutive examples (examples
  gG to gG + G - 1); the channels into `num_channels` sets. For each group and set: the standard
  deviation over the group's examples (sqrt(variance + 1e-8)) of every pixel and channel,
  averaged over pixels and channels; every example of the group gets that number as a constant
  channel. The reference groups examples i, i + N/G, i + 2N/G, ... of its per-GPU batch of N: the
  same statistic for exchangeable examples; consecutive groups make a global batch split over
  devices in multiples of G give the numbers of one device.

  References:
    Karras, Aila, Laine and Lehtinen, ICLR 2018, section 3; the ADA code's MinibatchStdLayer.

  Args:
    x: features (batch, H, W, C), batch divisible by G and C by num_channels.
    group_size: the largest group.
    num_channels: F, the number of statistics (channels added).

  Returns:
    (batch, H, W, C + F), in x's dtype (the statistic is computed in float32).

  Raises:
    ValueError: batch not divisible by the group size, or C by num_channels.
  """
  batch, height, width, channels = x.shape
  group = min(group_size, batch)
  if batch % group or channels % num_channels:
    raise ValueError(f"minibatch_stddev needs a batch divisible by the group size {group} and "
                     f"channels divisible by num_channels {num_channels}, got batch {batch} "
                     f"and {channels} channels")
  y = x.astype(jnp.float32).reshape(batch // group, group, height, width, num_channels,
                                    channels // num_channels)
  y = jnp.sqrt(jnp.var(y, axis=1) + 1e-8)
  y = jnp.mean(y, axis=(1, 2, 4))
  y = jnp.repeat(y, group, axis=0)
  y = jnp.broadcast_to(y[:, None, None, :], (batch, height, width, num_channels))
  return jnp.concatenate([x, y.astype(x.dtype)], axis=-1)


# Equalised learning rate.

def _bias_act(x: jax.Array, bias: jax.Array | None, activation: str, gain: float = 1.0,
              clamp: float = 0.0) -> jax.Array:
  """The reference's bias_act: x + bias, the activation times its gain and `gain`, then the
  clamp to [-clamp, clamp] (0: none)."""
  if bias is not None:
    x = x + bias.astype(x.dtype)
  if activation == "lrelu":
    x = nn.leaky_relu(x, LEAKY_RELU_SLOPE)
  gain = ACTIVATION_GAINS[activation] * gain
  if gain != 1:
    x = x * jnp.asarray(gain, x.dtype)
  if clamp:
    x = jnp.clip(x, -clamp, clamp)
  return x


def _check_activation(owner: str, activation: str) -> None:
  if activation not in ACTIVATION_GAINS:
    raise ValueError(f"{owner} activation must be one of {', '.join(ACTIVATION_GAINS)}, got "
                     f"{activation!r}")


class EqualDense(nn.Module):
  """Dense layer with an equalised learning rate (the ADA code's FullyConnectedLayer).

  The weight is stored N(0, 1) / lr_multiplier and used times lr_multiplier / sqrt(fan_in);
  the bias is stored full of bias_init and used times lr_multiplier. The effective weight then
  starts N(0, 1/fan_in) while Adam's steps on the stored values move it lr_multiplier times as
  fast as for a plain layer.

  Parameters: 'weight' (fan_in, features) and 'bias' (features,).

  Attributes:
    features: output units.
    bias: whether to add a bias.
    lr_multiplier: the learning-rate multiplier.
    bias_init: initial value of the (stored) bias.
    activation: 'linear' or 'lrelu' (leaky ReLU, slope 0.2, times sqrt(2)).
  """
  features: int
  bias: bool = True
  lr_multiplier: float = 1.0
  bias_init: float = 0.0
  activation: str = "linear"

  def __post_init__(self):
    _check_activation(type(self).__name__, self.activation)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps (..., fan_in) to (..., features), in float32."""
    fan_in = x.shape[-1]
    weight = self.param("weight", nn.initializers.normal(1.0 / self.lr_multiplier),
                        (fan_in, self.features))
    x = x.astype(jnp.float32) @ (weight * (self.lr_multiplier / math.sqrt(fan_in)))
    bias = None
    if self.bias:
      bias = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,))
      bias = bias * self.lr_multiplier
    return _bias_act(x, bias, self.activation)


class EqualConv2d(nn.Module):
  """Convolution with an equalised learning rate (the ADA code's Conv2dLayer), NHWC.

  The kernel is stored N(0, 1) and used times 1/sqrt(in_channels * kernel^2), 'same' padding;
  with `down` 2 the input is FIR-filtered and the kernel applied with stride 2, with `up` 2 the
  transposed convolution is followed by the filter (see `_resampled_conv`). Then the bias, the
  activation times its gain and the call's `gain`, and the clamp to +-conv_clamp * gain.

  Parameters: 'weight' (kernel, kernel, in_channels, features) and 'bias' (features,).

  Attributes:
    features: output channels.
    kernel: the (odd) kernel size.
    bias: whether to add a bias.
    activation: 'linear' or 'lrelu'.
    up: upsampling factor (1 or 2).
    down: downsampling factor (1 or 2).
    resample_filter: taps of the FIR filter of the resampling.
    conv_clamp: clamp of the output (times `gain`); 0 for none.
    dtype: computation dtype; parameters stay float32.
  """
  features: int
  kernel: int = 3
  bias: bool = True
  activation: str = "linear"
  up: int = 1
  down: int = 1
  resample_filter: Sequence[int] = RESAMPLE_TAPS
  conv_clamp: float = 0.0
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check_activation(type(self).__name__, self.activation)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, gain: float = 1.0) -> jax.Array:
    """Maps (batch, H, W, in_channels) to (batch, H * up / down, W * up / down, features)."""
    in_channels = x.shape[-1]
    weight = self.param("weight", nn.initializers.normal(1.0),
                        (self.kernel, self.kernel, in_channels, self.features))
    weight = weight * (1.0 / math.sqrt(in_channels * self.kernel ** 2))
    x = _resampled_conv(x.astype(self.dtype), weight.astype(self.dtype), self.up, self.down,
                        fir_filter(self.resample_filter))
    bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.bias else None
    return _bias_act(x, bias, self.activation, gain, self.conv_clamp * gain)


# Modulated convolution.

def modulated_conv2d(x: jax.Array, weight: jax.Array, styles: jax.Array, demodulate: bool = True,
                     up: int = 1, fused: bool = True,
                     resample_filter: Sequence[int] = RESAMPLE_TAPS) -> jax.Array:
  """StyleGAN2's modulated convolution, with optional demodulation.

  Example i's kernel is w'_i = w * s_i (s_i scaling the input channels) and, demodulated,
  w''_i = w'_i / sqrt(sum over in, kh, kw of w'_i^2 + 1e-8), one coefficient per output
  channel. Two formulations, equal up to float rounding:
    fused: each example convolved with its own kernel w''_i (one batched convolution);
    not fused: the input scaled by s_i, the shared kernel w, the output scaled by the
      demodulation coefficients.
  The kernels and coefficients are computed in float32 and cast to x's dtype for the
  convolution. (The reference rescales them first when x is float16, against overflow;
  bfloat16 has float32's range and needs no such step.)

  References:
    Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020,
    section 2.2, equations (1) to (3).

  Args:
    x: inputs (batch, H, W, in_channels).
    weight: the stored kernel (k, k, in_channels, out_channels), k odd.
    styles: s, (batch, in_channels).
    demodulate: whether to demodulate.
    up: 1, or 2 for the upsampling convolution (see `_resampled_conv`).
    fused: which formulation.
    resample_filter: taps of the FIR filter of the upsampling.

  Returns:
    (batch, H * up, W * up, out_channels), in x's dtype.
  """
  f = fir_filter(resample_filter)
  styles = styles.astype(jnp.float32)
  weight = weight.astype(jnp.float32)
  kernels = weight[None] * styles[:, None, None, :, None]  # (batch, k, k, in, out)
  coefficients = None
  if demodulate:
    coefficients = lax.rsqrt(jnp.sum(jnp.square(kernels), axis=(1, 2, 3)) + 1e-8)
  if not fused:
    x = x * styles[:, None, None, :].astype(x.dtype)
    x = _resampled_conv(x, weight.astype(x.dtype), up, 1, f)
    if demodulate:
      x = x * coefficients[:, None, None, :].astype(x.dtype)
    return x
  if demodulate:
    kernels = kernels * coefficients[:, None, None, None, :]
  kernels = kernels.astype(x.dtype)
  # The batch folded into the channels: one convolution with a group per example. On 2 shared
  # CPU cores (32x32 -> 32x32, batch 8, 64 -> 64 channels, 3x3, float32), forward and forward
  # + backward, two runs: this 21-24 and 680-780 ms, a vmapped per-example convolution (which
  # XLA also lowers to a grouped one) 23-24 and 790-830 ms, the non-fused formulation 8-10 and
  # 28-30 ms; upsampling from 16x16 (one run): 37 and 390, 66 and 370, 32 and 200 ms.
  batch, height, width, in_channels = x.shape
  out_channels = kernels.shape[-1]
  grouped = jnp.transpose(x, (1, 2, 0, 3)).reshape(1, height, width, batch * in_channels)
  kernels = jnp.transpose(kernels, (1, 2, 3, 0, 4)).reshape(
      *kernels.shape[1:4], batch * out_channels)
  y = _resampled_conv(grouped, kernels, up, 1, f, groups=batch)
  y = y.reshape(*y.shape[1:3], batch, out_channels)
  return jnp.transpose(y, (2, 0, 1, 3))


# Shared settings.

def block_channels(resolution: int, channel_base: int, channel_max: int) -> int:
  """Channels of the layers at `resolution`: min(channel_base // resolution, channel_max)."""
  return min(channel_base // resolution, channel_max)


def _block_dtype(resolution: int, top: int, reduced_resolutions: int, dtype: Any) -> Any:
  """`dtype` for the `reduced_resolutions` highest resolutions, never below 8x8 (the
  reference's fp16_resolution), float32 elsewhere."""
  lowest = max(2 ** (int(math.log2(top)) + 1 - reduced_resolutions), 8)
  return dtype if resolution >= lowest else jnp.float32


def _check_fields(module: nn.Module) -> None:
  """The checks of the fields the generator and the discriminator share."""
  owner = type(module).__name__
  resolution = module.resolution
  if resolution < 4 or resolution & (resolution - 1):
    raise ValueError(f"{owner} resolution must be a power of two >= 4, got {resolution}")
  if module.dtype not in DTYPES:
    raise ValueError(f"{owner} dtype must be one of {', '.join(DTYPES)}, got {module.dtype!r}")
  for name in ("channels", "channel_base", "channel_max"):
    if getattr(module, name) < 1:
      raise ValueError(f"{owner} needs {name} >= 1, got {getattr(module, name)}")
  if block_channels(resolution, module.channel_base, module.channel_max) < 1:
    raise ValueError(f"{owner} has no channels at {resolution}x{resolution}: channel_base "
                     f"{module.channel_base} must be at least the resolution")
  if module.conv_clamp < 0 or module.reduced_resolutions < 0 or module.mapping_layers < 1:
    raise ValueError(f"{owner} needs conv_clamp >= 0, reduced_resolutions >= 0 and "
                     f"mapping_layers >= 1, got {module.conv_clamp}, "
                     f"{module.reduced_resolutions} and {module.mapping_layers}")
  conditional.check_num_classes(module.num_classes)


class MappingNetwork(nn.Module):
  """The mapping network: normalised z, and label embedding, through equalised dense layers.

  x = concat(normalize_2nd_moment(z), normalize_2nd_moment(embed(one_hot(labels)))), either
  part absent when z is None or the network is unconditional, then `num_layers` EqualDense
  layers of w_dim units with leaky ReLU and learning-rate multiplier `lr_multiplier` (the ADA
  code's MappingNetwork; with z None, its label mapping of the conditional discriminator).

  Parameters: 'embed' (when conditional), 'fc0' ... 'fc{num_layers - 1}'.

  Attributes:
    w_dim: output (and hidden) units, also the embedding's.
    num_layers: number of dense layers.
    lr_multiplier: their learning-rate multiplier.
    num_classes: number of classes; 0 for no label input.
  """
  w_dim: int
  num_layers: int = 8
  lr_multiplier: float = 0.01
  num_classes: int = 0

  @nn.compact
  def __call__(self, z: jax.Array | None, labels: jax.Array | None) -> jax.Array:
    """Returns w, (batch, w_dim) float32."""
    parts = [] if z is None else [normalize_2nd_moment(z.astype(jnp.float32))]
    if self.num_classes:
      one_hot = jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32)
      parts.append(normalize_2nd_moment(EqualDense(self.w_dim, name="embed")(one_hot)))
    x = jnp.concatenate(parts, axis=-1)
    for index in range(self.num_layers):
      x = EqualDense(self.w_dim, activation="lrelu", lr_multiplier=self.lr_multiplier,
                     name=f"fc{index}")(x)
    return x


def synthesis_noise(keys: jax.Array | None, layer_index: int, resolution: int) -> jax.Array:
  """The noise map of synthesis layer `layer_index`, N(0, 1) per pixel.

  Args:
    keys: one raw PRNG key per example (batch, 2), or None.
    layer_index: the layer's index j, counting the synthesis layers from 0 (4x4's conv1).
    resolution: the layer's output resolution.

  Returns:
    (batch, res, res, 1) float32, example i's map drawn from fold_in(keys[i], j); with keys
    None, one map (1, res, res, 1) drawn from PRNGKey(j), the same for every example and call.
  """
  def draw(key):
    return jax.random.normal(key, (resolution, resolution, 1), jnp.float32)

  if keys is None:
    return draw(jax.random.PRNGKey(layer_index))[None]
  return jax.vmap(lambda key: draw(jax.random.fold_in(key, layer_index)))(keys)


def _affine_modulated_conv(module: nn.Module, x: jax.Array, w: jax.Array, features: int,
                           kernel: int, style_gain: float = 1.0, **kwargs: Any) -> jax.Array:
  """The modulated convolution of a synthesis layer or toRGB, from inside its compact
  `__call__`: the module's 'affine' (an EqualDense, bias 1 at initialisation) maps w to the
  styles, times `style_gain`; its 'weight' (kernel, kernel, in, features), stored N(0, 1), is
  modulated by them (`modulated_conv2d` with the module's `fused` and `dtype`, and kwargs)."""
  in_channels = x.shape[-1]
  styles = EqualDense(in_channels, bias_init=1.0, name="affine")(w) * style_gain
  weight = module.param("weight", nn.initializers.normal(1.0),
                        (kernel, kernel, in_channels, features))
  return modulated_conv2d(x.astype(module.dtype), weight, styles, fused=module.fused, **kwargs)


class SynthesisLayer(nn.Module):
  """A modulated 3x3 convolution of the synthesis network (the ADA code's SynthesisLayer).

  styles = affine(w) (an EqualDense with bias 1 at initialisation), x = modulated_conv2d
  (demodulated, upsampled by `up`), plus noise times the learned scalar 'noise_strength' (0 at
  initialisation), plus the bias, leaky ReLU times sqrt(2), clamped to +-conv_clamp.

  Parameters: 'affine' (an EqualDense), 'weight' (3, 3, in, features), 'noise_strength' (),
  'bias' (features,).

  Attributes:
    features: output channels.
    resolution: output resolution.
    layer_index: the layer's index among the synthesis layers (which noise it draws).
    up: 1, or 2 to upsample.
    conv_clamp: the clamp; 0 for none.
    fused: whether to use the fused modulated convolution.
    dtype: computation dtype of the convolution; parameters stay float32.
  """
  features: int
  resolution: int
  layer_index: int
  up: int = 1
  conv_clamp: float = 0.0
  fused: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array, keys: jax.Array | None) -> jax.Array:
    """Maps x (batch, res / up, res / up, in) and w (batch, w_dim) to (batch, res, res,
    features)."""
    x = _affine_modulated_conv(self, x, w, self.features, 3, up=self.up)
    strength = self.param("noise_strength", nn.initializers.zeros, ())
    noise = synthesis_noise(keys, self.layer_index, self.resolution)
    x = x + (strength * noise).astype(x.dtype)
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return _bias_act(x, bias, "lrelu", clamp=self.conv_clamp)


class ToRGB(nn.Module):
  """The 1x1 modulated convolution to image channels, without demodulation (ToRGBLayer).

  styles = affine(w) / sqrt(in_channels) (the kernel's equalised-lr gain, on the styles as in
  the reference), then the bias and the clamp; the output is float32.

  Parameters: 'affine', 'weight' (1, 1, in, channels), 'bias' (channels,).

  Attributes:
    channels: image channels.
    conv_clamp: the clamp; 0 for none.
    fused: whether to use the fused modulated convolution.
    dtype: computation dtype; parameters stay float32.
  """
  channels: int
  conv_clamp: float = 0.0
  fused: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    """Maps x (batch, H, W, in) and w (batch, w_dim) to (batch, H, W, channels) float32."""
    x = _affine_modulated_conv(self, x, w, self.channels, 1,
                               style_gain=1.0 / math.sqrt(x.shape[-1]), demodulate=False)
    bias = self.param("bias", nn.initializers.zeros, (self.channels,))
    return _bias_act(x, bias, "linear", clamp=self.conv_clamp).astype(jnp.float32)


class SynthesisBlock(nn.Module):
  """One resolution of the skip generator (the ADA code's SynthesisBlock, 'skip').

  At 4x4: the learned constant 'const' (4, 4, features), N(0, 1), and conv1; above: conv0
  (upsampling) and conv1. Then img = upsample2d(img) + torgb(x), in float32.

  Attributes:
    features: channels of the block's layers.
    resolution: the block's resolution.
    channels: image channels.
    first_layer: the index of its first synthesis layer, which is also the index of its first
      w in ws.
    conv_clamp: the clamp; 0 for none.
    fused: whether to use the fused modulated convolution.
    dtype: computation dtype of the block; parameters stay float32.
  """
  features: int
  resolution: int
  channels: int
  first_layer: int
  conv_clamp: float = 0.0
  fused: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array | None, img: jax.Array | None, ws: jax.Array,
               keys: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """Returns (x, img) at the block's resolution; ws (batch, layers + 1, w_dim) holds the
    w of each of its synthesis layers and of its toRGB."""
    settings = dict(resolution=self.resolution, conv_clamp=self.conv_clamp, fused=self.fused,
                    dtype=self.dtype)
    if x is None:
      const = self.param("const", nn.initializers.normal(1.0),
                         (self.resolution, self.resolution, self.features))
      x = jnp.broadcast_to(const.astype(self.dtype), (ws.shape[0], *const.shape))
      names = ("conv1",)
    else:
      names = ("conv0", "conv1")
    for index, name in enumerate(names):
      up = 2 if name == "conv0" else 1
      x = SynthesisLayer(self.features, layer_index=self.first_layer + index, up=up, name=name,
                         **settings)(x, ws[:, index], keys)
    if img is not None:
      img = upsample2d(img, fir_filter())
    rgb = ToRGB(self.channels, conv_clamp=self.conv_clamp, fused=self.fused, dtype=self.dtype,
                name="torgb")(x, ws[:, len(names)])
    return x, rgb if img is None else img + rgb


class SynthesisNetwork(nn.Module):
  """The skip synthesis network: blocks 'b4', 'b8', ... 'b{resolution}'.

  Attributes:
    resolution: output resolution.
    channels: image channels.
    channel_base: channels at resolution r: min(channel_base // r, channel_max).
    channel_max: see channel_base.
    conv_clamp: the clamp; 0 for none.
    fused: whether to use the fused modulated convolution.
    dtype: the reduced computation dtype.
    reduced_resolutions: how many of the highest resolutions compute in `dtype`.
  """
  resolution: int
  channels: int
  channel_base: int
  channel_max: int
  conv_clamp: float = 0.0
  fused: bool = True
  dtype: Any = jnp.float32
  reduced_resolutions: int = 0

  @nn.compact
  def __call__(self, ws: jax.Array, keys: jax.Array | None) -> jax.Array:
    """Maps ws (batch, num_ws, w_dim) to images (batch, res, res, channels) float32."""
    x = img = None
    first = 0
    for log2 in range(2, int(math.log2(self.resolution)) + 1):
      res = 2 ** log2
      layers = 1 if res == 4 else 2
      block = SynthesisBlock(
          block_channels(res, self.channel_base, self.channel_max), res, self.channels, first,
          conv_clamp=self.conv_clamp, fused=self.fused,
          dtype=_block_dtype(res, self.resolution, self.reduced_resolutions, self.dtype),
          name=f"b{res}")
      x, img = block(x, img, ws[:, first:first + layers + 1], keys)
      first += layers
    return img


class StyleGAN2Generator(nn.Module):
  """StyleGAN2's generator, config F by default (see the module docstring).

  Called as `apply(variables, z, labels, train=..., keys=...)`; the tracked average w_avg is
  the variable 'w_avg' (w_dim,) of the 'batch_stats' collection (zeros at initialisation),
  updated in training: w_avg <- mean(w) + w_avg_beta (w_avg - mean(w)), the batch mean
  averaged over `axis_name` when set so that data-parallel replicas keep the same w_avg.

  Parameters: 'mapping_network' (`MappingNetwork`: 'embed', 'fc0', ...) and
  'synthesis_network' (`SynthesisNetwork`: 'b4' with 'const', 'conv1', 'torgb'; 'b8', ... with
  'conv0', 'conv1', 'torgb').

  Style mixing (training, with keys, `style_mixing` > 0): example i draws, from
  fold_in(keys[i], STYLE_MIXING_STREAM) split in three, a second latent z2 (z[i]'s shape), a
  cutoff uniform in [1, num_ws) and whether to mix (probability `style_mixing`); where it
  mixes, ws[i, cutoff:] become those of z2 (mapped without updating w_avg). The reference
  draws one cutoff per batch on each GPU; per example here, so that the draws do not depend on
  the number of devices nor on the other examples.

  References:
    Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020.
    Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
    (the ADA code's Generator, MappingNetwork, SynthesisNetwork).
    Karras, Laine and Aila, "A Style-Based Generator Architecture for Generative Adversarial
    Networks", CVPR 2019 (style mixing, section 3.1; truncation, section 3.3 and appendix B).

  Attributes:
    resolution: output resolution, a power of two >= 4.
    channels: image channels.
    w_dim: dimension of w (and of the label embedding).
    mapping_layers: dense layers of the mapping network.
    mapping_lr: their learning-rate multiplier.
    channel_base: channels at resolution r: min(channel_base // r, channel_max).
    channel_max: see channel_base.
    num_classes: number of classes K of a conditional generator; 0 for an unconditional one.
    w_avg_beta: decay of the tracked average of w.
    style_mixing: probability of style mixing per example in training.
    fused_modconv: whether the modulated convolutions use the fused formulation (one grouped
      convolution: the same numbers up to rounding). Off by default: the reference trains with
      the non-fused one, and on CPU it is much faster (`modulated_conv2d`,
      benchmarks/stylegan2_throughput.py).
    conv_clamp: clamp of the synthesis layers' and toRGB's outputs; 0 for none.
    dtype: 'float32', 'bfloat16', or 'auto' (bfloat16 on GPU and TPU, float32 elsewhere): the
      computation dtype of the `reduced_resolutions` highest resolutions.
    reduced_resolutions: see dtype (the reference's num_fp16_res); never below 8x8.
    axis_name: mapped axis over which the batch mean of w is averaged, or None.
  """
  takes_example_keys: ClassVar[bool] = True

  resolution: int = 32
  channels: int = 3
  w_dim: int = 512
  mapping_layers: int = 8
  mapping_lr: float = 0.01
  channel_base: int = 32768
  channel_max: int = 512
  num_classes: int = 0
  w_avg_beta: float = 0.995
  style_mixing: float = 0.0
  fused_modconv: bool = False
  conv_clamp: float = 256.0
  dtype: str = "auto"
  reduced_resolutions: int = 4
  axis_name: str | None = None

  def __post_init__(self):
    _check_fields(self)
    if not 0.0 <= self.style_mixing <= 1.0:
      raise ValueError(f"{type(self).__name__} style_mixing is a probability in [0, 1], got "
                       f"{self.style_mixing}")
    if self.w_dim < 1:
      raise ValueError(f"{type(self).__name__} needs w_dim >= 1, got {self.w_dim}")
    super().__post_init__()

  @property
  def num_ws(self) -> int:
    """The number of w inputs of the synthesis: 2 log2(resolution) - 2."""
    return 2 * int(math.log2(self.resolution)) - 2

  def setup(self):
    self.mapping_network = MappingNetwork(self.w_dim, self.mapping_layers, self.mapping_lr,
                                          self.num_classes)
    self.synthesis_network = SynthesisNetwork(
        self.resolution, self.channels, self.channel_base, self.channel_max,
        conv_clamp=self.conv_clamp, fused=self.fused_modconv,
        dtype=layers.compute_dtype(self.dtype), reduced_resolutions=self.reduced_resolutions)
    self.w_avg = self.variable("batch_stats", "w_avg", jnp.zeros, (self.w_dim,), jnp.float32)

  def _check_labels(self, labels: jax.Array | None, batch_size: int) -> None:
    conditional.check_labels(labels, num_classes=self.num_classes, batch_size=batch_size,
                             owner=type(self).__name__)

  def _check_keys(self, keys: jax.Array | None, batch_size: int) -> None:
    if keys is not None and keys.shape[0] != batch_size:
      raise ValueError(f"{type(self).__name__} needs one key per example, got keys of shape "
                       f"{tuple(keys.shape)} for a batch of {batch_size}")

  def _map(self, z: jax.Array, labels: jax.Array | None, update: bool,
           truncation_psi: float | jax.Array, truncation_cutoff: int | None) -> jax.Array:
    """ws (batch, num_ws, w_dim) of z, with the w_avg update when `update`."""
    w = self.mapping_network(z, labels)
    if update and not self.is_initializing():
      mean = jax.lax.stop_gradient(jnp.mean(w, axis=0))
      if self.axis_name is not None:
        mean = lax.pmean(mean, self.axis_name)
      self.w_avg.value = mean + self.w_avg_beta * (self.w_avg.value - mean)
    ws = jnp.broadcast_to(w[:, None], (w.shape[0], self.num_ws, self.w_dim))
    if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
      return ws
    truncated = self.w_avg.value + truncation_psi * (ws - self.w_avg.value)
    if truncation_cutoff is None:
      return truncated
    return ws.at[:, :truncation_cutoff].set(truncated[:, :truncation_cutoff])

  def mapping(self, z: jax.Array, labels: jax.Array | None = None, train: bool = False,
              truncation_psi: float | jax.Array = 1.0, truncation_cutoff: int | None = None
              ) -> jax.Array:
    """Maps latents to the synthesis inputs.

    Args:
      z: latents (batch, z_dim).
      labels: int class indices (batch,), required when `num_classes > 0`; None otherwise.
      train: whether to update w_avg (which then needs `mutable=['batch_stats']`).
      truncation_psi: psi: w becomes w_avg + psi (w - w_avg) (1: unchanged, 0: w_avg).
      truncation_cutoff: truncate only the first this many ws; None for all.

    Returns:
      ws, (batch, num_ws, w_dim) float32.
    """
    self._check_labels(labels, z.shape[0])
    return self._map(z, labels, train, truncation_psi, truncation_cutoff)

  def mixed_ws(self, z: jax.Array, labels: jax.Array | None = None, train: bool = False, *,
             keys: jax.Array | None = None, truncation_psi: float | jax.Array = 1.0
             ) -> jax.Array:
    """The ws that `__call__` synthesises: `mapping`, then style mixing in training with keys.

    Args:
      z, labels, train, truncation_psi: as for `mapping`.
      keys: one raw PRNG key per example (batch, 2), or None (no style mixing).

    Returns:
      ws, (batch, num_ws, w_dim) float32.
    """
    self._check_labels(labels, z.shape[0])
    self._check_keys(keys, z.shape[0])
    ws = self._map(z, labels, train, truncation_psi, None)
    if not (train and keys is not None and self.style_mixing > 0):
      return ws

    def draw(key):
      latent_key, cutoff_key, mix_key = jax.random.split(
          jax.random.fold_in(key, STYLE_MIXING_STREAM), 3)
      return (jax.random.normal(latent_key, z.shape[1:], jnp.float32),
              jax.random.randint(cutoff_key, (), 1, self.num_ws),
              jax.random.bernoulli(mix_key, self.style_mixing))

    second, cutoff, mix = jax.vmap(draw)(keys)
    mixed = self._map(second, labels, False, truncation_psi, None)
    replaced = mix[:, None] & (jnp.arange(self.num_ws)[None, :] >= cutoff[:, None])
    return jnp.where(replaced[..., None], mixed, ws)

  def synthesis(self, ws: jax.Array, keys: jax.Array | None = None, train: bool = False
                ) -> jax.Array:
    """Synthesises images from ws.

    Args:
      ws: (batch, num_ws, w_dim).
      keys: one raw PRNG key per example (batch, 2) (what jax.random.PRNGKey returns): the
        noise of example i's synthesis layer j is drawn from fold_in(keys[i], j); None: the
        constant noise, one fixed map per layer drawn from PRNGKey(j) (`synthesis_noise`).
      train: unused (the synthesis has no training-only behaviour); for a uniform call.

    Returns:
      Images (batch, resolution, resolution, channels), float32.
    """
    del train
    expected = (self.num_ws, self.w_dim)
    if ws.ndim != 3 or ws.shape[1:] != expected:
      raise ValueError(f"{type(self).__name__} synthesis needs ws of shape (batch, "
                       f"{expected[0]}, {expected[1]}), got {tuple(ws.shape)}")
    self._check_keys(keys, ws.shape[0])
    return self.synthesis_network(ws, keys)

  def __call__(self, z: jax.Array, labels: jax.Array | None = None, train: bool = False, *,
               keys: jax.Array | None = None, truncation_psi: float | jax.Array = 1.0
               ) -> jax.Array:
    """Generates images: `mixed_ws` (mapping and style mixing), then `synthesis`.

    Args:
      z: latents (batch, z_dim).
      labels: int class indices (batch,), required when `num_classes > 0`; None otherwise.
      train: whether to update w_avg and mix styles.
      keys: one raw PRNG key per example, for the noise and style mixing; None: constant
        noise, no mixing.
      truncation_psi: see `mapping`.

    Returns:
      Images (batch, resolution, resolution, channels), float32.
    """
    ws = self.mixed_ws(z, labels, train, keys=keys, truncation_psi=truncation_psi)
    return self.synthesis(ws, keys=keys)


class DiscriminatorBlock(nn.Module):
  """One resolution of the discriminator (the ADA code's DiscriminatorBlock).

  fromRGB (1x1, leaky ReLU) on the first block; conv0 (3x3) and conv1 (3x3, downsampling),
  both leaky ReLU; 'resnet': skip (1x1, downsampling, no bias) and (skip + x) sqrt(1/2), the
  factor on both branches' gains (and on conv1's clamp), as the reference.

  Attributes:
    tmp_channels: channels of fromRGB and conv0.
    out_channels: channels of conv1 and skip.
    first: whether the block takes the image.
    architecture: 'resnet' or 'orig'.
    conv_clamp: clamp of fromRGB, conv0 and conv1; 0 for none.
    dtype: computation dtype of the block; parameters stay float32.
  """
  tmp_channels: int
  out_channels: int
  first: bool
  architecture: str = "resnet"
  conv_clamp: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps (batch, H, W, C) to (batch, H / 2, W / 2, out_channels)."""
    x = x.astype(self.dtype)
    settings = dict(activation="lrelu", conv_clamp=self.conv_clamp, dtype=self.dtype)
    if self.first:
      x = EqualConv2d(self.tmp_channels, kernel=1, name="fromrgb", **settings)(x)
    if self.architecture == "resnet":
      gain = math.sqrt(0.5)
      skip = EqualConv2d(self.out_channels, kernel=1, bias=False, down=2, dtype=self.dtype,
                         name="skip")(x, gain=gain)
    else:
      gain = 1.0
    x = EqualConv2d(self.tmp_channels, name="conv0", **settings)(x)
    x = EqualConv2d(self.out_channels, down=2, name="conv1", **settings)(x, gain=gain)
    return skip + x if self.architecture == "resnet" else x


class DiscriminatorEpilogue(nn.Module):
  """The discriminator at 4x4, float32 (the ADA code's DiscriminatorEpilogue).

  Minibatch standard deviation (when mbstd_channels > 0), conv 3x3 and dense (c * 16 -> c),
  both leaky ReLU, dense to `outputs`.

  Attributes:
    outputs: 1, or cmap_dim for the projection.
    mbstd_group: group size of the minibatch standard deviation.
    mbstd_channels: its channels; 0 for none.
    conv_clamp: clamp of the conv; 0 for none.
  """
  outputs: int
  mbstd_group: int = 4
  mbstd_channels: int = 1
  conv_clamp: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps (batch, 4, 4, c) to (batch, outputs) float32."""
    channels = x.shape[-1]
    x = x.astype(jnp.float32)
    if self.mbstd_channels:
      x = minibatch_stddev(x, self.mbstd_group, self.mbstd_channels)
    x = EqualConv2d(channels, activation="lrelu", conv_clamp=self.conv_clamp, name="conv")(x)
    # Flattened in NHWC order (the reference flattens NCHW): a permutation of fc's inputs.
    x = EqualDense(channels, activation="lrelu", name="fc")(x.reshape(x.shape[0], -1))
    return EqualDense(self.outputs, name="out")(x)


class StyleGAN2Discriminator(nn.Module):
  """StyleGAN2's discriminator, config F by default (see the module docstring).

  Called as `apply(variables, x, labels, train=...)` with raw images in [-1, 1] (no
  preprocessing); returns float32 logits (batch,). Conditional (num_classes > 0): the logit is
  <out(x), cmap> / sqrt(cmap_dim), cmap = MappingNetwork(labels) (embedding of the one-hot
  label, normalised, then `mapping_layers` dense layers of cmap_dim units, learning-rate
  multiplier 0.01), the ADA code's projection.

  Parameters: 'b{resolution}', ..., 'b8' (`DiscriminatorBlock`), 'b4'
  (`DiscriminatorEpilogue`), and 'mapping' (`MappingNetwork`) when conditional.

  References:
    Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020
    (the resnet discriminator, section 4.1).
    Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
    (the ADA code's Discriminator and its conditioning).
    Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018.

  Attributes:
    resolution: input resolution, a power of two >= 4.
    channels: image channels.
    channel_base: channels at resolution r: min(channel_base // r, channel_max).
    channel_max: see channel_base.
    architecture: 'resnet' or 'orig' (no skips).
    mbstd_group: group size of the minibatch standard deviation.
    mbstd_channels: its channels; 0 for none.
    num_classes: number of classes K of a conditional discriminator; 0 for an unconditional
      one.
    conditioning: 'projection', the only one.
    cmap_dim: dimension of the label mapping; 0 for the channels at 4x4.
    mapping_layers: dense layers of the label mapping network.
    conv_clamp: clamp of the convolutions' outputs (not the skips); 0 for none.
    dtype: 'float32', 'bfloat16' or 'auto', as the generator's.
    reduced_resolutions: how many of the highest resolutions compute in `dtype` (never below
      8x8; the epilogue is float32).
    axis_name: accepted so that the training code may set it; unused.
  """
  resolution: int = 32
  channels: int = 3
  channel_base: int = 32768
  channel_max: int = 512
  architecture: str = "resnet"
  mbstd_group: int = 4
  mbstd_channels: int = 1
  num_classes: int = 0
  conditioning: str = "projection"
  cmap_dim: int = 0
  mapping_layers: int = 8
  conv_clamp: float = 256.0
  dtype: str = "auto"
  reduced_resolutions: int = 4
  axis_name: str | None = None

  def __post_init__(self):
    owner = type(self).__name__
    _check_fields(self)
    if self.conditioning != "projection":
      raise ValueError(f"{owner} conditioning must be 'projection' (the only one it has), got "
                       f"{self.conditioning!r}")
    if self.architecture not in ARCHITECTURES:
      raise ValueError(f"{owner} architecture must be one of {', '.join(ARCHITECTURES)}, got "
                       f"{self.architecture!r}")
    if self.mbstd_group < 1 or self.mbstd_channels < 0 or self.cmap_dim < 0:
      raise ValueError(f"{owner} needs mbstd_group >= 1, mbstd_channels >= 0 and "
                       f"cmap_dim >= 0, got {self.mbstd_group}, {self.mbstd_channels} and "
                       f"{self.cmap_dim}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None, train: bool = False
               ) -> jax.Array:
    """Scores images.

    Args:
      x: images (batch, resolution, resolution, channels) in [-1, 1].
      labels: int class indices (batch,), required when `num_classes > 0`; None otherwise.
      train: unused (no training-only behaviour); for a uniform call.

    Returns:
      Logits of shape (batch,), float32.
    """
    del train
    owner = type(self).__name__
    expected = (self.resolution, self.resolution, self.channels)
    if x.ndim != 4 or x.shape[1:] != expected:
      raise ValueError(f"{owner} needs images of shape (batch, {', '.join(map(str, expected))}),"
                       f" got {tuple(x.shape)}")
    conditional.check_labels(labels, num_classes=self.num_classes, batch_size=x.shape[0],
                             owner=owner)
    dtype = layers.compute_dtype(self.dtype)
    res = self.resolution
    while res > 4:
      x = DiscriminatorBlock(
          block_channels(res, self.channel_base, self.channel_max),
          block_channels(res // 2, self.channel_base, self.channel_max), res == self.resolution,
          self.architecture, self.conv_clamp,
          _block_dtype(res, self.resolution, self.reduced_resolutions, dtype), name=f"b{res}")(x)
      res //= 2
    if res == self.resolution:  # 4x4 (which the reference's resnet and orig cannot build)
      x = EqualConv2d(block_channels(4, self.channel_base, self.channel_max), kernel=1,
                      activation="lrelu", conv_clamp=self.conv_clamp, name="fromrgb")(x)
    cmap_dim = (self.cmap_dim or block_channels(4, self.channel_base, self.channel_max)
                ) if self.num_classes else 0
    x = DiscriminatorEpilogue(cmap_dim or 1, self.mbstd_group, self.mbstd_channels,
                              self.conv_clamp, name="b4")(x)
    if self.num_classes:
      cmap = MappingNetwork(cmap_dim, self.mapping_layers, 0.01, self.num_classes,
                            name="mapping")(None, labels)
      return jnp.sum(x * cmap, axis=-1) / math.sqrt(cmap_dim)
    return x[:, 0]
