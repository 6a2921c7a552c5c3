"""Evaluation of a class-conditional generator: the labels of the generated images, `accuracy`
and `intra_fid` against direct computations, their one-line errors, and the real labels in the
real-feature cache.

The generators here are tiny Flax modules written for the tests: `LookupGenerator` makes, for
label y, a fixed image of class y (a real training image) plus a multiple of its latent vector,
so that what each generated image should be is known exactly. The dataset is a folder of 8x8
grayscale PNGs of 3 classes that differ in brightness, and the feature network is a classifier
trained on it for a few steps (no Inception weights here).
"""
import json
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from ganjax import classifier
from ganjax import evaluate as evaluate_command
from ganjax import image_quality
from ganjax import metrics
from ganjax import train
from ganjax.data import images as images_lib

SIDE = 8
SHAPE = (SIDE, SIDE, 1)
NUM_CLASSES = 3
PER_CLASS = 8
LATENT_DIM = SIDE * SIDE  # the latent vector, laid out as an image, is the generator's noise


class LookupGenerator(nn.Module):
  """For label y, `table[(y + shift) % K] + noise_scale * z` (z as an image), clipped to [-1, 1].

  Without labels (an unconditional state) or with `ignore_labels`, the class is argmax z[:K]
  instead: a generator whose images do not follow the labels.
  """
  num_classes: int
  noise_scale: float = 0.0
  shift: int = 0
  ignore_labels: bool = False

  @nn.compact
  def __call__(self, z, labels=None, train=True):
    del train
    table = self.param("table", nn.initializers.zeros, (self.num_classes, *SHAPE))
    if labels is None or self.ignore_labels:
      labels = jnp.argmax(z[:, :self.num_classes], axis=-1)
    images = table[(labels + self.shift) % self.num_classes]
    return jnp.clip(images + self.noise_scale * z.reshape(-1, *SHAPE), -1.0, 1.0)


class TinyDiscriminator(nn.Module):
  """A linear discriminator plus a per-class bias (any discriminator of (x, labels) will do)."""
  num_classes: int

  @nn.compact
  def __call__(self, x, labels=None, train=True):
    del train
    logits = nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]
    if labels is not None:
      logits = logits + nn.Embed(self.num_classes, 1)(labels)[:, 0]
    return logits


def make_state(table, num_classes=NUM_CLASSES, **generator_fields):
  """A GANState of a `LookupGenerator` whose table is `table` ((K, *SHAPE) images)."""
  generator = LookupGenerator(NUM_CLASSES, **generator_fields)
  spec = train.GANSpec(latent_dim=LATENT_DIM, batch_size=8, num_classes=num_classes)
  state = train.create_state(generator, TinyDiscriminator(NUM_CLASSES), optax.sgd(0.1),
                             optax.sgd(0.1), spec, SHAPE)
  return state.replace(g_params={"table": jnp.asarray(table, jnp.float32)})


def latents(state, num):
  """The evaluation's latent vectors of images 0..num-1, drawn here as the docstring says."""
  key = jax.random.fold_in(state.key, image_quality._EVAL_STREAM)
  return np.stack([np.asarray(jax.random.normal(jax.random.fold_in(key, index), (LATENT_DIM,)))
                   for index in range(num)])


def write_folder(path):
  """`<path>/train/label_<k>/<n>.png`: PER_CLASS noisy images per class, class k of brightness
  around 40 + 80 k out of 255."""
  from PIL import Image
  rng = np.random.default_rng(0)
  for index in range(NUM_CLASSES * PER_CLASS):
    label = index % NUM_CLASSES
    label_dir = path / "train" / f"label_{label}"
    label_dir.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(rng.normal(40 + 80 * label, 12, (SIDE, SIDE)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(label_dir / f"{index:03d}.png")
  return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  """(data config, real images, their labels, the classifier file trained on them, the table of
  one real image per class)."""
  root = tmp_path_factory.mktemp("conditional")
  data = {"name": "folder", "folder": str(write_folder(root / "images")), "channels": 1,
          "image_size": SIDE, "split": "train"}
  batches = list(images_lib.finite_batches(data, batch_size=100, with_labels=True))
  real = np.concatenate([images for images, _ in batches])
  labels = np.concatenate([labels for _, labels in batches])
  assert np.bincount(labels).tolist() == [PER_CLASS] * NUM_CLASSES
  path = root / "classifier.msgpack"
  classifier.train_for_dataset(data, path, steps=40, batch_size=24)
  table = np.stack([real[np.flatnonzero(labels == k)[0]] for k in range(NUM_CLASSES)])
  return data, real, labels, path, table


def run_config(data, metrics_names, tmp_path, **eval_fields):
  config = ml_collections.ConfigDict({
      "seed": 0, "data": dict(data), "conditional": {"enabled": True},
      "eval": image_quality.eval_config(metrics=metrics_names, features="classifier",
                                        num_samples=30, num_real=NUM_CLASSES * PER_CLASS,
                                        batch_size=6, stats_dir=str(tmp_path / "stats"))})
  config.eval.update(eval_fields)
  return config


def loaded_classifier(path):
  params, metadata = classifier.load(path)
  return params, {"num_classes": metadata["num_classes"], "feature_dim": metadata["feature_dim"]}


def test_image_i_is_made_for_class_i_mod_k_whatever_the_batch_size_and_devices(dataset,
                                                                              monkeypatch):
  data, _, _, path, table = dataset
  state = make_state(table, noise_scale=0.3)
  network = image_quality.classifier_network(path, SHAPE)
  num = 13
  # Direct computation: image i is table[i % K] + 0.3 z_i, quantised to 8 bits.
  expected_labels = np.arange(num) % NUM_CLASSES
  expected_images = np.clip(table[expected_labels] + 0.3 * latents(state, num).reshape(-1, *SHAPE),
                            -1, 1)
  expected_images = np.asarray(image_quality.quantise(jnp.asarray(expected_images, jnp.float32)))
  params, kwargs = loaded_classifier(path)
  expected_features = np.asarray(classifier.extract_features(params, expected_images, **kwargs))
  expected_predictions = np.argmax(np.asarray(classifier.logits(params, expected_images,
                                                                **kwargs)), -1)

  assert jax.local_device_count() == 4
  results = {}
  for batch_size in (4, 6):  # 6 is rounded up to 8 on the 4 devices
    features = image_quality._Features(network, batch_size, network)
    assert features.sharding is not None
    results[batch_size] = features.generated(state, num)
  monkeypatch.setattr(jax, "local_devices", lambda *args, **kwargs: jax.devices()[:1])
  one_device = image_quality._Features(network, 6, network)
  assert one_device.sharding is None and one_device.batch_size == 6
  results["one device"] = one_device.generated(state, num)
  for generated in results.values():
    np.testing.assert_array_equal(generated.labels, expected_labels)
    assert generated.labels.dtype == np.int32
    np.testing.assert_array_equal(generated.predictions, expected_predictions)
    # float32 convolutions of the same images in batches of other sizes and layouts: equal up to
    # rounding.
    np.testing.assert_allclose(generated.features, expected_features, rtol=1e-4, atol=1e-5)
  # The features of `samples` are those of `generated`.
  np.testing.assert_array_equal(one_device.samples(state, num), results["one device"].features)


def test_an_unconditional_generator_gets_no_labels(dataset):
  data, _, _, path, table = dataset
  state = make_state(table, num_classes=0, noise_scale=0.3)
  network = image_quality.classifier_network(path, SHAPE)
  generated = image_quality._Features(network, 4).generated(state, 5)
  assert generated.labels is None and generated.predictions is None
  # Without labels the lookup generator picks class argmax z[:K]: the same images as it makes
  # for those labels.
  z = latents(state, 5)
  expected = np.clip(table[np.argmax(z[:, :NUM_CLASSES], -1)] + 0.3 * z.reshape(-1, *SHAPE), -1, 1)
  expected = image_quality.quantise(jnp.asarray(expected, jnp.float32))
  np.testing.assert_allclose(generated.features, network.apply(network.variables, expected),
                             rtol=1e-4, atol=1e-5)


def test_accuracy_is_the_classifiers_accuracy_on_the_images_and_their_labels(dataset, tmp_path):
  data, _, _, path, table = dataset
  params, kwargs = loaded_classifier(path)
  evaluator = image_quality.Evaluator(run_config(data, "accuracy", tmp_path,
                                                 classifier=str(path)), None, SHAPE)
  assert evaluator.classifier is evaluator.network  # the feature classifier classifies too
  num = 30
  labels = np.arange(num) % NUM_CLASSES

  def expected(images):
    """classifier.accuracy overall and per class on the images and the labels they were made
    for, computed apart from the evaluation."""
    overall = classifier.accuracy(params, [(images, labels)], **kwargs)
    per_class = [classifier.accuracy(params, [(images[labels == k], labels[labels == k])],
                                     **kwargs) for k in range(NUM_CLASSES)]
    return overall, per_class

  # A generator that makes, for label y, a real image of class y.
  values = evaluator(make_state(table))
  overall, per_class = expected(table[labels])
  assert overall == 1.0  # the classifier knows its own training images
  assert values == {"accuracy": overall, "accuracy_min": min(per_class)}
  assert evaluator.details == {"per_class_accuracy": per_class}

  # A generator that ignores its labels: its class is argmax z[:K], uniform over the classes.
  state = make_state(table, ignore_labels=True)
  values = evaluator(state)
  overall, per_class = expected(table[np.argmax(latents(state, num)[:, :NUM_CLASSES], -1)])
  assert values == {"accuracy": overall, "accuracy_min": min(per_class)}
  assert evaluator.details == {"per_class_accuracy": per_class}
  # About 1/K: 30 draws of probability 1/3 have a standard deviation of 0.086; 0.25 is ~3 of
  # them (and the draws are fixed, so this does not flake).
  assert abs(overall - 1 / NUM_CLASSES) < 0.25


def test_intra_fid_is_the_mean_frechet_distance_of_each_classs_features(dataset, tmp_path):
  data, real, real_labels, path, table = dataset
  evaluator = image_quality.Evaluator(run_config(data, "fid,intra_fid", tmp_path,
                                                 classifier=str(path)), None, SHAPE)
  assert evaluator.classifier is None  # no measure asks for predictions
  np.testing.assert_array_equal(evaluator.real_labels, real_labels)
  network = evaluator.network
  np.testing.assert_allclose(
      evaluator.real, network.apply(network.variables, image_quality.quantise(jnp.asarray(real))),
      rtol=1e-4, atol=1e-5)
  num = 30
  intra = {}
  for shift in (0, 1):  # 1: for label y, images of class y + 1
    state = make_state(table, noise_scale=0.3, shift=shift)
    values = evaluator(state)
    generated = evaluator.features.generated(state, num)
    np.testing.assert_array_equal(generated.labels, np.arange(num) % NUM_CLASSES)
    per_class = [metrics.frechet_distance(evaluator.real[real_labels == k],
                                          generated.features[generated.labels == k])
                 for k in range(NUM_CLASSES)]
    # The same float32 features and the same float64 arithmetic: equal up to summation order.
    assert values["intra_fid"] == pytest.approx(np.mean(per_class), rel=1e-9)
    np.testing.assert_allclose(evaluator.details["per_class_fid"], per_class, rtol=1e-9)
    assert values["fid"] == pytest.approx(metrics.frechet_distance(evaluator.real,
                                                                   generated.features), rel=1e-9)
    intra[shift] = values["intra_fid"]
  # Images of the wrong class (of every class in the same numbers as before): much further from
  # the real images of the class they were made for.
  assert intra[1] > 2 * intra[0]


def test_the_metrics_function_agrees_and_needs_two_examples_of_each_class():
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=(12, 3)), rng.normal(0.5, 1.0, size=(9, 3))
  real_labels, fake_labels = np.arange(12) % 3, np.arange(9) % 3
  result = metrics.intra_class_frechet_distance(real, real_labels, fake, fake_labels,
                                                num_classes=3)
  per_class = [metrics.frechet_distance(real[real_labels == k], fake[fake_labels == k])
               for k in range(3)]
  np.testing.assert_allclose(result["per_class_fid"], per_class, rtol=1e-12)
  assert result["intra_fid"] == pytest.approx(np.mean(per_class), rel=1e-12)
  with pytest.raises(ValueError, match="class 2 has 1 generated examples"):
    metrics.intra_class_frechet_distance(real, real_labels, fake[:6], np.r_[0, 0, 1, 1, 2, 0],
                                         num_classes=3)
  # In an evaluation, a one-line error that says which setting to raise.
  labels = image_quality.ClassLabels(3, fake=np.r_[0, 1, 1, 2, 2, 2], real=real_labels)
  with pytest.raises(image_quality.EvaluationError,
                     match=r"^intra_fid needs at least 2 generated images of each class, class 0 "
                           r"has 1 \(raise eval.num_samples\)$"):
    image_quality.compute(real, fake[:6], ("intra_fid",), labels=labels)


def test_both_measures_stop_in_one_line_on_an_unconditional_run(dataset, tmp_path):
  data, _, _, path, table = dataset
  for name in ("accuracy", "intra_fid"):
    config = run_config(data, f"fid,{name}", tmp_path, classifier=str(path))
    config.conditional.enabled = False
    with pytest.raises(image_quality.EvaluationError,
                       match=rf"^eval.metrics {name} needs a class-conditional run "
                             r"\(conditional.enabled\)$"):
      image_quality.settings(config)
    del config.conditional  # a config from before conditional runs: unconditional
    with pytest.raises(image_quality.EvaluationError, match="needs a class-conditional run"):
      image_quality.settings(config)
    real = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(image_quality.EvaluationError, match="needs a class-conditional run"):
      image_quality.compute(real, real, ("fid", name))
  # A conditional config but an unconditional state: at the evaluation.
  evaluator = image_quality.Evaluator(run_config(data, "fid,accuracy,intra_fid", tmp_path,
                                                 classifier=str(path)), None, SHAPE)
  with pytest.raises(image_quality.EvaluationError,
                     match=r"^eval.metrics accuracy, intra_fid need a class-conditional run "
                           r"\(conditional.enabled\)$"):
    evaluator(make_state(table, num_classes=0))


def test_real_labels_are_cached_and_an_old_cache_is_recomputed(dataset, tmp_path, monkeypatch):
  data, real, real_labels, path, _ = dataset
  network = image_quality.classifier_network(path, SHAPE)
  kwargs = dict(num_real=NUM_CLASSES * PER_CLASS, batch_size=8, stats_dir=tmp_path)
  features, labels = image_quality.real_features_with_labels(data, network, **kwargs)
  np.testing.assert_array_equal(labels, real_labels)
  direct = network.apply(network.variables, image_quality.quantise(jnp.asarray(real)))
  np.testing.assert_allclose(features, direct, rtol=1e-4, atol=1e-5)
  [cache_file] = tmp_path.glob("*.npz")
  with np.load(cache_file) as stored:
    np.testing.assert_array_equal(stored["labels"], real_labels)
    key = json.loads(str(stored["key"]))
  assert key["version"] == image_quality._CACHE_VERSION == 3

  # Read back from the cache, the dataset untouched.
  finite_batches = images_lib.finite_batches

  def no_reading(*args, **kwargs):
    raise AssertionError("the dataset was read again")

  monkeypatch.setattr(images_lib, "finite_batches", no_reading)
  again, again_labels = image_quality.real_features_with_labels(data, network, **kwargs)
  np.testing.assert_array_equal(again, features)
  np.testing.assert_array_equal(again_labels, labels)
  np.testing.assert_array_equal(image_quality.real_features(data, network, **kwargs), features)

  # A file of the first version (features only, of another key) where this one's would be: it is
  # not read as this version's, but computed again and replaced.
  np.savez(cache_file, features=np.zeros_like(features),
           key=json.dumps({**key, "version": 1}, sort_keys=True))
  with pytest.raises(AssertionError, match="read again"):
    image_quality.real_features_with_labels(data, network, **kwargs)
  monkeypatch.setattr(images_lib, "finite_batches", finite_batches)
  recomputed, recomputed_labels = image_quality.real_features_with_labels(data, network, **kwargs)
  np.testing.assert_allclose(recomputed, direct, rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(recomputed_labels, real_labels)
  with np.load(cache_file) as stored:
    assert json.loads(str(stored["key"]))["version"] == 3 and "labels" in stored.files


def test_a_dataset_without_labels_is_cached_without_them_and_intra_fid_stops(tmp_path):
  import tensorflow_datasets as tfds
  shape = (SIDE, SIDE, 3)
  path = tmp_path / "classifier.msgpack"
  classifier.save(path, classifier.init(shape, num_classes=2, feature_dim=8), image_shape=shape,
                  num_classes=2, feature_dim=8, accuracy=0.5, dataset="celeb_a")
  data = {"name": "celeb_a", "image_size": SIDE}
  config = run_config(data, "fid,intra_fid", tmp_path, classifier=str(path), num_real=6)
  network = image_quality.classifier_network(path, shape)
  with tfds.testing.mock_data(num_examples=6):
    features, labels = image_quality.real_features_with_labels(data, network, num_real=6,
                                                               stats_dir=tmp_path / "stats")
    direct = np.concatenate(list(images_lib.finite_batches(data, batch_size=6, num_examples=6)))
    assert labels is None
    np.testing.assert_allclose(
        features, network.apply(network.variables, image_quality.quantise(jnp.asarray(direct))),
        rtol=1e-4, atol=1e-5)
    [cache_file] = (tmp_path / "stats").glob("*.npz")
    with np.load(cache_file) as stored:
      assert sorted(stored.files) == ["count", "features", "key", "mu", "protocol", "sigma"]
    with pytest.raises(image_quality.EvaluationError,
                       match="^eval.metrics intra_fid needs the real images' class labels; "
                             "dataset 'celeb_a' has none$"):
      image_quality.Evaluator(config, None, shape)


def test_accuracy_with_inception_features_uses_the_runs_classifier(dataset, tmp_path,
                                                                   monkeypatch):
  data, _, _, path, table = dataset
  # Stand-in Inception: any feature network that classifies nothing (no weights here).
  untrained = classifier.init(SHAPE, num_classes=NUM_CLASSES, feature_dim=16, seed=3)
  stand_in = image_quality.FeatureNetwork(
      "inception", "inception-test", 16,
      lambda variables, images: classifier.extract_features(variables, images,
                                                            num_classes=NUM_CLASSES,
                                                            feature_dim=16), untrained)
  monkeypatch.setattr(image_quality, "inception_network",
                      lambda weights=None, resize="pytorch": stand_in)
  config = run_config(data, "fid,accuracy", tmp_path, features="inception")
  with pytest.raises(image_quality.EvaluationError,
                     match="^eval.metrics accuracy needs eval.classifier"):
    image_quality.Evaluator(config, None, SHAPE)
  workdir = tmp_path / "run"
  workdir.mkdir()
  shutil.copy(path, workdir / image_quality.CLASSIFIER_FILE)
  evaluator = image_quality.Evaluator(config, workdir, SHAPE)
  assert evaluator.network is stand_in
  assert evaluator.classifier.identity == image_quality.classifier_network(path).identity
  state = make_state(table, ignore_labels=True)
  values = evaluator(state)
  num = 30
  params, kwargs = loaded_classifier(path)
  made = table[np.argmax(latents(state, num)[:, :NUM_CLASSES], -1)]
  assert values["accuracy"] == classifier.accuracy(
      params, [(made, np.arange(num) % NUM_CLASSES)], **kwargs)
  generated = evaluator.features.generated(state, num)
  assert values["fid"] == pytest.approx(metrics.frechet_distance(evaluator.real,
                                                                 generated.features), rel=1e-9)

  # The command: the run's classifier by default, the per-class values in its output.
  from ganjax import sample as sample_lib
  saved = run_config(data, "fid", tmp_path, features="inception")
  monkeypatch.setattr(sample_lib, "load_state", lambda source, step: (state, saved))
  result = evaluate_command.evaluate(workdir, metrics="accuracy")
  assert result["accuracy"] == values["accuracy"]
  assert result["per_class_accuracy"] == evaluator.details["per_class_accuracy"]
  assert len(result["per_class_accuracy"]) == NUM_CLASSES and "fid" not in result
