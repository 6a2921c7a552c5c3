"""Discriminator updates per step: unrolled in the compiled step, or an XLA while loop.

  python benchmarks/critic_loop.py --n_critic 2 --rounds 5

`train.adversarial_update` runs its n_critic discriminator updates unrolled when n_critic is a
Python int (`train._repeat`) and in `jax.lax.fori_loop` only for a critic warm-up schedule, whose
count is traced. This measures why, on the SNGAN ResNet at 32x32 (hinge loss, Adam, batch
--batch, width --width): the same step compiled both ways, timed in alternating rounds of
--steps steps in one process; it prints the median milliseconds per step of each, their ratio,
and checks that both give the same parameters (to float32 rounding).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganjax import models
from ganjax import train


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--n_critic", type=int, default=2)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--width", type=int, default=32)
  parser.add_argument("--steps", type=int, default=2)
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  generator = models.get_generator("resnet", channels=3, features=args.width)
  discriminator = models.get_discriminator("resnet", features=args.width)
  spec = train.GANSpec(loss="hinge", latent_dim=128, batch_size=args.batch,
                       n_critic=args.n_critic)
  adam = optax.adam(2e-4, b1=0.0, b2=0.9)
  state = train.create_state(generator, discriminator, adam, adam, spec, (32, 32, 3), 0)
  real = jax.random.uniform(jax.random.PRNGKey(1), (args.n_critic, args.batch, 32, 32, 3),
                            minval=-1.0, maxval=1.0)

  def looped(state, batch):
    unrolled = train._repeat
    train._repeat = lambda start, stop, body, carry: jax.lax.fori_loop(start, stop, body, carry)
    try:
      return train.adversarial_update(state, batch)
    finally:
      train._repeat = unrolled

  steps = {"unrolled": jax.jit(train.adversarial_update), "while_loop": jax.jit(looped)}
  states = {name: jax.tree.map(jnp.copy, state) for name in steps}
  compile_seconds = {}
  for name, step in steps.items():
    started = time.perf_counter()
    states[name] = jax.block_until_ready(step(states[name], real)[0])
    compile_seconds[name] = round(time.perf_counter() - started, 1)
  times = {name: [] for name in steps}
  for _ in range(args.rounds):
    for name, step in steps.items():
      started = time.perf_counter()
      for _ in range(args.steps):
        states[name], _ = step(states[name], real)
      jax.block_until_ready(states[name])
      times[name].append((time.perf_counter() - started) / args.steps * 1000)
  medians = {name: round(statistics.median(values), 1) for name, values in times.items()}
  difference = max(float(np.max(np.abs(a - b))) for a, b in zip(
      jax.tree.leaves(states["unrolled"].d_params), jax.tree.leaves(states["while_loop"].d_params)))
  print(json.dumps({"n_critic": args.n_critic, "batch": args.batch, "width": args.width,
                    "ms_per_step_median": medians,
                    "ratio": round(medians["while_loop"] / medians["unrolled"], 1),
                    "first_call_seconds": compile_seconds,
                    "max_abs_d_param_difference": difference}))


if __name__ == "__main__":
  main()
