"""Training-step throughput of ganjax's benchmark workloads, optionally against the PyTorch peer.

A step is one discriminator update and one generator update: one `ganjax.train.train_step` call
(non-saturating loss, Adam). The workloads are built from ganjax's own models, losses and train
step, and match the PyTorch reference in ../shared/bench/torch_reference.py layer for layer:

  ring_mlp  MLP players (two tanh hidden layers of 128), z of 256 dims, the 8-Gaussian ring
            sampled on the device inside the step; Adam G 1e-3 / D 1e-4, b1=0.5; batch 512.
  dcgan28   the TensorFlow DCGAN tutorial's MNIST networks, z of 100 dims, one fixed real batch
            from the host (uniform in [-1, 1]); Adam(2e-4, b1=0.5) for both; batch 64.

Usage:
  python benchmarks/step_throughput.py --workload ring_mlp --batch 512
  python benchmarks/step_throughput.py --workload dcgan28 --batch 64 \
      --reference ~/torch-ref/bin/python
  python benchmarks/step_throughput.py --workload ring_mlp --seeds 10

Each prints one JSON line of ganjax's figures: the median milliseconds per step over `--repeats`
timed blocks of `--steps` steps, after a first call whose wall time, compilation included, is
`compile_s` (`compile_breakdown_s` splits it into tracing, lowering to MLIR and XLA's compile).
ring_mlp also times `train.train_steps`, the same steps scanned in one call per block.

--reference PYTHON runs the PyTorch peer with that interpreter, alternating rounds of ganjax and
the peer, and prints a second line with both medians over the rounds, `ratio` (ganjax ms/step
divided by the peer's: below 1, ganjax is faster), `speedup` (the inverse) and each round's own
ratio. Every line carries the 1-minute load average, since other jobs skew CPU timings.

--reuse-fakes sets `GANSpec.reuse_fakes` (the generator update differentiates the fakes of the
discriminator update, one generator forward pass per step, which is what the PyTorch peer does);
--conv-impl plain|fast picks dcgan28's transposed-convolution formulation (default auto: fast on
CPU); --xla-defaults compiles without `compilation.CPU_COMPILER_OPTIONS`.

--seeds K (ring_mlp) trains K seeds side by side in one compiled program (`vmap_seeds` over
`adversarial_scan`) and one after another (`train_steps` per seed), `--steps` steps each, in
alternation, and prints a line with both wall times, seeds per second and their ratio.
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganjax import compilation, models, train
from ganjax.data import toy

DEFAULT_BATCH = {"ring_mlp": 512, "dcgan28": 64}
REFERENCE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                                "shared", "bench", "torch_reference.py")
_COMPILE_EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
                   "/jax/core/compile/backend_compile_duration": "xla"}


def build(workload, batch, reuse_fakes=False, conv_impl="auto"):
  """(generator, discriminator, g_tx, d_tx, spec, data_shape, real batch or None)."""
  if workload == "ring_mlp":
    generator = models.get_generator("mlp", output_dim=2, hidden=(128, 128), activation="tanh")
    discriminator = models.get_discriminator("mlp", hidden=(128, 128), activation="tanh")
    spec = train.GANSpec(loss="non_saturating", latent_dim=256, batch_size=batch,
                         data=toy.ring(), reuse_fakes=reuse_fakes)
    return (generator, discriminator, optax.adam(1e-3, b1=0.5), optax.adam(1e-4, b1=0.5), spec,
            spec.data.shape, None)
  shape = (28, 28, 1)
  generator = models.get_generator("dcgan", image_shape=shape, conv_impl=conv_impl)
  discriminator = models.get_discriminator("dcgan", image_shape=shape)
  spec = train.GANSpec(loss="non_saturating", latent_dim=100, batch_size=batch,
                       reuse_fakes=reuse_fakes)
  # One fixed real batch, laid out (n_critic, batch, ...), moved to the device once.
  real = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (1, batch, *shape)), jnp.float32)
  return (generator, discriminator, optax.adam(2e-4, b1=0.5), optax.adam(2e-4, b1=0.5), spec,
          shape, real)


def first_call(fn, state):
  """Calls fn once; returns (state, wall seconds, compile time by phase in seconds)."""
  phases = {name: 0.0 for name in _COMPILE_EVENTS.values()}

  def listener(event, duration, **_):
    if event in _COMPILE_EVENTS:
      phases[_COMPILE_EVENTS[event]] += duration

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    start = time.perf_counter()
    state = jax.block_until_ready(fn(state))
    wall = time.perf_counter() - start
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  return state, wall, {name: round(value, 3) for name, value in phases.items()}


def timed(fn, state, calls):
  """Calls fn `calls` times, chaining the state; returns (state, wall seconds)."""
  start = time.perf_counter()
  for _ in range(calls):
    state = fn(state)
  state = jax.block_until_ready(state)
  return state, time.perf_counter() - start


class Bench:
  """ganjax's contenders for one workload: train_step per step, and train_steps scanned."""

  def __init__(self, args):
    self.args = args
    *players, self.real = build(args.workload, args.batch, args.reuse_fakes, args.conv_impl)
    self.state = train.create_state(*players, seed=0)
    self.step = lambda state: train.train_step(state, self.real)[0]
    self.state, self.compile_s, self.breakdown = first_call(self.step, self.state)
    self.scan = None
    if self.real is None:
      self.scan = lambda state: train.train_steps(state, num_steps=args.steps)[0]
      self.state, self.compile_scan_s, self.breakdown_scan = first_call(self.scan, self.state)

  def block(self):
    """`repeats` timed blocks of `steps` steps, step loop and scan alternating: ms per step."""
    per_step, per_step_scan = [], []
    for _ in range(self.args.repeats):
      self.state, seconds = timed(self.step, self.state, self.args.steps)
      per_step.append(seconds / self.args.steps * 1e3)
      if self.scan is not None:
        self.state, seconds = timed(self.scan, self.state, 1)
        per_step_scan.append(seconds / self.args.steps * 1e3)
    return per_step, per_step_scan

  def record(self, per_step, per_step_scan):
    record = {"workload": self.args.workload, "batch": self.args.batch,
              "ms_per_step_median": round(statistics.median(per_step), 3),
              "compile_s": round(self.compile_s, 3), "steps": self.args.steps,
              "reuse_fakes": self.args.reuse_fakes, "conv_impl": self.args.conv_impl,
              "cpu_compiler_options": not self.args.xla_defaults,
              "repeats": self.args.repeats, "backend": jax.default_backend(),
              "devices": jax.device_count(), "compile_breakdown_s": self.breakdown,
              "loadavg_1m": round(os.getloadavg()[0], 2)}
    if per_step_scan:
      record.update(ms_per_step_scan_median=round(statistics.median(per_step_scan), 3),
                    compile_scan_s=round(self.compile_scan_s, 3),
                    compile_scan_breakdown_s=self.breakdown_scan)
    return record


def run_peer(args):
  command = [args.reference, args.reference_script, args.workload, "--batch", str(args.batch),
             "--steps", str(args.steps), "--repeats", str(args.repeats)]
  output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
  return json.loads(output.strip().splitlines()[-1])


def compare(args, bench):
  """Rounds of one ganjax block then one peer run; medians over the rounds' medians."""
  ours, ours_scan, peer, threads = [], [], [], None
  for _ in range(args.rounds):
    per_step, per_step_scan = bench.block()
    ours.append(statistics.median(per_step))
    if per_step_scan:
      ours_scan.append(statistics.median(per_step_scan))
    result = run_peer(args)
    peer.append(result["ms_per_step_median"])
    threads = result.get("threads")
  ganjax_ms, peer_ms = statistics.median(ours), statistics.median(peer)
  print(json.dumps(bench.record(ours, ours_scan)))
  line = {"workload": args.workload, "batch": args.batch, "peer": "torch_reference",
          "rounds": args.rounds, "steps": args.steps, "repeats": args.repeats,
          "ganjax_ms_per_step_median": round(ganjax_ms, 3),
          "peer_ms_per_step_median": round(peer_ms, 3),
          "ratio": round(ganjax_ms / peer_ms, 3), "speedup": round(peer_ms / ganjax_ms, 3),
          "ganjax_round_medians": [round(x, 3) for x in ours],
          "peer_round_medians": peer,
          "round_ratios": [round(a / b, 3) for a, b in zip(ours, peer)],
          "peer_threads": threads, "loadavg_1m": round(os.getloadavg()[0], 2)}
  if ours_scan:
    scan_ms = statistics.median(ours_scan)
    line.update(ganjax_scan_ms_per_step_median=round(scan_ms, 3),
                ratio_scan=round(scan_ms / peer_ms, 3), speedup_scan=round(peer_ms / scan_ms, 3))
  print(json.dumps(line))


def seeds(args):
  """K seeds side by side (one vmapped program) against K seeds one after another."""
  *players, _ = build(args.workload, args.batch, args.reuse_fakes)
  num = args.seeds
  stacked = train.create_seed_states(*players, seeds=np.arange(num))
  singles = [train.create_state(*players, seed=seed) for seed in range(num)]
  side_by_side = train.vmap_seeds(train.adversarial_scan, num_steps=args.steps)
  vmapped = lambda states: side_by_side(states)[0]
  one_after_another = lambda states: [train.train_steps(s, num_steps=args.steps)[0]
                                      for s in states]
  stacked, compile_vmap, _ = first_call(vmapped, stacked)
  singles, compile_seq, _ = first_call(one_after_another, singles)
  vmap_s, seq_s = [], []
  for _ in range(args.repeats):
    stacked, seconds = timed(vmapped, stacked, 1)
    vmap_s.append(seconds)
    singles, seconds = timed(one_after_another, singles, 1)
    seq_s.append(seconds)
  vmap_median, seq_median = statistics.median(vmap_s), statistics.median(seq_s)
  print(json.dumps({
      "workload": args.workload, "batch": args.batch, "seeds": num, "steps": args.steps,
      "repeats": args.repeats, "vmap_s_median": round(vmap_median, 4),
      "sequential_s_median": round(seq_median, 4),
      "vmap_seeds_per_s": round(num / vmap_median, 2),
      "sequential_seeds_per_s": round(num / seq_median, 2),
      "ratio": round(vmap_median / seq_median, 3), "speedup": round(seq_median / vmap_median, 3),
      "compile_vmap_s": round(compile_vmap, 3), "compile_sequential_s": round(compile_seq, 3),
      "backend": jax.default_backend(), "devices": jax.device_count(),
      "loadavg_1m": round(os.getloadavg()[0], 2)}))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workload", choices=sorted(DEFAULT_BATCH), required=True)
  parser.add_argument("--batch", type=int, help="batch size (default: 512 ring_mlp, 64 dcgan28)")
  parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
  parser.add_argument("--repeats", type=int, default=5, help="timed blocks")
  parser.add_argument("--reference", metavar="PYTHON",
                      help="interpreter with torch, to run the PyTorch peer")
  parser.add_argument("--reference-script", default=os.path.normpath(REFERENCE_SCRIPT))
  parser.add_argument("--rounds", type=int, default=3, help="ganjax/peer rounds with --reference")
  parser.add_argument("--seeds", type=int, help="also time K seeds side by side (ring_mlp)")
  parser.add_argument("--reuse-fakes", action="store_true",
                      help="GANSpec.reuse_fakes: the generator update reuses the discriminator "
                           "update's fakes, as the PyTorch peer does")
  parser.add_argument("--conv-impl", choices=models.dcgan.CONV_IMPLS, default="auto",
                      help="how dcgan28's transposed convolutions are computed")
  parser.add_argument("--xla-defaults", action="store_true",
                      help="compile with XLA's default options, not compilation.CPU_COMPILER_OPTIONS")
  args = parser.parse_args()
  if args.xla_defaults:
    compilation.CPU_COMPILER_OPTIONS = None
  args.batch = args.batch or DEFAULT_BATCH[args.workload]
  if args.seeds and args.workload != "ring_mlp":
    parser.error("--seeds needs --workload ring_mlp (on-device data)")
  bench = Bench(args)
  if args.reference:
    compare(args, bench)
  else:
    print(json.dumps(bench.record(*bench.block())))
  if args.seeds:
    seeds(args)


if __name__ == "__main__":
  main()
