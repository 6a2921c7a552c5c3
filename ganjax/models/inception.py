"""The Inception-v3 network of the Fréchet Inception Distance, with its weights read from PyTorch.

FID (Heusel et al. 2017) compares the statistics of 2048-dimensional Inception-v3 features of real
and generated images. The features are those of TensorFlow's 2015-12-05 Inception graph, which
pytorch-fid ports to PyTorch (`pytorch_fid.inception.InceptionV3(output_blocks=[3])`); this module
computes the same function in Flax, layer for layer, from pytorch-fid's weight file:

  input: NHWC images in [0, 1], resized to 299x299 by bilinear interpolation without antialiasing
    and mapped to [-1, 1], in one of two ways (`RESIZES`):
      'pytorch'  PyTorch's `F.interpolate(mode='bilinear', align_corners=False)`, then 2x - 1:
                 pytorch-fid's input, and so that of the FID numbers computed with it;
      'tf1'      the 2015 graph's own input: TensorFlow 1's `ResizeBilinear` (align_corners=False
                 and no half-pixel offset: output pixel d samples the input at d * in / out) of
                 the 8-bit values, then (x - 128) / 128: the input of the original Inception
                 Score and TTUR FID code, and of ports that reproduce it (torch-fidelity);
  stem: 3x3 convolutions of 32 (stride 2), 32 and 64 features, max pool 3x3/2, a 1x1 convolution
    of 80 and a 3x3 one of 192 features, max pool 3x3/2 (35x35x192);
  Mixed_5b..5d (InceptionA), Mixed_6a (InceptionB), Mixed_6b..6e (InceptionC), Mixed_7a
    (InceptionD), Mixed_7b, Mixed_7c (InceptionE), then the spatial mean: 2048 features.

Every convolution is torchvision's `BasicConv2d`: no bias, BatchNorm with epsilon 0.001 (inference
statistics only), ReLU. The FID graph differs from torchvision's Inception-v3 in its pooling
branches: the average pools of Mixed_5b..5d, 6b..6e and 7b leave the zero padding out of the mean
(TensorFlow's average pool), and Mixed_7c's pooling branch takes a 3x3 max pool instead.

The graph's classifier follows the features: 1008 logits from the features times `fc.weight`.
The Inception Score (Salimans et al. 2016) takes them without the bias (the original code read the
graph's `softmax/logits/MatMul`), as `extract_features_and_logits` returns them.

The weights: `WEIGHTS_URL` (`WEIGHTS_FILE`, about 92 MB). `load_variables(path)` checks the file's
SHA-256, reads it without PyTorch (`read_torch_state_dict`, both of PyTorch's file formats),
converts it to Flax variables (`convert_state_dict`) and caches those as a .npz file named by the
hash, which later calls read instead. `extract_features(variables, images)` then gives the
features.

References:
  Szegedy, Vanhoucke, Ioffe, Shlens and Wojna, "Rethinking the Inception Architecture for
  Computer Vision", CVPR 2016.
  Heusel, Ramsauer, Unterthiner, Nessler and Hochreiter, "GANs Trained by a Two Time-Scale Update
  Rule Converge to a Local Nash Equilibrium", NeurIPS 2017 (FID).
  Salimans, Goodfellow, Zaremba, Cheung, Radford and Chen, "Improved Techniques for Training
  GANs", NeurIPS 2016 (the Inception Score).
  Seitzer, "pytorch-fid: FID Score for PyTorch", https://github.com/mseitzer/pytorch-fid,
  version 0.3.0 (the weights and the PyTorch port of the FID network).
"""
import collections
import functools
import os
import pickle
import struct
import sys
import tempfile
import time
import zipfile
from typing import Any, BinaryIO, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from flax import traverse_util

from ganjax import cache as cache_lib
from ganjax import compilation
from ganjax import progress

WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_SHA256_PREFIX = "6726825d"
FEATURE_DIM = 2048
NUM_LOGITS = 1008
INPUT_SIZE = 299
# The ways of resizing to 299x299 and mapping to [-1, 1] (`preprocess`).
RESIZES = ("pytorch", "tf1")
BATCH_NORM_EPSILON = 1e-3
# Environment variables: the weight file's path, and the folder of converted-weight caches.
WEIGHTS_ENV = "GANJAX_INCEPTION_WEIGHTS"
CACHE_ENV = cache_lib.ENV
# 2: the classifier's weight (fc) kept for the Inception Score.
_CACHE_VERSION = 2

Variables = dict[str, Any]


# ------------------------------------------------------------------------------------------------
# Resizing.


def _interpolation_matrix(in_size: int, out_size: int) -> np.ndarray:
  """The (out_size, in_size) matrix of PyTorch's 1-D linear interpolation, align_corners=False.

  Output pixel d samples the input at s = (d + 0.5) * in_size / out_size - 0.5, clamped at 0,
  between pixels floor(s) and floor(s) + 1 (the last pixel at the upper edge). The arithmetic is
  that of PyTorch's CPU kernel for float32 images: the scale in float32, s as one fused
  multiply-add rounded to float32 (the float64 product of two float32 numbers is exact).
  """
  scale = np.float32(in_size) / np.float32(out_size)
  centres = np.arange(out_size, dtype=np.float32) + np.float32(0.5)
  source = (np.float64(scale) * centres.astype(np.float64) - 0.5).astype(np.float32)
  source = np.maximum(source, np.float32(0))
  lower = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
  upper = np.minimum(lower + 1, in_size - 1)
  upper_weight = np.clip(source - lower.astype(np.float32), 0, 1).astype(np.float32)
  return _blend_matrix(in_size, lower, upper, upper_weight)


def _blend_matrix(in_size: int, lower: np.ndarray, upper: np.ndarray,
                  upper_weight: np.ndarray) -> np.ndarray:
  """The (out_size, in_size) matrix whose row d blends input pixels lower[d] and upper[d] with
  weights 1 - upper_weight[d] and upper_weight[d] (one pixel of weight 1 where they coincide)."""
  matrix = np.zeros((len(lower), in_size), np.float32)
  rows = np.arange(len(lower))
  np.add.at(matrix, (rows, lower), np.float32(1) - upper_weight)
  np.add.at(matrix, (rows, upper), upper_weight)
  return matrix


def resize_bilinear(images: jax.typing.ArrayLike, height: int, width: int) -> jax.Array:
  """Resizes images as PyTorch's `F.interpolate(mode='bilinear', align_corners=False)` does.

  No antialiasing, whether up- or downsampling: each output pixel is a blend of the 2x2 input
  pixels around its source point (`jax.image.resize` differs when downsampling, where it widens
  the kernel). Computed as two matrix products, one per axis, at full float32 precision.

  Args:
    images: (batch, in_height, in_width, channels) floats.
    height: output height.
    width: output width.

  Returns:
    (batch, height, width, channels) float32 images.
  """
  return _resize(images, height, width, "pytorch")


def _tf1_interpolation_matrix(in_size: int, out_size: int) -> np.ndarray:
  """The (out_size, in_size) matrix of TensorFlow 1's `ResizeBilinear` along one axis
  (align_corners=False, half_pixel_centers=False: the kernel's legacy scaler).

  Output pixel d samples the input at s = d * scale, scale = in_size / out_size, both in float32
  as the kernel computes them, between pixels floor(s) and min(ceil(s), in_size - 1) with weights
  1 - (s - floor(s)) and s - floor(s). Unlike PyTorch's rule there is no half-pixel offset: the
  grid starts at the first input pixel's centre and, when upsampling, holds the last one over
  the last in/out of the image.
  """
  scale = np.float32(in_size) / np.float32(out_size)
  source = np.arange(out_size, dtype=np.float32) * scale
  lower_float = np.floor(source)
  lower = np.maximum(lower_float.astype(np.int64), 0)
  upper = np.minimum(np.ceil(source).astype(np.int64), in_size - 1)
  return _blend_matrix(in_size, lower, upper, (source - lower_float).astype(np.float32))


_INTERPOLATION_MATRICES = {"pytorch": _interpolation_matrix, "tf1": _tf1_interpolation_matrix}


def resize_bilinear_tf1(images: jax.typing.ArrayLike, height: int, width: int) -> jax.Array:
  """Resizes images as TensorFlow 1's `tf.image.resize_bilinear(align_corners=False)` (the
  2015 Inception graph's `ResizeBilinear`): see `_tf1_interpolation_matrix`. No antialiasing;
  two matrix products at full float32 precision. Arguments and result as `resize_bilinear`'s.
  """
  return _resize(images, height, width, "tf1")


def _resize(images: jax.typing.ArrayLike, height: int, width: int, rule: str) -> jax.Array:
  images = jnp.asarray(images, jnp.float32)
  _, in_height, in_width, _ = images.shape
  highest = jax.lax.Precision.HIGHEST
  if (in_height, in_width) != (height, width):
    matrix = _INTERPOLATION_MATRICES[rule]
    rows = jnp.asarray(matrix(in_height, height))
    columns = jnp.asarray(matrix(in_width, width))
    images = jnp.einsum("yh,nhwc->nywc", rows, images, precision=highest)
    images = jnp.einsum("xw,nywc->nyxc", columns, images, precision=highest)
  return images


def check_resize(resize: str) -> str:
  """`resize` if it is one of `RESIZES`, else a one-line ValueError."""
  if resize not in RESIZES:
    raise ValueError(f"resize {resize!r} is not one of: {', '.join(RESIZES)}")
  return resize


def preprocess(images: jax.typing.ArrayLike, resize_input: bool = True,
               normalize_input: bool = True, resize: str = "pytorch") -> jax.Array:
  """The network's input from images: 3 channels, 299x299 and [-1, 1], each step optional.

  Args:
    images: (batch, height, width, 1 or 3) floats in [0, 1]; one channel is repeated to three.
    resize_input: resize to 299x299.
    normalize_input: map [0, 1] to [-1, 1].
    resize: 'pytorch' (`resize_bilinear`, then x -> 2x - 1, pytorch-fid's input) or 'tf1'
      (`resize_bilinear_tf1`, then the graph's own (255x - 128) / 128 of the 8-bit values);
      the resize is linear with weights that sum to one, so resizing the values in [0, 1] or in
      [0, 255] differs only by rounding.

  Returns:
    (batch, 299, 299, 3) float32 inputs (the input's own size when `resize_input` is False).

  Raises:
    ValueError: the images are not of rank 4 with 1 or 3 channels, or an unknown `resize`.
  """
  check_resize(resize)
  images = jnp.asarray(images, jnp.float32)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"expected NHWC images with 1 or 3 channels, got shape {images.shape}")
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  if resize_input:
    images = _resize(images, INPUT_SIZE, INPUT_SIZE, resize)
  if normalize_input:
    images = 2 * images - 1 if resize == "pytorch" else (images * 255 - 128) / 128
  return images


# ------------------------------------------------------------------------------------------------
# The network.


def _pairs(value: int | tuple[int, int]) -> tuple[int, int]:
  return (value, value) if isinstance(value, int) else tuple(value)


class BasicConv(nn.Module):
  """Convolution without bias, BatchNorm (running statistics, epsilon 0.001), ReLU.

  Attributes:
    features: output channels.
    kernel_size: (height, width), or one int for a square kernel.
    strides: (height, width) strides, or one int.
    padding: zeros added on both sides of each axis, (height, width) or one int, as PyTorch's
      `Conv2d(padding=...)`.
    precision: `lax.Precision` of the convolution, or None for XLA's default.
  """
  features: int
  kernel_size: int | tuple[int, int]
  strides: int | tuple[int, int] = 1
  padding: int | tuple[int, int] = 0
  precision: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    padding = [(pad, pad) for pad in _pairs(self.padding)]
    x = nn.Conv(self.features, _pairs(self.kernel_size), strides=_pairs(self.strides),
                padding=padding, use_bias=False, precision=self.precision, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BATCH_NORM_EPSILON, name="bn")(x)
    return nn.relu(x)


def _average_pool(x: jax.Array) -> jax.Array:
  """3x3 average pool of stride 1 over the unpadded pixels only (TensorFlow's 'SAME' average)."""
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool(x: jax.Array, stride: int) -> jax.Array:
  """3x3 max pool; stride 1 pads by one pixel (padding never wins), stride 2 does not pad."""
  padding = ((1, 1), (1, 1)) if stride == 1 else "VALID"
  return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=padding)


class InceptionA(nn.Module):
  """35x35 block (Mixed_5b..5d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | average pool-1x1 branches.

  Attributes:
    pool_features: output channels of the pooling branch.
    precision: the convolutions' `lax.Precision`, or None.
  """
  pool_features: int
  precision: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(BasicConv, precision=self.precision)
    branch1x1 = conv(64, 1, name="branch1x1")(x)
    branch5x5 = conv(48, 1, name="branch5x5_1")(x)
    branch5x5 = conv(64, 5, padding=2, name="branch5x5_2")(branch5x5)
    branch3x3dbl = conv(64, 1, name="branch3x3dbl_1")(x)
    branch3x3dbl = conv(96, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = conv(96, 3, padding=1, name="branch3x3dbl_3")(branch3x3dbl)
    branch_pool = conv(self.pool_features, 1, name="branch_pool")(_average_pool(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
  """Grid reduction 35x35 -> 17x17 (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | max pool/2 branches.

  Attributes:
    precision: the convolutions' `lax.Precision`, or None.
  """
  precision: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(BasicConv, precision=self.precision)
    branch3x3 = conv(384, 3, strides=2, name="branch3x3")(x)
    branch3x3dbl = conv(64, 1, name="branch3x3dbl_1")(x)
    branch3x3dbl = conv(96, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = conv(96, 3, strides=2, name="branch3x3dbl_3")(branch3x3dbl)
    return jnp.concatenate([branch3x3, branch3x3dbl, _max_pool(x, 2)], axis=-1)


class InceptionC(nn.Module):
  """17x17 block (Mixed_6b..6e) with factorised 7x7 convolutions (1x7 and 7x1).

  Branches: 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | average pool-1x1, 192 channels each.

  Attributes:
    channels_7x7: channels inside the factorised 7x7 branches.
    precision: the convolutions' `lax.Precision`, or None.
  """
  channels_7x7: int
  precision: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(BasicConv, precision=self.precision)
    width = self.channels_7x7
    branch1x1 = conv(192, 1, name="branch1x1")(x)
    branch7x7 = conv(width, 1, name="branch7x7_1")(x)
    branch7x7 = conv(width, (1, 7), padding=(0, 3), name="branch7x7_2")(branch7x7)
    branch7x7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(branch7x7)
    branch7x7dbl = conv(width, 1, name="branch7x7dbl_1")(x)
    branch7x7dbl = conv(width, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(branch7x7dbl)
    branch7x7dbl = conv(width, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(branch7x7dbl)
    branch7x7dbl = conv(width, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(branch7x7dbl)
    branch7x7dbl = conv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(branch7x7dbl)
    branch_pool = conv(192, 1, name="branch_pool")(_average_pool(x))
    return jnp.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
  """Grid reduction 17x17 -> 8x8 (Mixed_7a): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max pool/2.

  Attributes:
    precision: the convolutions' `lax.Precision`, or None.
  """
  precision: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(BasicConv, precision=self.precision)
    branch3x3 = conv(192, 1, name="branch3x3_1")(x)
    branch3x3 = conv(320, 3, strides=2, name="branch3x3_2")(branch3x3)
    branch7x7x3 = conv(192, 1, name="branch7x7x3_1")(x)
    branch7x7x3 = conv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(branch7x7x3)
    branch7x7x3 = conv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(branch7x7x3)
    branch7x7x3 = conv(192, 3, strides=2, name="branch7x7x3_4")(branch7x7x3)
    return jnp.concatenate([branch3x3, branch7x7x3, _max_pool(x, 2)], axis=-1)


class InceptionE(nn.Module):
  """8x8 block (Mixed_7b, 7c) with expanded filter banks (1x3 and 3x1 side by side).

  Branches: 1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | pool-1x1.

  Attributes:
    pool: 'avg' (padding left out of the mean; Mixed_7b) or 'max' (Mixed_7c of the FID network).
    precision: the convolutions' `lax.Precision`, or None.
  """
  pool: str = "avg"
  precision: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(BasicConv, precision=self.precision)
    branch1x1 = conv(320, 1, name="branch1x1")(x)
    branch3x3 = conv(384, 1, name="branch3x3_1")(x)
    branch3x3 = jnp.concatenate([
        conv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(branch3x3),
        conv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(branch3x3)], axis=-1)
    branch3x3dbl = conv(448, 1, name="branch3x3dbl_1")(x)
    branch3x3dbl = conv(384, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = jnp.concatenate([
        conv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(branch3x3dbl),
        conv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(branch3x3dbl)], axis=-1)
    pooled = _max_pool(x, 1) if self.pool == "max" else _average_pool(x)
    branch_pool = conv(192, 1, name="branch_pool")(pooled)
    return jnp.concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool], axis=-1)


class _Classifier(nn.Module):
  """The graph's 1008-way classifier: its logits without the bias (variables 'kernel' and
  'bias', the latter read by `logits_bias` for protocols that add it)."""
  precision: Any = None

  @nn.compact
  def __call__(self, features: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (FEATURE_DIM, NUM_LOGITS))
    self.param("bias", nn.initializers.zeros, (NUM_LOGITS,))
    return jnp.dot(features, kernel, precision=self.precision)


def logits_bias(variables: Variables) -> jax.Array:
  """The classifier's bias, (1008,): StudioGAN's Inception Score adds it to the logits, the
  original code and the other protocols do not."""
  return variables["params"]["fc"]["bias"]


class FIDInceptionV3(nn.Module):
  """The FID Inception-v3 network up to its 2048 pooled features (pytorch-fid's block 3) and the
  graph's 1008 logits without the classifier's bias (those of the Inception Score).

  Variables: {'params', 'batch_stats'}, named as in PyTorch's state dict (`Mixed_5b`,
  `branch1x1`, `conv`, `bn`, `fc`); BatchNorm always uses the running statistics. Load the FID
  weights with `load_variables`; `init` gives random ones of the same tree.

  Attributes:
    resize_input: resize the images to 299x299; without it the spatial size must be at least
      75x75.
    normalize_input: map the images from [0, 1] to [-1, 1] (the range the weights expect).
    resize: how to resize and normalise, one of `RESIZES` (see `preprocess`).
    logits: also return the logits.
    precision: `lax.Precision` of the convolutions, or None for JAX's default: float32 on CPUs,
      TF32 tensor cores on recent NVIDIA GPUs, as PyTorch's default for convolutions (and so
      pytorch-fid on a GPU). On an H100, features at batch 64 differed from float32 ones by up
      to 3.5e-4 of their largest magnitude with None (8.8 ms) and 6e-7 with 'highest' (34 ms).
  """
  resize_input: bool = True
  normalize_input: bool = True
  precision: Any = None
  resize: str = "pytorch"
  logits: bool = False

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Computes the pooled features (and the logits).

    Args:
      images: (batch, height, width, 1 or 3) floats in [0, 1] (any height and width when
        `resize_input`); one channel is repeated to three.

    Returns:
      (batch, 2048) float32 features; with `logits`, also (batch, 1008) float32 logits without
      the bias.
    """
    x = preprocess(images, self.resize_input, self.normalize_input, self.resize)
    conv = functools.partial(BasicConv, precision=self.precision)
    x = conv(32, 3, strides=2, name="Conv2d_1a_3x3")(x)
    x = conv(32, 3, name="Conv2d_2a_3x3")(x)
    x = conv(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = _max_pool(x, 2)
    x = conv(80, 1, name="Conv2d_3b_1x1")(x)
    x = conv(192, 3, name="Conv2d_4a_3x3")(x)
    x = _max_pool(x, 2)
    for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
      x = InceptionA(pool_features, precision=self.precision, name=name)(x)
    x = InceptionB(precision=self.precision, name="Mixed_6a")(x)
    for name, channels_7x7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                               ("Mixed_6e", 192)):
      x = InceptionC(channels_7x7, precision=self.precision, name=name)(x)
    x = InceptionD(precision=self.precision, name="Mixed_7a")(x)
    x = InceptionE(pool="avg", precision=self.precision, name="Mixed_7b")(x)
    x = InceptionE(pool="max", precision=self.precision, name="Mixed_7c")(x)
    features = jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
    # Declared whether or not the logits are asked for, so that every variable tree holds it.
    logits = _Classifier(precision=self.precision, name="fc")(features)
    return (features, logits) if self.logits else features


# The expensive part is compiled once per batch size whatever the images' size: only the cheap
# resize is compiled per input shape. On the CPU backend both are compiled with
# `compilation.CPU_COMPILER_OPTIONS`, which take convolutions off YNNPACK: the network at batch 8
# took about 1.5 s with them against 2.2 s without (2 CPU cores).
_NETWORK = FIDInceptionV3(resize_input=False, normalize_input=False)
_NETWORK_WITH_LOGITS = FIDInceptionV3(resize_input=False, normalize_input=False, logits=True)
_prepare = compilation.jit(preprocess, static_argnames=("resize",))
_network_features = compilation.jit(_NETWORK.apply)
_network_features_and_logits = compilation.jit(_NETWORK_WITH_LOGITS.apply)


def extract_features(variables: Variables, images: jax.typing.ArrayLike,
                     resize: str = "pytorch") -> jax.Array:
  """FID features of images: pytorch-fid's `InceptionV3([3])` in evaluation mode (with
  resize='pytorch').

  A pure function of its arguments, jit-compiled in two parts: the resize to 299x299 and the
  [-1, 1] mapping (compiled for each input shape), then the network (compiled for each batch
  size, whatever the images' size). It may also be called inside `jax.jit`. Convolutions run at
  JAX's default precision (see `FIDInceptionV3.precision`); for float32 throughout on a GPU, call
  it under `jax.default_matmul_precision('highest')`.

  Args:
    variables: {'params', 'batch_stats'} of `FIDInceptionV3`, e.g. from `load_variables()`.
    images: (batch, height, width, 1 or 3) floats in [0, 1], any height and width; one channel
      is repeated to three.
    resize: one of `RESIZES` (see `preprocess`).

  Returns:
    (batch, 2048) float32 features.
  """
  return _network_features(variables, _prepare(images, resize=check_resize(resize)))


def extract_features_and_logits(variables: Variables, images: jax.typing.ArrayLike,
                                resize: str = "pytorch") -> tuple[jax.Array, jax.Array]:
  """`extract_features`'s features and the graph's logits without the bias, from one pass.

  Returns:
    ((batch, 2048) features, (batch, 1008) logits), float32: the Inception Score's softmax is
    of the logits (`ganjax.metrics.inception_score`).
  """
  return _network_features_and_logits(variables, _prepare(images, resize=check_resize(resize)))


# ------------------------------------------------------------------------------------------------
# PyTorch checkpoint files, read without PyTorch.

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "ComplexFloatStorage": np.complex64,
    "ComplexDoubleStorage": np.complex128, "UntypedStorage": np.uint8,
}
_TORCH_DTYPES = {
    "float64": np.float64, "float32": np.float32, "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16, "int64": np.int64, "int32": np.int32, "int16": np.int16,
    "int8": np.int8, "uint8": np.uint8, "bool": np.bool_, "complex64": np.complex64,
    "complex128": np.complex128,
}


class _StorageType:
  """Stands for a `torch.*Storage` class in a checkpoint: the element type of its storages."""

  def __init__(self, dtype: Any):
    self.dtype = np.dtype(dtype)


class _Storage:
  """One storage of a checkpoint: its bytes, filled in when the file has been read that far."""

  def __init__(self, dtype: np.dtype):
    self.dtype, self.data = dtype, None


class _Tensor:
  """A tensor of a checkpoint as a strided view of a storage, resolved once the bytes are read."""

  def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...],
               stride: tuple[int, ...]):
    self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

  def to_numpy(self, byteorder: str) -> np.ndarray:
    storage = self.storage
    if storage.data is None:
      raise ValueError("corrupt checkpoint: a tensor's storage has no data")
    flat = np.frombuffer(storage.data, storage.dtype)
    if byteorder != sys.byteorder:
      flat = flat.byteswap()
    if self.size and min(self.size) == 0:
      return np.zeros(self.size, storage.dtype)
    last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
    if self.offset < 0 or min(self.stride, default=0) < 0 or last >= flat.size:
      raise ValueError("corrupt checkpoint: a tensor reaches outside its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[self.offset:], self.size, [s * flat.itemsize for s in self.stride], writeable=False)
    return np.array(view)


def _rebuild_tensor(storage: _Storage, storage_offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *unused: Any) -> _Tensor:
  del unused  # requires_grad, backward hooks, metadata
  return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: _Tensor, *unused: Any) -> _Tensor:
  del unused  # requires_grad, backward hooks
  return data


class _CheckpointUnpickler(pickle.Unpickler):
  """Unpickles a checkpoint's object, allowing only the few globals a state dict needs."""

  def __init__(self, file: BinaryIO, load_storage: Callable[[tuple], Any]):
    super().__init__(file)
    self._load_storage = load_storage

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return _rebuild_tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
      return _rebuild_parameter
    if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
      return _StorageType(_STORAGE_DTYPES[name])
    if module == "torch" and name in _TORCH_DTYPES:
      return np.dtype(_TORCH_DTYPES[name])
    raise pickle.UnpicklingError(f"checkpoint refers to {module}.{name}, which is not allowed")

  def persistent_load(self, pid: Any) -> Any:
    if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
      raise pickle.UnpicklingError(f"unsupported persistent id in checkpoint: {pid!r}")
    return self._load_storage(pid[1:])


def _read_zip(path: str) -> tuple[Any, str]:
  """The object of a zip checkpoint (PyTorch >= 1.6) and its byte order."""
  storages: dict[str, _Storage] = {}
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
      raise ValueError(f"{path} is a zip file but not a PyTorch checkpoint (no <name>/data.pkl)")
    prefix = pickles[0][:-len("data.pkl")]
    byteorder = "little"
    if f"{prefix}byteorder" in names:
      byteorder = archive.read(f"{prefix}byteorder").decode()

    def load_storage(pid: tuple) -> _Storage:
      storage_type, key = pid[:2]
      key = key.decode() if isinstance(key, bytes) else str(key)
      if key not in storages:
        storage = _Storage(storage_type.dtype)
        storage.data = archive.read(f"{prefix}data/{key}")
        storages[key] = storage
      return storages[key]

    with archive.open(pickles[0]) as file:
      obj = _CheckpointUnpickler(file, load_storage).load()
  return obj, byteorder


def _read_legacy(path: str) -> tuple[Any, str]:
  """The object of a checkpoint in PyTorch's pre-1.6 format and its byte order.

  The format: pickles of the magic number, the protocol version and the system information, the
  pickled object (storages as persistent ids), a pickled list of storage keys, then for each key
  in that order an int64 element count and the storage's bytes.
  """
  storages: dict[str, _Storage] = {}
  views: dict[str, tuple[str, int, int]] = {}

  def load_storage(pid: tuple) -> Any:
    storage_type, key, _, _, view = pid[:5]
    key = str(key)
    if key not in storages:
      storages[key] = _Storage(storage_type.dtype)
    if view is not None:
      view_key, offset, view_numel = view
      views[str(view_key)] = (key, offset, view_numel)
      return (str(view_key),)
    return storages[key]

  with open(path, "rb") as file:
    try:
      magic = pickle.load(file)
    except Exception as error:
      raise ValueError(f"{path} is not a PyTorch checkpoint ({error})") from None
    if magic != _MAGIC_NUMBER:
      raise ValueError(f"{path} is not a PyTorch checkpoint (wrong magic number)")
    protocol = pickle.load(file)
    if protocol != _PROTOCOL_VERSION:
      raise ValueError(f"{path}: unsupported PyTorch checkpoint protocol {protocol}")
    system = pickle.load(file)
    byteorder = "little" if system.get("little_endian", True) else "big"
    obj = _CheckpointUnpickler(file, load_storage).load()
    keys = pickle.load(file)
    for key in keys:
      storage = storages[str(key)]
      (numel,) = struct.unpack("<q" if byteorder == "little" else ">q", file.read(8))
      nbytes = numel * storage.dtype.itemsize
      storage.data = file.read(nbytes)
      if len(storage.data) != nbytes:
        raise ValueError(f"{path} is truncated")
  return _resolve_views(obj, storages, views), byteorder


def _resolve_views(obj: Any, storages: dict[str, _Storage],
                   views: dict[str, tuple[str, int, int]]) -> Any:
  """Points tensors on storage views (a pre-1.0 feature) at their root storage's bytes."""
  if isinstance(obj, _Tensor) and isinstance(obj.storage, tuple):
    root_key, offset, _ = views[obj.storage[0]]
    obj.storage = storages[root_key]
    obj.offset += offset
  elif isinstance(obj, Mapping):
    for value in obj.values():
      _resolve_views(value, storages, views)
  elif isinstance(obj, (list, tuple)):
    for value in obj:
      _resolve_views(value, storages, views)
  return obj


def _flatten_tensors(obj: Any, byteorder: str, prefix: str, out: dict[str, np.ndarray]) -> None:
  if isinstance(obj, _Tensor):
    out[prefix] = obj.to_numpy(byteorder)
  elif isinstance(obj, Mapping):
    for key, value in obj.items():
      _flatten_tensors(value, byteorder, f"{prefix}.{key}" if prefix else str(key), out)
  elif isinstance(obj, (list, tuple)):
    for index, value in enumerate(obj):
      _flatten_tensors(value, byteorder, f"{prefix}.{index}" if prefix else str(index), out)


def read_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads the tensors of a PyTorch checkpoint file, without PyTorch.

  Both of `torch.save`'s formats are read: the zip archive (the default since PyTorch 1.6) and
  the older stream of pickles followed by the raw storages (`_use_new_zipfile_serialization=
  False`). The pickles are loaded with an unpickler that only admits what a state dict is made of
  (`OrderedDict`, PyTorch's tensor rebuild functions, storage classes and dtypes), so a file
  cannot run code.

  Args:
    path: the checkpoint's path.

  Returns:
    Its tensors as NumPy arrays (contiguous copies, of the tensors' dtypes: bfloat16 as
    `ml_dtypes.bfloat16`), keyed by name; tensors in nested dicts, lists or tuples are keyed by
    their dotted path ({'model': {'w': t}} gives 'model.w'). Other values are left out.

  Raises:
    ValueError: the file is not a PyTorch checkpoint or is corrupt.
    pickle.UnpicklingError: the checkpoint refers to a global that is not allowed.
  """
  path = os.fspath(path)
  obj, byteorder = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
  if byteorder not in ("little", "big"):
    raise ValueError(f"{path}: unknown byte order {byteorder!r}")
  tensors: dict[str, np.ndarray] = {}
  _flatten_tensors(obj, byteorder, "", tensors)
  return tensors


# ------------------------------------------------------------------------------------------------
# Conversion to Flax variables.

_BATCH_NORM_NAMES = {"weight": ("params", "scale"), "bias": ("params", "bias"),
                     "running_mean": ("batch_stats", "mean"),
                     "running_var": ("batch_stats", "var")}
_IGNORED_SUFFIXES = ("num_batches_tracked",)


@functools.cache
def _variable_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
  """Flat paths and shapes of `FIDInceptionV3`'s variables, computed without running it."""
  inputs = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  abstract = jax.eval_shape(FIDInceptionV3(resize_input=False).init, jax.random.key(0), inputs)
  flat = traverse_util.flatten_dict(jax.tree.map(lambda leaf: leaf.shape, abstract,
                                                 is_leaf=lambda leaf: hasattr(leaf, "shape")))
  return {path: tuple(shape) for path, shape in flat.items()}


def _torch_name(path: tuple[str, ...]) -> str:
  """PyTorch's state-dict key of a flat Flax variable path."""
  collection, *modules, leaf = path
  if modules[-1] in ("conv", "fc"):
    return ".".join([*modules, "weight" if leaf == "kernel" else leaf])
  torch_leaf = next(name for name, target in _BATCH_NORM_NAMES.items()
                    if target == (collection, leaf))
  return ".".join([*modules, torch_leaf])


def _flax_layout(value: np.ndarray) -> np.ndarray:
  """A PyTorch weight in Flax's kernel layout: (height, width, in, out) or (in, out)."""
  return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T


def _torch_shape(path: tuple[str, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
  """A variable's shape in PyTorch's layout: a kernel's (out, in, height, width) or (out, in)."""
  if path[-1] != "kernel":
    return shape
  return (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape[::-1]


def state_dict_shapes() -> dict[str, tuple[int, ...]]:
  """The state-dict keys and shapes (PyTorch's layout) that `convert_state_dict` requires.

  The weight file also holds BatchNorm's `num_batches_tracked`, which is not used.
  """
  return {_torch_name(path): _torch_shape(path, shape)
          for path, shape in _variable_shapes().items()}


def random_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """Random weights in the layout of pytorch-fid's state dict, for tests and benchmarks.

  Convolution weights are N(0, 2 / fan_in) (activations keep their scale through the ReLUs), the
  classifier's N(0, 1 / fan_in);
  BatchNorm's weight is uniform in [0.5, 1.5], its bias and running mean N(0, 0.1^2), its running
  variance uniform in [0.5, 2], so that every part of BatchNorm changes the features.

  Args:
    seed: seed of the NumPy generator.

  Returns:
    `state_dict_shapes()`'s keys to float32 arrays; `convert_state_dict` turns them into variables.
  """
  rng = np.random.default_rng(seed)
  state_dict = {}
  for key, shape in state_dict_shapes().items():
    if key.endswith("conv.weight"):
      value = rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape)
    elif key == "fc.weight":
      value = rng.normal(0, np.sqrt(1 / shape[1]), shape)
    elif key == "fc.bias":
      value = rng.normal(0, 1, shape)
    elif key.endswith("bn.weight"):
      value = rng.uniform(0.5, 1.5, shape)
    elif key.endswith("bn.running_var"):
      value = rng.uniform(0.5, 2, shape)
    else:
      value = rng.normal(0, 0.1, shape)
    state_dict[key] = value.astype(np.float32)
  return state_dict


def _listed(names: list[str], limit: int = 5) -> str:
  shown = ", ".join(names[:limit])
  return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def convert_state_dict(state_dict: Mapping[str, Any]) -> Variables:
  """Converts pytorch-fid's Inception state dict to `FIDInceptionV3` variables.

  Convolution weights go from PyTorch's (out, in, height, width) to Flax's (height, width, in,
  out), the classifier's `fc.weight` from (1008, 2048) to (2048, 1008) ('fc' kernel; `fc.bias`
  is its bias); BatchNorm's weight and bias become 'params' scale and bias, its running mean and
  variance 'batch_stats' mean and var; all as float32. Keys `*.num_batches_tracked` are ignored.

  Args:
    state_dict: names such as 'Mixed_5b.branch1x1.conv.weight' to arrays (NumPy arrays, or
      anything `np.asarray` takes).

  Returns:
    {'params': ..., 'batch_stats': ...}: nested dicts of jax arrays.

  Raises:
    ValueError: keys are missing or unexpected, or shapes differ from the network's.
  """
  expected = state_dict_shapes()
  paths = {_torch_name(path): path for path in _variable_shapes()}
  given = {key: value for key, value in state_dict.items()
           if not key.endswith(_IGNORED_SUFFIXES)}
  missing = sorted(set(expected) - set(given))
  unexpected = sorted(set(given) - set(expected))
  mismatched = sorted(f"{key} {tuple(np.shape(given[key]))} (expected {expected[key]})"
                      for key in set(expected) & set(given)
                      if tuple(np.shape(given[key])) != expected[key])
  if missing or unexpected or mismatched:
    problems = [f"{label}: {_listed(names)}" for label, names in (
        ("missing keys", missing), ("unexpected keys", unexpected),
        ("shape mismatches", mismatched)) if names]
    raise ValueError("state dict does not fit the FID Inception network; " + "; ".join(problems))
  flat = {}
  for key, path in paths.items():
    value = np.asarray(given[key], np.float32)
    flat[path] = jnp.asarray(_flax_layout(value) if path[-1] == "kernel" else value)
  return traverse_util.unflatten_dict(flat)


# ------------------------------------------------------------------------------------------------
# Loading the weights.


def _cache_path(cache_dir: str | os.PathLike | None, sha256: str) -> str:
  return os.path.join(cache_lib.directory(cache_dir),
                      f"fid_inception_v{_CACHE_VERSION}-{sha256}.npz")


def _read_cache(path: str) -> Variables | None:
  """The cached variables, or None when the cache is absent or does not fit the network."""
  try:
    with np.load(path) as cache:
      flat = {tuple(key.split("/")): cache[key] for key in cache.files}
  except (OSError, ValueError, zipfile.BadZipFile):
    return None
  shapes = _variable_shapes()
  if set(flat) != set(shapes) or any(flat[path].shape != shapes[path] for path in shapes):
    return None
  return traverse_util.unflatten_dict({path: jnp.asarray(value) for path, value in flat.items()})


def _write_cache(path: str, variables: Variables) -> None:
  """Writes the variables as .npz atomically; a folder that cannot be written is skipped."""
  flat = traverse_util.flatten_dict(variables, sep="/")
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".npz", dir=os.path.dirname(path))
    try:
      with os.fdopen(handle, "wb") as file:
        np.savez(file, **{key: np.asarray(value) for key, value in flat.items()})
      os.replace(temporary, path)
    except BaseException:
      os.remove(temporary)
      raise
  except OSError:
    pass


def load_weights(path: str | os.PathLike | None = None, *,
                   sha256_prefix: str = WEIGHTS_SHA256_PREFIX,
                   cache_dir: str | os.PathLike | None = None) -> tuple[Variables, str]:
  """Loads the FID Inception weights as `FIDInceptionV3` variables.

  The weight file is pytorch-fid's `WEIGHTS_FILE` (download it from `WEIGHTS_URL`). Its SHA-256
  is checked against `sha256_prefix`; then the variables come from the cache file
  `fid_inception_v1-<sha256>.npz` in `cache_dir` if it is there, and otherwise from the weight
  file (`read_torch_state_dict`, `convert_state_dict`), after which the cache is written (skipped
  where the folder cannot be written).

  Args:
    path: the weight file; default: the environment variable GANJAX_INCEPTION_WEIGHTS.
    sha256_prefix: the start of the file's expected SHA-256 in hex (pytorch-fid's file names end
      with its first 8 digits).
    cache_dir: folder of the converted-weight cache; default: the environment variable
      GANJAX_CACHE, else ~/.cache/ganjax.

  Returns:
    ({'params': ..., 'batch_stats': ...}, sha256): nested dicts of jax arrays, for
    `extract_features`, and the weight file's SHA-256 in hex (what names the weights).

  Raises:
    FileNotFoundError: no path was given or set, or the file does not exist.
    ValueError: the file's SHA-256 does not start with `sha256_prefix`, or its contents do not
      fit the network.
  """
  if path is None:
    path = os.environ.get(WEIGHTS_ENV)
  if path is None or not os.path.isfile(path):
    where = "no path given" if path is None else f"{os.fspath(path)} does not exist"
    raise FileNotFoundError(
        f"FID Inception weights not found ({where}): download {WEIGHTS_URL} and pass its path "
        f"to load_variables(path) or set {WEIGHTS_ENV}")
  path = os.fspath(path)
  sha256 = cache_lib.file_sha256(path)
  if not sha256.startswith(sha256_prefix.lower()):
    raise ValueError(f"{path} has SHA-256 {sha256}, expected one starting with {sha256_prefix}: "
                     f"not the FID Inception weights, or a damaged download")
  cache_path = _cache_path(cache_dir, sha256)
  variables = _read_cache(cache_path)
  if variables is None:
    started = time.perf_counter()
    progress.say(f"converting the FID Inception weights {path} (once: the result is cached in "
                 f"{cache_path})")
    variables = convert_state_dict(read_torch_state_dict(path))
    _write_cache(cache_path, variables)
    progress.say(f"converted the FID Inception weights in {time.perf_counter() - started:.1f} s")
  return variables, sha256


def load_variables(path: str | os.PathLike | None = None, *,
                   sha256_prefix: str = WEIGHTS_SHA256_PREFIX,
                   cache_dir: str | os.PathLike | None = None) -> Variables:
  """The variables of `load_weights` (same arguments and errors), without the file's hash."""
  return load_weights(path, sha256_prefix=sha256_prefix, cache_dir=cache_dir)[0]
