"""The program `study` of `ganjax.programs`: a derivation study (`ganjax.derivation.run`), its
report written into the workdir and returned as a dict."""
from __future__ import annotations

import pathlib
from typing import Any


def run(config, workdir: pathlib.Path) -> dict[str, Any]:
  """Runs the study `config.study` in `workdir`; returns its report (`Report.to_dict()`)."""
  from ganjax import derivation
  return derivation.run(config, workdir).to_dict()
