"""Tests of StyleGAN2 (ganjax.models.stylegan2).

Expected values come from float64 numpy written here from the formulas of the ADA code
(NVlabs/stylegan2-ada-pytorch: training/networks.py, torch_utils/ops/upfirdn2d.py and
conv2d_resample.py): scipy's convolve2d for the FIR filter, explicit loops for the transposed
convolution, per-example kernels for the modulated convolution. Networks are tiny
(channel_base 64, channel_max 16, w_dim 16) so that the file runs in well under a minute.
"""
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from ganjax import errors
from ganjax import models
from ganjax.models import stylegan2
from test_conditional_models import assert_close, make_key

TINY = dict(channel_base=64, channel_max=16)
TINY_G = dict(TINY, w_dim=16, mapping_layers=2, dtype="float32")
TINY_D = dict(TINY, mapping_layers=2, dtype="float32")
LATENT, CLASSES, BATCH = 16, 5, 4

# (generator, discriminator) parameter counts. The ADA code's printout (misc.print_module_summary,
# its Parameters column: buffers such as w_avg, the resampling filters and the constant noise
# are not counted) of an unconditional FFHQ 1024x1024 run with --cfg=auto (config F's widths at
# this resolution, a 2-layer mapping network), as a user's training log shows it (the
# discriminator's rows also in NVlabs/stylegan2-ada-pytorch issue #181):
PUBLISHED_1024_AUTO = (28_794_124, 29_012_513)
# Config F (--cfg=stylegan2, 8 mapping layers) at 256x256: no printout was found; counted layer
# by layer from the reference's training/networks.py, a count that reproduces the printout above.
CONFIG_F_256 = (30_034_338, 28_864_129)


def count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree))


def example_keys(batch, seed=0):
  return jax.random.split(jax.random.PRNGKey(seed), batch)


def latents(batch=BATCH, seed=1, dim=LATENT):
  return jax.random.normal(make_key(seed), (batch, dim))


def labels_for(batch=BATCH):
  return jnp.arange(batch, dtype=jnp.int32) % CLASSES


def numpy_variables(module, *inputs, seed=0, noise_strength=0.5):
  """Variables of the module's shapes drawn from numpy, without compiling its initialisers
  (which takes seconds per network on CPU): every stored weight and the constant N(0, 1), the
  mapping layers' (learning-rate multiplier 0.01) N(0, 100^2), as initialised; affine biases
  1 + N(0, 0.1^2) and other biases N(0, 0.1^2), so that they matter; every noise strength
  `noise_strength`; w_avg 0."""
  shapes = jax.eval_shape(lambda *a: module.init(make_key(0), *a), *inputs)
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    *scope, name = [entry.key for entry in path]
    if name in ("weight", "const"):
      values = rng.normal(size=leaf.shape) * (100.0 if re.fullmatch(r"fc\d+", scope[-1]) else 1.0)
    elif name == "bias":
      values = (scope[-1] == "affine") + 0.1 * rng.normal(size=leaf.shape)
    elif name == "noise_strength":
      values = np.full(leaf.shape, noise_strength)
    elif name == "w_avg":
      values = np.zeros(leaf.shape)
    else:
      raise ValueError(f"unexpected variable {jax.tree_util.keystr(path)}")
    return jnp.asarray(values, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def with_noise_strength(variables, value):
  """The variables with every synthesis layer's noise_strength set to `value`."""
  def set_strength(path, leaf):
    return jnp.full_like(leaf, value) if path[-1].key == "noise_strength" else leaf
  return jax.tree_util.tree_map_with_path(set_strength, variables)


# Numpy references.

def np_upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), gain=1.0):
  """Zero insertion (up - 1 zeros after each pixel), padding (x0, x1, y0, y1; negative crops),
  true convolution with f * gain ('valid'), every down-th pixel: upfirdn2d.py's recipe."""
  batch, height, width, channels = x.shape
  upsampled = np.zeros((batch, height * up, width * up, channels))
  upsampled[:, ::up, ::up] = x
  x0, x1, y0, y1 = padding
  padded = np.pad(upsampled, ((0, 0), (max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0)),
                              (0, 0)))
  padded = padded[:, max(-y0, 0):padded.shape[1] - max(-y1, 0),
                  max(-x0, 0):padded.shape[2] - max(-x1, 0)]
  out = np.stack([np.stack([scipy.signal.convolve2d(padded[n, :, :, c], f * gain, mode="valid")
                            for c in range(channels)], axis=-1) for n in range(batch)])
  return out[:, ::down, ::down]


def np_conv(x, w, stride=1, padding=None):
  """Cross-correlation of x (N, H, W, I) with w (k, k, I, O), zero padding k // 2 by default."""
  k = w.shape[0]
  padding = k // 2 if padding is None else padding
  x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  rows, cols = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
  out = np.zeros((x.shape[0], rows, cols, w.shape[-1]))
  for a in range(k):
    for b in range(k):
      window = x[:, a:a + stride * rows:stride, b:b + stride * cols:stride]
      out += np.einsum("nhwi,io->nhwo", window, w[a, b])
  return out


def np_conv_transpose(x, w, stride):
  """torch's conv_transpose2d: y[s i + a, s j + b] += x[i, j] w[a, b] (no padding)."""
  batch, height, width, _ = x.shape
  k = w.shape[0]
  y = np.zeros((batch, stride * (height - 1) + k, stride * (width - 1) + k, w.shape[-1]))
  for i in range(height):
    for j in range(width):
      y[:, stride * i:stride * i + k, stride * j:stride * j + k] += np.einsum(
          "ni,abio->nabo", x[:, i, j], w)
  return y


def np_resampled_conv(x, w, up=1, down=1):
  """conv2d_resample.py for a 3x3 kernel: up 2 is the transposed convolution then the FIR
  filter (padding 1, gain 4); down 2 the FIR filter (padding 2) then the stride-2 kernel."""
  f = stylegan2.fir_filter().astype(np.float64)
  if up == 2:
    return np_upfirdn2d(np_conv_transpose(x, w, 2), f, padding=(1, 1, 1, 1), gain=4)
  if down == 2:
    return np_conv(np_upfirdn2d(x, f, padding=(2, 2, 2, 2)), w, stride=2, padding=0)
  return np_conv(x, w)


def np_modulated_conv(x, weight, styles, demodulate, up):
  """Each example convolved with its own kernel w * s_i, demodulated per output channel."""
  out = []
  for i in range(x.shape[0]):
    kernel = weight * styles[i][None, None, :, None]
    if demodulate:
      kernel = kernel / np.sqrt(np.sum(kernel ** 2, axis=(0, 1, 2)) + 1e-8)
    out.append(np_resampled_conv(x[i:i + 1], kernel, up=up)[0])
  return np.stack(out)


# Resampling.

@pytest.mark.parametrize("up, down, padding", [(1, 1, (1, 2, 0, 1)), (2, 1, (2, 1, 2, 1)),
                                               (1, 2, (1, 1, 1, 1)), (2, 1, (-1, 3, 0, -2)),
                                               (2, 2, (1, 0, 2, 2))])
def test_upfirdn2d_is_zero_insertion_padding_filtering_and_subsampling(up, down, padding):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 5, 6, 3))
  f = rng.normal(size=(4, 3))  # asymmetric: a correlation instead of a convolution shows
  got = stylegan2.upfirdn2d(jnp.asarray(x, jnp.float32), f, up, down, padding, gain=1.5)
  want = np_upfirdn2d(x, f, up, down, padding, gain=1.5)
  assert got.shape == want.shape
  # float32 sums of 12 products against float64: measured 2e-7 of the largest.
  assert_close(got, want, rtol=1e-5)


def test_fir_filter_is_the_normalised_outer_product():
  np.testing.assert_allclose(stylegan2.fir_filter(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64)


def test_resampling_keeps_shapes_and_a_constant_image():
  f = stylegan2.fir_filter()
  x = jnp.full((1, 8, 8, 2), 3.0)
  up, down = stylegan2.upsample2d(x, f), stylegan2.downsample2d(x, f)
  assert up.shape == (1, 16, 16, 2) and down.shape == (1, 4, 4, 2)
  # Away from the zero padding a constant stays itself: the filter has DC gain 1, and the
  # upsampling's gain 4 makes up for the three inserted zeros of every four pixels.
  np.testing.assert_allclose(up[:, 2:-2, 2:-2], 3.0, rtol=1e-6)
  np.testing.assert_allclose(down[:, 1:-1, 1:-1], 3.0, rtol=1e-6)
  plain = stylegan2.upfirdn2d(x, f, up=2, padding=(2, 1, 2, 1))
  np.testing.assert_allclose(plain[:, 2:-2, 2:-2], 3.0 / 4, rtol=1e-6)
  # The reference's paddings: both equal upfirdn2d with them.
  np.testing.assert_array_equal(up, stylegan2.upfirdn2d(x, f, up=2, padding=(2, 1, 2, 1),
                                                        gain=4))
  np.testing.assert_array_equal(down, stylegan2.upfirdn2d(x, f, down=2, padding=(1, 1, 1, 1)))


@pytest.mark.parametrize("kernel, up, down", [(3, 1, 2), (1, 1, 2), (3, 2, 1), (3, 1, 1)])
def test_equal_conv2d_resamples_as_conv2d_resample(kernel, up, down):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 6, 6, 3))
  layer = stylegan2.EqualConv2d(4, kernel=kernel, up=up, down=down, activation="lrelu")
  variables = numpy_variables(layer, jnp.asarray(x, jnp.float32), seed=kernel + up + down)
  weight = np.asarray(variables["params"]["weight"], np.float64)
  bias = np.asarray(variables["params"]["bias"], np.float64)
  assert weight.shape == (kernel, kernel, 3, 4) and bias.shape == (4,)
  got = layer.apply(variables, jnp.asarray(x, jnp.float32), gain=0.5)
  effective = weight / math.sqrt(3 * kernel ** 2)
  if kernel == 1 and down == 2:
    # conv2d_resample's 1x1 path: the filter downsamples (padding 1), then the 1x1 kernel.
    f = stylegan2.fir_filter().astype(np.float64)
    pre = np_conv(np_upfirdn2d(x, f, down=2, padding=(1, 1, 1, 1)), effective)
  else:
    pre = np_resampled_conv(x, effective, up=up, down=down)
  pre = pre + bias
  want = np.where(pre > 0, pre, 0.2 * pre) * math.sqrt(2) * 0.5
  assert got.shape == (2, 6 * up // down, 6 * up // down, 4)
  # float32 against float64, sums of up to 27 x 16 products: measured 2e-7 of the largest.
  assert_close(got, want, rtol=1e-5)


# Modulated convolution.

@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv2d_is_the_per_example_convolution(fused, demodulate, up):
  rng = np.random.default_rng(2)
  x = rng.normal(size=(3, 5, 5, 4))
  weight = rng.normal(size=(3, 3, 4, 6))
  styles = rng.normal(size=(3, 4)) + 1.0
  got = stylegan2.modulated_conv2d(jnp.asarray(x, jnp.float32), jnp.asarray(weight, jnp.float32),
                                   jnp.asarray(styles, jnp.float32), demodulate=demodulate,
                                   up=up, fused=fused)
  want = np_modulated_conv(x, weight, styles, demodulate, up)
  assert got.shape == want.shape == (3, 5 * up, 5 * up, 6)
  # float32 against float64, sums of 36 products (times 16 filter taps for up=2): measured
  # 2e-7 of the largest.
  assert_close(got, want, rtol=1e-5)


def test_demodulated_output_has_unit_variance():
  # For inputs of unit variance, independent across pixels and channels, an output pixel of a
  # demodulated kernel has variance sum(w''^2) = 1 whatever the weights and styles. The
  # estimate below averages 4 examples x 16 channels x 32 x 32 interior pixels; neighbouring
  # outputs share inputs, so count about 1/9 of them as independent, ~7,300: the estimate then
  # has a standard deviation of about sqrt(2 / 7,300) = 0.017 (over 20 other seeds, measured
  # 0.010), and 0.06 is 3.6 of it. This seed gives 0.989.
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(4, 34, 34, 64)), jnp.float32)
  weight = jnp.asarray(rng.normal(size=(3, 3, 64, 16)), jnp.float32)
  styles = jnp.asarray(rng.normal(size=(4, 64)) * 3.0, jnp.float32)
  out = stylegan2.modulated_conv2d(x, weight, styles)[:, 1:-1, 1:-1]
  assert abs(float(jnp.var(out)) - 1.0) < 0.06
  plain = stylegan2.modulated_conv2d(x, weight, styles, demodulate=False)[:, 1:-1, 1:-1]
  assert float(jnp.var(plain)) > 100  # sum(w'^2) ~ 9 * 64 * 9 without demodulation


# Equalised learning rate, normalisations.

def test_equal_dense_scales_weights_and_gradients_by_the_learning_rate_multiplier():
  fan_in, features, lr = 256, 256, 0.01
  layer = stylegan2.EqualDense(features, lr_multiplier=lr, bias_init=0.5)
  x = jax.random.normal(make_key(4), (3, fan_in))
  params = jax.jit(lambda x: layer.init(make_key(0), x))(x)["params"]
  stored = np.asarray(params["weight"], np.float64)
  np.testing.assert_array_equal(params["bias"], 0.5)
  # 65,536 N(0, 1/lr^2) draws: the standard deviation's estimate is within 1% (3.6 standard
  # errors of 1/sqrt(2 * 65,536)).
  assert abs(stored.std() * lr - 1.0) < 0.01
  assert abs((stored * lr / math.sqrt(fan_in)).std() * math.sqrt(fan_in) - 1.0) < 0.01

  rng = np.random.default_rng(5)
  cotangent = rng.normal(size=(3, features))
  x64 = np.asarray(x, np.float64)

  def loss(params):
    return jnp.sum(layer.apply({"params": params}, x) * cotangent)

  grads = jax.grad(loss)(params)
  # y = x (W lr / sqrt(fan_in)) + b lr, so dL/dW = lr / sqrt(fan_in) x^T c, dL/db = lr sum(c).
  # float32 sums of 3 products against float64: measured 1e-7 of the largest.
  assert_close(grads["weight"], lr / math.sqrt(fan_in) * x64.T @ cotangent, rtol=1e-5)
  assert_close(grads["bias"], lr * cotangent.sum(axis=0), rtol=1e-5)
  outputs = layer.apply({"params": params}, x)
  # float32 sums of 256 products: measured 3e-7 of the largest.
  assert_close(outputs, x64 @ (stored * lr / math.sqrt(fan_in)) + 0.5 * lr, rtol=1e-5)


def test_lrelu_activation_has_gain_sqrt_2():
  layer = stylegan2.EqualDense(1, activation="lrelu")
  params = {"params": {"weight": jnp.ones((1, 1)), "bias": jnp.zeros(1)}}
  out = layer.apply(params, jnp.array([[2.0], [-2.0]]))
  np.testing.assert_allclose(out[:, 0], [2 * math.sqrt(2), -0.4 * math.sqrt(2)], rtol=1e-6)


def test_minibatch_stddev_groups_consecutive_examples():
  rng = np.random.default_rng(6)
  x = rng.normal(size=(8, 3, 3, 4))
  got = np.asarray(stylegan2.minibatch_stddev(jnp.asarray(x, jnp.float32), group_size=4,
                                              num_channels=2))
  assert got.shape == (8, 3, 3, 6)
  np.testing.assert_array_equal(got[..., :4], np.asarray(x, np.float32))
  for example in range(8):
    start = example // 4 * 4  # example i is in the group of the 4 from 4 * (i // 4)
    group = x[start:start + 4]
    for stat in range(2):
      part = group[..., 2 * stat:2 * stat + 2]
      want = np.sqrt(part.var(axis=0) + 1e-8).mean()
      np.testing.assert_allclose(got[example, :, :, 4 + stat], want, rtol=1e-5)
  # Groups of min(group_size, batch); a batch not divisible by the group raises.
  small = stylegan2.minibatch_stddev(jnp.asarray(x[:2], jnp.float32), group_size=4)
  np.testing.assert_allclose(small[0, 0, 0, 4], np.sqrt(x[:2].var(axis=0) + 1e-8).mean(),
                             rtol=1e-5)
  with pytest.raises(ValueError, match="divisible by the group size 4"):
    stylegan2.minibatch_stddev(jnp.zeros((6, 2, 2, 4)))


def test_normalize_2nd_moment():
  x = jnp.array([[3.0, 4.0], [0.0, 2.0]])
  np.testing.assert_allclose(stylegan2.normalize_2nd_moment(x),
                             [[3 / 12.5 ** 0.5, 4 / 12.5 ** 0.5], [0.0, 2 / 2 ** 0.5]],
                             rtol=1e-6)


# The mapping network: truncation, w_avg.

def mapping_setup(num_classes=0, **kwargs):
  module = models.get_generator("stylegan2", resolution=8, num_classes=num_classes,
                                **{**TINY_G, **kwargs})
  labels = labels_for() if num_classes else None
  z = latents()
  variables = numpy_variables(module, z, labels)
  return module, z, labels, variables


def test_truncation_moves_w_towards_w_avg():
  module, z, labels, variables = mapping_setup(num_classes=CLASSES)
  w_avg = jax.random.normal(make_key(7), (16,))
  variables = {**variables, "batch_stats": {"w_avg": w_avg}}
  ws = np.asarray(module.apply(variables, z, labels, method="mapping"), np.float64)
  assert ws.shape == (BATCH, module.num_ws, 16) == (BATCH, 4, 16)
  np.testing.assert_array_equal(ws, np.broadcast_to(ws[:, :1], ws.shape))
  assert np.abs(ws[:, 0] - np.asarray(w_avg)).min() > 1e-3
  zero = module.apply(variables, z, labels, method="mapping", truncation_psi=0.0)
  np.testing.assert_allclose(zero, np.broadcast_to(w_avg, ws.shape), rtol=1e-6)
  one = module.apply(variables, z, labels, method="mapping", truncation_psi=1.0)
  np.testing.assert_array_equal(one, ws)
  half = np.asarray(module.apply(variables, z, labels, method="mapping", truncation_psi=0.5,
                                 truncation_cutoff=2))
  w_avg = np.asarray(w_avg, np.float64)
  # float32 lerp against float64.
  np.testing.assert_allclose(half[:, :2], w_avg + 0.5 * (ws[:, :2] - w_avg), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_array_equal(half[:, 2:], ws[:, 2:])


def test_training_updates_w_avg_by_the_moving_average():
  module, z, _, variables = mapping_setup()
  old = jax.random.normal(make_key(8), (16,))
  variables = {**variables, "batch_stats": {"w_avg": old}}
  ws = np.asarray(module.apply(variables, z, method="mapping"), np.float64)
  # The reference's w_avg = lerp(mean(w), w_avg, beta), beta 0.995.
  mean = ws[:, 0].mean(axis=0)
  expected = mean + 0.995 * (np.asarray(old, np.float64) - mean)
  _, state = module.apply(variables, z, train=True, method="mapping", mutable=["batch_stats"])
  # float32 against float64: measured 1e-7.
  np.testing.assert_allclose(state["batch_stats"]["w_avg"], expected, rtol=1e-5, atol=1e-6)
  # Eval mode leaves it.
  _, state = module.apply(variables, z, method="mapping", mutable=["batch_stats"])
  np.testing.assert_array_equal(state["batch_stats"]["w_avg"], old)

  # Over a mapped axis the batch mean is averaged across it: two halves of the batch on two
  # "devices" give both the full batch's update.
  synced = module.clone(axis_name="devices")
  halves = z.reshape(2, BATCH // 2, LATENT)
  updated = jax.vmap(lambda zs: synced.apply(variables, zs, train=True, method="mapping",
                                             mutable=["batch_stats"])[1]["batch_stats"]["w_avg"],
                     axis_name="devices")(halves)
  for device in range(2):
    np.testing.assert_allclose(updated[device], expected, rtol=1e-5, atol=1e-6)


# Noise and style mixing.

# One generator for the noise and style-mixing tests, which share its compiled synthesis.
MIXING_GENERATOR = models.get_generator("stylegan2", resolution=8, style_mixing=1.0, **TINY_G)


@pytest.fixture(scope="module")
def mixing_setup():
  z = latents()
  variables = numpy_variables(MIXING_GENERATOR, z)
  synthesize = jax.jit(lambda v, ws, keys: MIXING_GENERATOR.apply(v, ws, keys=keys,
                                                                  method="synthesis"))
  return z, variables, synthesize


def test_noise_of_an_example_depends_only_on_its_key(mixing_setup):
  z, variables, synthesize = mixing_setup
  ws = MIXING_GENERATOR.apply(variables, z, method="mapping")
  keys = example_keys(BATCH)
  batch = synthesize(variables, ws, keys)
  alone = synthesize(variables, ws[2:3], keys[2:3])
  # The same example computed in a batch of 4 and alone: equal up to float rounding (one
  # grouped convolution of 4 groups against one of 1; measured 3e-7).
  assert_close(alone[0], batch[2], rtol=1e-5)
  other = synthesize(variables, ws[2:3], example_keys(1, seed=9))
  assert float(jnp.abs(other[0] - batch[2]).max()) > 1e-3
  # Without keys the noise is the constant one: the same for every call and example.
  same_ws = ws.at[1].set(ws[0])
  images = synthesize(variables, same_ws, None)
  np.testing.assert_array_equal(images[0], images[1])
  np.testing.assert_array_equal(images, synthesize(variables, same_ws, None))
  assert float(jnp.abs(images[0] - batch[0]).max()) > 1e-3
  # With noise_strength 0 (as initialised) the noise does not matter.
  quiet = with_noise_strength(variables, 0.0)
  assert_close(synthesize(quiet, ws, keys), synthesize(quiet, ws, None), rtol=1e-6)


def test_synthesis_noise_is_drawn_per_layer_and_example():
  keys = example_keys(2)
  noise = stylegan2.synthesis_noise(keys, 3, 8)
  assert noise.shape == (2, 8, 8, 1)
  for i in range(2):
    np.testing.assert_array_equal(
        noise[i, :, :, 0], jax.random.normal(jax.random.fold_in(keys[i], 3), (8, 8, 1))[..., 0])
  np.testing.assert_array_equal(stylegan2.synthesis_noise(None, 3, 8)[0],
                                jax.random.normal(jax.random.PRNGKey(3), (8, 8, 1)))


def test_style_mixing_replaces_the_ws_after_each_examples_cutoff(mixing_setup):
  z, variables, synthesize = mixing_setup
  module = MIXING_GENERATOR
  keys = example_keys(BATCH, seed=2)
  num_ws = module.num_ws  # 4 at 8x8
  ws, _ = module.apply(variables, z, train=True, keys=keys, method="mixed_ws",
                       mutable=["batch_stats"])
  plain = module.apply(variables, z, method="mapping")
  # The documented draws: fold_in(key, STYLE_MIXING_STREAM) split in three (z2, cutoff, mix).
  cutoffs = []
  for i in range(BATCH):
    latent_key, cutoff_key, _ = jax.random.split(
        jax.random.fold_in(keys[i], stylegan2.STYLE_MIXING_STREAM), 3)
    second = jax.random.normal(latent_key, (1, LATENT))
    cutoff = int(jax.random.randint(cutoff_key, (), 1, num_ws))
    cutoffs.append(cutoff)
    mixed = module.apply(variables, second, method="mapping")[0]
    np.testing.assert_array_equal(ws[i, :cutoff], plain[i, :cutoff])
    # The second latent's mapping, alone rather than in the batch: float rounding (measured
    # 3e-7).
    assert_close(ws[i, cutoff:], mixed[cutoff:], rtol=1e-5)
    assert float(jnp.abs(ws[i, cutoff:] - plain[i, cutoff:]).max()) > 1e-3
  assert all(1 <= cutoff < num_ws for cutoff in cutoffs)

  images, _ = jax.jit(lambda v, z, keys: module.apply(
      v, z, train=True, keys=keys, mutable=["batch_stats"]))(variables, z, keys)
  # Two compiled programs, the same arithmetic: float rounding (measured 2e-7).
  assert_close(images, synthesize(variables, ws, keys), rtol=1e-5)
  assert float(jnp.abs(images - synthesize(variables, plain, keys)).max()) > 1e-3
  # No mixing outside training, without keys, or with probability 0.
  for train, mixing_keys, probability in [(False, keys, 1.0), (True, None, 1.0),
                                          (True, keys, 0.0)]:
    kept, _ = module.clone(style_mixing=probability).apply(
        variables, z, train=train, keys=mixing_keys, method="mixed_ws", mutable=["batch_stats"])
    np.testing.assert_array_equal(kept, plain)


# Parameter counts.

def generator_count(resolution, w_dim=512, z_dim=512, mapping_layers=8, channel_base=32768,
                    channel_max=512, num_classes=0, image_channels=3):
  """From the ADA code's Generator: mapping (label embedding of w_dim, then mapping_layers
  dense layers); per synthesis layer an affine w_dim -> in (with bias), the k x k kernel, the
  noise strength and the bias; toRGB the same at 1x1 without noise; the 4x4 constant."""
  def ch(res):
    return min(channel_base // res, channel_max)

  def layer(c_in, c_out, k, noise=1):
    return w_dim * c_in + c_in + k * k * c_in * c_out + noise + c_out

  embed = num_classes * w_dim + w_dim if num_classes else 0
  first_in = z_dim + (w_dim if num_classes else 0)
  mapping = embed + first_in * w_dim + w_dim + (mapping_layers - 1) * (w_dim * w_dim + w_dim)
  synthesis = 16 * ch(4) + layer(ch(4), ch(4), 3) + layer(ch(4), image_channels, 1, noise=0)
  res = 8
  while res <= resolution:
    synthesis += (layer(ch(res // 2), ch(res), 3) + layer(ch(res), ch(res), 3)
                  + layer(ch(res), image_channels, 1, noise=0))
    res *= 2
  return mapping + synthesis


def discriminator_count(resolution, channel_base=32768, channel_max=512, resnet=True,
                        mbstd_channels=1, num_classes=0, cmap_dim=0, mapping_layers=8,
                        image_channels=3):
  """From the ADA code's Discriminator: fromRGB 1x1; per block conv0 tmp -> tmp, conv1
  tmp -> out (3x3, with biases) and the bias-free 1x1 skip; the epilogue's conv
  (c + mbstd -> c), fc (16 c -> c), out (c -> 1 or cmap); the label mapping."""
  def ch(res):
    return min(channel_base // res, channel_max)

  total = image_channels * ch(resolution) + ch(resolution)
  res = resolution
  while res > 4:
    tmp, out = ch(res), ch(res // 2)
    total += 9 * tmp * tmp + tmp + 9 * tmp * out + out + (tmp * out if resnet else 0)
    res //= 2
  c = ch(4)
  cmap = (cmap_dim or c) if num_classes else 0
  outputs = cmap or 1
  total += 9 * (c + mbstd_channels) * c + c + 16 * c * c + c + c * outputs + outputs
  if num_classes:
    total += num_classes * cmap + cmap + mapping_layers * (cmap * cmap + cmap)
  return total


def abstract_params(module, *inputs):
  return jax.eval_shape(lambda *a: module.init(make_key(0), *a), *inputs)["params"]


def test_parameter_counts_follow_the_architecture():
  # The tiny networks at 32x32, by hand (channels 16, 8, 4, 2 at 4, 8, 16, 32; w and z 16;
  # 2 mapping layers). G: mapping 2 x 272; b4 256 (const) + 2593 (conv1) + 323 (torgb); b8
  # 1433 + 721 + 163; b16 429 + 217 + 83; b32 143 + 73 + 43. D: fromRGB 8; b32 38 + 76 + 8
  # (conv0, conv1, skip); b16 148 + 296 + 32; b8 584 + 1168 + 128; b4 2464 + 4112 + 17.
  assert generator_count(32, w_dim=16, z_dim=16, mapping_layers=2, **TINY) == 7_021
  assert discriminator_count(32, **TINY) == 9_079
  cases = [
      (dict(resolution=32), 32, {}),
      (dict(resolution=64, num_classes=CLASSES), 64, dict(num_classes=CLASSES)),
      (dict(resolution=4), 4, {}),
  ]
  for fields, resolution, extra in cases:
    generator = models.get_generator("stylegan2", **{**TINY_G, **fields})
    labels = labels_for() if extra else None
    assert count(abstract_params(generator, latents(), labels)) == generator_count(
        resolution, w_dim=16, z_dim=LATENT, mapping_layers=2, **TINY, **extra)
  for fields, extra in [(dict(resolution=32), {}),
                        (dict(resolution=64, architecture="orig"), dict(resnet=False)),
                        (dict(resolution=32, num_classes=CLASSES, cmap_dim=6),
                         dict(num_classes=CLASSES, cmap_dim=6)),
                        (dict(resolution=32, mbstd_channels=2), dict(mbstd_channels=2))]:
    discriminator = models.get_discriminator("stylegan2", **{**TINY_D, **fields})
    resolution = fields["resolution"]
    images = jnp.zeros((BATCH, resolution, resolution, 3))
    labels = labels_for() if "num_classes" in extra else None
    assert count(abstract_params(discriminator, images, labels)) == discriminator_count(
        resolution, mapping_layers=2, **TINY, **extra)


@pytest.mark.parametrize("resolution,mapping_layers,expected", [
    (1024, 2, PUBLISHED_1024_AUTO), (256, 8, CONFIG_F_256)])
def test_config_f_parameter_counts(resolution, mapping_layers, expected):
  generator = models.get_generator("stylegan2", resolution=resolution,
                                   mapping_layers=mapping_layers)
  discriminator = models.get_discriminator("stylegan2", resolution=resolution)
  g_count = count(abstract_params(generator, jnp.zeros((BATCH, 512))))
  d_count = count(abstract_params(discriminator,
                                  jnp.zeros((BATCH, resolution, resolution, 3))))
  assert (g_count, d_count) == expected
  assert g_count == generator_count(resolution, mapping_layers=mapping_layers)
  assert d_count == discriminator_count(resolution)


# Whole networks.

@pytest.mark.parametrize("resolution, num_classes", [(32, 0), (64, CLASSES)])
def test_networks_make_finite_outputs_of_the_right_shapes(resolution, num_classes):
  generator = models.get_generator("stylegan2", resolution=resolution, num_classes=num_classes,
                                   **TINY_G)
  discriminator = models.get_discriminator("stylegan2", resolution=resolution,
                                           num_classes=num_classes, **TINY_D)
  labels = labels_for() if num_classes else None
  z, keys = latents(), example_keys(BATCH)
  g_variables = numpy_variables(generator, z, labels)
  d_variables = numpy_variables(discriminator, jnp.zeros((BATCH, resolution, resolution, 3)),
                                labels)

  @jax.jit
  def run(g_variables, d_variables, z, labels, keys):  # one program: compiling takes longest
    images, _ = generator.apply(g_variables, z, labels, train=True, keys=keys,
                                mutable=["batch_stats"])
    return images, discriminator.apply(d_variables, images, labels)

  images, logits = run(g_variables, d_variables, z, labels, keys)
  assert images.shape == (BATCH, resolution, resolution, 3) and images.dtype == jnp.float32
  assert logits.shape == (BATCH,) and logits.dtype == jnp.float32
  assert np.isfinite(np.asarray(images)).all() and np.isfinite(np.asarray(logits)).all()
  assert float(jnp.std(images)) > 1e-3


def test_initial_values_are_the_references():
  generator = models.get_generator("stylegan2", resolution=8, **TINY_G)
  discriminator = models.get_discriminator("stylegan2", resolution=8, **TINY_D)
  z = latents()

  @jax.jit
  def run(z):
    g_variables = generator.init(make_key(0), z)
    images = generator.apply(g_variables, z)
    return g_variables, discriminator.init(make_key(1), images), images

  g_variables, d_variables, images = run(z)
  assert np.isfinite(np.asarray(images)).all()
  np.testing.assert_array_equal(g_variables["batch_stats"]["w_avg"], np.zeros(16))
  stored = {}
  for tree in (g_variables["params"], d_variables["params"]):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
      *scope, name = [entry.key for entry in path]
      stored.setdefault((scope[-1] if name in ("weight", "bias") else "", name), []).append(
          np.asarray(leaf).ravel())
  stored = {key: np.concatenate(values) for key, values in stored.items()}
  np.testing.assert_array_equal(stored["", "noise_strength"], 0.0)
  np.testing.assert_array_equal(stored["affine", "bias"], 1.0)  # the ADA code's bias_init=1
  for (layer, name), values in stored.items():
    if name == "bias" and layer != "affine":
      np.testing.assert_array_equal(values, 0.0)
    if name == "weight":
      # N(0, 1) stored, N(0, 1/0.01^2) for the mapping layers: of 8 to 4,096 draws, the
      # standard deviation's estimate within 50% (more than 2 standard errors for 8 draws).
      expected = 100.0 if layer in ("fc0", "fc1") else 1.0
      assert abs(values.std() / expected - 1.0) < 0.5, layer
  assert abs(stored["", "const"].std() - 1.0) < 0.2  # 256 draws: 4 standard errors


def test_fused_and_unfused_generators_agree():
  generator = models.get_generator("stylegan2", resolution=16, **TINY_G)
  z, keys = latents(), example_keys(BATCH)

  @jax.jit
  def run(variables, z, keys):
    return (generator.apply(variables, z, keys=keys),
            generator.clone(fused_modconv=False).apply(variables, z, keys=keys))

  fused, unfused = run(numpy_variables(generator, z), z, keys)
  # The same arithmetic in another order, through 5 float32 layers: measured 4e-7.
  assert_close(unfused, fused, rtol=1e-5)


def test_conditional_discriminator_projects_on_the_label_mapping():
  discriminator = models.get_discriminator("stylegan2", resolution=8, num_classes=CLASSES,
                                           cmap_dim=6, **TINY_D)
  images = jax.random.normal(make_key(10), (BATCH, 8, 8, 3))
  labels = labels_for()

  @jax.jit
  def run(variables, images, labels):
    logits, state = discriminator.apply(variables, images, labels, capture_intermediates=True,
                                        mutable=["intermediates"])
    return logits, state["intermediates"], discriminator.apply(variables, images,
                                                               (labels + 1) % CLASSES)

  logits, steps, other = run(numpy_variables(discriminator, images, labels), images, labels)
  out = np.asarray(steps["b4"]["__call__"][0], np.float64)
  cmap = np.asarray(steps["mapping"]["__call__"][0], np.float64)
  assert out.shape == cmap.shape == (BATCH, 6)
  # float32 against float64: a sum of 6 products.
  assert_close(logits, (out * cmap).sum(axis=-1) / math.sqrt(6), rtol=1e-5)
  assert float(jnp.abs(other - logits).max()) > 1e-4


def test_orig_discriminator_has_no_skips():
  images = jax.random.normal(make_key(11), (BATCH, 16, 16, 3))
  for architecture in ("resnet", "orig"):
    discriminator = models.get_discriminator("stylegan2", resolution=16,
                                             architecture=architecture, **TINY_D)
    variables = numpy_variables(discriminator, images)
    assert ("skip" in variables["params"]["b16"]) == (architecture == "resnet")
    logits = jax.jit(discriminator.apply)(variables, images)
    assert logits.shape == (BATCH,) and np.isfinite(np.asarray(logits)).all()


def test_bfloat16_path_is_close_to_float32():
  generator = models.get_generator("stylegan2", resolution=16, **{**TINY_G, "dtype": "bfloat16"})
  discriminator = models.get_discriminator("stylegan2", resolution=16,
                                           **{**TINY_D, "dtype": "bfloat16"})
  z, keys = latents(), example_keys(BATCH)
  g_variables = numpy_variables(generator, z)
  d_variables = numpy_variables(discriminator, jnp.zeros((BATCH, 16, 16, 3)))

  @jax.jit
  def run(g_variables, d_variables, z, keys):
    low = generator.apply(g_variables, z, keys=keys)
    full = generator.clone(dtype="float32").apply(g_variables, z, keys=keys)
    return (low, full, discriminator.apply(d_variables, full),
            discriminator.clone(dtype="float32").apply(d_variables, full))

  low, full, low_logits, full_logits = run(g_variables, d_variables, z, keys)
  assert low.dtype == jnp.float32
  # bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%) in the 8x8 and 16x16
  # blocks (reduced_resolutions 4, never below 8x8); the errors of their 4 layers and 2 toRGBs
  # add up to about a percent of the image's scale: measured 1.1% (0.4% for the
  # discriminator's logits), bound 10%.
  assert_close(low, full, rtol=0.1)
  assert float(jnp.abs(low - full).max()) > 0  # the reduced path ran
  assert low_logits.dtype == jnp.float32
  assert_close(low_logits, full_logits, rtol=0.1)


# Fields, labels and the registry.

def test_registry_builds_stylegan2_and_checks_fields():
  generator = models.get_generator("stylegan2", resolution=64, conv_clamp=0, dtype="bfloat16")
  assert isinstance(generator, models.StyleGAN2Generator) and generator.num_ws == 10
  assert models.StyleGAN2Generator.takes_example_keys
  assert "takes_example_keys" not in models.module_fields(models.StyleGAN2Generator)
  assert isinstance(models.get_discriminator("stylegan2"), models.StyleGAN2Discriminator)
  with pytest.raises(errors.ConfigError, match=r"^field 'dtype' of generator 'stylegan2' must "
                                               r"be str, got 16$"):
    models.get_generator("stylegan2", dtype=16)
  with pytest.raises(errors.ConfigError, match=r"^StyleGAN2Generator dtype must be one of auto, "
                                               r"float32, bfloat16, got 'float16'$"):
    models.get_generator("stylegan2", dtype="float16")


@pytest.mark.parametrize("resolution", [48, 2, 0])
def test_resolution_must_be_a_power_of_two_from_4(resolution):
  for kind, build in [("Generator", models.get_generator),
                      ("Discriminator", models.get_discriminator)]:
    with pytest.raises(ValueError, match=rf"^StyleGAN2{kind} resolution must be a power of two "
                                         rf">= 4, got {resolution}$"):
      build("stylegan2", resolution=resolution)


def test_discriminator_conditioning_is_projection_only():
  with pytest.raises(ValueError, match=r"^StyleGAN2Discriminator conditioning must be "
                                       r"'projection' \(the only one it has\), got 'acgan'$"):
    models.get_discriminator("stylegan2", num_classes=3, conditioning="acgan")


def test_conditional_networks_need_labels():
  generator = models.get_generator("stylegan2", resolution=8, num_classes=CLASSES, **TINY_G)
  discriminator = models.get_discriminator("stylegan2", resolution=8, num_classes=CLASSES,
                                           **TINY_D)
  for module, inputs in [(generator, latents()), (discriminator, jnp.zeros((BATCH, 8, 8, 3)))]:
    with pytest.raises(ValueError, match=r"has num_classes=5 and needs labels") as error:
      jax.eval_shape(lambda x: module.init(make_key(0), x), inputs)
    assert "\n" not in str(error.value)
  unconditional = models.get_generator("stylegan2", resolution=8, **TINY_G)
  with pytest.raises(ValueError, match=r"^StyleGAN2Generator is unconditional"):
    jax.eval_shape(lambda z: unconditional.init(make_key(0), z, labels_for()), latents())
