"""The experiment layer: what a config describes, built and checked before anything compiles, and
the rules of a run's workdir.

Above the library (losses, models, data, train, metrics, evaluation, checkpoint) and below the
programs (`ganjax.programs`): the programs build their players with `build(config)`, decide
with `resume_step` whether a workdir is theirs to resume, and report what a user can fix as a
`RunError` in one line. Only `ganjax.errors.ConfigError`, the library's error for a value a
user chose, becomes a `RunError` here; anything else is a bug and keeps its traceback.

Config fields read by `build` (an experiment file's `get_config()`):
  seed; loss; penalty.name, penalty.weight, penalty.every, penalty.orthogonal_weight;
  regularizer.cr_real, regularizer.cr_fake, regularizer.cr_policy, regularizer.lecam,
  regularizer.lecam_decay, regularizer.path_length (and its decay, shrink, every);
  augment.policy, augment.p, augment.target, augment.speed,
  augment.interval (image data only); conditional.enabled,
  conditional.fake_labels, conditional.classifier_weight, conditional.num_classes (`labels`);
  model.generator, model.generator_kwargs,
  model.discriminator, model.discriminator_kwargs, model.latent_dim; optimizer.generator,
  optimizer.discriminator (`make_optimizer`); train.steps, train.batch_size, train.n_critic,
  train.ema_decay, train.ema_kimg, train.ema_rampup, train.reuse_fakes, train.parallel,
  train.critic_warmup (steps, n_critic, every); data.name and data.kwargs (toy data) or the
  image fields of `ganjax.data.images`.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import typing
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ganjax import configs
from ganjax import errors
from ganjax import losses
from ganjax import metrics as metrics_lib
from ganjax import models
from ganjax import regularizers
from ganjax import train
from ganjax import workdir as workdir_lib
from ganjax.data import toy
from ganjax.errors import ConfigError

# Config fields that may change when a run is resumed; any other difference means the workdir
# holds another experiment.
RESUMABLE_FIELDS = ("train.steps", "train.log_every", "train.checkpoint_every",
                    "train.sample_every", "train.keep_checkpoints", "train.parallel",
                    "train.profile_steps", "eval", "data.data_dir")
# Fields added to every GAN config after runs were saved without them, with the defaults that
# mean what those runs did.
ADDED_FIELDS = {"data.shards": 0, "model.dtype": "", "penalty.orthogonal_weight": 0.0,
                "conditional.enabled": False, "conditional.fake_labels": "uniform",
                "conditional.classifier_weight": 1.0,
                "conditional.num_classes": None, "penalty.every": 1,
                **{f"regularizer.{name}": value
                   for name, value in configs.regularizer_config().items()},
                **{f"augment.{name}": value for name, value in configs.augment_config().items()},
                **{f"train.{name}": configs.TRAIN_DEFAULTS[name]
                   for name in ("ema_kimg", "ema_rampup")}}
# What a new run may find in its workdir before its first checkpoint: its own lock, the
# checkpoint folder, and the feature classifier an earlier, interrupted start trained.
FIRST_FILES = (workdir_lib.LOCK_FILE, "checkpoints", "classifier.msgpack")
# The stream of the fixed latents of sample pictures, evaluations and summaries.
SAMPLE_STREAM = 0x5A3E
_REQUIRED = object()


class RunError(Exception):
  """A problem the user can fix (a bad config field, a workdir in use, a diverged run)."""


class Preempted(RunError):
  """The run received SIGTERM or SIGINT and saved a checkpoint before stopping."""

  def __init__(self, message: str, signal_number: int):
    super().__init__(message)
    self.signal_number = signal_number


def field(config: Any, name: str, default: Any = _REQUIRED) -> Any:
  """The config field `name` ('model.latent_dim'), or `default` when it is absent or None.

  Raises:
    ConfigError: the field is absent and has no default.
  """
  node = config
  for part in name.split("."):
    if node is None or not hasattr(node, "get") or part not in node:
      if default is _REQUIRED:
        raise ConfigError(f"the config has no field {name!r}")
      return default
    node = node[part]
  return default if node is None and default is not _REQUIRED else node


# ----------------------------------------------------------------------------- building


def make_optimizer(config: Mapping[str, Any], lazy_every: int = 1) -> optax.GradientTransformation:
  """An optax optimizer from a config block such as {'name': 'adam', 'learning_rate': 2e-4,
  'b1': 0.5}.

  Optional entries: 'clip' (weight clipping, WGAN); 'decay_steps' and 'decay_to': the learning
  rate falls linearly from learning_rate to learning_rate * decay_to over decay_steps updates (one
  per update of that player: n_critic updates per training step) and stays there (decay_steps 0
  or absent: constant).

  With `lazy_every` k > 1 (lazy regularisation every k updates, `penalty.every`), the learning
  rate is multiplied by c = k / (k + 1) and Adam's betas raised to the power c
  (`regularizers.lazy_optimizer_correction`; StyleGAN2's appendix B); other optimizers get the
  learning rate's correction only.

  Raises:
    ConfigError: an unknown optimizer, or settings it does not take.
  """
  config = dict(config)
  name = config.pop("name", "adam")
  ratio = regularizers.lazy_optimizer_correction(lazy_every)
  if ratio != 1.0:
    if "learning_rate" not in config:
      raise ConfigError("lazy regularisation corrects the optimizer's learning_rate, which the "
                        "optimizer block does not set")
    config["learning_rate"] = config["learning_rate"] * ratio
    if name in ("adam", "adamw"):
      config["b1"] = config.get("b1", 0.9) ** ratio
      config["b2"] = config.get("b2", 0.999) ** ratio
  clip = config.pop("clip", None)
  decay_steps = config.pop("decay_steps", 0) or 0
  decay_to = config.pop("decay_to", 0.0)
  if decay_steps:
    if not (isinstance(decay_steps, int) and decay_steps > 0 and 0.0 <= decay_to <= 1.0):
      raise ConfigError(f"optimizer decay_steps must be a positive int and decay_to in [0, 1], "
                        f"got {decay_steps!r}, {decay_to!r}")
    if "learning_rate" not in config:
      raise ConfigError("optimizer decay_steps needs a learning_rate")
    config["learning_rate"] = optax.linear_schedule(
        config["learning_rate"], config["learning_rate"] * decay_to, decay_steps)
  builders = {"adam": optax.adam, "adamw": optax.adamw, "rmsprop": optax.rmsprop,
              "sgd": optax.sgd}
  if name not in builders:
    raise ConfigError(f"unknown optimizer {name!r}; valid names: {', '.join(sorted(builders))}")
  try:
    tx = builders[name](**config)
  except TypeError as error:
    raise ConfigError(f"optimizer {name!r}: {error}") from None
  if clip:
    tx = optax.chain(tx, regularizers.weight_clipping(clip))
  return tx


FAKE_LABELS = ("uniform", "data")


def _toy_data(config) -> toy.GaussianMixture | None:
  data_name = field(config, "data.name", None)
  return (toy.get(data_name, **dict(field(config, "data.kwargs", {})))
          if data_name in toy.DISTRIBUTIONS else None)


def labels(config, check_data: bool = True) -> tuple[int, tuple[float, ...] | None]:
  """(num_classes, fake_label_weights) of a config's `conditional` block: (0, None) for an
  unconditional run; otherwise the number of classes of the data (a toy mixture's components,
  an image dataset's 'label' feature, or `conditional.num_classes` where a run has recorded it)
  and, with `conditional.fake_labels='data'`, the data's class frequencies (uniform fake labels:
  None; they are only read with `check_data`, as training needs them and sampling does not).

  Raises:
    ConfigError: an invalid field, a dataset without labels, or a recorded number of classes
      that is not the dataset's.
  """
  if not field(config, "conditional.enabled", False):
    return 0, None
  fake = field(config, "conditional.fake_labels", "uniform")
  if fake not in FAKE_LABELS:
    raise ConfigError(f"conditional.fake_labels {fake!r} is not one of: {', '.join(FAKE_LABELS)}")
  recorded = field(config, "conditional.num_classes", None)
  data = _toy_data(config)
  if data is not None:
    num_classes, frequencies = data.num_classes, data.weights
  elif recorded is not None and not check_data:
    return int(recorded), None
  else:
    from ganjax.data import images
    num_classes = images.num_classes(config.data)
    frequencies = images.class_frequencies(config.data) if fake == "data" else None
  if recorded is not None and recorded != num_classes:
    raise ConfigError(f"conditional.num_classes is {recorded}, but the data has {num_classes} "
                      "classes")
  return num_classes, (tuple(float(f) for f in frequencies) if fake == "data" else None)


def _conditional_kwargs(kind: str, name: str, kwargs: dict[str, Any], num_classes: int,
                        registry: dict[str, Any]) -> dict[str, Any]:
  """The model's fields with `num_classes` added for a class-conditional run."""
  if not num_classes:
    return kwargs
  module_class = errors.lookup(registry, name, kind)
  if "num_classes" not in models.module_fields(module_class):
    conditional = sorted(n for n, c in registry.items() if "num_classes" in models.module_fields(c))
    raise ConfigError(f"{kind} {name!r} is not class-conditional (conditional.enabled); "
                      f"class-conditional {kind}s: {', '.join(conditional)}")
  return {**kwargs, "num_classes": num_classes}


def _with_dtype(kind: str, name: str, kwargs: dict[str, Any], dtype: str,
                registry: dict[str, Any]) -> dict[str, Any]:
  """The model's fields with the compute dtype `model.dtype` names ('' leaves the network's
  own default: float32, StyleGAN2's 'auto')."""
  if not dtype:
    return kwargs
  if dtype not in models.DTYPES:
    raise ConfigError(f"model.dtype must be '' (each network's own) or one of "
                      f"{', '.join(models.DTYPES)}, got {dtype!r}")
  if "dtype" in kwargs:
    raise ConfigError(f"model.dtype and model.{kind}_kwargs.dtype are both set; set one")
  module_class = errors.lookup(registry, name, kind)
  by_name = typing.get_type_hints(module_class).get("dtype") is str
  return {**kwargs, "dtype": dtype if by_name else models.compute_dtype(dtype)}


def build_players(config: Any, check_data: bool = True
                  ) -> tuple[Any, Any, Any, Any, train.GANSpec]:
  """(generator, discriminator, g_tx, d_tx, spec) from an experiment config.

  Raises:
    ConfigError: a missing or invalid field, naming it.
  """
  num_classes, fake_label_weights = labels(config, check_data)
  added = lambda name: field(config, name, ADDED_FIELDS[name])  # a field older configs lack
  dtype = added("model.dtype")

  def player_kwargs(kind, registry):
    name = field(config, f"model.{kind}")
    given = dict(field(config, f"model.{kind}_kwargs", {}))
    given = _with_dtype(kind, name, given, dtype, registry)
    return name, _conditional_kwargs(kind, name, given, num_classes, registry)

  g_name, g_kwargs = player_kwargs("generator", models.GENERATORS)
  d_name, d_kwargs = player_kwargs("discriminator", models.DISCRIMINATORS)
  generator = models.get_generator(g_name, **g_kwargs)
  discriminator = models.get_discriminator(d_name, **d_kwargs)
  conditioning = getattr(discriminator, "conditioning", "") if num_classes else ""
  spec = train.GANSpec(
      loss=field(config, "loss"),
      latent_dim=field(config, "model.latent_dim"),
      batch_size=field(config, "train.batch_size"),
      penalty=field(config, "penalty.name", None) or None,
      penalty_weight=float(field(config, "penalty.weight", 0.0)),
      n_critic=field(config, "train.n_critic", 1),
      critic_warmup_steps=field(config, "train.critic_warmup.steps", 0),
      critic_warmup_n=field(config, "train.critic_warmup.n_critic", 100),
      critic_warmup_every=field(config, "train.critic_warmup.every", 0),
      ema_decay=float(field(config, "train.ema_decay", 0.0)),
      reuse_fakes=bool(field(config, "train.reuse_fakes", False)),
      data=_toy_data(config),
      num_classes=num_classes,
      fake_label_weights=fake_label_weights,
      classifier=conditioning if conditioning in losses.CLASSIFIERS else "",
      classifier_weight=float(field(config, "conditional.classifier_weight", 1.0)),
      orthogonal_weight=float(field(config, "penalty.orthogonal_weight", 0.0)),
      penalty_every=added("penalty.every"),
      augment=added("augment.policy"),
      augment_p=float(added("augment.p")),
      ada_target=float(added("augment.target")),
      ada_speed=float(added("augment.speed")),
      ada_interval=added("augment.interval"),
      cr_real=float(added("regularizer.cr_real")),
      cr_fake=float(added("regularizer.cr_fake")),
      cr_policy=added("regularizer.cr_policy"),
      lecam_weight=float(added("regularizer.lecam")),
      lecam_decay=float(added("regularizer.lecam_decay")),
      ema_kimg=float(added("train.ema_kimg")),
      ema_rampup=float(added("train.ema_rampup")),
      path_length_weight=float(added("regularizer.path_length")),
      path_length_decay=float(added("regularizer.path_length_decay")),
      path_length_shrink=added("regularizer.path_length_shrink"),
      path_length_every=added("regularizer.path_length_every"),
  )
  if spec.data is not None and (spec.augment or spec.cr_real or spec.cr_fake):
    raise ConfigError("augment.policy and regularizer.cr_real/cr_fake transform images; data.name "
                      f"{field(config, 'data.name')!r} is not image data")
  g_tx = make_optimizer(field(config, "optimizer.generator"),
                        spec.path_length_every if spec.path_length_weight else 1)
  d_tx = make_optimizer(field(config, "optimizer.discriminator"), spec.penalty_every)
  return generator, discriminator, g_tx, d_tx, spec


@dataclasses.dataclass(frozen=True)
class Experiment:
  """What a config describes, built and validated before anything compiles."""
  generator: Any
  discriminator: Any
  g_tx: Any
  d_tx: Any
  spec: train.GANSpec
  data_shape: tuple[int, ...]

  def create_state(self, seed: int | jax.Array) -> train.GANState:
    """`train.create_state` for these players (pure in `seed`)."""
    return train.create_state(self.generator, self.discriminator, self.g_tx, self.d_tx,
                              self.spec, self.data_shape, seed)

  def abstract_state(self, seed: int) -> train.GANState:
    """The state's structure, shapes and dtypes (what a checkpoint is restored into)."""
    return jax.eval_shape(self.create_state, seed)

  def create_seed_states(self, seeds: np.ndarray) -> train.GANState:
    """One state per seed, stacked on a leading axis (`train.create_seed_states`)."""
    return train.create_seed_states(self.generator, self.discriminator, self.g_tx, self.d_tx,
                                    self.spec, self.data_shape, seeds)


def _data_shape(config, spec: train.GANSpec, check_data: bool) -> tuple[int, ...]:
  if spec.data is not None:
    return tuple(spec.data.shape)
  from ganjax.data import images
  name = field(config, "data.name", None)
  if name not in images.VALID_NAMES:
    raise ConfigError(f"unknown dataset {name!r} (data.name); valid names: "
                      f"{', '.join(sorted((*images.VALID_NAMES, *toy.DISTRIBUTIONS)))}")
  if check_data:
    images.check_dataset(config.data)
  images.num_shards(config.data, jax.process_count(), spec.batch_size)
  return tuple(images.image_shape(config.data))


def build(config, check_data: bool = True) -> Experiment:
  """Models, optimizers and spec from a config, every name and field checked (and, with
  `check_data`, that an image dataset is prepared), and the players' shapes checked against
  the data's by tracing their initialisation (nothing is compiled).

  Raises:
    RunError: naming the field at fault and the valid choices.
  """
  try:
    steps = field(config, "train.steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
      raise ConfigError(f"train.steps must be a positive integer, got {steps!r}")
    parallel = field(config, "train.parallel", "none")
    if parallel not in train.PARALLEL_MODES:
      raise ConfigError(f"train.parallel {parallel!r} is not one of: "
                        f"{', '.join(train.PARALLEL_MODES)}")
    if parallel == "none" and jax.process_count() > 1:
      raise ConfigError(f"train.parallel 'none' on {jax.process_count()} processes would train "
                        "one unrelated copy on each; set train.parallel=pmap or shard_map")
    field(config, "seed")
    generator, discriminator, g_tx, d_tx, spec = build_players(config, check_data)
    experiment = Experiment(generator, discriminator, g_tx, d_tx, spec,
                            _data_shape(config, spec, check_data))
    experiment.abstract_state(config.seed)
  except ConfigError as error:
    raise RunError(str(error).splitlines()[0]) from None
  return experiment


def record_labels(config, spec: train.GANSpec):
  """The config with `conditional.num_classes` set to a class-conditional run's number of
  classes (unchanged for an unconditional run), as the run saves it, so that its checkpoints
  can be read where the dataset is not (`ganjax.sample`, `ganjax.evaluate`)."""
  if not spec.num_classes:
    return config
  config = config.copy_and_resolve_references()
  config.conditional.num_classes = spec.num_classes
  return config


def create_state_from_config(config: Any, data_shape: tuple[int, ...] | None = None,
                             seed: int | jax.Array | None = None) -> train.GANState:
  """`train.create_state` with modules, optimizers and spec built from an experiment config
  (the fields of `build_players`; `data_shape` is needed for image data).

  Raises:
    ConfigError: a missing or invalid field.
  """
  generator, discriminator, g_tx, d_tx, spec = build_players(config, check_data=False)
  if data_shape is None:
    if spec.data is None:
      raise ConfigError("data_shape is needed when the data is not a toy distribution")
    data_shape = spec.data.shape
  return train.create_state(generator, discriminator, g_tx, d_tx, spec, data_shape,
                            config.seed if seed is None else seed)


# ----------------------------------------------------------------------------- configs as data


def config_to_dict(config) -> dict[str, Any]:
  """The config as plain JSON-compatible data (tuples become lists)."""
  as_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  return json.loads(json.dumps(as_dict))


def config_from_dict(data: dict[str, Any]) -> ml_collections.ConfigDict:
  """A ConfigDict from `config_to_dict` output, lists turned back into tuples (module fields
  must be hashable)."""
  def tuples(value):
    if isinstance(value, dict):
      return {k: tuples(v) for k, v in value.items()}
    if isinstance(value, list):
      return tuple(tuples(v) for v in value)
    return value
  return ml_collections.ConfigDict(tuples(data))


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in data.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(_flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
  """The dotted names of the fields in which two configs (as dicts) differ, but for the
  `RESUMABLE_FIELDS`, sorted. A field that the saved config lacks because it was added later
  (`ADDED_FIELDS`) is no difference while the current config keeps its default."""
  def relevant(name):
    return not any(name == f or name.startswith(f + ".") for f in RESUMABLE_FIELDS)
  saved, current = _flatten(saved), _flatten(current)
  for name, default in ADDED_FIELDS.items():
    if name not in saved and current.get(name, default) == default:
      current.pop(name, None)
  return sorted(name for name in set(saved) | set(current)
                if relevant(name) and saved.get(name) != current.get(name))


# ----------------------------------------------------------------------------- workdirs


def new_workdir(workdir: str | pathlib.Path) -> pathlib.Path:
  """Creates `workdir` for a run that does not resume (a study, a benchmark row).

  Raises:
    RunError: the path exists and is a file or a non-empty directory (nothing in it is changed).
  """
  workdir = pathlib.Path(workdir)
  if workdir.exists() and (not workdir.is_dir() or any(
      path.name != workdir_lib.LOCK_FILE for path in workdir.iterdir())):
    raise RunError(f"workdir {workdir} is not a new or empty directory; give another "
                   "(nothing in it was changed)")
  workdir.mkdir(parents=True, exist_ok=True)
  return workdir


def resume_step(workdir: pathlib.Path, checkpoints, config_json: dict[str, Any]) -> int | None:
  """The step a run of `config_json` resumes from in `workdir`, or None for a new run.

  Args:
    workdir: the run's workdir.
    checkpoints: its `ganjax.checkpoint.Checkpointer`.
    config_json: the run's config (`config_to_dict`).

  Raises:
    RunError: the workdir holds files but no checkpoint, or the checkpoints of a run whose
      config differs in a field that is not resumable (nothing in it is changed).
  """
  latest = checkpoints.latest_step()
  if latest is None:
    if workdir.exists() and any(p.name not in FIRST_FILES for p in workdir.iterdir()):
      raise RunError(f"workdir {workdir} holds files but no checkpoint to resume; give a new or "
                     "empty directory (nothing in it was changed)")
    return None
  differences = config_differences(checkpoints.read_config(latest) or {}, config_json)
  if differences:
    raise RunError(f"workdir {workdir} holds a run of another experiment (it differs in "
                   f"{', '.join(differences[:5])}); give a new directory (nothing in it was "
                   "changed)")
  return latest


# ----------------------------------------------------------------------------- samples


def fixed_noise_samples(state: train.GANState, num: int, labels: jax.Array | None = None,
                        batch_size: int | None = None) -> jax.Array:
  """`num` samples from the run's fixed noise (the same latents at every step and on resume):
  what sample pictures, periodic evaluation and summary.json show. A class-conditional
  generator makes them for `labels` (default: the classes in turn, `train.default_labels`).
  With `batch_size`, the generator runs jitted on that many latents at a time (what a large
  image generator needs to fit in memory); without, on all of them at once. Jit- and
  vmap-able."""
  # The latents `train.sample` draws with this key, generated in one call or in batches.
  z = jax.random.normal(jax.random.fold_in(state.key, SAMPLE_STREAM),
                        (num, state.spec.latent_dim))
  if batch_size is None or num <= batch_size:
    return train.generate(state, z, labels)
  if labels is None:
    labels = train.default_labels(state, num)
  return jnp.concatenate([
      _generate(state, z[start:start + batch_size],
                None if labels is None else labels[start:start + batch_size])
      for start in range(0, num, batch_size)])


_generate = train.jit(train.generate)


def class_grid_labels(num_classes: int, per_class: int) -> np.ndarray:
  """Labels of a class grid: `per_class` samples of class 0, then of class 1, ...: one row per
  class in a picture `per_class` wide."""
  return np.repeat(np.arange(num_classes, dtype=np.int32), per_class)


def mode_statistics(samples: np.ndarray, data, labels: np.ndarray | None = None
                    ) -> dict[str, Any]:
  """`metrics.mixture_mode_statistics` of samples from a 2-D toy mixture, as plain numbers;
  with the labels they were generated for, also `metrics.conditional_mode_statistics`
  (label_accuracy, label_accuracy_min, classes_on_mode, and per_class_accuracy as a list)."""
  stats = metrics_lib.mixture_mode_statistics(samples, data)
  values: dict[str, Any] = {"modes": int(stats["modes"]),
                            "high_quality": float(stats["high_quality"]),
                            "reverse_kl": float(stats["reverse_kl"])}
  if labels is not None:
    conditional = metrics_lib.mixture_conditional_mode_statistics(samples, labels, data)
    values.update(label_accuracy=float(conditional["label_accuracy"]),
                  label_accuracy_min=float(conditional["label_accuracy_min"]),
                  classes_on_mode=int(conditional["classes_on_mode"]),
                  per_class_accuracy=[round(float(a), 4)
                                      for a in conditional["per_class_accuracy"]])
  return values


__all__ = ["ConfigError", "Experiment", "Preempted", "RunError", "build", "build_players",
           "config_differences", "config_from_dict", "config_to_dict", "create_state_from_config",
           "class_grid_labels", "field", "fixed_noise_samples", "make_optimizer",
           "mode_statistics", "new_workdir", "record_labels", "resume_step"]
