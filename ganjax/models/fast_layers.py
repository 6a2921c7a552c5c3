"""Strided transposed convolutions computed as stride-1 convolutions (sub-pixel formulation).

A transposed convolution of stride s is a convolution of the input dilated by s (s - 1 zeros
between neighbouring pixels). On XLA's CPU backend the forward pass and the input gradient of
that dilated convolution are fast, but the kernel gradient is not: forward and backward pass of
Flax's `nn.ConvTranspose(64, (5, 5), strides=(2, 2))` from 7x7x128 at batch 64 take about
350 ms on 2 CPU cores, nearly all of it the kernel gradient, against about 55 ms as computed
here, and DCGAN's 4x4 layers of stride 2 (8x8x256 -> 16x16x128, 4x4x512 -> 8x8x256) take
about 15 times less here.

The formulation: most taps of the kernel meet the zeros of the dilated input, and which taps
meet real pixels depends only on the output position modulo s (its phase). So each of the s^n
phases of the output is an ordinary stride-1 convolution of the undilated input with a
sub-kernel made of every s-th tap of the same kernel, and the output is the phases interleaved
(depth to space). `SubPixelConvTranspose` is a drop-in `nn.ConvTranspose` that computes this
way: it declares the same parameters (names, shapes, initialisers), so a parameter tree works
with either class, and it returns the same values up to float rounding.

References:
  Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
  Convolutional Neural Network", CVPR 2016 (the sub-pixel convolution).
  Odena, Dumoulin and Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016.
"""
import itertools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

METHODS = ("auto", "fused", "phases")

# With fewer output features than this, `method='auto'` uses one fused convolution: s^n
# convolutions with so few output channels each are slower than one with s^n times as many.
# Forward and backward pass of a 5x5 kernel of stride 2 from 14x14x64 at batch 64 on 2 CPU
# cores, fused against phases: 7 ms against 18 ms for 1 output feature, 13 against 16 for 4,
# 30 against 26 for 8, 83 against 61 for 32.
_FUSED_BELOW_FEATURES = 8


def _padding_pairs(padding, kernel_size: Sequence[int], strides: Sequence[int]
                   ) -> list[tuple[int, int]]:
  """Padding of the dilated-input convolution, as `jax.lax.conv_transpose` computes it.

  'SAME' and 'VALID' name the padding of the forward convolution that this one transposes and
  are converted by jax's `_conv_transpose_padding` rule; integer pairs are used as they are
  (jax's behaviour without `use_consistent_padding`, which is how Flax calls it).
  """
  if isinstance(padding, str):
    if padding not in ("SAME", "VALID"):
      raise ValueError(f"unsupported padding {padding!r}: expected 'SAME', 'VALID' or pairs")
    pairs = []
    for k, s in zip(kernel_size, strides):
      if padding == "SAME":
        total = k + s - 2
        before = k - 1 if s > k - 1 else -(-total // 2)
      else:
        total = k + s - 2 + max(k - s, 0)
        before = k - 1
      pairs.append((before, total - before))
    return pairs
  return [tuple(int(p) for p in pair) for pair in padding]


def _tap_range(k: int, s: int, before: int, phase: int) -> tuple[int, int]:
  """Input offsets [lo, hi] read by output phase `phase`: d with 0 <= s d + before - phase < k."""
  return -((before - phase) // s), (k - 1 + phase - before) // s


def _crop_negative_padding(x: jax.Array, pads: Sequence[tuple[int, int]]):
  """Crops `x` where a pad is negative; returns it and the non-negative pads left for the conv."""
  if any(lo < 0 or hi < 0 for lo, hi in pads):
    config = [(0, 0, 0)] + [(min(lo, 0), min(hi, 0), 0) for lo, hi in pads] + [(0, 0, 0)]
    x = lax.pad(x, jnp.zeros((), x.dtype), config)
  return x, [(max(lo, 0), max(hi, 0)) for lo, hi in pads]


def _depth_to_space(phases: jax.Array, strides: Sequence[int], lengths: Sequence[int]
                    ) -> jax.Array:
  """(N, M_1..M_n, s_1..s_n, O) -> (N, s_1 M_1, ..., s_n M_n, O) cropped to `lengths`.

  Entry (m_1..m_n, r_1..r_n) goes to output position (s_1 m_1 + r_1, ..., s_n m_n + r_n).
  """
  n = len(strides)
  batch, *sizes = phases.shape[:n + 1]
  features = phases.shape[-1]
  order = [0] + [axis for i in range(n) for axis in (1 + i, 1 + n + i)] + [1 + 2 * n]
  y = phases.transpose(order).reshape(batch, *(m * s for m, s in zip(sizes, strides)), features)
  if any(m * s != length for m, s, length in zip(sizes, strides, lengths)):
    y = y[(slice(None),) + tuple(slice(0, length) for length in lengths)]
  return y


def subpixel_conv_transpose(inputs: jax.Array, kernel: jax.Array, strides: Sequence[int],
                            padding="SAME", *, transpose_kernel: bool = False,
                            method: str = "auto", precision=None, preferred_element_type=None
                            ) -> jax.Array:
  """`jax.lax.conv_transpose` in channels-last layout, computed with stride-1 convolutions.

  Derivation. `lax.conv_transpose(x, w, s, padding)` (without `transpose_kernel`) is
  `conv_general_dilated(x, w, window_strides=1, padding=(a, b), lhs_dilation=s)`: the input
  dilated by s, padded by (a, b) (from `padding` as in jax), correlated with the unflipped
  kernel. Along one spatial axis of kernel size k and input size n, with x_d[s i] = x[i]:

    y[o] = sum_t w[t] x_d[o + t - a] = sum_i x[i] w[s i + a - o],   0 <= s i + a - o < k,

  for o in [0, L), L = s (n - 1) + a + b - k + 2. Write o = s m + r (phase r in [0, s)) and
  i = m + d: then y[s m + r] = sum_d x[m + d] w[s d + a - r], a stride-1 correlation of the
  undilated x with the sub-kernel g_r[d] = w[s d + a - r] over the offsets d with
  0 <= s d + a - r < k, i.e. d in [ceil((r - a) / s), floor((k - 1 + r - a) / s)]. For
  'SAME', kernel 5 and stride 2 (a = 3): y[2m] = x[m-1] w[1] + x[m] w[3] and
  y[2m+1] = x[m-1] w[0] + x[m] w[2] + x[m+1] w[4]. Each phase is computed for
  m in [0, ceil(L / s)), the phases are interleaved, and the result is cropped to L.
  With `transpose_kernel`, jax first flips the kernel's spatial axes and swaps its feature
  axes; the same is done here.

  Args:
    inputs: (batch, *spatial, in_features).
    kernel: (*kernel_size, in_features, out_features), or (*kernel_size, out_features,
      in_features) with `transpose_kernel`.
    strides: one stride per spatial axis.
    padding: 'SAME', 'VALID' or one (before, after) pair per spatial axis, as in
      `jax.lax.conv_transpose`.
    transpose_kernel: as in `jax.lax.conv_transpose`.
    method: 'phases' (one convolution per output phase with its own sub-kernel: exactly the
      multiply-adds needed), 'fused' (one convolution over the phases' common window with
      prod(strides) times the output features, zeros in the sub-kernels' unused taps, then
      depth to space), or 'auto' ('fused' below 8 output features, else 'phases').
    precision: passed to `jax.lax.conv_general_dilated`.
    preferred_element_type: passed to `jax.lax.conv_general_dilated`.

  Returns:
    (batch, *output_spatial, out_features), equal to `lax.conv_transpose(inputs, kernel,
    strides, padding, transpose_kernel=transpose_kernel)` with channels-last dimension numbers
    up to float rounding.

  Raises:
    ValueError: unknown `method` or padding, or an empty output.
  """
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
  n = inputs.ndim - 2
  strides = tuple(int(s) for s in strides)
  if kernel.ndim != n + 2 or len(strides) != n:
    raise ValueError(f"kernel {kernel.shape} and strides {strides} do not match inputs "
                     f"{inputs.shape} of {n} spatial dimensions")
  if transpose_kernel:
    kernel = jnp.flip(kernel, axis=tuple(range(n))).swapaxes(n, n + 1)
  kernel_size = kernel.shape[:n]
  in_features, out_features = kernel.shape[n:]
  pads = _padding_pairs(padding, kernel_size, strides)
  lengths = [s * (size - 1) + lo + hi - k + 2
             for size, k, s, (lo, hi) in zip(inputs.shape[1:-1], kernel_size, strides, pads)]
  if min(lengths) <= 0:
    raise ValueError(f"empty output of spatial shape {lengths}")
  steps = [-(-length // s) for length, s in zip(lengths, strides)]
  ranges = [[_tap_range(k, s, lo, r) for r in range(s)]
            for k, s, (lo, _) in zip(kernel_size, strides, pads)]
  # Channels-last layout: (N, spatial..., C) inputs and outputs, (spatial..., I, O) kernels.
  lhs_spec = (0, n + 1) + tuple(range(1, n + 1))
  spec = lax.ConvDimensionNumbers(lhs_spec, (n + 1, n) + tuple(range(n)), lhs_spec)
  conv_kwargs = dict(dimension_numbers=spec, precision=precision,
                     preferred_element_type=preferred_element_type)
  if method == "auto":
    method = "fused" if out_features < _FUSED_BELOW_FEATURES else "phases"

  def conv(sub_kernel, offsets):
    """sum_j x[m + lo + j] g[j] for m in [0, steps) along each axis; offsets = [(lo, hi)]."""
    conv_pads = [(-lo, m + hi - size)
                 for (lo, hi), m, size in zip(offsets, steps, inputs.shape[1:-1])]
    x, conv_pads = _crop_negative_padding(inputs, conv_pads)
    return lax.conv_general_dilated(x, sub_kernel, (1,) * n, conv_pads, **conv_kwargs)

  def sub_kernel(phase, offsets):
    """g_r: the taps s*d + a - r for d in offsets, an evenly strided slice of the kernel."""
    start = [s * lo + before - r for (lo, _), s, (before, _), r in zip(offsets, strides, pads,
                                                                       phase)]
    limit = [s * hi + before - r + 1 for (_, hi), s, (before, _), r in zip(offsets, strides,
                                                                           pads, phase)]
    return lax.slice(kernel, (*start, 0, 0), (*limit, in_features, out_features),
                     (*strides, 1, 1))

  phases = list(itertools.product(*[range(s) for s in strides]))
  if method == "fused":
    # The phases' common window; each sub-kernel is zero-padded to it and the phases are
    # stacked as output features in the order (r_1, ..., r_n, out_features).
    window = [(min(lo for lo, _ in axis), max(hi for _, hi in axis)) for axis in ranges]
    sub_kernels = []
    for phase in phases:
      offsets = [axis[r] for axis, r in zip(ranges, phase)]
      if any(lo > hi for lo, hi in offsets):  # A stride above the kernel size leaves gaps.
        shape = [hi - lo + 1 for lo, hi in window]
        sub_kernels.append(jnp.zeros((*shape, in_features, out_features), kernel.dtype))
        continue
      config = [(lo - window_lo, window_hi - hi, 0)
                for (lo, hi), (window_lo, window_hi) in zip(offsets, window)]
      sub_kernels.append(lax.pad(sub_kernel(phase, offsets), jnp.zeros((), kernel.dtype),
                                 config + [(0, 0, 0), (0, 0, 0)]))
    fused = jnp.stack(sub_kernels, axis=-2).reshape(
        *sub_kernels[0].shape[:-2], in_features, len(phases) * out_features)
    y = conv(fused, window)
  else:
    dtype = preferred_element_type or jnp.result_type(inputs, kernel)
    outputs = []
    for phase in phases:
      offsets = [axis[r] for axis, r in zip(ranges, phase)]
      if any(lo > hi for lo, hi in offsets):  # A stride above the kernel size leaves gaps.
        outputs.append(jnp.zeros((inputs.shape[0], *steps, out_features), dtype))
      else:
        outputs.append(conv(sub_kernel(phase, offsets), offsets))
    y = jnp.stack(outputs, axis=-2)
  y = y.reshape(inputs.shape[0], *steps, *strides, out_features)
  return _depth_to_space(y, strides, lengths)


class SubPixelConvTranspose(nn.ConvTranspose):
  """`nn.ConvTranspose` computed by `subpixel_conv_transpose` when its stride exceeds 1.

  The parameters are those of `nn.ConvTranspose` (names, shapes, initialisers), so variables
  of one class work with the other. Configurations the sub-pixel path does not cover (all
  strides 1, kernel dilation, 'CIRCULAR' padding) are computed by `nn.ConvTranspose` itself.

  Attributes:
    method: 'auto', 'fused' or 'phases'; see `subpixel_conv_transpose`.
  """
  method: str = "auto"

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    """Applies the transposed convolution.

    Args:
      inputs: (*batch_dims, *spatial, in_features).

    Returns:
      The output of `nn.ConvTranspose` with the same fields and parameters.
    """
    if self.method not in METHODS:
      raise ValueError(f"unknown method {self.method!r}; valid methods: {', '.join(METHODS)}")
    kernel_size = ((self.kernel_size,) if isinstance(self.kernel_size, int)
                   else tuple(self.kernel_size))
    n = len(kernel_size)

    def broadcast(value):
      if value is None:
        value = 1
      return (value,) * n if isinstance(value, int) else tuple(value)

    strides, dilation = broadcast(self.strides), broadcast(self.kernel_dilation)
    if (all(s == 1 for s in strides) or any(d != 1 for d in dilation)
        or self.padding == "CIRCULAR"):
      return super().__call__(inputs)

    batch_shape = inputs.shape[:inputs.ndim - n - 1]
    if len(batch_shape) != 1:
      inputs = inputs.reshape(-1, *inputs.shape[len(batch_shape):])
    in_features = inputs.shape[-1]
    kernel_shape = kernel_size + ((self.features, in_features) if self.transpose_kernel
                                  else (in_features, self.features))
    if self.mask is not None and self.mask.shape != kernel_shape:
      raise ValueError("Mask needs to have the same shape as weights. "
                       f"Shapes are: {self.mask.shape}, {kernel_shape}")
    kernel = self.param("kernel", self.kernel_init, kernel_shape, self.param_dtype)
    if self.mask is not None:
      kernel *= self.mask
    bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    inputs, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
    padding = nn.linear.canonicalize_padding(self.padding, n)
    y = subpixel_conv_transpose(inputs, kernel, strides, padding,
                                transpose_kernel=self.transpose_kernel, method=self.method,
                                precision=self.precision,
                                preferred_element_type=self.preferred_element_type)
    if bias is not None:
      y += bias.reshape((1,) * (y.ndim - 1) + (-1,))
    if len(batch_shape) != 1:
      y = y.reshape(*batch_shape, *y.shape[1:])
    return y
