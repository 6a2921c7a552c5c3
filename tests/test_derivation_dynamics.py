"""Quick modes of the training-dynamics studies: saturation, non_saturating_gradient, convergence.

Each test runs `experiments/derivation/<study>.py:quick` through `ganjax.derivation.run` into a
temporary workdir and holds every row of the report to a tolerance stated here (not the
config's, so that loosening an experiment file cannot loosen the test). The comment on each
tolerance gives what the full run and the quick run measured on CPU.
"""
import importlib.util
import json
import pathlib

import pytest

from ganjax import derivation

EXPERIMENTS = pathlib.Path(__file__).resolve().parent.parent / "experiments" / "derivation"


def _quick_config(study):
  spec = importlib.util.spec_from_file_location(f"derivation_{study}",
                                                EXPERIMENTS / f"{study}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("quick")


def _run(study, workdir):
  """Runs the quick mode and checks what it wrote against what it returned."""
  report = derivation.run(_quick_config(study), workdir)
  written = json.loads((workdir / "report.json").read_text())
  assert written["study"] == study
  assert [row["quantity"] for row in written["rows"]] == [row.quantity for row in report.rows]
  for row, stored in zip(report.rows, written["rows"]):
    assert (stored["theory"], stored["measured"], stored["error"], stored["tolerance"]) == (
        row.theory, row.measured, row.error, row.tolerance)
  assert written["figures"] == report.figures and report.figures
  for name in report.figures:
    assert (workdir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"![{name}]({name})" in (workdir / "report.md").read_text()
  return report


def _check_errors(report, tolerances):
  """Every row of the report has a tolerance here, and its error is within it."""
  assert sorted(row.quantity for row in report.rows) == sorted(tolerances)
  for quantity, tolerance in tolerances.items():
    assert report.row(quantity).error <= tolerance, (quantity, report.row(quantity))


def test_unknown_mode_names_the_valid_ones():
  for study in ("saturation", "non_saturating_gradient", "convergence"):
    spec = importlib.util.spec_from_file_location(f"derivation_{study}",
                                                  EXPERIMENTS / f"{study}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.get_config().study == study
    with pytest.raises(ValueError, match="valid: quick"):
      module.get_config("tiny")


def test_saturation_quick(tmp_path):
  report = _run("saturation", tmp_path)
  _check_errors(report, {
      # float32 rounding of the logit gradient against float64 -D: full 4.9e-7, quick 4.9e-7.
      "max abs(dL/da - (-D)) over the sweep, minimax": 2e-6,
      # full 4.9e-7, quick 4.9e-7.
      "max abs(dL/da - (-(1 - D))) over the sweep, non_saturating": 2e-6,
      # autodiff through G and D against the chain rule: full 1.8e-7, quick 2.7e-7.
      "max relative error of grad_theta L vs the chain rule, minimax": 1e-6,
      # full 2.1e-7, quick 1.8e-7.
      "max relative error of grad_theta L vs the chain rule, non_saturating": 1e-6,
      # the pre-trained D rejects the fakes: full and quick 2.3e-3.
      "mean D(G(z)) at the start (a strong D)": 0.01,
      # relative error against E[D] / (1 - E[D]): full and quick 0.083.
      "dL/db at the start, minimax / non-saturating": 0.2,
      # relative error of the 10-step displacement ratio: full and quick 0.097.
      "distance G's mean moves in 10 steps (sgd), minimax / non-saturating": 0.25,
      # steps ratio (an upper bound: minimax never reaches): full 97/5000, quick 97/1000.
      "steps to reach the data, non-saturating / minimax (sgd)": 0.15,
  })
  # The minimax generator is the slow one by a factor of hundreds at the start.
  assert report.row("dL/db at the start, minimax / non-saturating").measured < 0.01


def test_non_saturating_gradient_quick(tmp_path):
  report = _run("non_saturating_gradient", tmp_path)
  points = ((0.5, 1.5), (1, 0.8), (3, 1), (-1, 0.4))
  angles = [f"angle (degrees) between NS and JSD gradients at (b, w) = ({b:g}, {w:g})"
            for b, w in points]
  _check_errors(report, {
      # latent-quantile quadrature (error ~ 1/samples): full 3.7e-5, quick 1.4e-4.
      "max relative error: NS gradient with D* vs grad [KL - 2 JSD]": 3e-4,
      # full 1.7e-5, quick 3.8e-5.
      "max relative error: minimax gradient with D* vs grad 2 JSD": 1e-4,
      # degrees: full 6.8e-4, quick 1.6e-3.
      **{angle: 5e-3 for angle in angles},
      # a trained D instead of D*: full 0.18, quick 0.29.
      "max relative error: NS gradient with trained D vs grad [KL - 2 JSD]": 0.4,
      # degrees: full 4.9, quick 8.0.
      "max angle (degrees): NS gradient with trained D vs grad [KL - 2 JSD]": 12.0,
  })
  # The non-saturating direction is not the JSD's: 18 to 55 degrees apart at these points.
  assert min(report.row(angle).theory for angle in angles) > 15.0


def test_convergence_quick(tmp_path):
  report = _run("convergence", tmp_path)
  rates = {(update, gamma): f"Dirac-GAN log growth per step: minimax, {update}, gamma={gamma:g}"
           for update in ("simultaneous", "alternating") for gamma in (0.0, 0.3)}
  _check_errors(report, {
      # the library's steps against theory.simulate_dirac_gan: quick 0 (bitwise), full 1.1e-30
      # (the decaying Wasserstein runs reach the data's spread of 1e-30).
      "Dirac-GAN: library trajectory vs theory.simulate_dirac_gan, alternating": 1e-6,
      "Dirac-GAN: library trajectory vs theory.simulate_dirac_gan, simultaneous": 1e-6,
      # measured tail rate against log spectral radius: full max 5.5e-6, quick max 1.6e-5.
      **{quantity: 3e-5 for quantity in rates.values()},
      # R1 against none, medians over seeds: full 0.13 (gamma 10), quick 0.31.
      "1-D GAN tail W1, R1 gamma=10 / no R1": 0.5,
      # full 0.15 (gamma 10), quick 0.31.
      "1-D GAN tail swing of G's mean, R1 gamma=10 / no R1": 0.5,
      # full 0.032, quick 0.058.
      "1-D GAN tail W1 to the data, R1 gamma=10": 0.1,
  })
  # Simultaneous steps spiral out, alternating ones circle, R1 pulls both in.
  assert report.row(rates["simultaneous", 0.0]).measured > 1e-3
  assert abs(report.row(rates["alternating", 0.0]).measured) < 1e-5
  assert report.row(rates["simultaneous", 0.3]).measured < -1e-2
  assert report.row(rates["alternating", 0.3]).measured < -1e-2
