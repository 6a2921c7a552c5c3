"""Studies that reproduce the derivation of adversarial training numerically.

Each study trains real Flax networks with the library's own losses and updates and compares what
it measures with the closed forms of `ganjax.theory`. A study is selected by an experiment file
whose config has a `study` field; it runs with the same command line as a training run:

  python -m ganjax.main --config=experiments/derivation/<study>.py[:quick] --workdir=<dir>

and writes `report.md` and `report.json` (quantity, theory, measurement, error, tolerance; see
`ganjax.derivation.report`) and PNG figures into the workdir. `docs/derivation.md` walks through
the claims and the figures measured.
"""
from __future__ import annotations

import importlib
import pathlib
import time

from ganjax.derivation.report import Report, Row

# study name -> module under ganjax.derivation defining run(config, workdir) -> Report
STUDIES = {
    "optimal_discriminator": "optimal_discriminator",
    "training_criterion": "training_criterion",
    "equilibrium": "equilibrium",
    "saturation": "saturation",
    "non_saturating_gradient": "non_saturating_gradient",
    "convergence": "convergence",
    "fgan_bounds": "fgan_bounds",
}


def run(config, workdir: str | pathlib.Path) -> Report:
  """Runs the study `config.study` and writes its report into `workdir`.

  Raises:
    runner.RunError: an unknown study, or a workdir that already holds files (nothing in it is
      changed).
  """
  from ganjax import runner
  name = config.study
  if name not in STUDIES:
    raise runner.RunError(f"unknown study {name!r} (config field 'study'); valid: "
                          f"{', '.join(STUDIES)}")
  module = importlib.import_module(f"ganjax.derivation.{STUDIES[name]}")
  workdir = runner.new_workdir(workdir)
  started = time.perf_counter()
  report = module.run(config, workdir)
  report.details.setdefault("wall_seconds", round(time.perf_counter() - started, 2))
  report.details.setdefault("config", runner.config_to_dict(config))
  report.write(workdir)
  _print(report, workdir)
  return report


def command(config, workdir: str | pathlib.Path) -> str:
  """The command line that runs the study of `config` into `workdir` (config field `mode`:
  'full', or the argument of its experiment file that selected another mode)."""
  mode = "" if config.mode == "full" else f":{config.mode}"
  return (f"python -m ganjax.main --config=experiments/derivation/{config.study}.py{mode} "
          f"--workdir={workdir}")


def _print(report: Report, workdir: pathlib.Path) -> None:
  width = max([len(row.quantity) for row in report.rows] + [8])
  print(f"{report.title}", flush=True)
  for row in report.rows:
    print(f"  {row.quantity:<{width}}  theory {row.theory:>11.5g}  measured {row.measured:>11.5g}"
          f"  error {row.error:>10.3g} <= {row.tolerance:<8.3g} {'ok' if row.passed else 'NO'}",
          flush=True)
  print(f"report: {workdir / 'report.md'} ({sum(r.passed for r in report.rows)}/"
        f"{len(report.rows)} within tolerance)", flush=True)


def save_figure(figure, workdir: str | pathlib.Path, name: str, report: Report) -> None:
  """Saves a matplotlib figure as workdir/name and lists it in the report."""
  figure.savefig(pathlib.Path(workdir) / name, dpi=110, bbox_inches="tight")
  import matplotlib.pyplot as plt
  plt.close(figure)
  report.figures.append(name)


def pyplot():
  """matplotlib.pyplot on the non-interactive Agg backend (batch jobs have no display)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


__all__ = ["Report", "Row", "STUDIES", "command", "run", "save_figure", "pyplot"]
