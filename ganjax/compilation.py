"""How ganjax compiles: `jax.jit` with XLA options chosen for the backend, and JAX's persistent
compilation cache, which keeps compiled programs on disk for the next process. Depends on nothing
else in ganjax but `ganjax.cache`, so that every layer (models, feature networks, the updates)
can use it.
"""
from __future__ import annotations

import functools
import os
import sys
import tempfile
from typing import Callable

import jax
from jax.experimental.compilation_cache import compilation_cache as jax_compilation_cache

from ganjax import cache

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


CACHE_ENV = "GANJAX_COMPILATION_CACHE"
# What --compilation_cache or $GANJAX_COMPILATION_CACHE says to turn the cache off.
CACHE_OFF = ("off", "none", "0", "")
# A program is written to the cache when it took at least this long to compile. ganjax's updates,
# initialisations and feature networks take 0.5-20 s on 2 CPU cores (JAX's default, 1 s, would
# leave out the ring's initialisation, 0.75 s); what takes less is mostly jax.numpy's single
# operations on each new shape (20-60 ms each; `jax.random.normal` 0.15 s), which would be many
# small files. Over tests/test_train.py, 84 of 371 programs compiled in 0.2 s or more, and they
# took 236 of the 249 s of compilation. Reading a program back takes 2-4 ms for a small one,
# 0.12 s for the ring's training step (1.3 MB; 1.6 s to compile).
CACHE_MIN_COMPILE_SECONDS = 0.2
# No threshold on an entry's size (-1; JAX's 0 lets it pick one): the time a program saves is
# its compile time, whatever the size of its executable.
CACHE_MIN_ENTRY_BYTES = -1
# The folder has no size limit: JAX's (jax_compilation_cache_max_size, least recently used out)
# needs the filelock package, which ganjax does not depend on. An entry is 2 KB to a few MB; the
# 42 tests of test_train.py, test_experiment.py and test_cli.py leave 67-83 entries, 9.4 MB.


def cache_directory(directory: str | None = None) -> str | None:
  """The folder of the persistent compilation cache, or None when it is off.

  Args:
    directory: the folder, or "off" (also "none", "0" or "") for no cache; None: the
      environment variable GANJAX_COMPILATION_CACHE says so, and when it is unset,
      `<ganjax.cache.directory()>/xla` (~/.cache/ganjax/xla unless $GANJAX_CACHE is set).

  Returns:
    The folder as an absolute path, or None.
  """
  if directory is None:
    directory = os.environ.get(CACHE_ENV)
  if directory is None:
    directory = os.path.join(cache.directory(), "xla")
  if directory.strip().lower() in CACHE_OFF:
    return None
  return os.path.abspath(os.path.expanduser(directory))


def _unwritable(directory: str) -> OSError | None:
  """The error of creating `directory` and a file in it, or None when both work."""
  try:
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".ganjax-probe-"):
      pass
  except OSError as error:
    return error
  return None


def enable_persistent_cache(directory: str | None = None) -> str | None:
  """Turns JAX's persistent compilation cache on in `directory` (or off).

  A program that compiled in `CACHE_MIN_COMPILE_SECONDS` or more is written to the folder, and
  a later process that compiles the same program loads it instead. JAX's cache key holds the
  computation with its shapes, the devices, the compiler options (`CPU_COMPILER_OPTIONS`
  included), XLA_FLAGS, the jax version and, through an option of GPU autotuning, the folder's
  path: a folder moved elsewhere starts empty. Programs with host callbacks are not cached.
  Several processes may share the folder: in a multi-process job only process 0 writes. An
  entry is written in one go, but not through a temporary file: a process that reads it at that
  moment gets a read error, which JAX turns into a warning and a compilation.

  Call it before anything compiles: what compiled before is not written. JAX opens the folder at
  the first compilation that finds one set and keeps it for the process; called again, this
  function drops the open folder, so that the next compilation opens the new one.

  A folder that cannot be created or written to prints one warning line on stderr, and the
  process compiles without the cache.

  Args:
    directory: see `cache_directory` ("off" turns the cache off; None: the environment
      variable, else the default folder).

  Returns:
    The folder in use, or None when the cache is off.
  """
  folder = cache_directory(directory)
  if folder is not None and (error := _unwritable(folder)) is not None:
    print(f"warning: the compilation cache {folder} cannot be written "
          f"({error.strerror or error}); compiling without it", file=sys.stderr)
    folder = None
  jax.config.update("jax_compilation_cache_dir", folder)
  if folder is not None:
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", CACHE_MIN_ENTRY_BYTES)
  jax_compilation_cache.reset_cache()
  return folder
