"""Tests of ganjax.models: shapes, parameter counts, initialisation, BatchNorm, spectral norm.

Most time here is XLA compilation, so shapes are checked with `jax.eval_shape` (tracing only)
and each test compiles as few programs as it can.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import errors
from ganjax import models
from ganjax.models import layers
from ganjax.models import packing

LATENT_DIM = 16
BATCH = 3


def make_key(seed):
  # Random-bit-generator keys compile far faster on CPU than threefry; nothing in the models
  # depends on the key's implementation.
  return jax.random.key(seed, impl="rbg")


def latents(batch=BATCH, seed=1):
  return jax.random.normal(make_key(seed), (batch, LATENT_DIM))


def init(module, inputs, seed=0):
  return jax.jit(lambda x: module.init(make_key(seed), x, train=False))(inputs)


def random_variables(module, inputs, seed=0, random_statistics=False):
  """Variables of the module's shapes filled from numpy, without compiling its initialiser.

  Kernels are N(0, 1/fan_in), biases small, BatchNorm scales and variances 1, means 0, and
  spectral-norm vectors N(0, 1) with sigma 1: what the BatchNorm and spectral-norm tests need.
  With `random_statistics`, BatchNorm scales are U(0.5, 1.5), running means N(0, 0.3^2) and
  running variances U(0.5, 2), so that BatchNorm in eval mode is not close to the identity.
  """
  shapes = jax.eval_shape(lambda x: module.init(make_key(0), x, train=False), inputs)
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = path[-1].key
    if name == "kernel":
      values = rng.normal(size=leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))
    elif random_statistics and name == "scale":
      values = rng.uniform(0.5, 1.5, size=leaf.shape)
    elif random_statistics and name == "var":
      values = rng.uniform(0.5, 2.0, size=leaf.shape)
    elif random_statistics and name == "mean":
      values = 0.3 * rng.normal(size=leaf.shape)
    elif name in ("scale", "var") or name.endswith("/sigma"):
      values = np.ones(leaf.shape)
    elif name == "mean":
      values = np.zeros(leaf.shape)
    elif name == "bias":
      values = 0.1 * rng.normal(size=leaf.shape)
    elif name.endswith("/u"):
      values = rng.normal(size=leaf.shape)
    else:
      raise ValueError(f"unexpected variable {jax.tree_util.keystr(path)}")
    return jnp.asarray(values, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def count_params(variables):
  return sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables["params"]))


def kernel_shapes(variables):
  return {layer: tuple(params["kernel"].shape) for layer, params in variables["params"].items()
          if "kernel" in params}


def abstract_output(module, inputs, train=True):
  """Shape and dtype of the module's output, by tracing init and apply without compiling."""
  variables = jax.eval_shape(lambda x: module.init(make_key(0), x, train=False), inputs)
  output, _ = jax.eval_shape(
      lambda v, x: module.apply(v, x, train=train, mutable=["batch_stats"]), variables, inputs)
  return variables, output


GENERATOR_CASES = [
    ("mlp", dict(output_dim=2), (2,)),
    ("mlp", dict(output_dim=5, hidden=(8, 8, 8), batch_norm=True, activation="tanh"), (5,)),
    ("dcgan", dict(image_shape=(28, 28, 1)), (28, 28, 1)),
    ("dcgan", dict(image_shape=(32, 32, 3)), (32, 32, 3)),
    ("dcgan", dict(image_shape=(64, 64, 3)), (64, 64, 3)),
    ("dcgan", dict(image_shape=(32, 32, 1), base_features=8), (32, 32, 1)),
    ("resnet", dict(), (32, 32, 3)),
]

DISCRIMINATOR_CASES = [
    ("mlp", dict(), (2,)),
    ("mlp", dict(hidden=(200, 200, 200), maxout_pieces=5), (2,)),
    ("mlp", dict(batch_norm=True, activation="leaky_relu"), (3, 2)),
    ("dcgan", dict(image_shape=(28, 28, 1)), (28, 28, 1)),
    ("dcgan", dict(image_shape=(32, 32, 3)), (32, 32, 3)),
    ("dcgan", dict(image_shape=(64, 64, 3)), (64, 64, 3)),
    ("dcgan", dict(image_shape=(32, 32, 3), batch_norm=False), (32, 32, 3)),
    ("resnet", dict(), (32, 32, 3)),
    ("resnet", dict(spectral_norm=False), (32, 32, 3)),
]


@pytest.mark.parametrize("name, kwargs, data_shape", GENERATOR_CASES)
def test_generator_output_shape(name, kwargs, data_shape):
  generator = models.get_generator(name, **kwargs)
  _, samples = abstract_output(generator, jnp.zeros((BATCH, LATENT_DIM)))
  assert samples.shape == (BATCH, *data_shape)
  assert samples.dtype == jnp.float32


@pytest.mark.parametrize("name, kwargs, data_shape", DISCRIMINATOR_CASES)
def test_discriminator_returns_one_logit_per_sample(name, kwargs, data_shape):
  discriminator = models.get_discriminator(name, **kwargs)
  _, logits = abstract_output(discriminator, jnp.zeros((BATCH, *data_shape)))
  assert logits.shape == (BATCH,)
  assert logits.dtype == jnp.float32


# Forward passes rebuilt by hand: float64 numpy from the variables' arrays, layer by layer as the
# papers (and the module docstrings) describe the networks.

# The activations by their textbook formulas; gelu is the tanh approximation (Hendrycks and
# Gimpel 2016, section 2), which is what flax's nn.gelu computes by default.
NP_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "gelu": lambda x: 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3))),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
}
# PyTorch's BatchNorm defaults, which layers.py documents as the networks' settings.
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5


def assert_close(got, want, rtol):
  """Elementwise within `rtol` of the largest magnitude of `want` (sums cancel elementwise)."""
  want = np.asarray(want, np.float64)
  np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0,
                             atol=rtol * np.abs(want).max())


def _same_padding(size, kernel, stride):
  """Output size ceil(size / stride) and the (before, after) padding of a 'SAME' convolution."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return out, (total // 2, total - total // 2)


def np_conv(x, kernel, stride=1):
  """'SAME' cross-correlation of NHWC `x` with an HWIO kernel, one kernel tap at a time."""
  (kernel_h, kernel_w), (n, h, w) = kernel.shape[:2], x.shape[:3]
  out_h, pad_h = _same_padding(h, kernel_h, stride)
  out_w, pad_w = _same_padding(w, kernel_w, stride)
  x = np.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
  out = np.zeros((n, out_h, out_w, kernel.shape[-1]))
  for a in range(kernel_h):
    for b in range(kernel_w):
      window = x[:, a:a + stride * (out_h - 1) + 1:stride, b:b + stride * (out_w - 1) + 1:stride]
      out += window @ kernel[a, b]
  return out


def np_conv_transpose(x, kernel, stride):
  """A 'SAME' transposed convolution: the adjoint of `np_conv` on an input `stride` times larger.

  The kernel is flipped in space (flax's ConvTranspose does not flip it, TensorFlow's
  conv2d_transpose, the gradient of conv2d, does): each input pixel adds its kernel-weighted
  copy at stride `stride` into the padded output, and the convolution's padding is cut off.
  """
  (kernel_h, kernel_w), (n, h, w) = kernel.shape[:2], x.shape[:3]
  _, pad_h = _same_padding(h * stride, kernel_h, stride)
  _, pad_w = _same_padding(w * stride, kernel_w, stride)
  flipped = kernel[::-1, ::-1]
  padded = np.zeros((n, h * stride + sum(pad_h), w * stride + sum(pad_w), kernel.shape[-1]))
  for a in range(kernel_h):
    for b in range(kernel_w):
      window = (slice(None), slice(a, a + stride * (h - 1) + 1, stride),
                slice(b, b + stride * (w - 1) + 1, stride))
      padded[window] += x @ flipped[a, b]
  return padded[:, pad_h[0]:pad_h[0] + h * stride, pad_w[0]:pad_w[0] + w * stride]


def np_upsample(x):
  """Nearest-neighbour 2x upsampling: output pixel (i, j) is input pixel (i // 2, j // 2)."""
  rows, cols = np.arange(2 * x.shape[1]) // 2, np.arange(2 * x.shape[2]) // 2
  return x[:, rows][:, :, cols]


def np_average_pool(x):
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _subtree(tree, path):
  for key in path:
    tree = tree[key]
  return tree


class HandBuilt:
  """Layers computed in float64 numpy from a module's variables, addressed by their paths.

  BatchNorm normalises with the batch's mean and biased variance when `train` (recording the
  running averages the module should store) and with the running averages otherwise. A
  spectrally normalised kernel W is divided by the estimate sigma = ||u W^T W|| / ||u W^T|| of
  one power-iteration step from the stored row vector u, W reshaped to (fan_in, features)
  (recording u W^T W / ||u W^T W|| and sigma when `train`).
  """

  def __init__(self, variables, train):
    self.params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), variables["params"])
    self.stats = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64),
                                        variables.get("batch_stats", {}))
    self.train = train
    self.updates = {}

  def _record(self, path, values):
    node = self.updates
    for key in path:
      node = node.setdefault(key, {})
    node.update(values)

  def kernel(self, path, spectral_norm=False):
    kernel = _subtree(self.params, path)["kernel"]
    if not spectral_norm:
      return kernel
    *scope, layer = path
    scope_stats = _subtree(self.stats, scope)
    [wrapper] = [name for name in scope_stats if f"{layer}/kernel/u" in scope_stats[name]]
    u = scope_stats[wrapper][f"{layer}/kernel/u"]
    matrix = kernel.reshape(-1, kernel.shape[-1])
    left = u @ matrix.T
    right = left @ matrix
    sigma = np.linalg.norm(right) / np.linalg.norm(left)
    if self.train:
      self._record((*scope, wrapper), {f"{layer}/kernel/u": right / np.linalg.norm(right),
                                       f"{layer}/kernel/sigma": sigma})
    return kernel / sigma

  def _bias(self, path):
    return _subtree(self.params, path).get("bias", 0.0)

  def dense(self, path, x, spectral_norm=False):
    return x @ self.kernel(path, spectral_norm) + self._bias(path)

  def conv(self, path, x, stride=1, spectral_norm=False):
    return np_conv(x, self.kernel(path, spectral_norm), stride) + self._bias(path)

  def conv_transpose(self, path, x, stride):
    return np_conv_transpose(x, self.kernel(path), stride) + self._bias(path)

  def batch_norm(self, path, x):
    params, stats = _subtree(self.params, path), _subtree(self.stats, path)
    if self.train:
      axes = tuple(range(x.ndim - 1))
      mean = x.mean(axis=axes)
      var = ((x - mean) ** 2).mean(axis=axes)
      self._record(path, {"mean": BN_MOMENTUM * stats["mean"] + (1 - BN_MOMENTUM) * mean,
                          "var": BN_MOMENTUM * stats["var"] + (1 - BN_MOMENTUM) * var})
    else:
      mean, var = stats["mean"], stats["var"]
    return (x - mean) / np.sqrt(var + BN_EPSILON) * params["scale"] + params["bias"]


def np_mlp_generator(net, module, z):
  activation = NP_ACTIVATIONS[module.activation]
  x = z
  for index in range(len(module.hidden)):
    x = net.dense((f"Dense_{index}",), x)
    if module.batch_norm:
      x = net.batch_norm((f"BatchNorm_{index}",), x)
    x = activation(x)
  return net.dense((f"Dense_{len(module.hidden)}",), x)


def np_mlp_discriminator(net, module, x):
  x = x.reshape(x.shape[0], -1)
  for index, width in enumerate(module.hidden):
    x = net.dense((f"Dense_{index}",), x)
    if module.batch_norm:
      x = net.batch_norm((f"BatchNorm_{index}",), x)
    if module.maxout_pieces:
      x = x.reshape(x.shape[0], width, module.maxout_pieces).max(axis=-1)
    else:
      x = NP_ACTIVATIONS[module.activation](x)
  return net.dense((f"Dense_{len(module.hidden)}",), x)[:, 0]


# Per image size: the generator's first feature-map size, the strides of its transposed
# convolutions and its activation; the discriminator's convolution count and whether it has
# BatchNorm (the module docstring's presets).
DCGAN_PRESETS = {
    28: dict(start=7, strides=(1, 2, 2), activation="leaky_relu", convs=2, batch_norm=False),
    32: dict(start=4, strides=(2, 2, 2), activation="relu", convs=3, batch_norm=True),
    64: dict(start=4, strides=(2, 2, 2, 2), activation="relu", convs=4, batch_norm=True),
}


def np_dcgan_generator(net, module, z):
  preset = DCGAN_PRESETS[module.image_shape[0]]
  activation = NP_ACTIVATIONS[preset["activation"]]
  x = activation(net.batch_norm(("BatchNorm_0",), net.dense(("Dense_0",), z)))
  x = x.reshape(z.shape[0], preset["start"], preset["start"], -1)
  for index, stride in enumerate(preset["strides"]):
    x = net.conv_transpose((f"ConvTranspose_{index}",), x, stride)
    if index < len(preset["strides"]) - 1:
      x = activation(net.batch_norm((f"BatchNorm_{index + 1}",), x))
  return np.tanh(x)


def np_dcgan_discriminator(net, module, x):
  preset = DCGAN_PRESETS[module.image_shape[0]]
  for index in range(preset["convs"]):
    x = net.conv((f"Conv_{index}",), x, stride=2)
    if preset["batch_norm"] and index > 0:
      x = net.batch_norm((f"BatchNorm_{index - 1}",), x)
    x = NP_ACTIVATIONS["leaky_relu"](x)
  return net.dense(("Dense_0",), x.reshape(x.shape[0], -1))[:, 0]


def np_resnet_generator(net, module, z):
  relu = NP_ACTIVATIONS["relu"]
  x = net.dense(("Dense_0",), z).reshape(z.shape[0], 4, 4, module.features)
  for index in range(3):
    block = f"GeneratorBlock_{index}"
    h = np_upsample(relu(net.batch_norm((block, "BatchNorm_0"), x)))
    h = relu(net.batch_norm((block, "BatchNorm_1"), net.conv((block, "Conv_0"), h)))
    x = net.conv((block, "Conv_1"), h) + net.conv((block, "Conv_2"), np_upsample(x))
  x = relu(net.batch_norm(("BatchNorm_0",), x))
  return np.tanh(net.conv(("Conv_0",), x))


def np_resnet_discriminator(net, module, x):
  relu = NP_ACTIVATIONS["relu"]
  sn = module.spectral_norm
  # (downsample, optimized) of the four blocks: 32 -> 16 -> 8 -> 8 -> 8.
  for index, (downsample, optimized) in enumerate([(True, True), (True, False), (False, False),
                                                   (False, False)]):
    block = f"DiscriminatorBlock_{index}"
    h = net.conv((block, "Conv_0"), x if optimized else relu(x), spectral_norm=sn)
    h = net.conv((block, "Conv_1"), relu(h), spectral_norm=sn)
    if optimized:
      shortcut = net.conv((block, "Conv_2"), np_average_pool(x), spectral_norm=sn)
    elif downsample:
      shortcut = np_average_pool(net.conv((block, "Conv_2"), x, spectral_norm=sn))
    else:
      shortcut = x  # same width, same size: the identity
    x = (np_average_pool(h) if downsample else h) + shortcut
  return net.dense(("Dense_0",), relu(x).sum(axis=(1, 2)), spectral_norm=sn)[:, 0]


HAND_BUILT = {
    models.MLPGenerator: np_mlp_generator,
    models.MLPDiscriminator: np_mlp_discriminator,
    models.DCGANGenerator: np_dcgan_generator,
    models.DCGANDiscriminator: np_dcgan_discriminator,
    models.ResNetGenerator: np_resnet_generator,
    models.ResNetDiscriminator: np_resnet_discriminator,
}

# (generator or discriminator, name, fields, input shape without the batch axis). The DCGAN
# generators run the default conv_impl, on the CPU the sub-pixel layers (test_fast_layers.py
# shows nn.ConvTranspose computing the same function).
FORWARD_CASES = [
    ("generator", "mlp", dict(output_dim=3, hidden=(8, 6), batch_norm=True, activation="tanh"),
     (LATENT_DIM,)),
    ("generator", "mlp", dict(output_dim=2, hidden=(8,), activation="elu"), (LATENT_DIM,)),
    ("discriminator", "mlp", dict(hidden=(8, 6), batch_norm=True, activation="leaky_relu"),
     (3, 2)),
    ("discriminator", "mlp", dict(hidden=(4, 4), batch_norm=True, maxout_pieces=3), (2,)),
    ("generator", "dcgan", dict(image_shape=(28, 28, 1), base_features=4), (LATENT_DIM,)),
    ("generator", "dcgan", dict(image_shape=(32, 32, 3), base_features=4), (LATENT_DIM,)),
    ("discriminator", "dcgan", dict(image_shape=(28, 28, 1), base_features=4), (28, 28, 1)),
    ("discriminator", "dcgan", dict(image_shape=(32, 32, 3), base_features=4), (32, 32, 3)),
    ("generator", "resnet", dict(features=8), (LATENT_DIM,)),
    ("discriminator", "resnet", dict(features=8), (32, 32, 3)),
    ("discriminator", "resnet", dict(features=8, spectral_norm=False), (32, 32, 3)),
]


@pytest.mark.parametrize("player, name, kwargs, input_shape", FORWARD_CASES)
def test_outputs_and_statistics_equal_the_network_rebuilt_by_hand(player, name, kwargs,
                                                                  input_shape):
  if player == "generator":
    module, inputs = models.get_generator(name, **kwargs), latents(batch=4, seed=20)
  else:
    module = models.get_discriminator(name, **kwargs)
    inputs = jax.random.uniform(make_key(20), (4, *input_shape), minval=-1.0, maxval=1.0)
  variables = random_variables(module, inputs, seed=21, random_statistics=True)

  @jax.jit
  def train_and_eval(variables, inputs):
    train = module.apply(variables, inputs, train=True, mutable=["batch_stats"])
    return train, module.apply(variables, inputs, train=False)

  (train_out, train_updates), eval_out = train_and_eval(variables, inputs)
  inputs = np.asarray(inputs, np.float64)
  for train, got in ((True, train_out), (False, eval_out)):
    net = HandBuilt(variables, train=train)
    expected = HAND_BUILT[type(module)](net, module, inputs)
    # float32 sums of up to 400 products per layer against float64, through up to 13 layers,
    # BatchNorm dividing by batch standard deviations of order 1: measured at most 1.4e-6 of
    # the largest output (the ResNet generator), 3e-7 for the running averages and u.
    assert_close(got, expected, rtol=1e-5)
    if train:
      expected_updates = net.updates
  # The BatchNorm running averages and spectral-norm vectors that the train call writes.
  got_updates = train_updates.get("batch_stats", {})
  assert (jax.tree_util.tree_structure(got_updates)
          == jax.tree_util.tree_structure(expected_updates))
  jax.tree_util.tree_map(lambda got, want: assert_close(got, want, rtol=1e-5), got_updates,
                         expected_updates)


def test_dcgan28_parameter_counts_equal_the_pytorch_reference():
  latent, projected = 100, 7 * 7 * 256
  # Linear(100, 12544, no bias), BatchNorm1d(12544), ConvT(256->128), BN, ConvT(128->64), BN,
  # ConvT(64->1) with bias: weights + biases + BatchNorm affine parameters.
  torch_generator = (latent * projected + 2 * projected
                     + 5 * 5 * 256 * 128 + 2 * 128
                     + 5 * 5 * 128 * 64 + 2 * 64
                     + 5 * 5 * 64 * 1 + 1)
  # Conv(1->64) + bias, Conv(64->128) + bias, Linear(128*7*7 -> 1) + bias.
  torch_discriminator = 5 * 5 * 1 * 64 + 64 + 5 * 5 * 64 * 128 + 128 + 128 * 7 * 7 + 1

  g_variables, _ = abstract_output(models.DCGANGenerator(image_shape=(28, 28, 1)),
                                   jnp.zeros((2, latent)))
  d_variables, _ = abstract_output(models.DCGANDiscriminator(image_shape=(28, 28, 1)),
                                   jnp.zeros((2, 28, 28, 1)))
  assert count_params(g_variables) == torch_generator == 2_305_473
  assert count_params(d_variables) == torch_discriminator == 212_865
  assert "batch_stats" not in d_variables


def test_dcgan28_defaults_to_the_tutorial_architecture():
  generator = models.DCGANGenerator(image_shape=(28, 28, 1))
  variables, _ = abstract_output(generator, jnp.zeros((2, 100)))
  assert kernel_shapes(variables) == {
      "Dense_0": (100, 12544), "ConvTranspose_0": (5, 5, 256, 128),
      "ConvTranspose_1": (5, 5, 128, 64), "ConvTranspose_2": (5, 5, 64, 1)}


def test_dcgan32_follows_radford():
  variables, _ = abstract_output(models.DCGANGenerator(), jnp.zeros((2, 100)))
  assert kernel_shapes(variables) == {
      "Dense_0": (100, 4 * 4 * 512), "ConvTranspose_0": (4, 4, 512, 256),
      "ConvTranspose_1": (4, 4, 256, 128), "ConvTranspose_2": (4, 4, 128, 3)}
  variables, _ = abstract_output(models.DCGANDiscriminator(image_shape=(64, 64, 3)),
                                 jnp.zeros((2, 64, 64, 3)))
  assert sorted(variables["params"]) == ["BatchNorm_0", "BatchNorm_1", "BatchNorm_2", "Conv_0",
                                         "Conv_1", "Conv_2", "Conv_3", "Dense_0"]
  assert "bias" in variables["params"]["Conv_0"] and "bias" not in variables["params"]["Conv_1"]
  assert variables["params"]["Dense_0"]["kernel"].shape == (4 * 4 * 512, 1)


def test_dcgan_initialisation_follows_radford():
  generator = models.DCGANGenerator(image_shape=(28, 28, 1), base_features=16)
  params = init(generator, jnp.zeros((2, 100)))["params"]
  conv_kernel = np.asarray(params["ConvTranspose_0"]["kernel"])
  assert conv_kernel.size == 5 * 5 * 64 * 32
  assert abs(conv_kernel.std() - 0.02) < 0.002
  assert abs(conv_kernel.mean()) < 0.001
  scale = np.asarray(params["BatchNorm_0"]["scale"])
  assert scale.size == 7 * 7 * 64
  assert abs(scale.mean() - 1.0) < 0.003
  assert abs(scale.std() - 0.02) < 0.002
  np.testing.assert_array_equal(params["BatchNorm_0"]["bias"], 0.0)


def test_mlp_discriminator_maxout_matches_numpy():
  discriminator = models.MLPDiscriminator(hidden=(3, 4), maxout_pieces=5)
  x = np.asarray(jax.random.normal(make_key(4), (6, 2)))
  variables = random_variables(discriminator, x, seed=5)
  logits = jax.jit(lambda v, x: discriminator.apply(v, x, train=False))(variables, x)

  params = jax.tree_util.tree_map(np.asarray, variables["params"])
  h = x
  for layer, width in (("Dense_0", 3), ("Dense_1", 4)):
    affine = h @ params[layer]["kernel"] + params[layer]["bias"]
    assert affine.shape == (6, width * 5)
    h = np.stack([affine[:, unit * 5:(unit + 1) * 5].max(axis=1) for unit in range(width)], 1)
  expected = (h @ params["Dense_2"]["kernel"] + params["Dense_2"]["bias"])[:, 0]
  np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_maxout_rejects_indivisible_width():
  with pytest.raises(ValueError, match="groups of 4"):
    layers.maxout(jnp.zeros((2, 10)), 4)


def test_activations_by_name():
  assert set(layers.ACTIVATIONS) == set(NP_ACTIVATIONS)
  # Both signs, the kinks at 0, and tails where a careless float32 softplus log(1 + e^x)
  # overflows (at 100) or rounds e^-80 to 0 (at -80).
  x = np.concatenate([np.linspace(-6.0, 6.0, 49), [-80.0, -20.0, 20.0, 100.0]])
  for name in layers.ACTIVATIONS:
    y = layers.get_activation(name)(jnp.asarray(x, jnp.float32))
    assert y.shape == x.shape and y.dtype == jnp.float32, name
    # One or two float32 elementary functions against float64: a few ulp (1.2e-7 each), but
    # gelu's 0.5 x (1 + tanh(.)) cancels for x < 0, losing up to |x| ulp of 1 (7e-7 at -6).
    atol = 1e-6 if name == "gelu" else 1e-30
    np.testing.assert_allclose(y, NP_ACTIVATIONS[name](x), rtol=1e-6, atol=atol, err_msg=name)
  with pytest.raises(ValueError, match=r"unknown activation 'sigmod'; valid names: elu, gelu"):
    layers.get_activation("sigmod")
  with pytest.raises(ValueError, match="valid names"):
    models.MLPGenerator(activation="sigmod")
  with pytest.raises(ValueError, match="valid names"):
    models.DCGANGenerator(activation="sigmod")


@pytest.mark.parametrize("name, kwargs, bounded", [
    ("mlp", dict(batch_norm=True, hidden=(32, 32)), False),
    ("dcgan", dict(image_shape=(28, 28, 1), base_features=4), True),
    ("resnet", dict(features=4), True),
])
def test_batch_norm_train_updates_statistics_and_eval_is_per_example(name, kwargs, bounded):
  generator = models.get_generator(name, **kwargs)
  z = latents(batch=4)
  # The same first example among different companions.
  z_pair = jnp.stack([z, z.at[1:].set(latents(batch=3, seed=2) * 5.0)])
  variables = random_variables(generator, z)

  @jax.jit
  def train_then_eval(variables, z_pair):
    def apply(variables, z, train):
      return generator.apply(variables, z, train=train, mutable=["batch_stats"])
    train_samples, train_updates = jax.vmap(lambda z: apply(variables, z, True))(z_pair)
    trained = {"params": variables["params"],
               "batch_stats": jax.tree_util.tree_map(lambda a: a[0], train_updates)["batch_stats"]}
    eval_samples, eval_updates = jax.vmap(lambda z: apply(trained, z, False))(z_pair)
    return train_samples, trained, eval_samples, eval_updates

  train_samples, trained, eval_samples, eval_updates = train_then_eval(variables, z_pair)
  if bounded:
    assert np.all(np.abs(train_samples) <= 1.0) and np.all(np.abs(eval_samples) <= 1.0)
  changed = jax.tree_util.tree_map(lambda old, new: not np.allclose(old, new),
                                   variables["batch_stats"], trained["batch_stats"])
  assert all(jax.tree_util.tree_leaves(changed))
  # In train mode the batch statistics make an example's output depend on the others.
  assert not np.allclose(train_samples[0, 0], train_samples[1, 0], atol=1e-4)
  np.testing.assert_allclose(eval_samples[0, 0], eval_samples[1, 0], rtol=1e-5, atol=1e-5)
  for pair_index in range(2):
    jax.tree_util.tree_map(lambda got, want: np.testing.assert_array_equal(got[pair_index], want),
                           eval_updates["batch_stats"], trained["batch_stats"])


class _SpectralNormProbe(nn.Module):
  """A Dense and a Conv wrapped the way resnet.py wraps its layers."""

  @nn.compact
  def __call__(self, x, train=True):
    dense = layers.maybe_spectral_norm(nn.Dense(6), x.reshape(x.shape[0], -1),
                                       spectral_norm=True, train=train)
    conv = layers.maybe_spectral_norm(nn.Conv(5, (3, 3)), x, spectral_norm=True, train=train)
    return dense, conv


def _scale_kernels(params, factor):
  """Multiplies every kernel by `factor`, as training might have grown the weights."""
  return jax.tree_util.tree_map_with_path(
      lambda path, leaf: leaf * factor if path[-1].key == "kernel" else leaf, params)


def _power_iterate(module, variables, inputs, steps):
  """Runs `steps` training calls and returns the variables holding the final batch_stats."""
  def body(_, batch_stats):
    _, updates = module.apply({"params": variables["params"], "batch_stats": batch_stats},
                              inputs, train=True, mutable=["batch_stats"])
    return updates["batch_stats"]
  batch_stats = jax.lax.fori_loop(0, steps, body, variables["batch_stats"])
  return {"params": variables["params"], "batch_stats": batch_stats}


def _largest_singular_value(kernel):
  kernel = np.asarray(kernel, np.float64)
  return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


def _power_iteration_estimate(kernel, u, calls):
  """The sigma that the `calls`-th call of nn.SpectralNorm from the stored vector u estimates.

  With the kernel reshaped to W = sum_i s_i l_i r_i^T of shape (fan_in, features) and
  c_i = <u, r_i>, a call estimates sigma = ||u W^T W|| / ||u W^T||
  = sqrt(sum_i c_i^2 s_i^4 / sum_i c_i^2 s_i^2) from the u it finds and stores
  u W^T W / ||u W^T W||, which multiplies each c_i by s_i^2. The `calls`-th estimate therefore
  starts from components c_i s_i^(2 (calls - 1)) and is, with t_i = s_i / s_1,

    s_1 sqrt(sum_i c_i^2 t_i^(4 calls) / sum_i c_i^2 t_i^(4 calls - 2)) <= s_1,

  short of s_1 by a relative error of at most (1/2) sum_(i>1) (c_i / c_1)^2 t_i^(4 calls - 2).
  """
  matrix = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
  _, singular_values, right = np.linalg.svd(matrix, full_matrices=False)
  c = right @ np.asarray(u, np.float64)[0]
  t = singular_values / singular_values[0]
  return singular_values[0] * np.sqrt(np.sum(c ** 2 * t ** (4 * calls))
                                      / np.sum(c ** 2 * t ** (4 * calls - 2)))


def test_spectral_norm_layers_have_unit_spectral_norm():
  probe = _SpectralNormProbe()
  x = jax.random.normal(make_key(6), (2, 4, 4, 3))
  steps = 50

  @jax.jit
  def init_and_converge(x):
    initial = probe.init(make_key(7), x, train=False)
    variables = {"params": _scale_kernels(initial["params"], 5.0),
                 "batch_stats": initial["batch_stats"]}
    variables = _power_iterate(probe, variables, x, steps=steps)
    return initial, variables, probe.apply(variables, x, train=False)

  initial, converged, (dense_out, conv_out) = init_and_converge(x)
  normalised = {}
  for layer, wrapper in (("Dense_0", "SpectralNorm_0"), ("Conv_0", "SpectralNorm_1")):
    kernel = np.asarray(converged["params"][layer]["kernel"], np.float64)
    initial_u = initial["batch_stats"][wrapper][f"{layer}/kernel/u"]
    largest = _largest_singular_value(kernel)
    # The raw kernels are far from unit norm, so the comparisons below see the normalisation.
    assert largest > 2.0, layer
    # The stored estimate is the closed form's up to float32 rounding in the matrix products,
    # which the iteration does not accumulate (each step renormalises u): measured 2e-7.
    np.testing.assert_allclose(converged["batch_stats"][wrapper][f"{layer}/kernel/sigma"],
                               _power_iteration_estimate(kernel, initial_u, steps), rtol=1e-6)
    # The eval call's estimate (call 51) equals s_1 far below float32 precision (the gaps
    # s_2 / s_1 are 0.82 for the Dense kernel and 0.77 for the Conv one, 0.82^202 = 4e-18), so
    # the layers compute with W / s_1.
    assert 1.0 - _power_iteration_estimate(kernel, initial_u, steps + 1) / largest < 1e-12
    normalised[layer] = kernel / largest
  x = np.asarray(x, np.float64)
  bias = {layer: np.asarray(converged["params"][layer]["bias"]) for layer in normalised}
  # float32 sums of 27 or 48 products against float64 (measured 3e-7).
  assert_close(dense_out, x.reshape(2, -1) @ normalised["Dense_0"] + bias["Dense_0"], rtol=1e-6)
  assert_close(conv_out, np_conv(x, normalised["Conv_0"]) + bias["Conv_0"], rtol=1e-6)

  # Flax's nn.SpectralNorm writes the normalised kernel W / sigma into 'params' at init, sigma
  # the estimate of one call from the u it draws and stores. The estimate is proportional to
  # the kernel, so one call from that u estimates the stored kernel's norm as sigma / sigma = 1
  # (up to the kernel's float32 rounding, measured 2e-7), and as no estimate exceeds s_1,
  # the stored kernel's s_1 is at least 1.
  for layer, wrapper in (("Dense_0", "SpectralNorm_0"), ("Conv_0", "SpectralNorm_1")):
    stats = initial["batch_stats"][wrapper]
    assert float(stats[f"{layer}/kernel/sigma"]) == 1.0
    kernel = initial["params"][layer]["kernel"]
    np.testing.assert_allclose(
        _power_iteration_estimate(kernel, stats[f"{layer}/kernel/u"], 1), 1.0, rtol=1e-6)
    assert _largest_singular_value(kernel) >= 1.0 - 1e-6


@pytest.fixture(scope="module")
def resnet_critic():
  discriminator = models.ResNetDiscriminator(features=8)
  images = jax.random.uniform(make_key(8), (2, 32, 32, 3), minval=-1, maxval=1)
  return discriminator, images, random_variables(discriminator, images, seed=9)


def test_resnet_discriminator_spectral_norm_estimates_follow_the_power_iteration(resnet_critic):
  discriminator, images, initial = resnet_critic
  steps = 60
  initial = {"params": _scale_kernels(initial["params"], 3.0),
             "batch_stats": initial["batch_stats"]}
  variables = jax.jit(lambda v, x: _power_iterate(discriminator, v, x, steps=steps))(
      initial, images)

  layers_seen = []
  for path, sigma in jax.tree_util.tree_leaves_with_path(variables["batch_stats"]):
    *module_path, variable = [entry.key for entry in path]
    if not variable.endswith("/kernel/sigma"):
      continue
    assert module_path[-1].startswith("SpectralNorm_")
    layer_path = module_path[:-1] + [variable.split("/")[0]]
    layers_seen.append("/".join(layer_path))
    kernel = _subtree(variables["params"], layer_path)["kernel"]
    initial_u = _subtree(initial["batch_stats"], module_path)[
        variable.replace("/sigma", "/u")]
    expected = _power_iteration_estimate(kernel, initial_u, steps)
    largest = _largest_singular_value(kernel)
    assert float(sigma) > 2.0, layers_seen[-1]
    # As in the probe: float32 rounding only (measured 2e-7).
    np.testing.assert_allclose(float(sigma), expected, rtol=1e-6, err_msg=layers_seen[-1])
    # So the estimate is below s_1, here by 7e-5 at most after 60 calls: the gaps s_2 / s_1 of
    # these kernels reach 0.96, and 0.96^238 = 6e-5.
    assert -1e-6 < 1.0 - float(sigma) / largest < 1e-4, layers_seen[-1]

  # Optimized and down blocks: two convs and a 1x1 shortcut each; plain blocks: two convs each;
  # then the Dense layer.
  assert len(layers_seen) == 3 + 3 + 2 + 2 + 1


def test_spectral_norm_eval_does_not_update_vectors(resnet_critic):
  discriminator, images, variables = resnet_critic
  eval_logits, eval_updates = jax.jit(
      lambda v, x: discriminator.apply(v, x, train=False, mutable=["batch_stats"]))(
          variables, images)
  assert eval_logits.shape == (2,) and eval_logits.dtype == jnp.float32
  assert np.all(np.isfinite(eval_logits))
  jax.tree_util.tree_map(np.testing.assert_array_equal, eval_updates["batch_stats"],
                         variables["batch_stats"])


def test_registry_rejects_unknown_names():
  with pytest.raises(errors.ConfigError,
                     match=r"^unknown generator 'foo'; valid names: biggan, dcgan, mlp, resnet, "
                     r"stylegan2$"):
    models.get_generator("foo")
  with pytest.raises(errors.ConfigError,
                     match=r"^unknown discriminator 'bar'; valid names: biggan, dcgan, mlp, "
                     r"resnet, stylegan2$"):
    models.get_discriminator("bar")


def test_registry_rejects_unknown_fields():
  with pytest.raises(errors.ConfigError, match=r"unknown field 'widht'.*valid fields: "
                                               r"activation, axis_name, batch_norm, dtype, "
                                               r"hidden, num_classes, output_dim$"):
    models.get_generator("mlp", widht=3)
  with pytest.raises(errors.ConfigError, match=r"unknown field 'name'.*valid fields: axis_name, "
                                               r"conditioning, dtype, features, num_classes, "
                                               r"pack, spectral_norm$"):
    models.get_discriminator("resnet", name="critic")
  with pytest.raises(errors.ConfigError,
                     match=r"unsupported DCGAN image_shape \(48, 48, 3\); supported: "
                           r"\(28, 28, C\), \(32, 32, C\), \(64, 64, C\)"):
    models.get_generator("dcgan", image_shape=(48, 48, 3))


@pytest.mark.parametrize("build, kwargs, message", [
    (models.get_generator, {"hidden": 64}, r"^field 'hidden' of generator 'mlp' must be "
                                           r"Sequence\[int\], got 64$"),
    (models.get_generator, {"hidden": (64, "64")}, r"^field 'hidden' of generator 'mlp'"),
    (models.get_generator, {"output_dim": True}, r"^field 'output_dim' of generator 'mlp' must "
                                                 r"be int, got True$"),
    (models.get_generator, {"activation": 3}, r"^field 'activation' of generator 'mlp' must be "
                                              r"str, got 3$"),
    (models.get_generator, {"activation": "sigmod"}, r"^unknown activation 'sigmod'"),
    (models.get_discriminator, {"maxout_pieces": -1}, r"^maxout_pieces must be >= 0, got -1$"),
    (models.get_discriminator, {"pack": "2"}, r"^field 'pack' of discriminator 'mlp' must be "
                                              r"int, got '2'$"),
    (models.get_discriminator, {"axis_name": 0}, r"^field 'axis_name' of discriminator 'mlp' "
                                                 r"must be str \| None, got 0$"),
])
def test_registry_rejects_fields_of_the_wrong_type_or_value(build, kwargs, message):
  with pytest.raises(errors.ConfigError, match=message) as error:
    build("mlp", **kwargs)
  assert "\n" not in str(error.value)


def test_registry_checks_tuples_and_accepts_lists_for_them():
  with pytest.raises(errors.ConfigError, match=r"^field 'image_shape' of discriminator 'dcgan' "
                                               r"must be tuple\[int, int, int\], got \(32, 32\)$"):
    models.get_discriminator("dcgan", image_shape=(32, 32))
  assert models.get_generator("dcgan", image_shape=[32, 32, 3], activation=None).activation is None
  assert models.get_discriminator("dcgan", batch_norm=None).batch_norm is None
  assert models.get_generator("mlp", hidden=[8, 8]).hidden == [8, 8]


def test_an_error_inside_a_registered_module_is_not_a_config_error(monkeypatch):
  class Broken(nn.Module):
    width: int = 4

    @nn.compact
    def __call__(self, z, train=True):
      raise ValueError("a bug in the module")

  monkeypatch.setitem(models.GENERATORS, "broken", Broken)
  generator = models.get_generator("broken", width=8)
  with pytest.raises(ValueError, match="a bug in the module") as error:
    jax.eval_shape(lambda z: generator.init(make_key(0), z), jnp.zeros((2, 3)))
  assert not isinstance(error.value, errors.ConfigError)
  with pytest.raises(errors.ConfigError, match=r"^field 'width' of generator 'broken' must be "
                                               r"int, got 8.0$"):
    models.get_generator("broken", width=8.0)


def test_registry_builds_the_registered_classes():
  assert isinstance(models.get_generator("resnet", features=8), models.ResNetGenerator)
  assert models.get_discriminator("dcgan", base_features=8).base_features == 8
  assert set(models.GENERATORS) == set(models.DISCRIMINATORS) == {"mlp", "dcgan", "resnet",
                                                                  "biggan", "stylegan2"}


def test_pack_samples_joins_consecutive_samples_along_the_last_axis():
  vectors = np.arange(12.0).reshape(6, 2)
  np.testing.assert_array_equal(packing.pack_samples(vectors, 3),
                                [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  images = np.arange(4 * 2 * 2 * 3.0).reshape(4, 2, 2, 3)
  expected = np.concatenate([images[0::2], images[1::2]], axis=-1)
  np.testing.assert_array_equal(packing.pack_samples(images, 2), expected)


def test_pack_1_is_the_plain_discriminator():
  kwargs = {"hidden": (8, 8), "maxout_pieces": 3}
  plain = models.get_discriminator("mlp", **kwargs)
  assert models.get_discriminator("mlp", pack=1, **kwargs) == plain
  packed = models.Packed(plain, pack=1)
  x = np.asarray(jax.random.normal(make_key(2), (5, 2)))
  variables = init(plain, x)
  np.testing.assert_array_equal(
      packed.apply({"params": {"inner": variables["params"]}}, x, train=False),
      plain.apply(variables, x, train=False))


@pytest.mark.parametrize("pack", [2, 3, 4])
def test_packed_logits_are_the_inner_discriminator_on_concatenated_samples(pack):
  packed = models.get_discriminator("mlp", hidden=(8, 8), maxout_pieces=5, pack=pack)
  assert isinstance(packed, models.Packed) and packed.pack == pack
  x = np.asarray(jax.random.normal(make_key(3), (4 * pack, 2)))
  variables = init(packed, x[:2])  # any batch initialises
  logits = packed.apply(variables, x, train=False)
  assert logits.shape == (4,)
  by_hand = np.stack([np.concatenate(x[i * pack:(i + 1) * pack]) for i in range(4)])
  assert by_hand.shape == (4, 2 * pack)
  expected = packed.inner.apply({"params": variables["params"]["inner"]}, by_hand, train=False)
  np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)


def test_packing_errors_are_one_line():
  with pytest.raises(errors.ConfigError, match=r"^pack must be a positive integer, got 0$"):
    models.get_discriminator("mlp", pack=0)
  packed = models.get_discriminator("mlp", hidden=(4,), pack=3)
  variables = init(packed, jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match=r"^a packed discriminator \(pack=3\) needs a batch "
                                       r"divisible by 3, got 4 samples") as error:
    packed.apply(variables, jnp.zeros((4, 2)), train=False)
  assert "\n" not in str(error.value)


def test_packed_discriminator_passes_the_mapped_axis_to_batch_norm():
  packed = models.get_discriminator("mlp", hidden=(4,), batch_norm=True, pack=2)
  assert packed.clone(axis_name="batch").inner.axis_name == "batch"


def test_bfloat16_compute_for_dcgan32_is_float32_to_bfloat16_precision():
  dtypes = ("float32", "bfloat16")
  kwargs = dict(image_shape=(32, 32, 3), base_features=4)
  generators = {dtype: models.DCGANGenerator(**kwargs, dtype=dtype) for dtype in dtypes}
  discriminators = {dtype: models.DCGANDiscriminator(**kwargs, dtype=dtype) for dtype in dtypes}
  z = latents(batch=8)
  images_in = jnp.zeros((8, 32, 32, 3), jnp.bfloat16)
  for module, inputs in ((generators["bfloat16"], z), (discriminators["bfloat16"], images_in)):
    for leaf in jax.tree_util.tree_leaves(abstract_output(module, inputs)[0]):
      assert leaf.dtype == jnp.float32

  @jax.jit
  def generate_and_score(g_variables, d_variables, z):
    images = {dtype: generators[dtype].apply(g_variables, z, train=True,
                                             mutable=["batch_stats"])[0] for dtype in dtypes}
    # Both discriminators score the same float32 images.
    logits = {dtype: discriminators[dtype].apply(d_variables, images["float32"], train=True,
                                                 mutable=["batch_stats"])[0] for dtype in dtypes}
    return images, logits

  # The same variables for both dtypes: parameters stay float32 whatever the compute dtype.
  images, logits = generate_and_score(random_variables(generators["float32"], z),
                                      random_variables(discriminators["float32"], images_in),
                                      z)
  assert images["bfloat16"].dtype == jnp.bfloat16
  assert images["bfloat16"].shape == images["float32"].shape == (8, 32, 32, 3)
  assert logits["bfloat16"].dtype == logits["float32"].dtype == jnp.float32
  assert logits["bfloat16"].shape == (8,)
  assert np.all(np.abs(np.asarray(images["bfloat16"], np.float32)) <= 1.0)
  # bfloat16 keeps 8 significant bits: one rounding is off by up to 2^-9 = 0.002 relative.
  # Each of the four layers rounds its input and its kernel, so a pre-activation is off by
  # about 2^-8 relative per layer; BatchNorm keeps activations of order 1, and the errors of
  # the layers add up like a random walk, to about 0.01 before the tanh, or the logit's last
  # layer. Measured: images off by 0.0014 on average and 0.010 at most (of 24,576 pixels), the
  # logits by 0.0074 of their largest magnitude (1.1); the bounds are three times those.
  image_error = np.abs(np.asarray(images["bfloat16"], np.float32) - images["float32"])
  assert image_error.mean() < 0.004 and image_error.max() < 0.03
  logit_scale = np.abs(np.asarray(logits["float32"])).max()
  assert logit_scale > 0.5
  logit_error = np.abs(np.asarray(logits["bfloat16"]) - logits["float32"]) / logit_scale
  assert logit_error.max() < 0.025
  # And the discriminator does compute in bfloat16: in float32 the logits would agree to 1e-6.
  assert logit_error.max() > 1e-4


def test_sync_batch_norm_under_pmap_matches_one_device():
  assert jax.device_count() == 4
  single = models.MLPGenerator(hidden=(16, 16), batch_norm=True)
  synced = models.MLPGenerator(hidden=(16, 16), batch_norm=True, axis_name="batch")
  z = latents(batch=16) * 3.0 + 1.0
  variables = random_variables(single, z, seed=12)

  expected, expected_updates = jax.jit(
      lambda v, z: single.apply(v, z, train=True, mutable=["batch_stats"]))(variables, z)

  replicated = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (4, *a.shape)), variables)
  z_per_device = z.reshape(4, 4, LATENT_DIM)
  outputs, updates = jax.pmap(
      lambda v, z: synced.apply(v, z, train=True, mutable=["batch_stats"]),
      axis_name="batch")(replicated, z_per_device)

  np.testing.assert_allclose(outputs.reshape(16, -1), expected, rtol=1e-5, atol=1e-5)
  for device in range(4):
    jax.tree_util.tree_map(
        lambda got, want: np.testing.assert_allclose(got[device], want, rtol=1e-5, atol=1e-5),
        updates["batch_stats"], expected_updates["batch_stats"])
  # Without synchronisation each device would normalise with its own quarter of the batch.
  unsynced = jax.pmap(lambda v, z: single.apply(v, z, train=True, mutable=["batch_stats"])[0])(
      replicated, z_per_device)
  assert not np.allclose(unsynced.reshape(16, -1), expected, atol=1e-3)
