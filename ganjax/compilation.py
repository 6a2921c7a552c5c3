"""How ganjax compiles: `jax.jit` with XLA options chosen for the backend. Depends on nothing
else in ganjax, so that every layer (models, feature networks, the updates) can use it.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax

# XLA options for compiling the updates on the CPU backend. XLA's default hands dots,
# reductions and convolutions to the YNNPACK library; its convolutions, with their gradients,
# are much slower on CPU than XLA's other convolution path: forward and both gradients of a 5x5
# stride-1 transposed convolution 7x7x256 -> 7x7x128 at batch 64 took 182 ms with the default and
# 129 ms without YNNPACK convolutions, the sub-pixel stride-2 layer 7x7x128 -> 14x14x64 97 ms
# against 32 ms, the discriminator's 14x14x64 -> 7x7x128 convolution 49 ms against 36 ms (one
# run on 2 CPU cores; benchmarks/README.md). These options keep the default's YNNPACK dots and
# reductions (the compiled HLO is unchanged) and take convolutions off it. Not used on other
# backends.
CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type":
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}


class _Jitted:
  """`jax.jit(fun, **kwargs)`, compiled with `CPU_COMPILER_OPTIONS` when JAX's default backend
  is the CPU. The backend is looked up at the first call, not at import (so that
  `jax.distributed.initialize()` can still run after ganjax is imported)."""

  def __init__(self, fun: Callable, **kwargs):
    self._fun, self._kwargs, self._jitted = fun, kwargs, None
    functools.update_wrapper(self, fun)

  def _get(self):
    if self._jitted is None:
      options = CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
      self._jitted = jax.jit(self._fun, compiler_options=options, **self._kwargs)
    return self._jitted

  def __call__(self, *args, **kwargs):
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs))):
      # Called inside another jitted function: that one's compilation (and options) applies.
      return self._fun(*args, **kwargs)
    return self._get()(*args, **kwargs)

  def lower(self, *args, **kwargs):
    """As `jax.jit(...).lower`: the lowered computation, whose `compile()` uses the options."""
    return self._get().lower(*args, **kwargs)

  def eval_shape(self, *args, **kwargs):
    return self._get().eval_shape(*args, **kwargs)


def jit(fun: Callable, **kwargs) -> Callable:
  """`jax.jit` with `CPU_COMPILER_OPTIONS` on the CPU backend: how every update here is jitted."""
  return _Jitted(fun, **kwargs)
