"""What augmenting the discriminator's inputs costs in a training step: the dcgan28 workload of
`step_throughput.py` (the MNIST DCGAN networks, batch 64, one fixed real batch) without
augmentation, with DiffAugment and with ADA's pipeline, timed in alternating rounds in one run.

  python benchmarks/augment_throughput.py [--batch 64] [--steps 10] [--rounds 5]

Variants: none; diffaugment ('color,translation,cutout' at p = 1: every transform on every
image, as the paper trains); ada_p0.2 and ada_p1 ('bgc' at a fixed p: about the highest p ADA
reached on the limited-data digits, and the most). Every transform is computed for every image
and kept where its draw fires, so the cost does not depend on p. Each variant's step is compiled
first (`compile_s`), then every round times `--steps` steps of each variant in turn. Prints one
JSON line per variant: the median ms per step over the rounds, its images per second and the
median over rounds of the ratio to the unaugmented step of the same round, with the 1-minute
load average.
"""
import argparse
import dataclasses
import json
import os
import statistics

import jax

from ganjax import train

from step_throughput import build, first_call, timed

VARIANTS = {"none": ("", 0.0), "diffaugment": ("color,translation,cutout", 1.0),
            "ada_p0.2": ("bgc", 0.2), "ada_p1": ("bgc", 1.0)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--steps", type=int, default=10, help="steps per variant per round")
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  generator, discriminator, g_tx, d_tx, spec, shape, real = build("dcgan28", args.batch)
  steps, states, compile_s = {}, {}, {}
  for name, (policy, p) in VARIANTS.items():
    variant = dataclasses.replace(spec, augment=policy, augment_p=p)
    state = train.create_state(generator, discriminator, g_tx, d_tx, variant, shape, 0)
    step = train.jit(train.adversarial_update, donate_argnums=0)
    steps[name] = lambda state, step=step: step(state, real)[0]
    states[name], compile_s[name], _ = first_call(steps[name], state)
  seconds = {name: [] for name in VARIANTS}
  for _ in range(args.rounds):
    for name in VARIANTS:
      states[name], wall = timed(steps[name], states[name], args.steps)
      seconds[name].append(wall / args.steps)
  for name, (policy, p) in VARIANTS.items():
    ms = statistics.median(seconds[name]) * 1e3
    ratio = statistics.median(s / n for s, n in zip(seconds[name], seconds["none"]))
    print(json.dumps({"variant": name, "policy": policy, "p": p, "batch": args.batch,
                      "ms_per_step": round(ms, 2), "images_per_s": round(args.batch / ms * 1e3),
                      "ratio_to_none": round(ratio, 3), "compile_s": round(compile_s[name], 2),
                      "rounds": args.rounds, "steps": args.steps,
                      "backend": jax.default_backend(),
                      "loadavg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
  main()
