"""Paths a user types, resolved once against the current directory.

Orbax writes only to absolute paths, and a path saved in a checkpoint's config must name the
same file whatever directory a later command (a resume, `ganjax.sample`, `ganjax.evaluate`) is
started from. So every path that comes from a user, a workdir or a path field of a config, is
made absolute where it enters: `absolute(path)`, `with_absolute_paths(config)`.
"""
from __future__ import annotations

import copy
import os
from typing import Any

# The config fields that hold paths (those an experiment file may leave unset: None).
CONFIG_PATH_FIELDS = ("data.folder", "data.data_dir", "eval.inception_weights",
                      "eval.classifier", "eval.stats_dir")


def absolute(path: str | os.PathLike | None) -> str | None:
  """`path` with `~` expanded, made absolute against the current directory.

  A URL such as gs://bucket/run (anything with '://') is returned as it is; None stays None.
  """
  if path is None:
    return None
  text = os.fspath(path)
  if "://" in text:
    return text
  return os.path.abspath(os.path.expanduser(text))


def with_absolute_paths(config: Any) -> Any:
  """A copy of an experiment config whose path fields (`CONFIG_PATH_FIELDS`) are absolute.

  Fields that the config lacks, that are None or that are empty strings are left as they are.
  """
  config = copy.deepcopy(config)
  for name in CONFIG_PATH_FIELDS:
    section, field = name.split(".")
    node = config.get(section) if hasattr(config, "get") else None
    if node is None or not hasattr(node, "get") or not node.get(field):
      continue
    node[field] = absolute(node[field])
  return config
