"""Tests of BigGAN (ganjax.models.biggan) and of its orthogonal regulariser
(ganjax.regularizers.orthogonal_penalty).

Expected values come from the architecture lists of BigGAN-PyTorch's G_arch / D_arch for
resolution 32 (counted by hand here) and from float64 numpy.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import errors
from ganjax import models
from ganjax import regularizers
from test_conditional_models import assert_close, make_key, numpy_variables

CH, CLASSES, SHARED, LATENT = 4, 10, 8, 16  # blocks of 4 * CH = 16 channels, chunks of 4
BATCH = 2


def generator(**kwargs):
  return models.get_generator("biggan", **{"ch": CH, "num_classes": CLASSES,
                                           "shared_dim": SHARED, **kwargs})


def discriminator(**kwargs):
  return models.get_discriminator("biggan", **{"ch": CH, "num_classes": CLASSES, **kwargs})


def labels_for(batch=BATCH):
  return jnp.arange(batch, dtype=jnp.int32) % CLASSES


def abstract_variables(module, inputs, labels):
  args = (inputs,) if labels is None else (inputs, labels)
  return jax.eval_shape(lambda *a: module.init(make_key(0), *a, train=False), *args)


def count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree))


# Shapes.

@pytest.mark.parametrize("num_classes", [CLASSES, 0])
def test_generator_makes_32x32_images(num_classes):
  module = generator(num_classes=num_classes)
  labels = labels_for() if num_classes else None
  z = jnp.zeros((BATCH, LATENT))
  variables = abstract_variables(module, z, labels)
  args = (z,) if labels is None else (z, labels)
  images, _ = jax.eval_shape(
      lambda v, *a: module.apply(v, *a, train=True, mutable=["batch_stats"]), variables, *args)
  assert images.shape == (BATCH, 32, 32, 3) and images.dtype == jnp.float32


@pytest.mark.parametrize("conditioning, heads", [("projection", None), ("acgan", {"classes"}),
                                                 ("tac", {"classes", "twin"})])
def test_discriminator_outputs(conditioning, heads):
  module = discriminator(conditioning=conditioning)
  x = jnp.zeros((BATCH, 32, 32, 3))
  variables = abstract_variables(module, x, labels_for())
  output, _ = jax.eval_shape(lambda v, x, y: module.apply(v, x, y, train=True,
                                                          mutable=["batch_stats"]),
                             variables, x, labels_for())
  logits = output if heads is None else output[0]
  assert logits.shape == (BATCH,) and logits.dtype == jnp.float32
  if heads is not None:
    assert set(output[1]) == heads
    for head in heads:
      assert output[1][head].shape == (BATCH, CLASSES)
  unconditional = discriminator(num_classes=0)
  logits, _ = jax.eval_shape(lambda v, x: unconditional.apply(v, x, train=True,
                                                              mutable=["batch_stats"]),
                             abstract_variables(unconditional, x, None), x)
  assert logits.shape == (BATCH,)


# Parameter counts from the architecture lists.

def generator_count(ch, classes, shared, latent, attention=True):
  """G_arch[32]: Linear(chunk -> 4*4*4ch), three GBlocks 4ch -> 4ch (two 3x3 convs and a 1x1
  shortcut, with biases; two conditional BNs, each two bias-free linears of the conditioning
  vector (shared + chunk) to 4ch), attention at 16x16 (theta, phi 4ch -> ch/2, g 4ch -> 2ch,
  o 2ch -> 4ch, no biases, and the gain), output BN (gain, bias) and conv 4ch -> 3."""
  c, chunk = 4 * ch, latent // 4
  block = 2 * (9 * c * c + c) + (c * c + c) + 2 * 2 * (shared + chunk) * c
  attention_count = (2 * c * (c // 8) + 2 * c * (c // 2) + 1) if attention else 0
  return (classes * shared + chunk * 16 * c + 16 * c + 3 * block + attention_count
          + 2 * c + 9 * c * 3 + 3)


def discriminator_count(ch, classes, attention=True):
  """D_arch[32], wide: DBlock 3 -> 4ch (3x3 3 -> 4ch, 3x3 4ch -> 4ch, 1x1 shortcut 3 -> 4ch),
  DBlock 4ch -> 4ch downsampling (two 3x3, 1x1 shortcut), two DBlocks 4ch -> 4ch (two 3x3,
  identity shortcut), attention after the first, Linear(4ch -> 1), embedding (classes, 4ch)."""
  c = 4 * ch
  conv3 = 9 * c * c + c
  first = (9 * 3 * c + c) + conv3 + (3 * c + c)
  second = 2 * conv3 + (c * c + c)
  plain = 2 * conv3
  attention_count = (2 * c * (c // 8) + 2 * c * (c // 2) + 1) if attention else 0
  return first + second + 2 * plain + attention_count + (c + 1) + classes * c


def test_parameter_counts_follow_the_architecture_lists():
  # The small test width, by hand: 80 + 1280 + 3 * 5680 + 321 + 32 + 435 (G) and
  # 2832 + 4912 + 2 * 4640 + 321 + 17 + 160 (D).
  assert generator_count(CH, CLASSES, SHARED, LATENT) == 19_188
  assert discriminator_count(CH, CLASSES) == 17_522
  cases = [(generator(), jnp.zeros((BATCH, LATENT)), generator_count(CH, CLASSES, SHARED, LATENT)),
           (discriminator(), jnp.zeros((BATCH, 32, 32, 3)), discriminator_count(CH, CLASSES)),
           # The CIFAR defaults: ch 64, z 128, shared 128, attention at 16.
           (models.BigGANGenerator(num_classes=10), jnp.zeros((BATCH, 128)),
            generator_count(64, 10, 128, 128)),
           (models.BigGANDiscriminator(num_classes=10), jnp.zeros((BATCH, 32, 32, 3)),
            discriminator_count(64, 10)),
           (generator(attention_resolution=0), jnp.zeros((BATCH, LATENT)),
            generator_count(CH, CLASSES, SHARED, LATENT, attention=False))]
  for module, inputs, expected in cases:
    assert count(abstract_variables(module, inputs, labels_for())["params"]) == expected


def test_unconditional_generator_has_no_embedding_no_split_and_plain_batch_norm():
  module = generator(num_classes=0)
  z = jnp.zeros((BATCH, 10))  # not divisible by 4: z is not split
  params = abstract_variables(module, z, None)["params"]
  assert "shared_embedding" not in params
  assert params["Dense_0"]["kernel"].shape == (10, 16 * 4 * CH)
  for block in range(3):
    for norm in ("BatchNorm_0", "BatchNorm_1"):
      assert set(params[f"GeneratorBlock_{block}"][norm]) == {"scale", "bias"}
  c = 4 * CH
  block = 2 * (9 * c * c + c) + (c * c + c) + 2 * 2 * c
  attention = 2 * c * (c // 8) + 2 * c * (c // 2) + 1
  assert count(params) == 10 * 16 * c + 16 * c + 3 * block + attention + 2 * c + 9 * c * 3 + 3


# Hierarchical z and the shared embedding.

def test_each_z_chunk_reaches_only_its_own_layer():
  # Without spectral norm and attention, which do not route z and double the compile time
  # (test_conditional_models.py checks the spectrally normalised conditional BN).
  module = generator(spectral_norm=False, attention_resolution=0)
  labels = labels_for()
  z = jax.random.normal(make_key(1), (BATCH, LATENT))
  chunk = LATENT // 4
  # z with chunk k redrawn, for k = 0 (the first layer's) .. 3 (the last block's).
  variants = jnp.stack([z] + [z.at[:, k * chunk:(k + 1) * chunk].set(
      jax.random.normal(make_key(10 + k), (BATCH, chunk))) for k in range(4)])

  variables = numpy_variables(module, z, labels, seed=2, scale=1.0)

  @jax.jit
  def run(variables, variants):
    def apply(z):
      images, state = module.apply(variables, z, labels, train=False,
                                   capture_intermediates=True, mutable=["intermediates"])
      return images, state["intermediates"]

    return jax.vmap(apply)(variants)

  images, intermediates = run(variables, variants)
  # Eval mode: every example is computed on its own, so an unchanged input gives the
  # identical float32 output, and any change shows.
  layers = ["Dense_0"] + [f"GeneratorBlock_{block}" for block in range(3)]
  for k in range(4):
    for index, layer in enumerate(layers):
      base, changed = (np.asarray(intermediates[layer]["__call__"][0][i]) for i in (0, k + 1))
      # Chunk 0 feeds the first layer; chunk k >= 1 feeds block k - 1 (layer k) and so
      # everything after it.
      if index >= k:
        assert np.abs(changed - base).max() > 1e-3, (k, layer)
      else:
        np.testing.assert_array_equal(changed, base, err_msg=f"chunk {k}, {layer}")
    assert np.abs(np.asarray(images[k + 1]) - np.asarray(images[0])).max() > 1e-3

  # Block b's conditional BN maps concat(shared[y], chunk b + 1), in that order, to its gain.
  params = variables["params"]
  shared = np.asarray(params["shared_embedding"]["embedding"], np.float64)[np.asarray(labels)]
  assert shared.shape == (BATCH, SHARED)
  z = np.asarray(z, np.float64)
  for block in range(3):
    scope = f"GeneratorBlock_{block}"
    for norm in ("VectorConditionalBatchNorm_0", "VectorConditionalBatchNorm_1"):
      kernel = np.asarray(params[scope][norm]["gain"]["kernel"], np.float64)
      condition = np.concatenate([shared, z[:, (block + 1) * chunk:(block + 2) * chunk]], 1)
      gain = np.asarray(intermediates[scope][norm]["gain"]["__call__"][0][0], np.float64)
      # float32 sums of 12 products against float64: measured 1e-7 of the largest.
      assert_close(gain, condition @ kernel, rtol=1e-5)


def test_latent_dimension_must_split_into_the_chunks():
  module = generator()
  with pytest.raises(ValueError, match=r"^BigGANGenerator splits z into 4 equal chunks \(the "
                                       r"first layer's and one per block\), so its dimension "
                                       r"must be divisible by 4; got 10") as error:
    module.init(make_key(0), jnp.zeros((BATCH, 10)), labels_for(), train=False)
  assert "\n" not in str(error.value)


# Self-attention at 16x16.

@pytest.mark.parametrize("player", ["generator", "discriminator"])
def test_attention_sits_after_the_16x16_block(player):
  if player == "generator":
    module, inputs, block = generator(), jax.random.normal(make_key(3), (BATCH, LATENT)), (
        "GeneratorBlock_1")
  else:
    module, inputs, block = discriminator(), jax.random.normal(make_key(4), (BATCH, 32, 32, 3)), (
        "DiscriminatorBlock_0")
  variables = numpy_variables(module, inputs, labels_for(), seed=5, scale=1.0)
  params = dict(variables["params"])
  params["SelfAttention_0"] = {**params["SelfAttention_0"], "gamma": jnp.zeros(())}
  variables = {**variables, "params": params}  # gamma = 0, as initialised
  _, state = jax.jit(lambda v, x: module.apply(
      v, x, labels_for(), train=False, capture_intermediates=True, mutable=["intermediates"]))(
          variables, inputs)
  steps = state["intermediates"]
  c = 4 * CH
  assert [name for name in params if name.startswith("SelfAttention")] == ["SelfAttention_0"]
  assert jax.tree_util.tree_map(jnp.shape, params["SelfAttention_0"]) == {
      "theta": {"kernel": (1, 1, c, c // 8)}, "phi": {"kernel": (1, 1, c, c // 8)},
      "g": {"kernel": (1, 1, c, c // 2)}, "o": {"kernel": (1, 1, c // 2, c)}, "gamma": ()}
  attended = steps["SelfAttention_0"]["__call__"][0]
  assert attended.shape == (BATCH, 16, 16, c)
  # With gamma 0 the attention returns its input: the output of the 16x16 block.
  np.testing.assert_array_equal(attended, steps[block]["__call__"][0])

  without = module.clone(attention_resolution=0)
  assert "SelfAttention_0" not in abstract_variables(without, inputs, labels_for())["params"]


def test_attention_resolution_is_a_choice_of_block():
  late = generator(attention_resolution=32)
  z = jnp.zeros((BATCH, LATENT))
  _, state = jax.eval_shape(lambda v, z: late.apply(
      v, z, labels_for(), train=False, capture_intermediates=True, mutable=["intermediates"]),
      abstract_variables(late, z, labels_for()), z)
  assert state["intermediates"]["SelfAttention_0"]["__call__"][0].shape == (BATCH, 32, 32, 4 * CH)
  with pytest.raises(errors.ConfigError, match=r"^BigGANGenerator attention_resolution must be "
                                               r"0 \(no attention\) or one of 8, 16, 32, got 4$"):
    generator(attention_resolution=4)
  with pytest.raises(errors.ConfigError, match=r"^BigGANDiscriminator attention_resolution must "
                                               r"be 0 \(no attention\) or one of 8, 16, got 32$"):
    discriminator(attention_resolution=32)


# Spectral normalisation.

def _normalised_layers(batch_stats):
  """The parameter paths ('A/B/kernel') that have a power-iteration vector in batch_stats."""
  found = set()
  for path, _ in jax.tree_util.tree_leaves_with_path(batch_stats):
    *scope, variable = [entry.key for entry in path]
    if variable.endswith("/u"):
      assert scope[-1].startswith("SpectralNorm_")
      found.add("/".join(scope[:-1] + [variable[:-len("/u")]]))
  return found


def _matrices(params):
  return {"/".join(entry.key for entry in path) for path, leaf in
          jax.tree_util.tree_leaves_with_path(params) if len(leaf.shape) >= 2}


@pytest.mark.parametrize("player", ["generator", "discriminator"])
def test_every_weight_matrix_is_spectrally_normalised_but_the_shared_embedding(player):
  if player == "generator":
    module, inputs = generator(), jnp.zeros((BATCH, LATENT))
  else:
    module, inputs = discriminator(), jnp.zeros((BATCH, 32, 32, 3))
  variables = abstract_variables(module, inputs, labels_for())
  matrices = _matrices(variables["params"])
  normalised = _normalised_layers(variables["batch_stats"])
  unnormalised = {"shared_embedding/embedding"} if player == "generator" else set()
  assert normalised == matrices - unnormalised
  assert unnormalised <= matrices
  if player == "discriminator":
    assert "projection/embed/embedding" in normalised  # BigGAN-PyTorch's SNEmbedding
  # The count: G has 1 linear, 3 x (3 convs + 4 BN linears), 4 attention convs, 1 output
  # conv; D has 3 + 3 + 2 + 2 convs, 4 attention convs, 1 linear, 1 embedding.
  assert len(normalised) == (1 + 3 * 7 + 4 + 1 if player == "generator" else 10 + 4 + 2)

  plain = module.clone(spectral_norm=False)
  variables = abstract_variables(plain, inputs, labels_for())
  assert not _normalised_layers(variables.get("batch_stats", {}))
  assert _matrices(variables["params"]) == matrices


# Orthogonal regularisation.

def _tree(seed):
  rng = np.random.default_rng(seed)
  return {"Dense_0": {"kernel": rng.normal(size=(5, 3)), "bias": rng.normal(size=3)},
          "Block": {"Conv_0": {"kernel": rng.normal(size=(3, 3, 2, 4))}},
          "embed": {"embedding": rng.normal(size=(6, 4))},
          "norm": {"gamma": rng.normal(size=(3, 5)), "scale": rng.normal(size=5)},
          "SelfAttention_0": {"gamma": np.float32(rng.normal())},
          "shared_embedding": {"embedding": rng.normal(size=(4, 2))}}


def _np_matrix(path_names, leaf):
  """BigGAN-PyTorch's view (rows = output units or classes) of a ganjax leaf."""
  if path_names[-1] == "kernel":
    return leaf.reshape(-1, leaf.shape[-1]).T
  return leaf.reshape(leaf.shape[0], -1)


def _np_penalty(matrix):
  gram = matrix @ matrix.T
  return np.sum((gram * (1.0 - np.eye(len(gram)))) ** 2)


MATRIX_LEAVES = [("Dense_0", "kernel"), ("Block", "Conv_0", "kernel"), ("embed", "embedding"),
                 ("norm", "gamma")]


def _leaf(tree, path):
  for key in path:
    tree = tree[key]
  return tree


def test_orthogonal_penalty_is_the_sum_of_squared_off_diagonal_gram_entries():
  tree = _tree(0)
  params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), tree)
  terms = {path: _np_penalty(_np_matrix(path, np.asarray(_leaf(params, path), np.float64)))
           for path in MATRIX_LEAVES}
  # float32 Gram matrices of up to 18 products, squared and summed: measured 2e-7 relative.
  np.testing.assert_allclose(regularizers.orthogonal_penalty(params), sum(terms.values()),
                             rtol=1e-5)
  np.testing.assert_allclose(jax.jit(regularizers.orthogonal_penalty)(params),
                             sum(terms.values()), rtol=1e-5)
  # The views matter: the transposed ones give other numbers for these leaves.
  for path in MATRIX_LEAVES:
    leaf = np.asarray(_leaf(params, path), np.float64)
    assert not np.isclose(_np_penalty(_np_matrix(path, leaf).T), terms[path], rtol=1e-3)

  # skip: the shared embedding is out by default, in with skip=(), and any named scope can go.
  shared = _np_penalty(np.asarray(params["shared_embedding"]["embedding"], np.float64))
  assert shared > 0.1
  np.testing.assert_allclose(regularizers.orthogonal_penalty(params, skip=()),
                             sum(terms.values()) + shared, rtol=1e-5)
  np.testing.assert_allclose(
      regularizers.orthogonal_penalty(params, skip=("shared_embedding", "Block")),
      sum(terms.values()) - terms[("Block", "Conv_0", "kernel")], rtol=1e-5)
  # A skip name must be a whole key: "Conv" names no key here.
  np.testing.assert_allclose(regularizers.orthogonal_penalty(params, skip=("Conv",)),
                             sum(terms.values()) + shared, rtol=1e-5)


def test_orthogonal_penalty_gradient_is_biggan_pytorchs_at_half_the_strength():
  params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), _tree(1))
  strength = 1e-4  # BigGAN-PyTorch's --G_ortho
  grads = jax.grad(lambda p: strength / 2 * regularizers.orthogonal_penalty(p))(params)
  for path in MATRIX_LEAVES:
    leaf = np.asarray(_leaf(params, path), np.float64)
    w = _np_matrix(path, leaf)
    # utils.ortho: strength * 2 * ((W W^T) * (1 - I)) W, in the torch layout of W.
    torch_grad = strength * 2 * ((w @ w.T) * (1.0 - np.eye(len(w)))) @ w
    if path[-1] == "kernel":
      expected = torch_grad.T.reshape(leaf.shape)
    else:
      expected = torch_grad.reshape(leaf.shape)
    # float32 against float64: measured 3e-7 of the largest entry.
    assert_close(_leaf(grads, path), expected, rtol=1e-5)
  for path in (("Dense_0", "bias"), ("norm", "scale"), ("SelfAttention_0", "gamma"),
               ("shared_embedding", "embedding")):
    np.testing.assert_array_equal(_leaf(grads, path), 0.0)


def test_orthogonal_penalty_of_biggan_leaves_out_the_shared_embedding():
  params = numpy_variables(generator(), jnp.zeros((BATCH, LATENT)), labels_for(),
                           seed=7)["params"]
  grads = jax.jit(jax.grad(regularizers.orthogonal_penalty))(params)
  np.testing.assert_array_equal(grads["shared_embedding"]["embedding"], 0.0)
  kernel_grads = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(grads)
                  if path[-1].key == "kernel"]
  assert len(kernel_grads) == 1 + 3 * 7 + 4 + 1
  assert all(np.abs(np.asarray(leaf)).max() > 0 for leaf in kernel_grads)
