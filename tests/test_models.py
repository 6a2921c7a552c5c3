"""Tests of ganjax.models: shapes, parameter counts, initialisation, BatchNorm, spectral norm.

Most time here is XLA compilation, so shapes are checked with `jax.eval_shape` (tracing only)
and each test compiles as few programs as it can.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def random_variables(module, inputs, seed=0):
  """Variables of the module's shapes filled from numpy, without compiling its initialiser.

  Kernels are N(0, 1/fan_in), biases small, BatchNorm scales and variances 1, means 0, and
  spectral-norm vectors N(0, 1) with sigma 1: what the BatchNorm and spectral-norm tests need.
  """
  shapes = jax.eval_shape(lambda x: module.init(make_key(0), x, train=False), inputs)
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = path[-1].key
    if name == "kernel":
      values = rng.normal(size=leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))
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
  x = np.linspace(-3.0, 3.0, 13, dtype=np.float32)
  for name in layers.ACTIVATIONS:
    y = layers.get_activation(name)(x)
    assert y.shape == x.shape and np.all(np.isfinite(y)), name
  np.testing.assert_allclose(layers.get_activation("leaky_relu")(jnp.array([-1.0, 2.0])),
                             [-0.2, 2.0])
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


def test_spectral_norm_layers_have_unit_spectral_norm():
  probe = _SpectralNormProbe()
  x = jax.random.normal(make_key(6), (2, 4, 4, 3))

  @jax.jit
  def init_and_converge(x):
    initial = probe.init(make_key(7), x, train=False)
    variables = {"params": _scale_kernels(initial["params"], 5.0),
                 "batch_stats": initial["batch_stats"]}
    variables = _power_iterate(probe, variables, x, steps=50)
    return initial, variables["params"], probe.apply(variables, x, train=False)

  initial, params, (dense_out, conv_out) = init_and_converge(x)
  dense_kernel = np.asarray(params["Dense_0"]["kernel"])
  dense_scale = _largest_singular_value(dense_kernel)
  expected_dense = (np.asarray(x).reshape(2, -1) @ (dense_kernel / dense_scale)
                    + np.asarray(params["Dense_0"]["bias"]))
  np.testing.assert_allclose(dense_out, expected_dense, rtol=1e-2, atol=1e-3)

  conv_kernel = np.asarray(params["Conv_0"]["kernel"])
  conv_scale = _largest_singular_value(conv_kernel)
  normalised = {"kernel": conv_kernel / conv_scale, "bias": params["Conv_0"]["bias"]}
  expected_conv = nn.Conv(5, (3, 3)).apply({"params": normalised}, x)
  np.testing.assert_allclose(conv_out, expected_conv, rtol=1e-2, atol=1e-3)
  # The raw kernels are far from unit norm, so the comparisons above see the normalisation.
  assert dense_scale > 2.0 and conv_scale > 2.0

  # Flax's nn.SpectralNorm writes the normalised kernel W / sigma into 'params' at init (sigma
  # from one power-iteration step); the layer's output does not depend on the kernel's scale.
  for layer, norm_module in (("Dense_0", "SpectralNorm_0"), ("Conv_0", "SpectralNorm_1")):
    assert float(initial["batch_stats"][norm_module][f"{layer}/kernel/sigma"]) == 1.0
    assert 0.9 < _largest_singular_value(initial["params"][layer]["kernel"]) < 1.5


@pytest.fixture(scope="module")
def resnet_critic():
  discriminator = models.ResNetDiscriminator(features=8)
  images = jax.random.uniform(make_key(8), (2, 32, 32, 3), minval=-1, maxval=1)
  return discriminator, images, random_variables(discriminator, images, seed=9)


def test_resnet_discriminator_weights_converge_to_unit_spectral_norm(resnet_critic):
  discriminator, images, initial = resnet_critic
  initial = {"params": _scale_kernels(initial["params"], 3.0),
             "batch_stats": initial["batch_stats"]}
  variables = jax.jit(lambda v, x: _power_iterate(discriminator, v, x, steps=60))(initial, images)

  sigmas = {}
  for path, sigma in jax.tree_util.tree_leaves_with_path(variables["batch_stats"]):
    *module_path, variable = [entry.key for entry in path]
    if not variable.endswith("/kernel/sigma"):
      continue
    layer_name = variable.split("/")[0]
    assert module_path[-1].startswith("SpectralNorm_")
    layer_params = variables["params"]
    for key in module_path[:-1] + [layer_name]:
      layer_params = layer_params[key]
    sigmas["/".join(module_path[:-1] + [layer_name])] = (float(sigma), layer_params["kernel"])

  # Optimized and down blocks: two convs and a 1x1 shortcut each; plain blocks: two convs each;
  # then the Dense layer.
  assert len(sigmas) == 3 + 3 + 2 + 2 + 1
  for name, (sigma, kernel) in sigmas.items():
    assert sigma > 2.0, name
    normalised_norm = _largest_singular_value(kernel) / sigma
    assert abs(normalised_norm - 1.0) < 0.05, (name, normalised_norm)


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
  with pytest.raises(ValueError,
                     match=r"^unknown generator 'foo'; valid names: dcgan, mlp, resnet$"):
    models.get_generator("foo")
  with pytest.raises(ValueError,
                     match=r"^unknown discriminator 'bar'; valid names: dcgan, mlp, resnet$"):
    models.get_discriminator("bar")


def test_registry_rejects_unknown_fields():
  with pytest.raises(ValueError, match=r"unknown field 'widht'.*valid fields: activation, "
                                       r"axis_name, batch_norm, dtype, hidden, output_dim$"):
    models.get_generator("mlp", widht=3)
  with pytest.raises(ValueError, match=r"unknown field 'name'.*valid fields: axis_name, "
                                       r"dtype, features, pack, spectral_norm$"):
    models.get_discriminator("resnet", name="critic")
  with pytest.raises(ValueError, match=r"unsupported DCGAN image_shape \(48, 48, 3\); "
                                       r"supported: \(28, 28, C\), \(32, 32, C\), \(64, 64, C\)"):
    models.get_generator("dcgan", image_shape=(48, 48, 3))


def test_registry_builds_the_registered_classes():
  assert isinstance(models.get_generator("resnet", features=8), models.ResNetGenerator)
  assert models.get_discriminator("dcgan", base_features=8).base_features == 8
  assert set(models.GENERATORS) == set(models.DISCRIMINATORS) == {"mlp", "dcgan", "resnet"}


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
  with pytest.raises(ValueError, match=r"^pack must be a positive integer, got 0$"):
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


def test_bfloat16_compute_for_dcgan32():
  generator = models.DCGANGenerator(image_shape=(32, 32, 3), base_features=4,
                                    dtype=jnp.bfloat16)
  discriminator = models.DCGANDiscriminator(image_shape=(32, 32, 3), base_features=4,
                                            dtype=jnp.bfloat16)
  z = latents()
  images_in = jnp.zeros((BATCH, 32, 32, 3), jnp.bfloat16)
  for module, inputs in ((generator, z), (discriminator, images_in)):
    for leaf in jax.tree_util.tree_leaves(abstract_output(module, inputs)[0]):
      assert leaf.dtype == jnp.float32

  @jax.jit
  def generate_and_score(g_variables, d_variables, z):
    images, _ = generator.apply(g_variables, z, train=True, mutable=["batch_stats"])
    logits, _ = discriminator.apply(d_variables, images, train=True, mutable=["batch_stats"])
    return images, logits

  images, logits = generate_and_score(random_variables(generator, z),
                                      random_variables(discriminator, images_in), z)
  assert images.dtype == jnp.bfloat16 and images.shape == (BATCH, 32, 32, 3)
  assert np.all(np.abs(np.asarray(images, np.float32)) <= 1.0)
  assert logits.dtype == jnp.float32 and logits.shape == (BATCH,)
  assert np.all(np.isfinite(logits))


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
