"""The experiment runner: `train_and_evaluate(config, workdir)` runs the program an experiment
file names (`config.program`, `ganjax.programs`: the GAN trainer by default, the mode-collapse
benchmark, a derivation study) in a workdir. It is what `python -m ganjax.main` calls; a test or
a notebook can call it directly.

Before the program starts, the workdir and the config's path fields are made absolute
(`ganjax.paths`) and the workdir is held for the run (`ganjax.workdir`): a second process on it
is refused, and nothing in it is changed. Everything a config can get wrong (a name, a field, a
dataset that is not prepared, a workdir that holds another run) is reported as a `RunError` in
one line before anything is compiled (`ganjax.experiment`).
"""
from __future__ import annotations

import contextlib
import pathlib
from typing import Any

from ganjax import paths
from ganjax import programs
from ganjax import workdir as workdir_lib
# The experiment layer's names, also here for callers of this module.
from ganjax.experiment import Preempted, RunError  # noqa: F401
from ganjax.experiment import build as build_experiment  # noqa: F401
from ganjax.experiment import config_from_dict, config_to_dict  # noqa: F401


def train_and_evaluate(config, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Runs the program of `config` (`config.program`, default 'gan') in `workdir`.

  `workdir` and the config's path fields (`ganjax.paths.CONFIG_PATH_FIELDS`) may be relative to
  the current directory; they are made absolute here, and the config is saved with them so. The
  run holds the workdir (`ganjax.workdir.hold`) from before it writes anything until it returns.

  Returns:
    What the program returns: for 'gan' the summary written to summary.json (trained or resumed
    from the latest checkpoint of the same experiment), for 'seeds' the benchmark row written to
    row.json, for 'study' the study's report.

  Raises:
    RunError: a bad config, a workdir in use by another experiment or by another process, a
      damaged checkpoint, or a non-finite loss (naming the step and the last good checkpoint,
      which is kept).
    Preempted: after SIGTERM/SIGINT, once the checkpoint is saved.
  """
  workdir = pathlib.Path(paths.absolute(workdir))
  config = paths.with_absolute_paths(config)
  program = programs.get_program(config.get("program", programs.DEFAULT))
  with contextlib.ExitStack() as held:
    try:
      held.enter_context(workdir_lib.hold(workdir))
    except (workdir_lib.WorkdirInUse, NotADirectoryError) as error:
      raise RunError(str(error)) from None
    return program(config, workdir)
