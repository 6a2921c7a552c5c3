"""Image-quality evaluation of a generator: FID, KID, precision/recall and density/coverage.

The measures (`ganjax.metrics`) compare features of generated images with features of real ones.
The features come from one of two networks (`config.eval.features`):

  inception    pytorch-fid's Fréchet Inception network (`ganjax.models.inception`), the standard
               for FID: weights from the file pt_inception-2015-12-05-6726825d.pth, given by
               `eval.inception_weights` or the environment variable GANJAX_INCEPTION_WEIGHTS.
  classifier   a small classifier trained by ganjax on the dataset's labels
               (`ganjax.classifier`): a "classifier FID" for datasets where Inception features
               mean little (MNIST-like). `eval.classifier` names its file; by default the run
               trains one (`eval.classifier_steps` steps) and saves it as
               `<workdir>/classifier.msgpack`, so that its numbers can be recomputed offline.

Both the real and the generated images are quantised to 8 bits first (as images saved to PNG
files and read back, which is what the reference implementation measures), then fed to the
network in batches of `eval.batch_size`, the batch split over the local devices.

The real images' features are computed once per dataset, feature network and number of images
and cached (`eval.stats_dir`, default `$GANJAX_CACHE/real_features` or
`~/.cache/ganjax/real_features`) as an .npz holding the features; FID uses their mean and
covariance, the other measures the features themselves.

Each measure is an entry of the registry `MEASURES` (a `Measure`: the numbers it produces, which
way each is better, the k-NN radii of the real features it needs, and its function); `METRICS`,
`BEST`, `measure_names`, `real_radii` and `compute` are read from it.

Config fields read (`config.eval`, all optional):
  metrics            comma-separated names of `MEASURES`: fid, kid, precision_recall,
                     density_coverage ('': none)
  features           'inception' (default) or 'classifier'
  every              evaluate every that many steps during training (0: only at the end)
  num_samples        generated images per evaluation (default 10,000)
  num_real           real images for the cached features (default 10,000)
  batch_size         images per feature batch (default 250)
  best               keep the checkpoint with the best value of this measure in
                     `<workdir>/best/`: a key of `BEST` (lower is better for fid and kid,
                     higher for precision, recall, density and coverage; '': off)
  stats_dir, inception_weights, classifier, classifier_steps   as above

Generated images come from fixed noise (the same latents at every evaluation and on resume),
from the EMA generator when the run keeps one.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import hashlib
import json
import os
import pathlib
from typing import Any, Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ganjax import cache as cache_lib
from ganjax import compilation
from ganjax import metrics as metrics_lib
from ganjax import progress as progress_lib
from ganjax import train
from ganjax.errors import ConfigError

FEATURES = ("inception", "classifier")
CLASSIFIER_FILE = "classifier.msgpack"
DEFAULTS = {"metrics": "", "features": "inception", "every": 0, "num_samples": 10_000,
            "num_real": 10_000, "batch_size": 250, "best": "", "stats_dir": None,
            "inception_weights": None, "classifier": None, "classifier_steps": 2000}
# The stream of the evaluation's fixed latents (folded into the state's key).
_EVAL_STREAM = 0xE7A1
_CACHE_VERSION = 1


class EvaluationError(ConfigError):
  """A bad evaluation setting or a missing input (weights, classifier), in one line."""


# ------------------------------------------------------------------------------------------------
# The measures


@dataclasses.dataclass(frozen=True)
class Context:
  """What a measure may reuse of the real features, computed once per `Evaluator`.

  Attributes:
    real_statistics: their mean and covariance, or None (then computed from the features).
    k: the measure's neighbourhood size (`Measure.k`), or None.
    real_radii: their k-NN radii for that k (`metrics.knn_radii`), or None (then computed).
  """
  real_statistics: metrics_lib.FeatureStatistics | None = None
  k: int | None = None
  real_radii: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Measure:
  """An evaluation measure: a name of `eval.metrics` and the numbers it produces.

  Attributes:
    name: the name in `eval.metrics`.
    numbers: each number it produces, in order, with the sign that makes larger better (-1.0:
      lower is better), or None for one no run keeps its best checkpoint by (a spread).
    compute: (real features, fake features, `Context`) -> {number: value}.
    k: the neighbourhood size of the real features' k-NN radii it uses, or None for none.
  """
  name: str
  numbers: Mapping[str, float | None]
  compute: Callable[[np.ndarray, np.ndarray, Context], Mapping[str, Any]]
  k: int | None = None


def _fid(real: np.ndarray, fake: np.ndarray, context: Context) -> dict[str, float]:
  real_statistics = context.real_statistics
  if real_statistics is None:
    real_statistics = metrics_lib.feature_statistics(real)
  return {"fid": metrics_lib.frechet_distance_from_statistics(
      real_statistics, metrics_lib.feature_statistics(fake))}


def _kid(real: np.ndarray, fake: np.ndarray, context: Context) -> dict[str, float]:
  del context
  return metrics_lib.kernel_inception_distance(real, fake)


def _precision_recall(real: np.ndarray, fake: np.ndarray, context: Context) -> dict[str, float]:
  return metrics_lib.precision_recall(real, fake, context.k, real_radii=context.real_radii)


def _density_coverage(real: np.ndarray, fake: np.ndarray, context: Context) -> dict[str, float]:
  return metrics_lib.density_coverage(real, fake, context.k, real_radii=context.real_radii)


# The neighbourhood sizes are those of the measures' papers.
MEASURES: dict[str, Measure] = {measure.name: measure for measure in (
    Measure("fid", {"fid": -1.0}, _fid),
    Measure("kid", {"kid": -1.0, "kid_std": None}, _kid),
    Measure("precision_recall", {"precision": 1.0, "recall": 1.0}, _precision_recall, k=3),
    Measure("density_coverage", {"density": 1.0, "coverage": 1.0}, _density_coverage, k=5),
)}
# The names of the measures registered when the module is imported.
METRICS = tuple(MEASURES)


class _BestSigns(collections.abc.Mapping):
  """Each number a run can keep its best checkpoint by, with the sign that makes larger better:
  read from `MEASURES` whenever asked, so that a measure registered later is in it."""

  def _signs(self) -> dict[str, float]:
    return {number: sign for measure in MEASURES.values()
            for number, sign in measure.numbers.items() if sign is not None}

  def __getitem__(self, number: str) -> float:
    return self._signs()[number]

  def __iter__(self) -> Iterator[str]:
    return iter(self._signs())

  def __len__(self) -> int:
    return len(self._signs())

  def __repr__(self) -> str:
    return repr(self._signs())


BEST: Mapping[str, float] = _BestSigns()


def settings(config) -> dict[str, Any]:
  """`config.eval` with the defaults above filled in, checked.

  Raises:
    EvaluationError: naming the field and the valid values.
  """
  given = dict(config.get("eval", {}) or {})
  values = {name: given.get(name, default) if given.get(name, default) is not None else default
            for name, default in DEFAULTS.items()}
  values["metrics"] = parse_metrics(values["metrics"])
  if values["features"] not in FEATURES:
    raise EvaluationError(f"eval.features {values['features']!r} is not one of: "
                          f"{', '.join(FEATURES)}")
  for name in ("every", "num_samples", "num_real", "batch_size", "classifier_steps"):
    value, smallest = values[name], 0 if name == "every" else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < smallest:
      kind = "non-negative" if smallest == 0 else "positive"
      raise EvaluationError(f"eval.{name} must be a {kind} integer, got {value!r}")
  if values["best"] and values["best"] not in BEST:
    raise EvaluationError(f"eval.best {values['best']!r} is not one of: {', '.join(BEST)}")
  if values["best"] and values["best"] not in measure_names(values["metrics"]):
    raise EvaluationError(f"eval.best {values['best']!r} is not computed by eval.metrics "
                          f"{','.join(values['metrics']) or '(none)'}")
  return values


def parse_metrics(value: str | tuple | list) -> tuple[str, ...]:
  """('fid', 'kid', ...) from 'fid,kid' (or a sequence), each name checked."""
  names = [name.strip() for name in (value.split(",") if isinstance(value, str) else value)]
  names = [name for name in names if name]
  unknown = [name for name in names if name not in MEASURES]
  if unknown:
    raise EvaluationError(f"unknown eval.metrics {', '.join(unknown)}; valid: "
                          f"{', '.join(MEASURES)}")
  return tuple(dict.fromkeys(names))


def measure_names(metric_names: tuple[str, ...]) -> tuple[str, ...]:
  """The numbers the metrics produce (`Measure.numbers`): fid; kid, kid_std; precision, recall;
  density, coverage."""
  return tuple(number for name in metric_names for number in MEASURES[name].numbers)


# ------------------------------------------------------------------------------------------------
# Feature networks


def quantise(images: jax.Array) -> jax.Array:
  """Images in [-1, 1] rounded to the 256 levels of 8-bit pixels (still in [-1, 1])."""
  return jnp.clip(jnp.round((images + 1.0) * 127.5), 0.0, 255.0) / 127.5 - 1.0


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
  """A feature function of images in [-1, 1] and what identifies it in caches.

  Attributes:
    name: 'inception' or 'classifier'.
    identity: a string that changes whenever the features would (the weights' SHA-256).
    dim: the feature dimension.
    apply: a jittable function (variables, images in [-1, 1]) -> (N, dim) features.
    variables: its weights.
  """
  name: str
  identity: str
  dim: int
  apply: Callable[[Any, jax.Array], jax.Array]
  variables: Any


def inception_network(weights: str | os.PathLike | None = None) -> FeatureNetwork:
  """pytorch-fid's network from the weight file `weights` (default: $GANJAX_INCEPTION_WEIGHTS).

  Raises:
    EvaluationError: the file is missing, damaged or another file.
  """
  from ganjax.models import inception
  try:
    variables, sha256 = inception.load_weights(weights)
  except (FileNotFoundError, ValueError) as error:
    raise EvaluationError(f"{error} (or set eval.inception_weights)") from None
  return FeatureNetwork("inception", f"inception-{sha256[:16]}",
                        inception.FEATURE_DIM,
                        lambda v, images: inception.extract_features(v, (images + 1.0) / 2.0),
                        variables)


def classifier_network(path: str | os.PathLike, data_shape: tuple[int, ...] | None = None
                       ) -> FeatureNetwork:
  """The classifier saved in `path` (`ganjax.classifier.save`).

  Raises:
    EvaluationError: the file is missing or damaged, or takes images of another shape.
  """
  from ganjax import classifier
  try:
    params, metadata = classifier.load(path)
  except classifier.ClassifierFileError as error:
    raise EvaluationError(str(error)) from None
  if data_shape is not None and tuple(metadata["image_shape"]) != tuple(data_shape):
    raise EvaluationError(f"the classifier in {path} takes images of shape "
                          f"{tuple(metadata['image_shape'])}, the run's are {tuple(data_shape)}")
  num_classes, feature_dim = metadata["num_classes"], metadata["feature_dim"]

  def apply(variables, images):
    return classifier.extract_features(variables, images, num_classes=num_classes,
                                       feature_dim=feature_dim)

  return FeatureNetwork("classifier", f"classifier-{cache_lib.file_sha256(path)[:16]}", feature_dim, apply,
                        params)


def feature_network(config, workdir: str | os.PathLike | None,
                    data_shape: tuple[int, ...]) -> FeatureNetwork:
  """The feature network a run's `config.eval` asks for; trains the run's classifier (saved in
  `workdir`) when `eval.features` is 'classifier' and `eval.classifier` names no file."""
  values = settings(config)
  if values["features"] == "inception":
    return inception_network(values["inception_weights"])
  path = values["classifier"]
  if path is None:
    if workdir is None:
      raise EvaluationError("eval.features 'classifier' needs eval.classifier (a file from "
                            "python -m ganjax.classifier)")
    path = pathlib.Path(workdir) / CLASSIFIER_FILE
    if not path.exists():
      from ganjax import classifier
      progress_lib.say(f"training the feature classifier on {config.data.get('name')!r} labels "
                       f"({values['classifier_steps']} steps) for {path}")
      metadata = classifier.train_for_dataset(config.data, path, steps=values["classifier_steps"],
                                              seed=config.seed)
      progress_lib.say(f"feature classifier: accuracy {metadata['accuracy']:.4f} on the "
                       f"{metadata['accuracy_split']} split")
  return classifier_network(path, data_shape)


# ------------------------------------------------------------------------------------------------
# Features of generated and real images, the batch split over the local devices


def _batch_sharding(batch_size: int) -> tuple[NamedSharding | None, NamedSharding | None, int]:
  """Shardings of the batch axis over the local devices and of replicated values, and the batch
  size rounded up to a multiple of their number (no sharding on one device)."""
  devices = jax.local_devices()
  if len(devices) == 1:
    return None, None, batch_size
  mesh = Mesh(np.asarray(devices), ("batch",))
  return (NamedSharding(mesh, PartitionSpec("batch")), NamedSharding(mesh, PartitionSpec()),
          -(-batch_size // len(devices)) * len(devices))


def _put(tree, sharding: NamedSharding | None):
  return tree if sharding is None else jax.device_put(tree, sharding)


def _constrain(x: jax.Array, sharding: NamedSharding | None) -> jax.Array:
  return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)


class _Features:
  """Jitted, device-sharded feature functions of one network and batch size."""

  def __init__(self, network: FeatureNetwork, batch_size: int):
    self.network = network
    self.sharding, self.replicated, self.batch_size = _batch_sharding(batch_size)
    self.variables = _put(network.variables, self.replicated)

    def of_images(variables, images):
      return network.apply(variables, quantise(_constrain(images, self.sharding)))

    def of_samples(variables, state, key, start):
      # Image i's latent vector comes from its own key, so the images do not depend on the batch
      # size or the number of devices.
      indices = start + jnp.arange(self.batch_size)
      z = jax.vmap(lambda index: jax.random.normal(jax.random.fold_in(key, index),
                                                   (state.spec.latent_dim,)))(indices)
      images = train.generate(state, _constrain(z, self.sharding))
      return of_images(variables, images)

    self._of_images = compilation.jit(of_images)
    self._of_samples = compilation.jit(of_samples)

  def images(self, images: np.ndarray) -> np.ndarray:
    """Features of real images in [-1, 1] (a short batch is padded, its padding dropped)."""
    count = images.shape[0]
    if count < self.batch_size:
      images = np.concatenate([images, np.zeros((self.batch_size - count, *images.shape[1:]),
                                                images.dtype)])
    return np.asarray(self._of_images(self.variables, _put(images, self.sharding)))[:count]

  def samples(self, state: train.GANState, num: int) -> np.ndarray:
    """Features of `num` generated images from the evaluation's fixed noise."""
    state = _put(state, self.replicated)
    key = jax.random.fold_in(state.key, _EVAL_STREAM)
    parts = [self._of_samples(self.variables, state, key, start)
             for start in range(0, num, self.batch_size)]
    return np.concatenate([np.asarray(part) for part in parts])[:num]


def real_features(data_config: Mapping[str, Any], network: FeatureNetwork, *, num_real: int,
                  batch_size: int = 250, stats_dir: str | os.PathLike | None = None,
                  features: _Features | None = None) -> np.ndarray:
  """Features of the first `num_real` images of the dataset's split (in its fixed file order),
  read from the cache when computed before for the same dataset, network and number.

  Raises:
    EvaluationError: the split holds fewer images than `num_real`.
  """
  from ganjax.data import images as images_lib
  described = {name: data_config.get(name) for name in
               ("name", "split", "image_size", "crop_size", "folder", "channels")}
  key = {"version": _CACHE_VERSION, "data": described, "network": network.identity,
         "num_real": num_real, "shape": list(images_lib.image_shape(data_config))}
  digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
  folder = pathlib.Path(stats_dir if stats_dir is not None else
                        os.path.join(cache_lib.directory(), "real_features"))
  path = folder / f"{described['name']}-{network.name}-{num_real}-{digest}.npz"
  if path.exists():
    with np.load(path) as stored:
      if json.loads(str(stored["key"])) == key:
        return stored["features"]
  features = features or _Features(network, batch_size)
  parts = []
  progress = progress_lib.Progress(f"{network.name} features of the real images", total=num_real,
                                   unit="images")
  try:
    for batch in images_lib.finite_batches(data_config, batch_size=features.batch_size,
                                           num_examples=num_real, process_index=0,
                                           process_count=1):
      parts.append(features.images(batch))
      progress.update(sum(len(part) for part in parts))
  except images_lib.TooFewExamples as error:
    raise EvaluationError(f"{str(error).splitlines()[0]} (eval.num_real)") from None
  result = np.concatenate(parts)
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.npz")
    np.savez(temporary, features=result, key=json.dumps(key, sort_keys=True))
    os.replace(temporary, path)
  return result


def real_radii(real: np.ndarray, metric_names: tuple[str, ...]) -> dict[int, np.ndarray]:
  """The real features' k-NN radii the measures `metric_names` use (`Measure.k`), by k."""
  radii: dict[int, np.ndarray] = {}
  for name in metric_names:
    k = MEASURES[name].k
    if k is not None and k not in radii:
      radii[k] = metrics_lib.knn_radii(real, k)
  return radii


def compute(real: np.ndarray, fake: np.ndarray, metric_names: tuple[str, ...],
            real_statistics: metrics_lib.FeatureStatistics | None = None,
            radii: dict[int, np.ndarray] | None = None) -> dict[str, float]:
  """The measures `metric_names` (keys of `MEASURES`) of fake features against real ones, as
  plain floats (`real_statistics` and `radii`, from `real_radii`, when computed before)."""
  radii = radii or {}
  values: dict[str, float] = {}
  for name in metric_names:
    measure = MEASURES[name]
    context = Context(real_statistics, measure.k, radii.get(measure.k))
    values.update(measure.compute(real, fake, context))
  return {name: float(value) for name, value in values.items()}


class Evaluator:
  """Evaluates generators against one dataset's cached real features.

  `Evaluator(config, workdir, data_shape)(state)` returns {'fid': ..., 'kid': ..., ...} for
  `eval.num_samples` images of `state`'s generator.
  """

  def __init__(self, config, workdir: str | os.PathLike | None, data_shape: tuple[int, ...]):
    self.settings = settings(config)
    self.metrics = self.settings["metrics"]
    if not self.metrics:
      raise EvaluationError("eval.metrics is empty: nothing to evaluate")
    self.network = feature_network(config, workdir, data_shape)
    self.features = _Features(self.network, self.settings["batch_size"])
    self.real = real_features(config.data, self.network, num_real=self.settings["num_real"],
                              stats_dir=self.settings["stats_dir"], features=self.features)
    self.real_statistics = metrics_lib.feature_statistics(self.real)
    self.real_radii = real_radii(self.real, self.metrics)

  def __call__(self, state: train.GANState, num_samples: int | None = None) -> dict[str, float]:
    fake = self.features.samples(state, num_samples or self.settings["num_samples"])
    return compute(self.real, fake, self.metrics, self.real_statistics, self.real_radii)


def eval_config(*, metrics: str = "", features: str = "inception", every: int = 0,
                best: str = "", num_samples: int = 10_000, num_real: int = 10_000,
                **overrides):
  """`config.eval` for an image experiment file: every field above, so that each can be
  overridden on the command line (--config.eval.inception_weights=<file>)."""
  import ml_collections
  from ml_collections import config_dict
  fields = {**DEFAULTS, "metrics": metrics, "features": features, "every": every, "best": best,
            "num_samples": num_samples, "num_real": num_real, **overrides}
  for name in ("stats_dir", "inception_weights", "classifier"):
    if fields[name] is None:
      fields[name] = config_dict.placeholder(str)
  return ml_collections.ConfigDict(fields)
