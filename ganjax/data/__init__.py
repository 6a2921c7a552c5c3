"""Data: toy distributions sampled on the device (`toy`) and TFDS image pipelines (`images`).

`images` imports TensorFlow, which takes seconds, so it is imported on first use
(`ganjax.data.images`, `from ganjax.data import images`), never by `import ganjax.data`.
"""
import importlib

from ganjax.data import toy

DEFAULT_SHUFFLE_BUFFER = 10_000


def image_config(name: str, *, image_size: int, **fields):
  """`config.data` of an image experiment file, with every field of `ganjax.data.images`, so that
  each can be set on the command line: --config.data.name=folder --config.data.folder=<dir>
  --config.data.channels=1 trains on one's own images.

  Args:
    name: the dataset (`images.VALID_NAMES`).
    image_size: the side of the (square) images the models take.
    **fields: other fields' values (split, crop_size, shuffle_buffer, ...).

  Returns:
    An `ml_collections.ConfigDict`: name, split ('train'), data_dir, folder, channels and
    crop_size (unset: None), image_size, shuffle_buffer (10,000), shards (0: one per process),
    and `fields`.
  """
  import ml_collections
  from ml_collections import config_dict
  values = {"name": name, "split": "train", "data_dir": config_dict.placeholder(str),
            "image_size": image_size, "folder": config_dict.placeholder(str),
            "channels": config_dict.placeholder(int), "crop_size": config_dict.placeholder(int),
            "shuffle_buffer": DEFAULT_SHUFFLE_BUFFER, "shards": 0}
  unknown = sorted(set(fields) - set(values))
  if unknown:
    raise ValueError(f"image_config has no field {unknown[0]!r}; fields: {', '.join(values)}")
  values.update(fields)
  return ml_collections.ConfigDict(values)


def __getattr__(name: str):
  if name == "images":
    return importlib.import_module("ganjax.data.images")
  raise AttributeError(f"module 'ganjax.data' has no attribute {name!r}")
