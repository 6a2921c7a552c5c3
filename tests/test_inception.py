"""Tests of ganjax.models.inception: the FID Inception network against pytorch-fid.

The port test builds pytorch-fid 0.3.0's own `InceptionV3([3])` with random weights in place of
the download, saves those weights with `torch.save` in both of PyTorch's file formats, loads
them the way the real weight file is loaded (`load_variables`: hash check, torch-free reader,
conversion, cache) and compares the features of the same images. The tests that need PyTorch,
torchvision and pytorch-fid (the `fid-test` extra) skip without them, or fail where the
environment variable CI is set (to anything but the empty string); the others need none of them.

Every network evaluation here has a batch of 2, so the network compiles once for the whole file.
"""
import hashlib
import importlib
import os
import pickle
import shutil
import sys

import jax
import numpy as np
import pytest

from ganjax.models import inception

# Features are compared elementwise against the largest feature magnitude. float32 through about
# 95 convolutions and BatchNorms, summed in different orders by XLA and by PyTorch's CPU kernels,
# stayed within 5e-7 of it (inputs of 32x32 to 512x512 on 2 CPU cores); a wrong layer (padding,
# pooling, branch order, weight layout) changes features by amounts of the features' own order.
FEATURE_RTOL = 1e-5
# The resize is a blend of at most four pixels of values in [0, 1].
RESIZE_ATOL = 1e-6


def assert_close(got, want, rtol):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=0, atol=rtol * np.abs(want).max())


def assert_trees_equal(got, want):
  assert jax.tree.structure(got) == jax.tree.structure(want)
  jax.tree.map(lambda g, w: np.testing.assert_array_equal(np.asarray(g), np.asarray(w)), got, want)


def error_message(error_type, fn, *args, **kwargs):
  """The message of the `error_type` that fn raises, checked to be one line."""
  with pytest.raises(error_type) as error:
    fn(*args, **kwargs)
  message = str(error.value)
  assert "\n" not in message
  return message


def sha256(path):
  with open(path, "rb") as file:
    return hashlib.sha256(file.read()).hexdigest()


def images(seed, shape):
  return np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)


@pytest.fixture(scope="module")
def state_dict():
  return inception.random_state_dict(seed=0)


@pytest.fixture(scope="module")
def variables(state_dict):
  return inception.convert_state_dict(state_dict)


FID_TEST_INSTALL = 'pip install -e ".[fid-test]"'


def import_test_extra(name):
  """The module `name` of the fid-test extra. Without it the test is skipped, or fails where the
  environment variable CI is set: a CI run must not pass by skipping the port's checks."""
  try:
    return importlib.import_module(name)
  except ImportError as error:
    reason = str(error)
  message = f"{name} is missing ({reason}); the fid-test extra installs it: {FID_TEST_INSTALL}"
  if os.environ.get("CI"):
    pytest.fail(message, pytrace=False)
  pytest.skip(message)


@pytest.mark.parametrize("ci", [None, "", "1"], ids=["unset", "empty", "set"])
def test_a_missing_test_extra_skips_or_fails_under_ci(monkeypatch, ci):
  monkeypatch.setitem(sys.modules, "pytorch_fid", None)  # import pytorch_fid raises ImportError
  if ci is None:
    monkeypatch.delenv("CI", raising=False)
  else:
    monkeypatch.setenv("CI", ci)
  # Both caught here, so that a wrong outcome fails this test instead of skipping it.
  with pytest.raises((pytest.skip.Exception, pytest.fail.Exception)) as error:
    import_test_extra("pytorch_fid")
  assert error.type is (pytest.fail.Exception if ci else pytest.skip.Exception)
  assert str(error.value).startswith("pytorch_fid is missing")
  assert FID_TEST_INSTALL in str(error.value)


@pytest.fixture(scope="module")
def torch_modules():
  return tuple(import_test_extra(name) for name in ("torch", "torchvision",
                                                    "pytorch_fid.inception"))


@pytest.fixture(scope="module")
def torch_state_dict(torch_modules, state_dict):
  """`state_dict` with the keys of torchvision's Inception-v3 as pytorch-fid builds it: BatchNorm's
  counters added."""
  torch, torchvision, _ = torch_modules
  full = torchvision.models.inception.Inception3(num_classes=1008, aux_logits=False,
                                                 init_weights=False).state_dict()
  assert set(state_dict) <= set(full)
  for key in full:
    if key in state_dict:
      full[key] = torch.from_numpy(state_dict[key])
  return full


@pytest.fixture(scope="module")
def pytorch_fid_model(torch_modules, torch_state_dict):
  """pytorch-fid's `InceptionV3([3])` in evaluation mode, the download replaced by the weights."""
  _, _, fid_inception = torch_modules
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(fid_inception, "load_state_dict_from_url",
                  lambda *args, **kwargs: torch_state_dict)
    return fid_inception.InceptionV3([3]).eval()


@pytest.fixture(scope="module")
def weight_files(torch_modules, torch_state_dict, tmp_path_factory):
  """The weights saved in zip and legacy format, named as pytorch-fid names its file."""
  torch, _, _ = torch_modules
  folder = tmp_path_factory.mktemp("weights")
  files = {}
  for name, zip_format in (("zip", True), ("legacy", False)):
    temporary = folder / f"{name}.pth"
    torch.save(torch_state_dict, temporary, _use_new_zipfile_serialization=zip_format)
    digest = sha256(temporary)
    path = folder / f"pt_inception-2015-12-05-{digest[:8]}.pth"
    os.replace(temporary, path)
    files[name] = (path, digest)
  return files


def test_state_dict_keys_and_shapes_are_torchvisions(torch_modules, torch_state_dict):
  ignored = [key for key in torch_state_dict if key.endswith("num_batches_tracked")]
  assert len(ignored) == 94
  assert inception.state_dict_shapes() == {
      key: tuple(value.shape) for key, value in torch_state_dict.items() if key not in ignored}


def test_features_match_pytorch_fid(torch_modules, pytorch_fid_model, weight_files, variables,
                                    tmp_path):
  torch, _, _ = torch_modules
  path, digest = weight_files["zip"]
  loaded = inception.load_variables(path, sha256_prefix=digest[:8], cache_dir=tmp_path)
  assert_trees_equal(loaded, variables)
  for seed, shape in ((0, (2, 32, 32, 3)), (1, (2, 64, 48, 3))):
    batch = images(seed, shape)
    features = inception.extract_features(loaded, batch)
    with torch.no_grad():
      (want,) = pytorch_fid_model(torch.from_numpy(batch.transpose(0, 3, 1, 2)))
    want = want.numpy()
    assert want.shape == (2, inception.FEATURE_DIM, 1, 1)
    assert features.shape == (2, inception.FEATURE_DIM) and features.dtype == np.float32
    assert np.abs(want).max() > 0.1  # BatchNorm's random statistics kept the features alive
    assert_close(features, want[:, :, 0, 0], FEATURE_RTOL)


def test_legacy_format_gives_the_same_variables(weight_files, variables, tmp_path):
  path, digest = weight_files["legacy"]
  with open(path, "rb") as file:
    assert file.read(2) != b"PK"  # not a zip archive
  loaded = inception.load_variables(path, sha256_prefix=digest[:8], cache_dir=tmp_path)
  assert_trees_equal(loaded, variables)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reader_reads_nested_dtypes_and_views(torch_modules, tmp_path, zip_format):
  torch, _, _ = torch_modules
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
  checkpoint = {
      "model": {
          "weight": base,
          "transposed": base.t(),                                   # non-contiguous
          "every_other": torch.arange(10, dtype=torch.int64)[2:9:2],  # offset and stride
          "block": base[1:3, 2:5],                                  # view of a shared storage
          "half": torch.linspace(-1, 1, 5, dtype=torch.float16),
          "bfloat16": torch.linspace(-2, 2, 3, dtype=torch.bfloat16),
          "mask": torch.tensor([True, False, True]),
          "scalar": torch.tensor(3, dtype=torch.int32),
      },
      "layers": [torch.ones(2, dtype=torch.float64)],
      "step": 7,
      "dtype": torch.float16,
  }
  path = tmp_path / "checkpoint.pth"
  torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)
  tensors = inception.read_torch_state_dict(path)
  want = {f"model.{key}": value for key, value in checkpoint["model"].items()}
  want["layers.0"] = checkpoint["layers"][0]
  assert sorted(tensors) == sorted(want)
  for key, value in want.items():
    got = tensors[key]
    assert got.shape == tuple(value.shape), key
    if value.dtype == torch.bfloat16:
      assert got.dtype.name == "bfloat16"
      np.testing.assert_array_equal(got.astype(np.float32), value.float().numpy())
    else:
      assert got.dtype == value.numpy().dtype, key
      np.testing.assert_array_equal(got, value.numpy())


def test_reader_refuses_other_globals(tmp_path):
  class Payload:
    def __reduce__(self):
      return (os.system, ("true",))

  path = tmp_path / "payload.pth"
  with open(path, "wb") as file:
    for header in (inception._MAGIC_NUMBER, inception._PROTOCOL_VERSION,
                   {"protocol_version": inception._PROTOCOL_VERSION, "little_endian": True}):
      pickle.dump(header, file, protocol=2)
    pickle.dump({"weight": Payload()}, file, protocol=2)
  with pytest.raises(pickle.UnpicklingError, match="not allowed"):
    inception.read_torch_state_dict(path)


def test_reader_rejects_other_files(tmp_path):
  path = tmp_path / "not_a_checkpoint.pth"
  path.write_bytes(b"\x00" * 64)
  with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
    inception.read_torch_state_dict(path)


@pytest.mark.parametrize("in_shape,out_shape", [
    ((28, 28), (299, 299)), ((32, 32), (299, 299)), ((64, 64), (299, 299)),
    ((512, 512), (299, 299)), ((300, 300), (299, 299)), ((40, 64), (299, 299)),
    ((300, 90), (299, 299)), ((50, 70), (31, 45)), ((299, 299), (299, 299))])
def test_resize_matches_torch_interpolate(torch_modules, in_shape, out_shape):
  torch, _, _ = torch_modules
  batch = images(2, (2, *in_shape, 3))
  got = inception.resize_bilinear(batch, *out_shape)
  want = torch.nn.functional.interpolate(torch.from_numpy(batch.transpose(0, 3, 1, 2)),
                                         size=out_shape, mode="bilinear", align_corners=False)
  assert got.shape == (2, *out_shape, 3)
  np.testing.assert_allclose(np.asarray(got), want.numpy().transpose(0, 2, 3, 1), rtol=0,
                             atol=RESIZE_ATOL)


def test_one_channel_is_repeated_to_three(variables):
  gray = images(3, (2, 32, 32, 1))
  rgb = inception.extract_features(variables, np.repeat(gray, 3, axis=-1))
  assert np.abs(rgb).max() > 0.1
  # The resize is compiled for one channel and for three, programs that may round the blends
  # differently; the features then agree as closely as the port's do with pytorch-fid's, whose
  # resize rounds differently again.
  assert_close(inception.extract_features(variables, gray), rgb, FEATURE_RTOL)


def test_module_apply_shapes(variables):
  for shape in ((3, 32, 32, 1), (1, 80, 120, 3)):
    features = jax.eval_shape(inception.FIDInceptionV3().apply, variables,
                              jax.ShapeDtypeStruct(shape, np.float32))
    assert features.shape == (shape[0], inception.FEATURE_DIM)
  with pytest.raises(ValueError, match="1 or 3 channels"):
    jax.eval_shape(inception.FIDInceptionV3().apply, variables,
                   jax.ShapeDtypeStruct((1, 32, 32, 2), np.float32))


def test_convert_names_missing_unexpected_and_misshapen_keys(state_dict):
  broken = dict(state_dict)
  del broken["Mixed_6b.branch7x7_2.conv.weight"]
  broken["Mixed_5b.extra.conv.weight"] = np.zeros((1, 1, 1, 1), np.float32)
  broken["Conv2d_1a_3x3.bn.running_var"] = np.ones(31, np.float32)
  message = error_message(ValueError, inception.convert_state_dict, broken)
  assert "missing keys: Mixed_6b.branch7x7_2.conv.weight" in message
  assert "unexpected keys: Mixed_5b.extra.conv.weight" in message
  assert "Conv2d_1a_3x3.bn.running_var (31,) (expected (32,))" in message


def test_convert_layout(state_dict, variables):
  key = "Mixed_6b.branch7x7_2.conv.weight"  # a 1x7 kernel: (out, in, 1, 7) -> (1, 7, in, out)
  kernel = variables["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"]
  np.testing.assert_array_equal(np.asarray(kernel), state_dict[key].transpose(2, 3, 1, 0))
  batch_norm = "Mixed_7c.branch_pool.bn."
  assert set(variables) == {"params", "batch_stats"}
  stats = variables["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]
  params = variables["params"]["Mixed_7c"]["branch_pool"]["bn"]
  np.testing.assert_array_equal(stats["mean"], state_dict[batch_norm + "running_mean"])
  np.testing.assert_array_equal(stats["var"], state_dict[batch_norm + "running_var"])
  np.testing.assert_array_equal(params["scale"], state_dict[batch_norm + "weight"])
  np.testing.assert_array_equal(params["bias"], state_dict[batch_norm + "bias"])


def test_missing_weights_say_where_to_get_them(monkeypatch, tmp_path):
  monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
  for path in (None, tmp_path / "absent.pth"):
    message = error_message(FileNotFoundError, inception.load_variables, path, cache_dir=tmp_path)
    assert inception.WEIGHTS_URL in message and inception.WEIGHTS_ENV in message


def test_hash_mismatch_is_an_error(tmp_path):
  path = tmp_path / inception.WEIGHTS_FILE
  path.write_bytes(b"not the weights")
  message = error_message(ValueError, inception.load_variables, path, cache_dir=tmp_path)
  assert sha256(path) in message and inception.WEIGHTS_SHA256_PREFIX in message


def test_second_load_reads_the_cache(monkeypatch, tmp_path, state_dict, variables):
  """The environment variables give the file and the cache folder; the second load does not read
  the weight file's tensors."""
  weights = tmp_path / "downloads" / "weights.pth"
  weights.parent.mkdir()
  weights.write_bytes(b"stands for a weight file")
  digest = sha256(weights)
  monkeypatch.setenv(inception.WEIGHTS_ENV, str(weights))
  monkeypatch.setenv(inception.CACHE_ENV, str(tmp_path / "cache"))
  reads = []

  def read(path):
    reads.append(path)
    return state_dict

  monkeypatch.setattr(inception, "read_torch_state_dict", read)
  first = inception.load_variables(sha256_prefix=digest[:8])
  assert reads == [str(weights)]
  assert os.listdir(tmp_path / "cache") == [f"fid_inception_v2-{digest}.npz"]
  second = inception.load_variables(sha256_prefix=digest[:8])
  assert reads == [str(weights)]
  assert_trees_equal(first, variables)
  assert_trees_equal(second, variables)
  assert isinstance(second["params"], dict) and isinstance(second["params"]["Mixed_5b"], dict)

  # A cache that does not fit the network is rebuilt from the weight file.
  shutil.copy(weights, tmp_path / "cache" / f"fid_inception_v2-{digest}.npz")
  assert_trees_equal(inception.load_variables(sha256_prefix=digest[:8]), variables)
  assert len(reads) == 2


# ------------------------------------------------------------------------------------------------
# The original graph's input (TensorFlow 1's resize) and the Inception Score's logits


def tf1_resize_by_its_rule(image, height, width):
  """TensorFlow 1's ResizeBilinear (align_corners=False, no half-pixel centres), pixel by pixel
  as its kernel states it: output (y, x) samples the input at (y * in_h / out_h, x * in_w /
  out_w) (scales and products in float32), between floor and min(ceil, size - 1) of each
  coordinate, top = tl + (tr - tl) dx, bottom likewise, out = top + (bottom - top) dy."""
  in_height, in_width = image.shape[:2]
  scale_y = np.float32(in_height) / np.float32(height)
  scale_x = np.float32(in_width) / np.float32(width)
  out = np.zeros((height, width, image.shape[2]), np.float64)
  for y in range(height):
    source_y = np.float32(y) * scale_y
    top_y, bottom_y = int(np.floor(source_y)), min(int(np.ceil(source_y)), in_height - 1)
    dy = float(source_y - np.floor(source_y))
    for x in range(width):
      source_x = np.float32(x) * scale_x
      left, right = int(np.floor(source_x)), min(int(np.ceil(source_x)), in_width - 1)
      dx = float(source_x - np.floor(source_x))
      top = image[top_y, left] + (image[top_y, right] - image[top_y, left]) * dx
      bottom = image[bottom_y, left] + (image[bottom_y, right] - image[bottom_y, left]) * dx
      out[y, x] = top + (bottom - top) * dy
  return out


@pytest.mark.parametrize("in_shape,out_shape", [((32, 32), (299, 299)), ((28, 40), (299, 299)),
                                                ((64, 48), (31, 45))])
def test_tf1_resize_follows_tensorflow_1s_rule(in_shape, out_shape):
  # A ramp (pixel value = 8-bit level of its column plus its row) shows any shift of the grid.
  rows, columns = np.meshgrid(np.arange(in_shape[0]), np.arange(in_shape[1]), indexing="ij")
  ramp = ((rows * 3 + columns * 5) % 256).astype(np.float32)
  image = np.stack([ramp, ramp[::-1], 255 - ramp], axis=-1)
  got = np.asarray(inception.resize_bilinear_tf1(image[None], *out_shape))[0]
  # Blends of at most 4 values up to 255, in float32: a few ulps of 255.
  np.testing.assert_allclose(got, tf1_resize_by_its_rule(image, *out_shape), rtol=0, atol=1e-4)
  import tensorflow as tf  # the op itself, as the 2015 graph ran it
  want = tf.raw_ops.ResizeBilinear(images=image[None], size=out_shape, align_corners=False,
                                   half_pixel_centers=False).numpy()[0]
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
  # A different rule from PyTorch's (half-pixel centres): on the 32 -> 299 ramp by whole levels.
  pytorch = np.asarray(inception.resize_bilinear(image[None], *out_shape))[0]
  assert np.abs(pytorch - got).max() > 1.0


def test_preprocess_normalises_as_each_input_does():
  batch = np.full((1, 299, 299, 3), 128 / 255, np.float32)
  # pytorch-fid's 2x - 1 and the graph's (x - 128) / 128 of the 8-bit level 128.
  np.testing.assert_allclose(inception.preprocess(batch, resize="pytorch"), 2 * 128 / 255 - 1,
                             atol=1e-7)
  np.testing.assert_allclose(inception.preprocess(batch, resize="tf1"), 0.0, atol=1e-6)
  message = error_message(ValueError, inception.preprocess, batch, resize="bicubic")
  assert "'bicubic'" in message and "pytorch, tf1" in message


@pytest.fixture(scope="module")
def torch_fidelity_model(torch_modules, torch_state_dict, tmp_path_factory):
  """torch-fidelity's `FeatureExtractorInceptionV3` (the 2015 graph with its TF1 resize) with
  the random weights, asked for the pool features, the logits without and with the bias."""
  torch = torch_modules[0]
  extractor = import_test_extra("torch_fidelity.feature_extractor_inceptionv3")
  path = tmp_path_factory.mktemp("fidelity") / "weights.pth"
  torch.save({key: value for key, value in torch_state_dict.items()
              if not key.endswith("num_batches_tracked")}, path)
  return extractor.FeatureExtractorInceptionV3(
      "inception-v3-compat", ["2048", "logits_unbiased", "logits"],
      feature_extractor_weights_path=str(path))


def test_features_logits_and_inception_score_match_torch_fidelity(torch_modules,
                                                                  torch_fidelity_model,
                                                                  variables):
  torch = torch_modules[0]
  metric_isc = import_test_extra("torch_fidelity.metric_isc")
  from ganjax import metrics
  levels = np.random.default_rng(4).integers(0, 256, (10, 32, 32, 3)).astype(np.uint8)
  got_features, got_logits, want_features, want_logits, want_biased = [], [], [], [], []
  for start in range(0, 10, 2):  # batches of 2, as every network call in this file
    batch = levels[start:start + 2]
    features, logits = inception.extract_features_and_logits(
        variables, batch.astype(np.float32) / 255, resize="tf1")
    got_features.append(np.asarray(features))
    got_logits.append(np.asarray(logits))
    with torch.no_grad():
      pooled, unbiased, biased = torch_fidelity_model(torch.from_numpy(batch.transpose(0, 3, 1, 2)))
    want_features.append(pooled.numpy())
    want_logits.append(unbiased.numpy())
    want_biased.append(biased.numpy())
  got_logits, want_logits = np.concatenate(got_logits), np.concatenate(want_logits)
  assert np.abs(want_logits).max() > 1.0  # random weights that spread the classes
  assert_close(np.concatenate(got_features), np.concatenate(want_features), FEATURE_RTOL)
  assert_close(got_logits, want_logits, FEATURE_RTOL)
  # The bias is the one torch-fidelity's biased logits add.
  assert_close(got_logits + np.asarray(inception.logits_bias(variables)),
               np.concatenate(want_biased), FEATURE_RTOL)
  # The score in torch-fidelity's splits (its samples_shuffle off: the original code's order).
  want = metric_isc.isc_features_to_metric(torch.from_numpy(want_logits), splits=5,
                                           shuffle=False)
  got = metrics.inception_score(got_logits, splits=5)
  # Logits equal to ~1e-5 of their scale move exp(mean KL) by about as much.
  assert got["is"] == pytest.approx(want["inception_score_mean"], rel=1e-4)
  assert got["is_std"] == pytest.approx(want["inception_score_std"], rel=1e-3, abs=1e-6)
