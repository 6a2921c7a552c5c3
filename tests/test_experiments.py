"""Every experiment file: loads like `config_flags` loads it, has the common fields, names valid
components, documents its command, and its models fit its data (checked abstractly with
`jax.eval_shape`, so nothing is compiled)."""
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

from ganjax import experiment
from ganjax import losses
from ganjax import models
from ganjax import regularizers
from ganjax import train
from ganjax.data import images
from ganjax.data import toy

EXPERIMENTS = pathlib.Path(__file__).resolve().parent.parent / "experiments"
FILES = sorted(path.name for path in EXPERIMENTS.glob("*.py") if not path.name.startswith("_"))
COMMON_FIELDS = (
    "seed", "data.name", "model.generator", "model.generator_kwargs", "model.discriminator",
    "model.discriminator_kwargs", "model.latent_dim", "loss", "penalty.name", "penalty.weight",
    "optimizer.generator", "optimizer.discriminator", "train.steps", "train.batch_size",
    "train.n_critic", "train.ema_decay", "train.parallel", "train.log_every",
    "train.checkpoint_every", "train.sample_every", "eval.num_samples")


def _module(file_name):
  spec = importlib.util.spec_from_file_location(f"experiment_{file_name[:-3]}",
                                                EXPERIMENTS / file_name)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _field(config, dotted):
  for name in dotted.split("."):
    config = config[name]
  return config


def _is_toy(config):
  return config.data.name in toy.DISTRIBUTIONS


def test_there_are_toy_and_image_experiments():
  assert {"ring.py", "grid.py", "gaussian_1d.py", "mnist_dcgan.py", "cifar10_dcgan.py",
          "cifar10_wgan_gp.py", "cifar10_sngan.py", "celeba64_dcgan.py"} <= set(FILES)


@pytest.mark.parametrize("file_name", FILES)
def test_docstring_starts_with_the_commands(file_name):
  module = _module(file_name)
  summary, blank, full, tiny = module.__doc__.splitlines()[:4]
  assert summary and not blank
  command = f"python -m ganjax.main --config=experiments/{file_name}"
  assert full.strip().startswith(command + " --workdir=")
  assert tiny.strip().startswith(command + ":tiny --workdir=")


@pytest.mark.parametrize("file_name", FILES)
@pytest.mark.parametrize("arg", [None, "tiny"])
def test_config_has_the_common_fields_and_valid_names(file_name, arg):
  config = _module(file_name).get_config(arg)
  assert isinstance(config, ml_collections.ConfigDict)
  for dotted in COMMON_FIELDS:
    _field(config, dotted)
  assert config.data.name in toy.DISTRIBUTIONS or config.data.name in images.VALID_NAMES
  losses.get(config.loss)
  if config.penalty.name:
    regularizers.get(config.penalty.name)
  assert config.train.parallel in train.PARALLEL_MODES
  for field in ("steps", "log_every", "checkpoint_every", "sample_every"):
    assert isinstance(config.train[field], int) and config.train[field] >= 0
  # Builds both modules, both optimizers and the spec (which checks the loss and penalty).
  experiment.build_players(config)


@pytest.mark.parametrize("file_name", FILES)
def test_tiny_is_small_and_writes_everything(file_name):
  full, tiny = _module(file_name).get_config(), _module(file_name).get_config("tiny")
  assert tiny.train.steps <= 500 and tiny.train.batch_size <= 64
  assert tiny.train.steps < full.train.steps
  # The GAN trainer checkpoints and draws pictures; the seeds-side-by-side benchmark does not.
  periods = (("log_every", "checkpoint_every", "sample_every")
             if tiny.get("program", "gan") == "gan" else ("log_every",))
  for field in periods:
    assert 0 < tiny.train[field] <= tiny.train.steps, field


@pytest.mark.parametrize("file_name", FILES)
def test_bad_argument_is_a_value_error_listing_tiny(file_name):
  with pytest.raises(ValueError, match="tiny"):
    _module(file_name).get_config("huge")


@pytest.mark.parametrize("file_name", FILES)
def test_models_fit_the_data(file_name):
  for arg in (None, "tiny"):
    config = _module(file_name).get_config(arg)
    # With the data's number of classes for a class-conditional experiment (read from the
    # dataset's metadata, which TFDS knows before the data is prepared).
    generator, discriminator, _, _, spec = experiment.build_players(config, check_data=False)
    if _is_toy(config):
      data_shape = toy.get(config.data.name, **dict(config.data.kwargs)).shape
    else:
      data_shape = images.image_shape(config.data)
    z = jnp.zeros((2, config.model.latent_dim))
    labels = (jnp.zeros((2,), jnp.int32),) if spec.num_classes else ()
    fake = jax.eval_shape(lambda z: generator.apply(
        generator.init(jax.random.PRNGKey(0), z, *labels, train=False), z, *labels,
        train=False), z)
    assert fake.shape == (2, *data_shape), (arg, fake.shape, data_shape)
    output = jax.eval_shape(lambda x: discriminator.apply(
        discriminator.init(jax.random.PRNGKey(0), x, *labels, train=False), x, *labels,
        train=False), fake)
    logits, heads = train.split_output(output)
    assert logits.shape == (2,)
    for head in heads.values():
      assert head.shape == (2, spec.num_classes)


@pytest.mark.parametrize("file_name", [name for name in FILES
                                       if _is_toy(_module(name).get_config("tiny"))])
def test_toy_tiny_builds_a_state(file_name):
  config = _module(file_name).get_config("tiny")
  state = jax.eval_shape(lambda: experiment.create_state_from_config(config))
  assert state.step.shape == () and state.spec.data is not None


@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
def test_command_line_overrides_reach_the_fields():
  argv = ["main", f"--config={EXPERIMENTS / 'cifar10_sngan.py'}:tiny",
          "--config.data.data_dir=/data/tfds", "--config.train.steps=7",
          "--config.optimizer.generator.learning_rate=1e-3"]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=flag_values, sys_argv=argv)
  flag_values(argv)
  config = flag_values.config
  assert config.data.data_dir == "/data/tfds"
  assert config.train.steps == 7 and config.optimizer.generator.learning_rate == 1e-3
  assert config.model.generator_kwargs.features == 8
