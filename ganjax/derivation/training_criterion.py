"""Theorem 1 of Goodfellow et al. 2014: C(G) = max_D V(D, G) = -log 4 + 2 JSD(p_data || p_g),
minimal, at -log 4, if and only if p_g = p_data.

p_data = N(m, s^2) is fixed and p_g = N(b, w^2) sweeps a family that contains it: first its mean
moves at w = s, then its scale changes at b = m. At each member a discriminator is trained to
(near) optimality by `train.discriminator_update` against the frozen affine generator, all members
side by side in one compiled program (`train.vmap_seeds`). Its value V(D, G) by quadrature (of
D's logits and the exact log-densities) is the measured C(G), compared with -log 4 + 2 JSD by
quadrature of the log-densities (`theory.jensen_shannon_divergence`);
the measured minimum is located by a parabola through the three lowest points and compared with
p_g = p_data.
"""
from __future__ import annotations

import math
import pathlib

import jax
import numpy as np

from ganjax import theory
from ganjax.data import toy
from ganjax.derivation import _densities, command, pyplot, save_figure
from ganjax.derivation.report import Report

# Points of the theoretical curves in the figure.
_CURVE_POINTS = 201


def run(config, workdir: pathlib.Path) -> Report:
  """Trains a discriminator at each generator of the sweep and reports C(G) against theory.

  Config fields: seed, mode, data (mean, std), sweep (means, stds: the generator means at
  std = data std, and the generator stds, geometrically spaced around the data std, at
  mean = data mean), discriminator (hidden, activation), loss, steps, batch_size,
  learning_rate, grid (low, high, num), tolerances (mean_sweep_error, std_sweep_error,
  argmin_mean, argmin_std, minimum, plateau).
  """
  data_mean, data_std = config.data.mean, config.data.std
  data = toy.gaussian_1d(data_mean, data_std)
  sweep_means, sweep_stds = np.asarray(config.sweep.means), np.asarray(config.sweep.stds)
  means = np.concatenate([sweep_means, np.full(len(sweep_stds), data_mean)])
  stds = np.concatenate([np.full(len(sweep_means), data_std), sweep_stds])
  states = _densities.frozen_generator_states(
      _densities.mlp_discriminator(config.discriminator),
      _densities.adam(config.learning_rate, config.steps), config.loss, data, config.batch_size,
      config.seed, means, stds)
  states, _ = _densities.train_discriminators(states, config.steps)

  grid = _densities.Grid.linspace(config.grid.low, config.grid.high, config.grid.num)
  log_p_data = _densities.mixture_log_density(data, grid)
  logits = _densities.stacked_outputs(states, grid.points)
  log_p_g = theory.gaussian_log_density(grid.x, means[:, None], stds[:, None])
  measured = np.asarray(_values(logits, log_p_data, log_p_g, grid.dx))
  expected = np.asarray(_theorem_1(log_p_data, log_p_g, grid.dx))
  errors = np.abs(measured - expected)
  num_means = len(sweep_means)

  # C(G) along the scale is symmetric in log(w / s) (JSD is invariant to rescaling x), so a
  # parabola in log w is unbiased at the minimum, as one in b is along the mean.
  argmin_mean = _parabola_argmin(sweep_means, measured[:num_means])
  argmin_std = math.exp(_parabola_argmin(np.log(sweep_stds), measured[num_means:]))

  report = Report("training_criterion", "Theorem 1: the virtual training criterion C(G)",
                  command(config, workdir))
  tolerances = config.tolerances
  report.text += [
      f"p_data = N({data_mean:g}, {data_std:g}^2). p_g = N(b, w^2) (an affine generator set by "
      f"hand) with b in {_listed(sweep_means)} at w = {data_std:g}, then w in "
      f"{_listed(sweep_stds)} at b = {data_mean:g}. At each p_g an MLP discriminator "
      f"{tuple(config.discriminator.hidden)} ({config.discriminator.activation}) is trained with "
      f"the '{config.loss}' discriminator loss for {config.steps} steps of {config.batch_size} "
      f"real and fake samples (Adam, cosine-decayed learning rate {config.learning_rate:g}); "
      "the measured C(G) is its V(D, G) by quadrature, the theory -log 4 + 2 JSD(p_data || p_g) "
      "by quadrature. V(D, G) <= C(G) for every D, so the measured values lie below the curve "
      "by how far each D falls short of D*.",
      "",
      "The argmin rows locate the measured minimum by the vertex of a parabola through the "
      "lowest measured point and its two neighbours (in b, and in log w).",
      "",
      "| b | w | -log 4 + 2 JSD | measured V(D, G) | error |",
      "|---|---|---|---|---|",
      *(f"| {b:g} | {w:.4g} | {e:.5f} | {m:.5f} | {abs(m - e):.1e} |"
        for b, w, e, m in zip(means, stds, expected, measured)),
  ]
  report.add("mean sweep: max abs(V(D, G) - C(G))", 0.0, errors[:num_means].max(),
             tolerances.mean_sweep_error)
  report.add("scale sweep: max abs(V(D, G) - C(G))", 0.0, errors[num_means:].max(),
             tolerances.std_sweep_error)
  report.add("argmin of the measured C(G) over the mean b", data_mean, argmin_mean,
             tolerances.argmin_mean)
  report.add("argmin of the measured C(G) over the scale w", data_std, argmin_std,
             tolerances.argmin_std)
  report.add("minimum measured C(G) vs -log 4", -math.log(4.0), measured.min(),
             tolerances.minimum, note=f"at b = {means[measured.argmin()]:g}, "
             f"w = {stds[measured.argmin()]:.4g}")
  # The plateau: far apart, p_g and p_data barely overlap and the JSD nears log 2, its value for
  # disjoint supports, where C(G) = 0 whatever the distance.
  widest = np.flatnonzero(np.abs(sweep_means) == np.abs(sweep_means).max())
  report.add(f"(V(D, G) + log 4) / 2 at b = +-{np.abs(sweep_means).max():g} vs log 2",
             math.log(2.0), (measured[widest].min() + math.log(4.0)) / 2, tolerances.plateau,
             note=f"the JSD there by quadrature: log 2 - "
                  f"{math.log(2.0) - (expected[widest].min() + math.log(4.0)) / 2:.1e}")
  report.details.update(means=means, stds=stds, theory=expected, measured=measured)

  _plot(config, sweep_means, sweep_stds, measured, expected, log_p_data, grid, workdir, report)
  return report


@jax.jit
def _values(logits: jax.Array, log_p_data: jax.Array, log_p_g: jax.Array, dx: float
            ) -> jax.Array:
  """V(D, G) by quadrature for each row of D's logits and of the generator log-densities."""
  return jax.vmap(lambda a, log_q: theory.value_function(
      logits=a, log_p_data=log_p_data, log_p_g=log_q, dx=dx))(logits, log_p_g)


@jax.jit
def _theorem_1(log_p_data: jax.Array, log_p_g: jax.Array, dx: float) -> jax.Array:
  """-log 4 + 2 JSD(p_data || p_g) for each row of the generator log-densities."""
  jsd = jax.vmap(lambda log_q: theory.jensen_shannon_divergence(
      log_p=log_p_data, log_q=log_q, dx=dx))(log_p_g)
  return -math.log(4.0) + 2.0 * jsd


def _parabola_argmin(x: np.ndarray, y: np.ndarray) -> float:
  """The vertex of the parabola through the lowest point of y(x) and its two neighbours (the
  lowest point itself when it is at an end of the sweep: the minimum is not bracketed)."""
  lowest = int(np.argmin(y))
  if lowest in (0, len(y) - 1):
    return float(x[lowest])
  a, b, _ = np.polyfit(x[lowest - 1:lowest + 2], y[lowest - 1:lowest + 2], 2)
  return float(-b / (2 * a))


def _listed(values: np.ndarray) -> str:
  return "{" + ", ".join(f"{v:.4g}" for v in values) + "}"


def _plot(config, sweep_means, sweep_stds, measured, expected, log_p_data, grid, workdir,
          report):
  plt = pyplot()
  data_mean, data_std = config.data.mean, config.data.std
  curve_means = np.linspace(sweep_means.min(), sweep_means.max(), _CURVE_POINTS)
  curve_stds = np.geomspace(sweep_stds.min(), sweep_stds.max(), _CURVE_POINTS)
  along_mean = _theorem_1(
      log_p_data, theory.gaussian_log_density(grid.x, curve_means[:, None], data_std), grid.dx)
  along_std = _theorem_1(
      log_p_data, theory.gaussian_log_density(grid.x, data_mean, curve_stds[:, None]), grid.dx)
  num_means = len(sweep_means)
  figure, axes = plt.subplots(2, 2, figsize=(10, 6), sharex="col", sharey="row",
                              gridspec_kw={"height_ratios": [3, 1]})
  for column, curve_x, curve_y, points_x, points, label in (
      (0, curve_means, along_mean, sweep_means, slice(0, num_means),
       f"generator mean b (w = {data_std:g})"),
      (1, curve_stds, along_std, sweep_stds, slice(num_means, None),
       f"generator std w (b = {data_mean:g}, log scale)")):
    top, bottom = axes[:, column]
    top.plot(curve_x, np.asarray(curve_y), color="black", label="-log 4 + 2 JSD (quadrature)")
    top.plot(points_x, measured[points], "o", color="tab:red", label="V(D, G), trained D")
    top.axhline(-math.log(4.0), color="grey", linestyle=":", label="-log 4 (p_g = p_data)")
    top.axhline(0.0, color="grey", linestyle="--", linewidth=0.8,
                label="0 = -log 4 + 2 log 2 (disjoint supports)")
    bottom.plot(points_x, measured[points] - expected[points], "o-", color="tab:red")
    bottom.axhline(0.0, color="black", linewidth=0.5)
    bottom.set_xlabel(label)
  axes[1, 1].set_xscale("log")
  axes[1, 1].set_xticks(sweep_stds, [f"{w:.3g}" for w in sweep_stds])
  axes[1, 1].minorticks_off()
  axes[0, 0].set_ylabel("C(G) = max_D V(D, G)")
  axes[1, 0].set_ylabel("measured - theory")
  # One legend for both panels, where the scale sweep leaves room.
  axes[0, 1].legend(*axes[0, 0].get_legend_handles_labels(), fontsize=8, loc="center")
  figure.suptitle(f"Theorem 1: C(G) over a family of p_g, p_data = N({data_mean:g}, "
                  f"{data_std:g}^2)")
  save_figure(figure, workdir, "criterion.png", report)
