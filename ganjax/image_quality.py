"""Image-quality evaluation of a generator: FID, KID, the Inception Score, precision/recall,
density/coverage, and for a class-conditional generator intra-FID and classification accuracy;
measured by a named protocol (`PROTOCOLS`) or by the fields of `config.eval`.

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
network in batches of `eval.batch_size`, the batch split over the local devices; the Inception
network's input is resized to 299x299 as `eval.resize` says: 'pytorch' (pytorch-fid's
`F.interpolate`, the default) or 'tf1' (the 2015 graph's own TensorFlow 1 `ResizeBilinear`, as the
original Inception Score and TTUR code fed it; `ganjax.models.inception.preprocess`).

The Inception Score (`is`, `metrics.inception_score`) is computed from the graph's 1008 logits
without the classifier's bias (with it under `eval.logits_bias`, as StudioGAN does), in
`eval.splits` consecutive splits of the generated images.

Protocols (`eval.protocol`, `Protocol`): presets that fix the generated and real image counts,
the reference split, the resize, the splits and the bias, each as the code that defined it
measured (its `source`):
  quick          FID, 10k generated vs 10k real of the run's split, pytorch resize (monitoring)
  mimicry        IS 50k/10 splits; FID and KID 50k generated vs 50k train; tf1
  sngan          IS 50k/10 splits; FID 5k generated vs 10k test; tf1
  stylegan2_ada  is50k (10 splits) and fid50k_full (50k vs the whole train split); tf1
  studiogan      IS 50k/1 split with the bias; FID 50k vs the whole train split; pytorch
A protocol's fields replace the config's; `eval.metrics` still says what is measured (a
protocol's `metrics` are what its source reported, `ganjax.evaluate --protocol`'s default).

Published statistics: `eval.reference_stats` names an .npz with 'mu' and 'sigma' (pytorch-fid's
`--save-stats`, TTUR's and clean-fid's files), FID's real statistics in place of the dataset's.
The cache of the real features holds its own 'mu' and 'sigma' in that format, with the protocol
that produced them.

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
  metrics            comma-separated names of `MEASURES`: fid, kid, is, precision_recall,
                     density_coverage, accuracy, intra_fid ('': none)
  protocol           a key of `PROTOCOLS` ('': none)
  features           'inception' (default) or 'classifier'
  every              evaluate every that many steps during training (0: only at the end)
  num_samples        generated images per evaluation (default 10,000)
  num_real           real images for the cached features (default 10,000; 0: the whole split)
  resize             the Inception input: 'pytorch' (default) or 'tf1'
  splits             the Inception Score's splits (default 10)
  logits_bias        the Inception Score's logits with the classifier's bias (default false)
  reference_stats    an .npz with 'mu' and 'sigma' for FID instead of the dataset's features
  batch_size         images per feature batch (default 250)
  best               keep the checkpoint with the best value of this measure in
                     `<workdir>/best/`: a key of `BEST` (lower is better for fid, kid and
                     intra_fid, higher for is, precision, recall, density, coverage, accuracy and
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
from ganjax import distributed
from ganjax import metrics as metrics_lib
from ganjax import progress as progress_lib
from ganjax import train
from ganjax.errors import ConfigError

FEATURES = ("inception", "classifier")
CLASSIFIER_FILE = "classifier.msgpack"
DEFAULTS = {"metrics": "", "features": "inception", "every": 0, "num_samples": 10_000,
            "num_real": 10_000, "batch_size": 250, "best": "", "stats_dir": None,
            "inception_weights": None, "classifier": None, "classifier_steps": 2000,
            "protocol": "", "resize": "pytorch", "splits": 10, "logits_bias": False,
            "reference_stats": None}
# The fields a protocol fixes (`Protocol`); in `settings` they replace the config's.
PROTOCOL_FIELDS = ("features", "num_samples", "num_real", "resize", "splits", "logits_bias")
# The stream of the evaluation's fixed latents (folded into the state's key).
_EVAL_STREAM = 0xE7A1
# 2: the real images' labels stored with their features. 3: their mean and covariance as 'mu' and
# 'sigma' beside them, and what produced them ('protocol').
_CACHE_VERSION = 3


class EvaluationError(ConfigError):
  """A bad evaluation setting or a missing input (weights, classifier), in one line."""


# ------------------------------------------------------------------------------------------------
# The measures

# What a measure may need besides the features (`Measure.needs`): the real and the generated
# images' labels ('labels'), or the generated images' labels and the run's classifier's predicted
# classes of them ('predictions').
# 'logits': the generated images' logits of the Inception graph's classifier (the Inception Score).
NEEDS = ("labels", "predictions", "logits")
# The needs that only a class-conditional run meets.
_CLASS_NEEDS = ("labels", "predictions")


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
    logits: the generated images' Inception logits (without the bias), for a measure that needs
      'logits'; else None.
    splits: the Inception Score's number of splits (`eval.splits`).
  """
  real_statistics: metrics_lib.FeatureStatistics | None = None
  k: int | None = None
  real_radii: np.ndarray | None = None
  labels: ClassLabels | None = None
  logits: np.ndarray | None = None
  splits: int = 10


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
      classes and the run's classifier's predictions of them), either of which needs a
      class-conditional run; 'logits' (`Context.logits`, from the Inception network).
    details: the names of the per-class sequences it returns besides its numbers
      (`Evaluator.details`; not in the scalar logs).
    real: whether it reads the real images' features (or, for fid, their statistics, which
      `eval.reference_stats` may give instead).
  """
  name: str
  numbers: Mapping[str, float | None]
  compute: Callable[[np.ndarray, np.ndarray, Context], Mapping[str, Any]]
  k: int | None = None
  needs: tuple[str, ...] = ()
  details: tuple[str, ...] = ()
  real: bool = True

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


def _inception_score(real: np.ndarray, fake: np.ndarray, context: Context) -> dict[str, float]:
  del real, fake
  if context.splits > len(context.logits):
    raise EvaluationError(f"the Inception Score of {len(context.logits)} images cannot have "
                          f"{context.splits} splits (eval.splits, eval.num_samples)")
  return metrics_lib.inception_score(context.logits, context.splits)


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
    Measure("is", {"is": 1.0, "is_std": None}, _inception_score, needs=("logits",), real=False),
    Measure("accuracy", {"accuracy": 1.0, "accuracy_min": 1.0}, _accuracy,
            needs=("predictions",), details=("per_class_accuracy",), real=False),
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


# ------------------------------------------------------------------------------------------------
# Protocols


@dataclasses.dataclass(frozen=True)
class Protocol:
  """A named way of measuring, as a paper or a library measured: `eval.protocol`.

  Attributes:
    name: the name of `eval.protocol`.
    source: where it is defined (paper, code), cited in the README and the tables.
    metrics: the measures its source reports (`ganjax.evaluate --protocol`'s default).
    num_samples: generated images.
    num_real: real images of the reference split (0: all of it).
    split: the reference split, or None for the run's `data.split`.
    resize: the Inception input, one of `ganjax.models.inception.RESIZES`.
    splits: the Inception Score's splits.
    logits_bias: the Inception Score's logits with the classifier's bias (StudioGAN's; the
      original code left it out).
    counts: the generated images of a measure that takes fewer than `num_samples` (the first
      that many), by measure name.
    features: the feature network: 'inception' for every paper's protocol.
  """
  name: str
  source: str
  metrics: tuple[str, ...]
  num_samples: int
  num_real: int
  split: str | None
  resize: str
  splits: int = 10
  logits_bias: bool = False
  counts: Mapping[str, int] = dataclasses.field(default_factory=dict)
  features: str = "inception"


PROTOCOLS: dict[str, Protocol] = {protocol.name: protocol for protocol in (
    Protocol("quick", "ganjax's monitoring default: FID of 10k generated vs the first 10k real "
             "images of the run's split, pytorch-fid's input", ("fid",), 10_000, 10_000, None,
             "pytorch"),
    Protocol("mimicry", "Lee and Town 2020, Mimicry (torch_mimicry.metrics; the TF graph fed at "
             "ExpandDims:0): IS of 50k in 10 splits; FID and KID of 50k generated vs 50k "
             "training images", ("is", "fid", "kid"), 50_000, 50_000, "train", "tf1"),
    Protocol("sngan", "Miyato et al. 2018, SNGAN (sngan_projection, --tf): IS of 50k in 10 "
             "splits; FID of 5k generated vs 10k real images, of the test split (the paper "
             "does not name it)", ("is", "fid"), 50_000, 10_000, "test", "tf1",
             counts={"fid": 5_000}),
    Protocol("stylegan2_ada", "Karras et al. 2020, StyleGAN2-ADA (stylegan2-ada-pytorch "
             "metrics fid50k_full, is50k): FID of 50k generated vs the whole training split; "
             "IS of 50k in 10 splits", ("is", "fid"), 50_000, 0, "train", "tf1"),
    Protocol("studiogan", "Kang et al. 2023, StudioGAN defaults (InceptionV3_tf, "
             "post_resizer legacy, ref_dataset train): FID of as many generated images as the "
             "training split holds (50k for CIFAR-10) vs all of it; IS of 50k in 1 split from "
             "the logits with the bias", ("is", "fid"), 50_000, 0, "train", "pytorch",
             splits=1, logits_bias=True),
)}


def settings(config) -> dict[str, Any]:
  """`config.eval` with the defaults above filled in, a protocol's fields put in, checked.

  With `eval.protocol`, its `PROTOCOL_FIELDS` replace the config's, and two more entries say what
  it fixes: 'split' (the reference split, or None for the run's) and 'counts' (the generated
  images of the measures that take fewer). `eval.metrics` stays the config's ('' is still off).

  Raises:
    EvaluationError: naming the field and the valid values.
  """
  from ganjax.models import inception
  given = dict(config.get("eval", {}) or {})
  values = {name: given.get(name, default) if given.get(name, default) is not None else default
            for name, default in DEFAULTS.items()}
  values["split"], values["counts"] = None, {}
  if values["protocol"]:
    protocol = PROTOCOLS.get(values["protocol"])
    if protocol is None:
      raise EvaluationError(f"eval.protocol {values['protocol']!r} is not one of: "
                            f"{', '.join(PROTOCOLS)}")
    values.update({name: getattr(protocol, name) for name in PROTOCOL_FIELDS},
                  split=protocol.split, counts=dict(protocol.counts))
  values["metrics"] = parse_metrics(values["metrics"])
  if values["features"] not in FEATURES:
    raise EvaluationError(f"eval.features {values['features']!r} is not one of: "
                          f"{', '.join(FEATURES)}")
  if values["resize"] not in inception.RESIZES:
    raise EvaluationError(f"eval.resize {values['resize']!r} is not one of: "
                          f"{', '.join(inception.RESIZES)}")
  for name in ("every", "num_samples", "num_real", "batch_size", "classifier_steps", "splits"):
    value, smallest = values[name], 0 if name in ("every", "num_real") else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < smallest:
      kind = "non-negative" if smallest == 0 else "positive"
      raise EvaluationError(f"eval.{name} must be a {kind} integer, got {value!r}")
  if "is" in values["metrics"]:
    if values["features"] != "inception":
      raise EvaluationError("eval.metrics is (the Inception Score) needs eval.features "
                            f"'inception', not {values['features']!r}")
    if not isinstance(values["logits_bias"], bool):
      raise EvaluationError(f"eval.logits_bias must be true or false, got "
                            f"{values['logits_bias']!r}")
    if values["splits"] > values["num_samples"]:
      raise EvaluationError(f"eval.splits {values['splits']} is more than the "
                            f"{values['num_samples']} generated images (eval.num_samples)")
  if values["best"] and values["best"] not in BEST:
    raise EvaluationError(f"eval.best {values['best']!r} is not one of: {', '.join(BEST)}")
  if values["best"] and values["best"] not in measure_names(values["metrics"]):
    raise EvaluationError(f"eval.best {values['best']!r} is not computed by eval.metrics "
                          f"{','.join(values['metrics']) or '(none)'}")
  if values["reference_stats"] is not None:
    if "fid" not in values["metrics"]:
      raise EvaluationError("eval.reference_stats gives the real statistics of fid, which "
                            "eval.metrics does not ask for")
    if not os.path.isfile(values["reference_stats"]):
      raise EvaluationError(f"eval.reference_stats {values['reference_stats']} does not exist")
  conditional = config.get("conditional", None) or {}
  if not conditional.get("enabled", False):
    _check_conditional(values["metrics"], num_classes=0)
  return values


def reads_real_features(name: str, reference_stats: str | None) -> bool:
  """Whether measure `name` reads the real images' features (fid does not when
  `eval.reference_stats` gives their statistics)."""
  return MEASURES[name].real and not (name == "fid" and reference_stats is not None)


def needs(metric_names: tuple[str, ...]) -> frozenset[str]:
  """What the measures `metric_names` need besides the features (`Measure.needs`)."""
  return frozenset(need for name in metric_names for need in MEASURES[name].needs)


def _check_conditional(metric_names: tuple[str, ...], num_classes: int) -> None:
  """An EvaluationError if a measure that needs labels is asked of an unconditional run."""
  labelled = [name for name in metric_names if set(MEASURES[name].needs) & set(_CLASS_NEEDS)]
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
    apply_with_logits: for the Inception network, a jittable function (variables, images in
      [-1, 1]) -> ((N, dim) features, (N, 1008) logits without the bias), for the Inception
      Score; None for a network without them.
  """
  name: str
  identity: str
  dim: int
  apply: Callable[[Any, jax.Array], jax.Array]
  variables: Any
  classify: Callable[[Any, jax.Array], jax.Array] | None = None
  num_classes: int = 0
  apply_with_logits: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]] | None = None


def inception_network(weights: str | os.PathLike | None = None,
                      resize: str = "pytorch") -> FeatureNetwork:
  """pytorch-fid's network from the weight file `weights` (default: $GANJAX_INCEPTION_WEIGHTS),
  its input resized and normalised as `resize` says (`inception_network_of`).

  Raises:
    EvaluationError: the file is missing, damaged or another file.
  """
  from ganjax.models import inception
  try:
    variables, sha256 = inception.load_weights(weights)
  except (FileNotFoundError, ValueError) as error:
    raise EvaluationError(f"{error} (or set eval.inception_weights)") from None
  return inception_network_of(variables, f"inception-{sha256[:16]}", resize)


def inception_network_of(variables, identity: str, resize: str = "pytorch") -> FeatureNetwork:
  """The Inception `FeatureNetwork` of `variables` (`ganjax.models.inception`'s), named
  `identity`, with the suffix '-<resize>' unless the resize is pytorch-fid's; its input resized
  and normalised as `resize` says (`ganjax.models.inception.preprocess`)."""
  from ganjax.models import inception
  inception.check_resize(resize)
  return FeatureNetwork(
      "inception", identity + ("" if resize == "pytorch" else f"-{resize}"),
      inception.FEATURE_DIM,
      lambda v, images: inception.extract_features(v, (images + 1.0) / 2.0, resize),
      variables,
      apply_with_logits=lambda v, images: inception.extract_features_and_logits(
          v, (images + 1.0) / 2.0, resize))


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
  # On several processes, process 0 trains it and the others wait, then read it.
  if distributed.agree(int(not path.exists())):
    if jax.process_index() == 0:
      from ganjax import classifier
      progress_lib.say(f"training the feature classifier on {config.data.get('name')!r} labels "
                       f"({values['classifier_steps']} steps) for {path}")
      metadata = classifier.train_for_dataset(config.data, path,
                                              steps=values["classifier_steps"], seed=config.seed)
      progress_lib.say(f"feature classifier: accuracy {metadata['accuracy']:.4f} on the "
                       f"{metadata['accuracy_split']} split")
    distributed.barrier("ganjax-classifier")
  return path


def feature_network(config, workdir: str | os.PathLike | None,
                    data_shape: tuple[int, ...]) -> FeatureNetwork:
  """The feature network a run's `config.eval` asks for; trains the run's classifier (saved in
  `workdir`) when `eval.features` is 'classifier' and `eval.classifier` names no file."""
  values = settings(config)
  if values["features"] == "inception":
    return inception_network(values["inception_weights"], values["resize"])
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


def _batch_sharding(batch_size: int, devices: list[jax.Device] | None = None
                    ) -> tuple[NamedSharding | None, NamedSharding | None, int]:
  """Shardings of the batch axis over the devices (default: the local ones) and of replicated
  values, and the batch size rounded up to a multiple of their number (no sharding on one
  device)."""
  devices = devices or jax.local_devices()
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
    logits: (num, 1008) float32 Inception logits without the bias, or None when not asked for.
  """
  features: np.ndarray
  labels: np.ndarray | None
  predictions: np.ndarray | None
  logits: np.ndarray | None = None


class _Features:
  """Jitted, device-sharded feature functions of one network and batch size (and the predicted
  classes of a classifier, when one is given; the Inception logits with `logits`).

  `devices` (default: the local devices) splits each batch; the features of an image do not
  depend on them.
  """

  def __init__(self, network: FeatureNetwork, batch_size: int,
               classifier: FeatureNetwork | None = None, *, logits: bool = False,
               devices: list[jax.Device] | None = None):
    if classifier is not None and classifier.classify is None:
      raise ValueError(f"the {classifier.name} network classifies nothing")
    if logits and network.apply_with_logits is None:
      raise ValueError(f"the {network.name} network gives no Inception logits")
    self.network, self.classifier = network, classifier
    self.sharding, self.replicated, self.batch_size = _batch_sharding(batch_size, devices)
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
      if logits:
        return (*network.apply_with_logits(variables, images), labels, predictions)
      return network.apply(variables, images), None, labels, predictions

    self._of_images = compilation.jit(of_images)
    self._of_samples = compilation.jit(of_samples)

  def images(self, images: np.ndarray) -> np.ndarray:
    """Features of real images in [-1, 1] (a short batch is padded, its padding dropped)."""
    count = images.shape[0]
    if count < self.batch_size:
      images = np.concatenate([images, np.zeros((self.batch_size - count, *images.shape[1:]),
                                                images.dtype)])
    return np.asarray(self._of_images(self.variables, _put(images, self.sharding)))[:count]

  def generated(self, state: train.GANState, num: int, *, report: bool = False
                ) -> GeneratedFeatures:
    """Features of `num` generated images from the evaluation's fixed noise (for a
    class-conditional generator, image i made for class i % K), their labels and, with a
    classifier, its predicted classes of them; the logits when asked for.

    The images are generated, resized and reduced to features one batch at a time: a batch's
    results come to the host while the next one is computed, so memory holds the features (50k
    x 2048 float32: 400 MB), never the images. `report`: progress lines. On several processes
    each computes the features of its consecutive share of the images (`distributed.share`),
    and every process gets them all, gathered once.
    """
    state = _put(state, self.replicated)
    key = jax.random.fold_in(state.key, _EVAL_STREAM)
    mine = distributed.share(num)
    progress = (progress_lib.Progress(f"{self.network.name} features of the generated images",
                                      total=len(mine), unit="images") if report else None)
    parts, pending = [], None
    # A process whose share is empty computes one batch all the same (and keeps none of it),
    # so that every process gathers arrays of the same kinds.
    for start in [*range(mine.start, max(mine.stop, mine.start + 1), self.batch_size), None]:
      computing = None if start is None else self._of_samples(
          self.variables, self.classifier_variables, state, key, start)
      if pending is not None:
        parts.append(jax.tree.map(np.asarray, pending))
        if progress is not None:
          progress.update(min(len(parts) * self.batch_size, len(mine)))
      pending = computing
    # Each part is (features, logits, labels, predictions), None where there are none.
    features, logits, labels, predictions = (
        distributed.gather_rows(None if column[0] is None else
                                np.concatenate(column)[:len(mine)], num)
        for column in zip(*parts))
    return GeneratedFeatures(features, labels, predictions, logits)

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
  """(the first `num_real` images of the split (0: all) in batches, whether they come with
  labels)."""
  from ganjax.data import images as images_lib
  kwargs = dict(batch_size=batch_size, num_examples=num_real or None, process_index=0,
                process_count=1)
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
  """Features of the first `num_real` images of the dataset's split (in its fixed file order; 0:
  all of them) and their class labels, read from the cache when computed before for the same
  dataset, network and number.

  The cache file (in `stats_dir`) is an .npz in the format of published FID statistics: 'mu' and
  'sigma' (their mean and covariance, which pytorch-fid's `--save-stats` files and TTUR's and
  clean-fid's also hold, so the file can be given to them or to `eval.reference_stats`), and
  'protocol' (JSON: the dataset, split, number of images and feature network), beside the
  'features' and 'labels'.

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
  path = folder / f"{described['name']}-{network.name}-{num_real or 'all'}-{digest}.npz"
  # Read from the cache only when every process can (a cache folder per host may hold it on
  # some hosts only): the others would wait for them in the gathering below.
  cached = None
  if path.exists():
    with np.load(path) as stored:
      if json.loads(str(stored["key"])) == key:
        cached = stored["features"], (stored["labels"] if "labels" in stored.files else None)
  if not distributed.agree(int(cached is None)):
    return cached
  features = features or _Features(network, batch_size)
  feature_parts, label_parts = [], []
  total = num_real or images_lib.num_examples(data_config)
  # On several processes each runs the network on its consecutive share of the images (every
  # process reads them all, for their labels), and the features are gathered once.
  mine, seen = distributed.share(total), 0
  progress = progress_lib.Progress(f"{network.name} features of the real images",
                                   total=len(mine), unit="images")
  try:
    batches, labelled = _real_batches(data_config, features.batch_size, num_real)
    for batch in batches:
      images, labels = batch if labelled else (batch, None)
      first, seen = seen, seen + len(images)
      low, high = max(first, mine.start), min(seen, mine.stop)
      if low < high:
        feature_parts.append(features.images(images)[low - first:high - first])
        progress.update(sum(len(part) for part in feature_parts))
      label_parts.append(labels)
  except images_lib.TooFewExamples as error:
    raise EvaluationError(f"{str(error).splitlines()[0]} (eval.num_real)") from None
  if seen != total:
    raise EvaluationError(f"dataset {described['name']!r} split {described['split']!r} gave "
                          f"{seen} images where {total} were counted")
  result = distributed.gather_rows(
      np.concatenate(feature_parts) if feature_parts else
      np.zeros((0, network.dim), np.float32), total)
  labels = np.concatenate(label_parts).astype(np.int32) if labelled else None
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.npz")
    statistics = metrics_lib.feature_statistics(result)
    protocol = {"dataset": described["name"], "split": described["split"] or "train",
                "num_real": len(result), "feature_network": network.identity}
    arrays = {"features": result, **({"labels": labels} if labelled else {}),
              "mu": statistics.mean, "sigma": statistics.covariance, "count": len(result)}
    np.savez(temporary, key=json.dumps(key, sort_keys=True),
             protocol=json.dumps(protocol, sort_keys=True), **arrays)
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
            labels: ClassLabels | None = None, **kwargs) -> dict[str, float]:
  """The measures `metric_names` (keys of `MEASURES`) of fake features against real ones, as
  plain floats (`real_statistics` and `radii`, from `real_radii`, when computed before; the
  `labels` of a class-conditional evaluation; `compute_with_details`'s logits, splits and
  counts). `compute_with_details` also returns the per-class values.

  Raises:
    EvaluationError: a measure that needs labels or logits (`Measure.needs`) without them.
  """
  return compute_with_details(real, fake, metric_names, real_statistics, radii,
                              labels=labels, **kwargs)[0]


def _first(labels: ClassLabels | None, count: int) -> ClassLabels | None:
  """The classes of the first `count` generated images."""
  if labels is None:
    return None
  predicted = None if labels.predicted is None else labels.predicted[:count]
  return dataclasses.replace(labels, fake=labels.fake[:count], predicted=predicted)


def compute_with_details(real: np.ndarray, fake: np.ndarray, metric_names: tuple[str, ...],
                         real_statistics: metrics_lib.FeatureStatistics | None = None,
                         radii: dict[int, np.ndarray] | None = None, *,
                         labels: ClassLabels | None = None, logits: np.ndarray | None = None,
                         splits: int = 10, counts: Mapping[str, int] | None = None
                         ) -> tuple[dict[str, float], dict[str, list[float | None]]]:
  """`compute`'s values, and the measures' per-class values (`Measure.details`) as lists.

  Args (besides `compute`'s):
    logits: the generated images' Inception logits, for the measures that need them (is).
    splits: the Inception Score's splits.
    counts: the number of generated images a measure takes (the first that many), by name;
      the others take all of `fake`.
  """
  _check_conditional(metric_names, 0 if labels is None else labels.num_classes)
  radii = radii or {}
  counts = counts or {}
  values: dict[str, float] = {}
  details: dict[str, list[float | None]] = {}
  for name in metric_names:
    measure = MEASURES[name]
    if "logits" in measure.needs and logits is None:
      raise EvaluationError(f"eval.metrics {name} needs the Inception network's logits "
                            "(eval.features 'inception')")
    count = counts.get(name, len(fake))
    if "labels" in measure.needs and labels.real is None:
      raise EvaluationError(f"eval.metrics {name} needs the real images' class labels; the "
                            "dataset has none")
    if "predictions" in measure.needs and labels.predicted is None:
      raise ValueError(f"eval.metrics {name} needs the classifier's predicted classes")
    context = Context(real_statistics, measure.k, radii.get(measure.k), _first(labels, count),
                      None if logits is None else logits[:count], splits)
    result = dict(measure.compute(real, fake[:count], context))
    for detail in measure.details:
      details[detail] = [None if value is None else float(value) for value in result.pop(detail)]
    values.update(result)
  return {name: float(value) for name, value in values.items()}, details


class Evaluator:
  """Evaluates generators against one dataset's cached real features (or published statistics).

  `Evaluator(config, workdir, data_shape)(state)` returns {'fid': ..., 'kid': ..., ...} for
  `eval.num_samples` images of `state`'s generator; `details` then holds the per-class values of
  that evaluation (`Measure.details`: per_class_accuracy, per_class_fid), and `description()`
  says how the numbers were measured.

  Attributes:
    settings: `settings(config)`.
    metrics: the names of the measures.
    network: the feature network.
    classifier: the classifier whose predictions `accuracy` scores, or None when not asked for.
    data_config: the real images' `config.data` (the protocol's split in place of the run's).
    real: the real images' features (none, shape (0, dim), when no measure reads them);
      real_labels: their classes, or None.
    real_statistics: their mean and covariance, or `eval.reference_stats`'s.
    details: the per-class values of the last evaluation.
    report: print progress lines while generating (`ganjax.evaluate` sets it).
  """

  def __init__(self, config, workdir: str | os.PathLike | None, data_shape: tuple[int, ...]):
    self.settings = settings(config)
    self.metrics = self.settings["metrics"]
    if not self.metrics:
      raise EvaluationError("eval.metrics is empty: nothing to evaluate")
    needed = needs(self.metrics)
    self.data_config = dict(config.data)
    if self.settings["split"] is not None:
      self.data_config["split"] = self.settings["split"]
    self.network = feature_network(config, workdir, data_shape)
    self.classifier = (label_classifier(config, workdir, data_shape, self.network)
                       if "predictions" in needed else None)
    self.features = _Features(self.network, self.settings["batch_size"], self.classifier,
                              logits="logits" in needed)
    reference = self.settings["reference_stats"]
    self.real, self.real_labels = np.zeros((0, self.network.dim), np.float32), None
    if any(reads_real_features(name, reference) for name in self.metrics):
      self.real, self.real_labels = real_features_with_labels(
          self.data_config, self.network, num_real=self.settings["num_real"],
          stats_dir=self.settings["stats_dir"], features=self.features)
    if "labels" in needed and self.real_labels is None:
      labelled = [name for name in self.metrics if "labels" in MEASURES[name].needs]
      raise EvaluationError(f"eval.metrics {', '.join(labelled)} needs the real images' class "
                            f"labels; dataset {config.data.get('name')!r} has none")
    if reference is not None:
      try:
        self.real_statistics = metrics_lib.load_statistics(reference, dim=self.network.dim)
      except ValueError as error:
        raise EvaluationError(f"eval.reference_stats: {error}") from None
    else:
      self.real_statistics = (metrics_lib.feature_statistics(self.real) if len(self.real)
                              else None)
    self.real_radii = real_radii(self.real, self.metrics)
    self.details: dict[str, list[float | None]] = {}
    self.report = False

  def __call__(self, state: train.GANState, num_samples: int | None = None) -> dict[str, float]:
    num_classes = state.spec.num_classes
    _check_conditional(self.metrics, num_classes)
    if self.classifier is not None and self.classifier.num_classes != num_classes:
      raise EvaluationError(f"the classifier has {self.classifier.num_classes} classes, the "
                            f"generator {num_classes}")
    generated = self.features.generated(state, num_samples or self.settings["num_samples"],
                                        report=self.report)
    labels = None if not num_classes else ClassLabels(
        num_classes, generated.labels, self.real_labels, generated.predictions)
    logits = generated.logits
    if logits is not None and self.settings["logits_bias"]:
      from ganjax.models import inception
      logits = logits + np.asarray(inception.logits_bias(self.network.variables))
    values, self.details = compute_with_details(
        self.real, generated.features, self.metrics, self.real_statistics, self.real_radii,
        labels=labels, logits=logits, splits=self.settings["splits"],
        counts=self.settings["counts"])
    return values

  def description(self) -> dict[str, Any]:
    """How the numbers are measured: the protocol ('' for none), the feature network, its
    input's resize, the reference (dataset, split and number of real images, or the statistics
    file), the generated images of each measure, and the Inception Score's splits."""
    settings_ = self.settings
    reference: dict[str, Any]
    if settings_["reference_stats"] is not None:
      reference = {"reference_stats": str(settings_["reference_stats"])}
    else:
      reference = {}
    if len(self.real):
      reference.update(dataset=self.data_config.get("name"),
                       split=self.data_config.get("split", "train"), num_real=len(self.real))
    samples = {name: settings_["counts"].get(name, settings_["num_samples"])
               for name in self.metrics}
    return {"protocol": settings_["protocol"], "features": self.network.name,
            "feature_network": self.network.identity,
            "resize": settings_["resize"] if self.network.name == "inception" else None,
            "num_samples": settings_["num_samples"], "samples": samples,
            **({"splits": settings_["splits"], "logits_bias": settings_["logits_bias"]}
               if "is" in self.metrics else {}),
            "reference": reference}


def eval_config(*, metrics: str = "", features: str = "inception", every: int = 0,
                best: str = "", num_samples: int = 10_000, num_real: int = 10_000,
                **overrides):
  """`config.eval` for an image experiment file: every field above, so that each can be
  overridden on the command line (--config.eval.inception_weights=<file>)."""
  import ml_collections
  from ml_collections import config_dict
  fields = {**DEFAULTS, "metrics": metrics, "features": features, "every": every, "best": best,
            "num_samples": num_samples, "num_real": num_real, **overrides}
  for name in ("stats_dir", "inception_weights", "classifier", "reference_stats"):
    if fields[name] is None:
      fields[name] = config_dict.placeholder(str)
  return ml_collections.ConfigDict(fields)
