"""benchmarks/torch_peers.py: its PyTorch networks match ganjax's parameter for parameter, and
its command prints one JSON line with the documented fields."""
import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import regularizers
from ganjax.models import biggan, dcgan, resnet

if os.environ.get("CI"):
  import torch  # pylint: disable=g-import-not-at-top  (a CI run must fail, not skip, without it)
else:
  torch = pytest.importorskip("torch")  # the fid-test extra's

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "benchmarks",
                     "torch_peers.py")


def _load_peers():
  spec = importlib.util.spec_from_file_location("torch_peers", _PATH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


peers = _load_peers()
_LABELS = jnp.zeros((2,), jnp.int32)


def _flax_networks(workload):
  """(generator, generator args, discriminator, discriminator args) of the experiment."""
  if workload == "dcgan64":
    return (dcgan.DCGANGenerator(image_shape=(64, 64, 3), base_features=64), (jnp.zeros((2, 100)),),
            dcgan.DCGANDiscriminator(image_shape=(64, 64, 3), base_features=64),
            (jnp.zeros((2, 64, 64, 3)),))
  if workload == "sngan32":
    return (resnet.ResNetGenerator(channels=3, features=256), (jnp.zeros((2, 128)),),
            resnet.ResNetDiscriminator(features=128, spectral_norm=True),
            (jnp.zeros((2, 32, 32, 3)),))
  return (biggan.BigGANGenerator(channels=3, num_classes=10, ch=64, shared_dim=128,
                                 attention_resolution=16), (jnp.zeros((2, 128)), _LABELS),
          biggan.BigGANDiscriminator(num_classes=10, ch=64, attention_resolution=16,
                                     conditioning="projection"),
          (jnp.zeros((2, 32, 32, 3)), _LABELS))


def _flax_params(module, args):
  return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, train=True))["params"]


def _count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def _build(workload):
  return peers.BUILDERS[workload](2, torch.device("cpu"), torch.contiguous_format)


@pytest.mark.parametrize("workload", peers.WORKLOADS)
def test_parameter_counts_match_ganjax(workload):
  g, d, _, _ = _build(workload)
  flax_g, g_args, flax_d, d_args = _flax_networks(workload)
  assert sum(p.numel() for p in g.parameters()) == _count(_flax_params(flax_g, g_args))
  assert sum(p.numel() for p in d.parameters()) == _count(_flax_params(flax_d, d_args))


def test_biggan_orthogonal_set_matches_ganjax():
  """The peer regularises the G weights that `regularizers.orthogonal_penalty` does."""
  g, _, _, _ = _build("biggan32")
  shared = {id(p) for p in g.shared.parameters()}
  torch_sizes = sorted(p.numel() for p in g.parameters() if p.ndim >= 2 and id(p) not in shared)
  flax_g, g_args, _, _ = _flax_networks("biggan32")
  flax_sizes = sorted(
      int(np.prod(leaf.shape))
      for path, leaf in jax.tree_util.tree_leaves_with_path(_flax_params(flax_g, g_args))
      if leaf.ndim >= 2 and "shared_embedding" not in regularizers._path_names(path))
  assert torch_sizes == flax_sizes
  assert len(torch_sizes) == 27


@pytest.mark.parametrize("workload", peers.WORKLOADS)
def test_networks_map_latents_to_images_to_logits(workload):
  g, d, _, _ = _build(workload)
  size = 64 if workload == "dcgan64" else 32
  latent_dim = 100 if workload == "dcgan64" else 128
  labels = (torch.tensor([3, 7]),) if workload == "biggan32" else ()
  with torch.no_grad():
    images = g(torch.randn(2, latent_dim), *labels)
    logits = d(images, *labels)
  assert images.shape == (2, 3, size, size)
  assert float(images.abs().max()) <= 1.0
  assert logits.shape == (2,)


def test_command_prints_one_json_line(capsys):
  peers.main(["dcgan64", "--batch", "2", "--steps", "1", "--repeats", "1", "--warmup", "1",
              "--device", "cpu"])
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 1
  result = json.loads(lines[0])
  for field in ("workload", "batch", "n_critic", "mode", "dtype", "channels_last", "device",
                "device_name", "torch", "tf32", "ms_per_step_median", "images_per_s",
                "d_steps_per_s", "compile_s", "peak_memory_bytes", "threads", "params_g",
                "params_d"):
    assert field in result
  assert (result["workload"], result["batch"], result["n_critic"]) == ("dcgan64", 2, 1)
  assert result["device"] == "cpu" and result["peak_memory_bytes"] is None
  assert result["tf32"] is False
  assert result["images_per_s"] == pytest.approx(2 / (result["ms_per_step_median"] / 1e3),
                                                 rel=1e-2)
  assert np.isfinite(result["loss_d"]) and np.isfinite(result["loss_g"])
