"""Quick modes of the training-dynamics studies: saturation, non_saturating_gradient, convergence.

Each test runs `experiments/derivation/<study>.py:quick` through `ganjax.derivation.run` into a
temporary workdir and holds every row of the report to a tolerance stated here (not the
config's, so that loosening an experiment file cannot loosen the test). The comment on each
tolerance gives the bound it stands for (float32 rounding, a quadrature's discretisation error,
the bias of an estimator, minibatch noise) or, where theory gives none, the claim the row makes,
and what the quick run (seed 0, CPU) measured.
"""
import importlib.util
import json
import pathlib

import numpy as np
import pytest

from ganjax import derivation
from ganjax.derivation import convergence

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
      # float32 autodiff of the loss against -D in float64 from the same float32 logit: |dL/da|
      # <= 1, so rounding of a few ulps of 1 (1.2e-7 each); 2e-6 is 16 ulps. Measured 4.9e-7.
      "max abs(dL/da - (-D)) over the sweep, minimax": 2e-6,
      # Measured 4.9e-7.
      "max abs(dL/da - (-(1 - D))) over the sweep, non_saturating": 2e-6,
      # Two float32 evaluations of the same mean over 256 samples of same-sign terms (autodiff,
      # and the closed form dL/da times the logits' Jacobian): pairwise summation rounds each to
      # log2(256) eps = 4.8e-7 relative (eps = 6e-8). Measured 9.2e-8.
      "max relative error of grad_theta L vs the chain rule, minimax": 1e-6,
      # Measured 1.3e-7.
      "max relative error of grad_theta L vs the chain rule, non_saturating": 1e-6,
      # The claim "a strong D": D(G(z)) below 1%, so that the minimax gradient -D is under 1% of
      # the non-saturating one. Measured 2.3e-3.
      "mean D(G(z)) at the start (a strong D)": 0.01,
      # The chain rule makes the ratio exactly E[D s] / E[(1 - D) s], s = da/db at each fake:
      # autodiff's two float32 means of 256 terms (4.8e-7 relative each, as above) against the
      # same sums in float64. Measured 8.1e-8.
      "dL/db at the start, minimax / non-saturating": 1e-5,
      # E[D] / (1 - E[D]) assumes s equal at every fake. The claim: the D-weighted mean slope is
      # within 20% of the plain mean over G's samples (b +- 3 w = +-0.75). Measured 0.090.
      "approximation E[D] / (1 - E[D]) vs the start ratio E[D s] / E[(1 - D) s]": 0.2,
      # Against the start ratio, which SGD would keep if D and G stood still: over the 10 steps D
      # keeps training (Adam, up to 1e-3 on each parameter a step) and G moves, so D(G(z)) and
      # with it the ratio drift. The claim: within 25%. Measured 0.097.
      "distance G's mean moves in 10 steps (sgd), minimax / non-saturating": 0.25,
      # An upper bound, reach / 1000: the minimax generator never reaches the data in the run
      # (with D frozen the ratio would be the start ratio, 0.0021). The claim: the non-saturating
      # one reaches it within 150 of the 1000 steps. Measured 97 / 1000.
      "steps to reach the data, non-saturating / minimax (sgd)": 0.15,
  })
  # The minimax generator is the slow one by a factor of hundreds at the start.
  assert report.row("dL/db at the start, minimax / non-saturating").measured < 0.01


def test_non_saturating_gradient_quick(tmp_path):
  report = _run("non_saturating_gradient", tmp_path)
  points = ((0.5, 1.5), (1, 0.8), (3, 1), (-1, 0.4))
  angles = [f"angle (degrees) between NS and JSD gradients at (b, w) = ({b:g}, {w:g})"
            for b, w in points]
  non_saturating = "max relative error: NS gradient with D* vs grad [KL - 2 JSD]"
  minimax = "max relative error: minimax gradient with D* vs grad 2 JSD"
  # A vector off by a relative error e is turned by at most asin(e): the measured angle between
  # the two gradients is off the reference angle by at most the sum over the two (the float64
  # finite-difference references agree with the closed form to 1e-10).
  angle_bound = np.degrees(np.arcsin(report.row(non_saturating).error)
                           + np.arcsin(report.row(minimax).error))
  _check_errors(report, {
      # The expectations over z ~ N(0, 1) are the midpoint rule in u = Phi(z) on M = 65536
      # latent quantiles, whose error is first order in 1/M here (the log-ratio integrand grows
      # like z^2 towards u = 0, 1): c / M with c = 9.2 in this run and 9.7 in the full run at
      # 4 M, i.e. 1.4e-4; twice it.
      non_saturating: 3e-4,
      # The minimax integrand, log(1 - D*), grows more slowly: measured 3.8e-5 here and 1.7e-5 at
      # 4 M; the tolerance is the non-saturating one's bound, 1.5e-4.
      minimax: 1.5e-4,
      # Measured at most 1.6e-3 degrees, against a bound of 1.0e-2.
      **{angle: angle_bound for angle in angles},
      # Gradient descent on KL - 2 JSD over (b, w) from (2, 0.6) ends at the mode it started on:
      # (2, 0.6) is the minimum exactly in the limit of separated modes (KL(p_g || p_data) - log 2
      # and the JSD are then both stationary at p_g = the mode), and the modes here are 6.7 of
      # their standard deviations apart; the claim is 0.01. Measured 1.8e-3 and 2.9e-3.
      "KL - 2 JSD: the one-mode minimum's b vs the mode's mean": 0.01,
      "KL - 2 JSD: the one-mode minimum's w vs the mode's std": 0.01,
      # Signs: the non-saturating objective's one-mode minimum is below its covering one
      # (measured -0.554), the JSD's covering minimum below its one-mode one (-0.121).
      "KL - 2 JSD: one-mode minimum minus the minimum covering both modes": 0.0,
      "2 JSD: minimum covering both modes minus the one-mode minimum": 0.0,
      # A trained D in place of D*: no estimation bound, since where p_g has mass and p_data
      # almost none the discriminator's own loss does not pin the slope of its logit (the
      # report's text). The claim: the gradient training uses is within 40% of the theory's and
      # 12 degrees of its direction (the JSD's direction is 18 to 55 degrees away). Measured
      # 0.29 and 7.8 degrees.
      "max relative error: NS gradient with trained D vs grad [KL - 2 JSD]": 0.4,
      "max angle (degrees): NS gradient with trained D vs grad [KL - 2 JSD]": 12.0,
  })
  # The non-saturating direction is not the JSD's: 18 to 55 degrees apart at these points.
  assert min(report.row(angle).theory for angle in angles) > 15.0


def _linearised_tail_rate_bias(update, gamma, config):
  """The tail-slope estimator's bias on the exact iterates of the linearised minimax Dirac-GAN.

  The update matrix is built from the Jacobian [[0, c], [-c, -gamma]], c = f'(0) = 1/2 (simultaneous
  I + h J; alternating (I + h E_theta J)(I + h E_psi J), the psi step first), iterated in float64
  from the near start. Where it is not a scaled rotation the distance oscillates within each
  turn, and the least-squares slope over the second half of the run differs from the log of the
  spectral radius by this much.
  """
  h, c = config.dirac.learning_rate, 0.5
  jacobian = np.array([[0.0, c], [-c, -gamma]])
  if update == "simultaneous":
    matrix = np.eye(2) + h * jacobian
  else:
    matrix = ((np.eye(2) + h * np.diag([1.0, 0.0]) @ jacobian)
              @ (np.eye(2) + h * np.diag([0.0, 1.0]) @ jacobian))
  points = [np.asarray(config.dirac.near, np.float64)]
  for _ in range(config.dirac.steps):
    points.append(matrix @ points[-1])
  rate = convergence._tail_rate(np.linalg.norm(np.asarray(points), axis=-1))
  return rate - np.log(np.max(np.abs(np.linalg.eigvals(matrix))))


def test_convergence_quick(tmp_path):
  report = _run("convergence", tmp_path)
  config = _quick_config("convergence")
  rates = {(update, gamma): f"Dirac-GAN log growth per step: minimax, {update}, gamma={gamma:g}"
           for update in ("simultaneous", "alternating") for gamma in (0.0, 0.3)}
  biases = {key: _linearised_tail_rate_bias(*key, config) for key in rates}
  # Beyond the estimator's bias: the nonlinear terms move the log growth per step by at most
  # h^2 r^2 / 16 < 2e-8 for the minimax loss (r < 5e-3 from (1e-3, 1e-3); see
  # tests/test_theory.py), and float32 rounding of the distances and of the radius by ~1e-7.
  residual = 1e-6
  _check_errors(report, {
      # The library's steps compute the float32 expressions of theory.simulate_dirac_gan (its
      # real data, of spread 1e-30, move the gradients by far less than an ulp here): if they
      # rounded differently, by a couple of half-ulps (6e-8 relative) a step, the 1000 steps
      # would part them by at most ~1000 x 1.2e-7 x 1.13 (the largest growth) = 1.4e-4.
      # Measured 0 (bitwise).
      "Dirac-GAN: library trajectory vs theory.simulate_dirac_gan, alternating": 2e-4,
      "Dirac-GAN: library trajectory vs theory.simulate_dirac_gan, simultaneous": 2e-4,
      # The estimator's bias on the linearised dynamics plus the residual: 0, 2.3e-6, 1.6e-5 and
      # 9.7e-6 (simultaneous and alternating at gamma 0, then 0.3) plus 1e-6. Measured the same
      # to 3e-8.
      **{quantity: abs(biases[key]) + residual for key, quantity in rates.items()},
      # The claims, medians over the seeds: R1 at least halves the tail W1 and the swing of G's
      # mean (theory: R1 makes the game converge, the unregularised one need not). Measured
      # 0.31 and 0.31.
      "1-D GAN tail W1, R1 gamma=10 / no R1": 0.5,
      "1-D GAN tail swing of G's mean, R1 gamma=10 / no R1": 0.5,
      # Minibatch noise: a generator that settles to within the noise of its batches of n = 128
      # sits about as far from N(1, 0.5^2) as a 128-sample empirical distribution, whose W1 has
      # mean 0.5 sqrt(2 / (pi n)) int sqrt(Phi(1 - Phi)) dz = 0.057. Measured 0.058.
      "1-D GAN tail W1 to the data, R1 gamma=10": 0.1,
      # V = log sigmoid(0) + log sigmoid(-psi theta) in float32: -log 4 to an ulp of it (2.4e-7)
      # and a Hessian of -sigmoid(0) = -1/2 exactly off the diagonal. Measured 3.8e-9 and 0.
      "Dirac-GAN: V(D, G) at the equilibrium vs -log 4": 1e-6,
      "Dirac-GAN: smaller eigenvalue of the Hessian of V at the equilibrium": 1e-6,
      "Dirac-GAN: larger eigenvalue of the Hessian of V at the equilibrium": 1e-6,
  })
  for key, quantity in rates.items():
    row = report.row(quantity)
    assert abs(row.measured - (row.theory + biases[key])) <= residual, (quantity, row)
  # Simultaneous steps spiral out, alternating ones circle, R1 pulls both in.
  assert report.row(rates["simultaneous", 0.0]).measured > 1e-3
  assert abs(report.row(rates["alternating", 0.0]).measured) < 1e-5
  assert report.row(rates["simultaneous", 0.3]).measured < -1e-2
  assert report.row(rates["alternating", 0.3]).measured < -1e-2
