"""Image datasets from TensorFlow Datasets, fed from the host as numpy batches in [-1, 1].

Importing this module hides every GPU and TPU from TensorFlow, so that the input pipeline never
takes accelerator memory from JAX. Datasets are never downloaded: a dataset that is not prepared
in `data.data_dir` stops with `DatasetNotPrepared`, which says how to prepare it.

Datasets (`config.data.name`):
  mnist, fashion_mnist: 28x28x1.
  cifar10: 32x32x3.
  celeb_a: a centred 108x108 crop of the aligned 178x218 faces, resized to `image_size`
    (default 64) with an antialiasing filter. The crop is the one of the DCGAN-tensorflow code
    (carpedm20/DCGAN-tensorflow, `--input_height=108 --crop`); `data.crop_size` changes it
    (tensorpack's DCGAN-CelebA example uses 140).
  folder: the user's own images, read with `tfds.folder_dataset.ImageFolder` from
    `data.folder`, laid out as `<folder>/<split>/<label>/<image>.{png,jpg,jpeg}` (for example
    `faces/train/any/0001.jpg`; at least one label directory is needed; the directory names
    are the labels, used only when labels are asked for). Each image is cropped to its largest
    centred square and resized to `image_size`.
`image_size`, when given for mnist, fashion_mnist or cifar10, resizes those too.

Config fields read (`config.data`): name, split (default 'train'; any TFDS split expression for
the TFDS datasets, a split directory name for 'folder'), data_dir (None: the TFDS default),
image_size, crop_size (celeb_a), folder and channels (folder: default 3), shuffle_buffer
(default 10_000, per shard), shards (default 0: one per process).

Order and resumption. The examples are divided into `data.shards` disjoint shards (a TFDS
split's `tfds.even_splits`; every shards-th file of a folder), each read in a fixed order,
shuffled through its own buffer seeded by `seed` and the shard's index (a new order each epoch,
the same orders every run) and repeated; a training batch holds an equal, consecutive block of
each shard's stream, shard 0's first. Process p of P reads shards p * shards / P to
(p + 1) * shards / P - 1 and yields their blocks: the consecutive part of the global batch that
its devices take. The global batches therefore depend on the config and the seed only, not on
the number of processes or devices, whenever `data.shards` is set to a multiple of every process
count the run will see (0, the default, means one shard per process: the same batches for the
same number of processes). `make_iterator(..., start_batch=k)` yields exactly what a fresh iterator
yields after its first k batches, which is how a resumed run sees the data an uninterrupted run
would have seen. `finite_batches` reads the shard once, in its fixed order, without shuffling:
for statistics of the real data.

Labels. `make_iterator(..., with_labels=True)` and `finite_batches(..., with_labels=True)` also
yield the examples' class labels (the TFDS 'label' feature: mnist, fashion_mnist, cifar10 and
folder; celeb_a has none), with the same images in the same order as without labels;
`num_classes` gives their number and `class_frequencies` their frequencies in the split.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import Any, Iterator, Mapping

import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

for _device_type in ("GPU", "TPU"):
  try:
    tf.config.set_visible_devices([], _device_type)
  except RuntimeError as error:
    logging.warning("TensorFlow was initialised before ganjax.data.images was imported and may "
                    "use %s memory: %s", _device_type, error)

from ganjax.data import DEFAULT_SHUFFLE_BUFFER
from ganjax.errors import ConfigError

FOLDER = "folder"
DEFAULT_CELEB_A_CROP = 108
DEFAULT_FOLDER_CHANNELS = 3


@dataclasses.dataclass(frozen=True)
class _Source:
  """A TFDS image dataset.

  Attributes:
    shape: (height, width, channels) of a stored image.
    image_size: default side of a yielded (square) image.
    center_crop: whether a centred square of `crop_size` (default DEFAULT_CELEB_A_CROP) is cut
      out before resizing.
    cache: whether the decoded shard is small enough to keep in host memory.
  """
  shape: tuple[int, int, int]
  image_size: int
  center_crop: bool = False
  cache: bool = False


DATASETS: dict[str, _Source] = {
    "mnist": _Source((28, 28, 1), 28, cache=True),
    "fashion_mnist": _Source((28, 28, 1), 28, cache=True),
    "cifar10": _Source((32, 32, 3), 32, cache=True),
    "celeb_a": _Source((218, 178, 3), 64, center_crop=True),
}
VALID_NAMES: tuple[str, ...] = (*sorted(DATASETS), FOLDER)


class DatasetNotPrepared(ConfigError):
  """A dataset that is not in the data directory (ganjax never downloads one)."""


class TooFewExamples(ConfigError):
  """A shard that holds fewer examples than `finite_batches` was asked for."""


def _get(data_config: Mapping[str, Any], field: str, default: Any = None) -> Any:
  value = data_config.get(field, default)
  return default if value is None else value


def _name(data_config: Mapping[str, Any]) -> str:
  name = data_config.get("name")
  if name not in DATASETS and name != FOLDER:
    raise ConfigError(f"unknown image dataset data.name={name!r}; valid names: "
                      f"{', '.join(VALID_NAMES)}")
  return name


def _positive_int(data_config: Mapping[str, Any], field: str, default: int | None) -> int:
  value = _get(data_config, field, default)
  if value is None:
    raise ConfigError(f"data.{field} must be set for data.name={data_config.get('name')!r}")
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ConfigError(f"data.{field} must be a positive integer, got {value!r}")
  return int(value)


def _check_fields(data_config: Mapping[str, Any]) -> None:
  """Checks the fields that `image_shape` does not read: split, data_dir, folder (strings or
  unset), crop_size and shuffle_buffer (positive integers)."""
  for field in ("split", "data_dir", "folder"):
    value = data_config.get(field)
    if value is not None and not isinstance(value, (str, os.PathLike)):
      raise ConfigError(f"data.{field} must be a string, got {value!r}")
  _positive_int(data_config, "crop_size", DEFAULT_CELEB_A_CROP)
  _positive_int(data_config, "shuffle_buffer", DEFAULT_SHUFFLE_BUFFER)


def image_shape(data_config: Mapping[str, Any]) -> tuple[int, int, int]:
  """The (height, width, channels) of the images `make_iterator` yields, from the config alone.

  Args:
    data_config: the experiment's `config.data`.

  Returns:
    (image_size, image_size, channels).

  Raises:
    ConfigError: for an unknown name or an invalid field.
  """
  name = _name(data_config)
  _check_fields(data_config)
  if name == FOLDER:
    channels = _positive_int(data_config, "channels", DEFAULT_FOLDER_CHANNELS)
    if channels not in (1, 3):
      raise ConfigError(f"data.channels must be 1 or 3, got {channels}")
    size = _positive_int(data_config, "image_size", None)
    return (size, size, channels)
  source = DATASETS[name]
  size = _positive_int(data_config, "image_size", source.image_size)
  return (size, size, source.shape[-1])


def _tfds_builder(data_config: Mapping[str, Any]) -> tfds.core.DatasetBuilder:
  """The builder of a TFDS dataset, checked to be prepared (nothing is downloaded)."""
  name = data_config["name"]
  data_dir = data_config.get("data_dir") or None
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared() and not _readable(builder, data_config):
    location = builder.data_dir_root
    where = f", data_dir={data_dir!r}" if data_dir else ""
    raise DatasetNotPrepared(
        f"dataset {name!r} is not prepared in {location} and ganjax does not download it; "
        f"prepare it on a machine with network access (python -c \"import tensorflow_datasets "
        f"as tfds; tfds.builder({name!r}{where}).download_and_prepare()\") and copy "
        f"{os.path.join(location, name)} here, or set --config.data.data_dir to a directory "
        f"that holds it")
  if builder.is_prepared():
    split = _get(data_config, "split", "train")
    try:
      builder.info.splits[split]
    except (KeyError, ValueError, AssertionError):
      raise ConfigError(f"data.split={split!r} is not a split of {name!r}; its splits: "
                       f"{', '.join(sorted(builder.info.splits))}") from None
  return builder


def _readable(builder: tfds.core.DatasetBuilder, data_config: Mapping[str, Any]) -> bool:
  """Whether `as_dataset` works although `is_prepared` says no.

  `as_dataset` only checks that the data directory exists, which fails at once for a dataset
  that is not there; `tfds.testing.mock_data` replaces it (but not `is_prepared`) with fake data.
  """
  try:
    builder.as_dataset(split=_get(data_config, "split", "train"))
  except Exception:  # pylint: disable=broad-except
    return False
  return True


def _folder_builder(data_config: Mapping[str, Any]) -> tfds.core.DatasetBuilder:
  folder = data_config.get("folder")
  split = _get(data_config, "split", "train")
  layout = "<folder>/<split>/<label>/<image>.png|jpg"
  if not folder:
    raise ConfigError(f"data.folder must name a directory laid out as {layout} when "
                      f"data.name='folder'")
  folder = os.path.expanduser(folder)
  if not os.path.isdir(os.path.join(folder, split)):
    raise DatasetNotPrepared(f"data.folder={folder!r} has no split directory {split!r}; "
                             f"expected the layout {layout}")
  _, _, channels = image_shape(data_config)
  builder = tfds.folder_dataset.ImageFolder(folder, shape=(None, None, channels))
  splits = builder.info.splits
  if split not in splits or not splits[split].num_examples:
    raise DatasetNotPrepared(f"data.folder={folder!r} has no images in {split!r}; expected the "
                             f"layout {layout}")
  return builder


def check_dataset(data_config: Mapping[str, Any]) -> None:
  """Checks, quickly and without reading any image, that the dataset can be read.

  Args:
    data_config: the experiment's `config.data`.

  Raises:
    DatasetNotPrepared: the TFDS dataset is not prepared in the data directory, or the folder
      lacks the split or its images.
    ConfigError: unknown name, invalid field, or unknown split.
  """
  image_shape(data_config)
  _builder(data_config)


def _builder(data_config: Mapping[str, Any]) -> tfds.core.DatasetBuilder:
  """The dataset's builder, checked to be readable (a TFDS builder or an ImageFolder)."""
  if _name(data_config) == FOLDER:
    return _folder_builder(data_config)
  return _tfds_builder(data_config)


def _label_feature(name: str, builder: tfds.core.DatasetBuilder) -> tfds.features.ClassLabel:
  """The dataset's 'label' feature, or a one-line ConfigError for a dataset without labels."""
  features = builder.info.features
  feature = features["label"] if "label" in features else None
  if not isinstance(feature, tfds.features.ClassLabel):
    raise ConfigError(f"dataset {name!r} has no class labels (no 'label' feature; its features: "
                     f"{', '.join(sorted(features))})")
  return feature


def num_classes(data_config: Mapping[str, Any]) -> int:
  """The number of classes of the dataset's labels (its TFDS 'label' feature).

  Args:
    data_config: the experiment's `config.data`.

  Returns:
    The number of classes; labels are in [0, num_classes).

  Raises:
    DatasetNotPrepared: a folder dataset that is not there (a TFDS dataset's classes are known
      before it is prepared).
    ConfigError: invalid config, or a dataset without labels (celeb_a).
  """
  image_shape(data_config)
  name = _name(data_config)
  # A TFDS dataset's metadata ships with its code: its classes are known before it is prepared.
  builder = (_builder(data_config) if name == FOLDER else
             tfds.builder(name, data_dir=data_config.get("data_dir") or None))
  return int(_label_feature(name, builder).num_classes)


def num_examples(data_config: Mapping[str, Any]) -> int:
  """The number of examples in the dataset's split (all processes' shares together).

  Raises:
    DatasetNotPrepared: the dataset is not in the data directory.
    ConfigError: invalid config or unknown split.
  """
  image_shape(data_config)
  builder = _builder(data_config)
  return int(builder.info.splits[_get(data_config, "split", "train")].num_examples)


def class_frequencies(data_config: Mapping[str, Any]) -> np.ndarray:
  """The fraction of each class among the examples of the split (all processes' shares), from
  its 'label' feature: what fake labels are drawn with when they follow the data
  (`conditional.fake_labels='data'`). Reads the labels once, without decoding the images.

  Raises:
    DatasetNotPrepared: the dataset is not in the data directory.
    ConfigError: invalid config, or a dataset without labels.
  """
  num = num_classes(data_config)
  builder = _builder(data_config)
  ds = builder.as_dataset(split=_get(data_config, "split", "train"), shuffle_files=False,
                          decoders={"image": tfds.decode.SkipDecoding()})
  counts = np.zeros(num, np.int64)
  for labels in _numpy_iterator(ds.map(lambda example: example["label"]).batch(4096)):
    counts += np.bincount(labels, minlength=num)
  if not counts.sum():
    raise ConfigError(f"dataset {_name(data_config)!r} split "
                      f"{_get(data_config, 'split', 'train')!r} holds no examples")
  return counts / counts.sum()


def _square_crop(image: tf.Tensor, side: tf.Tensor | int) -> tf.Tensor:
  return tf.image.resize_with_crop_or_pad(image, side, side)


def _examples(data_config: Mapping[str, Any], process_index: int, process_count: int, *,
              with_labels: bool = False, cache: bool = True) -> tf.data.Dataset:
  """This process's share of the dataset's images, uint8 of `image_shape`, in a fixed order.

  With labels, its elements are (image, int32 label) pairs. `cache=False` never caches the
  decoded shard (for a single pass); otherwise it is cached when small enough.
  """
  name = _name(data_config)
  height, width, channels = image_shape(data_config)
  split = _get(data_config, "split", "train")
  builder = _builder(data_config)
  if with_labels:
    _label_feature(name, builder)
  if name == FOLDER:
    # ImageFolder reads only whole splits, so the per-process share is a shard of its (fixed)
    # file order instead of a TFDS sub-split.
    ds = builder.as_dataset(split=split, shuffle_files=False)
    ds = ds.shard(process_count, process_index)
    center_crop, source_cache = True, False
  else:
    source = DATASETS[name]
    ds = builder.as_dataset(split=tfds.even_splits(split, n=process_count)[process_index],
                            shuffle_files=False,
                            read_config=tfds.ReadConfig(try_autocache=False))
    center_crop, source_cache = source.center_crop, source.cache
  crop_size = _positive_int(data_config, "crop_size", DEFAULT_CELEB_A_CROP)

  def preprocess(example):
    image = example["image"]
    if name == FOLDER:
      shape = tf.shape(image)
      image = _square_crop(image, tf.minimum(shape[0], shape[1]))
    elif center_crop:
      image = _square_crop(image, crop_size)
    if name == FOLDER or center_crop or tuple(image.shape[:2]) != (height, width):
      image = tf.image.resize(image, (height, width), method="bilinear", antialias=True)
      image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    image = tf.ensure_shape(image, (height, width, channels))
    return (image, tf.cast(example["label"], tf.int32)) if with_labels else image

  ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.cache() if cache and source_cache else ds


def _to_unit_range(images: tf.Tensor, labels: tf.Tensor | None = None, *,
                   shape: tuple[int, ...] | None = None) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
  """A batch of 8-bit pixels x as float32 x / 127.5 - 1, in [-1, 1].

  Args:
    images: uint8 images.
    labels: their labels, or None.
    shape: the shape of the images returned (their batch axis reshaped), or None to keep it; the
      labels are reshaped to its batch axes (all but the last three).

  Returns:
    The images, or the pair (images, labels) when labels are given.
  """
  images = tf.cast(images, tf.float32) / 127.5 - 1.0
  if shape is not None:
    images = tf.reshape(images, shape)
    labels = None if labels is None else tf.reshape(labels, shape[:-3])
  return images if labels is None else (images, labels)


def _numpy_iterator(ds: tf.data.Dataset) -> Iterator[Any]:
  """The dataset prefetched, in its deterministic order, as numpy arrays."""
  options = tf.data.Options()
  options.deterministic = True
  return ds.prefetch(tf.data.AUTOTUNE).with_options(options).as_numpy_iterator()


def _process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  """(process_index, process_count), defaulting to JAX's, checked."""
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} is not in [0, {process_count})")
  return process_index, process_count


def num_shards(data_config: Mapping[str, Any], process_count: int,
               batch_size: int | None = None) -> int:
  """The number of data shards (`data.shards`; 0: `process_count`), checked to be a multiple of
  `process_count` and, when given, to divide the global `batch_size`."""
  shards = data_config.get("shards", 0) or 0
  if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 0:
    raise ConfigError(f"data.shards must be a non-negative integer (0: one per process), got "
                      f"{shards!r}")
  shards = int(shards) or process_count
  if shards % process_count:
    raise ConfigError(f"data.shards={shards} is not a multiple of the {process_count} processes")
  if batch_size is not None and batch_size % shards:
    raise ConfigError(f"train.batch_size {batch_size} is not a multiple of the {shards} data "
                      "shards (data.shards)")
  return shards


def _shard_seed(seed: int, shard: int) -> int:
  """The shuffling seed of shard `shard`: `seed` for shard 0 (the one shard of a run on one
  process by default), a different one for each other shard."""
  return seed if shard == 0 else (seed * 1_000_003 + shard * 7_919) % 2**31


def _blocks(*batches, n_critic: int):
  """One batch of n_critic slices from the batches of several shards: each slice holds an equal
  block of every shard's examples, in shard order."""
  def join(parts):
    parts = [tf.reshape(part, (n_critic, -1, *part.shape[1:])) for part in parts]
    return tf.reshape(tf.concat(parts, axis=1), (-1, *parts[0].shape[2:]))
  if isinstance(batches[0], tuple):
    return tuple(join([batch[i] for batch in batches]) for i in range(len(batches[0])))
  return join(batches)


def make_iterator(data_config: Mapping[str, Any], *, batch_size: int, n_critic: int = 1,
                  seed: int = 0, start_batch: int = 0, process_index: int | None = None,
                  process_count: int | None = None, with_labels: bool = False) -> Iterator[Any]:
  """Endless batches of real images for `ganjax.train.train_step`, from this process's shard.

  Each item holds the real data of one training step: `n_critic` slices of the local batch, one
  per discriminator update. Every example of the shard is seen once per epoch; batches continue
  across epoch boundaries.

  Args:
    data_config: the experiment's `config.data` (see the module docstring for its fields).
    batch_size: the global batch size, divided evenly between the processes.
    n_critic: discriminator updates per training step.
    seed: seed of the shuffling; the same seed gives the same batches.
    start_batch: number of batches to skip, to resume a run after `start_batch` steps. Skipping
      reads, decodes and shuffles the skipped batches (`tf.data.Dataset.skip` on the batched
      dataset), so it costs about as much input work as the steps skipped took, without any
      accelerator work: seconds for CIFAR-10 in memory, longer for CelebA.
    process_index, process_count: this process and the number of processes (default
      `jax.process_index()`, `jax.process_count()`). The process reads its part of the
      `data.shards` shards (module docstring); a shard is `tfds.even_splits(split,
      n=shards)[index]` (for 'folder', every shards-th file from index).
    with_labels: also yield the images' class labels.

  Returns:
    An iterator of float32 arrays of shape (n_critic, batch_size // process_count, *image_shape)
    with values in [-1, 1] (x / 127.5 - 1 for 8-bit pixels x). With labels, of pairs (images,
    labels): the same images in the same order, and int32 labels of shape
    (n_critic, batch_size // process_count).

  Raises:
    DatasetNotPrepared: the dataset is not in the data directory.
    ConfigError: invalid config, or labels asked of a dataset without them.
    ValueError: invalid arguments.
  """
  process_index, process_count = _process(process_index, process_count)
  if batch_size < 1 or batch_size % process_count:
    raise ValueError(f"batch size {batch_size} is not a positive multiple of {process_count} "
                     f"processes")
  if n_critic < 1 or start_batch < 0:
    raise ValueError(f"n_critic must be >= 1 and start_batch >= 0, got {n_critic}, {start_batch}")
  shuffle_buffer = _positive_int(data_config, "shuffle_buffer", DEFAULT_SHUFFLE_BUFFER)
  shards = num_shards(data_config, process_count, batch_size)
  local_batch = batch_size // process_count
  shape = (n_critic, local_batch, *image_shape(data_config))

  per_process = shards // process_count
  streams = []
  for shard in range(process_index * per_process, (process_index + 1) * per_process):
    ds = _examples(data_config, shard, shards, with_labels=with_labels)
    ds = ds.shuffle(shuffle_buffer, seed=_shard_seed(seed, shard),
                    reshuffle_each_iteration=True).repeat()
    streams.append(ds.batch(n_critic * (batch_size // shards), drop_remainder=True))
  ds = streams[0] if per_process == 1 else tf.data.Dataset.zip(tuple(streams)).map(
      functools.partial(_blocks, n_critic=n_critic), num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True)
  if start_batch:
    ds = ds.skip(start_batch)
  ds = ds.map(functools.partial(_to_unit_range, shape=shape),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return _numpy_iterator(ds)


def finite_batches(data_config: Mapping[str, Any], *, batch_size: int,
                   num_examples: int | None = None, with_labels: bool = False,
                   process_index: int | None = None, process_count: int | None = None
                   ) -> Iterator[Any]:
  """One pass over this process's shard, in its fixed order: for statistics of the real data.

  Nothing is shuffled or repeated; the shard is the one `make_iterator` reads, in the order it
  is stored (before `make_iterator` shuffles it).

  Args:
    data_config: the experiment's `config.data` (see the module docstring for its fields).
    batch_size: the number of examples in each batch this process reads (the last batch may
      hold fewer).
    num_examples: stop after this many examples of the shard; None reads the whole shard.
    with_labels: also yield the images' class labels.
    process_index, process_count: this process and the number of processes (default
      `jax.process_index()`, `jax.process_count()`); the shard is as in `make_iterator`.

  Returns:
    An iterator of float32 arrays of shape (b, *image_shape), b <= batch_size, with values in
    [-1, 1] (as `make_iterator`'s); with labels, of pairs (images, int32 labels of shape (b,)).
    When the shard holds fewer than `num_examples` examples, the iterator raises TooFewExamples
    once it runs out.

  Raises:
    DatasetNotPrepared: the dataset is not in the data directory.
    ConfigError: invalid config, or labels asked of a dataset without them.
    ValueError: invalid arguments.
  """
  process_index, process_count = _process(process_index, process_count)
  if batch_size < 1:
    raise ValueError(f"batch size must be a positive integer, got {batch_size}")
  if num_examples is not None and num_examples < 1:
    raise ValueError(f"num_examples must be a positive integer or None, got {num_examples}")
  ds = _examples(data_config, process_index, process_count, with_labels=with_labels,
                 cache=False)
  if num_examples is not None:
    ds = ds.take(num_examples)
  ds = ds.batch(batch_size).map(_to_unit_range, num_parallel_calls=tf.data.AUTOTUNE,
                                deterministic=True)
  batches = _numpy_iterator(ds)
  if num_examples is None:
    return batches
  shard = (f"{data_config.get('name')!r} split {_get(data_config, 'split', 'train')!r} "
           f"(shard {process_index} of {process_count})")
  return _counted(batches, num_examples, shard)


def _counted(batches: Iterator[Any], num_examples: int, shard: str) -> Iterator[Any]:
  """`batches`, raising TooFewExamples at their end if they held fewer than `num_examples`."""
  seen = 0
  for batch in batches:
    seen += len(batch[0] if isinstance(batch, tuple) else batch)
    yield batch
  if seen < num_examples:
    raise TooFewExamples(f"{shard} has {seen} examples, fewer than the {num_examples} asked for")
