"""StyleGAN2's training step: compile time, ms per step, images per second and (on a GPU) peak
memory, for the fused and the non-fused modulated convolution, in alternating rounds in one run.

  python benchmarks/stylegan2_throughput.py                         # the CPU rows
  python benchmarks/stylegan2_throughput.py --rows=gpu --out=sg2.json  # on a GPU

A step is `ganjax.train.train_step` of the experiment's whole update (one discriminator and one
generator update, lazy R1 every 16 discriminator updates, path-length regularisation every 4
generator updates where the experiment has it, ADA off, one fixed real batch on the device), so
`--steps` per round is a multiple of 16 by default: each round holds the regularised steps in
their proportion. Rows (experiment, resolution, batch, widths):

  cpu   tiny32       experiments/cifar10_stylegan2_ada.py, channel_base 1024 and channel_max 32
                     (32 channels at 4 to 32), w of 64, batch 16, unconditional
  gpu   cifar32      the ADA code's CIFAR-10 configuration as is (512 channels, batch 64,
                     class-conditional)
        configf64    experiments/celeba64_stylegan2.py: config F at 64x64 (batch 32, path length
                     and style mixing on)

each with fused=True and False (`model.*_kwargs.fused_modconv`, the generator's), and on a GPU
with model dtype 'auto' (bfloat16 for the 4 highest resolutions, as the reference's float16) and
'float32'. Each variant is compiled first (`compile_s`: the first call's wall time), then each
round times `--steps` steps of every variant in turn. Prints and writes (--out) one JSON object
per variant: median ms per step over the rounds, images per second, the median ratio to the
row's first variant in the same rounds, peak device memory where the backend reports it
(`memory_stats()['peak_bytes_in_use']`, the whole process's, so it grows over the rows), the
device and the 1-minute load average.
"""
import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import jax

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from ganjax import experiment  # pylint: disable=wrong-import-position
from ganjax import train  # pylint: disable=wrong-import-position

from _trees import load_experiment  # pylint: disable=wrong-import-position
from step_throughput import (  # pylint: disable=wrong-import-position
    NO_ADA, dtype_fields, fixed_real_batch, peak_memory_bytes, set_field, timed)

ROWS = {
    "tiny32": ("cifar10_stylegan2_ada", 16, {
        "conditional.enabled": False,
        "model.generator_kwargs.channel_base": 1024, "model.generator_kwargs.channel_max": 32,
        "model.discriminator_kwargs.channel_base": 1024,
        "model.discriminator_kwargs.channel_max": 32, "model.generator_kwargs.w_dim": 64,
        "model.latent_dim": 64}),
    "cifar32": ("cifar10_stylegan2_ada", 64, {}),
    "configf64": ("celeba64_stylegan2", 32, {}),
}
GROUPS = {"cpu": ("tiny32",), "gpu": ("cifar32", "configf64")}


def variants(row, dtypes):
  """(name, config) of each variant of a row."""
  file_name, batch, fields = ROWS[row]
  for dtype in dtypes:
    for fused in (True, False):
      config = load_experiment(file_name, None)
      for dotted, value in {**fields, "train.batch_size": batch, **NO_ADA,
                            "model.generator_kwargs.fused_modconv": fused,
                            **dtype_fields(dtype)}.items():
        set_field(config, dotted, value)
      yield f"{row}_{'fused' if fused else 'unfused'}_{dtype}", config


def prepare(config):
  """(step function state -> state, the initial state, the batch size)."""
  built = experiment.build(config, check_data=False)
  state = built.create_state(0)
  real = fixed_real_batch(built.spec, built.data_shape)
  step = train.jit(train.adversarial_update, donate_argnums=0)
  return (lambda state: step(state, real)[0]), state, config.train.batch_size


def peak_memory_gib():
  peak = peak_memory_bytes()
  return None if peak is None else round(peak / 2**30, 3)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rows", default="cpu", help="'cpu', 'gpu' or comma-separated rows")
  parser.add_argument("--steps", type=int, default=16, help="steps per variant per round")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--dtypes", default=None,
                      help="model dtypes (default: 'float32' on a CPU, 'auto,float32' else)")
  parser.add_argument("--out", default=None, help="also write the JSON lines to this file")
  args = parser.parse_args()
  rows = GROUPS.get(args.rows, tuple(args.rows.split(",")))
  dtypes = (args.dtypes or ("float32" if jax.default_backend() == "cpu" else "auto,float32"))
  results = []
  for row in rows:
    fns, states, compile_s, batches = {}, {}, {}, {}
    for name, config in variants(row, dtypes.split(",")):
      fns[name], state, batches[name] = prepare(config)
      start = time.perf_counter()
      states[name] = jax.block_until_ready(fns[name](state))
      compile_s[name] = time.perf_counter() - start
    seconds = {name: [] for name in fns}
    for _ in range(args.rounds):
      for name in fns:
        states[name], wall = timed(fns[name], states[name], args.steps)
        seconds[name].append(wall / args.steps)
    first = next(iter(fns))
    for name in fns:
      ms = statistics.median(seconds[name]) * 1e3
      result = {"variant": name, "batch": batches[name], "ms_per_step": round(ms, 2),
                "images_per_s": round(batches[name] / ms * 1e3, 1),
                "ratio_to_first": round(statistics.median(
                    s / f for s, f in zip(seconds[name], seconds[first])), 3),
                "compile_s": round(compile_s[name], 2), "peak_memory_gib": peak_memory_gib(),
                "steps": args.steps, "rounds": args.rounds,
                "device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
                "loadavg_1m": round(os.getloadavg()[0], 2)}
      results.append(result)
      print(json.dumps(result), flush=True)
  if args.out:
    pathlib.Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in results))


if __name__ == "__main__":
  main()
