"""Throughput of the FID Inception network (`inception.extract_features`), optionally against
pytorch-fid's.

The weights are random (`inception.random_state_dict`), so no weight file is needed; the time
taken does not depend on the weights' values. The images, uniform in [0, 1] and of side `--size`,
are put on the device once; every image is resized to 299x299 inside the timed call, as FID
does, so the network's cost is nearly the same for every `--size`.

Usage:
  python benchmarks/inception_throughput.py --batch 16 --size 32
  python benchmarks/inception_throughput.py --batch 16 --size 32 --reference

Prints one JSON line: `backend`, `device_kind`, `batch`, `size`, `compile_s` (wall time of the
first call, compilation included), `ms_per_batch_median` (median of `--repeats` timed calls after
`--warmup` untimed ones) and `features_per_s`, with the 1-minute load average (other jobs skew
CPU timings).

--reference (needs the `fid-test` extra) also runs pytorch-fid 0.3.0's `InceptionV3([3])` on the
CPU with the same weights and images (torch's own thread count) and adds its median, features
per second, `speedup` (pytorch-fid's time divided by ganjax's: above 1, ganjax is faster) and
`max_abs_diff` of the features, with `max_abs_feature` to judge it by.
"""
import argparse
import json
import os
import statistics
import time

import jax
import numpy as np

from ganjax.models import inception


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=16, help="images per call")
  parser.add_argument("--size", type=int, default=32, help="side of the square input images")
  parser.add_argument("--repeats", type=int, default=5, help="timed calls")
  parser.add_argument("--warmup", type=int, default=1, help="untimed calls after the first")
  parser.add_argument("--reference", action="store_true",
                      help="also time pytorch-fid's network on the CPU and compare features")
  return parser.parse_args(argv)


def median_ms(fn, repeats):
  """Median wall milliseconds of `repeats` calls of fn (which blocks until its result is ready)."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append((time.perf_counter() - start) * 1e3)
  return statistics.median(times)


def pytorch_fid_network(state_dict):
  """pytorch-fid's `InceptionV3([3])` in evaluation mode with the given weights in place of the
  download (its classifier, which the features do not use, random)."""
  import torch
  import torchvision
  from pytorch_fid import inception as fid_inception

  full = torchvision.models.inception.Inception3(num_classes=1008, aux_logits=False,
                                                 init_weights=False).state_dict()
  full.update({key: torch.from_numpy(value) for key, value in state_dict.items()})
  original = fid_inception.load_state_dict_from_url
  fid_inception.load_state_dict_from_url = lambda *args, **kwargs: full
  try:
    return fid_inception.InceptionV3([3]).eval()
  finally:
    fid_inception.load_state_dict_from_url = original


def reference(args, state_dict, images, features, ganjax_ms):
  """pytorch-fid's figures on the same weights and images, and the features' difference."""
  import torch

  network = pytorch_fid_network(state_dict)
  inputs = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())

  def run():
    with torch.no_grad():
      return network(inputs)[0]

  want = run()[:, :, 0, 0].numpy()
  for _ in range(args.warmup):
    run()
  torch_ms = median_ms(run, args.repeats)
  return {"pytorch_fid_ms_per_batch_median": round(torch_ms, 2),
          "pytorch_fid_features_per_s": round(args.batch / torch_ms * 1e3, 2),
          "pytorch_fid_threads": torch.get_num_threads(),
          "speedup": round(torch_ms / ganjax_ms, 3),
          "max_abs_diff": float(np.abs(np.asarray(features) - want).max()),
          "max_abs_feature": float(np.abs(want).max())}


def main(argv=None):
  args = parse_args(argv)
  state_dict = inception.random_state_dict(seed=0)
  variables = inception.convert_state_dict(state_dict)
  images = np.random.default_rng(0).uniform(0, 1, (args.batch, args.size, args.size, 3))
  images = images.astype(np.float32)
  device_images = jax.device_put(images)

  def run():
    return jax.block_until_ready(inception.extract_features(variables, device_images))

  start = time.perf_counter()
  features = run()
  compile_s = time.perf_counter() - start
  for _ in range(args.warmup):
    run()
  ms = median_ms(run, args.repeats)
  record = {"backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind,
            "batch": args.batch, "size": args.size, "compile_s": round(compile_s, 2),
            "ms_per_batch_median": round(ms, 2),
            "features_per_s": round(args.batch / ms * 1e3, 2), "repeats": args.repeats,
            "warmup": args.warmup}
  if args.reference:
    record.update(reference(args, state_dict, images, features, ms))
  record["loadavg_1m"] = round(os.getloadavg()[0], 2)
  print(json.dumps(record))


if __name__ == "__main__":
  main()
