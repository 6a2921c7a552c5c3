"""Test set-up: several fake CPU devices for the data-parallel paths, and JAX's persistent
compilation cache where GANJAX_COMPILATION_CACHE names a folder.

XLA reads the flag when jax is first imported, so it is set here, before any test module
imports jax. With GANJAX_COMPILATION_CACHE=<folder>, compiled programs are kept from one
session to the next in that folder (JAX's persistent compilation cache; compilation is most of
the suite's time), and the commands the tests start share it. Without it the suite runs without
the cache, as every command does on a CPU (`ganjax.compilation.enable_persistent_cache`: XLA:CPU
crashed once writing a program to it).
"""
import importlib
import os
import tempfile

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# With the `fid-test` extra installed, PyTorch is imported here, before any test imports
# TensorFlow: importing torch 2.14 into a process that already holds TensorFlow 2.21 crashes it
# (a segmentation fault while torchvision loads), the other order works.
for _module in ("torch", "torchvision"):
  try:
    importlib.import_module(_module)
  except ImportError:
    break

from ganjax import compilation  # pylint: disable=g-import-not-at-top  (it imports jax)

# Before any test compiles. Off unless the variable names a folder (the backend is not looked up
# here). An unwritable folder warns once here, and the commands the tests start run without the
# cache (each would warn).
os.environ.setdefault(compilation.CACHE_ENV, "off")
os.environ[compilation.CACHE_ENV] = compilation.enable_persistent_cache() or "off"
# Caches (converted Inception weights, real-data features) go to a fresh folder, not ~/.cache.
os.environ["GANJAX_CACHE"] = tempfile.mkdtemp(prefix="ganjax-test-cache-")
