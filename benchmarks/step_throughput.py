"""Training-step throughput of ganjax's benchmark workloads, optionally against PyTorch peers.

A step is one generator update with its n_critic discriminator updates: one
`ganjax.train.train_step` call. The workloads:

  ring_mlp  MLP players (two tanh hidden layers of 128), z of 256 dims, the 8-Gaussian ring
            sampled on the device inside the step; Adam G 1e-3 / D 1e-4, b1=0.5; batch 512.
  dcgan28   the TensorFlow DCGAN tutorial's MNIST networks, z of 100 dims, one fixed real batch
            from the host (uniform in [-1, 1]); Adam(2e-4, b1=0.5) for both; batch 64.
  dcgan64, sngan32, biggan32, stylegan2_cifar
            the networks, losses, optimizers, n_critic and batch of experiments/celeba64_dcgan.py
            (batch 128), cifar10_sngan.py (64, n_critic 5), cifar10_biggan.py (50, n_critic 4,
            class-conditional, EMA, orthogonal regularisation) and cifar10_stylegan2_ada.py (64,
            class-conditional, lazy R1 every 16 discriminator updates; ADA off, as in
            stylegan2_throughput.py), built by `experiment.build_players(config,
            check_data=False)` (`experiment_config`), trained on one fixed random real batch
            (with random labels where conditional) that stays on the device: data loading is
            excluded. --tiny builds the experiment's 'tiny' config instead (narrow networks): a
            quick test of this script, not a benchmark.

ring_mlp and dcgan28 match the PyTorch reference in ../shared/bench/torch_reference.py layer for
layer; dcgan64, sngan32 and biggan32 have peers in torch_peers.py (beside this file).

Usage:
  python benchmarks/step_throughput.py --workload ring_mlp --batch 512
  python benchmarks/step_throughput.py --workload dcgan28 --batch 64 \
      --reference ~/torch-ref/bin/python
  python benchmarks/step_throughput.py --workload sngan32 --dtype bfloat16 \
      --peer python3 --peer-modes eager,compile
  python benchmarks/step_throughput.py --workload ring_mlp --seeds 10
  python benchmarks/step_throughput.py --peak-only
  bash benchmarks/gpu_suite.sh   # every GPU row, into benchmarks/gpu/results.jsonl

Each prints one JSON line of ganjax's figures: the median milliseconds per step over `--repeats`
timed blocks of `--steps` steps, after a first call whose wall time, compilation included, is
`compile_s` (`compile_breakdown_s` splits it into tracing, lowering to MLIR and XLA's compile);
`images_per_s` (generated images, or ring points, per second: batch / seconds per generator
step); `peak_memory_bytes` (the device's `peak_bytes_in_use`, null on the CPU); `flops_per_step`
(see `step_flops`), `peak_flops` with `peak_source` (see `peak_flops`; measured after the timed
steps) and `mfu` = flops_per_step / seconds per step / peak_flops. ring_mlp also times
`train.train_steps`, the same steps scanned in one call per block. --peak-only prints the peaks
for bfloat16 and float32 and the measured matmul rates, and stops.

--reference PYTHON (ring_mlp, dcgan28) runs the PyTorch reference with that interpreter, and
--peer PYTHON with --peer-modes (dcgan64, sngan32, biggan32) runs torch_peers.py once per mode
(eager, torch.compile) in the same dtype (bfloat16: autocast), on the CUDA device when JAX's
backend is a GPU. Rounds alternate one ganjax block with one run of each peer, and a second line
gives the medians over the rounds, each peer's images/s, `ratio` (ganjax ms/step divided by the
fastest peer's: below 1, ganjax is faster), `speedup` (the inverse) and each round's ratio; a
peer run that fails or outlasts --peer-timeout is recorded in its `errors`. --peer-warmup sets
torch_peers.py's untimed first steps. Every line carries the 1-minute load average, since other
jobs skew CPU timings.

--dtype float32|bfloat16 is the networks' compute dtype (parameters stay float32).
--reuse-fakes sets `GANSpec.reuse_fakes` (the generator update differentiates the fakes of the
discriminator update, one generator forward pass per step, which is what the PyTorch reference
does); --conv-impl plain|fast picks dcgan28's and dcgan64's transposed-convolution formulation
(default auto: fast on CPU); --xla-defaults compiles without `compilation.CPU_COMPILER_OPTIONS`;
--check-flops also compiles one discriminator and one generator update alone and reports
n_critic * D + G against the step's count.

--seeds K (ring_mlp) trains K seeds side by side in one compiled program (`vmap_seeds` over
`adversarial_scan`) and one after another (`train_steps` per seed), `--steps` steps each, in
alternation, and prints a line with both wall times, seeds per second and their ratio.
"""
import argparse
import dataclasses
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import optax

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from ganjax import compilation  # pylint: disable=wrong-import-position
from ganjax import experiment  # pylint: disable=wrong-import-position
from ganjax import models  # pylint: disable=wrong-import-position
from ganjax import train  # pylint: disable=wrong-import-position
from ganjax.data import toy  # pylint: disable=wrong-import-position

from _trees import load_experiment  # pylint: disable=wrong-import-position

DEFAULT_BATCH = {"ring_mlp": 512, "dcgan28": 64}
# ADA off: the step without augmentation, as stylegan2_throughput.py times it.
NO_ADA = {"augment.policy": "", "augment.target": 0.0}
# CIFAR-10's classes, recorded as a run records them: with `check_data=False` the players are then
# built without `ganjax.data.images`, which imports TensorFlow (the GPU machines have none).
CIFAR10_CLASSES = {"conditional.num_classes": 10}
# Workloads built from an experiment file: (file in experiments/, fields set on its config). The
# batch is the config's unless --batch says otherwise.
EXPERIMENTS = {
    "dcgan64": ("celeba64_dcgan", {}),
    "sngan32": ("cifar10_sngan", {}),
    "biggan32": ("cifar10_biggan", CIFAR10_CLASSES),
    "stylegan2_cifar": ("cifar10_stylegan2_ada", {**NO_ADA, **CIFAR10_CLASSES}),
}
WORKLOADS = (*DEFAULT_BATCH, *EXPERIMENTS)
REFERENCE_WORKLOADS = ("ring_mlp", "dcgan28")  # ../shared/bench/torch_reference.py
PEER_WORKLOADS = ("dcgan64", "sngan32", "biggan32")  # torch_peers.py
REFERENCE_SCRIPT = REPO.parent / "shared" / "bench" / "torch_reference.py"
PEERS_SCRIPT = REPO / "benchmarks" / "torch_peers.py"
_COMPILE_EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
                   "/jax/core/compile/backend_compile_duration": "xla"}

# Dense peak FLOP/s by device kind (a substring of `device_kind`, the first match wins) and
# matmul precision. NVIDIA's datasheets give the tensor-core figures with 2:4 sparsity; the
# dense ones are half of those. "NVIDIA H100 Tensor Core GPU" datasheet
# (https://www.nvidia.com/en-us/data-center/h100/), SXM / PCIe: BF16 1,979 / 1,513, TF32 989 /
# 756 TFLOP/s with sparsity, FP32 67 / 51 TFLOP/s. "NVIDIA H200 Tensor Core GPU" datasheet
# (https://www.nvidia.com/en-us/data-center/h200/): H200 SXM, the H100 SXM's figures. The H100
# NVL's and H200 NVL's are lower and not listed: their rows fall back to the measured rate.
_H100_SXM = {"bf16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12}
GPU_PEAKS = (("H100 PCIe", {"bf16": 756e12, "tf32": 378e12, "fp32": 51.2e12}),
             ("NVL", None), ("H100", _H100_SXM), ("H200", _H100_SXM))
# The measured matmul: n x n operands, `calls` products per timing, median of `repeats`.
CPU_MATMUL = {"n": 2048, "calls": 1, "repeats": 5}
GPU_MATMUL = {"n": 8192, "calls": 10, "repeats": 5}


def set_field(config, dotted, value):
  """Sets the config field named by a dotted path ('model.generator_kwargs.dtype')."""
  *sections, name = dotted.split(".")
  node = config
  for section in sections:
    node = node[section]
  node[name] = value


def dtype_fields(dtype):
  """Config fields that make both networks compute in `dtype` (parameters stay float32)."""
  return {"model.dtype": dtype}


def fixed_real_batch(spec, data_shape):
  """One fixed random real batch as `train.train_step` takes it, on the device: images uniform
  in [-1, 1] of shape (n_critic, batch, *data_shape), paired with random int32 labels of shape
  (n_critic, batch) for a class-conditional GAN."""
  rng = np.random.default_rng(0)
  leading = (spec.n_critic, spec.batch_size)
  images = jnp.asarray(rng.uniform(-1, 1, (*leading, *data_shape)), jnp.float32)
  if not spec.num_classes:
    return images
  return images, jnp.asarray(rng.integers(0, spec.num_classes, leading), jnp.int32)


def build(workload, batch, reuse_fakes=False, conv_impl="auto", dtype="float32",
          config_arg=None):
  """(generator, discriminator, g_tx, d_tx, spec, data_shape, real batch or None)."""
  if workload in EXPERIMENTS:
    return build_experiment(workload, batch, reuse_fakes, conv_impl, dtype, config_arg)
  dtype_kwargs = {} if dtype == "float32" else {"dtype": jnp.dtype(dtype)}
  if workload == "ring_mlp":
    generator = models.get_generator("mlp", output_dim=2, hidden=(128, 128), activation="tanh",
                                     **dtype_kwargs)
    discriminator = models.get_discriminator("mlp", hidden=(128, 128), activation="tanh",
                                             **dtype_kwargs)
    spec = train.GANSpec(loss="non_saturating", latent_dim=256, batch_size=batch,
                         data=toy.ring(), reuse_fakes=reuse_fakes)
    return (generator, discriminator, optax.adam(1e-3, b1=0.5), optax.adam(1e-4, b1=0.5), spec,
            spec.data.shape, None)
  shape = (28, 28, 1)
  generator = models.get_generator("dcgan", image_shape=shape, conv_impl=conv_impl,
                                   **dtype_kwargs)
  discriminator = models.get_discriminator("dcgan", image_shape=shape, **dtype_kwargs)
  spec = train.GANSpec(loss="non_saturating", latent_dim=100, batch_size=batch,
                       reuse_fakes=reuse_fakes)
  return (generator, discriminator, optax.adam(2e-4, b1=0.5), optax.adam(2e-4, b1=0.5), spec,
          shape, fixed_real_batch(spec, shape))


def experiment_config(workload, batch=None, reuse_fakes=False, conv_impl="auto",
                      dtype="float32", config_arg=None):
  """The config of an experiment workload: its file's `get_config(config_arg)` with the
  workload's fields, the compute dtype and, where given, the batch size, reuse_fakes and
  dcgan64's conv_impl."""
  file_name, fields = EXPERIMENTS[workload]
  config = load_experiment(file_name, config_arg)
  fields = {**fields, **dtype_fields(dtype)}
  if batch:
    fields["train.batch_size"] = batch
  if reuse_fakes:
    fields["train.reuse_fakes"] = True
  if conv_impl != "auto" and config.model.generator == "dcgan":
    fields["model.generator_kwargs.conv_impl"] = conv_impl
  for dotted, value in fields.items():
    set_field(config, dotted, value)
  return config


def build_experiment(workload, batch=None, reuse_fakes=False, conv_impl="auto", dtype="float32",
                     config_arg=None):
  """`build`'s tuple for an experiment workload (`experiment_config`): the players of
  `experiment.build_players(config, check_data=False)`, and the RGB images' shape from
  `config.data.image_size` (what `ganjax.data.images.image_shape` gives for these datasets)."""
  config = experiment_config(workload, batch, reuse_fakes, conv_impl, dtype, config_arg)
  *players, spec = experiment.build_players(config, check_data=False)
  shape = (config.data.image_size, config.data.image_size, 3)
  return (*players, spec, shape, fixed_real_batch(spec, shape))


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


def peak_memory_bytes():
  """The first local device's `peak_bytes_in_use` (this process's, since it started), or None
  where the backend does not report it (the CPU)."""
  stats = jax.local_devices()[0].memory_stats() or {}
  return stats.get("peak_bytes_in_use")


def cost_flops(compiled):
  """FLOPs of a compiled computation by XLA's cost analysis, or None where it gives none.
  `cost_analysis()` returns a dict, or a list of one dict per computation in older JAX."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  flops = (cost or {}).get("flops")
  return float(flops) if flops and flops > 0 else None


def _window_taps(size, kernel, out, stride, lhs_dilation, rhs_dilation, low_padding):
  """(output position, kernel tap) pairs of one spatial dimension that land on an input element
  (not on padding nor on a hole of a dilated input): what XLA's cost analysis counts."""
  dilated = (size - 1) * lhs_dilation + 1
  positions = (o * stride + k * rhs_dilation - low_padding
               for o in range(out) for k in range(kernel))
  return sum(1 for p in positions if 0 <= p < dilated and p % lhs_dilation == 0)


def _convolution_flops(eqn):
  """2 * output batch * output features * input features per group * valid window taps."""
  lhs, rhs = (v.aval for v in eqn.invars[:2])
  out = eqn.outvars[0].aval
  params = eqn.params
  numbers = params["dimension_numbers"]
  taps = 1
  for d, padding in enumerate(params["padding"]):
    taps *= _window_taps(lhs.shape[numbers.lhs_spec[d + 2]], rhs.shape[numbers.rhs_spec[d + 2]],
                         out.shape[numbers.out_spec[d + 2]], params["window_strides"][d],
                         params["lhs_dilation"][d], params["rhs_dilation"][d], padding[0])
  in_features = lhs.shape[numbers.lhs_spec[1]] // params["feature_group_count"]
  return (2 * out.shape[numbers.out_spec[0]] * out.shape[numbers.out_spec[1]] * in_features
          * taps)


def _dot_flops(eqn):
  """2 * (lhs elements: batch x free x contracted) * (rhs free elements)."""
  lhs, rhs = (v.aval for v in eqn.invars[:2])
  (_, rhs_contract), (_, rhs_batch) = eqn.params["dimension_numbers"]
  rhs_free = [d for i, d in enumerate(rhs.shape) if i not in (*rhs_contract, *rhs_batch)]
  return 2 * int(np.prod(lhs.shape, dtype=np.int64)) * int(np.prod(rhs_free, dtype=np.int64))


def jaxpr_flops(jaxpr):
  """(FLOPs of the dot products and convolutions of a jaxpr, number of while loops in it).

  2 FLOPs per multiply-add, counting only the window taps on input elements as XLA does; a scan
  counts its body times its length, a cond its costliest branch (as XLA does), a while loop its
  body once (its trip count is not known: hence the count of them).
  """
  flops, loops = 0, 0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      flops += _dot_flops(eqn)
    elif name == "conv_general_dilated":
      flops += _convolution_flops(eqn)
    elif name == "cond":
      branches = [jaxpr_flops(branch.jaxpr) for branch in eqn.params["branches"]]
      flops += max(f for f, _ in branches)
      loops += sum(n for _, n in branches)
    else:
      inner = [jaxpr_flops(getattr(value, "jaxpr", value)) for value in eqn.params.values()
               if isinstance(value, (jax.extend.core.Jaxpr, jax.extend.core.ClosedJaxpr))]
      times = eqn.params["length"] if name == "scan" else 1
      flops += times * sum(f for f, _ in inner)
      loops += sum(n for _, n in inner) + (name == "while")
  return flops, loops


def lazy_regularisers(state):
  """(name, interval k, the state without it) of each regulariser that runs on every k-th update
  only (`train._lazily`, a `lax.cond`)."""
  spec = state.spec
  lazy = []
  if spec.penalty is not None and spec.penalty_every > 1:
    lazy.append(("penalty", spec.penalty_every,
                 state.replace(spec=dataclasses.replace(spec, penalty=None, penalty_every=1))))
  if spec.path_length_weight and spec.path_length_every > 1:
    lazy.append(("path_length", spec.path_length_every,
                 state.replace(spec=dataclasses.replace(spec, path_length_weight=0.0),
                               path_length=None)))
  return lazy


def step_flops(state, real, check=False):
  """FLOPs of one `train.train_step` call, with the figures they come from.

  `xla`: XLA's cost analysis of the compiled step (the executable `train_step` runs: jit's
  cache hands it back, nothing is compiled again). XLA counts a while loop's body once and a
  conditional's costliest branch. The n_critic discriminator updates are unrolled in the step
  (`train._repeat`, n_critic being a Python int), so they are all counted: `while_loops` counts
  the loops in the step's jaxpr (0 for these workloads; the compiled CPU step has a few more,
  threefry's random-bit loops of integer operations), and --check-flops compares the count with
  one discriminator and one generator update compiled alone. A lazy regulariser (StyleGAN2's R1
  every 16 discriminator updates) is a `lax.cond` counted on every step: `lazy_correction` takes
  off (1 - 1/k) of its branch's FLOPs, the jaxpr count of the step with it minus without it.
  `dots_convs`: the dot products and convolutions of the step's jaxpr (`jaxpr_flops`), which
  does not depend on the backend. `flops_per_step` is XLA's figure, corrected, unless it is
  missing or below the dot and convolution count (XLA:GPU has not always counted the cuBLAS and
  cuDNN calls its dots and convolutions become, jax-ml/jax#22249), or below it because the step
  holds a loop XLA counts once and the jaxpr count multiplies by its length (a scan): then the
  latter's.
  """
  compiled = train.train_step.lower(state, real).compile()
  xla = cost_flops(compiled)
  count = lambda s: jaxpr_flops(jax.make_jaxpr(train.adversarial_update)(s, real).jaxpr)
  dots_convs, jaxpr_loops = count(state)
  correction = sum((1 - 1 / every) * (dots_convs - count(without)[0])
                   for _, every, without in lazy_regularisers(state))
  figures = {"xla": None if xla is None else xla - correction,
             "dots_convs": dots_convs - correction, "lazy_correction": correction,
             "while_loops": jaxpr_loops}
  if figures["xla"] is not None and figures["xla"] >= figures["dots_convs"]:
    figures.update(flops_per_step=figures["xla"], source="XLA cost_analysis of the compiled step")
  else:
    figures.update(flops_per_step=figures["dots_convs"],
                   source="dots and convolutions of the step's jaxpr (XLA's count is missing "
                          "or lower)")
  if check:
    figures["check"] = update_flops_check(state, real, figures["xla"])
  return figures


def update_flops_check(state, real, step):
  """XLA's FLOPs of one discriminator and one generator update compiled alone, and the step's
  against n_critic * D + G (1 when the step counts every update once)."""
  first = jax.tree.map(lambda x: x[0], real)
  last = jax.tree.map(lambda x: x[-1], real)
  d_update = cost_flops(train.d_step.lower(state, first).compile())
  g_update = cost_flops(train.g_step.lower(state, last).compile())
  n_critic = state.spec.n_critic
  total = n_critic * d_update + g_update
  return {"d_update": d_update, "g_update": g_update, "n_critic": n_critic,
          "n_critic_d_plus_g": total, "step_over_sum": round(step / total, 4) if step else None}


class MatmulRate:
  """A jitted n x n matrix product of random `dtype` operands at JAX's default matmul precision,
  compiled and run twice when made, then timed on demand: samples of its FLOP/s (2 n^3 per
  product), each the rate of `calls` products in a row."""

  def __init__(self, dtype, n, calls):
    self.n, self.calls, self.samples = n, calls, []
    self.operands = jax.random.normal(jax.random.PRNGKey(0), (2, n, n), dtype)
    self.product = compilation.jit(jnp.matmul)
    for _ in range(2):
      jax.block_until_ready(self.product(*self.operands))

  def sample(self, times):
    """Adds `times` samples."""
    for _ in range(times):
      start = time.perf_counter()
      for _ in range(self.calls):
        output = self.product(*self.operands)  # in order on the device: the last waits for all
      jax.block_until_ready(output)
      self.samples.append(2 * self.n**3 * self.calls / (time.perf_counter() - start))

  def median(self):
    return statistics.median(self.samples)


def matmul_flops_per_s(dtype, n, calls, repeats):
  """The median of `repeats` samples of a new `MatmulRate(dtype, n, calls)`."""
  rate = MatmulRate(dtype, n, calls)
  rate.sample(repeats)
  return rate.median()


def matmul_precision(dtype):
  """The precision of a dot in `dtype`: 'bf16', or for float32 on a GPU 'tf32' unless JAX's
  default matmul precision asks for full float32 ('highest' or 'float32'). At JAX's DEFAULT
  precision (jax_default_matmul_precision None) XLA:GPU computes float32 dots and convolutions
  with TF32 on Ampere and later GPUs (benchmarks/README.md measured this on the H100)."""
  if dtype == "bfloat16":
    return "bf16"
  if jax.default_backend() == "cpu":
    return "fp32"
  precision = jax.config.jax_default_matmul_precision
  return "fp32" if precision in ("highest", "float32") else "tf32"


def measured_matmul_rates(dtypes):
  """{dtype: measured matmul FLOP/s} on this backend: the median of `repeats` samples of
  `CPU_MATMUL` or `GPU_MATMUL`."""
  settings = CPU_MATMUL if jax.default_backend() == "cpu" else GPU_MATMUL
  return {dtype: matmul_flops_per_s(dtype, **settings) for dtype in dtypes}


def peak_flops(dtype, measured):
  """The peak FLOP/s an MFU in `dtype` is taken against, and its source.

  On a CPU: the measured rate of a jitted 2048 x 2048 matmul in the compute dtype on this
  machine (`measured[dtype]`, `CPU_MATMUL`; `Bench` takes its median over samples timed between
  the timed blocks, since other jobs change what the shared cores give). On a GPU: the
  datasheet's dense peak for the device kind (`GPU_PEAKS`) at the compute dtype's precision
  (`matmul_precision`), or the measured 8192 x 8192 matmul's rate (`GPU_MATMUL`) where the table
  has no figure.

  Returns:
    (peak FLOP/s, source).
  """
  if jax.default_backend() == "cpu":
    n = CPU_MATMUL["n"]
    return measured[dtype], f"measured: jitted {n}x{n} {dtype} matmul on this CPU, median"
  kind, precision = jax.devices()[0].device_kind, matmul_precision(dtype)
  peaks = next((peaks for name, peaks in GPU_PEAKS if name in kind), None)
  if peaks:
    return peaks[precision], f"NVIDIA datasheet, dense {precision}, for {kind!r}"
  n = GPU_MATMUL["n"]
  return measured[dtype], f"measured: {n}x{n} {dtype} matmul (no datasheet figure for {kind!r})"


def peak_fields(dtype, measured):
  """`peak_flops` and `peak_source` in `dtype`, with the measured matmul rates."""
  peak, source = peak_flops(dtype, measured)
  return {"peak_flops": peak, "peak_source": source, "matmul_precision": matmul_precision(dtype),
          "measured_matmul_flops": measured}


def device_fields():
  """Backend, device and load fields of every line."""
  return {"backend": jax.default_backend(), "devices": jax.device_count(),
          "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__,
          "loadavg_1m": round(os.getloadavg()[0], 2)}


class Bench:
  """ganjax's contenders for one workload: train_step per step, and train_steps scanned."""

  def __init__(self, args):
    self.args = args
    *players, self.real = build(args.workload, args.batch, args.reuse_fakes, args.conv_impl,
                                args.dtype, "tiny" if args.tiny else None)
    self.state = train.create_state(*players, seed=0)
    self.step = lambda state: train.train_step(state, self.real)[0]
    self.state, self.compile_s, self.breakdown = first_call(self.step, self.state)
    self.flops = step_flops(self.state, self.real, args.check_flops)
    # On a CPU the matmul's rate is sampled after every timed block (CPU_MATMUL["repeats"]
    # times), so that its median sees the load the steps saw; on a GPU it is measured once,
    # after the timed steps, so that its buffers are not in the peak memory.
    self.matmul = (MatmulRate(args.dtype, CPU_MATMUL["n"], CPU_MATMUL["calls"])
                   if jax.default_backend() == "cpu" else None)
    self.peak = None
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
      if self.matmul is not None:
        self.matmul.sample(CPU_MATMUL["repeats"])
    return per_step, per_step_scan

  def mfu(self, ms_per_step):
    """flops_per_step / seconds per step / peak FLOP/s."""
    return round(self.flops["flops_per_step"] / (ms_per_step / 1e3) / self.peak["peak_flops"], 5)

  def record(self, per_step, per_step_scan):
    memory = peak_memory_bytes()
    if self.matmul is not None:
      self.peak = peak_fields(self.args.dtype, {self.args.dtype: self.matmul.median()})
      self.peak["matmul_samples_range"] = [min(self.matmul.samples), max(self.matmul.samples)]
    elif self.peak is None:
      self.peak = peak_fields(self.args.dtype, measured_matmul_rates(("bfloat16", "float32")))
    ms = statistics.median(per_step)
    flops = dict(self.flops)
    record = {"workload": self.args.workload, "batch": self.args.batch,
              "n_critic": self.state.spec.n_critic, "dtype": self.args.dtype,
              "ms_per_step_median": round(ms, 3),
              "images_per_s": round(self.args.batch / ms * 1e3, 2),
              "compile_s": round(self.compile_s, 3), "steps": self.args.steps,
              "reuse_fakes": self.args.reuse_fakes, "conv_impl": self.args.conv_impl,
              "cpu_compiler_options": not self.args.xla_defaults,
              "repeats": self.args.repeats, "compile_breakdown_s": self.breakdown,
              "peak_memory_bytes": memory,
              "flops_per_step": flops.pop("flops_per_step"), "flops_source": flops.pop("source"),
              "flops": flops, **self.peak, "mfu": self.mfu(ms), **device_fields()}
    if per_step_scan:
      scan_ms = statistics.median(per_step_scan)
      record.update(ms_per_step_scan_median=round(scan_ms, 3), mfu_scan=self.mfu(scan_ms),
                    compile_scan_s=round(self.compile_scan_s, 3),
                    compile_scan_breakdown_s=self.breakdown_scan)
    return record


def reference_command(python, script, workload, batch, steps, repeats):
  """The command line of one run of ../shared/bench/torch_reference.py (`script`)."""
  return [python, str(script), workload, "--batch", str(batch), "--steps", str(steps),
          "--repeats", str(repeats)]


def peer_commands(args):
  """{peer name: command line} of the PyTorch runs of each round."""
  if args.reference:
    return {"torch_reference": reference_command(args.reference, args.reference_script,
                                                 args.workload, args.batch, args.steps,
                                                 args.repeats)}
  counts = ["--batch", str(args.batch), "--steps", str(args.steps), "--repeats", str(args.repeats)]
  device = "cuda" if jax.default_backend() == "gpu" else "cpu"
  common = [args.peer, args.peer_script, args.workload, *counts, "--dtype", args.dtype,
            "--device", device]
  if args.peer_warmup is not None:
    common += ["--warmup", str(args.peer_warmup)]
  return {f"torch_{mode}": [*common, "--mode", mode] for mode in args.peer_modes.split(",")}


def run_peer(command, timeout=None):
  """The last JSON line a peer prints, or {'error': ...} when it fails or outlasts `timeout`
  seconds."""
  try:
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            timeout=timeout)
  except subprocess.TimeoutExpired:
    return {"error": f"timed out after {timeout} s"}
  if result.returncode:
    return {"error": f"exit {result.returncode}: {result.stderr.strip()[-500:]}"}
  return json.loads(result.stdout.strip().splitlines()[-1])


def peer_summary(results, batch):
  """One peer's figures over the rounds (None for a figure no round gave)."""
  ms = [r["ms_per_step_median"] for r in results if "ms_per_step_median" in r]
  summary = {"ms_per_step_median": round(statistics.median(ms), 3) if ms else None,
             "images_per_s": round(batch / statistics.median(ms) * 1e3, 2) if ms else None,
             "round_medians": ms, "errors": [r["error"] for r in results if "error" in r]}
  for name in ("compile_s", "peak_memory_bytes", "threads", "mode", "dtype", "device"):
    values = [r[name] for r in results if r.get(name) is not None]
    if values:
      summary[name] = max(values) if name == "peak_memory_bytes" else values[-1]
  return summary


def compare(args, bench):
  """Rounds of one ganjax block then one run of each peer; medians over the rounds' medians."""
  commands = peer_commands(args)
  ours, ours_scan, results = [], [], {name: [] for name in commands}
  for _ in range(args.rounds):
    per_step, per_step_scan = bench.block()
    ours.append(statistics.median(per_step))
    if per_step_scan:
      ours_scan.append(statistics.median(per_step_scan))
    for name, command in commands.items():
      results[name].append(run_peer(command, args.peer_timeout))
  print(json.dumps(bench.record(ours, ours_scan)))
  peers = {name: peer_summary(rounds, args.batch) for name, rounds in results.items()}
  ganjax_ms = statistics.median(ours)
  line = {"workload": args.workload, "batch": args.batch, "dtype": args.dtype,
          "rounds": args.rounds, "steps": args.steps, "repeats": args.repeats,
          "ganjax_ms_per_step_median": round(ganjax_ms, 3),
          "ganjax_images_per_s": round(args.batch / ganjax_ms * 1e3, 2),
          "ganjax_round_medians": [round(x, 3) for x in ours], "peers": peers}
  timed_peers = [name for name in peers if peers[name]["ms_per_step_median"]]
  if timed_peers:
    fastest = min(timed_peers, key=lambda name: peers[name]["ms_per_step_median"])
    peer_ms, peer_rounds = peers[fastest]["ms_per_step_median"], peers[fastest]["round_medians"]
    line.update(peer=fastest, peer_ms_per_step_median=peer_ms,
                peer_images_per_s=peers[fastest]["images_per_s"],
                ratio=round(ganjax_ms / peer_ms, 3), speedup=round(peer_ms / ganjax_ms, 3),
                peer_round_medians=peer_rounds,
                round_ratios=[round(a / b, 3) for a, b in zip(ours, peer_rounds)],
                peer_threads=peers[fastest].get("threads"))
    if ours_scan:
      scan_ms = statistics.median(ours_scan)
      line.update(ganjax_scan_ms_per_step_median=round(scan_ms, 3),
                  ratio_scan=round(scan_ms / peer_ms, 3), speedup_scan=round(peer_ms / scan_ms, 3))
  line["loadavg_1m"] = round(os.getloadavg()[0], 2)
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


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workload", choices=WORKLOADS)
  parser.add_argument("--batch", type=int, help="batch size (default: 512 ring_mlp, 64 dcgan28, "
                                                "the experiment's for the others)")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                      help="the networks' compute dtype (parameters stay float32)")
  parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
  parser.add_argument("--repeats", type=int, default=5, help="timed blocks")
  parser.add_argument("--reference", metavar="PYTHON",
                      help="interpreter with torch, to run the PyTorch reference (ring_mlp, "
                           "dcgan28)")
  parser.add_argument("--reference-script", default=str(REFERENCE_SCRIPT.resolve()))
  parser.add_argument("--peer", metavar="PYTHON",
                      help="interpreter with torch, to run torch_peers.py (dcgan64, sngan32, "
                           "biggan32)")
  parser.add_argument("--peer-modes", default="eager,compile",
                      help="torch_peers.py modes, run in turn each round")
  parser.add_argument("--peer-script", default=str(PEERS_SCRIPT))
  parser.add_argument("--peer-warmup", type=int,
                      help="torch_peers.py's untimed first steps (default: its own, 3)")
  parser.add_argument("--peer-timeout", type=float,
                      help="seconds a peer run may take (then recorded as an error)")
  parser.add_argument("--rounds", type=int, default=3, help="ganjax/peer rounds with a peer")
  parser.add_argument("--seeds", type=int, help="also time K seeds side by side (ring_mlp)")
  parser.add_argument("--reuse-fakes", action="store_true",
                      help="GANSpec.reuse_fakes: the generator update reuses the discriminator "
                           "update's fakes, as the PyTorch reference does")
  parser.add_argument("--conv-impl", choices=models.dcgan.CONV_IMPLS, default="auto",
                      help="how dcgan28's and dcgan64's transposed convolutions are computed")
  parser.add_argument("--xla-defaults", action="store_true",
                      help="compile with XLA's default options, not "
                           "compilation.CPU_COMPILER_OPTIONS")
  parser.add_argument("--check-flops", action="store_true",
                      help="also compile one D and one G update alone and compare FLOP counts")
  parser.add_argument("--tiny", action="store_true",
                      help="the experiment file's 'tiny' config (narrow networks): a quick test "
                           "of this script, not a benchmark")
  parser.add_argument("--peak-only", action="store_true",
                      help="print the peak FLOP/s and the measured matmul rates, and stop")
  args = parser.parse_args()
  if not args.peak_only and not args.workload:
    parser.error("--workload is required (or --peak-only)")
  if args.reference and args.workload not in REFERENCE_WORKLOADS:
    parser.error(f"--reference runs torch_reference.py: {', '.join(REFERENCE_WORKLOADS)}")
  if args.peer and args.workload not in PEER_WORKLOADS:
    parser.error(f"--peer runs torch_peers.py: {', '.join(PEER_WORKLOADS)}")
  if args.tiny and args.workload not in EXPERIMENTS:
    parser.error(f"--tiny needs an experiment workload: {', '.join(EXPERIMENTS)}")
  if args.seeds and args.workload != "ring_mlp":
    parser.error("--seeds needs --workload ring_mlp (on-device data)")
  if args.workload in DEFAULT_BATCH:
    args.batch = args.batch or DEFAULT_BATCH[args.workload]
  elif args.workload:
    config_arg = "tiny" if args.tiny else None
    args.batch = args.batch or experiment_config(args.workload,
                                                 config_arg=config_arg).train.batch_size
  return args


def main():
  args = parse_args()
  if args.xla_defaults:
    compilation.CPU_COMPILER_OPTIONS = None
  if args.peak_only:
    measured = measured_matmul_rates(("bfloat16", "float32"))
    peaks = {dtype: dict(zip(("peak_flops", "peak_source"), peak_flops(dtype, measured)),
                         matmul_precision=matmul_precision(dtype)) for dtype in measured}
    print(json.dumps({"peaks": peaks, "measured_matmul_flops": measured, **device_fields()}))
    return
  bench = Bench(args)
  if args.reference or args.peer:
    compare(args, bench)
  else:
    print(json.dumps(bench.record(*bench.block())))
  if args.seeds:
    seeds(args)


if __name__ == "__main__":
  main()
