"""Differentiable data augmentation for GAN training with limited data: DiffAugment and ADA.

The discriminator sees augmented images, real and generated alike, so that it cannot memorise a
small data set, and the generator's gradients flow back through the augmentation. Every function
here is pure, jit-able and differentiable with respect to the images; for fixed randomness every
operation is linear (affine for the colour operations) in the images.

Images are float arrays (batch, height, width, channels), NHWC, with values in [-1, 1]. The
colour operations need 1 or 3 channels, `rotate90` needs square images.

Policy grammar. A policy is a comma-separated list of names, applied left to right:

    policy := '' | name (',' name)*      name := an operation (`OPS`) or a preset (`PRESETS`)

with whitespace around names ignored: 'color,translation,cutout' (DiffAugment's policy), 'bgc'
(ADA's default pipeline), 'xflip, translation'. `parse` expands the presets into operations.

Operations, with their parameters as drawn for each example (U uniform, N normal):

  DiffAugment   color        brightness x + (u - 1/2), saturation (x - mean_c) * 2u + mean_c,
                             contrast (x - mean) * (u + 1/2) + mean, u ~ U[0, 1) each
                translation  integer shift t ~ U{-s..s} per axis, s = int(n / 8 + 1/2), zeros
                cutout       a zeroed int(n / 2 + 1/2)-square at a uniform offset
  ADA blit      xflip        horizontal flip with probability 1/2
                rotate90     k * 90 degrees, k ~ U{0, 1, 2, 3}
                xint         integer shift round(U[-1/8, 1/8] * n) per axis, reflect fill
  ADA geom      scale        isotropic, s = 2^N(0, 0.2^2)
                rotate       two rotations by U[-pi, pi], each with probability 1 - sqrt(1 - p)
                aniso        s = 2^N(0, 0.2^2) along x, 1 / s along y
                xfrac        translation N(0, 0.125^2) * n per axis
  ADA colour    brightness   b ~ N(0, 0.2^2) added
                contrast     c = 2^N(0, 0.5^2) multiplying
                lumaflip     luma negated with probability 1/2
                hue          rotation by U[-pi, pi] about the luma axis
                saturation   s = 2^N(0, 1) multiplying the chroma

(n is the image's size along that axis.) Presets: 'blit', 'geom', 'adacolor' (ADA's colour group;
'color' is DiffAugment's), 'bg' (blit, geom) and 'bgc' (blit, geom, adacolor).

Probability. Each operation fires for each example independently with probability p, a Bernoulli
draw U < p with U ~ U[0, 1): never at p = 0, always at p = 1. `rotate` is the exception, as in
ADA's reference: its two rotations fire independently with probability 1 - sqrt(1 - p), so that
the image is rotated with probability p. p may be a traced value (ADA adjusts it during
training). An example keeps its input bit for bit where its operation (or group, below) does not
fire: p = 0 or an empty policy returns the input unchanged.

Randomness. Example i of the batch uses the key fold_in(key, first_index + i), its index in the
global batch: a batch split over devices, each calling with first_index = device_index *
local_batch, draws the same numbers as the whole batch on one device. Operation j of the parsed
policy draws all its numbers as one vector of U[0, 1) from fold_in(example_key, j) (normal
variates by the inverse CDF, as jax.random.normal). The per-example functions are vmapped over
the batch, and the small sums are written out in a fixed order rather than as dots or reductions,
so that a split batch also computes the same bits (tested for slices of 2); XLA may still compile
the one large reduction, the image mean of DiffAugment's `color`, differently for other batch
shapes (we saw last-bit differences for batches of one).

Composition. Consecutive geometric operations (ADA's geom group) compose into one 3x3 matrix per
example, applied with one resampling (`affine_warp`); in that group a `rotate` directly followed by
`aniso` puts its second rotation after the anisotropic scaling, R1 A R2 as in the reference.
Consecutive ADA colour operations compose into one 4x4 matrix per example (`color_matrix`)
applied to [r, g, b, 1] (`apply_color_matrix`). Such a group keeps an example's pixels when none
of its operations fired for that example.

Resampling. `affine_warp` interpolates the reflect-padded image (numpy's 'reflect', the edge
pixel not repeated, continued periodically so any distance is covered) with separable Keys
bicubic convolution (a = -0.5) at the output pixel centres. This differs from ADA's reference,
which reflect-pads by a bounded margin, upsamples 2x with the sym6 wavelet filter, samples
bilinearly and downsamples 2x again: the bicubic kernel is cheaper but does not band-limit strong
zoom-outs. At integer offsets its weights are exactly (0, 1, 0, 0), so the identity, integer
translations and 90-degree rotations of square images copy pixels exactly. The blit operations do
not resample at all (the reference sends them through its resampling too).

Images with one channel follow the reference for greyscale: the colour matrix acts through the
mean of its rgb rows, and hue and saturation leave them unchanged.

References:
  Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN Training"
  (reference code: DiffAugment_pytorch.py in mit-han-lab/data-efficient-gans).
  Karras, Aittala, Hellsten, Laine, Lehtinen & Aila 2020, "Training Generative Adversarial
  Networks with Limited Data", appendix B (reference code: training/augment.py in
  NVlabs/stylegan2-ada-pytorch, whose AugmentPipe defaults are the constants below).
  Keys 1981, "Cubic Convolution Interpolation for Digital Image Processing".
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import errors

# DiffAugment's sizes, relative to the image size.
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
# ADA's AugmentPipe defaults: standard deviations of log2 factors, angles in units of pi, sizes
# relative to the image size.
XINT_MAX = 0.125
SCALE_STD = 0.2
ROTATE_MAX = 1.0
ANISO_STD = 0.2
XFRAC_STD = 0.125
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5
HUE_MAX = 1.0
SATURATION_STD = 1.0
# The free parameter of Keys' cubic convolution kernel.
CUBIC_A = -0.5

# ---------------------------------------------------------------------------------------------
# Matrices.

# The luma axis in homogeneous rgb coordinates, and constant 4x4 matrices built from it.
_LUMA = np.array([1.0, 1.0, 1.0, 0.0]) / np.sqrt(3.0)
_LUMA_PROJECTION = np.outer(_LUMA, _LUMA)
_RGB = np.diag([1.0, 1.0, 1.0, 0.0])
_HOMOGENEOUS = np.diag([0.0, 0.0, 0.0, 1.0])
_OFFSET = np.zeros((4, 4))
_OFFSET[:3, 3] = 1.0
# [v]_x, the cross product with the luma axis: [v]_x x = v x x.
_LUMA_CROSS = np.zeros((4, 4))
_LUMA_CROSS[:3, :3] = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]) / np.sqrt(3.0)


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
  """a @ b of small matrices, as elementwise products added in a fixed order.

  Neither a dot (whose algorithm, and so rounding, XLA picks by shape, batch size included, and
  whose default precision on accelerators is below float32) nor a reduction (`_weighted_sum`).
  """
  return _weighted_sum(a[..., :, :, None], b[..., None, :, :], axis=-2)


def _scaled(value, constant: np.ndarray) -> jax.Array:
  """value[..., None, None] * constant, for per-example parameters of any shape."""
  return jnp.asarray(value)[..., None, None] * constant


def color_matrix(b=0.0, c=1.0, i=0.0, theta=0.0, s=1.0) -> jax.Array:
  """ADA's colour transformation as one 4x4 matrix acting on [r, g, b, 1].

  With v = (1, 1, 1, 0) / sqrt(3) the luma axis and D = diag(1, 1, 1, 0), E = diag(0, 0, 0, 1),

    M = Sat(s) @ Hue(theta) @ Flip(i) @ Contrast(c) @ Brightness(b),

    Brightness(b) = I + b [0 0 0 1; 0 0 0 1; 0 0 0 1; 0 0 0 0]    (x + b)
    Contrast(c)   = c D + E                                       (c x)
    Flip(i)       = I - 2 i v v^T         (Householder reflection of the luma for i = 1)
    Hue(theta)    = cos(theta) D + sin(theta) [v]_x + (1 - cos(theta)) v v^T + E
                    (Rodrigues' rotation by theta about v)
    Sat(s)        = s D + (1 - s) v v^T + E       (the luma kept, the chroma scaled by s)

  in the reference's order (each later step multiplies from the left). The reference's
  saturation matrix has s in its homogeneous corner, which is harmless there because nothing
  follows it; here the corner stays 1, so these matrices compose in any order. Every factor is
  exactly the identity at its identity parameter (b = 0, c = 1, i = 0, theta = 0, s = 1).

  Args:
    b: brightness offset.
    c: contrast factor.
    i: luma flip, 0 or 1.
    theta: hue rotation angle in radians.
    s: saturation factor.
    All parameters are scalars or arrays of one broadcastable shape (per-example values).

  Returns:
    The matrices, of shape broadcast(parameter shapes) + (4, 4).

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B
    (AugmentPipe.forward, "Select parameters for color transformations").
  """
  factors = [_saturation_matrix(s), _hue_matrix(theta), _lumaflip_matrix(i),
             _contrast_matrix(c), _brightness_matrix(b)]
  matrix = factors[0]
  for factor in factors[1:]:
    matrix = _matmul(matrix, factor)
  return matrix


def _brightness_matrix(b) -> jax.Array:
  return np.eye(4) + _scaled(b, _OFFSET)


def _contrast_matrix(c) -> jax.Array:
  return _scaled(c, _RGB) + _HOMOGENEOUS


def _lumaflip_matrix(i) -> jax.Array:
  return np.eye(4) - _scaled(2.0 * jnp.asarray(i), _LUMA_PROJECTION)


def _hue_matrix(theta) -> jax.Array:
  cos, sin = jnp.cos(theta), jnp.sin(theta)
  return (_scaled(cos, _RGB) + _scaled(sin, _LUMA_CROSS) + _scaled(1.0 - cos, _LUMA_PROJECTION)
          + _HOMOGENEOUS)


def _saturation_matrix(s) -> jax.Array:
  return _scaled(s, _RGB) + _scaled(1.0 - jnp.asarray(s), _LUMA_PROJECTION) + _HOMOGENEOUS


def _affine(a, b, tx, c, d, ty, dtype) -> jax.Array:
  """The 3x3 matrix [a b tx; c d ty; 0 0 1] of scalars."""
  return jnp.array([[a, b, tx], [c, d, ty], [0.0, 0.0, 1.0]], dtype)


def _rotation(theta, dtype) -> jax.Array:
  cos, sin = jnp.cos(theta), jnp.sin(theta)
  return _affine(cos, -sin, 0.0, sin, cos, 0.0, dtype)


# ---------------------------------------------------------------------------------------------
# Pixel access and resampling, for one example of shape (height, width, channels).


def _reflect(index: jax.Array, size: int) -> jax.Array:
  """Maps any integer index into [0, size) by reflection about the edge pixels (numpy 'reflect')."""
  if size == 1:
    return jnp.zeros_like(index)
  period = 2 * (size - 1)
  index = jnp.mod(index, period)
  return jnp.where(index < size, index, period - index)


def _shift(image: jax.Array, dy, dx, fill: str) -> jax.Array:
  """output[y, x] = image[y - dy, x - dx]: the content moves by (dy, dx) whole pixels.

  Pixels that come from outside the image are 0 for fill 'zeros' and the reflection
  (`_reflect`) for fill 'reflect'. Only copies pixels, so the result is exact.
  """
  height, width = image.shape[:2]
  rows = jnp.arange(height) - dy
  cols = jnp.arange(width) - dx
  if fill == "reflect":
    return image[_reflect(rows, height)[:, None], _reflect(cols, width)[None, :]]
  inside = (((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :])
  copied = image[jnp.clip(rows, 0, height - 1)[:, None], jnp.clip(cols, 0, width - 1)[None, :]]
  return jnp.where(inside[..., None], copied, jnp.zeros_like(copied))


def _cubic_weights(f: jax.Array) -> jax.Array:
  """Keys' cubic convolution weights of the taps at -1, 0, 1, 2 for a fractional offset f.

  W(x) = (a + 2)|x|^3 - (a + 3)|x|^2 + 1 for |x| <= 1 and a|x|^3 - 5a|x|^2 + 8a|x| - 4a for
  1 < |x| < 2, at the distances 1 + f, f, 1 - f, 2 - f, written as polynomials in f whose every
  term has a factor f except the constant 1 of the second: at f = 0 they are exactly
  (0, 1, 0, 0).
  """
  a = CUBIC_A
  return jnp.stack([
      ((a * f - 2.0 * a) * f + a) * f,
      ((a + 2.0) * f - (a + 3.0)) * f * f + 1.0,
      ((-(a + 2.0) * f + (2.0 * a + 3.0)) * f - a) * f,
      (a - a * f) * f * f,
  ], axis=-1)


def _warp(image: jax.Array, matrix: jax.Array) -> jax.Array:
  """`affine_warp` of one image (height, width, channels) by one 3x3 matrix."""
  height, width = image.shape[:2]
  cx, cy = (width - 1) / 2, (height - 1) / 2
  x = (jnp.arange(width, dtype=matrix.dtype) - cx)[None, :]
  y = (jnp.arange(height, dtype=matrix.dtype) - cy)[:, None]
  u = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2] + cx  # input column, (height, width)
  v = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2] + cy  # input row
  u0, v0 = jnp.floor(u), jnp.floor(v)
  weights_x = _cubic_weights(u - u0).astype(image.dtype)  # (height, width, 4)
  weights_y = _cubic_weights(v - v0).astype(image.dtype)
  taps = jnp.arange(-1, 3)
  cols = _reflect(u0.astype(jnp.int32)[..., None] + taps, width)
  rows = _reflect(v0.astype(jnp.int32)[..., None] + taps, height)
  values = image[rows[..., :, None], cols[..., None, :]]  # (height, width, 4, 4, channels)
  along_x = _weighted_sum(weights_x[..., None, :, None], values, axis=-2)
  return _weighted_sum(weights_y[..., None], along_x, axis=-2)


def _weighted_sum(weights: jax.Array, values: jax.Array, axis: int) -> jax.Array:
  """sum_k weights_k values_k along a short axis, added in index order.

  Written out rather than as a reduction, whose order XLA may change with the batch size: an
  example's result must not depend on the batch it is in.
  """
  terms = jnp.moveaxis(weights * values, axis, 0)
  total = terms[0]
  for term in terms[1:]:
    total = total + term
  return total


def affine_warp(images: jax.typing.ArrayLike, matrix: jax.typing.ArrayLike) -> jax.Array:
  """Warps each image by a 3x3 affine matrix with one bicubic resampling.

  The matrix maps output pixel coordinates to input ones (ADA's G_inv): with coordinates in
  pixels from the image centre, x to the right and y down,

    (x_in, y_in, 1) = matrix @ (x_out, y_out, 1),  output(x_out, y_out) = input(x_in, y_in),

  so translate(tx, ty) as the matrix moves the content by (-tx, -ty). The input is read with
  separable Keys bicubic convolution (a = -0.5) of the image reflect-padded without bound
  (numpy's 'reflect') at the output pixel centres; ADA's reference instead samples bilinearly
  between a 2x upsampling and a 2x downsampling with the sym6 wavelet. At integer coordinates the
  weights are exactly (0, 1, 0, 0): the identity returns the input bit for bit, and integer
  translations and (for square images) 90-degree rotations with exact entries copy pixels.

  Args:
    images: (batch, height, width, channels).
    matrix: (3, 3) for the whole batch or (batch, 3, 3); the last row is taken as (0, 0, 1).

  Returns:
    The warped images, same shape and dtype. Differentiable with respect to both arguments.

  References:
    Keys 1981, "Cubic Convolution Interpolation for Digital Image Processing";
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  images = jnp.asarray(images)
  matrix = jnp.broadcast_to(jnp.asarray(matrix, _param_dtype(images.dtype)),
                            (images.shape[0], 3, 3))
  return jax.vmap(_warp)(images, matrix).astype(images.dtype)


def _recolor(image: jax.Array, matrix: jax.Array) -> jax.Array:
  """`apply_color_matrix` of one image by one 4x4 matrix."""
  if image.shape[-1] == 3:
    return _weighted_sum(matrix[:3, :3], image[..., None, :], axis=-1) + matrix[:3, 3]
  luma_row = _weighted_sum(1.0, matrix[:3], axis=0) / 3.0
  return image * _weighted_sum(1.0, luma_row[:3], axis=0) + luma_row[3]


def apply_color_matrix(images: jax.typing.ArrayLike, matrix: jax.typing.ArrayLike) -> jax.Array:
  """Applies a 4x4 colour matrix (`color_matrix`) to every pixel's [r, g, b, 1].

  Three channels: rgb' = M[:3, :3] rgb + M[:3, 3]. One channel, as ADA's reference does for
  greyscale: with m the mean of the rows M[:3], x' = (m_0 + m_1 + m_2) x + m_3, which is the
  luma (mean) of the rgb result for a grey input (r = g = b = x).

  Args:
    images: (batch, height, width, channels) with 1 or 3 channels.
    matrix: (4, 4) for the whole batch or (batch, 4, 4).

  Returns:
    The recoloured images, same shape and dtype.

  Raises:
    ValueError: images with other than 1 or 3 channels.

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  images = jnp.asarray(images)
  if images.shape[-1] not in (1, 3):
    raise ValueError(f"colour matrices need 1 or 3 channels, got images of shape {images.shape}")
  matrix = jnp.broadcast_to(jnp.asarray(matrix, _param_dtype(images.dtype)),
                            (images.shape[0], 4, 4))
  return jax.vmap(_recolor)(images, matrix).astype(images.dtype)


# ---------------------------------------------------------------------------------------------
# The operations on one example. `apply` draws each operation's numbers as one vector u of
# `Operation.draws` uniforms U[0, 1) from the operation's key fold_in(example_key, j); u[0] < p
# decides whether it fires, the rest give its parameters:
#
#   pixel ops:  (image, u, p) -> (candidate image, fired)
#   geom ops:   (u, p, height, width) -> (3x3 G_inv factors, fired)
#   colour ops: (u, p) -> (4x4 factor, fired)
#
# `apply` keeps the input where `fired` is false.


def _param_dtype(dtype) -> jnp.dtype:
  """The float type of drawn parameters and matrices: at least float32."""
  return jnp.promote_types(dtype, jnp.float32)


def _fires(u: jax.Array, p) -> jax.Array:
  """A Bernoulli(p) draw from u ~ U[0, 1): u < p, never at p = 0, always at p = 1."""
  return u < jnp.asarray(p, u.dtype)


def _normal(u: jax.Array) -> jax.Array:
  """N(0, 1) from U[0, 1) by the inverse CDF, sqrt(2) erfinv(2u - 1), as jax.random.normal."""
  lowest = np.nextafter(np.array(-1.0, u.dtype), np.array(0.0, u.dtype))
  return np.sqrt(2.0).astype(u.dtype) * jax.lax.erf_inv(jnp.maximum(2.0 * u - 1.0, lowest))


def _symmetric(u: jax.Array) -> jax.Array:
  """U[-1, 1) from U[0, 1)."""
  return 2.0 * u - 1.0


def _integer(u: jax.Array, low: int, high: int) -> jax.Array:
  """U{low, ..., high} from U[0, 1)."""
  count = high - low + 1
  return low + jnp.minimum(jnp.floor(u * count).astype(jnp.int32), count - 1)


def _exp2_normal(u: jax.Array, p, std: float) -> tuple[jax.Array, jax.Array]:
  """(2^(std N(0, 1)) where the op fires (u[0] < p) else exactly 1, fired), from u[0], u[1]."""
  fired = _fires(u[0], p)
  return jnp.where(fired, jnp.exp2(_normal(u[1]) * std), 1.0), fired


def _diffaugment_color(image, u, p):
  """DiffAugment's brightness, saturation and contrast, in that order."""
  x = image.astype(u.dtype) + (u[1] - 0.5)
  channel_mean = _weighted_sum(1.0, x[..., None], axis=-2) / x.shape[-1]
  x = (x - channel_mean) * (2.0 * u[2]) + channel_mean
  mean = jnp.mean(x)
  x = (x - mean) * (u[3] + 0.5) + mean
  return x.astype(image.dtype), _fires(u[0], p)


def _diffaugment_translation(image, u, p):
  """DiffAugment's integer translation with zero fill."""
  height, width = image.shape[:2]
  limit_y = int(height * TRANSLATION_RATIO + 0.5)
  limit_x = int(width * TRANSLATION_RATIO + 0.5)
  ty, tx = _integer(u[1], -limit_y, limit_y), _integer(u[2], -limit_x, limit_x)
  # The reference reads output[y, x] = image[y + ty, x + tx].
  return _shift(image, -ty, -tx, "zeros"), _fires(u[0], p)


def _diffaugment_cutout(image, u, p):
  """DiffAugment's cutout: a zeroed square (clipped at the borders)."""
  height, width = image.shape[:2]

  def band(draw, size):
    length = int(size * CUTOUT_RATIO + 0.5)
    start = _integer(draw, 0, size - length % 2) - length // 2
    index = jnp.arange(size)
    return (index >= start) & (index < start + length)

  hole = band(u[1], height)[:, None] & band(u[2], width)[None, :]
  return jnp.where(hole[..., None], jnp.zeros_like(image), image), _fires(u[0], p)


def _xflip(image, u, p):
  """ADA's x-flip: flips with probability 1/2 when it fires."""
  return image[:, ::-1], _fires(u[0], p) & (_integer(u[1], 0, 1) == 1)


def _rotate90(image, u, p):
  """ADA's rotation by k * 90 degrees, k uniform in {0, 1, 2, 3}."""
  branches = [lambda x, turns=turns: jnp.rot90(x, turns, axes=(0, 1)) for turns in range(4)]
  return jax.lax.switch(_integer(u[1], 0, 3), branches, image), _fires(u[0], p)


def _xint(image, u, p):
  """ADA's integer translation with reflect fill."""
  height, width = image.shape[:2]
  # G_inv = translate(-tx, -ty): the content moves by (tx, ty).
  tx = jnp.round(_symmetric(u[1]) * XINT_MAX * width).astype(jnp.int32)
  ty = jnp.round(_symmetric(u[2]) * XINT_MAX * height).astype(jnp.int32)
  return _shift(image, ty, tx, "reflect"), _fires(u[0], p)


def _scale(u, p, height, width):
  """ADA's isotropic scaling by s: G_inv = diag(1/s, 1/s, 1)."""
  s, fired = _exp2_normal(u, p, SCALE_STD)
  return (_affine(1.0 / s, 0.0, 0.0, 0.0, 1.0 / s, 0.0, u.dtype),), fired


def _rotate(u, p, height, width):
  """ADA's arbitrary rotation: (G_inv factors of the pre- and the post-rotation), fired."""
  p_rot = 1.0 - jnp.sqrt(jnp.clip(1.0 - jnp.asarray(p, u.dtype), 0.0, 1.0))
  fired = _fires(u[0::2], p_rot)
  angles = jnp.where(fired, _symmetric(u[1::2]) * (math.pi * ROTATE_MAX), 0.0)
  return (_rotation(angles[0], u.dtype), _rotation(angles[1], u.dtype)), fired[0] | fired[1]


def _aniso(u, p, height, width):
  """ADA's anisotropic scaling, s along x and 1/s along y: G_inv = diag(1/s, s, 1)."""
  s, fired = _exp2_normal(u, p, ANISO_STD)
  return (_affine(1.0 / s, 0.0, 0.0, 0.0, s, 0.0, u.dtype),), fired


def _xfrac(u, p, height, width):
  """ADA's fractional translation by t * size: G_inv = translate(-tx * width, -ty * height)."""
  fired = _fires(u[0], p)
  t = jnp.where(fired, _normal(u[1:]) * XFRAC_STD, 0.0)
  return (_affine(1.0, 0.0, -t[0] * width, 0.0, 1.0, -t[1] * height, u.dtype),), fired


def _brightness(u, p):
  fired = _fires(u[0], p)
  return _brightness_matrix(jnp.where(fired, _normal(u[1]) * BRIGHTNESS_STD, 0.0)), fired


def _contrast(u, p):
  c, fired = _exp2_normal(u, p, CONTRAST_STD)
  return _contrast_matrix(c), fired


def _lumaflip(u, p):
  fired = _fires(u[0], p)
  return _lumaflip_matrix(jnp.where(fired, _integer(u[1], 0, 1), 0).astype(u.dtype)), fired


def _hue(u, p):
  fired = _fires(u[0], p)
  return _hue_matrix(jnp.where(fired, _symmetric(u[1]) * (math.pi * HUE_MAX), 0.0)), fired


def _saturation(u, p):
  s, fired = _exp2_normal(u, p, SATURATION_STD)
  return _saturation_matrix(s), fired


@dataclasses.dataclass(frozen=True)
class Operation:
  """A registered operation: its group, per-example function and number of uniform draws.

  Attributes:
    kind: 'pixel' (applied alone), 'geom' (one affine warp per run of consecutive geom
      operations) or 'color' (one colour matrix per run of consecutive ones).
    per_example: the function on one example, called as the comment above it describes.
    draws: how many U[0, 1) numbers it takes from its key; the first decides whether it fires.
  """
  kind: str
  per_example: Callable
  draws: int


OPS: dict[str, Operation] = {
    # DiffAugment.
    "color": Operation("pixel", _diffaugment_color, 4),
    "translation": Operation("pixel", _diffaugment_translation, 3),
    "cutout": Operation("pixel", _diffaugment_cutout, 3),
    # ADA: pixel blitting.
    "xflip": Operation("pixel", _xflip, 2),
    "rotate90": Operation("pixel", _rotate90, 2),
    "xint": Operation("pixel", _xint, 3),
    # ADA: general geometric transformations.
    "scale": Operation("geom", _scale, 2),
    "rotate": Operation("geom", _rotate, 4),
    "aniso": Operation("geom", _aniso, 2),
    "xfrac": Operation("geom", _xfrac, 3),
    # ADA: colour transformations.
    "brightness": Operation("color", _brightness, 2),
    "contrast": Operation("color", _contrast, 2),
    "lumaflip": Operation("color", _lumaflip, 2),
    "hue": Operation("color", _hue, 2),
    "saturation": Operation("color", _saturation, 2),
}

_BLIT = ("xflip", "rotate90", "xint")
_GEOM = ("scale", "rotate", "aniso", "xfrac")
_ADACOLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
PRESETS: dict[str, tuple[str, ...]] = {
    "blit": _BLIT,
    "geom": _GEOM,
    "adacolor": _ADACOLOR,
    "bg": _BLIT + _GEOM,
    "bgc": _BLIT + _GEOM + _ADACOLOR,
}
# Colour operations that leave one-channel images unchanged (the reference skips them).
_CHROMA_ONLY = ("hue", "saturation")


def parse(policy: str, field: str = "augment.policy") -> tuple[str, ...]:
  """The operations of a policy string, presets expanded, in order.

  Args:
    policy: comma-separated names of operations (`OPS`) and presets (`PRESETS`), e.g.
      'color,translation,cutout' or 'bgc'; whitespace around names is ignored; '' is no
      augmentation.
    field: the config field that gave the policy, for error messages.

  Returns:
    The operation names, e.g. parse('blit, cutout') == ('xflip', 'rotate90', 'xint', 'cutout').

  Raises:
    ConfigError: a name that is neither an operation nor a preset, naming `field` and the valid
      names; a policy that is not a string.
  """
  if not isinstance(policy, str):
    raise errors.ConfigError(f"{field} must be a string of comma-separated names, "
                             f"got {policy!r}")
  if not policy.strip():
    return ()
  names = {name: (name,) for name in OPS} | PRESETS
  return tuple(operation for name in policy.split(",")
               for operation in errors.lookup(names, name.strip(), "augmentation", field))


def _stages(names: Sequence[str]) -> list[tuple[str, list[tuple[int, str]]]]:
  """Groups the policy's (index, name) pairs: consecutive geom ops, consecutive colour ops."""
  stages = []
  for index, name in enumerate(names):
    kind = OPS[name].kind
    if kind != "pixel" and stages and stages[-1][0] == kind:
      stages[-1][1].append((index, name))
    else:
      stages.append((kind, [(index, name)]))
  return stages


def _check(names: Sequence[str], images: jax.Array) -> None:
  if images.ndim != 4 or not jnp.issubdtype(images.dtype, jnp.floating):
    raise ValueError(f"augmentation needs float images (batch, height, width, channels), got "
                     f"{images.dtype} of shape {images.shape}")
  height, width, channels = images.shape[1:]
  if "rotate90" in names and height != width:
    raise errors.ConfigError(f"the augmentation 'rotate90' needs square images, got "
                             f"{height}x{width}")
  if any(OPS[name].kind == "color" for name in names) and channels not in (1, 3):
    raise errors.ConfigError(f"ADA's colour augmentations need 1 or 3 channels, got "
                             f"{channels}")


def _uniforms(example_key: jax.Array, index: int, name: str, dtype) -> jax.Array:
  """The draws u ~ U[0, 1) of operation number `index` (named `name`) of the policy."""
  return jax.random.uniform(jax.random.fold_in(example_key, index), (OPS[name].draws,), dtype)


def _geom_matrix(ops, example_key, p, height, width, dtype):
  """One example's G_inv for a geom group, and whether any of its operations fired.

  The factors multiply in policy order; a `rotate` directly followed by `aniso` contributes
  R1 A R2 (its second rotation after the anisotropic scaling, as ADA's reference composes them).
  """
  drawn = [OPS[name].per_example(_uniforms(example_key, index, name, dtype), p, height, width)
           for index, name in ops]
  names = [name for _, name in ops]
  order = []
  for position, (name, (factors, _)) in enumerate(zip(names, drawn)):
    if name == "aniso" and names[position - 1:position] == ["rotate"]:
      continue  # already placed between the rotations
    if name == "rotate" and names[position + 1:position + 2] == ["aniso"]:
      factors = (factors[0],) + drawn[position + 1][0] + (factors[1],)
    order.extend(factors)
  matrix = order[0]
  for factor in order[1:]:
    matrix = _matmul(matrix, factor)
  return matrix, jnp.any(jnp.stack([fired for _, fired in drawn]))


def apply(policy: str | Sequence[str], images: jax.typing.ArrayLike, key: jax.Array,
          p, first_index=0) -> jax.Array:
  """Augments a batch of images with a policy.

  Example i uses the key fold_in(key, first_index + i) and operation j of the parsed policy
  fold_in(that key, j); each operation fires for each example with probability p (`rotate`:
  each of its two rotations with 1 - sqrt(1 - p)). Consecutive geometric operations make one
  `affine_warp`, consecutive ADA colour operations one colour matrix; where nothing of an
  operation or group fired, the example's pixels are returned bit for bit.

  Args:
    policy: a policy string (see `parse`) or a sequence of operation and preset names.
    images: (batch, height, width, channels) floats in [-1, 1].
    key: a PRNG key (raw uint32 as from jax.random.PRNGKey, or typed).
    p: the probability of each operation, a scalar in [0, 1]; may be traced.
    first_index: the global batch index of images[0] (device_index * local_batch when the
      global batch is split over devices); may be traced.

  Returns:
    The augmented images, same shape and dtype. Differentiable with respect to `images`.

  Raises:
    ConfigError: an unknown name, `rotate90` with non-square images, colour operations with
      other than 1 or 3 channels.

  References:
    Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training";
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data".
  """
  names = parse(policy if isinstance(policy, str) else ",".join(policy))
  images = jnp.asarray(images)
  if not names:
    return images
  _check(names, images)
  height, width, channels = images.shape[1:]
  dtype = _param_dtype(images.dtype)
  stages = _stages(names)

  def augment_example(image, example_key):
    for kind, ops in stages:
      if kind == "pixel":
        (index, name), = ops
        candidate, fired = OPS[name].per_example(
            image, _uniforms(example_key, index, name, dtype), p)
      elif kind == "geom":
        matrix, fired = _geom_matrix(ops, example_key, p, height, width, dtype)
        candidate = _warp(image, matrix).astype(image.dtype)
      else:
        ops = [(index, name) for index, name in ops
               if not (channels == 1 and name in _CHROMA_ONLY)]
        if not ops:
          continue
        matrix, fired = jnp.eye(4, dtype=dtype), jnp.asarray(False)
        for index, name in ops:
          factor, op_fired = OPS[name].per_example(_uniforms(example_key, index, name, dtype), p)
          matrix, fired = _matmul(factor.astype(dtype), matrix), fired | op_fired
        candidate = _recolor(image, matrix).astype(image.dtype)
      image = jnp.where(fired, candidate, image)
    return image

  indices = first_index + jnp.arange(images.shape[0])
  example_keys = jax.vmap(lambda index: jax.random.fold_in(key, index))(indices)
  return jax.vmap(augment_example)(images, example_keys)


# ---------------------------------------------------------------------------------------------
# Each operation on a batch: `apply` with a one-operation policy, so called as
# (images, key, p, first_index=0) with the arguments, randomness and result of `apply`.


def color(images, key, p, first_index=0) -> jax.Array:
  """DiffAugment's colour: brightness, saturation, contrast, with u ~ U[0, 1) drawn for each.

    x <- x + (u1 - 1/2)
    x <- (x - mean_c(x)) * 2 u2 + mean_c(x)        (mean over channels, per pixel)
    x <- (x - mean(x)) * (u3 + 1/2) + mean(x)      (mean over pixels and channels)

  References:
    Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"
    (rand_brightness, rand_saturation, rand_contrast).
  """
  return apply(("color",), images, key, p, first_index)


def translation(images, key, p, first_index=0) -> jax.Array:
  """DiffAugment's translation: output[y, x] = input[y + ty, x + tx], zero outside.

  ty ~ U{-s_h, ..., s_h}, tx ~ U{-s_w, ..., s_w}, s = int(size / 8 + 1/2).

  References:
    Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"
    (rand_translation, ratio 0.125).
  """
  return apply(("translation",), images, key, p, first_index)


def cutout(images, key, p, first_index=0) -> jax.Array:
  """DiffAugment's cutout: zeroes rows [o_y - l_h // 2, o_y - l_h // 2 + l_h) x the same in x.

  l = int(size / 2 + 1/2) and o ~ U{0, ..., size - l % 2}, per axis; the square is clipped at
  the borders.

  References:
    Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"
    (rand_cutout, ratio 0.5).
  """
  return apply(("cutout",), images, key, p, first_index)


def xflip(images, key, p, first_index=0) -> jax.Array:
  """ADA's x-flip: output[y, x] = input[y, width - 1 - x] with probability 1/2 when it fires.

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("xflip",), images, key, p, first_index)


def rotate90(images, key, p, first_index=0) -> jax.Array:
  """ADA's rotation by k * 90 degrees (np.rot90 k times), k ~ U{0, 1, 2, 3}; square images.

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("rotate90",), images, key, p, first_index)


def xint(images, key, p, first_index=0) -> jax.Array:
  """ADA's integer translation: output[y, x] = input[y - ty, x - tx], reflected outside.

  (tx, ty) = round(t * (width, height)), t ~ U[-0.125, 0.125]^2; exact pixel copies.

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("xint",), images, key, p, first_index)


def scale(images, key, p, first_index=0) -> jax.Array:
  """ADA's isotropic scaling about the centre by s = 2^(0.2 N(0, 1)) (lognormal).

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("scale",), images, key, p, first_index)


def rotate(images, key, p, first_index=0) -> jax.Array:
  """ADA's rotation: two rotations by theta ~ U[-pi, pi], each with probability 1 - sqrt(1 - p).

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("rotate",), images, key, p, first_index)


def aniso(images, key, p, first_index=0) -> jax.Array:
  """ADA's anisotropic scaling by s along x and 1 / s along y, s = 2^(0.2 N(0, 1)).

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("aniso",), images, key, p, first_index)


def xfrac(images, key, p, first_index=0) -> jax.Array:
  """ADA's fractional translation by t * (width, height) pixels, t ~ N(0, 0.125^2 I).

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("xfrac",), images, key, p, first_index)


def brightness(images, key, p, first_index=0) -> jax.Array:
  """ADA's brightness: x + b, b ~ N(0, 0.2^2).

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("brightness",), images, key, p, first_index)


def contrast(images, key, p, first_index=0) -> jax.Array:
  """ADA's contrast: c x, c = 2^(0.5 N(0, 1)).

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("contrast",), images, key, p, first_index)


def lumaflip(images, key, p, first_index=0) -> jax.Array:
  """ADA's luma flip: (I - 2 v v^T) x with probability 1/2 when it fires (greyscale: -x).

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("lumaflip",), images, key, p, first_index)


def hue(images, key, p, first_index=0) -> jax.Array:
  """ADA's hue rotation about the luma axis by theta ~ U[-pi, pi]; greyscale unchanged.

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("hue",), images, key, p, first_index)


def saturation(images, key, p, first_index=0) -> jax.Array:
  """ADA's saturation: the chroma x - luma scaled by s = 2^N(0, 1); greyscale unchanged.

  References:
    Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
  """
  return apply(("saturation",), images, key, p, first_index)
