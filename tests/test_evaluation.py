"""Image-quality evaluation: settings, features of generated and real images (sharded over the
fake devices), the real-feature cache, evaluation inside a run, the best checkpoint and the
command that evaluates a checkpoint."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import classifier
from ganjax import errors
from ganjax import evaluate as evaluate_command
from ganjax import image_quality
from ganjax import experiment
from ganjax import metrics
from ganjax import runner
from ganjax import sample as sample_lib
from ganjax import train

from test_runner import load_experiment


def random_classifier_network(image_shape=(28, 28, 1), feature_dim=16, num_classes=10):
  params = classifier.init(image_shape, num_classes=num_classes, feature_dim=feature_dim, seed=3)

  def apply(variables, images):
    return classifier.extract_features(variables, images, num_classes=num_classes,
                                       feature_dim=feature_dim)

  return image_quality.FeatureNetwork("classifier", "classifier-test", feature_dim, apply, params)


def test_quantise_rounds_to_8_bit_levels_and_clips():
  images = jnp.asarray([-1.7, -1.0, -0.5, 0.0, 0.3, 1.0, 2.0])
  levels = (np.asarray(image_quality.quantise(images)) + 1.0) * 127.5
  np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
  np.testing.assert_allclose(levels, [0, 0, 63.75 // 1 + 1, 128, 165.75 // 1 + 1, 255, 255],
                             atol=1e-4)


@pytest.mark.parametrize("field, value, message", [
    ("metrics", "fid,inception_score", "unknown eval.metrics inception_score"),
    ("features", "vgg", "eval.features 'vgg'"),
    ("every", -1, "eval.every"),
    ("num_samples", 0, "eval.num_samples"),
    ("best", "is", "eval.best 'is'"),
    ("best", "precision", "not computed"),
])
def test_bad_settings_are_one_line_errors(field, value, message):
  config = load_experiment("mnist_dcgan")
  config.eval.metrics = "fid,kid"
  setattr(config.eval, field, value)
  with pytest.raises(image_quality.EvaluationError, match=message) as error:
    image_quality.settings(config)
  assert "\n" not in str(error.value)


def test_runner_refuses_bad_evaluation_before_training(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds
  monkeypatch.delenv("GANJAX_INCEPTION_WEIGHTS", raising=False)
  config = load_experiment("mnist_dcgan")
  config.eval.metrics = "fid,foo"
  ring = load_experiment("ring")
  ring.eval.metrics = "fid"
  cifar = load_experiment("cifar10_dcgan")
  cifar.eval.metrics = "fid"
  with tfds.testing.mock_data(num_examples=8):
    with pytest.raises(runner.RunError, match="unknown eval.metrics foo"):
      runner.train_and_evaluate(config, tmp_path / "a")
    with pytest.raises(runner.RunError, match="eval.metrics needs image data"):
      runner.train_and_evaluate(ring, tmp_path / "b")
    with pytest.raises(runner.RunError, match="pt_inception-2015-12-05-6726825d.pth") as error:
      runner.train_and_evaluate(cifar, tmp_path / "c")
  assert "\n" not in str(error.value)
  # Nothing was trained or saved: the same command runs once the weights are there.
  assert not any((tmp_path / "c" / "checkpoints").iterdir())
  assert [path.name for path in (tmp_path / "c").iterdir()] == ["checkpoints"]


def test_features_of_samples_equal_a_direct_computation_on_one_device():
  assert jax.local_device_count() == 4
  config = load_experiment("mnist_dcgan")
  state = experiment.create_state_from_config(config, (28, 28, 1))
  network = random_classifier_network()
  features = image_quality._Features(network, batch_size=6)  # rounded up to 8 for 4 devices
  assert features.batch_size == 8 and features.sharding is not None
  got = features.samples(state, 13)
  key = jax.random.fold_in(state.key, image_quality._EVAL_STREAM)
  z = np.stack([jax.random.normal(jax.random.fold_in(key, index), (config.model.latent_dim,))
                for index in range(13)])
  images = state.generator.apply({"params": state.g_params, **state.g_collections}, z,
                                 train=False)
  images = np.round((np.asarray(images) + 1) * 127.5) / 127.5 - 1
  expected = network.apply(network.variables, jnp.asarray(images, jnp.float32))
  assert got.shape == (13, 16)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
  # Each image has its own latent key: another batch size gives the same images.
  np.testing.assert_allclose(image_quality._Features(network, batch_size=4).samples(state, 13),
                             got, rtol=1e-4, atol=1e-5)
  # Real images: a short batch is padded and the padding dropped.
  real = np.random.default_rng(0).uniform(-1, 1, (5, 28, 28, 1)).astype(np.float32)
  np.testing.assert_allclose(
      features.images(real),
      network.apply(network.variables, image_quality.quantise(jnp.asarray(real))),
      rtol=1e-4, atol=1e-5)


def test_real_features_are_computed_once_and_cached(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds

  from ganjax.data import images
  config = load_experiment("mnist_dcgan")
  network = random_classifier_network()
  with tfds.testing.mock_data(num_examples=40):
    first = image_quality.real_features(config.data, network, num_real=20, batch_size=8,
                                     stats_dir=tmp_path)
    direct = np.concatenate(list(images.finite_batches(config.data, batch_size=20,
                                                       num_examples=20)))
  np.testing.assert_allclose(
      first, network.apply(network.variables, image_quality.quantise(jnp.asarray(direct))),
      rtol=1e-4, atol=1e-5)

  def no_reading(*args, **kwargs):
    raise AssertionError("the dataset was read again")

  monkeypatch.setattr(images, "finite_batches", no_reading)
  again = image_quality.real_features(config.data, network, num_real=20, batch_size=8,
                                   stats_dir=tmp_path)
  np.testing.assert_array_equal(first, again)
  with pytest.raises(AssertionError, match="read again"):  # another number: not the cache's
    image_quality.real_features(config.data, network, num_real=24, batch_size=8, stats_dir=tmp_path)
  other = image_quality.FeatureNetwork("classifier", "classifier-other", network.dim, network.apply,
                                    network.variables)
  with pytest.raises(AssertionError, match="read again"):  # another network: not the cache's
    image_quality.real_features(config.data, other, num_real=20, batch_size=8, stats_dir=tmp_path)


def test_too_few_real_images_is_a_one_line_error(tmp_path):
  import tensorflow_datasets as tfds
  config = load_experiment("mnist_dcgan")
  with tfds.testing.mock_data(num_examples=10):
    with pytest.raises(image_quality.EvaluationError, match="eval.num_real") as error:
      image_quality.real_features(config.data, random_classifier_network(), num_real=30,
                               batch_size=8, stats_dir=tmp_path)
  assert "\n" not in str(error.value)


def image_folder(path, count=48, side=28):
  """A folder dataset of `count` grayscale PNGs in two labelled directories."""
  from PIL import Image
  rng = np.random.default_rng(0)
  for index in range(count):
    label_dir = path / "train" / f"label_{index % 2}"
    label_dir.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, (side, side), dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(label_dir / f"{index:03d}.png")
  return path


def test_run_evaluates_keeps_the_best_checkpoint_and_the_command_agrees(tmp_path):
  # A folder of images on disk rather than mocked TFDS: the run, its checkpoints and the command
  # all see the real file system.
  config = load_experiment("mnist_dcgan")
  config.data.name = "folder"
  config.data.folder = str(image_folder(tmp_path / "images"))
  config.data.channels = 1
  config.eval.update(metrics="fid,kid,precision_recall,density_coverage", every=2, best="fid",
                     num_samples=24)
  workdir = tmp_path / "run"
  summary = runner.train_and_evaluate(config, workdir)
  lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  measures = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage")
  evaluated = [line for line in lines if "fid" in line]
  assert [line["step"] for line in evaluated] == [2, 4]
  for line in evaluated:
    assert all(np.isfinite(line[name]) for name in measures) and line["eval_seconds"] > 0
    assert line["fid"] > 0 and 0 <= line["precision"] <= 1 and 0 <= line["coverage"] <= 1
  assert summary["fid"] == evaluated[-1]["fid"] and summary["features"] == "classifier"
  # summary.json records how the numbers were measured.
  assert summary["evaluation"]["protocol"] == "" and summary["evaluation"]["resize"] is None
  assert summary["evaluation"]["reference"] == {"dataset": "folder", "split": "train",
                                                "num_real": 16}
  assert summary["evaluation"]["samples"] == {name: 24 for name in (
      "fid", "kid", "precision_recall", "density_coverage")}
  assert (workdir / image_quality.CLASSIFIER_FILE).exists()

  best = json.loads((workdir / "best.json").read_text())
  best_line = min(evaluated, key=lambda line: line["fid"])
  assert best["step"] == best_line["step"] and best["value"] == best_line["fid"]
  assert summary["best"] == {"measure": "fid", "value": best["value"], "step": best["step"]}
  best_state, _ = sample_lib.load_state(workdir / "best")
  assert int(best_state.step) == best["step"]

  # The command recomputes the same numbers from the checkpoints (same fixed noise, the run's
  # classifier, the real features from the cache).
  latest = evaluate_command.evaluate(workdir)
  assert latest["step"] == 4 and latest["features"] == "classifier"
  for name in measures:
    np.testing.assert_allclose(latest[name], summary[name], rtol=1e-4, atol=1e-6)
  from_best = evaluate_command.evaluate(workdir, best=True, metrics="fid")
  np.testing.assert_allclose(from_best["fid"], best["value"], rtol=1e-4)
  assert set(from_best) & set(measures) == {"fid"}


def test_fid_of_the_evaluator_is_the_frechet_distance_of_its_features(tmp_path):
  real = np.random.default_rng(1).normal(size=(50, 8))
  fake = np.random.default_rng(2).normal(0.3, 1.2, size=(40, 8))
  values = image_quality.compute(real, fake, ("fid", "precision_recall", "density_coverage"))
  assert values["fid"] == pytest.approx(metrics.frechet_distance(real, fake), rel=1e-9)
  assert values["precision"] == metrics.precision_recall(real, fake, 3)["precision"]
  # With the real radii computed once, the same numbers.
  radii = image_quality.real_radii(real, ("precision_recall", "density_coverage"))
  assert sorted(radii) == [3, 5]
  cached = image_quality.compute(real, fake, ("precision_recall", "density_coverage"), radii=radii)
  assert cached == {name: values[name] for name in ("precision", "recall", "density", "coverage")}


def test_the_public_tables_come_from_the_registry():
  assert image_quality.METRICS == ("fid", "kid", "precision_recall", "density_coverage", "is",
                                   "accuracy", "intra_fid")
  assert dict(image_quality.BEST) == {"fid": -1.0, "kid": -1.0, "precision": 1.0, "recall": 1.0,
                                   "density": 1.0, "coverage": 1.0, "is": 1.0, "accuracy": 1.0,
                                   "accuracy_min": 1.0, "intra_fid": -1.0}
  assert image_quality.measure_names(image_quality.METRICS) == (
      "fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "is", "is_std",
      "accuracy", "accuracy_min", "intra_fid")
  assert issubclass(image_quality.EvaluationError, errors.ConfigError)


def test_a_registered_measure_is_computed_checked_and_can_be_best(monkeypatch):
  seen = []

  def mean_gap(real, fake, context):
    seen.append(context)
    return {"mean_gap": np.abs(real.mean() - fake.mean()), "mean_gap_spread": 0.0}

  measure = image_quality.Measure("mean_gap", {"mean_gap": -1.0, "mean_gap_spread": None}, mean_gap,
                               k=2)
  monkeypatch.setitem(image_quality.MEASURES, "mean_gap", measure)
  config = load_experiment("mnist_dcgan")
  config.eval.metrics, config.eval.best = "fid,mean_gap", "mean_gap"
  assert image_quality.settings(config)["metrics"] == ("fid", "mean_gap")
  assert image_quality.BEST["mean_gap"] == -1.0 and "mean_gap_spread" not in image_quality.BEST
  config.eval.best = "mean_gap_spread"
  with pytest.raises(image_quality.EvaluationError, match="eval.best 'mean_gap_spread' is not one "
                                                       "of: .*coverage, .*intra_fid, mean_gap$"):
    image_quality.settings(config)
  real = np.random.default_rng(3).normal(size=(30, 4))
  fake = np.random.default_rng(4).normal(0.5, 1.0, size=(20, 4))
  radii = image_quality.real_radii(real, ("fid", "mean_gap"))
  assert sorted(radii) == [2]
  np.testing.assert_array_equal(radii[2], metrics.knn_radii(real, 2))
  values = image_quality.compute(real, fake, ("fid", "mean_gap"), radii=radii)
  assert list(values) == ["fid", "mean_gap", "mean_gap_spread"]
  assert values["mean_gap"] == pytest.approx(abs(real.mean() - fake.mean()))
  assert seen[0].k == 2 and seen[0].real_radii is radii[2] and seen[0].real_statistics is None


def test_a_bug_in_the_feature_network_is_not_an_evaluation_error(tmp_path):
  import tensorflow_datasets as tfds
  network = random_classifier_network()

  def broken(variables, images):
    raise ValueError("a bug in the feature network")

  broken_network = image_quality.FeatureNetwork("classifier", "classifier-broken", network.dim,
                                             broken, network.variables)
  config = load_experiment("mnist_dcgan")
  with tfds.testing.mock_data(num_examples=10):
    with pytest.raises(ValueError, match="a bug in the feature network") as error:
      image_quality.real_features(config.data, broken_network, num_real=8, batch_size=8,
                               stats_dir=tmp_path)
  assert not isinstance(error.value, errors.ConfigError)
