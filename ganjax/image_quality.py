"""Image-quality evaluation of a generator: FID, KID, precision/recall, density/coverage, and for
a class-conditional generator intra-FID and classification accuracy.

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
`~/.cache/ganjax/real_features`) as an .npz holding the features and, for a dataset with class
labels, the images' labels; FID uses their mean and covariance, the other measures the features
themselves.

Class-conditional runs (`conditional.enabled`). Generated image i of an evaluation (i = 0, 1, ...)
is made for class i % K, the classes in turn as `train.default_labels` gives them, whatever the
batch size or the number of devices (its latent vector, too, is image i's own). Two measures use
the labels, and stop with an `EvaluationError` on an unconditional run:
  intra_fid    the Fréchet distance between the features (of the `eval.features` network) of the
               real images of class k and of the images generated for class k, averaged over
               the classes (Miyato and Koyama 2018; `metrics.intra_class_frechet_distance`);
               lower is better. It needs the real images' labels (not celeb_a's) and at least 2
               real and 2 generated images of each class.
  accuracy     the fraction of generated images that the run's classifier (the one of
               `eval.features='classifier'`: `eval.classifier`, or `<workdir>/classifier.msgpack`
               trained when missing) puts in the class they were generated for, and
               accuracy_min, that of the worst class; higher is better. With
               `eval.features='inception'` the same classifier is loaded or trained for it
               (Inception gives the features, the classifier the predicted classes).
Their per-class values (per_class_fid, per_class_accuracy) are in `Evaluator.details` and the
output of `python -m ganjax.evaluate`, not in the scalar logs.

Each measure is an entry of the registry `MEASURES` (a `Measure`: the numbers it produces, which
way each is better, the k-NN radii of the real features it needs, the labels it needs, and its
function of (real features, generated features, `Context`)); `METRICS`, `BEST`,
`measure_names`, `real_radii` and `compute` are read from it.

Config fields read (`config.eval`, all optional; and `conditional.enabled`):
  metrics            comma-separated names of `MEASURES`: fid, kid, precision_recall,
                     density_coverage, accuracy, intra_fid ('': none)
  features           'inception' (default) or 'classifier'
  every              evaluate every that many steps during training (0: only at the end)
  num_samples        generated images per evaluation (default 10,000)
  num_real           real images for the cached features (default 10,000)
  batch_size         images per feature batch (default 250)
  best               keep the checkpoint with the best value of this measure in
                     `<workdir>/best/`: a key of `BEST` (lower is better for fid, kid and
                     intra_fid, higher for precision, recall, density, coverage, accuracy and
                     accuracy_min; '': off)
  stats_dir, inception_weights, classifier, classifier_steps   as above

Generated images come from fixed noise (the same latents at every evaluation and on resume),
from the EMA generator when the run keeps one.

References:
  Miyato and Koyama 2018, "cGANs with Projection Discriminator" (intra-FID).
"""
from __future__ import annotations

import collections.abc
import dataclasses
import hashlib
import json
import os
import pathlib
from typing import Any, Callable, Iterator, Mapping, NamedTuple

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
# 2: the real images' labels stored with their features.
_CACHE_VERSION = 2


class EvaluationError(ConfigError):
  """A bad evaluation setting or a missing input (weights, classifier), in one line."""


# ------------------------------------------------------------------------------------------------
# The measures

# What a measure may need besides the features (`Measure.needs`): the real and the generated
# images' labels ('labels'), or the generated images' labels and the run's classifier's predicted
# classes of them ('predictions').
NEEDS = ("labels", "predictions")


@dataclasses.dataclass(frozen=True)
class ClassLabels:
  """The classes of a class-conditional evaluation.

  Attributes:
    num_classes: the number of classes K of the run.
    fake: (num_samples,) int32, the classes the generated images were made for (image i: i % K).
    real: (num_real,) int32, the real images' classes, or None for a dataset without labels.
    predicted: (num_samples,) int32, the run's classifier's classes of the generated images, or
      None when no measure asked for them.
  """
  num_classes: int
  fake: np.ndarray
  real: np.ndarray | None = None
  predicted: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Context:
  """What a measure may reuse of the real features (computed once per `Evaluator`) and the
  classes of a class-conditional evaluation.

  Attributes:
    real_statistics: their mean and covariance, or None (then computed from the features).
    k: the measure's neighbourhood size (`Measure.k`), or None.
    real_radii: their k-NN radii for that k (`metrics.knn_radii`), or None (then computed).
    labels: the evaluation's `ClassLabels`, or None for an unconditional run; a measure that
      declares `Measure.needs` is only called with the labels it needs.
  """
  real_statistics: metrics_lib.FeatureStatistics | None = None
  k: int | None = None
  real_radii: np.ndarray | None = None
  labels: ClassLabels | None = None


@dataclasses.dataclass(frozen=True)
class Measure:
  """An evaluation measure: a name of `eval.metrics` and the numbers it produces.

  Attributes:
    name: the name in `eval.metrics`.
    numbers: each number it produces, in order, with the sign that makes larger better (-1.0:
      lower is better), or None for one no run keeps its best checkpoint by (a spread).
    compute: (real features, fake features, `Context`) -> {number: value}, and also
      {detail: per-class values} for its `details`.
    k: the neighbourhood size of the real features' k-NN radii it uses, or None for none.
    needs: what it needs besides the features, from `NEEDS`: 'labels' (`Context.labels` with
      the real and the generated images' classes) or 'predictions' (with the generated images'
      classes and the run's classifier's predictions of them). Either needs a class-conditional
      run.
    details: the names of the per-class sequences it returns besides its numbers
      (`Evaluator.details`; not in the scalar logs).
  """
  name: str
  numbers: Mapping[str, float | None]
  compute: Callable[[np.ndarray, np.ndarray, Context], Mapping[str, Any]]
  k: int | None = None
  needs: tuple[str, ...] = ()
  details: tuple[str, ...] = ()

  def __post_init__(self):
    unknown = sorted(set(self.needs) - set(NEEDS))
    if unknown:
      raise ValueError(f"measure {self.name!r} needs {', '.join(unknown)}, not one of: "
                       f"{', '.join(NEEDS)}")


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


def _accuracy(real: np.ndarray, fake: np.ndarray, context: Context) -> dict[str, Any]:
  """The fraction of generated images the classifier puts in their class; per class, None for a
  class without generated images (fewer images than classes)."""
  del real, fake
  labels = context.labels
  correct = np.asarray(labels.predicted) == np.asarray(labels.fake)
  per_class = [float(np.mean(correct[labels.fake == k])) if np.any(labels.fake == k) else None
               for k in range(labels.num_classes)]
  return {"accuracy": float(np.mean(correct)),
          "accuracy_min": min(value for value in per_class if value is not None),
          "per_class_accuracy": per_class}


def _intra_fid(real: np.ndarray, fake: np.ndarray, context: Context) -> dict[str, Any]:
  labels = context.labels
  for kind, classes, field in (("real", labels.real, "num_real"),
                               ("generated", labels.fake, "num_samples")):
    counts = np.bincount(classes, minlength=labels.num_classes)[:labels.num_classes]
    if np.min(counts) < 2:
      k = int(np.argmin(counts))
      raise EvaluationError(f"intra_fid needs at least 2 {kind} images of each class, class {k} "
                            f"has {counts[k]} (raise eval.{field})")
  result = metrics_lib.intra_class_frechet_distance(real, labels.real, fake, labels.fake,
                                                    num_classes=labels.num_classes)
  return {"intra_fid": result["intra_fid"],
          "per_class_fid": [float(value) for value in result["per_class_fid"]]}


# The neighbourhood sizes are those of the measures' papers.
MEASURES: dict[str, Measure] = {measure.name: measure for measure in (
    Measure("fid", {"fid": -1.0}, _fid),
    Measure("kid", {"kid": -1.0, "kid_std": None}, _kid),
    Measure("precision_recall", {"precision": 1.0, "recall": 1.0}, _precision_recall, k=3),
    Measure("density_coverage", {"density": 1.0, "coverage": 1.0}, _density_coverage, k=5),
    Measure("accuracy", {"accuracy": 1.0, "accuracy_min": 1.0}, _accuracy,
            needs=("predictions",), details=("per_class_accuracy",)),
    Measure("intra_fid", {"intra_fid": -1.0}, _intra_fid, needs=("labels",),
            details=("per_class_fid",)),
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
  conditional = config.get("conditional", None) or {}
  if not conditional.get("enabled", False):
    _check_conditional(values["metrics"], num_classes=0)
  return values


def needs(metric_names: tuple[str, ...]) -> frozenset[str]:
  """What the measures `metric_names` need besides the features (`Measure.needs`)."""
  return frozenset(need for name in metric_names for need in MEASURES[name].needs)


def _check_conditional(metric_names: tuple[str, ...], num_classes: int) -> None:
  """An EvaluationError if a measure that needs labels is asked of an unconditional run."""
  labelled = [name for name in metric_names if MEASURES[name].needs]
  if labelled and not num_classes:
    raise EvaluationError(f"eval.metrics {', '.join(labelled)} "
                          f"{'needs' if len(labelled) == 1 else 'need'} a class-conditional run "
                          "(conditional.enabled)")


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
  density, coverage; accuracy, accuracy_min; intra_fid."""
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
    classify: for a classifier, a jittable function (variables, images in [-1, 1]) ->
      (N, num_classes) logits; None for a network that classifies nothing (inception).
    num_classes: a classifier's number of classes (0: none).
  """
  name: str
  identity: str
  dim: int
  apply: Callable[[Any, jax.Array], jax.Array]
  variables: Any
  classify: Callable[[Any, jax.Array], jax.Array] | None = None
  num_classes: int = 0


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

  def classify(variables, images):
    return classifier.logits(variables, images, num_classes=num_classes, feature_dim=feature_dim)

  return FeatureNetwork("classifier", f"classifier-{cache_lib.file_sha256(path)[:16]}",
                        feature_dim, apply, params, classify=classify, num_classes=num_classes)


def classifier_file(config, workdir: str | os.PathLike | None, purpose: str) -> pathlib.Path:
  """The run's classifier file: `eval.classifier`, or `<workdir>/classifier.msgpack`, trained on
  the dataset's labels (`eval.classifier_steps` steps) and saved there when missing.

  Args:
    config: the run's config.
    workdir: the run's workdir, or None (then `eval.classifier` must be set).
    purpose: what needs it, for the error ("eval.features 'classifier'").

  Raises:
    EvaluationError: no `eval.classifier` and no workdir.
  """
  values = settings(config)
  if values["classifier"] is not None:
    return pathlib.Path(values["classifier"])
  if workdir is None:
    raise EvaluationError(f"{purpose} needs eval.classifier (a file from python -m "
                          "ganjax.classifier)")
  path = pathlib.Path(workdir) / CLASSIFIER_FILE
  if not path.exists():
    from ganjax import classifier
    progress_lib.say(f"training the feature classifier on {config.data.get('name')!r} labels "
                     f"({values['classifier_steps']} steps) for {path}")
    metadata = classifier.train_for_dataset(config.data, path, steps=values["classifier_steps"],
                                            seed=config.seed)
    progress_lib.say(f"feature classifier: accuracy {metadata['accuracy']:.4f} on the "
                     f"{metadata['accuracy_split']} split")
  return path


def feature_network(config, workdir: str | os.PathLike | None,
                    data_shape: tuple[int, ...]) -> FeatureNetwork:
  """The feature network a run's `config.eval` asks for; trains the run's classifier (saved in
  `workdir`) when `eval.features` is 'classifier' and `eval.classifier` names no file."""
  values = settings(config)
  if values["features"] == "inception":
    return inception_network(values["inception_weights"])
  return classifier_network(classifier_file(config, workdir, "eval.features 'classifier'"),
                            data_shape)


def label_classifier(config, workdir: str | os.PathLike | None, data_shape: tuple[int, ...],
                     network: FeatureNetwork) -> FeatureNetwork:
  """The classifier whose predicted classes of generated images `accuracy` scores: the feature
  network itself when it is the run's classifier (`eval.features='classifier'`), otherwise the
  same classifier file loaded (`classifier_file`: trained when missing)."""
  if network.classify is not None:
    return network
  return classifier_network(classifier_file(config, workdir, "eval.metrics accuracy"), data_shape)


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


class GeneratedFeatures(NamedTuple):
  """Features of an evaluation's generated images and what else is known of them.

  Attributes:
    features: (num, dim) features of the feature network.
    labels: (num,) int32, the classes the images were made for (image i: i % K), or None for an
      unconditional generator.
    predictions: (num,) int32, the classifier's classes of the images, or None without one.
  """
  features: np.ndarray
  labels: np.ndarray | None
  predictions: np.ndarray | None


class _Features:
  """Jitted, device-sharded feature functions of one network and batch size (and the predicted
  classes of a classifier, when one is given)."""

  def __init__(self, network: FeatureNetwork, batch_size: int,
               classifier: FeatureNetwork | None = None):
    if classifier is not None and classifier.classify is None:
      raise ValueError(f"the {classifier.name} network classifies nothing")
    self.network, self.classifier = network, classifier
    self.sharding, self.replicated, self.batch_size = _batch_sharding(batch_size)
    self.variables = _put(network.variables, self.replicated)
    self.classifier_variables = (
        None if classifier is None else
        self.variables if classifier is network else _put(classifier.variables, self.replicated))

    def of_images(variables, images):
      return network.apply(variables, quantise(_constrain(images, self.sharding)))

    def of_samples(variables, classifier_variables, state, key, start):
      # Image i's latent vector comes from its own key, and its label is i % K, so the images do
      # not depend on the batch size or the number of devices.
      indices = start + jnp.arange(self.batch_size)
      z = jax.vmap(lambda index: jax.random.normal(jax.random.fold_in(key, index),
                                                   (state.spec.latent_dim,)))(indices)
      labels = None  # an unconditional generator takes none
      if state.spec.num_classes:
        labels = _constrain((indices % state.spec.num_classes).astype(jnp.int32), self.sharding)
      images = train.generate(state, _constrain(z, self.sharding), labels)
      images = quantise(_constrain(images, self.sharding))
      predictions = None
      if classifier is not None:
        predictions = jnp.argmax(classifier.classify(classifier_variables, images),
                                 axis=-1).astype(jnp.int32)
      return network.apply(variables, images), labels, predictions

    self._of_images = compilation.jit(of_images)
    self._of_samples = compilation.jit(of_samples)

  def images(self, images: np.ndarray) -> np.ndarray:
    """Features of real images in [-1, 1] (a short batch is padded, its padding dropped)."""
    count = images.shape[0]
    if count < self.batch_size:
      images = np.concatenate([images, np.zeros((self.batch_size - count, *images.shape[1:]),
                                                images.dtype)])
    return np.asarray(self._of_images(self.variables, _put(images, self.sharding)))[:count]

  def generated(self, state: train.GANState, num: int) -> GeneratedFeatures:
    """Features of `num` generated images from the evaluation's fixed noise (for a
    class-conditional generator, image i made for class i % K), their labels and, with a
    classifier, its predicted classes of them."""
    state = _put(state, self.replicated)
    key = jax.random.fold_in(state.key, _EVAL_STREAM)
    parts = [self._of_samples(self.variables, self.classifier_variables, state, key, start)
             for start in range(0, num, self.batch_size)]
    # Each part is (features, labels, predictions), the last two None where there are none.
    return GeneratedFeatures(*(
        None if column[0] is None else np.concatenate([np.asarray(x) for x in column])[:num]
        for column in zip(*parts)))

  def samples(self, state: train.GANState, num: int) -> np.ndarray:
    """Features of `num` generated images from the evaluation's fixed noise."""
    return self.generated(state, num).features


def real_features(data_config: Mapping[str, Any], network: FeatureNetwork, *, num_real: int,
                  batch_size: int = 250, stats_dir: str | os.PathLike | None = None,
                  features: _Features | None = None) -> np.ndarray:
  """Features of the first `num_real` images of the dataset's split (in its fixed file order),
  read from the cache when computed before for the same dataset, network and number
  (`real_features_with_labels` without the labels).

  Raises:
    EvaluationError: the split holds fewer images than `num_real`.
  """
  return real_features_with_labels(data_config, network, num_real=num_real,
                                   batch_size=batch_size, stats_dir=stats_dir,
                                   features=features)[0]


def _real_batches(data_config: Mapping[str, Any], batch_size: int, num_real: int
                  ) -> tuple[Iterator[Any], bool]:
  """(the first `num_real` images of the split in batches, whether they come with labels)."""
  from ganjax.data import images as images_lib
  kwargs = dict(batch_size=batch_size, num_examples=num_real, process_index=0, process_count=1)
  try:
    return images_lib.finite_batches(data_config, with_labels=True, **kwargs), True
  except ConfigError:
    # A dataset without labels (celeb_a). Any other bad setting fails again just below.
    return images_lib.finite_batches(data_config, **kwargs), False


def real_features_with_labels(data_config: Mapping[str, Any], network: FeatureNetwork, *,
                              num_real: int, batch_size: int = 250,
                              stats_dir: str | os.PathLike | None = None,
                              features: _Features | None = None
                              ) -> tuple[np.ndarray, np.ndarray | None]:
  """Features of the first `num_real` images of the dataset's split (in its fixed file order)
  and their class labels, read from the cache when computed before for the same dataset, network
  and number.

  Returns:
    ((num_real, dim) features, (num_real,) int32 labels, or None for a dataset without labels).

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
        return stored["features"], (stored["labels"] if "labels" in stored.files else None)
  features = features or _Features(network, batch_size)
  feature_parts, label_parts = [], []
  progress = progress_lib.Progress(f"{network.name} features of the real images", total=num_real,
                                   unit="images")
  try:
    batches, labelled = _real_batches(data_config, features.batch_size, num_real)
    for batch in batches:
      images, labels = batch if labelled else (batch, None)
      feature_parts.append(features.images(images))
      label_parts.append(labels)
      progress.update(sum(len(part) for part in feature_parts))
  except images_lib.TooFewExamples as error:
    raise EvaluationError(f"{str(error).splitlines()[0]} (eval.num_real)") from None
  result = np.concatenate(feature_parts)
  labels = np.concatenate(label_parts).astype(np.int32) if labelled else None
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.npz")
    arrays = {"features": result, **({"labels": labels} if labelled else {})}
    np.savez(temporary, key=json.dumps(key, sort_keys=True), **arrays)
    os.replace(temporary, path)
  return result, labels


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
            radii: dict[int, np.ndarray] | None = None, *,
            labels: ClassLabels | None = None) -> dict[str, float]:
  """The measures `metric_names` (keys of `MEASURES`) of fake features against real ones, as
  plain floats (`real_statistics` and `radii`, from `real_radii`, when computed before; the
  `labels` of a class-conditional evaluation). `compute_with_details` also returns the per-class
  values.

  Raises:
    EvaluationError: a measure that needs labels (`Measure.needs`) without them.
  """
  return compute_with_details(real, fake, metric_names, real_statistics, radii,
                              labels=labels)[0]


def compute_with_details(real: np.ndarray, fake: np.ndarray, metric_names: tuple[str, ...],
                         real_statistics: metrics_lib.FeatureStatistics | None = None,
                         radii: dict[int, np.ndarray] | None = None, *,
                         labels: ClassLabels | None = None
                         ) -> tuple[dict[str, float], dict[str, list[float | None]]]:
  """`compute`'s values, and the measures' per-class values (`Measure.details`) as lists."""
  _check_conditional(metric_names, 0 if labels is None else labels.num_classes)
  radii = radii or {}
  values: dict[str, float] = {}
  details: dict[str, list[float | None]] = {}
  for name in metric_names:
    measure = MEASURES[name]
    if "labels" in measure.needs and labels.real is None:
      raise EvaluationError(f"eval.metrics {name} needs the real images' class labels; the "
                            "dataset has none")
    if "predictions" in measure.needs and labels.predicted is None:
      raise ValueError(f"eval.metrics {name} needs the classifier's predicted classes")
    context = Context(real_statistics, measure.k, radii.get(measure.k), labels)
    result = dict(measure.compute(real, fake, context))
    for detail in measure.details:
      details[detail] = [None if value is None else float(value) for value in result.pop(detail)]
    values.update(result)
  return {name: float(value) for name, value in values.items()}, details


class Evaluator:
  """Evaluates generators against one dataset's cached real features.

  `Evaluator(config, workdir, data_shape)(state)` returns {'fid': ..., 'kid': ..., ...} for
  `eval.num_samples` images of `state`'s generator; `details` then holds the per-class values of
  that evaluation (`Measure.details`: per_class_accuracy, per_class_fid).

  Attributes:
    settings: `settings(config)`.
    metrics: the names of the measures.
    network: the feature network.
    classifier: the classifier whose predictions `accuracy` scores, or None when not asked for.
    real: the real images' features; real_labels: their classes, or None.
    details: the per-class values of the last evaluation.
  """

  def __init__(self, config, workdir: str | os.PathLike | None, data_shape: tuple[int, ...]):
    self.settings = settings(config)
    self.metrics = self.settings["metrics"]
    if not self.metrics:
      raise EvaluationError("eval.metrics is empty: nothing to evaluate")
    needed = needs(self.metrics)
    self.network = feature_network(config, workdir, data_shape)
    self.classifier = (label_classifier(config, workdir, data_shape, self.network)
                       if "predictions" in needed else None)
    self.features = _Features(self.network, self.settings["batch_size"], self.classifier)
    self.real, self.real_labels = real_features_with_labels(
        config.data, self.network, num_real=self.settings["num_real"],
        stats_dir=self.settings["stats_dir"], features=self.features)
    if "labels" in needed and self.real_labels is None:
      labelled = [name for name in self.metrics if "labels" in MEASURES[name].needs]
      raise EvaluationError(f"eval.metrics {', '.join(labelled)} needs the real images' class "
                            f"labels; dataset {config.data.get('name')!r} has none")
    self.real_statistics = metrics_lib.feature_statistics(self.real)
    self.real_radii = real_radii(self.real, self.metrics)
    self.details: dict[str, list[float | None]] = {}

  def __call__(self, state: train.GANState, num_samples: int | None = None) -> dict[str, float]:
    num_classes = state.spec.num_classes
    _check_conditional(self.metrics, num_classes)
    if self.classifier is not None and self.classifier.num_classes != num_classes:
      raise EvaluationError(f"the classifier has {self.classifier.num_classes} classes, the "
                            f"generator {num_classes}")
    generated = self.features.generated(state, num_samples or self.settings["num_samples"])
    labels = None if not num_classes else ClassLabels(
        num_classes, generated.labels, self.real_labels, generated.predictions)
    values, self.details = compute_with_details(self.real, generated.features, self.metrics,
                                                self.real_statistics, self.real_radii,
                                                labels=labels)
    return values


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
