"""Tests of ganjax.models.fast_layers and the DCGAN `conv_impl` choice.

The sub-pixel transposed convolution must be the same function as Flax's `nn.ConvTranspose`
with the same parameters: outputs and gradients are compared on random inputs and random
parameters (not their initial values), and the DCGAN networks with conv_impl='fast' against
conv_impl='plain' applied to the same variables. Each case compiles one program holding both
formulations.
"""
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.extend import core as jax_core

from ganjax import models
from ganjax.models import dcgan, fast_layers

RTOL = 1e-5


def make_key(seed):
  return jax.random.key(seed, impl="rbg")


def random_like(tree, seed):
  """Random values of the tree's shapes: kernels N(0, 1/fan_in), everything else N(0, 0.5^2)."""
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = getattr(path[-1], "key", None) if path else None
    if name == "kernel":
      scale = 1.0 / np.sqrt(np.prod(leaf.shape[:-1]))
    elif name in ("scale", "var"):
      return jnp.asarray(rng.uniform(0.5, 1.5, leaf.shape), leaf.dtype)
    else:
      scale = 0.5
    return jnp.asarray(rng.normal(size=leaf.shape) * scale, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, tree)


def assert_close(got, want, rtol=RTOL):
  """Elementwise within `rtol` of the largest magnitude of `want` (sums cancel elementwise)."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(np.abs(want).max(), 1e-30))


def assert_trees_close(got, want, rtol=RTOL):
  assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
  jax.tree_util.tree_map(lambda g, w: assert_close(g, w, rtol), got, want)


# (kernel, input height, input width, in features, out features, use_bias, method): kernels 5
# and 4; odd and even inputs including DCGAN's 7 -> 14 and 14 -> 28; 'auto' picks 'fused' below
# 8 output features and 'phases' from 8.
LAYER_CASES = [
    (5, 7, 7, 16, 8, False, "auto"),
    (5, 14, 14, 8, 1, True, "auto"),
    (5, 5, 8, 3, 4, True, "phases"),
    (5, 8, 7, 6, 16, False, "fused"),
    (4, 7, 7, 8, 3, True, "auto"),
    (4, 8, 8, 4, 12, False, "auto"),
    (4, 4, 5, 5, 2, False, "phases"),
    (4, 14, 14, 3, 6, True, "fused"),
]


@pytest.mark.parametrize("kernel, height, width, features_in, features_out, use_bias, method",
                         LAYER_CASES)
def test_subpixel_layer_equals_conv_transpose_with_gradients(kernel, height, width, features_in,
                                                             features_out, use_bias, method):
  kwargs = dict(features=features_out, kernel_size=(kernel, kernel), strides=(2, 2),
                padding="SAME", use_bias=use_bias)
  plain = nn.ConvTranspose(**kwargs)
  fast = fast_layers.SubPixelConvTranspose(**kwargs, method=method)
  x = random_like(jnp.zeros((2, height, width, features_in)), seed=1)
  shapes = jax.eval_shape(lambda x: plain.init(make_key(0), x), x)
  assert jax.tree_util.tree_structure(shapes) == jax.tree_util.tree_structure(
      jax.eval_shape(lambda x: fast.init(make_key(0), x), x))
  variables = random_like(shapes, seed=2)
  weights = random_like(jax.ShapeDtypeStruct((2, 2 * height, 2 * width, features_out),
                                             jnp.float32), seed=3)

  @jax.jit
  def both(variables, x):
    def value_and_grads(layer):
      def functional(variables, x):
        y = layer.apply(variables, x)
        return jnp.sum(y * weights), y
      (_, y), grads = jax.value_and_grad(functional, argnums=(0, 1), has_aux=True)(variables, x)
      return y, grads
    return value_and_grads(plain), value_and_grads(fast)

  (y_plain, grads_plain), (y_fast, grads_fast) = both(variables, x)
  assert y_plain.shape == (2, 2 * height, 2 * width, features_out)
  assert_close(y_fast, y_plain)
  # Gradients with respect to the kernel, the bias when there is one, and the input.
  assert_trees_close(grads_fast, grads_plain)


# (spatial input shape, kernel size, strides, padding, transpose_kernel): paddings jax
# interprets three ways, strides of 3 and above the kernel size (phases with no taps), one and
# two spatial dimensions.
FUNCTION_CASES = [
    ((9,), (5,), (2,), "VALID", False),
    ((6,), (3,), (3,), "SAME", True),
    ((4,), (2,), (3,), "SAME", False),
    ((5, 6), (3, 4), (2, 3), "SAME", False),
    ((5, 4), (4, 4), (2, 2), "VALID", True),
    ((6, 5), (5, 3), (2, 2), ((1, 3), (-1, 2)), False),
    ((7, 7), (5, 5), (2, 2), ((4, 0), (0, 4)), True),
]


@pytest.mark.parametrize("spatial, kernel_size, strides, padding, transpose_kernel",
                         FUNCTION_CASES)
def test_subpixel_function_equals_lax_conv_transpose(spatial, kernel_size, strides, padding,
                                                     transpose_kernel):
  x = random_like(jnp.zeros((2, *spatial, 3)), seed=4)
  features = (4, 3) if transpose_kernel else (3, 4)
  kernel = random_like(jnp.zeros((*kernel_size, *features)), seed=5)
  dimension_numbers = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC")}[len(spatial)]
  want = lax.conv_transpose(x, kernel, strides, padding, dimension_numbers=dimension_numbers,
                            transpose_kernel=transpose_kernel)
  fused, phases = jax.jit(lambda x, kernel: [fast_layers.subpixel_conv_transpose(
      x, kernel, strides, padding, transpose_kernel=transpose_kernel, method=method)
      for method in ("fused", "phases")])(x, kernel)
  assert_close(fused, want)
  assert_close(phases, want)


def test_subpixel_layer_initialises_like_conv_transpose_and_falls_back():
  x = random_like(jnp.zeros((2, 3, 5, 5, 4)), seed=6)  # Two batch dimensions.

  @jax.jit
  def run(x):
    results = []
    for kwargs in (dict(strides=(2, 2)), dict(strides=(1, 1)),
                   dict(strides=(2, 2), kernel_dilation=(2, 1)),
                   dict(strides=(2, 2), padding="CIRCULAR"),
                   dict(strides=(3, 2), transpose_kernel=True, use_bias=False)):
      plain = nn.ConvTranspose(6, (4, 3), **kwargs)
      fast = fast_layers.SubPixelConvTranspose(6, (4, 3), **kwargs)
      variables = plain.init(make_key(7), x)
      results.append((variables, fast.init(make_key(7), x), plain.apply(variables, x),
                      fast.apply(variables, x)))
    return results

  for plain_variables, fast_variables, plain_y, fast_y in run(x):
    # The same names, shapes and initial values from the same key.
    jax.tree_util.tree_map(np.testing.assert_array_equal, fast_variables, plain_variables)
    assert plain_y.shape[:2] == (2, 3)
    assert_close(fast_y, plain_y)


def test_unknown_method_and_impl_are_rejected():
  with pytest.raises(ValueError, match=r"unknown method 'fast'; valid methods: auto, fused, "
                                       r"phases"):
    fast_layers.subpixel_conv_transpose(jnp.zeros((1, 3, 3, 1)), jnp.zeros((3, 3, 1, 1)), (2, 2),
                                        method="fast")
  with pytest.raises(ValueError, match=r"unknown conv_impl 'fastest'; valid choices: auto, "
                                       r"plain, fast"):
    models.DCGANGenerator(conv_impl="fastest")
  with pytest.raises(ValueError, match="valid choices: auto, plain, fast"):
    models.get_discriminator("dcgan", conv_impl="Plain")
  assert dcgan.resolve_conv_impl("plain") == "plain"
  assert dcgan.resolve_conv_impl("fast") == "fast"
  assert dcgan.resolve_conv_impl("auto") == ("fast" if jax.default_backend() == "cpu"
                                             else "plain")


def _dilated_convolutions(fn, *args):
  """Number of convolutions with input dilation (transposed convolutions) in fn's jaxpr."""
  jaxpr = jax.make_jaxpr(fn)(*args)
  count = 0

  def visit(jaxpr):
    nonlocal count
    for equation in jaxpr.eqns:
      if equation.primitive.name == "conv_general_dilated":
        count += any(d != 1 for d in equation.params["lhs_dilation"])
      for sub in jax_core.jaxprs_in_params(equation.params):
        visit(sub)

  visit(jaxpr.jaxpr)
  return count


def test_fast_generator_computes_without_dilated_convolutions():
  z = jnp.zeros((2, 100))
  counts = {}
  for impl in ("plain", "fast"):
    generator = models.DCGANGenerator(image_shape=(28, 28, 1), conv_impl=impl)
    variables = jax.eval_shape(lambda z: generator.init(make_key(0), z, train=False), z)

    def forward(variables, z):
      return generator.apply(variables, z, train=False)  # pylint: disable=cell-var-from-loop

    def backward(variables, z):
      return jax.grad(lambda v: forward(v, z).sum())(variables)

    counts[impl] = (_dilated_convolutions(forward, variables, z),
                    _dilated_convolutions(backward, variables, z))
  # The two stride-2 layers; the stride-1 one is an ordinary convolution either way.
  assert counts["plain"][0] == 2
  assert counts["fast"] == (0, 0)


# DCGAN presets at full width for 28x28 (the benchmark workload) and narrower for 32 and 64;
# the generator's parameter gradients are compared for 28 (the layer tests above compare the
# gradients of both kernel sizes; each model gradient would add seconds of compilation).
MODEL_CASES = [((28, 28, 1), 64, True), ((32, 32, 3), 16, False), ((64, 64, 3), 8, False)]


@pytest.mark.parametrize("image_shape, base_features, with_gradients", MODEL_CASES)
def test_fast_dcgan_equals_plain_on_the_same_variables(image_shape, base_features,
                                                       with_gradients):
  players = {}
  for impl in ("plain", "fast"):
    players[impl] = (models.DCGANGenerator(image_shape=image_shape, base_features=base_features,
                                           conv_impl=impl),
                     models.DCGANDiscriminator(image_shape=image_shape,
                                               base_features=base_features, conv_impl=impl))
  z = random_like(jnp.zeros((3, 100)), seed=8)
  images = random_like(jnp.zeros((3, *image_shape)), seed=9)
  g_shapes = {impl: jax.eval_shape(lambda z, g=g: g.init(make_key(0), z, train=False), z)
              for impl, (g, _) in players.items()}
  d_shapes = {impl: jax.eval_shape(lambda x, d=d: d.init(make_key(0), x, train=False), images)
              for impl, (_, d) in players.items()}
  # Identical trees (names, shapes, dtypes), so variables of one run in the other.
  assert g_shapes["plain"] == g_shapes["fast"]
  assert d_shapes["plain"] == d_shapes["fast"]
  # The discriminator computes the same program under either choice.
  for train in (True, False):
    d_programs = [str(jax.make_jaxpr(partial(d.apply, train=train, mutable=["batch_stats"]))(
        d_shapes[impl], images)) for impl, (_, d) in players.items()]
    assert d_programs[0] == d_programs[1]

  g_variables = random_like(g_shapes["plain"], seed=10)
  pixel_weights = random_like(jnp.zeros((3, *image_shape)), seed=12)

  @jax.jit
  def run(g_variables, z):
    results = {}
    for impl, (generator, _) in players.items():
      def g_objective(params):
        samples, updates = generator.apply({**g_variables, "params": params}, z, train=True,
                                           mutable=["batch_stats"])
        return jnp.sum(samples * pixel_weights), (samples, updates)
      if with_gradients:
        g_grads, (samples, g_updates) = jax.grad(g_objective, has_aux=True)(
            g_variables["params"])
      else:
        g_grads, (samples, g_updates) = None, g_objective(g_variables["params"])[1]
      results[impl] = (samples, g_updates, g_grads,
                       generator.apply(g_variables, z, train=False))
    return results

  results = run(g_variables, z)
  for got, want in zip(results["fast"], results["plain"]):
    assert_trees_close(got, want, rtol=2e-5)
  samples, g_updates = results["plain"][:2]
  assert samples.shape == (3, *image_shape)
  # Training-mode BatchNorm moved the statistics, and both formulations moved them alike.
  assert not np.allclose(g_updates["batch_stats"]["BatchNorm_0"]["mean"],
                         g_variables["batch_stats"]["BatchNorm_0"]["mean"])
