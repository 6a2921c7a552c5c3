"""Where the ring_mlp step's time goes on a CPU, and the floor under it.

The ring step (step_throughput.py's ring_mlp, batch 512, z of 256 dimensions, --reuse-fakes) is
timed against its parts, alternately in rounds in one run:

  step          one `train.train_step` (a discriminator and a generator update; the generator
                update reuses the discriminator update's fakes, so one latent draw per step)
  draws         the step's random draws alone, as the step makes them: the latents (batch x 256
                normals, each example from its own key folded with its index in the global
                batch, so that the numbers do not depend on the device count) and the ring's
                real samples
  draws_single  the same number of normals drawn as one array from one key (no per-example
                keys: what the per-example derivation costs on top of the bits themselves)
  matmul        the CPU's matmul rate, a jitted 2048 x 2048 float32 product
                (step_throughput.matmul_flops_per_s)

and prints one JSON line: the medians over the rounds, the step's FLOPs (XLA's cost analysis,
step_throughput.step_flops), `floor_ms` = FLOPs / matmul rate (the step's arithmetic at the
matmul rate), `floor_plus_draws_ms`, and with --reference PYTHON the PyTorch reference's ms per
step (../shared/bench/torch_reference.py, run once per round) and `target_3x_ms` = a third of it.

Usage:
  python benchmarks/ring_budget.py --rounds 5
  python benchmarks/ring_budget.py --rounds 5 --reference .venv/bin/python
"""
import argparse
import json
import os
import statistics
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import step_throughput  # pylint: disable=wrong-import-position
from ganjax import compilation  # pylint: disable=wrong-import-position
from ganjax import train  # pylint: disable=wrong-import-position


def ms_per_call(fn, arg, calls):
  """Wall milliseconds per call of `calls` calls of fn(arg) (the outputs not chained)."""
  start = time.perf_counter()
  for _ in range(calls):
    output = fn(arg)
  jax.block_until_ready(output)
  return (time.perf_counter() - start) / calls * 1e3


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=512)
  parser.add_argument("--steps", type=int, default=50, help="calls per timed block")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--reference", metavar="PYTHON",
                      help="interpreter with torch, to run the PyTorch reference each round")
  args = parser.parse_args()

  *players, real = step_throughput.build("ring_mlp", args.batch, reuse_fakes=True)
  state = train.create_state(*players, seed=0)
  spec = state.spec
  flops = step_throughput.step_flops(state, real)["flops_per_step"]
  step = lambda s: train.train_step(s, real)[0]

  def draws(key):
    return (train._latents(state, key, None, 1),  # pylint: disable=protected-access
            train._real_batch(state, None, key, None, 1))  # pylint: disable=protected-access

  draws = compilation.jit(draws)
  draws_single = compilation.jit(
      lambda key: jax.random.normal(key, (spec.batch_size, spec.latent_dim)))
  key = jax.random.key(1)
  state = jax.block_until_ready(step(state))
  jax.block_until_ready((draws(key), draws_single(key)))

  times = {"step": [], "draws": [], "draws_single": [], "matmul_flops_per_s": [], "peer": []}
  for _ in range(args.rounds):
    state, seconds = step_throughput.timed(step, state, args.steps)
    times["step"].append(seconds / args.steps * 1e3)
    times["draws"].append(ms_per_call(draws, key, args.steps))
    times["draws_single"].append(ms_per_call(draws_single, key, args.steps))
    times["matmul_flops_per_s"].append(step_throughput.matmul_flops_per_s(
        "float32", n=2048, calls=5, repeats=3))
    if args.reference:
      command = step_throughput.reference_command(
          args.reference, step_throughput.REFERENCE_SCRIPT, "ring_mlp", args.batch, args.steps, 3)
      times["peer"].append(step_throughput.run_peer(command)["ms_per_step_median"])

  median = {name: statistics.median(values) for name, values in times.items() if values}
  floor_ms = flops / median["matmul_flops_per_s"] * 1e3
  line = {"workload": "ring_mlp", "batch": args.batch, "reuse_fakes": True,
          "rounds": args.rounds, "steps": args.steps,
          "step_ms": round(median["step"], 3), "draws_ms": round(median["draws"], 3),
          "draws_single_ms": round(median["draws_single"], 3),
          "matmul_gflops_per_s": round(median["matmul_flops_per_s"] / 1e9, 1),
          "flops_per_step": flops, "floor_ms": round(floor_ms, 3),
          "floor_plus_draws_ms": round(floor_ms + median["draws"], 3),
          "draws_share_of_step": round(median["draws"] / median["step"], 3),
          "step_matmul_rate_fraction": round(floor_ms / median["step"], 3),
          "round_step_ms": [round(x, 3) for x in times["step"]],
          "round_draws_ms": [round(x, 3) for x in times["draws"]],
          **step_throughput.device_fields()}
  if "peer" in median:
    line.update(peer_ms=round(median["peer"], 3), target_3x_ms=round(median["peer"] / 3, 3),
                speedup=round(median["peer"] / median["step"], 3),
                round_peer_ms=[round(x, 3) for x in times["peer"]])
  print(json.dumps(line))


if __name__ == "__main__":
  main()
