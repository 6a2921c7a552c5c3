"""Training with little data, in the update: augmentation of D's inputs (and through it of G's
gradient), ADA's controller, consistency and LeCam regularisation, lazy penalties; on devices
and across a resume.

The players are small modules of this file on 8x8 greyscale images, so that the update is
tested apart from the library's image models. Runs with 4 fake CPU devices (tests/conftest.py).
"""
import json
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax import augment
from ganjax import experiment as experiment_lib
from ganjax import losses
from ganjax import regularizers
from ganjax import runner
from ganjax import sample as sample_lib
from ganjax import train

from _trees import assert_same_leaves, assert_trees_close, copy, load_experiment

NUM_DEVICES = 4
SHAPE = (8, 8, 1)
BATCH = 16


class Generator(nn.Module):
  """z -> an 8x8 image in [-1, 1]."""

  @nn.compact
  def __call__(self, z, train=True):
    return jnp.tanh(nn.Dense(int(np.prod(SHAPE)))(z)).reshape((-1, *SHAPE))


class Discriminator(nn.Module):
  """An image -> one logit: a 3x3 convolution, then a dense layer."""
  hidden: int = 8

  @nn.compact
  def __call__(self, x, train=True):
    h = nn.leaky_relu(nn.Conv(self.hidden, (3, 3))(x), 0.2)
    return nn.Dense(1)(h.reshape((h.shape[0], -1)))[:, 0]


class QuadraticDiscriminator(nn.Module):
  """D(x) = sum_i w_i x_i^2 + b: its R1 penalty is E||2 w x||^2."""

  @nn.compact
  def __call__(self, x, train=True):
    w = self.param("w", nn.initializers.normal(1.0), SHAPE)
    b = self.param("b", nn.initializers.zeros, ())
    return jnp.sum(w * jnp.square(x), axis=(1, 2, 3)) + b


class MemoryDiscriminator(nn.Module):
  """A wide MLP: enough capacity to memorise a few dozen images."""

  @nn.compact
  def __call__(self, x, train=True):
    h = nn.relu(nn.Dense(256)(x.reshape((x.shape[0], -1))))
    return nn.Dense(1)(h)[:, 0]


class NoiseGenerator(nn.Module):
  """G(z) = z as an image: with a frozen optimizer its fakes are N(0, I), like the reals."""

  @nn.compact
  def __call__(self, z, train=True):
    self.param("unused", nn.initializers.zeros, ())
    return z.reshape((-1, *SHAPE))


def make_state(discriminator=None, generator=None, g_tx=None, d_tx=None, seed=0, **spec_kwargs):
  spec = train.GANSpec(**{"latent_dim": 4, "batch_size": BATCH, **spec_kwargs})
  return train.create_state(generator or Generator(), discriminator or Discriminator(),
                            g_tx or optax.sgd(0.1), d_tx or optax.sgd(0.1), spec, SHAPE, seed)


def images(seed, batch=BATCH, leading=()):
  return jax.random.uniform(jax.random.PRNGKey(seed), (*leading, batch, *SHAPE), minval=-1,
                            maxval=1)


def d_logits(state, x, params=None):
  return state.discriminator.apply({"params": state.d_params if params is None else params}, x)


# ----------------------------------------------------------------------------- augmentation


@pytest.fixture
def negating(monkeypatch):
  """`augment.apply` replaced by x -> -x, a deterministic stand-in (the operations themselves are
  tested in tests/test_augment.py), so that what the update feeds D can be computed by hand.
  The specs using it have a p no other test uses, so no step traced with the real augmentation
  is reused from jit's cache."""
  monkeypatch.setattr(augment, "apply", lambda policy, x, key, p, first_index=0: -x)
  return 0.987


def test_the_discriminator_sees_both_sides_augmented(negating):
  """d_loss is the objective of D on augmented reals and fakes."""
  state = make_state(augment="xflip", augment_p=negating)
  real = images(0)
  _, metrics = train.d_step(copy(state), real)
  fake = train.generate(state, train._latents(state, train._discriminator_key(state), None, 1),
                        use_ema=False)
  objective = losses.get("non_saturating")
  expected = objective.discriminator(d_logits(state, -real), d_logits(state, -fake))
  plain = objective.discriminator(d_logits(state, real), d_logits(state, fake))
  # The same float32 operations in another fusion: rounding only.
  np.testing.assert_allclose(metrics["d_loss"], expected, rtol=1e-5)
  assert abs(float(plain) - float(expected)) > 1e-3  # the stand-in changes what D sees


def test_the_generator_gradient_flows_through_the_augmentation(negating):
  """With SGD at learning rate 1, G's update is minus the gradient of the non-saturating loss of
  D(T(G(z))), computed here by hand."""
  state = make_state(augment="xflip", augment_p=negating, g_tx=optax.sgd(1.0))
  updated, _ = train.g_step(copy(state), None)
  z = train._latents(state, train._generator_key(state), None, 1)
  objective = losses.get("non_saturating")

  def loss(g_params, sign):
    fake = state.generator.apply({"params": g_params}, z)
    return objective.generator(None, d_logits(state, sign * fake))

  grads = jax.grad(loss)(state.g_params, -1.0)
  expected = jax.tree.map(lambda p, g: p - g, state.g_params, grads)
  # Rounding only (another fusion of the same float32 operations).
  assert_trees_close(updated.g_params, expected, rtol=1e-5, atol=1e-7)
  unaugmented = jax.grad(loss)(state.g_params, 1.0)
  assert any(not np.allclose(a, b, atol=1e-6)
             for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(unaugmented)))


def test_p_zero_is_the_unaugmented_update():
  """ADA starting at p = 0: until p moves, the update is the plain one (the augmentation returns
  its input bit for bit; the parameters agree to rounding, as the programs differ)."""
  plain = make_state()
  ada = make_state(augment="bgc", augment_p=0.0, ada_target=0.6, ada_interval=1000)
  real = images(1)
  plain, _ = train.d_step(plain, real)
  ada, metrics = train.d_step(ada, real)
  assert float(metrics["ada_p"]) == 0.0
  assert_trees_close(ada.d_params, plain.d_params, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("parallel,policy,regularised", [
    ("pmap", "color,translation,cutout", False), ("shard_map", "bgc", True)])
def test_augmented_steps_on_devices_equal_one_device(parallel, policy, regularised):
  """Each example's augmentation comes from its global index: 4 devices give one device's
  numbers, ADA's controller (and LeCam's averages and CR's transforms) included."""
  devices = jax.devices()[:NUM_DEVICES]
  regularisers = dict(lecam_weight=0.3, cr_real=1.0, cr_fake=1.0) if regularised else {}
  state = make_state(augment=policy, augment_p=0.5, ada_target=0.6, ada_interval=1,
                     ada_speed=160.0, **regularisers)
  batch = images(2, leading=(1,))
  single, single_metrics = train.train_step(copy(state), batch)
  step = train.parallelize(train.adversarial_update, parallel, devices, batch_axis=1)
  mapped, mapped_metrics = step(train.replicate(copy(state), parallel, devices),
                                train.shard_batch(batch, parallel, devices, batch_axis=1))
  # The mean over devices of per-device means sums in another order: float32 rounding.
  assert_trees_close(train.unreplicate(mapped, parallel), single, rtol=1e-4, atol=1e-6)
  assert_trees_close(train.unreplicate(mapped_metrics, parallel), single_metrics, rtol=1e-4,
                     atol=1e-6)
  assert float(single.ada["p"]) != 0.5  # the controller moved p on both


# ----------------------------------------------------------------------------- ADA


def numpy_controller(signs, p, target, batch, interval, speed):
  """ADA's rule as the paper states it, in numpy: p after each update, for per-update mean
  signs."""
  history, window = [], []
  for sign in signs:
    window.append(sign)
    if len(window) == interval:
      r_t = np.mean(window)
      p = float(np.clip(p + np.sign(r_t - target) * batch * interval / speed, 0.0, 1.0))
      window = []
    history.append(p)
  return np.array(history)


def test_ada_controller_follows_the_papers_rule():
  state = make_state(augment="bgc", augment_p=0.3, ada_target=0.6, ada_interval=3,
                     ada_speed=1000.0)
  signs = np.array([1.0, 0.5, 0.25, -0.5, 0.0, 1.0, 1.0, 1.0, 0.75, 0.1, 0.2, 0.3, 1, 1, 1])
  history = []
  for sign in signs:
    ada, metrics = train._ada_adjust(state, jnp.float32(sign))
    state = state.replace(ada=ada)
    history.append(float(metrics["ada_p"]))
  expected = numpy_controller(signs, 0.3, 0.6, BATCH, 3, 1000.0)
  np.testing.assert_allclose(history, expected, atol=1e-6)  # float32 sums of a few steps
  assert len(set(np.round(expected, 6))) > 2  # p went up and down


def _train_discriminator(reals_for_step, steps):
  """ADA with a frozen generator of N(0, I) images and a discriminator that can memorise:
  reals_for_step(i) gives the real batch of update i. Returns p after every update."""
  state = make_state(discriminator=MemoryDiscriminator(), generator=NoiseGenerator(),
                     g_tx=optax.set_to_zero(), d_tx=optax.adam(1e-3),
                     latent_dim=int(np.prod(SHAPE)), batch_size=32, augment="xflip,translation",
                     augment_p=0.0, ada_target=0.6, ada_interval=4, ada_speed=32 * 4 * 10)
  history = []
  for i in range(steps):
    state, metrics = train.d_step(state, reals_for_step(i))
    history.append(float(metrics["ada_p"]))
  return np.array(history)


def test_ada_p_rises_when_the_discriminator_memorises_and_not_otherwise():
  """32 fixed training images, fakes from the same distribution N(0, I): only memorising them
  tells them apart, r_t goes above 0.6 and p rises until the augmentation hides them again; with
  a fresh batch of N(0, I) reals at every update there is nothing to memorise, r_t stays near 0
  and p stays at 0. Each adjustment moves p by 0.1 (speed = 10 adjustments' images)."""
  memorised = jax.random.normal(jax.random.PRNGKey(3), (32, *SHAPE))
  rising = _train_discriminator(lambda i: memorised, 240)
  fresh = _train_discriminator(
      lambda i: jax.random.normal(jax.random.PRNGKey(1000 + i), (32, *SHAPE)), 240)
  # Measured: the memorising D holds p between 0.1 and 0.3 (where the augmentation brings r_t
  # back to 0.6), the other keeps it at 0 throughout; the bounds leave room for another CPU's
  # rounding to change the trajectory.
  assert rising.max() >= 0.2 and rising[len(rising) // 2:].mean() >= 0.05
  assert fresh.max() <= 0.1 and fresh[-1] == 0.0


# ----------------------------------------------------------------------------- regularisers


def test_lecam_in_the_update_uses_debiased_averages_of_this_batch():
  """On the first update the debiased averages are this batch's mean outputs, and the state
  keeps (1 - decay) times them."""
  state = make_state(lecam_weight=0.3, lecam_decay=0.9)
  real = images(4)
  updated, metrics = train.d_step(copy(state), real)
  fake = train.generate(state, train._latents(state, train._discriminator_key(state), None, 1),
                        use_ema=False)
  real_logits, fake_logits = np.asarray(d_logits(state, real)), np.asarray(d_logits(state, fake))
  alpha_r, alpha_f = real_logits.mean(), fake_logits.mean()
  expected = (np.mean(np.maximum(real_logits - alpha_f, 0) ** 2)
              + np.mean(np.maximum(alpha_r - fake_logits, 0) ** 2))
  # float32 logits through another fusion: rounding only.
  np.testing.assert_allclose(metrics["d_lecam"], expected, rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(metrics["d_total"], metrics["d_loss"] + 0.3 * expected, rtol=1e-5)
  np.testing.assert_allclose(updated.lecam["real"], 0.1 * alpha_r, rtol=1e-5)
  np.testing.assert_allclose(updated.lecam["fake"], 0.1 * alpha_f, rtol=1e-5)


def test_balanced_consistency_in_the_update_against_its_formula(negating):
  """With T the stand-in x -> -x, CR's terms are ||D(-x) - D(x)||^2 on reals and on fakes,
  computed by hand."""
  state = make_state(cr_real=10.0, cr_fake=negating * 5.0, cr_policy="xflip")
  real = images(5)
  _, metrics = train.d_step(copy(state), real)
  fake = train.generate(state, train._latents(state, train._discriminator_key(state), None, 1),
                        use_ema=False)
  for name, x in (("d_cr_real", real), ("d_cr_fake", fake)):
    expected = np.mean((np.asarray(d_logits(state, -x)) - np.asarray(d_logits(state, x))) ** 2)
    np.testing.assert_allclose(metrics[name], expected, rtol=1e-4, atol=1e-8)  # rounding only
  np.testing.assert_allclose(
      metrics["d_total"], metrics["d_loss"] + 10.0 * metrics["d_cr_real"]
      + negating * 5.0 * metrics["d_cr_fake"], rtol=1e-5)


def test_lazy_r1_equals_the_plain_r1_over_its_interval():
  """A quadratic D, a fixed real batch and a small SGD step: k = 4 updates with R1 every update
  and with R1 lazily (4x its weight on every 4th update) move D's parameters the same to first
  order in the step size, and the logged penalty has the plain penalty's mean over the interval.
  (SGD needs no correction: lazy_optimizer_correction is Adam's.)"""
  real = images(6)
  kwargs = dict(discriminator=QuadraticDiscriminator(), g_tx=optax.set_to_zero(),
                d_tx=optax.sgd(1e-3), penalty="r1", penalty_weight=5.0)
  start = make_state(**kwargs)

  def run(state, k=4):
    logged = []
    for _ in range(k):
      state, metrics = train.d_step(state, real)
      logged.append(float(metrics["d_penalty"]))
    return state.d_params, np.array(logged)

  eager, eager_logged = run(copy(start))
  lazy, lazy_logged = run(make_state(penalty_every=4, **kwargs))
  unpenalised, _ = run(make_state(**{**kwargs, "penalty_weight": 0.0}))
  assert lazy_logged[1:].tolist() == [0.0, 0.0, 0.0] and lazy_logged[0] > 0
  # The penalty changes little in 4 small steps: its mean agrees to the steps' first order.
  np.testing.assert_allclose(lazy_logged.mean(), eager_logged.mean(), rtol=0.05)
  penalty_effect = np.abs(np.asarray(eager["w"]) - np.asarray(unpenalised["w"])).max()
  difference = np.abs(np.asarray(lazy["w"]) - np.asarray(eager["w"])).max()
  assert penalty_effect > 1e-3  # R1 moves w
  assert difference < 0.05 * penalty_effect  # second order in the step size


def test_lazy_regularisation_corrects_adams_learning_rate_and_betas():
  """make_optimizer with penalty.every = k is Adam(lr c, beta1^c, beta2^c), c = k / (k + 1)
  (StyleGAN2, appendix B: k = 16 gives c = 16/17), checked on two updates."""
  c = 16 / 17
  assert regularizers.lazy_optimizer_correction(16) == pytest.approx(c)
  corrected = experiment_lib.make_optimizer({"name": "adam", "learning_rate": 2e-3, "b1": 0.0,
                                             "b2": 0.99}, lazy_every=16)
  by_hand = optax.adam(2e-3 * c, b1=0.0 ** c, b2=0.99 ** c)
  plain = optax.adam(2e-3, b1=0.0, b2=0.99)
  params = {"w": jnp.ones(3)}
  grads = [{"w": jnp.array([0.1, -0.2, 0.3])}, {"w": jnp.array([-0.4, 0.5, 0.6])}]

  def updates(tx):
    opt_state, out = tx.init(params), []
    for g in grads:
      update, opt_state = tx.update(g, opt_state, params)
      out.append(np.asarray(update["w"]))
    return np.array(out)

  np.testing.assert_allclose(updates(corrected), updates(by_hand), rtol=1e-6)
  assert not np.allclose(updates(corrected), updates(plain))
  with pytest.raises(experiment_lib.ConfigError, match="penalty.every"):
    regularizers.lazy_optimizer_correction(0)


# ----------------------------------------------------------------------------- config and runs


def test_bad_augmentation_settings_are_one_line_config_errors():
  for kwargs, message in ((dict(augment="nope", augment_p=1.0), "augment.policy"),
                          (dict(augment="translation"), "augment.p"),
                          (dict(ada_target=0.6), "augment.policy"),
                          (dict(augment="bgc", augment_p=1.5), "augment.p"),
                          (dict(penalty_every=4), "penalty"),
                          (dict(cr_real=1.0, cr_policy="bogus"), "regularizer.cr_policy")):
    with pytest.raises(experiment_lib.ConfigError, match=message) as error:
      train.GANSpec(**kwargs)
    assert "\n" not in str(error.value)


IMAGE_EXPERIMENTS = ("celeba64_dcgan", "celeba64_stylegan2", "cifar10_biggan", "cifar10_dcgan",
                     "cifar10_sngan", "cifar10_sngan_projection", "cifar10_stylegan2_ada",
                     "cifar10_wgan_gp", "ffhq64_stylegan2", "mnist_dcgan")
# StyleGAN2's experiments take R1 lazily (every 16 updates); the ADA configuration augments.
LAZY_EXPERIMENTS = ("celeba64_stylegan2", "cifar10_stylegan2_ada", "ffhq64_stylegan2")
AUGMENTED_EXPERIMENTS = ("cifar10_stylegan2_ada",)


def test_every_image_experiment_has_the_augmentation_block_off():
  """Off but where the experiment's recipe has it (ADA's CIFAR-10 configuration)."""
  from ganjax.data import images as images_lib
  files = sorted(path.stem for path in
                 (pathlib.Path(__file__).resolve().parents[1] / "experiments").glob("*.py"))
  image_files = [name for name in files
                 if load_experiment(name, None).data.name in images_lib.VALID_NAMES]
  assert tuple(image_files) == IMAGE_EXPERIMENTS
  for name in image_files:
    config = load_experiment(name, None)
    assert config.regularizer.cr_real == 0.0
    spec = experiment_lib.build_players(config, check_data=False)[4]
    assert spec.lecam_weight == 0.0
    assert spec.penalty_every == (16 if name in LAZY_EXPERIMENTS else 1)
    if name in AUGMENTED_EXPERIMENTS:
      assert (spec.augment, spec.ada_target, spec.ada_speed) == ("bgc", 0.6, 500_000)
    else:
      assert config.augment.policy == "" and spec.augment == ""


@pytest.mark.parametrize("name", IMAGE_EXPERIMENTS)
def test_image_experiments_build_with_diffaugment_ada_and_the_regularisers(name):
  """DiffAugment, ADA, bCR and LeCam are fields of every image experiment: its players' states
  are traced with them on (nothing compiles)."""
  for fields in ({"augment.policy": "color,translation,cutout", "augment.p": 1.0,
                  "augment.target": 0.0},
                 {"augment.policy": "bgc", "augment.target": 0.6, "regularizer.cr_real": 10.0,
                  "regularizer.cr_fake": 10.0, "regularizer.lecam": 0.3}):
    config = load_experiment(name)
    for dotted, value in fields.items():
      section, field = dotted.split(".")
      config[section][field] = value
    built = experiment_lib.build(config, check_data=False)
    state = built.abstract_state(0)
    assert (state.ada is not None) == bool(fields["augment.target"])
    assert (state.lecam is not None) == ("regularizer.lecam" in fields)


def test_augmentation_needs_image_data():
  config = load_experiment("ring")
  config.regularizer.cr_real = 1.0
  with pytest.raises(experiment_lib.RunError, match="not image data"):
    experiment_lib.build(config)


def test_ada_run_resumes_exactly_with_its_p(tmp_path):
  """The tiny MNIST DCGAN with ADA (p moving every update) and LeCam on mock data: 2 steps, then
  a resume to 4, end in the state of 4 uninterrupted steps, p and LeCam's averages included."""
  import tensorflow_datasets as tfds

  def config(steps):
    config = load_experiment("mnist_dcgan")
    config.augment.update({"policy": "bgc", "target": 0.6, "speed": 64, "interval": 1})
    config.regularizer.lecam = 0.3
    config.train.steps = steps
    return config

  straight, resumed = tmp_path / "straight", tmp_path / "resumed"
  with tfds.testing.mock_data(num_examples=64):
    runner.train_and_evaluate(config(4), straight)
    runner.train_and_evaluate(config(2), resumed)
    runner.train_and_evaluate(config(4), resumed)
  state_straight, _ = sample_lib.load_state(straight)
  state_resumed, _ = sample_lib.load_state(resumed)
  assert_same_leaves(state_resumed, state_straight)
  lines = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
  assert all("ada_p" in line and "d_lecam" in line for line in lines)
  # Each update moves p by 8 / 64 up or down from 0, clipped at 0.
  assert float(state_straight.ada["p"]) in {0.0, 0.125, 0.25, 0.375, 0.5}
