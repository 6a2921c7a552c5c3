"""Test set-up: several fake CPU devices for the data-parallel paths, and JAX's persistent
compilation cache in a folder that outlives the session, and the compiled programs of each test
module released at its end.

XLA reads the flag when jax is first imported, so it is set here, before any test module
imports jax. Compiled programs are kept from one session to the next (compilation is most of
the suite's time) in $GANJAX_COMPILATION_CACHE, else ~/.cache/ganjax/xla: the user's folder,
not the fresh $GANJAX_CACHE below. The variable is set for the commands the tests start, so
that they share the folder. GANJAX_COMPILATION_CACHE=off runs the suite without it.
"""
import gc
import importlib
import os
import tempfile

import pytest

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

import jax  # pylint: disable=g-import-not-at-top  (after XLA_FLAGS)

from ganjax import compilation  # pylint: disable=g-import-not-at-top

# Before any test compiles, and resolved before GANJAX_CACHE changes. An unwritable folder
# warns once here, and the commands the tests start run without the cache (each would warn).
os.environ[compilation.CACHE_ENV] = compilation.enable_persistent_cache() or "off"
# Caches (converted Inception weights, real-data features) go to a fresh folder, not ~/.cache.
os.environ["GANJAX_CACHE"] = tempfile.mkdtemp(prefix="ganjax-test-cache-")


# Every program XLA:CPU compiles maps its code and data into the process (readable, executable and
# writable mappings; test_stylegan2.py's programs add about 1,200). JAX keeps the compiled programs
# of its jitted functions for the whole process, and the suite compiles thousands: kept, they filled
# the 65,530 mappings Linux allows a process by default (vm.max_map_count) at 80% of the suite
# (65,511 counted in /proc/self/maps), where the next compilation crashed the process with a
# segmentation fault. Released at the end of each module (test_stylegan2.py: 2,618 mappings at its
# end, 1,551 after, 1,446 before it), the count stays near that of the largest module.
MAPPINGS_FILE = "/proc/self/maps"
MAX_MAP_COUNT_FILE = "/proc/sys/vm/max_map_count"


def _count_lines(path):
  with open(path) as lines:
    return sum(1 for _ in lines)


@pytest.fixture(scope="module", autouse=True)
def release_compiled_programs():
  """After each module: JAX's caches of compiled programs cleared and the garbage collected,
  so that XLA's code is unmapped; where Linux says how many mappings a process may have, a
  module that leaves more than half of them fails with the count instead of crashing later."""
  yield
  jax.clear_caches()
  gc.collect()
  if os.path.exists(MAPPINGS_FILE) and os.path.exists(MAX_MAP_COUNT_FILE):
    with open(MAX_MAP_COUNT_FILE) as limit:
      allowed = int(limit.read())
    held = _count_lines(MAPPINGS_FILE)
    assert held <= allowed // 2, (
        f"the test process holds {held} memory mappings after this module, of the {allowed} "
        "vm.max_map_count allows; something keeps its compiled programs alive")
