"""A small image classifier whose features stand in for Inception's on MNIST-like datasets.

Train one: python -m ganjax.classifier --dataset=mnist --out=<file> [--steps=2000]
[--batch_size=128] [--data_dir=<dir>] [--image_size=<side>] [--folder=<dir>].

Inception features say little about 28x28 digits or clothes. A classifier trained on the
dataset's own labels is a feature extractor of its domain: the Frechet distance (and any other
feature statistic) is then computed on its penultimate-layer features, a "classifier FID" in the
same way as the Frechet Inception distance is on Inception's.

`train_for_dataset` trains one on a dataset's labelled split and measures its accuracy on the
'test' split; `save` writes it (parameters and metadata) to one msgpack file, `load` reads it back
and `features_from_file` returns its feature function:

  feature_fn = classifier.features_from_file(path)
  features = feature_fn(images)  # (N, feature_fn.dim), images (N, H, W, C) in [-1, 1]

References:
  Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium", NeurIPS 2017 (FID).
"""
from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any, Iterable, Iterator, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from ganjax import compilation
from ganjax.errors import ConfigError
from ganjax import progress as progress_lib

DEFAULT_FEATURE_DIM = 128
MIN_IMAGE_SIDE = 8
# (name, width, stride) of the 3x3 convolutions, each followed by a ReLU.
CONVOLUTIONS = (("conv_0", 32, 1), ("conv_1", 64, 2), ("conv_2", 128, 2))
METADATA_FIELDS = ("dataset", "image_shape", "num_classes", "feature_dim", "accuracy",
                   "accuracy_split")

Params = dict[str, Any]


class ClassifierFileError(ValueError):
  """A classifier file that is missing, damaged, or does not hold a classifier."""


class Classifier(nn.Module):
  """A small convolutional classifier whose penultimate layer gives the features.

  Three 3x3 convolutions (32 stride 1, 64 stride 2, 128 stride 2, each with ReLU), a global mean
  pool, a Dense(feature_dim) with ReLU (the features) and a Dense(num_classes) (the logits).

  No normalisation layers: the parameters are the only variables, and the features of an image
  do not depend on the rest of its batch.

  Attributes:
    num_classes: number of classes.
    feature_dim: width of the feature layer.
  """
  num_classes: int
  feature_dim: int = DEFAULT_FEATURE_DIM

  @nn.compact
  def __call__(self, images: jax.typing.ArrayLike, return_features: bool = False) -> jax.Array:
    """Classifies images.

    Args:
      images: (batch, height, width, channels) with values in [-1, 1]; height, width >= 8.
      return_features: return the features instead of the logits.

    Returns:
      Logits of shape (batch, num_classes), or features of shape (batch, feature_dim).

    Raises:
      ValueError: images of another rank or smaller than 8x8.
    """
    x = jnp.asarray(images, jnp.float32)
    if x.ndim != 4 or min(x.shape[1:3]) < MIN_IMAGE_SIDE:
      raise ValueError(f"the classifier takes (batch, height, width, channels) images with "
                       f"height and width >= {MIN_IMAGE_SIDE}, got shape {x.shape}")
    for name, width, stride in CONVOLUTIONS:
      x = nn.relu(nn.Conv(width, (3, 3), strides=(stride, stride), padding="SAME", name=name)(x))
    x = jnp.mean(x, axis=(1, 2))
    features = nn.relu(nn.Dense(self.feature_dim, name="features")(x))
    if return_features:
      return features
    return nn.Dense(self.num_classes, name="logits")(features)


def init(image_shape: Sequence[int], *, num_classes: int, feature_dim: int = DEFAULT_FEATURE_DIM,
         seed: int = 0) -> Params:
  """Freshly initialised (untrained) parameters for images of `image_shape` (H, W, C)."""
  return _init(seed, image_shape=tuple(int(side) for side in image_shape),
               num_classes=num_classes, feature_dim=feature_dim)


@functools.partial(jax.jit, static_argnames=("image_shape", "num_classes", "feature_dim"))
def _init(seed: int, *, image_shape: tuple[int, int, int], num_classes: int,
          feature_dim: int) -> Params:
  model = Classifier(num_classes, feature_dim)
  return model.init(jax.random.PRNGKey(seed), jnp.zeros((1, *image_shape)))["params"]


def _flat_batch(batch: tuple[Any, Any], image_shape: Sequence[int]
                ) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels) with every leading axis merged into one batch axis."""
  images, labels = batch
  images, labels = np.asarray(images), np.asarray(labels)
  if images.ndim < 4 or images.shape[-3:] != tuple(image_shape):
    raise ValueError(f"expected images of shape (batch, {', '.join(map(str, image_shape))}) or "
                     f"(1, batch, ...), got {images.shape}")
  images = images.reshape(-1, *image_shape)
  labels = labels.reshape(-1)
  if labels.shape[0] != images.shape[0]:
    raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
  return images, labels


@functools.partial(compilation.jit,
                   static_argnames=("num_classes", "feature_dim", "learning_rate"))
def _update(params: Params, opt_state: optax.OptState, images: jax.Array, labels: jax.Array, *,
            num_classes: int, feature_dim: int, learning_rate: float
            ) -> tuple[Params, optax.OptState, jax.Array]:
  """One Adam step on the mean softmax cross-entropy; returns the loss before the step."""
  model = Classifier(num_classes, feature_dim)

  def loss_fn(params):
    logits = model.apply({"params": params}, images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  optimizer = optax.adam(learning_rate)
  loss, grads = jax.value_and_grad(loss_fn)(params)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


def train(batches: Iterator[tuple[Any, Any]], *, image_shape: Sequence[int], num_classes: int,
          steps: int, learning_rate: float = 1e-3, seed: int = 0,
          feature_dim: int = DEFAULT_FEATURE_DIM) -> Params:
  """Trains a `Classifier` with Adam on the softmax cross-entropy of its logits.

  Args:
    batches: an iterator of (images, labels) numpy batches, images (b, *image_shape) in [-1, 1]
      (or (1, b, *image_shape), as `images.make_iterator(..., with_labels=True)` yields them)
      and integer labels in [0, num_classes) of shape (b,) (or (1, b)). Exactly `steps`
      batches are read.
    image_shape: (height, width, channels) of an image.
    num_classes: number of classes.
    steps: number of updates, one per batch.
    learning_rate: Adam's learning rate.
    seed: seed of the initial parameters.
    feature_dim: width of the feature layer.

  Returns:
    The trained parameters.

  Raises:
    ValueError: batches of another image shape, or fewer than `steps` batches.
  """
  image_shape = tuple(image_shape)
  hyperparameters = dict(num_classes=num_classes, feature_dim=feature_dim,
                         learning_rate=learning_rate)
  params = init(image_shape, num_classes=num_classes, feature_dim=feature_dim, seed=seed)
  opt_state = optax.adam(learning_rate).init(params)
  progress = progress_lib.Progress("feature classifier", total=steps)
  for step in range(1, steps + 1):
    try:
      batch = next(batches)
    except StopIteration:
      raise ValueError(f"the batches ran out after {step - 1} of {steps} steps") from None
    images, labels = _flat_batch(batch, image_shape)
    params, opt_state, loss = _update(params, opt_state, images, labels.astype(np.int32),
                                      **hyperparameters)
    progress.update(step, lambda: f"loss {float(loss):.4f}")
  return params


@functools.partial(compilation.jit, static_argnames=("num_classes", "feature_dim"))
def _predictions(params: Params, images: jax.Array, *, num_classes: int,
                 feature_dim: int) -> jax.Array:
  return jnp.argmax(Classifier(num_classes, feature_dim).apply({"params": params}, images), -1)


def accuracy(params: Params, batches: Iterable[tuple[Any, Any]], *, num_classes: int,
             feature_dim: int = DEFAULT_FEATURE_DIM) -> float:
  """The fraction of examples whose most likely class is their label.

  Args:
    params: the classifier's parameters.
    batches: a finite iterable of (images, labels) batches, as `train` takes them (for example
      `images.finite_batches(..., with_labels=True)`).
    num_classes, feature_dim: the classifier's.

  Returns:
    The accuracy in [0, 1] over all examples of all batches.

  Raises:
    ValueError: no examples.
  """
  correct = total = 0
  for batch in batches:
    images, labels = _flat_batch(batch, np.shape(batch[0])[-3:])
    predicted = _predictions(params, images, num_classes=num_classes, feature_dim=feature_dim)
    correct += int(np.sum(np.asarray(predicted) == labels))
    total += labels.shape[0]
  if not total:
    raise ValueError("no examples to measure the accuracy on")
  return correct / total


@functools.partial(compilation.jit, static_argnames=("num_classes", "feature_dim"))
def extract_features(params: Params, images: jax.typing.ArrayLike, *, num_classes: int,
                     feature_dim: int = DEFAULT_FEATURE_DIM) -> jax.Array:
  """The classifier's features (the ReLU activations before the logits) of a batch of images.

  Pure and jitted, with `num_classes` and `feature_dim` static.

  Args:
    params: the classifier's parameters.
    images: (N, height, width, channels) with values in [-1, 1].
    num_classes, feature_dim: the classifier's.

  Returns:
    float32 features of shape (N, feature_dim).
  """
  return Classifier(num_classes, feature_dim).apply({"params": params}, images,
                                                    return_features=True)


@functools.partial(compilation.jit, static_argnames=("num_classes", "feature_dim"))
def logits(params: Params, images: jax.typing.ArrayLike, *, num_classes: int,
           feature_dim: int = DEFAULT_FEATURE_DIM) -> jax.Array:
  """The classifier's logits of a batch of images (their argmax: its predicted classes).

  Pure and jitted, with `num_classes` and `feature_dim` static.

  Args:
    params: the classifier's parameters.
    images: (N, height, width, channels) with values in [-1, 1].
    num_classes, feature_dim: the classifier's.

  Returns:
    float32 logits of shape (N, num_classes).
  """
  return Classifier(num_classes, feature_dim).apply({"params": params}, images)


def save(path: str | os.PathLike, params: Params, *, image_shape: Sequence[int], num_classes: int,
         feature_dim: int, accuracy: float, dataset: str,
         accuracy_split: str = "test") -> dict[str, Any]:
  """Writes a classifier (parameters and metadata) to one msgpack file, atomically.

  Args:
    path: the file to write; its directory is created if needed.
    params: the classifier's parameters.
    image_shape: (height, width, channels) of the images it was trained on.
    num_classes, feature_dim: the classifier's.
    accuracy: its accuracy, in [0, 1].
    dataset: the name of the dataset it was trained on.
    accuracy_split: the split the accuracy was measured on.

  Returns:
    The metadata written, as `load` returns it.
  """
  path = os.fspath(path)
  metadata = {"dataset": str(dataset), "image_shape": [int(side) for side in image_shape],
              "num_classes": int(num_classes), "feature_dim": int(feature_dim),
              "accuracy": float(accuracy), "accuracy_split": str(accuracy_split)}
  contents = serialization.msgpack_serialize(
      {"params": jax.tree.map(np.asarray, params), "metadata": metadata})
  if os.path.dirname(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
  temporary = f"{path}.tmp"
  with open(temporary, "wb") as file:
    file.write(contents)
  os.replace(temporary, path)
  return _metadata(metadata)


def _metadata(stored: Mapping[str, Any]) -> dict[str, Any]:
  metadata = {field: stored[field] for field in METADATA_FIELDS}
  metadata["image_shape"] = tuple(int(side) for side in metadata["image_shape"])
  for field in ("num_classes", "feature_dim"):
    metadata[field] = int(metadata[field])
  metadata["accuracy"] = float(metadata["accuracy"])
  return metadata


def load(path: str | os.PathLike) -> tuple[Params, dict[str, Any]]:
  """Reads a classifier file written by `save`.

  Args:
    path: the file.

  Returns:
    (params, metadata); the metadata has the fields `METADATA_FIELDS`, image_shape as a tuple.

  Raises:
    ClassifierFileError: the file is missing, damaged, or its parameters are not those of a
      `Classifier` of its metadata (a one-line message naming the file).
  """
  path = os.fspath(path)
  try:
    with open(path, "rb") as file:
      contents = serialization.msgpack_restore(file.read())
    params, metadata = contents["params"], _metadata(contents["metadata"])
    expected = jax.eval_shape(lambda: init(metadata["image_shape"],
                                           num_classes=metadata["num_classes"],
                                           feature_dim=metadata["feature_dim"]))
    shapes = jax.tree.map(lambda leaf: (leaf.shape, leaf.dtype), params)
  except FileNotFoundError:
    raise ClassifierFileError(f"classifier file {path} does not exist") from None
  except Exception as error:  # pylint: disable=broad-except
    reason = str(error).splitlines()[0] if str(error) else ""
    raise ClassifierFileError(f"classifier file {path} is damaged or not a classifier file "
                              f"({type(error).__name__}: {reason})") from None
  if shapes != jax.tree.map(lambda leaf: (leaf.shape, leaf.dtype), expected):
    raise ClassifierFileError(f"classifier file {path}: its parameters do not fit a classifier of "
                              f"its metadata {metadata}")
  return params, metadata


class ClassifierFeatures:
  """The feature function of a loaded classifier: `features = feature_fn(images)`.

  Attributes:
    params: the classifier's parameters.
    metadata: its metadata (see `load`).
    dim: the feature dimension.
    image_shape: the (height, width, channels) of the images it takes.
    batch_size: the most images run through the classifier at once.
  """

  def __init__(self, params: Params, metadata: Mapping[str, Any], batch_size: int = 500):
    self.params = params
    self.metadata = dict(metadata)
    self.dim = self.metadata["feature_dim"]
    self.image_shape = tuple(self.metadata["image_shape"])
    self.batch_size = batch_size

  def __call__(self, images: np.ndarray | jax.Array) -> jax.Array:
    """Features of shape (N, dim) of images of shape (N, *image_shape) in [-1, 1].

    The images go through the classifier `batch_size` at a time.

    Raises:
      ValueError: images of another shape than the classifier was trained on.
    """
    if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
      raise ValueError(f"the classifier takes images of shape (N, {self.image_shape}), got "
                       f"{tuple(images.shape)}")
    parts = [extract_features(self.params, images[start:start + self.batch_size],
                              num_classes=self.metadata["num_classes"], feature_dim=self.dim)
             for start in range(0, images.shape[0], self.batch_size)]
    if not parts:
      return jnp.zeros((0, self.dim), jnp.float32)
    return jnp.concatenate(parts)


def features_from_file(path: str | os.PathLike, *, batch_size: int = 500) -> ClassifierFeatures:
  """The feature function of the classifier saved in `path` (see `ClassifierFeatures`).

  Raises:
    ClassifierFileError: as `load`.
  """
  params, metadata = load(path)
  return ClassifierFeatures(params, metadata, batch_size=batch_size)


def train_for_dataset(data_config: Mapping[str, Any], path: str | os.PathLike, *,
                      steps: int = 2000, batch_size: int = 128, seed: int = 0) -> dict[str, Any]:
  """Trains a classifier on a labelled dataset, measures its accuracy and saves it to `path`.

  It trains on `data_config`'s split (all of it, in one process) and measures the accuracy on
  the 'test' split, or, when the dataset has none, on the training split (the metadata's
  `accuracy_split` says which).

  Args:
    data_config: the `config.data` of an image dataset with labels (see `ganjax.data.images`).
    path: the file to write.
    steps: training steps.
    batch_size: examples per step (and per evaluation batch).
    seed: seed of the initial parameters and of the shuffling.

  Returns:
    The metadata saved (dataset, image_shape, num_classes, feature_dim, accuracy,
    accuracy_split).

  Raises:
    DatasetNotPrepared: the dataset is not in the data directory.
    ValueError: invalid config, or a dataset without labels.
  """
  from ganjax.data import images as images_lib

  data_config = dict(data_config)
  image_shape = images_lib.image_shape(data_config)
  num_classes = images_lib.num_classes(data_config)
  batches = images_lib.make_iterator(data_config, batch_size=batch_size, seed=seed,
                                     with_labels=True, process_index=0, process_count=1)
  params = train(batches, image_shape=image_shape, num_classes=num_classes, steps=steps,
                 seed=seed)
  del batches
  test_config = {**data_config, "split": "test"}
  try:
    images_lib.check_dataset(test_config)
  except ConfigError:  # no test split
    test_config = data_config
  accuracy_split = test_config.get("split") or "train"
  measured = accuracy(params, images_lib.finite_batches(test_config, batch_size=batch_size,
                                                        with_labels=True, process_index=0,
                                                        process_count=1),
                      num_classes=num_classes)
  logging.info("classifier accuracy on %r split %r: %.4f", data_config["name"], accuracy_split,
               measured)
  return save(path, params, image_shape=image_shape, num_classes=num_classes,
              feature_dim=DEFAULT_FEATURE_DIM, accuracy=measured, dataset=data_config["name"],
              accuracy_split=accuracy_split)


def _define_flags() -> None:
  from absl import flags

  from ganjax import cli

  flags.DEFINE_string("dataset", None, "An image dataset with labels: mnist, fashion_mnist, "
                      "cifar10 or folder.")
  flags.DEFINE_string("out", None, "Where to write the classifier.")
  flags.DEFINE_string("split", "train", "The split to train on.")
  flags.DEFINE_integer("steps", 2000, "Training steps.")
  flags.DEFINE_integer("batch_size", 128, "Examples per step.")
  flags.DEFINE_integer("seed", 0, "Seed of the initial parameters and of the shuffling.")
  flags.DEFINE_string("data_dir", None, "The TFDS data directory (default: TFDS's).")
  flags.DEFINE_integer("image_size", None, "Resize the images to this side (the GAN's).")
  flags.DEFINE_string("folder", None, "The image folder, for --dataset=folder.")
  cli.define_compilation_cache_flag()
  flags.mark_flags_as_required(["dataset", "out"])


def main(argv):
  from absl import flags

  from ganjax import cli
  from ganjax import paths

  cli.no_arguments(argv)
  cli.enable_compilation_cache()
  args = flags.FLAGS
  data_config = {"name": args.dataset, "split": args.split,
                 "data_dir": paths.absolute(args.data_dir), "image_size": args.image_size,
                 "folder": paths.absolute(args.folder)}
  try:
    metadata = train_for_dataset(data_config, paths.absolute(args.out), steps=args.steps,
                                 batch_size=args.batch_size, seed=args.seed)
  except (ValueError, OSError) as error:
    sys.exit(f"error: {error}")
  print(f"wrote a classifier of {metadata['dataset']} to {args.out}: accuracy "
        f"{metadata['accuracy']:.4f} on its {metadata['accuracy_split']!r} split")


if __name__ == "__main__":
  from ganjax import cli  # pylint: disable=g-import-not-at-top

  # The flags are defined only when this module is the program, so that importing it defines
  # none that could clash with another program's.
  _define_flags()
  cli.run(main)
