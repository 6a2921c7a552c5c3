"""Tests of the domain classifier: it learns, its features are its penultimate layer, its file
round-trips and fails in one line, and it trains end to end on a (mock) TFDS dataset."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from ganjax import classifier

SHAPE = (16, 16, 1)
NUM_CLASSES = 4
FEATURE_DIM = 32


def _quadrant_images(num, seed):
  """Balanced images of 4 classes: noise, plus a bright 4x4 square in the label's quadrant."""
  rng = np.random.default_rng(seed)
  labels = rng.permutation(np.arange(num) % NUM_CLASSES)
  squares = np.zeros((NUM_CLASSES, *SHAPE))
  for label in range(NUM_CLASSES):
    row, column = 8 * (label // 2) + 2, 8 * (label % 2) + 2
    squares[label, row:row + 4, column:column + 4] = 1.5
  images = np.clip(rng.normal(-0.5, 0.3, (num, *SHAPE)) + squares[labels], -1, 1)
  return images.astype(np.float32), labels.astype(np.int32)


def _training_batches(batch_size=32):
  for seed in range(1, 1_000_000):
    yield _quadrant_images(batch_size, seed)


@pytest.fixture(scope="module")
def evaluation():
  images, labels = _quadrant_images(512, seed=0)
  return [(images[start:start + 128], labels[start:start + 128]) for start in range(0, 512, 128)]


@pytest.fixture(scope="module")
def trained():
  return classifier.train(_training_batches(), image_shape=SHAPE, num_classes=NUM_CLASSES,
                          steps=150, feature_dim=FEATURE_DIM)


def test_training_separates_the_classes_an_untrained_one_does_not(trained, evaluation):
  kwargs = {"num_classes": NUM_CLASSES, "feature_dim": FEATURE_DIM}
  untrained = classifier.init(SHAPE, seed=0, **kwargs)
  assert classifier.accuracy(trained, evaluation, **kwargs) >= 0.95
  assert classifier.accuracy(untrained, evaluation, **kwargs) <= 0.4


def test_batches_with_a_leading_axis_and_too_few_batches():
  images, labels = _quadrant_images(32, seed=3)
  params = classifier.train(iter([(images[None], labels[None])] * 2), image_shape=SHAPE,
                            num_classes=NUM_CLASSES, steps=2, feature_dim=FEATURE_DIM)
  assert jax.tree.map(np.shape, params) == jax.tree.map(
      np.shape, classifier.init(SHAPE, num_classes=NUM_CLASSES, feature_dim=FEATURE_DIM))
  with pytest.raises(ValueError, match="ran out after 2 of 3 steps"):
    classifier.train(iter([(images, labels)] * 2), image_shape=SHAPE, num_classes=NUM_CLASSES,
                     steps=3, feature_dim=FEATURE_DIM)


def _features_by_hand(params, images):
  """The ReLU activations before the logits, from the parameter arrays with lax and numpy."""
  x = jnp.asarray(images)
  for name, stride in (("conv_0", 1), ("conv_1", 2), ("conv_2", 2)):
    x = jax.lax.conv_general_dilated(x, params[name]["kernel"], (stride, stride), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)
    x = np.maximum(np.asarray(x) + params[name]["bias"], 0.0)
  pooled = x.mean(axis=(1, 2))
  return np.maximum(pooled @ np.asarray(params["features"]["kernel"])
                    + params["features"]["bias"], 0.0)


def test_features_are_the_penultimate_activations(trained, evaluation):
  images = evaluation[0][0][:20]
  features = classifier.extract_features(trained, images, num_classes=NUM_CLASSES,
                                         feature_dim=FEATURE_DIM)
  assert features.shape == (20, FEATURE_DIM) and features.dtype == jnp.float32
  expected = _features_by_hand(trained, images)
  assert np.abs(expected).max() > 0.1
  np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
  logits = classifier.Classifier(NUM_CLASSES, FEATURE_DIM).apply({"params": trained}, images)
  np.testing.assert_allclose(logits, expected @ trained["logits"]["kernel"]
                             + trained["logits"]["bias"], rtol=1e-4, atol=1e-4)


def test_save_load_round_trip_gives_the_same_features(trained, evaluation, tmp_path):
  path = tmp_path / "classifiers" / "quadrants.msgpack"
  saved = classifier.save(path, trained, image_shape=SHAPE, num_classes=NUM_CLASSES,
                          feature_dim=FEATURE_DIM, accuracy=0.99, dataset="quadrants")
  params, metadata = classifier.load(path)
  assert metadata == saved == {"dataset": "quadrants", "image_shape": SHAPE,
                               "num_classes": NUM_CLASSES, "feature_dim": FEATURE_DIM,
                               "accuracy": 0.99, "accuracy_split": "test"}
  jax.tree.map(np.testing.assert_array_equal, params, jax.tree.map(np.asarray, trained))
  images = np.concatenate([batch for batch, _ in evaluation])[:300]
  feature_fn = classifier.features_from_file(str(path), batch_size=128)
  assert feature_fn.dim == FEATURE_DIM
  features = np.asarray(feature_fn(images))
  extract = functools.partial(classifier.extract_features, trained, num_classes=NUM_CLASSES,
                              feature_dim=FEATURE_DIM)
  # Batches of 128, 128 and 44 from the trained parameters: the programs the loaded ones ran.
  np.testing.assert_array_equal(
      features, np.concatenate([extract(images[start:start + 128]) for start in (0, 128, 256)]))
  # One batch of 300 is another program, whose convolutions XLA's CPU kernels may sum in another
  # order: on an AVX-512 CPU 7.8% of the features (of magnitude up to 20) differed, by up to
  # 7.6e-6 (4 float32 ulps at 20, 4e-7 of the largest), each way within 7e-6 of a float64
  # computation. Other parameters or images would change features by their own magnitude.
  one_batch = np.asarray(extract(images))
  np.testing.assert_allclose(features, one_batch, rtol=0, atol=1e-5 * np.abs(one_batch).max())
  with pytest.raises(ValueError, match=r"images of shape \(N, \(16, 16, 1\)\)"):
    feature_fn(np.zeros((2, 28, 28, 1), np.float32))


def test_missing_damaged_or_mismatched_file_is_one_line_naming_it(trained, tmp_path):
  path = tmp_path / "classifier.msgpack"
  classifier.save(path, trained, image_shape=SHAPE, num_classes=NUM_CLASSES,
                  feature_dim=FEATURE_DIM, accuracy=1.0, dataset="quadrants")
  contents = path.read_bytes()
  truncated, garbage, mismatched = (tmp_path / name for name in ("truncated", "garbage",
                                                                 "mismatched"))
  truncated.write_bytes(contents[:len(contents) // 2])
  garbage.write_bytes(b"not a classifier")
  classifier.save(mismatched, trained, image_shape=SHAPE, num_classes=NUM_CLASSES,
                  feature_dim=2 * FEATURE_DIM, accuracy=1.0, dataset="quadrants")
  for bad, reason in ((tmp_path / "missing", "does not exist"), (truncated, "damaged"),
                      (garbage, "damaged"), (mismatched, "do not fit")):
    with pytest.raises(classifier.ClassifierFileError, match=reason) as error:
      classifier.features_from_file(bad)
    message = str(error.value)
    assert isinstance(error.value, ValueError)
    assert "\n" not in message and str(bad) in message


def test_train_for_dataset_end_to_end_on_mock_mnist(tmp_path):
  path = tmp_path / "mnist.msgpack"
  with tfds.testing.mock_data(num_examples=16):
    metadata = classifier.train_for_dataset({"name": "mnist"}, path, steps=3, batch_size=8)
  assert metadata["dataset"] == "mnist" and metadata["num_classes"] == 10
  assert metadata["image_shape"] == (28, 28, 1) and metadata["accuracy_split"] == "test"
  assert 0.0 <= metadata["accuracy"] <= 1.0
  assert metadata["feature_dim"] == classifier.DEFAULT_FEATURE_DIM
  feature_fn = classifier.features_from_file(path)
  assert feature_fn.metadata == metadata
  features = feature_fn(np.zeros((3, 28, 28, 1), np.float32))
  assert features.shape == (3, classifier.DEFAULT_FEATURE_DIM)
  assert np.all(np.isfinite(features))


def test_without_a_test_split_the_accuracy_is_on_the_training_split(tmp_path):
  # Ten classes of 28x28 grey images: the shapes of the mock MNIST run, so nothing recompiles.
  for label in range(10):
    directory = tmp_path / "images" / "train" / f"class_{label}"
    directory.mkdir(parents=True)
    (directory / "0.png").write_bytes(
        tf.io.encode_png(np.full((28, 28, 1), 20 * label, np.uint8)).numpy())
  config = {"name": "folder", "folder": str(tmp_path / "images"), "image_size": 28,
            "channels": 1}
  metadata = classifier.train_for_dataset(config, tmp_path / "folder.msgpack", steps=2,
                                          batch_size=8)
  assert metadata["accuracy_split"] == "train" and metadata["num_classes"] == 10
  assert metadata["accuracy"] in [k / 10 for k in range(11)]
  assert classifier.load(tmp_path / "folder.msgpack")[1] == metadata
