"""Studies that reproduce the derivation of adversarial training numerically.

Each study trains real Flax networks with the library's own losses and updates and compares what
it measures with the closed forms of `ganjax.theory`. A study is selected by an experiment file
whose config names the program `study` and the study (`config.program = "study"`,
`config.study = <name>`); it runs with the same command line as a training run:

  python -m ganjax.main --config=experiments/derivation/<study>.py[:quick] --workdir=<dir>

and writes `report.md` and `report.json` (quantity, theory, measurement, error, tolerance; see
`ganjax.derivation.report`) and PNG figures into the workdir. `docs/derivation.md` walks through
the claims and the figures measured.
"""
from __future__ import annotations

import importlib
import importlib.util
import pathlib
import shlex
import time
from typing import Any

from ganjax import experiment
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
    "density_descent": "density_descent",
    "disjoint_supports": "disjoint_supports",
}


def run(config, workdir: str | pathlib.Path) -> Report:
  """Runs the study `config.study` and writes its report into `workdir`.

  Raises:
    experiment.RunError: an unknown study, or a workdir that already holds files (nothing in it
      is changed).
  """
  name = config.study
  if name not in STUDIES:
    raise experiment.RunError(f"unknown study {name!r} (config field 'study'); valid: "
                              f"{', '.join(STUDIES)}")
  module = importlib.import_module(f"ganjax.derivation.{STUDIES[name]}")
  workdir = experiment.new_workdir(workdir)
  started = time.perf_counter()
  report = module.run(config, workdir)
  report.details.setdefault("wall_seconds", round(time.perf_counter() - started, 2))
  report.details.setdefault("config", experiment.config_to_dict(config))
  report.write(workdir)
  _print(report, workdir)
  return report


_EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "derivation"


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
  """{dotted.name: value} of a nested mapping's leaves."""
  if hasattr(tree, "items"):
    leaves = {}
    for key, value in tree.items():
      leaves.update(_leaves(value, f"{prefix}{key}."))
    return leaves
  return {prefix[:-1]: tree}


def _text(value: Any) -> str:
  if isinstance(value, (tuple, list)):
    return "(" + ",".join(_text(item) for item in value) + ("," if len(value) == 1 else "") + ")"
  return f'"{value}"' if isinstance(value, str) else str(value)


def command(config, workdir: str | pathlib.Path) -> str:
  """The command line that reruns the study of `config` into `workdir` exactly: its experiment
  file with the mode (config field `mode`: 'full', or the argument of the file that selected
  another mode), then `--config.<field>=<value>` for every field by which `config` differs from
  that file's `get_config(mode)` (none when the file is not found), so that the command at the
  top of a report reproduces that report."""
  mode = "" if config.mode == "full" else f":{config.mode}"
  base = (f"python -m ganjax.main --config=experiments/derivation/{config.study}.py{mode} "
          f"--workdir={workdir}")
  path = _EXPERIMENTS / f"{config.study}.py"
  if not path.exists():
    return base
  spec = importlib.util.spec_from_file_location(f"_experiment_{config.study}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  default = _leaves(module.get_config(None if config.mode == "full" else config.mode).to_dict())
  given = _leaves(config.to_dict())
  overrides = [f"--config.{name}={_text(value)}" for name, value in given.items()
               if name in default and default[name] != value]
  return " ".join([base, *(shlex.quote(item) for item in overrides)])


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
