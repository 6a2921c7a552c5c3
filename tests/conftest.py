"""Test set-up: several fake CPU devices for the data-parallel paths, and JAX's persistent
compilation cache in a folder that outlives the session.

XLA reads the flag when jax is first imported, so it is set here, before any test module
imports jax. Compiled programs are kept from one session to the next (compilation is most of
the suite's time) in $GANJAX_COMPILATION_CACHE, else ~/.cache/ganjax/xla: the user's folder,
not the fresh $GANJAX_CACHE below. The variable is set for the commands the tests start, so
that they share the folder. GANJAX_COMPILATION_CACHE=off runs the suite without it.
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

# Before any test compiles, and resolved before GANJAX_CACHE changes. An unwritable folder
# warns once here, and the commands the tests start run without the cache (each would warn).
os.environ[compilation.CACHE_ENV] = compilation.enable_persistent_cache() or "off"
# Caches (converted Inception weights, real-data features) go to a fresh folder, not ~/.cache.
os.environ["GANJAX_CACHE"] = tempfile.mkdtemp(prefix="ganjax-test-cache-")
