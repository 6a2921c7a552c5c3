"""Test set-up: several fake CPU devices for the data-parallel paths.

XLA reads the flag when jax is first imported, so it is set here, before any test module
imports jax.
"""
import importlib
import os
import tempfile

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Caches (converted Inception weights, real-data features) go to a fresh folder, not ~/.cache.
os.environ["GANJAX_CACHE"] = tempfile.mkdtemp(prefix="ganjax-test-cache-")

# With the `fid-test` extra installed, PyTorch is imported here, before any test imports
# TensorFlow: importing torch 2.14 into a process that already holds TensorFlow 2.21 crashes it
# (a segmentation fault while torchvision loads), the other order works.
for _module in ("torch", "torchvision"):
  try:
    importlib.import_module(_module)
  except ImportError:
    break
