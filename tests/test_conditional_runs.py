"""Class-conditional runs end to end: the conditional ring conditions, resumes exactly, and is
read back by ganjax.sample; conditional image runs on a labelled image folder; the config's
one-line errors."""
import json

import jax
import numpy as np
import pytest

from ganjax import experiment as experiment_lib
from ganjax import runner
from ganjax import sample as sample_lib
from ganjax import train
from ganjax.data import toy

from _trees import assert_same_leaves, load_experiment


def nearest_mode_accuracy(samples, labels, means, radius):
  """The fraction, averaged over classes, of class k's samples within `radius` of mode k, in
  numpy. The discs of radius 0.3 around the ring's modes (0.765 apart) are disjoint, so a
  generator whose samples do not depend on their label scores at most 1/8."""
  hits = np.linalg.norm(samples - means[labels], axis=1) < radius
  return np.mean([hits[labels == k].mean() for k in range(len(means))])


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_the_conditional_ring_puts_class_k_on_mode_k(tmp_path, conditioning):
  config = load_experiment("ring_conditional", None)
  config.model.discriminator_kwargs.conditioning = conditioning
  config.model.latent_dim = 16
  config.train.update({"steps": 1000, "batch_size": 256, "log_every": 500,
                       "checkpoint_every": 1000, "sample_every": 0})
  config.eval.every = 0
  summary = runner.train_and_evaluate(config, tmp_path)
  samples, labels = np.load(tmp_path / "samples.npy"), np.load(tmp_path / "labels.npy")
  np.testing.assert_array_equal(labels, np.arange(2500) % 8)
  accuracy = nearest_mode_accuracy(samples, labels, np.asarray(toy.ring().means), 0.3)
  # Chance is at most 1/8. After 1000 steps the projection discriminator measured 0.98 (seed 0);
  # ACGAN conditions more slowly and less evenly: 0.47, 0.42 and 0.96 for seeds 0, 1 and 2. The
  # bounds leave room for other CPUs' rounding, which moves a GAN's trajectory.
  assert accuracy > {"projection": 0.8, "acgan": 0.3}[conditioning], accuracy
  assert summary["classes_on_mode"] >= {"projection": 8, "acgan": 4}[conditioning]
  assert len(summary["per_class_accuracy"]) == 8
  # The recorded per-class measure is the high-quality (3 sigma) version of the same count.
  hq_hits = np.linalg.norm(samples - np.asarray(toy.ring().means)[labels], axis=1) < 0.03
  np.testing.assert_allclose(summary["label_accuracy"],
                             np.mean([hq_hits[labels == k].mean() for k in range(8)]),
                             rtol=1e-5)


def test_conditional_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
  straight, resumed = tmp_path / "straight", tmp_path / "resumed"
  config = load_experiment("ring_conditional")
  runner.train_and_evaluate(config, straight)
  config.train.steps = 100
  runner.train_and_evaluate(config, resumed)
  config.train.steps = 200
  runner.train_and_evaluate(config, resumed)
  state_straight, _ = sample_lib.load_state(straight)
  state_resumed, saved = sample_lib.load_state(resumed)
  assert int(state_resumed.step) == 200 and state_resumed.spec.num_classes == 8
  assert_same_leaves(state_resumed, state_straight)
  assert saved.conditional.num_classes == 8
  for name in ("samples.npy", "labels.npy"):
    np.testing.assert_array_equal(np.load(straight / name), np.load(resumed / name))


def test_sample_command_labels(tmp_path):
  runner.train_and_evaluate(load_experiment("ring_conditional"), tmp_path)
  state, _ = sample_lib.load_state(tmp_path)
  labels = sample_lib.parse_labels(None, 10, 8)
  np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
  np.testing.assert_array_equal(sample_lib.parse_labels("3,5", 5, 8), [3, 5, 3, 5, 3])
  np.testing.assert_array_equal(sample_lib.parse_labels("turn", 10, 8), np.arange(10) % 8)
  for value, message in (("8", r"in \[0, 8\)"), ("a", "comma-separated")):
    with pytest.raises(ValueError, match=message):
      sample_lib.parse_labels(value, 4, 8)
  with pytest.raises(ValueError, match="not class-conditional"):
    sample_lib.parse_labels("1", 4, 0)
  # Samples in batches of 3 equal one batch per latent key: sample i is made for labels[i].
  drawn = sample_lib.generate(state, 7, seed=2, batch_size=3, labels=np.full(7, 6, np.int32))
  key = jax.random.PRNGKey(2)
  expected = np.concatenate([
      train.sample(state, min(3, 7 - start), jax.random.fold_in(key, start),
                   np.full(min(3, 7 - start), 6, np.int32))
      for start in range(0, 7, 3)])
  # The command's batches run jitted, these op by op: XLA may fuse the float32 operations
  # differently (rounding only).
  np.testing.assert_allclose(drawn, expected, rtol=1e-6, atol=1e-6)
  # The final samples of the run are the fixed noise's, made for the classes in turn.
  final = experiment_lib.fixed_noise_samples(state, 2500, np.arange(2500) % 8)
  np.testing.assert_array_equal(np.load(tmp_path / "samples.npy"), final)


def test_conditional_config_errors_are_one_line(tmp_path):
  config = load_experiment("ring_conditional")
  config.model.generator = "dcgan"
  with pytest.raises(experiment_lib.RunError, match="not class-conditional") as error:
    runner.train_and_evaluate(config, tmp_path / "a")
  assert "\n" not in str(error.value) and "mlp" in str(error.value)
  config = load_experiment("ring_conditional")
  config.conditional.fake_labels = "balanced"
  with pytest.raises(experiment_lib.RunError, match="uniform, data"):
    runner.train_and_evaluate(config, tmp_path / "b")
  assert not (tmp_path / "a").exists() or not list((tmp_path / "a").iterdir())


def test_fake_labels_from_the_data_are_the_mixture_weights():
  config = load_experiment("ring_conditional")
  config.data.name = "mixture_1d"
  config.data.kwargs = {"means": (-2.0, 0.0, 2.0), "weights": (0.5, 0.3, 0.2)}
  config.model.generator_kwargs.output_dim = 1
  config.conditional.fake_labels = "data"
  spec = experiment_lib.build(config).spec
  assert spec.num_classes == 3 and spec.fake_label_weights == (0.5, 0.3, 0.2)


def test_runs_saved_before_the_conditional_fields_still_resume():
  current = experiment_lib.config_to_dict(load_experiment("ring"))
  saved = json.loads(json.dumps(current))
  del saved["conditional"], saved["penalty"]["orthogonal_weight"]
  assert experiment_lib.config_differences(saved, current) == []
  current["conditional"]["enabled"] = True
  assert experiment_lib.config_differences(saved, current) == ["conditional.enabled"]


def write_folder(root, counts, size=32):
  """An image folder <root>/train/<class>/<n>.png with counts[k] images of class k, each class
  its own colour plus noise."""
  from PIL import Image
  rng = np.random.default_rng(0)
  for k, count in enumerate(counts):
    directory = root / "train" / f"class_{k}"
    directory.mkdir(parents=True)
    colour = np.array([255 * (k % 2), 127 * (k % 3), 255 - 60 * k])
    for n in range(count):
      image = np.clip(colour + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
      Image.fromarray(image).save(directory / f"{n}.png")
  return root


@pytest.mark.parametrize("name", ["cifar10_sngan_projection", "cifar10_biggan"])
def test_conditional_image_run_on_a_labelled_folder(tmp_path, name):
  folder = write_folder(tmp_path / "images", (8, 8, 8))
  config = load_experiment(name)
  config.data.name, config.data.folder = "folder", str(folder)
  evaluated = name == "cifar10_sngan_projection"  # one of the two, to keep the test short
  config.eval.update({"metrics": "accuracy" if evaluated else "", "features": "classifier",
                      "classifier_steps": 20, "num_samples": 24, "num_real": 24,
                      "batch_size": 8})
  workdir = tmp_path / "run"
  summary = runner.train_and_evaluate(config, workdir)
  assert summary["step"] == 4
  np.testing.assert_array_equal(np.load(workdir / "labels.npy"), np.arange(24) % 3)
  if evaluated:
    # The classes in turn: 24 images, 8 of each class; the accuracy over 3 classes of 8 images.
    assert len(summary["per_class_accuracy"]) == 3
    assert summary["accuracy"] in {n / 24 for n in range(25)}
  # The class grid: one row of 8 images per class.
  from PIL import Image
  assert Image.open(workdir / "samples_0000004.png").size == (8 * 32, 3 * 32)
  # The number of classes is recorded, so the run is read back without its data.
  for path in sorted(folder.rglob("*.png")):
    path.unlink()
  state, saved = sample_lib.load_state(workdir)
  assert state.spec.num_classes == 3 and saved.conditional.num_classes == 3
  drawn = sample_lib.generate(state, 6, labels=np.array([0, 1, 2, 0, 1, 2], np.int32))
  assert drawn.shape == (6, 32, 32, 3) and np.isfinite(drawn).all()


def test_fake_labels_from_an_image_folder_follow_its_class_counts(tmp_path):
  folder = write_folder(tmp_path / "images", (6, 3, 1), size=8)
  config = load_experiment("cifar10_sngan_projection")
  config.data.name, config.data.folder, config.data.image_size = "folder", str(folder), 32
  config.conditional.fake_labels = "data"
  spec = experiment_lib.build(config).spec
  assert spec.num_classes == 3
  np.testing.assert_allclose(spec.fake_label_weights, (0.6, 0.3, 0.1))


def test_a_dataset_without_labels_cannot_be_conditional(tmp_path):
  config = load_experiment("cifar10_sngan_projection")
  config.data = load_experiment("celeba64_dcgan").data
  config.model.generator_kwargs.channels = 3
  with pytest.raises(experiment_lib.RunError, match="has no class labels"):
    experiment_lib.build(config, check_data=False)
