"""Tests of the TFDS image pipeline: shapes, per-process shards, determinism, resume, errors.

Nothing is downloaded. `tfds.testing.mock_data` fakes the TFDS datasets; a small 'mnist' whose
examples are numbered (every pixel of example i is 5 * i) is prepared in a temporary data_dir to
check which examples each process sees and in which order.
"""
import gc
import os
import socket

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import gcs_utils

from ganjax import errors
from ganjax.data import images

NUM_EXAMPLES = 40


class Mnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A stand-in for MNIST with numbered examples, written where `tfds.builder('mnist')` reads."""
  VERSION = tfds.core.Version("3.0.1")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(28, 28, 1)),
        "label": tfds.features.ClassLabel(num_classes=10),
    }))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(NUM_EXAMPLES), "test": self._generate_examples(4)}

  def _generate_examples(self, num):
    for index in range(num):
      yield index, {"image": np.full((28, 28, 1), 5 * index, np.uint8), "label": index % 10}


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  Mnist(data_dir=data_dir).download_and_prepare()
  return data_dir


def _take(iterator, num):
  batches = [next(iterator) for _ in range(num)]
  del iterator
  gc.collect()
  return np.stack(batches)


def _indices(batches):
  """The example numbers in batches of the numbered 'mnist'."""
  return np.rint((batches[..., 0, 0, 0] + 1.0) * 127.5 / 5).astype(int)


def _mnist(data_dir, **kwargs):
  return {"name": "mnist", "data_dir": data_dir, "shuffle_buffer": 16, **kwargs}


def test_image_shape_comes_from_the_config():
  assert images.image_shape({"name": "mnist"}) == (28, 28, 1)
  assert images.image_shape({"name": "fashion_mnist"}) == (28, 28, 1)
  assert images.image_shape({"name": "cifar10", "image_size": None}) == (32, 32, 3)
  assert images.image_shape({"name": "celeb_a"}) == (64, 64, 3)
  assert images.image_shape({"name": "celeb_a", "image_size": 32}) == (32, 32, 3)
  assert images.image_shape({"name": "folder", "image_size": 16, "channels": 1}) == (16, 16, 1)
  with pytest.raises(errors.ConfigError, match="data.image_size must be set"):
    images.image_shape({"name": "folder"})


@pytest.mark.parametrize("config, message", [
    ({"name": "mnist", "image_size": 0}, r"^data.image_size must be a positive integer, got 0$"),
    ({"name": "cifar10", "image_size": "32"}, r"^data.image_size must be a positive integer"),
    ({"name": "folder", "image_size": 8, "channels": 2}, r"^data.channels must be 1 or 3, got 2$"),
    ({"name": "folder", "image_size": 8, "channels": True}, r"^data.channels must be a positive"),
    ({"name": "celeb_a", "crop_size": -108}, r"^data.crop_size must be a positive integer"),
    ({"name": "mnist", "shuffle_buffer": 0}, r"^data.shuffle_buffer must be a positive integer"),
    ({"name": "mnist", "split": 1}, r"^data.split must be a string, got 1$"),
    ({"name": "mnist", "data_dir": 5}, r"^data.data_dir must be a string, got 5$"),
    ({"name": "folder", "image_size": 8, "folder": ["faces"]},
     r"^data.folder must be a string, got \['faces'\]$"),
])
def test_bad_fields_are_config_errors_naming_the_field(config, message):
  with pytest.raises(errors.ConfigError, match=message) as error:
    images.check_dataset(config)
  assert "\n" not in str(error.value)


def test_folder_without_a_folder_is_a_config_error():
  with pytest.raises(errors.ConfigError, match="^data.folder must name a directory"):
    images.check_dataset({"name": "folder", "image_size": 8})


def test_argument_errors_are_not_config_errors(mnist_dir):
  for read in (lambda: images.make_iterator(_mnist(mnist_dir), batch_size=3, process_index=0,
                                            process_count=2),
               lambda: images.finite_batches(_mnist(mnist_dir), batch_size=0, process_index=0,
                                             process_count=1),
               lambda: images.finite_batches(_mnist(mnist_dir), batch_size=4, process_index=2,
                                             process_count=2)):
    with pytest.raises(ValueError) as error:
      read()
    assert not isinstance(error.value, errors.ConfigError)


def test_unknown_name_is_one_line_listing_the_valid_ones():
  with pytest.raises(errors.ConfigError) as error:
    images.make_iterator({"name": "imagenet"}, batch_size=4, process_index=0, process_count=1)
  message = str(error.value)
  assert "\n" not in message and "'imagenet'" in message
  for name in images.VALID_NAMES:
    assert name in message


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3)),
                                         ("celeb_a", (64, 64, 3))])
def test_mock_batches_have_the_layout_and_range(name, shape):
  with tfds.testing.mock_data(num_examples=12):
    images.check_dataset({"name": name})
    batches = _take(images.make_iterator({"name": name, "shuffle_buffer": 8}, batch_size=4,
                                         n_critic=2, process_index=0, process_count=1), 2)
  assert batches.shape == (2, 2, 4, *shape) and batches.dtype == np.float32
  assert batches.min() >= -1.0 and batches.max() <= 1.0
  assert batches.std() > 0.1


def test_processes_get_disjoint_shards_that_cover_the_split(mnist_dir):
  seen = []
  for process_index in range(2):
    # Global batch 8: 4 per process, 20 examples per process, so 5 batches are one epoch.
    batches = _take(images.make_iterator(_mnist(mnist_dir), batch_size=8, seed=1,
                                         process_index=process_index, process_count=2), 5)
    assert batches.shape == (5, 1, 4, 28, 28, 1)
    indices = _indices(batches).ravel()
    assert len(set(indices)) == 20
    seen.append(set(indices))
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(range(NUM_EXAMPLES))


def test_same_seed_same_batches_other_seed_other_order(mnist_dir):
  def first(seed):
    return _indices(_take(images.make_iterator(_mnist(mnist_dir), batch_size=8, seed=seed,
                                               process_index=0, process_count=1), 6))

  np.testing.assert_array_equal(first(3), first(3))
  assert not np.array_equal(first(3), first(4))
  # Each epoch (5 batches of 8) holds every example once, in a new order.
  epochs = _indices(_take(images.make_iterator(_mnist(mnist_dir), batch_size=8, seed=3,
                                               process_index=0, process_count=1), 10))
  assert sorted(epochs[:5].ravel()) == sorted(epochs[5:].ravel()) == list(range(NUM_EXAMPLES))
  assert not np.array_equal(epochs[:5], epochs[5:])


def test_start_batch_resumes_where_a_fresh_iterator_would_be(mnist_dir):
  config = _mnist(mnist_dir)
  fresh = _take(images.make_iterator(config, batch_size=8, n_critic=2, seed=5,
                                     process_index=0, process_count=1), 8)
  resumed = _take(images.make_iterator(config, batch_size=8, n_critic=2, seed=5, start_batch=3,
                                       process_index=0, process_count=1), 5)
  np.testing.assert_array_equal(resumed, fresh[3:])


def test_n_critic_slices_are_consecutive_local_batches(mnist_dir):
  config = _mnist(mnist_dir)
  stacked = _take(images.make_iterator(config, batch_size=4, n_critic=3, seed=2,
                                       process_index=0, process_count=1), 2)
  flat = _take(images.make_iterator(config, batch_size=12, n_critic=1, seed=2,
                                    process_index=0, process_count=1), 2)
  assert stacked.shape == (2, 3, 4, 28, 28, 1)
  np.testing.assert_array_equal(stacked, flat.reshape(stacked.shape))


def test_unknown_split_is_named(mnist_dir):
  with pytest.raises(errors.ConfigError,
                     match="data.split='validation' is not a split of 'mnist'"):
    images.check_dataset(_mnist(mnist_dir, split="validation"))


def test_not_prepared_is_one_line_without_network(tmp_path, monkeypatch):
  # Every way out to the network, recorded and refused: Python's sockets, and TFDS's downloads
  # and Google Cloud Storage look-ups (which TensorFlow's own file system makes, not Python's
  # sockets). Recorded, because the library catches broad exceptions around some TFDS calls.
  attempts = []

  def refuse(what):
    def refused(*args, **kwargs):
      attempts.append((what, args))
      raise OSError(f"network access attempted: {what}")
    return refused

  for owner, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"),
                      (socket, "create_connection"), (socket, "getaddrinfo"),
                      (tfds.download.DownloadManager, "download"),
                      (tfds.download.DownloadManager, "download_and_extract"),
                      (tfds.core.DatasetBuilder, "download_and_prepare"),
                      (gcs_utils, "exists"), (gcs_utils, "download_gcs_folder"),
                      (gcs_utils, "download_gcs_dataset")):
    monkeypatch.setattr(owner, name, refuse(f"{getattr(owner, '__name__', owner)}.{name}"))
  with pytest.raises(OSError):
    socket.create_connection(("localhost", 9))
  assert attempts
  attempts.clear()

  config = {"name": "cifar10", "data_dir": str(tmp_path)}
  with pytest.raises(images.DatasetNotPrepared) as error:
    images.check_dataset(config)
  message = str(error.value)
  assert isinstance(error.value, errors.ConfigError) and isinstance(error.value, ValueError)
  assert "\n" not in message and "'cifar10'" in message and str(tmp_path) in message
  assert "download_and_prepare" in message and "data.data_dir" in message
  with pytest.raises(images.DatasetNotPrepared):
    images.make_iterator(config, batch_size=4, process_index=0, process_count=1)
  assert not attempts
  assert not (tmp_path / "downloads").exists()


def _write_png(path, image):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tf.io.write_file(path, tf.io.encode_png(image))


def test_folder_of_pngs_is_cropped_and_resized(tmp_path):
  # Two classes; the 8x12 images are cropped to their central 8x8 square, whose value is 10*i.
  for index in range(3):
    _write_png(str(tmp_path / "train" / "cats" / f"{index}.png"),
               np.full((8, 8, 3), 10 * index, np.uint8))
    wide = np.full((8, 12, 3), 255, np.uint8)
    wide[:, 2:10] = 10 * (index + 3)
    _write_png(str(tmp_path / "train" / "dogs" / f"{index}.png"), wide)
  config = {"name": "folder", "folder": str(tmp_path), "image_size": 4, "channels": 3,
            "shuffle_buffer": 6}
  images.check_dataset(config)
  assert images.image_shape(config) == (4, 4, 3)
  batches = _take(images.make_iterator(config, batch_size=6, process_index=0, process_count=1), 2)
  assert batches.shape == (2, 1, 6, 4, 4, 3)
  values = np.rint((batches + 1.0) * 127.5)
  assert np.all(values == values[..., :1, :1, :1])  # every image is uniform after the crop
  assert sorted(values[0, 0, :, 0, 0, 0]) == [10.0 * i for i in range(6)]
  shards = [_take(images.make_iterator({**config, "channels": 1}, batch_size=2, process_index=p,
                                       process_count=2), 3) for p in range(2)]
  assert shards[0].shape == (3, 1, 1, 4, 4, 1)
  assert not set(shards[0].ravel()) & set(shards[1].ravel())


def test_folder_without_the_split_or_images_says_the_layout(tmp_path):
  config = {"name": "folder", "folder": str(tmp_path), "image_size": 8}
  with pytest.raises(images.DatasetNotPrepared, match="no split directory 'train'.*<label>"):
    images.check_dataset(config)
  (tmp_path / "train" / "cats").mkdir(parents=True)
  with pytest.raises(images.DatasetNotPrepared, match="no images in 'train'.*<label>"):
    images.check_dataset(config)


def _take_pairs(iterator, num):
  """`num` (images, labels) items of an iterator, stacked into (images, labels)."""
  pairs = [next(iterator) for _ in range(num)]
  del iterator
  gc.collect()
  return np.stack([images for images, _ in pairs]), np.stack([labels for _, labels in pairs])


def _read_directly(name, split="train", **kwargs):
  """(uint8 images, labels) of a split as `tfds.load` reads it, in its file order."""
  examples = list(tfds.as_numpy(tfds.load(name, split=split, shuffle_files=False, **kwargs)))
  return (np.stack([example["image"] for example in examples]),
          np.array([example["label"] for example in examples]))


def _pixels(batches):
  """Images in [-1, 1] back as their 8-bit pixel values."""
  return np.rint((batches + 1.0) * 127.5).astype(np.uint8)


def test_labels_are_those_of_the_images_they_come_with():
  with tfds.testing.mock_data(num_examples=12):
    stored_images, stored_labels = _read_directly("mnist")
    config = {"name": "mnist", "shuffle_buffer": 8}
    batches, labels = _take_pairs(images.make_iterator(
        config, batch_size=4, n_critic=2, seed=1, process_index=0, process_count=1,
        with_labels=True), 3)
    without_labels = _take(images.make_iterator(config, batch_size=4, n_critic=2, seed=1,
                                                process_index=0, process_count=1), 3)
  assert labels.shape == (3, 2, 4) and labels.dtype == np.int32
  np.testing.assert_array_equal(batches, without_labels)
  # Random mock images are all different: each yielded image is one stored example.
  flat = _pixels(batches).reshape(-1, 28 * 28)
  matches = np.all(flat[:, None, :] == stored_images.reshape(1, -1, 28 * 28), axis=-1)
  assert np.all(matches.sum(axis=1) == 1)
  order = matches.argmax(axis=1)
  np.testing.assert_array_equal(labels.ravel(), stored_labels[order])
  assert sorted(order[:12]) == list(range(12)) and list(order[:12]) != list(range(12))


def test_labels_of_a_shard_follow_its_shuffled_examples(mnist_dir):
  # The numbered 'mnist' has label i % 10 for example i.
  batches, labels = _take_pairs(images.make_iterator(
      _mnist(mnist_dir), batch_size=8, seed=4, process_index=1, process_count=2,
      with_labels=True), 6)
  np.testing.assert_array_equal(labels, _indices(batches) % 10)
  shard_images, shard_labels = _read_directly("mnist", split=tfds.even_splits("train", n=2)[1],
                                              data_dir=mnist_dir)
  shard_indices = shard_images[:, 0, 0, 0] // 5
  np.testing.assert_array_equal(shard_labels, shard_indices % 10)
  assert set(_indices(batches).ravel()) == set(shard_indices)


def test_num_classes_and_datasets_without_labels():
  with tfds.testing.mock_data(num_examples=4):
    assert images.num_classes({"name": "mnist"}) == 10
    assert images.num_classes({"name": "cifar10"}) == 10
    config = {"name": "celeb_a"}
    for read in (lambda: images.num_classes(config),
                 lambda: images.make_iterator(config, batch_size=4, with_labels=True,
                                              process_index=0, process_count=1),
                 lambda: images.finite_batches(config, batch_size=4, with_labels=True,
                                               process_index=0, process_count=1)):
      with pytest.raises(errors.ConfigError,
                         match="dataset 'celeb_a' has no class labels") as error:
        read()
      assert "\n" not in str(error.value)


def test_finite_batches_are_one_pass_in_file_order():
  with tfds.testing.mock_data(num_examples=12):
    stored_images, stored_labels = _read_directly("mnist")
    config = {"name": "mnist"}
    first_ten = list(images.finite_batches(config, batch_size=4, num_examples=10,
                                           with_labels=True, process_index=0, process_count=1))
    whole = list(images.finite_batches(config, batch_size=5, process_index=0, process_count=1))
  assert [len(batch) for batch, _ in first_ten] == [4, 4, 2]
  batches = np.concatenate([batch for batch, _ in first_ten])
  assert batches.dtype == np.float32 and batches.shape == (10, 28, 28, 1)
  np.testing.assert_array_equal(batches, stored_images[:10] / np.float32(127.5) - 1)
  labels = np.concatenate([labels for _, labels in first_ten])
  assert labels.dtype == np.int32
  np.testing.assert_array_equal(labels, stored_labels[:10])
  assert [len(batch) for batch in whole] == [5, 5, 2]
  np.testing.assert_array_equal(_pixels(np.concatenate(whole)), stored_images)


def test_finite_batches_of_a_shard_and_too_few_examples(mnist_dir):
  config = _mnist(mnist_dir)
  stored_images, _ = _read_directly("mnist", data_dir=mnist_dir)
  shard = list(images.finite_batches(config, batch_size=8, process_index=1, process_count=2))
  assert [len(batch) for batch in shard] == [8, 8, 4]
  np.testing.assert_array_equal(_pixels(np.concatenate(shard)), stored_images[20:])
  # The shortage shows only once the shard runs out, after the batches it has.
  batches = images.finite_batches(config, batch_size=8, num_examples=21, process_index=1,
                                  process_count=2)
  assert len(next(batches)) == 8
  with pytest.raises(images.TooFewExamples,
                     match="has 20 examples, fewer than the 21 asked for") as error:
    list(batches)
  assert "\n" not in str(error.value) and "shard 1 of 2" in str(error.value)
  assert isinstance(error.value, errors.ConfigError)
  exact = list(images.finite_batches(config, batch_size=8, num_examples=20, process_index=1,
                                     process_count=2))
  assert sum(len(batch) for batch in exact) == 20


def test_folder_labels_are_the_directories(tmp_path):
  # cats (label 0) have values 0, 10, 20 and dogs (label 1) 30, 40, 50.
  for index in range(3):
    for label, name in enumerate(("cats", "dogs")):
      _write_png(str(tmp_path / "train" / name / f"{index}.png"),
                 np.full((4, 4, 1), 10 * (index + 3 * label), np.uint8))
  config = {"name": "folder", "folder": str(tmp_path), "image_size": 4, "channels": 1,
            "shuffle_buffer": 6}
  assert images.num_classes(config) == 2
  batches, labels = _take_pairs(images.make_iterator(config, batch_size=6, with_labels=True,
                                                     process_index=0, process_count=1), 2)
  np.testing.assert_array_equal(labels, (_pixels(batches)[..., 0, 0, 0] >= 30).astype(int))
  (pairs,) = list(images.finite_batches(config, batch_size=6, with_labels=True,
                                        process_index=0, process_count=1))
  np.testing.assert_array_equal(pairs[1], (_pixels(pairs[0])[:, 0, 0, 0] >= 30).astype(int))
