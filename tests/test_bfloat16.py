"""bfloat16 compute (`model.dtype`): a step's losses against float32's on the same batch, the
penalties' gradients finite, the parameters float32, and the config's checks."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import experiment as experiment_lib
from ganjax import models
from ganjax import train
from _trees import config_from_command_line, load_experiment

# The image experiments, each at its :tiny size, and a penalty where its config has none.
WORKLOADS = {
    "dcgan": ("mnist_dcgan", {}),
    "dcgan_r1": ("mnist_dcgan", {"penalty.name": "r1", "penalty.weight": 5.0}),
    "sngan": ("cifar10_sngan", {}),
    "wgan_gp": ("cifar10_wgan_gp", {}),
    "biggan": ("cifar10_biggan", {}),
    "stylegan2": ("cifar10_stylegan2_ada", {"penalty.every": 1}),
}
PENALISED = ("dcgan_r1", "stylegan2", "wgan_gp")  # R1, R1, WGAN-GP


def _config(name, dtype, overrides):
  config = load_experiment(name)
  config.model.dtype = dtype
  for field, value in overrides.items():
    section, key = field.split(".")
    config[section][key] = value
  return config


def _batch(built, rng):
  """One real batch in the layout train_step takes: (n_critic, batch, ...), with labels for a
  class-conditional experiment."""
  spec = built.spec
  images = rng.uniform(-1, 1, (spec.n_critic, spec.batch_size, *built.data_shape))
  images = jnp.asarray(images, jnp.float32)
  if not spec.num_classes:
    return images
  labels = rng.integers(0, spec.num_classes, (spec.n_critic, spec.batch_size))
  return images, jnp.asarray(labels, jnp.int32)


def _step(name, dtype, overrides):
  built = experiment_lib.build(_config(name, dtype, overrides), check_data=False)
  state = built.create_state(0)
  before = jax.device_get((state.g_params, state.d_params))
  state, metrics = train.train_step(state, _batch(built, np.random.default_rng(0)))
  return built, before, jax.device_get(state), jax.device_get(metrics)


@functools.cache
def _steps(workload):
  name, overrides = WORKLOADS[workload]
  return workload, {dtype: _step(name, dtype, overrides) for dtype in ("float32", "bfloat16")}


@pytest.fixture(params=sorted(WORKLOADS))
def steps(request):
  return _steps(request.param)


@pytest.fixture(params=PENALISED)
def penalised_steps(request):
  return _steps(request.param)


def test_the_networks_compute_in_the_dtype_model_dtype_names(steps):
  _, runs = steps
  for dtype, (built, *_) in runs.items():
    for module in (built.generator, built.discriminator):
      # StyleGAN2's field holds the name; the others' the dtype itself.
      assert module.dtype in (dtype, jnp.dtype(dtype))


def test_bfloat16_starts_from_float32_parameters_equal_to_float32s(steps):
  _, runs = steps
  (_, before_32, _, _), (_, before_16, _, _) = runs["float32"], runs["bfloat16"]
  for a, b in zip(jax.tree.leaves(before_32), jax.tree.leaves(before_16)):
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_a_bfloat16_step_keeps_float32_parameters_and_optimizer_state(steps):
  _, runs = steps
  _, _, state, _ = runs["bfloat16"]
  floats = [leaf for leaf in jax.tree.leaves((state.g_params, state.d_params, state.g_opt_state,
                                              state.d_opt_state))
            if jnp.issubdtype(leaf.dtype, jnp.floating)]
  assert floats and all(leaf.dtype == np.float32 for leaf in floats)
  assert all(np.all(np.isfinite(leaf)) for leaf in floats)


def test_a_bfloat16_steps_losses_are_float32_and_near_float32s(steps):
  name, runs = steps
  metrics_32, metrics_16 = runs["float32"][3], runs["bfloat16"][3]
  compared = [key for key in ("d_loss", "g_loss", "d_real", "d_fake", "d_penalty")
              if key in metrics_32]
  assert {"d_loss", "g_loss"} <= set(compared)
  for key in compared:
    assert metrics_16[key].dtype == np.float32, key
    assert np.isfinite(metrics_16[key]), key
    # bfloat16 keeps 8 significant bits, a relative rounding of up to 2^-9 per operation, and
    # it accumulates over the layers: measured on these tiny networks, the largest differences
    # were BigGAN's g_loss (1.045 against 1.017, 2.7%), SNGAN's g_loss (0.7% of 8.6) and
    # StyleGAN2's R1 penalty (4% of 4e-4). 5% relative plus 0.02 absolute holds those with
    # room; a network computing in the wrong dtype or a loss lost to overflow would not.
    np.testing.assert_allclose(metrics_16[key], metrics_32[key], rtol=0.05, atol=0.02,
                               err_msg=f"{name}: {key}")


def test_the_penalties_gradients_are_finite_in_bfloat16(penalised_steps):
  """R1 and WGAN-GP differentiate the input gradient (a second derivative, where mixed
  precision is reported to produce NaNs); the penalty and the update it drives stay finite."""
  _, runs = penalised_steps
  _, _, state, metrics = runs["bfloat16"]
  assert np.isfinite(metrics["d_penalty"]) and metrics["d_penalty"] > 0
  assert np.isfinite(metrics["d_grad_norm"]) and metrics["d_grad_norm"] > 0


def test_penalty_gradients_in_bfloat16_match_float32_direction():
  """The R1 penalty's gradient with respect to D's parameters, in bfloat16 against float32 on the
  same parameters and batch: finite, and pointing the same way (cosine near 1)."""
  from ganjax import regularizers
  config = _config("mnist_dcgan", "float32", {})
  built = experiment_lib.build(config, check_data=False)
  state = built.create_state(0)
  real = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (16, *built.data_shape)),
                     jnp.float32)
  grads = {}
  for dtype in ("float32", "bfloat16"):
    discriminator = built.discriminator.clone(dtype=models.compute_dtype(dtype))

    def penalty(d_params):
      disc_fn = lambda x: discriminator.apply({"params": d_params, **state.d_collections}, x,
                                              train=True, mutable=list(state.d_collections))[0]
      return regularizers.r1_penalty(disc_fn, real)

    grads[dtype] = jax.flatten_util.ravel_pytree(jax.grad(penalty)(state.d_params))[0]
  assert np.all(np.isfinite(grads["bfloat16"]))
  a, b = np.asarray(grads["float32"]), np.asarray(grads["bfloat16"], np.float32)
  cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
  # Rounding to 8 bits perturbs each entry by ~1%; the direction of the whole gradient barely
  # moves (measured cosine 0.99989). A gradient gone wrong (NaN, or an overflowed second
  # derivative) would be far from 1.
  assert cosine > 0.99


def test_model_dtype_on_the_command_line():
  config = config_from_command_line("--config=experiments/cifar10_sngan.py:tiny",
                                    "--config.model.dtype=bfloat16")
  generator, discriminator, *_ = experiment_lib.build_players(config, check_data=False)
  assert generator.dtype == discriminator.dtype == jnp.bfloat16


def test_an_empty_model_dtype_keeps_each_networks_own_default():
  for name, expected in (("cifar10_sngan", jnp.float32), ("cifar10_stylegan2_ada", "auto")):
    config = load_experiment(name)
    assert config.model.dtype == ""
    generator, discriminator, *_ = experiment_lib.build_players(config, check_data=False)
    assert generator.dtype == discriminator.dtype == expected


def test_a_config_without_model_dtype_builds_as_before():
  config = load_experiment("cifar10_sngan")
  del config.model["dtype"]
  generator, *_ = experiment_lib.build_players(config, check_data=False)
  assert generator.dtype == jnp.float32
  saved = experiment_lib.config_to_dict(config)
  assert experiment_lib.config_differences(
      saved, experiment_lib.config_to_dict(load_experiment("cifar10_sngan"))) == []


@pytest.mark.parametrize("value, message", [
    ("float16", r"^model.dtype must be '' \(each network's own\) or one of auto, float32, "
                r"bfloat16, got 'float16'$"),
])
def test_a_bad_model_dtype_is_one_line(value, message):
  config = load_experiment("cifar10_sngan")
  config.model.dtype = value
  with pytest.raises(experiment_lib.RunError, match=message):
    experiment_lib.build(config, check_data=False)


def test_model_dtype_and_a_networks_own_dtype_are_not_both_set():
  config = load_experiment("cifar10_sngan")
  config.model.dtype = "bfloat16"
  config.model.generator_kwargs.dtype = "float32"
  with pytest.raises(experiment_lib.RunError,
                     match=r"^model.dtype and model.generator_kwargs.dtype are both set; set one$"):
    experiment_lib.build(config, check_data=False)
