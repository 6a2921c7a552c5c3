"""The programs an experiment file can name in `config.program`, each `run(config, workdir) ->
dict` with the workdir held (`ganjax.workdir`) and its paths absolute:

  gan     `ganjax.programs.gan`: trains (or resumes) one GAN and evaluates it; returns the
          summary written to summary.json. The default.
  seeds   `ganjax.programs.seeds`: the mode-collapse benchmark, seeds of one configuration
          trained side by side; returns the row written to row.json.
  study   `ganjax.programs.study`: a derivation study (`ganjax.derivation`); returns its report.

`ganjax.runner.train_and_evaluate` runs the program a config names; nothing inspects a config to
guess it. Each program is imported when it is asked for.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from ganjax.experiment import RunError

DEFAULT = "gan"
ALL_PROGRAMS = {"gan": "ganjax.programs.gan", "seeds": "ganjax.programs.seeds",
                "study": "ganjax.programs.study"}

Program = Callable[[Any, Any], dict]


def get_program(name: str) -> Program:
  """The `run` function of the program `name`.

  Raises:
    RunError: an unknown name, naming the valid ones.
  """
  if name not in ALL_PROGRAMS:
    raise RunError(f"unknown program {name!r} (config field 'program'); valid: "
                   f"{', '.join(ALL_PROGRAMS)}")
  return importlib.import_module(ALL_PROGRAMS[name]).run
