"""Data: toy distributions sampled on the device (`toy`) and TFDS image pipelines (`images`).

`images` imports TensorFlow, which takes seconds, so it is imported on first use
(`ganjax.data.images`, `from ganjax.data import images`), never by `import ganjax.data`.
"""
import importlib

from ganjax.data import toy


def __getattr__(name: str):
  if name == "images":
    return importlib.import_module("ganjax.data.images")
  raise AttributeError(f"module 'ganjax.data' has no attribute {name!r}")
