"""The adversarial update: state, d_step/g_step/train_step, scan, seeds and data parallelism.

Runs with 4 fake CPU devices (tests/conftest.py).
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax import experiment
from ganjax import losses
from ganjax import metrics
from ganjax import models
from ganjax import train
from ganjax.data import toy

from _trees import assert_trees_close, copy

NUM_DEVICES = 4


def mlp_pair(batch_norm=False):
  generator = models.get_generator("mlp", output_dim=2, hidden=(32, 32), activation="tanh",
                                   batch_norm=batch_norm)
  discriminator = models.get_discriminator("mlp", hidden=(32, 32), activation="tanh")
  return generator, discriminator


def ring_state(seed=0, g_tx=None, d_tx=None, batch_norm=False, **spec_kwargs):
  generator, discriminator = mlp_pair(batch_norm)
  spec_kwargs = {"latent_dim": 8, "batch_size": 16, "data": toy.ring(), **spec_kwargs}
  return train.create_state(generator, discriminator, g_tx or optax.adam(1e-3, b1=0.5),
                            d_tx or optax.adam(1e-3, b1=0.5), train.GANSpec(**spec_kwargs),
                            (2,), seed)


def leaves_differ(a, b):
  return any(not np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_state_holds_both_players_and_counters():
  state = ring_state(ema_decay=0.99, batch_norm=True)
  assert int(state.step) == 0 and int(state.d_updates) == 0
  assert "batch_stats" in state.g_collections
  assert_trees_close(state.ema_g_params, state.g_params, rtol=0, atol=0)
  state, metrics = train.train_step(state, None)
  assert int(state.step) == 1 and int(state.d_updates) == 1
  for name in ("d_loss", "d_total", "d_real", "d_fake", "d_grad_norm", "d_param_norm",
               "g_loss", "g_fake", "g_grad_norm", "g_param_norm"):
    assert np.isfinite(metrics[name]), name
  # non-saturating: D outputs are probabilities
  assert 0.0 < metrics["d_real"] < 1.0 and 0.0 < metrics["d_fake"] < 1.0


def test_metrics_are_raw_critic_values_for_wasserstein():
  state = ring_state(loss="wasserstein", penalty="gradient_penalty", penalty_weight=10.0)
  _, metrics = train.d_step(state, None)
  assert np.isfinite(metrics["d_penalty"])
  np.testing.assert_allclose(metrics["d_total"],
                             metrics["d_loss"] + 10.0 * metrics["d_penalty"], rtol=1e-5)
  np.testing.assert_allclose(metrics["d_loss"], metrics["d_fake"] - metrics["d_real"], rtol=1e-4,
                             atol=1e-6)


def test_d_step_changes_only_the_discriminator_and_g_step_only_the_generator():
  state = ring_state()
  before = copy(state)
  state, _ = train.d_step(state, None)
  assert leaves_differ(state.d_params, before.d_params)
  assert_trees_close(state.g_params, before.g_params, rtol=0, atol=0)
  before = copy(state)
  state, _ = train.g_step(state, None)
  assert leaves_differ(state.g_params, before.g_params)
  assert_trees_close(state.d_params, before.d_params, rtol=0, atol=0)


def test_two_time_scale_learning_rates():
  """Doubling one player's SGD learning rate doubles that player's first update, nothing else."""
  deltas = {}
  for lr_d, lr_g in ((0.1, 0.01), (0.2, 0.01), (0.1, 0.02)):
    state = ring_state(g_tx=optax.sgd(lr_g), d_tx=optax.sgd(lr_d))
    start = copy(state)
    d_state, _ = train.d_step(copy(state), None)
    g_state, _ = train.g_step(state, None)
    deltas[lr_d, lr_g] = (
        jax.tree.map(lambda a, b: a - b, d_state.d_params, start.d_params),
        jax.tree.map(lambda a, b: a - b, g_state.g_params, start.g_params))
  base_d, base_g = deltas[0.1, 0.01]
  assert_trees_close(deltas[0.2, 0.01][0], jax.tree.map(lambda x: 2 * x, base_d), rtol=1e-4)
  assert_trees_close(deltas[0.2, 0.01][1], base_g, rtol=1e-6)
  assert_trees_close(deltas[0.1, 0.02][1], jax.tree.map(lambda x: 2 * x, base_g), rtol=1e-4)
  assert_trees_close(deltas[0.1, 0.02][0], base_d, rtol=1e-6)


def test_n_critic_runs_that_many_discriminator_updates_on_successive_batches():
  n_critic, batch = 3, 8
  generator, discriminator = mlp_pair()
  spec = train.GANSpec(latent_dim=8, batch_size=batch, n_critic=n_critic)
  state = train.create_state(generator, discriminator, optax.adam(1e-3), optax.adam(1e-3), spec,
                             (2,), 0)
  real = toy.ring().sample(jax.random.PRNGKey(1), n_critic * batch).reshape(n_critic, batch, 2)
  by_hand = copy(state)
  state, _ = train.train_step(state, real)
  assert int(state.d_updates) == n_critic and int(state.step) == 1
  for i in range(n_critic):
    by_hand, _ = train.d_step(by_hand, real[i])
  by_hand, _ = train.g_step(by_hand, real[-1])
  assert_trees_close(state, by_hand)


def test_reuse_fakes_takes_the_generator_gradient_at_the_last_critic_update_fakes():
  """With reuse_fakes the discriminator updates are unchanged, and the generator's gradient is
  that of its loss on G(z) for the latents z of the last discriminator update, through the
  updated discriminator: computed here by hand and applied with SGD."""
  learning_rate = 0.1
  state = ring_state(g_tx=optax.sgd(learning_rate), d_tx=optax.sgd(learning_rate), n_critic=2,
                     reuse_fakes=True)
  by_hand = copy(state)
  state, metrics = train.train_step(state, None)
  by_hand, _ = train.d_step(by_hand, None)
  z = train._latents(by_hand, train._discriminator_key(by_hand), None, 1)
  by_hand, d_metrics = train.d_step(by_hand, None)
  assert_trees_close(state.d_params, by_hand.d_params, rtol=1e-6)
  assert float(metrics["d_loss"]) == pytest.approx(float(d_metrics["d_loss"]), rel=1e-6)

  def generator_loss(g_params):
    fake = by_hand.generator.apply({"params": g_params}, z)
    return losses.non_saturating_generator_loss(
        by_hand.discriminator.apply({"params": by_hand.d_params}, fake))

  loss, grads = jax.value_and_grad(generator_loss)(by_hand.g_params)
  expected = jax.tree.map(lambda p, g: p - learning_rate * g, by_hand.g_params, grads)
  assert_trees_close(state.g_params, expected, rtol=1e-5, atol=1e-6)
  assert float(metrics["g_loss"]) == pytest.approx(float(loss), rel=1e-5)
  # A fresh batch of latents (the default) gives another update.
  default, _ = train.train_step(ring_state(g_tx=optax.sgd(learning_rate),
                                           d_tx=optax.sgd(learning_rate), n_critic=2), None)
  assert leaves_differ(default.g_params, state.g_params)


def test_critic_warmup_schedule():
  state = ring_state(n_critic=2, critic_warmup_steps=2, critic_warmup_n=5, critic_warmup_every=10)
  assert [int(train.critic_updates_at(state.spec, s)) for s in (0, 1, 2, 9, 10, 11)] == [
      5, 5, 2, 2, 5, 2]
  for _ in range(3):
    state, _ = train.train_step(state, None)
  assert int(state.d_updates) == 5 + 5 + 2


def test_ema_tracks_generator_parameters():
  decay = 0.9
  state = ring_state(ema_decay=decay)
  ema = copy(state.g_params)
  for _ in range(3):
    state, _ = train.train_step(state, None)
    ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, ema, state.g_params)
    assert_trees_close(state.ema_g_params, ema, rtol=1e-5, atol=1e-7)
  assert leaves_differ(state.ema_g_params, state.g_params)


def test_same_seed_same_numbers_and_different_seeds_differ():
  a, _ = train.train_step(ring_state(seed=3), None)
  b, _ = train.train_step(ring_state(seed=3), None)
  c, _ = train.train_step(ring_state(seed=4), None)
  assert_trees_close(a, b, rtol=0, atol=0)
  assert leaves_differ(a.g_params, c.g_params)


def test_no_retrace_after_first_step():
  step = jax.jit(chex.assert_max_traces(train.adversarial_update, n=1), donate_argnums=0)
  state = ring_state()
  for _ in range(4):
    state, _ = step(state, None)
  assert int(state.step) == 4


def test_scanned_train_steps_equal_single_steps():
  state = ring_state()
  stepped = copy(state)
  per_step = []
  for _ in range(5):
    stepped, metrics = train.train_step(stepped, None)
    per_step.append(metrics)
  scanned, scanned_metrics = train.train_steps(state, num_steps=5)
  assert_trees_close(scanned, stepped)
  np.testing.assert_allclose(scanned_metrics["g_loss"], [m["g_loss"] for m in per_step],
                             rtol=1e-5)


def test_vmapped_seeds_equal_seeds_one_by_one():
  seeds = [0, 1, 2]
  template = ring_state()
  states = train.create_seed_states(template.generator, template.discriminator, template.g_tx,
                                    template.d_tx, template.spec, (2,), seeds)
  run = train.vmap_seeds(train.adversarial_scan, num_steps=4)
  states, _ = run(states)
  for index, seed in enumerate(seeds):
    alone, _ = train.train_steps(ring_state(seed=seed), num_steps=4)
    assert_trees_close(jax.tree.map(lambda x: x[index], states), alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("parallel,reuse_fakes", [("pmap", False), ("shard_map", False),
                                                   ("shard_map", True)])
def test_parallel_mlp_step_equals_one_device_on_device_data(parallel, reuse_fakes):
  """Data sampled on the device: each example's draw depends on its global index only, so the
  mapped step sees the same global batch as one device."""
  assert jax.device_count() >= NUM_DEVICES
  devices = jax.devices()[:NUM_DEVICES]
  # Batch norm in G, synchronised across devices. SGD, because Adam's first step divides by the
  # gradient's own magnitude and so turns rounding noise in near-zero gradients (the bias before
  # batch norm has an exactly zero one) into full-size updates.
  state = ring_state(batch_norm=True, g_tx=optax.sgd(0.1), d_tx=optax.sgd(0.1),
                     reuse_fakes=reuse_fakes)
  single, single_metrics = train.train_step(copy(state), None)
  step = train.parallelize(train.adversarial_update, parallel, devices)
  mapped, mapped_metrics = step(train.replicate(state, parallel, devices), None)
  mapped = train.unreplicate(mapped, parallel)
  mapped_metrics = train.unreplicate(mapped_metrics, parallel)
  assert_trees_close(mapped, single, rtol=1e-4, atol=1e-6)
  assert_trees_close(mapped_metrics, single_metrics, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("parallel", ["pmap", "shard_map"])
def test_parallel_dcgan_step_equals_one_device_on_host_batch(parallel):
  devices = jax.devices()[:NUM_DEVICES]
  batch = 8
  generator = models.get_generator("dcgan", image_shape=(28, 28, 1))
  discriminator = models.get_discriminator("dcgan", image_shape=(28, 28, 1))
  spec = train.GANSpec(latent_dim=100, batch_size=batch)
  state = train.create_state(generator, discriminator, optax.sgd(0.01), optax.sgd(0.01), spec,
                             (28, 28, 1), 0)
  real = jax.random.uniform(jax.random.PRNGKey(7), (1, batch, 28, 28, 1), minval=-1, maxval=1)
  single, single_metrics = train.train_step(copy(state), real)
  step = train.parallelize(train.adversarial_update, parallel, devices, batch_axis=1)
  mapped, mapped_metrics = step(train.replicate(state, parallel, devices),
                                train.shard_batch(real, parallel, devices, batch_axis=1))
  mapped = train.unreplicate(mapped, parallel)
  assert_trees_close(mapped, single, rtol=1e-4, atol=1e-5)
  assert_trees_close(train.unreplicate(mapped_metrics, parallel), single_metrics, rtol=1e-4,
                     atol=1e-5)


def test_parallel_scanned_steps_equal_one_device():
  devices = jax.devices()[:NUM_DEVICES]
  state = ring_state()
  single, _ = train.train_steps(copy(state), num_steps=3)
  step = train.parallelize(train.adversarial_scan, "shard_map", devices, num_steps=3)
  mapped, _ = step(train.replicate(state, "shard_map", devices), None)
  assert_trees_close(mapped, single, rtol=1e-4, atol=1e-6)


def test_bad_configuration_errors():
  with pytest.raises(ValueError, match="unknown loss"):
    ring_state(loss="not_a_loss")
  with pytest.raises(ValueError, match="n_critic"):
    ring_state(n_critic=0)
  with pytest.raises(ValueError, match="shape"):
    generator, discriminator = mlp_pair()
    train.create_state(generator, discriminator, optax.adam(1e-3), optax.adam(1e-3),
                       train.GANSpec(latent_dim=8, batch_size=8), (3,), 0)
  with pytest.raises(ValueError, match="unknown parallel mode"):
    train.parallelize(train.adversarial_update, "tpu_magic")
  with pytest.raises(ValueError, match="unknown optimizer"):
    experiment.make_optimizer({"name": "adamax_plus"})
  with pytest.raises(ValueError, match="decay_steps"):
    experiment.make_optimizer({"name": "sgd", "learning_rate": 0.1, "decay_steps": 10,
                          "decay_to": 2.0})


def test_learning_rate_decays_linearly_then_stays():
  """SGD with decay_steps 4 and decay_to 0.25: the k-th update (k = 0, 1, ...) is
  -lr * (1 - 0.75 * min(k, 4) / 4) * gradient."""
  tx = experiment.make_optimizer({"name": "sgd", "learning_rate": 0.1, "decay_steps": 4,
                             "decay_to": 0.25})
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  gradient = {"w": jnp.asarray([1.0, -2.0, 0.5])}
  for k in range(7):
    updates, state = tx.update(gradient, state, params)
    rate = 0.1 * (1 - 0.75 * min(k, 4) / 4)
    np.testing.assert_allclose(updates["w"], -rate * gradient["w"], rtol=1e-6)


def test_ring_training_spreads_over_the_modes():
  """A short run of the MLP pair on the 8-Gaussian ring spreads over the modes instead of
  collapsing onto a few (the README's full run captures all 8)."""
  generator = models.get_generator("mlp", output_dim=2, hidden=(128, 128), activation="tanh")
  discriminator = models.get_discriminator("mlp", hidden=(128, 128), activation="tanh")
  spec = train.GANSpec(latent_dim=64, batch_size=256, data=toy.ring())
  state = train.create_state(generator, discriminator, optax.adam(1e-3, b1=0.5),
                             optax.adam(1e-4, b1=0.5), spec, (2,), 0)
  state, history = train.train_steps(state, num_steps=1500)
  samples = train.sample(state, 1000, jax.random.PRNGKey(1))
  # Mode statistics at a loose radius (sigma 0.1 / 3): which modes the samples have reached.
  stats = metrics.mode_statistics(samples, np.asarray(spec.data.means), 0.1 / 3)
  assert np.isfinite(history["g_loss"]).all()
  # The run is chaotic: another CPU's rounding makes it another sample of the same spread as
  # another seed does. Seeds 0-39 of this set-up (trained side by side, train.vmap_seeds) all
  # reached 8 of 8 modes, with reverse KL 0.0017 to 0.061 (median 0.0095); the bounds leave 2
  # modes and 4 times the largest reverse KL. A generator collapsed onto one mode has reverse KL
  # log 8 = 2.08; a balanced one 0.
  assert int(stats["modes"]) >= 6
  assert float(stats["reverse_kl"]) < 0.25


def test_unrolled_critic_updates_equal_the_while_loop(monkeypatch):
  """n_critic updates are unrolled in the compiled step (much faster on CPU); a critic warm-up's
  traced count still runs in `lax.fori_loop`. Both orders of the same operations agree to
  float32 rounding (XLA may fuse the unrolled copies differently)."""
  state = ring_state(n_critic=3, batch_norm=True)
  unrolled, unrolled_metrics = train.train_step(copy(state), None)
  monkeypatch.setattr(train, "_repeat", lambda start, stop, body, carry: jax.lax.fori_loop(
      start, stop, body, carry))
  looped, looped_metrics = jax.jit(train.adversarial_update)(copy(state), None)
  assert int(unrolled.d_updates) == int(looped.d_updates) == 3
  assert_trees_close(unrolled, looped, rtol=1e-5, atol=1e-6)
  assert_trees_close(unrolled_metrics, looped_metrics, rtol=1e-5, atol=1e-6)
