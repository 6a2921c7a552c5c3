"""Tests of the class-conditional modules: conditional batch norm, projection, class heads,
self-attention, the conditional MLP and ResNet players, and the unconditional ones unchanged.

Every expected value is computed independently in float64 numpy from the module's own
parameters (and, where the module has them, its intermediate features). Spectrally normalised
weights W are divided by sigma = ||u W^T W|| / ||u W^T||, the estimate of the one power-
iteration step Flax's `nn.SpectralNorm` runs from its stored row vector u (W reshaped to
(-1, outputs); an embedding table (classes, dim) as it is).
"""
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import errors
from ganjax import models
from ganjax.models import conditional, layers
from ganjax.models.resnet import residual_init, shortcut_init

# PyTorch's BatchNorm defaults, which layers.py documents as the networks' settings.
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5
LATENT_DIM = 16


def make_key(seed):
  # Random-bit-generator keys compile faster on CPU than threefry (see test_models.py).
  return jax.random.key(seed, impl="rbg")


def to_numpy(tree):
  return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def np_batch_norm(x, mean=None, var=None):
  """(x - mean) / sqrt(var + eps), by default with the batch's mean and biased variance over
  every axis but the last. Returns x_hat, the mean and the variance used."""
  axes = tuple(range(x.ndim - 1))
  if mean is None:
    mean = x.mean(axis=axes)
    var = ((x - mean) ** 2).mean(axis=axes)
  return (x - mean) / np.sqrt(var + BN_EPSILON), mean, var


def sn_normalised(weight, u):
  """W / sigma for the power-iteration step from the stored u (module docstring)."""
  weight, u = np.asarray(weight, np.float64), np.asarray(u, np.float64)
  matrix = weight.reshape(-1, weight.shape[-1])
  left = u @ matrix.T
  sigma = np.linalg.norm(left @ matrix) / np.linalg.norm(left)
  return weight / sigma


def assert_close(got, want, rtol):
  """Elementwise within `rtol` of the largest magnitude of `want`."""
  want = np.asarray(want, np.float64)
  np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0,
                             atol=rtol * np.abs(want).max())


def randomised(variables, seed, scale=3.0):
  """Variables of the shapes of `variables` (arrays or `jax.ShapeDtypeStruct`s) drawn from
  numpy: every kernel N(0, scale^2 / fan_in), every spectral-norm vector u N(0, 1), other
  parameters (biases, BatchNorm scales, embedding and gain tables, attention gains)
  N(0, 0.5^2); running means 0, variances 1, sigma estimates 1. Kernels far from unit norm and
  u far from the singular vector, so that a missing normalisation shows."""
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = path[-1].key
    if name == "kernel":
      values = scale * rng.normal(size=leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))
    elif name.endswith("/u"):
      values = rng.normal(size=leaf.shape)
    elif name == "mean":
      values = np.zeros(leaf.shape)
    elif name == "var" or name.endswith("/sigma"):
      values = np.ones(leaf.shape)
    else:
      values = 0.5 * rng.normal(size=leaf.shape)
    return jnp.asarray(values, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, variables)


def numpy_variables(module, *inputs, seed, scale=3.0):
  """`randomised` variables of the module's shapes, without compiling its initialiser (whose
  XLA compilation takes seconds for the spectrally normalised networks)."""
  shapes = jax.eval_shape(lambda *a: module.init(make_key(0), *a, train=False), *inputs)
  return randomised(shapes, seed, scale)


def u_of(batch_stats, layer):
  """The stored u of the spectrally normalised layer `layer` ('Dense_0/kernel', ...) in a
  scope's batch_stats."""
  [u] = [stats[f"{layer}/u"] for stats in batch_stats.values()
         if isinstance(stats, dict) and f"{layer}/u" in stats]
  return u


LABELS = np.array([2, 0, 1, 2, 1, 0], np.int32)


# Conditional batch normalisation.

def test_class_conditional_batch_norm_with_zero_tables_is_plain_batch_norm():
  x = jax.random.normal(make_key(0), (6, 4, 4, 5)) * 2.0 + 0.5
  conditional_norm = conditional.ClassConditionalBatchNorm(num_classes=3)
  plain = nn.BatchNorm(use_scale=False, use_bias=False, momentum=BN_MOMENTUM, epsilon=BN_EPSILON)

  @jax.jit
  def run(x):
    variables = conditional_norm.init(make_key(1), x, LABELS, train=False)
    train_out, updates = conditional_norm.apply(variables, x, LABELS, train=True,
                                                mutable=["batch_stats"])
    trained = {"params": variables["params"], **updates}
    eval_out = conditional_norm.apply(trained, x * 0.5, LABELS, train=False)
    plain_variables = plain.init(make_key(1), x, use_running_average=True)
    plain_train, plain_updates = plain.apply(plain_variables, x, use_running_average=False,
                                             mutable=["batch_stats"])
    plain_eval = plain.apply({**plain_updates}, x * 0.5, use_running_average=True)
    return variables, train_out, updates, eval_out, plain_train, plain_updates, plain_eval

  variables, train_out, updates, eval_out, plain_train, plain_updates, plain_eval = run(x)
  np.testing.assert_array_equal(variables["params"]["gamma"], np.zeros((3, 5)))
  np.testing.assert_array_equal(variables["params"]["beta"], np.zeros((3, 5)))
  # (1 + 0) * x_hat + 0 is x_hat exactly, and the statistics are the same code's: bit for bit.
  np.testing.assert_array_equal(train_out, plain_train)
  np.testing.assert_array_equal(eval_out, plain_eval)
  jax.tree_util.tree_map(np.testing.assert_array_equal, updates["batch_stats"]["BatchNorm_0"],
                         plain_updates["batch_stats"])
  # And that is batch normalisation: float32 against float64 on values of order 1 (measured
  # 5e-7 of the largest value).
  expected, _, _ = np_batch_norm(np.asarray(x, np.float64))
  assert_close(train_out, expected, rtol=1e-5)


def test_class_conditional_batch_norm_gives_each_class_its_gain_and_bias():
  x = jax.random.normal(make_key(2), (6, 3, 3, 4)) * 1.5 - 0.3
  module = conditional.ClassConditionalBatchNorm(num_classes=3)
  variables = jax.jit(lambda x: module.init(make_key(3), x, LABELS, train=False))(x)
  rng = np.random.default_rng(4)
  gamma, beta = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
  running_mean, running_var = rng.normal(size=4), rng.uniform(0.5, 2.0, size=4)
  variables = {"params": {"gamma": jnp.asarray(gamma, jnp.float32),
                          "beta": jnp.asarray(beta, jnp.float32)},
               "batch_stats": {"BatchNorm_0": {"mean": jnp.asarray(running_mean, jnp.float32),
                                               "var": jnp.asarray(running_var, jnp.float32)}}}

  @jax.jit
  def run(variables, x):
    train_out, updates = module.apply(variables, x, LABELS, train=True, mutable=["batch_stats"])
    return train_out, updates, module.apply(variables, x, LABELS, train=False)

  train_out, updates, eval_out = run(variables, x)
  x = np.asarray(x, np.float64)
  # Per example, the gain and bias of its own class, broadcast over the positions.
  gains, biases = 1.0 + gamma[LABELS][:, None, None, :], beta[LABELS][:, None, None, :]
  x_hat, batch_mean, batch_var = np_batch_norm(x)
  # float32 against float64, values of order 1: measured 4e-7 of the largest output.
  assert_close(train_out, gains * x_hat + biases, rtol=1e-5)
  eval_hat, _, _ = np_batch_norm(x, np.asarray(variables["batch_stats"]["BatchNorm_0"]["mean"],
                                               np.float64),
                                 np.asarray(variables["batch_stats"]["BatchNorm_0"]["var"],
                                            np.float64))
  assert_close(eval_out, gains * eval_hat + biases, rtol=1e-5)
  # The running statistics move as plain BN's: m <- 0.9 m + 0.1 batch mean (biased variance).
  stats = updates["batch_stats"]["BatchNorm_0"]
  assert_close(stats["mean"], BN_MOMENTUM * running_mean + (1 - BN_MOMENTUM) * batch_mean, 1e-6)
  assert_close(stats["var"], BN_MOMENTUM * running_var + (1 - BN_MOMENTUM) * batch_var, 1e-6)
  # Two examples of different classes but the same features get different outputs.
  assert not np.allclose(train_out[1], (gains[2] * x_hat[1] + biases[2]), atol=1e-3)


def test_class_conditional_batch_norm_synchronised_under_pmap_matches_one_device():
  assert jax.device_count() == 4
  x = jax.random.normal(make_key(5), (8, 2, 2, 3)) * 2.0 + 1.0
  labels = np.array([0, 1, 2, 0, 1, 2, 0, 1], np.int32)
  single = conditional.ClassConditionalBatchNorm(num_classes=3)
  synced = conditional.ClassConditionalBatchNorm(num_classes=3, axis_name="batch")
  variables = numpy_variables(single, x, labels, seed=7)
  expected, expected_updates = jax.jit(
      lambda v, x: single.apply(v, x, labels, train=True, mutable=["batch_stats"]))(variables, x)
  replicated = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (4, *a.shape)), variables)
  outputs, updates = jax.pmap(
      lambda v, x, y: synced.apply(v, x, y, train=True, mutable=["batch_stats"]),
      axis_name="batch")(replicated, x.reshape(4, 2, 2, 2, 3), labels.reshape(4, 2))
  # Means over 2 or 8 examples in float32, reduced in another order: measured 2e-7.
  np.testing.assert_allclose(outputs.reshape(8, 2, 2, 3), expected, rtol=1e-5, atol=1e-5)
  for device in range(4):
    jax.tree_util.tree_map(
        lambda got, want: np.testing.assert_allclose(got[device], want, rtol=1e-5, atol=1e-6),
        updates["batch_stats"], expected_updates["batch_stats"])


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_vector_conditional_batch_norm_is_linear_gain_and_bias(spectral_norm):
  x = jax.random.normal(make_key(8), (5, 2, 2, 6)) * 3.0
  condition = jax.random.normal(make_key(9), (5, 7))
  module = conditional.VectorConditionalBatchNorm(spectral_norm=spectral_norm)
  variables = numpy_variables(module, x, condition, seed=11)
  # BigGAN-PyTorch's ccbn with shared embeddings: two bias-free linear maps of c.
  assert jax.tree_util.tree_map(jnp.shape, variables["params"]) == {
      "gain": {"kernel": (7, 6)}, "bias": {"kernel": (7, 6)}}
  out = jax.jit(lambda v, x, c: module.apply(v, x, c, train=True, mutable=["batch_stats"])[0])(
      variables, x, condition)

  params, stats = to_numpy(variables["params"]), variables.get("batch_stats", {})
  w_gain, w_bias = params["gain"]["kernel"], params["bias"]["kernel"]
  if spectral_norm:
    w_gain = sn_normalised(w_gain, u_of(stats, "gain/kernel"))
    w_bias = sn_normalised(w_bias, u_of(stats, "bias/kernel"))
  c = np.asarray(condition, np.float64)
  x_hat, _, _ = np_batch_norm(np.asarray(x, np.float64))
  expected = (1.0 + c @ w_gain)[:, None, None, :] * x_hat + (c @ w_bias)[:, None, None, :]
  # float32 against float64: sums of 7 products and a normalisation, measured 3e-7.
  assert_close(out, expected, rtol=1e-5)
  # The spectral normalisation changes the answer (the kernels' norms are far from 1).
  unnormalised = ((1.0 + c @ params["gain"]["kernel"])[:, None, None, :] * x_hat
                  + (c @ params["bias"]["kernel"])[:, None, None, :])
  assert np.allclose(out, unnormalised, atol=1e-4) == (not spectral_norm)


# Self-attention.

def np_self_attention(params, stats, x, spectral_norm):
  """SAGAN / BigGAN-PyTorch Attention: theta, phi, g 1x1 convs (phi and g max-pooled 2x2),
  beta = softmax(theta phi^T) over pooled positions, out = x + gamma * o(beta g)."""
  def kernel(name):
    weight = params[name]["kernel"][0, 0]  # (in, out) of a 1x1 conv
    return sn_normalised(weight, u_of(stats, f"{name}/kernel")) if spectral_norm else weight

  def pool(h):
    n, height, width, c = h.shape
    return h.reshape(n, height // 2, 2, width // 2, 2, c).max(axis=(2, 4))

  n, height, width, c = x.shape
  theta = (x @ kernel("theta")).reshape(n, height * width, -1)
  phi = pool(x @ kernel("phi")).reshape(n, height * width // 4, -1)
  g = pool(x @ kernel("g")).reshape(n, height * width // 4, -1)
  logits = np.einsum("bik,bjk->bij", theta, phi)
  beta = np.exp(logits - logits.max(axis=-1, keepdims=True))
  beta /= beta.sum(axis=-1, keepdims=True)
  o = (beta @ g).reshape(n, height, width, -1) @ kernel("o")
  return x + params["gamma"] * o


def test_self_attention_starts_as_the_identity():
  x = jax.random.normal(make_key(12), (2, 4, 6, 16))
  # Without spectral normalisation, whose initialisation compiles slowly and does not touch
  # gamma.
  attention = conditional.SelfAttention(spectral_norm=False)

  @jax.jit
  def run(x):
    variables = attention.init(make_key(13), x, train=False)
    return variables, attention.apply(variables, x, train=False)

  variables, at_init = run(x)
  assert float(variables["params"]["gamma"]) == 0.0
  np.testing.assert_array_equal(at_init, x)  # x + 0 * o
  # BigGAN-PyTorch's channel reductions: theta and phi to C/8, g to C/2, o back to C.
  assert jax.tree_util.tree_map(jnp.shape, variables["params"]) == {
      "theta": {"kernel": (1, 1, 16, 2)}, "phi": {"kernel": (1, 1, 16, 2)},
      "g": {"kernel": (1, 1, 16, 8)}, "o": {"kernel": (1, 1, 8, 16)}, "gamma": ()}


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_self_attention_with_a_gain_is_the_sagan_formula(spectral_norm):
  x = jax.random.normal(make_key(12), (2, 4, 6, 16))
  attention = conditional.SelfAttention(spectral_norm=spectral_norm)
  variables = numpy_variables(attention, x, seed=14)
  assert float(variables["params"]["gamma"]) != 0.0
  out = jax.jit(lambda v, x: attention.apply(v, x, train=False))(variables, x)
  expected = np_self_attention(to_numpy(variables["params"]), variables.get("batch_stats", {}),
                               np.asarray(x, np.float64), spectral_norm)
  # float32 against float64 through two matrix products and a softmax: measured 3e-7.
  assert_close(out, expected, rtol=1e-5)
  assert not np.allclose(out, x, atol=1e-3)


# Discriminators: projection and class heads.

def np_resnet_features(module, variables, x, intermediates):
  """phi(x) = sum over positions of ReLU(last block's output), from the captured output."""
  del module, variables, x
  last = np.asarray(intermediates["DiscriminatorBlock_3"]["__call__"][0], np.float64)
  return np.maximum(last, 0.0).sum(axis=(1, 2))


def np_mlp_features(module, variables, x, intermediates):
  """phi(x) = the activation of the last hidden Dense layer's captured output."""
  del variables, x
  last = np.asarray(intermediates[f"Dense_{len(module.hidden) - 1}"]["__call__"][0], np.float64)
  assert module.activation == "relu" and not module.batch_norm and not module.maxout_pieces
  return np.maximum(last, 0.0)


DISCRIMINATORS = [
    ("resnet", dict(features=8), (32, 32, 3), np_resnet_features, "Dense_0"),
    ("mlp", dict(hidden=(8, 6)), (3,), np_mlp_features, "Dense_2"),
]


def _dense(params, stats, name, features, spectral_norm):
  kernel = params[name]["kernel"]
  if spectral_norm:
    kernel = sn_normalised(kernel, u_of(stats, f"{name}/kernel"))
  return features @ kernel + params[name]["bias"]


def _run_discriminator(name, kwargs, input_shape, conditioning, labels, seed):
  discriminator = models.get_discriminator(name, num_classes=3, conditioning=conditioning,
                                           **kwargs)
  x = jax.random.uniform(make_key(seed), (6, *input_shape), minval=-1.0, maxval=1.0)
  variables = numpy_variables(discriminator, x, LABELS, seed=seed + 2)
  output, state = jax.jit(lambda v, x: discriminator.apply(
      v, x, labels, train=False, capture_intermediates=True, mutable=["intermediates"]))(
          variables, x)
  return discriminator, variables, x, output, state["intermediates"]


@pytest.mark.parametrize("name, kwargs, input_shape, features_fn, psi", DISCRIMINATORS)
def test_projection_logit_is_psi_plus_the_class_embedding_inner_product(
    name, kwargs, input_shape, features_fn, psi):
  discriminator, variables, x, logits, intermediates = _run_discriminator(
      name, kwargs, input_shape, "projection", LABELS, seed=20)
  spectral_norm = getattr(discriminator, "spectral_norm", False)
  params, stats = to_numpy(variables["params"]), variables.get("batch_stats", {})
  phi = features_fn(discriminator, variables, x, intermediates)

  unconditional = _dense(params, stats, psi, phi, spectral_norm)[:, 0]
  embedding = params["projection"]["embed"]["embedding"]
  assert embedding.shape == (3, phi.shape[-1])
  if spectral_norm:
    # One power-iteration step on the (classes, dim) table from its stored u, as SNEmbedID.
    u = u_of(stats["projection"], "embed/embedding")
    assert u.shape == (1, phi.shape[-1])
    embedding = sn_normalised(embedding, u)
  class_term = np.sum(embedding[LABELS] * phi, axis=-1)
  assert logits.shape == (6,) and logits.dtype == jnp.float32
  # float32 sums of up to 8 * 32 * 32 positions against float64: measured 1e-6 of the largest.
  assert_close(logits, unconditional + class_term, rtol=1e-5)
  # The class term is not negligible, so its absence (or the wrong label) would fail.
  assert np.abs(class_term).max() > 0.1 * np.abs(unconditional + class_term).max()
  shuffled = np.sum(embedding[np.roll(LABELS, 1)] * phi, axis=-1)
  assert not np.allclose(logits, unconditional + shuffled, rtol=1e-3)


@pytest.mark.parametrize("conditioning", ["acgan", "tac"])
@pytest.mark.parametrize("name, kwargs, input_shape, features_fn, psi", DISCRIMINATORS)
def test_class_heads_are_dense_layers_on_the_pooled_features(
    name, kwargs, input_shape, features_fn, psi, conditioning):
  # The heads do not use labels: None is accepted.
  discriminator, variables, x, output, intermediates = _run_discriminator(
      name, kwargs, input_shape, conditioning, None, seed=30)
  logits, heads = output
  spectral_norm = getattr(discriminator, "spectral_norm", False)
  params, stats = to_numpy(variables["params"]), variables.get("batch_stats", {})
  phi = features_fn(discriminator, variables, x, intermediates)
  expected_heads = {"classes": "class_head"} | ({"twin": "twin_head"} if conditioning == "tac"
                                                 else {})
  assert set(heads) == set(expected_heads)
  assert "projection" not in params
  assert logits.shape == (6,) and logits.dtype == jnp.float32
  # float32 against float64, as in the projection test.
  assert_close(logits, _dense(params, stats, psi, phi, spectral_norm)[:, 0], rtol=1e-5)
  for head, layer in expected_heads.items():
    assert heads[head].shape == (6, 3) and heads[head].dtype == jnp.float32
    assert_close(heads[head], _dense(params, stats, layer, phi, spectral_norm), rtol=1e-5)
  if conditioning == "tac":  # two separate heads, not one head twice
    assert not np.allclose(heads["classes"], heads["twin"], atol=1e-3)


# Generators.

def _init_apply(module, z, labels, seed):
  variables = numpy_variables(module, z, labels, seed=seed, scale=1.0)
  samples = jax.jit(lambda v, z: module.apply(v, z, labels, train=False))(variables, z)
  return variables, samples


@pytest.mark.parametrize("name, kwargs", [
    ("mlp", dict(output_dim=3, hidden=(8,), batch_norm=True)),
    ("resnet", dict(features=8)),
])
def test_conditional_generator_samples_depend_on_the_label(name, kwargs):
  generator = models.get_generator(name, num_classes=3, **kwargs)
  # One z three times, labels 0, 1, 0; eval mode, so examples do not see each other.
  z = jnp.broadcast_to(jax.random.normal(make_key(41), (1, LATENT_DIM)), (3, LATENT_DIM))
  labels = np.array([0, 1, 0], np.int32)
  # Random parameters: the ResNet's class tables start at zero (plain BN at init).
  variables, samples = _init_apply(generator, z, labels, seed=42)
  np.testing.assert_array_equal(samples[0], samples[2])
  assert np.abs(np.asarray(samples[0]) - np.asarray(samples[1])).max() > 1e-2
  if name == "resnet":
    # cGAN-PD: class-conditional BN in every block, the output BN plain (scale and bias).
    for block in range(3):
      for norm in range(2):
        tables = variables["params"][f"GeneratorBlock_{block}"][
            f"ClassConditionalBatchNorm_{norm}"]
        assert jax.tree_util.tree_map(jnp.shape, tables) == {"gamma": (3, 8), "beta": (3, 8)}
    assert set(variables["params"]["BatchNorm_0"]) == {"scale", "bias"}


def test_conditional_mlp_generator_sees_the_one_hot_label_next_to_z():
  generator = models.MLPGenerator(output_dim=2, hidden=(5,), num_classes=4)
  z = jax.random.normal(make_key(43), (4, LATENT_DIM))
  labels = np.array([3, 0, 2, 1], np.int32)
  variables, samples = _init_apply(generator, z, labels, seed=44)
  params = to_numpy(variables["params"])
  assert params["Dense_0"]["kernel"].shape == (LATENT_DIM + 4, 5)
  inputs = np.concatenate([np.asarray(z, np.float64), np.eye(4)[labels]], axis=1)
  hidden = np.maximum(inputs @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"], 0.0)
  expected = hidden @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]
  # float32 against float64, sums of 20 products: measured 2e-7.
  assert_close(samples, expected, rtol=1e-5)


@pytest.mark.parametrize("build, name, kwargs, inputs", [
    (models.get_generator, "mlp", {}, (2, LATENT_DIM)),
    (models.get_generator, "resnet", dict(features=8), (2, LATENT_DIM)),
    (models.get_generator, "biggan", dict(ch=4), (2, LATENT_DIM)),
    (models.get_discriminator, "mlp", {}, (2, 2)),
    (models.get_discriminator, "resnet", dict(features=8), (2, 32, 32, 3)),
    (models.get_discriminator, "biggan", dict(ch=4), (2, 32, 32, 3)),
])
def test_labels_missing_or_unexpected_raise_one_line_errors(build, name, kwargs, inputs):
  def assert_raises_one_line(pattern, module, *args):
    # pytest matches against the message and its notes (JAX's traceback note): `pattern`
    # ends where the message should, and the message itself has no newline.
    with pytest.raises(ValueError, match=pattern) as error:
      module.init(make_key(0), jnp.zeros(inputs), *args, train=False)
    assert "\n" not in str(error.value)
    assert re.fullmatch(pattern.lstrip("^"), str(error.value))

  conditional_module = build(name, num_classes=3, **kwargs)
  owner = type(conditional_module).__name__
  assert_raises_one_line(
      rf"^{owner} has num_classes=3 and needs labels: int32 class indices of shape \(batch,\), "
      rf"passed as apply\(variables, inputs, labels, train=...\)", conditional_module)
  assert_raises_one_line(
      rf"^{owner} needs integer labels of shape \(2,\), got float32 of shape \(2,\)",
      conditional_module, jnp.zeros(2))
  assert_raises_one_line(
      rf"^{owner} needs integer labels of shape \(2,\), got int32 of shape \(2, 1\)",
      conditional_module, jnp.zeros((2, 1), jnp.int32))
  assert_raises_one_line(rf"^{owner} is unconditional \(num_classes=0\) and takes no labels",
                         build(name, **kwargs), jnp.zeros(2, jnp.int32))


def test_registry_validates_the_conditional_fields_in_one_line():
  with pytest.raises(errors.ConfigError, match=r"^unknown conditioning 'proj'; valid values: "
                                               r"projection, acgan, tac$"):
    models.get_discriminator("resnet", num_classes=10, conditioning="proj")
  with pytest.raises(errors.ConfigError, match=r"^num_classes must be >= 0"):
    models.get_generator("mlp", num_classes=-1)
  with pytest.raises(errors.ConfigError, match=r"^field 'num_classes' of generator 'resnet' "
                                               r"must be int, got 10.0$"):
    models.get_generator("resnet", num_classes=10.0)
  with pytest.raises(errors.ConfigError, match=r"^PacGAN packing \(pack=2\) needs an "
                                               r"unconditional discriminator, got "
                                               r"MLPDiscriminator with num_classes=3$"):
    models.get_discriminator("mlp", num_classes=3, pack=2)
  # pack=1 is no packing: a conditional discriminator is fine.
  assert models.get_discriminator("mlp", num_classes=3, pack=1).num_classes == 3
  assert models.CONDITIONINGS == ("projection", "acgan", "tac")


# num_classes = 0: the networks as they were before conditioning existed. These are the
# modules of mlp.py and resnet.py at the commit before it, copied here.

class LegacyMLPGenerator(nn.Module):
  output_dim: int = 2
  hidden: tuple = (128, 128)
  batch_norm: bool = False

  @nn.compact
  def __call__(self, z, train=True):
    x = z
    for width in self.hidden:
      x = nn.Dense(width)(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                         epsilon=BN_EPSILON)(x)
      x = nn.relu(x)
    return nn.Dense(self.output_dim)(x)


class LegacyMLPDiscriminator(nn.Module):
  hidden: tuple = (128, 128)
  batch_norm: bool = False

  @nn.compact
  def __call__(self, x, train=True):
    x = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      x = nn.Dense(width)(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                         epsilon=BN_EPSILON)(x)
      x = nn.relu(x)
    return nn.Dense(1)(x)[:, 0].astype(jnp.float32)


def _upsample(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x):
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class LegacyGeneratorBlock(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x, train=True):
    def batch_norm(h):
      return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                          epsilon=BN_EPSILON)(h)

    h = _upsample(nn.relu(batch_norm(x)))
    h = nn.Conv(self.features, (3, 3), padding="SAME", kernel_init=residual_init)(h)
    h = nn.relu(batch_norm(h))
    h = nn.Conv(self.features, (3, 3), padding="SAME", kernel_init=residual_init)(h)
    shortcut = nn.Conv(self.features, (1, 1), padding="VALID",
                       kernel_init=shortcut_init)(_upsample(x))
    return h + shortcut


class LegacyResNetGenerator(nn.Module):
  features: int = 256

  @nn.compact
  def __call__(self, z, train=True):
    x = nn.Dense(4 * 4 * self.features, kernel_init=shortcut_init)(z)
    x = x.reshape(z.shape[0], 4, 4, self.features)
    for index in range(3):
      x = LegacyGeneratorBlock(self.features, name=f"GeneratorBlock_{index}")(x, train)
    x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON)(x)
    x = nn.Conv(3, (3, 3), padding="SAME", kernel_init=shortcut_init)(nn.relu(x))
    return jnp.tanh(x)


class LegacyDiscriminatorBlock(nn.Module):
  features: int
  downsample: bool = True
  optimized: bool = False
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x, train=True):
    def conv(h, kernel_size, kernel_init):
      layer = nn.Conv(self.features, kernel_size, padding="SAME", kernel_init=kernel_init)
      return layers.maybe_spectral_norm(layer, h, spectral_norm=self.spectral_norm, train=train)

    h = x if self.optimized else nn.relu(x)
    h = conv(h, (3, 3), residual_init)
    h = conv(nn.relu(h), (3, 3), residual_init)
    if self.downsample:
      h = _downsample(h)
    if self.optimized:
      shortcut = conv(_downsample(x), (1, 1), shortcut_init)
    elif self.downsample or x.shape[-1] != self.features:
      shortcut = conv(x, (1, 1), shortcut_init)
      if self.downsample:
        shortcut = _downsample(shortcut)
    else:
      shortcut = x
    return h + shortcut


class LegacyResNetDiscriminator(nn.Module):
  features: int = 128
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x, train=True):
    for index, settings in enumerate([dict(downsample=True, optimized=True),
                                      dict(downsample=True), dict(downsample=False),
                                      dict(downsample=False)]):
      x = LegacyDiscriminatorBlock(self.features, spectral_norm=self.spectral_norm,
                                   name=f"DiscriminatorBlock_{index}", **settings)(x, train)
    x = jnp.sum(nn.relu(x), axis=(1, 2))
    dense = nn.Dense(1, kernel_init=shortcut_init)
    logits = layers.maybe_spectral_norm(dense, x, spectral_norm=self.spectral_norm, train=train)
    return logits[:, 0].astype(jnp.float32)


UNCHANGED_CASES = [
    (models.MLPGenerator(hidden=(8, 8), batch_norm=True),
     LegacyMLPGenerator(hidden=(8, 8), batch_norm=True), (LATENT_DIM,)),
    (models.MLPDiscriminator(hidden=(8, 8), batch_norm=True),
     LegacyMLPDiscriminator(hidden=(8, 8), batch_norm=True), (2,)),
    (models.ResNetGenerator(features=8), LegacyResNetGenerator(features=8), (LATENT_DIM,)),
    (models.ResNetDiscriminator(features=4), LegacyResNetDiscriminator(features=4), (8, 8, 3)),
]


@pytest.mark.parametrize("current, legacy, input_shape", UNCHANGED_CASES)
def test_unconditional_networks_are_unchanged(current, legacy, input_shape):
  inputs = jax.random.uniform(make_key(50), (4, *input_shape), minval=-1.0, maxval=1.0)
  shapes, legacy_shapes = (jax.eval_shape(lambda x: module.init(make_key(51), x, train=False),
                                          inputs) for module in (current, legacy))
  # The same parameter tree, leaf for leaf and shape for shape.
  assert jax.tree_util.tree_structure(shapes) == jax.tree_util.tree_structure(legacy_shapes)
  assert jax.tree_util.tree_map(jnp.shape, shapes) == jax.tree_util.tree_map(jnp.shape,
                                                                            legacy_shapes)
  # The same outputs and statistic updates from the same variables, bit for bit.
  variables = randomised(shapes, seed=52, scale=1.0)

  @jax.jit
  def train(variables, inputs):
    return [module.apply(variables, inputs, train=True, mutable=["batch_stats"])
            for module in (current, legacy)]

  (out, updates), (legacy_out, legacy_updates) = train(variables, inputs)
  np.testing.assert_array_equal(out, legacy_out)
  jax.tree_util.tree_map(np.testing.assert_array_equal, updates, legacy_updates)


@pytest.mark.parametrize("current, legacy, input_shape", UNCHANGED_CASES)
def test_unconditional_networks_initialise_as_before(current, legacy, input_shape):
  if isinstance(current, models.ResNetDiscriminator):
    # The spectral-norm wrappers' initialisation takes seconds to compile; the layers'
    # initialisers are the same with and without them.
    current, legacy = current.clone(spectral_norm=False), legacy.clone(spectral_norm=False)
  inputs = jnp.zeros((4, *input_shape))
  # The same numbers for the same key, bit for bit.
  variables, legacy_variables = jax.jit(lambda x: [
      module.init(make_key(53), x, train=False) for module in (current, legacy)])(inputs)
  jax.tree_util.tree_map(np.testing.assert_array_equal, variables, legacy_variables)
  assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(legacy_variables)
