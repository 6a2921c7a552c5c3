"""The class-conditional update: labels through d_step/g_step/train_step, fake labels drawn per
example on the device, auxiliary classifiers, penalties at fixed labels, devices and resume.

The players here are small modules of this file, so that the update is tested apart from the
library's conditional models (tests/test_conditional_models.py). Runs with 4 fake CPU devices
(tests/conftest.py).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax import losses
from ganjax import metrics
from ganjax import regularizers
from ganjax import train
from ganjax.data import toy

from _trees import assert_trees_close, copy

NUM_CLASSES = 8
NUM_DEVICES = 4


class Generator(nn.Module):
  """z (and, unless `ignore_labels`, a one-hot label) -> a 2-D point."""
  num_classes: int = 0
  ignore_labels: bool = False
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z, labels=None, train=True):
    h = z
    if labels is not None and not self.ignore_labels:
      h = jnp.concatenate([z, jax.nn.one_hot(labels, self.num_classes)], -1)
    h = nn.tanh(nn.Dense(32)(h))
    return nn.Dense(2)(h)


class Discriminator(nn.Module):
  """x -> logits, with a projection on a class embedding (`conditioning='projection'`), a class
  head ('acgan') or two ('tac'); `ignore_labels` makes an unconditional D that takes labels."""
  num_classes: int = 0
  conditioning: str = "projection"
  ignore_labels: bool = False

  @nn.compact
  def __call__(self, x, labels=None, train=True):
    phi = nn.tanh(nn.Dense(32)(x))
    logits = nn.Dense(1)(phi)[:, 0]
    if self.ignore_labels or labels is None and self.conditioning == "projection":
      return logits
    if self.conditioning == "projection":
      embedding = nn.Embed(self.num_classes, 32)(labels)
      return logits + jnp.sum(embedding * phi, -1)
    heads = {"classes": nn.Dense(self.num_classes, name="classes")(phi)}
    if self.conditioning == "tac":
      heads["twin"] = nn.Dense(self.num_classes, name="twin")(phi)
    return logits, heads


def make_state(num_classes=NUM_CLASSES, conditioning="projection", ignore_labels=False,
               tx=None, seed=0, **spec_kwargs):
  spec_kwargs = {"latent_dim": 4, "batch_size": 16, "data": toy.ring(), **spec_kwargs}
  classifier = conditioning if conditioning in losses.CLASSIFIERS and num_classes else ""
  spec = train.GANSpec(num_classes=num_classes, classifier=classifier, **spec_kwargs)
  generator = Generator(num_classes, ignore_labels=ignore_labels)
  discriminator = Discriminator(num_classes, conditioning, ignore_labels=ignore_labels)
  tx = tx or optax.sgd(0.1)
  return train.create_state(generator, discriminator, tx, tx, spec, (2,), seed)


def assert_trees_equal(actual, expected):
  assert_trees_close(actual, expected, rtol=0, atol=0)


def test_toy_labels_are_the_components_and_leave_the_samples_unchanged():
  ring = toy.ring()
  key = jax.random.PRNGKey(3)
  samples, labels = ring.sample_with_labels(key, 4000)
  np.testing.assert_array_equal(samples, ring.sample(key, 4000))
  # Each sample lies within 6 sigma of the mode its label names (the probability of a normal
  # 2-D sample beyond 6 sigma is exp(-18), never reached in 4000 draws).
  distances = np.linalg.norm(np.asarray(samples) - np.asarray(ring.means)[labels], axis=1)
  assert distances.max() < 6 * ring.stds[0]
  # The components are uniform: each count is within 5 binomial standard deviations of 500.
  counts = np.bincount(labels, minlength=8)
  assert np.all(np.abs(counts - 500) < 5 * np.sqrt(4000 * (1 / 8) * (7 / 8)))


@pytest.mark.parametrize("reuse_fakes", [False, True])
def test_players_that_ignore_labels_follow_the_unconditional_numbers(reuse_fakes):
  """The labels come from their own stream: with players that take labels but ignore them, a
  conditional run is the unconditional run bit for bit (same latents, same real samples)."""
  unconditional = make_state(0, reuse_fakes=reuse_fakes)
  conditional = make_state(ignore_labels=True, reuse_fakes=reuse_fakes)
  for _ in range(3):
    unconditional, u_metrics = train.train_step(unconditional, None)
    conditional, c_metrics = train.train_step(conditional, None)
  assert_trees_equal(conditional.g_params, unconditional.g_params)
  assert_trees_equal(conditional.d_params, unconditional.d_params)
  assert_trees_equal(c_metrics, u_metrics)


def test_labels_reach_both_players():
  """With players that use their labels, a different draw of labels gives different numbers,
  and G's output for a fixed z depends on the label."""
  state = make_state()
  z = jnp.zeros((2, 4))
  outputs = train.generate(state, z, jnp.array([0, 5]))
  assert not np.allclose(outputs[0], outputs[1])
  np.testing.assert_array_equal(train.generate(state, z), train.generate(state, z,
                                                                          jnp.array([0, 1])))
  with pytest.raises(ValueError, match="unconditional"):
    train.generate(make_state(0), z, jnp.array([0, 1]))


def test_fake_labels_are_uniform_or_follow_the_weights():
  state = make_state(batch_size=4000)
  key = jax.random.PRNGKey(0)
  counts = np.bincount(train._fake_labels(state, key, None, 1), minlength=NUM_CLASSES)
  # Within 5 binomial standard deviations of 4000 / 8.
  assert np.all(np.abs(counts - 500) < 5 * np.sqrt(4000 * (1 / 8) * (7 / 8)))
  weights = (0.5, 0.25, 0.125, 0.125, 0.0, 0.0, 0.0, 0.0)
  state = make_state(batch_size=4000, fake_label_weights=weights)
  counts = np.bincount(train._fake_labels(state, key, None, 1), minlength=NUM_CLASSES)
  expected = 4000 * np.asarray(weights)
  assert np.all(np.abs(counts - expected) <= 5 * np.sqrt(expected * (1 - np.asarray(weights))))
  assert counts[4:].sum() == 0


def test_fake_labels_of_a_device_are_its_slice_of_the_global_batch():
  """Label i of the global batch comes from a key folded with i: device d's labels are the
  global draw's slice d, whatever the device count."""
  state = make_state(batch_size=16)
  key = jax.random.PRNGKey(5)
  global_labels = np.asarray(train._fake_labels(state, key, None, 1))
  per_device = jax.vmap(lambda _: train._fake_labels(state, key, "batch", NUM_DEVICES),
                        axis_name="batch")(jnp.arange(NUM_DEVICES))
  np.testing.assert_array_equal(np.asarray(per_device).reshape(-1), global_labels)


@pytest.mark.parametrize("parallel,reuse_fakes", [("pmap", False), ("shard_map", False),
                                                   ("shard_map", True)])
def test_conditional_step_on_devices_equals_one_device(parallel, reuse_fakes):
  devices = jax.devices()[:NUM_DEVICES]
  state = make_state(reuse_fakes=reuse_fakes)
  single, single_metrics = train.train_step(copy(state), None)
  step = train.parallelize(train.adversarial_update, parallel, devices)
  mapped, mapped_metrics = step(train.replicate(copy(state), parallel, devices), None)
  # The mean over devices of per-device means sums in another order than one device's mean:
  # float32 rounding, relative 1e-6 per operation.
  assert_trees_close(train.unreplicate(mapped, parallel), single, rtol=1e-4, atol=1e-6)
  assert_trees_close(train.unreplicate(mapped_metrics, parallel), single_metrics, rtol=1e-4,
                     atol=1e-6)


@pytest.mark.parametrize("parallel", ["pmap", "shard_map"])
def test_host_batches_with_labels_on_devices_equal_one_device(parallel):
  devices = jax.devices()[:NUM_DEVICES]
  state = make_state(data=None, n_critic=2)
  key = jax.random.PRNGKey(7)
  images = jax.random.normal(key, (2, 16, 2))
  labels = jax.random.randint(jax.random.fold_in(key, 1), (2, 16), 0, NUM_CLASSES)
  single, single_metrics = train.train_step(copy(state), (images, labels))
  step = train.parallelize(train.adversarial_update, parallel, devices, batch_axis=1)
  batch = train.shard_batch((images, labels), parallel, devices, batch_axis=1)
  mapped, mapped_metrics = step(train.replicate(copy(state), parallel, devices), batch)
  # As above: float32 rounding of the cross-device mean.
  assert_trees_close(train.unreplicate(mapped, parallel), single, rtol=1e-4, atol=1e-6)
  assert_trees_close(train.unreplicate(mapped_metrics, parallel), single_metrics, rtol=1e-4,
                     atol=1e-6)
  with pytest.raises(ValueError, match="labels"):
    train.train_step(copy(state), images)


def _hand_discriminator(state, x, labels):
  output = state.discriminator.apply({"params": state.d_params}, x, labels)
  return train.split_output(output)


def _real_and_fake(state):
  """The (examples, labels) pairs d_step uses, rebuilt from the randomness scheme."""
  key = train._discriminator_key(state)
  real = train._real_batch(state, None, key, None, 1)
  z = train._latents(state, key, None, 1)
  fake_labels = train._fake_labels(state, key, None, 1)
  fake = state.generator.apply({"params": state.g_params}, z, fake_labels)
  return real, (fake, fake_labels)


def _numpy_cross_entropy(logits, labels):
  logits = np.asarray(logits, np.float64)
  log_p = logits - logits.max(-1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
  return -np.mean(log_p[np.arange(len(labels)), np.asarray(labels)])


@pytest.mark.parametrize("conditioning", ["acgan", "tac"])
def test_auxiliary_classifier_losses_of_the_step_equal_numpy(conditioning):
  state = make_state(conditioning=conditioning, classifier_weight=0.7)
  (real, real_labels), (fake, fake_labels) = _real_and_fake(state)
  real_logits, real_heads = _hand_discriminator(state, real, real_labels)
  fake_logits, fake_heads = _hand_discriminator(state, fake, fake_labels)
  if conditioning == "acgan":
    expected = (_numpy_cross_entropy(real_heads["classes"], real_labels)
                + _numpy_cross_entropy(fake_heads["classes"], fake_labels))
  else:
    expected = (_numpy_cross_entropy(real_heads["classes"], real_labels)
                + _numpy_cross_entropy(fake_heads["twin"], fake_labels))
  adversarial = float(losses.discriminator_loss(real_logits, fake_logits))
  _, d_metrics = train.d_step(copy(state), None)
  # float32 network outputs against a float64 cross-entropy: relative 1e-5.
  np.testing.assert_allclose(d_metrics["d_classifier"], expected, rtol=1e-5)
  np.testing.assert_allclose(d_metrics["d_total"], adversarial + 0.7 * expected, rtol=1e-5)
  accuracy = np.mean(np.argmax(real_heads["classes"], -1) == np.asarray(real_labels))
  np.testing.assert_allclose(d_metrics["d_class_accuracy"], accuracy)

  g_key = train._generator_key(state)
  z, g_labels = train._latents(state, g_key, None, 1), train._fake_labels(state, g_key, None, 1)
  g_fake = state.generator.apply({"params": state.g_params}, z, g_labels)
  _, heads = _hand_discriminator(state, g_fake, g_labels)
  expected = _numpy_cross_entropy(heads["classes"], g_labels)
  if conditioning == "tac":
    expected -= _numpy_cross_entropy(heads["twin"], g_labels)
  _, g_metrics = train.g_step(copy(state), None)
  # As above; the TAC difference of two cross-entropies is compared with an absolute 1e-5.
  np.testing.assert_allclose(g_metrics["g_classifier"], expected, rtol=1e-5, atol=1e-5)


def test_class_heads_and_the_classifier_loss_must_agree():
  spec = train.GANSpec(latent_dim=4, batch_size=16, data=toy.ring(), num_classes=NUM_CLASSES)
  with pytest.raises(train.ConfigError, match="class heads"):
    train.create_state(Generator(NUM_CLASSES), Discriminator(NUM_CLASSES, "acgan"),
                       optax.sgd(0.1), optax.sgd(0.1), spec, (2,), 0)
  with pytest.raises(train.ConfigError, match="class-conditional"):
    train.GANSpec(classifier="acgan")


@pytest.mark.parametrize("penalty", ["r1", "r2"])
def test_penalties_are_taken_at_fixed_labels(penalty):
  """R1 is E||grad_x D(x, y)||^2 on real (x, y); R2 the same on fakes with their labels."""
  state = make_state(penalty=penalty, penalty_weight=1.0)
  real_pair, fake_pair = _real_and_fake(state)
  x, labels = real_pair if penalty == "r1" else fake_pair
  per_example = jax.vmap(jax.grad(
      lambda x, y: _hand_discriminator(state, x[None], y[None])[0][0]))(x, labels)
  expected = np.mean(np.sum(np.asarray(per_example, np.float64) ** 2, -1))
  _, d_metrics = train.d_step(copy(state), None)
  np.testing.assert_allclose(d_metrics["d_penalty"], expected, rtol=1e-5)


def test_orthogonal_regularisation_adds_its_gradient_to_the_generator_update():
  """With SGD the parameter change is -lr * gradient, so the difference between one G step with
  and without the regulariser is -lr * weight * grad(orthogonal_penalty)(g_params)."""
  weight, lr = 0.3, 0.1
  plain = make_state(tx=optax.sgd(lr))
  regularised = make_state(tx=optax.sgd(lr), orthogonal_weight=weight)
  gradient = jax.grad(regularizers.orthogonal_penalty)(plain.g_params)
  before = copy(plain.g_params)
  plain, _ = train.g_step(plain, None)
  regularised, metrics = train.g_step(regularised, None)
  np.testing.assert_allclose(metrics["g_orthogonal"],
                             regularizers.orthogonal_penalty(before), rtol=1e-6)
  difference = jax.tree.map(lambda a, b: a - b, regularised.g_params, plain.g_params)
  expected = jax.tree.map(lambda g: -lr * weight * g, gradient)
  # Two float32 updates of parameters of size ~1 differ by ~1e-7 in rounding.
  assert_trees_close(difference, expected, rtol=1e-3, atol=1e-6)
  assert any(np.abs(leaf).max() > 1e-4 for leaf in jax.tree.leaves(expected))


def test_conditional_mode_statistics_against_a_count_by_hand():
  means = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
  sigma = 0.1
  samples = np.array([[1.0, 0.05], [0.0, 0.9], [1.0, 0.0], [-1.0, 0.5], [0.0, 1.0], [0.9, 0.0]])
  labels = np.array([0, 0, 1, 2, 1, 0])
  # Class 0: samples 0 (on mode 0), 1 (mode 1: wrong), 5 (mode 0, 0.1 away: within 3 sigma).
  # Class 1: sample 2 (mode 0: wrong), 4 (mode 1). Class 2: sample 3 (0.5 from mode 2: too far).
  stats = metrics.conditional_mode_statistics(samples, labels, means, sigma)
  np.testing.assert_allclose(stats["per_class_accuracy"], [2 / 3, 1 / 2, 0.0], rtol=1e-6)
  np.testing.assert_allclose(stats["label_accuracy"], (2 / 3 + 1 / 2) / 3, rtol=1e-6)
  assert float(stats["label_accuracy_min"]) == 0.0
  # Class 0 lands on mode 0 twice; class 1 once on each mode (argmax takes mode 0: not its own);
  # class 2's sample is nearest to mode 2.
  assert int(stats["classes_on_mode"]) == 2
