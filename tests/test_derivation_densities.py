"""The 1-D density studies of `ganjax.derivation` in their quick modes: each trains real networks
with the library's steps, and its measured errors must stay within the tolerances stated here,
chosen from what the quick runs achieve (the full runs, with their own tolerances in the
experiment files, are in the comments). The report's files must hold the same numbers.
"""
import importlib.util
import json
import pathlib

import pytest

from ganjax import derivation

EXPERIMENTS = pathlib.Path(__file__).resolve().parent.parent / "experiments" / "derivation"
STUDIES = ("optimal_discriminator", "training_criterion", "equilibrium", "fgan_bounds")


def _get_config(study, arg=None):
  spec = importlib.util.spec_from_file_location(f"derivation_{study}",
                                                EXPERIMENTS / f"{study}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _run_quick(study, tmp_path):
  """Runs the quick mode and checks the files it writes against the returned report."""
  workdir = tmp_path / study
  report = derivation.run(_get_config(study, "quick"), workdir)
  saved = json.loads((workdir / "report.json").read_text())
  assert saved["study"] == study
  assert saved["passed"] == report.passed
  assert [(row["quantity"], row["theory"], row["measured"], row["error"], row["tolerance"])
          for row in saved["rows"]] == [
              (row.quantity, row.theory, row.measured, row.error, row.tolerance)
              for row in report.rows]
  markdown = (workdir / "report.md").read_text()
  assert all(row.quantity in markdown for row in report.rows)
  assert report.figures and saved["figures"] == report.figures
  for figure in report.figures:
    assert (workdir / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({figure})" in markdown
  return report


def _assert_errors(report, tolerances):
  """Every row of the report is listed in `tolerances` and its error is within it."""
  assert sorted(row.quantity for row in report.rows) == sorted(tolerances)
  failed = {row.quantity: (row.error, tolerances[row.quantity]) for row in report.rows
            if not row.error <= tolerances[row.quantity]}
  assert not failed, f"errors above the tolerances (error, tolerance): {failed}"


@pytest.mark.parametrize("study", STUDIES)
def test_experiment_file(study):
  module_doc = (EXPERIMENTS / f"{study}.py").read_text()
  command = f"python -m ganjax.main --config=experiments/derivation/{study}.py"
  lines = [line.strip() for line in module_doc.split('"""')[1].splitlines()]
  assert lines[2].startswith(f"{command} --workdir=")
  assert lines[3].startswith(f"{command}:quick --workdir=")
  for arg in (None, "quick"):
    config = _get_config(study, arg)
    assert config.study == study and study in derivation.STUDIES
    assert config.mode == (arg or "full")
  with pytest.raises(ValueError, match="quick"):
    _get_config(study, "tiny")


def test_optimal_discriminator(tmp_path):
  report = _run_quick("optimal_discriminator", tmp_path)
  _assert_errors(report, {
      # Quick runs (seeds 0, 1, 2): 0.029, 0.035, 0.022; full runs: 0.013, 0.015, 0.011.
      "max abs(D - D*) on the region": 0.06,
      # Quick: 0.0062, 0.0071, 0.0056; full: 0.0028, 0.0028, 0.0026.
      "mean abs(D - D*) under (p_data + p_g) / 2": 0.012,
      # V <= C(G) for any D: how far the trained D falls short of D*. Quick: 1.4e-3, 1.6e-3,
      # 1.2e-3; full: 3.4e-4, 3.9e-4, 3.8e-4.
      "V(D, G) by quadrature vs C(G)": 0.003,
      # Quick: 1.9e-3, 4.7e-4, 2.1e-3 (standard error 1.7e-3); full: 1.9e-4, 8.7e-4, 5.8e-4
      # (standard error 8.6e-4).
      "V(D, G) by Monte Carlo vs C(G)": 0.006,
  })


def test_training_criterion(tmp_path):
  report = _run_quick("training_criterion", tmp_path)
  _assert_errors(report, {
      # Quick runs (seeds 0, 1, 2): 4.7e-4, 5.6e-4, 6.1e-4 and 9.2e-4, 9.7e-4, 7.8e-4; full runs:
      # 1.9e-4, 2.1e-4, 2.1e-4 and 4.1e-4, 3.9e-4, 3.8e-4. C(G) spans 0.67 over the sweep.
      "mean sweep: max abs(V(D, G) - C(G))": 1.5e-3,
      "scale sweep: max abs(V(D, G) - C(G))": 2e-3,
      # Quick: 7.1e-5, 3.3e-5, 1.7e-4 and 1.2e-4, 1.0e-4, 7.9e-5; full: at most 4.8e-5 and
      # 7.7e-5. The sweep steps are 0.5 in the mean and a factor 2^0.5 in the scale.
      "argmin of the measured C(G) over the mean b": 1e-3,
      "argmin of the measured C(G) over the scale w": 1e-3,
      # Quick: 1.1e-4, 5.8e-5, 1.2e-4; full: 3.9e-5, 3.4e-5, 4.3e-5.
      "minimum measured C(G) vs -log 4": 3e-4,
  })


def test_equilibrium(tmp_path):
  report = _run_quick("equilibrium", tmp_path)
  _assert_errors(report, {
      # Quick runs (seeds 0, 1, 2), then full runs. Mean: 0.0042, 0.0061, 0.0023; 0.0020, 0.0021,
      # 0.0073. Std: 0.010, 0.0060, 0.0033; 6.6e-4, 0.012, 2.6e-4. From the initial generator the
      # JSD is about 0.1: 5.7e-5, 2.8e-5, 6.8e-6; 1.3e-6, 7.9e-5, 1.4e-5.
      "affine G: mean of p_g vs data mean": 0.015,
      "affine G: std of p_g vs data std": 0.02,
      "affine G: JSD(p_data, p_g), quadrature": 2e-4,
      # 0.0079, 0.0020, 0.0068; 0.0031, 0.0033, 0.0034.
      "affine G: max abs(D - 1/2) where the data are": 0.015,
      # 0.0014, 4.8e-4, 8.2e-4; 8.5e-4, 8.8e-4, 3.1e-4.
      "affine G: mean abs(D - 1/2) under p_data": 0.003,
      # 6.6e-6, 8.5e-6, 3.7e-6; 1.9e-6, 6e-7, 6.7e-6.
      "affine G: V(D, G) vs -log 4": 1e-4,
      # The MLP generator on the two-mode mixture keeps mass between the modes and its p_g
      # still moves at the end: JSD 0.021, 0.0082, 0.022; 0.0024, 0.014, 0.018. A dropped mode
      # would give about 0.2.
      "MLP G: JSD(p_data, p_g), smoothed": 0.04,
      # 0.12, 0.20, 0.16; 0.11, 0.14, 0.10 (at the inner edges of the modes).
      "MLP G: max abs(D - 1/2) where the data are": 0.3,
      # 0.0067, 0.012, 0.033; 0.0089, 0.0069, 0.0055.
      "MLP G: mean abs(D - 1/2) under p_data": 0.05,
      # 0.0052, 0.0079, 0.016; 0.0038, 0.0040, 0.0026.
      "MLP G: V(D, G) vs -log 4": 0.025,
      # C(G) = -log 4 + 2 JSD with a retrained D: 0.047 (seed 0); full 0.0043 (seed 0), 0.034
      # (seed 2).
      "MLP G: C(G) = max_D V(D, G) vs -log 4": 0.08,
  })


def test_fgan_bounds(tmp_path):
  report = _run_quick("fgan_bounds", tmp_path)
  _assert_errors(report, {
      # D_f - bound. Quick runs (seeds 0, 1, 2): 1.2e-3, 1.1e-3, 1.4e-3 (D_f = 0.377) and 1.2e-3,
      # 7.5e-4, 9.4e-4 (D_f = 0.197); full runs: 8.9e-4, 1.1e-3, 9.1e-4 and 4.5e-4, 5.0e-4,
      # 4.7e-4.
      "kl: bound (quadrature) vs D_f": 0.003,
      "jensen_shannon: bound (quadrature) vs D_f": 0.0025,
      # A bound above D_f by more than 3 standard errors would contradict Fenchel-Young.
      "largest (Monte Carlo bound - D_f) / standard error": 3.0,
  })
  for row in report.rows[:-1]:
    assert row.measured <= row.theory  # A lower bound, pointwise on the grid.
  # The library's 'jensen_shannon' (the paper's f) is 2 JSD, not JSD.
  jensen_shannon = report.row("jensen_shannon: bound (quadrature) vs D_f")
  assert jensen_shannon.theory == pytest.approx(2 * report.details["jsd"], rel=1e-4)
