"""The derivation studies' report (theory against measurement) and their dispatch."""
import importlib.util
import json
import math
import pathlib
import re

import ml_collections
import pytest

from ganjax import derivation
from ganjax import runner
from ganjax.derivation import report as report_lib


def test_errors_by_kind_and_tolerance():
  report = report_lib.Report("demo", "Demo")
  absolute = report.add("absolute", theory=2.0, measured=2.5, tolerance=0.4)
  relative = report.add("relative", theory=-4.0, measured=-5.0, tolerance=0.3, kind="relative")
  value = report.add("bound", theory=0.0, measured=0.01, tolerance=0.02, kind="value")
  given = report.add("given", theory=1.0, measured=3.0, tolerance=0.5, error=0.1)
  assert absolute.error == pytest.approx(0.5) and not absolute.passed
  assert relative.error == pytest.approx(0.25) and relative.passed
  assert value.error == pytest.approx(0.01) and value.passed
  assert given.error == pytest.approx(0.1) and given.passed
  assert not report.passed
  assert report.row("relative") is relative
  with pytest.raises(KeyError, match="no row 'missing'"):
    report.row("missing")
  with pytest.raises(ValueError, match="unknown error kind 'squared'"):
    report.add("bad", 0.0, 0.0, 1.0, kind="squared")


def test_non_finite_measurement_never_passes():
  report = report_lib.Report("demo", "Demo")
  row = report.add("diverged", theory=1.0, measured=math.nan, tolerance=math.inf)
  assert not row.passed and not report.passed


def test_markdown_and_json_hold_the_same_numbers(tmp_path):
  report = report_lib.Report("demo", "Demo study", command="python -m ganjax.main ...")
  report.add("V(D, G)", theory=-1.386294, measured=-1.38, tolerance=0.01, note="quadrature")
  report.add("max |D - D*|", theory=0.0, measured=0.02, tolerance=0.01)
  report.figures.append("curve.png")
  report.details["grid"] = [1.0, math.inf]
  report.write(tmp_path)
  saved = json.loads((tmp_path / "report.json").read_text())
  assert saved["passed"] is False and saved["study"] == "demo"
  assert [r["quantity"] for r in saved["rows"]] == ["V(D, G)", "max |D - D*|"]
  assert [r["passed"] for r in saved["rows"]] == [True, False]
  assert saved["rows"][0]["error"] == pytest.approx(abs(-1.38 + 1.386294))
  assert saved["details"]["grid"] == [1.0, "inf"]
  markdown = (tmp_path / "report.md").read_text()
  table = [line for line in markdown.splitlines() if line.startswith("| V(D, G)")]
  assert len(table) == 1 and "| -1.386 | -1.38 |" in table[0] and table[0].endswith("| yes |")
  assert "| NO |" in markdown and "![curve.png](curve.png)" in markdown
  # A '|' in a quantity's name is escaped, so the row keeps its six cells.
  row = next(line for line in markdown.splitlines() if line.startswith("| max"))
  assert "max \\|D - D*\\|" in row and len(re.split(r"(?<!\\)\|", row)) == 8


def test_dispatch_refuses_unknown_program_study_and_used_workdir(tmp_path):
  config = ml_collections.ConfigDict({"program": "study", "study": "no_such_study", "seed": 0})
  with pytest.raises(runner.RunError, match="unknown study 'no_such_study'.*optimal_discriminator"):
    runner.train_and_evaluate(config, tmp_path / "new")
  config.program = "studdy"
  with pytest.raises(runner.RunError, match="unknown program 'studdy'.*gan, seeds, study"):
    runner.train_and_evaluate(config, tmp_path / "new")
  assert not (tmp_path / "new").exists()
  (tmp_path / "used").mkdir()
  (tmp_path / "used" / "keep.txt").write_text("mine")
  config = ml_collections.ConfigDict({"study": "saturation", "seed": 0})
  with pytest.raises(runner.RunError, match="not a new or empty directory"):
    derivation.run(config, tmp_path / "used")
  assert (tmp_path / "used" / "keep.txt").read_text() == "mine"
  assert sorted(p.name for p in (tmp_path / "used").iterdir()) == ["keep.txt"]


STUDY_FILES = sorted((pathlib.Path(__file__).resolve().parent.parent / "experiments" /
                      "derivation").glob("*.py"))


def test_every_study_has_an_experiment_file():
  assert sorted(path.stem for path in STUDY_FILES) == sorted(derivation.STUDIES)


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda path: path.stem)
def test_study_files_start_with_their_commands_and_reject_unknown_arguments(path):
  spec = importlib.util.spec_from_file_location(f"study_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  command = f"python -m ganjax.main --config=experiments/derivation/{path.name}"
  full, quick = module.__doc__.splitlines()[2:4]
  assert full.strip().startswith(command + " --workdir=")
  assert quick.strip().startswith(command + ":quick --workdir=")
  for arg in (None, "quick"):
    config = module.get_config(arg)
    assert config.study == path.stem and config.mode == (arg or "full")
    assert derivation.command(config, "w") == f"{command}{':quick' if arg else ''} --workdir=w"
  with pytest.raises(ValueError, match="quick"):
    module.get_config("fast")
