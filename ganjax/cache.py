"""Where ganjax caches what it computes once (converted weights, real-data features), and the
file hashes that name them.

The folder is `$GANJAX_CACHE`, or `~/.cache/ganjax` when the variable is unset or empty.
"""
from __future__ import annotations

import hashlib
import os

ENV = "GANJAX_CACHE"


def directory(given: str | os.PathLike | None = None) -> str:
  """`given` if not None, else the cache folder (see the module docstring)."""
  if given is not None:
    return os.fspath(given)
  return os.environ.get(ENV) or os.path.join(os.path.expanduser("~"), ".cache", "ganjax")


def file_sha256(path: str | os.PathLike) -> str:
  """The SHA-256 of a file's bytes, in hex, read in 1 MiB blocks."""
  digest = hashlib.sha256()
  with open(path, "rb") as file:
    for block in iter(lambda: file.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()
