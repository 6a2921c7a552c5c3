"""The mode-collapse benchmark: seeds trained side by side equal seeds trained alone, the row's
fields, its one-line errors, and training with a packed (PacGAN) discriminator."""
import importlib.util
import itertools
import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.special

from ganjax import experiment as experiment_lib
from ganjax import losses
from ganjax import metrics
from ganjax import mode_collapse
from ganjax import models
from ganjax import runner
from ganjax import train
from ganjax.data import toy
from ganjax.models import packing

REPO = pathlib.Path(__file__).resolve().parents[1]


def experiment(arg):
  spec = importlib.util.spec_from_file_location("mode_collapse_experiment",
                                                REPO / "experiments" / "mode_collapse.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("tiny")
  config = experiment("tiny")
  return config, workdir, runner.train_and_evaluate(config, workdir)


# How far a sample may be from a boundary of the mode statistics (the Voronoi boundary between
# its two nearest modes, or the 3-sigma radius around its nearest mode) and still be counted on
# either side of it, in the data's units (times the sample's norm where that exceeds 1). Distances
# from float32 samples near the unit circle to the modes are rounded to a few 1e-7 by any program
# that computes them, and programs compiled differently (the vmapped sampler fused with the
# statistics, or the statistics alone) round differently: a sample that close to a boundary may
# fall on either side (one of 7,500 tiny-run samples lay 5.9e-6 from one).
BOUNDARY_TOLERANCE = 1e-5


def possible_mode_statistics(samples, means, sigma):
  """Every (modes, high-quality fraction, reverse KL) that `metrics.mode_statistics` may give
  for float32 `samples`, with each sample within BOUNDARY_TOLERANCE of a boundary on either side
  of it; computed in float64 numpy, independently of the library."""
  samples = np.asarray(samples, np.float64)
  distances = np.linalg.norm(samples[:, None, :] - means[None], axis=-1)
  tolerance = BOUNDARY_TOLERANCE * np.maximum(1.0, np.linalg.norm(samples, axis=-1))
  order = np.argsort(distances, axis=1)
  rows = np.arange(len(samples))
  nearest_distance = distances[rows, order[:, 0]]
  near_two_modes = distances[rows, order[:, 1]] - nearest_distance < tolerance
  near_radius = np.abs(nearest_distance - 3 * sigma) < tolerance
  ambiguous = np.flatnonzero(near_two_modes | near_radius)
  assert len(ambiguous) <= 6, f"{len(ambiguous)} samples lie on boundaries"
  options = [itertools.product(order[i, :2] if near_two_modes[i] else order[i, :1],
                               (False, True) if near_radius[i] else
                               (nearest_distance[i] < 3 * sigma,)) for i in ambiguous]
  outcomes = []
  for choice in itertools.product(*options):
    nearest, high_quality = order[:, 0].copy(), nearest_distance < 3 * sigma
    for i, (mode, quality) in zip(ambiguous, choice):
      nearest[i], high_quality[i] = mode, quality
    histogram = np.bincount(nearest, minlength=len(means)) / len(samples)
    reverse_kl = np.sum(scipy.special.xlogy(histogram, histogram * len(means)))
    outcomes.append((len(set(nearest[high_quality])), high_quality.mean(), reverse_kl))
  return outcomes


def test_seeds_side_by_side_equal_seeds_trained_alone(tiny_run):
  config, workdir, row = tiny_run
  assert config.seeds == 3 and row["seeds"] == 3
  samples = np.load(workdir / "samples.npy")
  assert samples.shape == (3, 2500, 2)
  data = toy.ring()
  for index in range(3):
    state = experiment_lib.create_state_from_config(config, seed=config.seed + index)
    state, _ = train.train_steps(state, num_steps=config.train.steps)
    alone = train.sample(state, 2500, jax.random.fold_in(state.key, experiment_lib.SAMPLE_STREAM))
    # Trained vmapped or alone: the same numbers, summed in other orders.
    np.testing.assert_allclose(samples[index], alone, rtol=1e-4, atol=1e-5)
    # The row's statistics are those of the samples written beside it.
    outcomes = possible_mode_statistics(samples[index], np.asarray(data.means), data.stds[0])
    measured = (row["per_seed"]["modes"][index], row["per_seed"]["hq"][index] / 100,
                row["per_seed"]["reverse_kl"][index])
    # One sample moves the high-quality fraction by 1/2500 = 4e-4; float32 means and logarithms
    # of 2,500 counts are good to 1e-6.
    assert any(modes == measured[0] and abs(hq - measured[1]) < 1e-6
               and abs(reverse_kl - measured[2]) < 1e-5 for modes, hq, reverse_kl in outcomes), (
                   measured, outcomes)


def test_row_fields_and_files(tiny_run):
  config, workdir, row = tiny_run
  assert json.loads((workdir / "row.json").read_text()) == row
  assert (row["dataset"], row["config"], row["preset"]) == ("ring", "nonsat", "tiny")
  assert row["steps"] == config.train.steps and row["num_modes"] == 8 and row["hq_target"] == 97.0
  for name in ("modes", "hq", "reverse_kl"):
    values = row["per_seed"][name]
    assert len(values) == 3
    assert isinstance(row[f"{name}_mean"], float) and isinstance(row[f"{name}_se"], float)
    np.testing.assert_allclose(row[f"{name}_mean"], np.mean(values), rtol=1e-12)
    np.testing.assert_allclose(row[f"{name}_se"], np.std(values, ddof=1) / np.sqrt(3), rtol=1e-9)
  assert all(isinstance(m, int) and 0 <= m <= 8 for m in row["per_seed"]["modes"])
  assert all(0.0 <= hq <= 100.0 for hq in row["per_seed"]["hq"])
  assert isinstance(row["all_modes_and_hq_target_seeds"], int)
  # Seconds rounded to 0.1: a warm compile cache leaves 0.0 for the tiny run's training.
  for name in ("compile_seconds", "train_seconds", "wall_seconds"):
    assert isinstance(row[name], float) and math.isfinite(row[name]) and row[name] >= 0, name
  assert row["wall_seconds"] >= row["train_seconds"]
  lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [line["step"] for line in lines] == [10, 20]
  assert {"d_loss", "g_loss", "modes_mean", "high_quality_mean", "reverse_kl_mean"} <= set(lines[0])
  np.testing.assert_allclose(lines[-1]["modes_mean"], row["modes_mean"], rtol=1e-6)
  assert (workdir / "samples.png").stat().st_size > 0


def test_summary_counts_seeds_that_reach_the_target():
  row = mode_collapse.summarize(
      {"modes": np.array([25, 25, 24, 25]), "high_quality": np.array([0.96, 0.94, 0.99, 0.95]),
       "reverse_kl": np.array([0.0, 0.1, 0.2, 0.3])}, data_name="grid", num_modes=25)
  assert row["all_modes_and_hq_target_seeds"] == 2
  np.testing.assert_allclose(row["hq_mean"], 96.0)
  np.testing.assert_allclose(row["modes_se"], 0.25)


@pytest.mark.parametrize("field, value, message", [
    ("seeds", 0, "seeds must be a positive integer, got 0"),
    ("data.name", "mixture_1d", "the mode-collapse benchmark needs data.name ring or grid, not "
     "'mixture_1d'"),
    ("train.batch_size", 33, "train.batch_size 33 is not divisible by the discriminator's pack 2"),
])
def test_bad_config_is_one_line(tmp_path, field, value, message):
  config = experiment("tiny,pack2")
  section, _, name = field.rpartition(".")
  setattr(config[section] if section else config, name, value)
  with pytest.raises(runner.RunError, match=message) as error:
    runner.train_and_evaluate(config, tmp_path / "run")
  assert "\n" not in str(error.value)
  assert not (tmp_path / "run").exists()


def test_non_empty_workdir_is_refused_untouched(tmp_path):
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(runner.RunError, match="not a new or empty directory"):
    runner.train_and_evaluate(experiment("tiny"), tmp_path)
  assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_experiment_arguments():
  config = experiment("grid,pacgan,pack3")
  assert config.data.name == "grid" and config.benchmark.preset == "pacgan"
  assert config.model.discriminator_kwargs.pack == 3 and config.train.batch_size == 300
  assert config.model.generator_kwargs.hidden == (400, 400, 400, 400)
  assert experiment(None).benchmark.config == "nonsat"
  with pytest.raises(ValueError, match="unknown word 'gan'.*tiny"):
    experiment("ring,gan")
  assert experiment("ring,fast,pack2").optimizer.generator.decay_steps == 0
  # decay: both learning rates decay over train.steps, also after train.steps is overridden.
  decayed = experiment("wgan_gp,decay,grid")
  decayed.train.steps = 3000
  assert decayed.optimizer.generator.decay_steps == 3000
  assert decayed.optimizer.discriminator.decay_steps == 3000 * 5 == 3000 * decayed.train.n_critic


# ----------------------------------------------------------------------------- packed training


def packed_state(pack, **spec_kwargs):
  generator = models.get_generator("mlp", output_dim=2, hidden=(16,), activation="tanh")
  discriminator = models.get_discriminator("mlp", hidden=(16, 16), maxout_pieces=3, pack=pack)
  spec = train.GANSpec(**{"latent_dim": 4, "batch_size": 12, **spec_kwargs})
  return train.create_state(generator, discriminator, optax.adam(1e-3), optax.adam(1e-3), spec,
                            (2,), 0)


@pytest.mark.parametrize("pack", [2, 3])
def test_packed_discriminator_step_takes_one_logit_per_pack(pack):
  state = packed_state(pack)
  real = toy.ring().sample(jax.random.PRNGKey(1), 12)
  # The fakes the step draws, rebuilt from its key.
  z = train._latents(state, train._discriminator_key(state), None, 1)
  fake = state.generator.apply({"params": state.g_params}, z, train=False)
  apply = lambda x: state.discriminator.apply({"params": state.d_params}, x, train=False)
  real_logits, fake_logits = apply(real), apply(fake)
  assert real_logits.shape == fake_logits.shape == (12 // pack,)
  expected = losses.discriminator_loss(real_logits, fake_logits)
  _, step_metrics = train.d_step(state, real)
  np.testing.assert_allclose(step_metrics["d_loss"], expected, rtol=1e-5)
  state, step_metrics = train.train_step(packed_state(pack), real[None])
  assert int(state.step) == 1 and all(np.isfinite(v) for v in step_metrics.values())


def test_r1_on_a_packed_discriminator_is_the_per_pack_penalty_over_m():
  pack = 3
  state = packed_state(pack, penalty="r1", penalty_weight=1.0)
  real = toy.ring().sample(jax.random.PRNGKey(2), 12)
  inner = lambda packs: state.discriminator.inner.apply(
      {"params": state.d_params["inner"]}, packs, train=False)
  packs = packing.pack_samples(real, pack)
  gradients = jax.grad(lambda x: jnp.sum(inner(x)))(packs)
  per_pack = float(jnp.mean(jnp.sum(gradients ** 2, axis=-1)))
  _, step_metrics = train.d_step(state, real)
  np.testing.assert_allclose(step_metrics["d_penalty"], per_pack / pack, rtol=1e-4)


def test_wgan_gp_on_a_packed_discriminator_trains():
  state = packed_state(2, loss="wasserstein", penalty="gradient_penalty", penalty_weight=10.0,
                       data=toy.ring())
  state, step_metrics = train.train_steps(state, num_steps=3)
  assert int(state.step) == 3
  assert all(np.isfinite(v).all() for v in step_metrics.values())
  assert (step_metrics["d_penalty"] > 0).all()
