"""Evaluation protocols: the named presets, the Inception Score in evaluations, published
reference statistics, and the same numbers on 1 and 4 devices.

The Inception network itself is tested against pytorch-fid and torch-fidelity in
test_inception.py; here a small random network with the same interface (features and logits)
stands for it, so that whole evaluations run in seconds.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import evaluate as evaluate_command
from ganjax import experiment
from ganjax import image_quality
from ganjax import metrics
from ganjax import runner
from ganjax import sample as sample_lib
from ganjax.data import images as images_lib

from test_evaluation import image_folder
from test_inception import import_test_extra
from test_runner import load_experiment


def inception_like_network(image_shape=(28, 28, 1), dim=12, classes=20, seed=5):
  """A random stand-in for the Inception network: tanh features of a linear map of the pixels,
  logits a linear map of the features, and a classifier bias where `inception.logits_bias`
  reads it."""
  rng = np.random.default_rng(seed)
  pixels = int(np.prod(image_shape))
  variables = {"w": rng.normal(0, 1 / np.sqrt(pixels), (pixels, dim)).astype(np.float32),
               "c": rng.normal(0, 2, (dim, classes)).astype(np.float32),
               "params": {"fc": {"bias": rng.normal(0, 1, classes).astype(np.float32)}}}

  def apply_with_logits(variables, images):
    features = jnp.tanh(images.reshape(images.shape[0], -1) @ variables["w"])
    return features, features @ variables["c"]

  return image_quality.FeatureNetwork(
      "inception", f"inception-test-{seed}", dim,
      lambda variables, images: apply_with_logits(variables, images)[0], variables,
      apply_with_logits=apply_with_logits)


def one_line_error(fn, *args, match, **kwargs):
  with pytest.raises(image_quality.EvaluationError, match=match) as error:
    fn(*args, **kwargs)
  assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------------------------
# The presets


# What each source measured (see the protocols' `source`): generated images, real images (0: the
# whole split), reference split (None: the run's), the Inception input, the IS splits, the bias
# in the IS logits, and the measures that take fewer generated images.
PUBLISHED = {
    # ganjax's own monitoring setting.
    "quick": (10_000, 10_000, None, "pytorch", 10, False, {}),
    # Mimicry's README: "IS: 50K samples at 10 splits | FID: 50K real/generated samples | KID:
    # 50K real/generated samples"; CIFAR-10 train; the TF graph fed at ExpandDims:0.
    "mimicry": (50_000, 50_000, "train", "tf1", 10, False, {}),
    # Miyato et al. 2018, appendix B.1 and sngan_projection's calc_inception_score.py --splits=10
    # --tf: IS of 5000 x 10 images; FID over 10000 real and 5000 generated.
    "sngan": (50_000, 10_000, "test", "tf1", 10, False, {"fid": 5_000}),
    # stylegan2-ada-pytorch metric_main.py: fid50k_full (max_real=None, num_gen=50000), is50k
    # (num_gen=50000, num_splits=10).
    "stylegan2_ada": (50_000, 0, "train", "tf1", 10, False, {}),
    # StudioGAN main.py defaults (InceptionV3_tf, post_resizer legacy, ref_dataset train),
    # worker.py num_splits=1, ins.py nn.Linear(2048, 1008, bias=True).
    "studiogan": (50_000, 0, "train", "pytorch", 1, True, {}),
}


def test_each_protocol_fixes_what_its_source_measured():
  assert set(image_quality.PROTOCOLS) == set(PUBLISHED)
  for name, (generated, real, split, resize, splits, bias, counts) in PUBLISHED.items():
    protocol = image_quality.PROTOCOLS[name]
    assert (protocol.num_samples, protocol.num_real, protocol.split, protocol.resize,
            protocol.splits, protocol.logits_bias, dict(protocol.counts)) == (
                generated, real, split, resize, splits, bias, counts), name
    assert protocol.source and set(protocol.metrics) <= set(image_quality.MEASURES)
    # A protocol that reports the Inception Score names it.
    assert ("is" in protocol.metrics) == (name != "quick")


def test_a_protocol_replaces_the_configs_fields():
  config = load_experiment("cifar10_dcgan")
  config.eval.update(protocol="sngan", metrics="", num_samples=123, num_real=45, resize="pytorch",
                     splits=3)
  values = image_quality.settings(config)
  assert values["metrics"] == ()  # '' is off, whatever the protocol
  assert (values["num_samples"], values["num_real"], values["split"], values["resize"],
          values["splits"], values["counts"]) == (50_000, 10_000, "test", "tf1", 10,
                                                  {"fid": 5_000})
  config.eval.metrics = "fid,kid"  # the measures asked for, by the protocol's rules
  assert image_quality.settings(config)["metrics"] == ("fid", "kid")
  config.eval.protocol = ""
  values = image_quality.settings(config)
  assert (values["num_samples"], values["split"], values["counts"]) == (123, None, {})


@pytest.mark.parametrize("fields, message", [
    ({"protocol": "fid50k"}, "eval.protocol 'fid50k' is not one of: quick, mimicry"),
    ({"resize": "bicubic"}, "eval.resize 'bicubic' is not one of: pytorch, tf1"),
    ({"splits": 0}, "eval.splits must be a positive integer"),
    ({"num_real": -1}, "eval.num_real must be a non-negative integer"),
    ({"metrics": "is", "features": "classifier"}, "needs eval.features 'inception'"),
    ({"metrics": "is", "num_samples": 5}, "eval.splits 10 is more than the 5 generated"),
    ({"metrics": "fid", "reference_stats": "/nonexistent/stats.npz"}, "does not exist"),
    ({"metrics": "kid", "reference_stats": __file__}, "which eval.metrics does not ask for"),
])
def test_bad_protocol_settings_are_one_line_errors(fields, message):
  config = load_experiment("cifar10_dcgan")
  config.eval.update(metrics="fid")
  for name, value in fields.items():
    config.eval[name] = value
  one_line_error(image_quality.settings, config, match=message)


def test_measures_take_the_first_images_their_protocol_gives_them():
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=(60, 6)), rng.normal(0.2, 1.1, size=(40, 6))
  logits = rng.normal(0, 2, size=(40, 30))
  values = image_quality.compute(real, fake, ("is", "fid", "kid"), logits=logits, splits=4,
                                 counts={"fid": 25})
  assert values["fid"] == pytest.approx(metrics.frechet_distance(real, fake[:25]), rel=1e-9)
  assert values["kid"] == pytest.approx(metrics.kernel_inception_distance(real, fake)["kid"],
                                        rel=1e-6)
  assert values["is"] == metrics.inception_score(logits, 4)["is"]
  one_line_error(image_quality.compute, real, fake, ("is",), match="needs the Inception "
                 "network's logits")


# ------------------------------------------------------------------------------------------------
# Devices


def test_features_logits_and_scores_are_the_same_on_1_and_4_devices():
  assert jax.local_device_count() == 4
  config = load_experiment("mnist_dcgan")
  state = experiment.create_state_from_config(config, (28, 28, 1))
  network = inception_like_network()
  one = image_quality._Features(network, 8, logits=True, devices=jax.local_devices()[:1])
  four = image_quality._Features(network, 8, logits=True)
  assert one.sharding is None and four.sharding is not None
  on_one, on_four = one.generated(state, 30), four.generated(state, 30)
  # The same images; XLA may tile a 2-image and an 8-image product differently (float32).
  np.testing.assert_allclose(on_four.features, on_one.features, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(on_four.logits, on_one.logits, rtol=1e-5, atol=1e-5)
  real = np.random.default_rng(1).normal(size=(40, network.dim))
  scores = [image_quality.compute(real, generated.features, ("is", "fid"),
                                  logits=generated.logits, splits=3)
            for generated in (on_one, on_four)]
  for name in ("is", "fid"):
    assert scores[1][name] == pytest.approx(scores[0][name], rel=1e-4)


# ------------------------------------------------------------------------------------------------
# A run evaluated by a protocol, and against published statistics


def image_folder_with_test_split(path, train=24, test=10):
  folder = image_folder(path, count=train)
  test_folder = image_folder(path / "held_out", count=test)
  (test_folder / "train").rename(folder / "test")
  return folder


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
  """A 2-step run on an image folder with train and test splits, evaluated by nothing yet."""
  tmp_path = tmp_path_factory.mktemp("protocol_run")
  config = load_experiment("mnist_dcgan")
  config.data.name = "folder"
  config.data.folder = str(image_folder_with_test_split(tmp_path / "images"))
  config.data.channels = 1
  config.train.steps = 2
  config.eval.update(metrics="", every=0, stats_dir=str(tmp_path / "stats"))
  runner.train_and_evaluate(config, tmp_path / "run")
  return tmp_path / "run", config


TINY = image_quality.Protocol("tiny", "a test's", ("is", "fid"), num_samples=24, num_real=0,
                              split="test", resize="tf1", splits=4, counts={"fid": 12})


def test_a_protocol_evaluates_a_run_as_it_says(trained_run, monkeypatch):
  workdir, config = trained_run
  network = inception_like_network()
  resizes = []

  def stand_in(weights, resize):
    resizes.append(resize)
    return network

  monkeypatch.setattr(image_quality, "inception_network", stand_in)
  monkeypatch.setitem(image_quality.PROTOCOLS, "tiny", TINY)
  result = evaluate_command.evaluate(workdir, protocol="tiny")
  assert resizes == ["tf1"]
  # Independently: the first 24 generated images' logits in 4 splits; FID of the first 12
  # against all 10 images of the test split (not the run's train split).
  state, _ = sample_lib.load_state(workdir)
  generated = image_quality._Features(network, 250, logits=True).generated(state, 24)
  assert result["is"] == pytest.approx(metrics.inception_score(generated.logits, 4)["is"],
                                       rel=1e-9)
  test_config = dict(config.data, split="test")
  test_images = np.concatenate(list(images_lib.finite_batches(test_config, batch_size=64)))
  assert len(test_images) == 10
  real = np.asarray(network.apply(network.variables,
                                  image_quality.quantise(jnp.asarray(test_images))))
  assert result["fid"] == pytest.approx(metrics.frechet_distance(real, generated.features[:12]),
                                        rel=1e-4)
  evaluation = result["evaluation"]
  assert evaluation["protocol"] == "tiny" and evaluation["resize"] == "tf1"
  assert evaluation["samples"] == {"is": 24, "fid": 12} and evaluation["splits"] == 4
  assert evaluation["reference"] == {"dataset": "folder", "split": "test", "num_real": 10}
  assert result["split"] == "test"
  # The table names the protocol beside every number.
  lines = evaluate_command.table(result).splitlines()
  assert lines[0].split()[:3] == ["measure", "value", "protocol"]
  rows = {line.split()[0]: line.split() for line in lines[1:]}
  assert set(rows) == {"is", "is_std", "fid"}
  assert all(row[2] == "tiny" for row in rows.values())
  assert rows["fid"][3] == "12" and rows["is"][3] == "24" and "test" in lines[3]
  # A protocol fixes its counts: a flag that changes one is refused.
  with pytest.raises(experiment.RunError, match="--protocol=tiny fixes --num_samples"):
    evaluate_command.evaluate(workdir, protocol="tiny", num_samples=100)


def test_fid_against_published_statistics_reads_no_real_images(trained_run, monkeypatch,
                                                                tmp_path):
  workdir, _ = trained_run
  network = inception_like_network()
  monkeypatch.setattr(image_quality, "inception_network", lambda weights, resize: network)
  rng = np.random.default_rng(2)
  published = metrics.feature_statistics(rng.normal(0.1, 0.9, size=(200, network.dim)))
  path = tmp_path / "fid_stats_folder_train.npz"
  np.savez_compressed(path, mu=published.mean, sigma=published.covariance)  # pytorch-fid's form

  def no_reading(*args, **kwargs):
    raise AssertionError("the dataset was read")

  monkeypatch.setattr(images_lib, "finite_batches", no_reading)
  result = evaluate_command.evaluate(workdir, metrics="fid", features="inception", num_samples=20,
                                     reference_stats=str(path))
  state, _ = sample_lib.load_state(workdir)
  fake = image_quality._Features(network, 250).samples(state, 20)
  assert result["fid"] == pytest.approx(metrics.frechet_distance_from_statistics(
      published, metrics.feature_statistics(fake)), rel=1e-6)
  assert result["evaluation"]["reference"] == {"reference_stats": str(path)}
  # Statistics of features of another dimension are refused in one line.
  other = tmp_path / "other.npz"
  np.savez(other, mu=np.zeros(3), sigma=np.eye(3))
  with pytest.raises(experiment.RunError, match="3-dimensional features, the features here "
                     "have 12") as error:
    evaluate_command.evaluate(workdir, metrics="fid", features="inception", num_samples=20,
                              reference_stats=str(other))
  assert "\n" not in str(error.value)


def test_the_real_feature_cache_is_a_published_statistics_file(trained_run, tmp_path):
  _, config = trained_run
  network = inception_like_network(seed=6)
  features, _ = image_quality.real_features_with_labels(config.data, network, num_real=0,
                                                        batch_size=8, stats_dir=tmp_path)
  assert len(features) == 24  # 0: the whole train split
  (path,) = tmp_path.glob("folder-inception-all-*.npz")
  statistics = metrics.feature_statistics(features)
  loaded = metrics.load_statistics(path, dim=network.dim)
  np.testing.assert_array_equal(loaded.mean, statistics.mean)
  np.testing.assert_array_equal(loaded.covariance, statistics.covariance)
  with np.load(path) as stored:
    assert json.loads(str(stored["protocol"])) == {
        "dataset": "folder", "split": "train", "num_real": 24,
        "feature_network": "inception-test-6"}
  # pytorch-fid reads it as it reads its own --save-stats files.
  fid_score = import_test_extra("pytorch_fid.fid_score")
  mu, sigma = fid_score.compute_statistics_of_path(str(path), None, 1, network.dim, "cpu")
  np.testing.assert_array_equal(mu, statistics.mean)
  np.testing.assert_array_equal(sigma, statistics.covariance)
