"""Proposition 1 of Goodfellow et al. 2014: for a fixed generator the best discriminator is
D*(x) = p_data(x) / (p_data(x) + p_g(x)), and its value is C(G) = max_D V(D, G).

The generator is affine with parameters set by hand, so p_g = N(b, w^2) is known, and is never
updated; the data are a 1-D Gaussian mixture. An MLP discriminator is trained by
`train.discriminator_update` (the library's `discriminator_loss`) on fresh samples of both, and
then compared with D* on the grid points where the densities matter, and its value V(D, G)
(by quadrature and by Monte Carlo) with C(G) (`theory.virtual_training_criterion`). The
quadratures take the exact log-densities and D's logits, so that nothing underflows in the tails.
"""
from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import theory
from ganjax.derivation import _densities, command, pyplot, save_figure
from ganjax.derivation.report import Report


def run(config, workdir: pathlib.Path) -> Report:
  """Trains the discriminator against the frozen generator and reports D against D*.

  Config fields: seed, mode, data (means, stds, weights), generator (mean, std), discriminator
  (hidden, activation), loss, steps, batch_size, learning_rate, grid (low, high, num),
  region_fraction, eval_samples, tolerances (max_error, mean_error, value_quadrature,
  value_monte_carlo).
  """
  data = _densities.mixture_from_config(config.data)
  mean, std = config.generator.mean, config.generator.std
  states = _densities.frozen_generator_states(
      _densities.mlp_discriminator(config.discriminator),
      _densities.adam(config.learning_rate, config.steps), config.loss, data, config.batch_size,
      config.seed, [mean], [std])
  states, metrics = _densities.train_discriminators(states, config.steps)
  state = _densities.unstack(states, 0)

  grid = _densities.Grid.linspace(config.grid.low, config.grid.high, config.grid.num)
  log_p_data = _densities.mixture_log_density(data, grid)
  log_p_g = theory.gaussian_log_density(grid.x, mean, std)
  p_data, p_g = jnp.exp(log_p_data), jnp.exp(log_p_g)
  optimal = theory.optimal_discriminator(log_p_data=log_p_data, log_p_g=log_p_g)
  logits = _densities.discriminator_outputs(state, grid.points)
  trained = jax.nn.sigmoid(logits)
  region = _densities.region(p_data + p_g, config.region_fraction)
  error = jnp.abs(trained - optimal)
  max_error = jnp.max(jnp.where(region, error, 0.0))
  # The error averaged over the mixture (p_data + p_g) / 2, which the discriminator is trained on.
  mean_error = jnp.sum(error * (p_data + p_g) / 2) * grid.dx
  criterion = theory.virtual_training_criterion(log_p_data=log_p_data, log_p_g=log_p_g,
                                                dx=grid.dx)
  value_quadrature = theory.value_function(logits=logits, log_p_data=log_p_data,
                                           log_p_g=log_p_g, dx=grid.dx)
  value_monte_carlo, standard_error = _densities.monte_carlo_value(
      state, config.eval_samples, jax.random.PRNGKey(config.seed + 1))

  report = Report("optimal_discriminator", "Proposition 1: the optimal discriminator",
                  command(config, workdir))
  tolerances = config.tolerances
  weights = ", ".join(f"{w:g} N({m[0]:g}, {s:g}^2)"
                      for m, s, w in zip(data.means, data.stds, data.weights))
  report.text += [
      f"p_data = {weights}; p_g = N({mean:g}, {std:g}^2), an affine generator set by hand and "
      f"never updated. The discriminator (MLP {tuple(config.discriminator.hidden)}, "
      f"{config.discriminator.activation}) is trained with the '{config.loss}' objective's "
      f"discriminator loss for {config.steps} steps of {config.batch_size} real and "
      f"{config.batch_size} fake samples (Adam, cosine-decayed learning rate "
      f"{config.learning_rate:g}).",
      "",
      f"D is compared with D* = p_data / (p_data + p_g) where p_data + p_g >= "
      f"{config.region_fraction:g} of its maximum (x in [{float(grid.x[region].min()):.2f}, "
      f"{float(grid.x[region].max()):.2f}]). V(D, G) <= C(G) for every D: the error of the "
      "value rows is how far the trained D falls short of the best one (the Monte Carlo row "
      "adds sampling noise of the stated standard error).",
  ]
  report.add("max abs(D - D*) on the region", 0.0, max_error, tolerances.max_error)
  report.add("mean abs(D - D*) under (p_data + p_g) / 2", 0.0, mean_error, tolerances.mean_error)
  report.add("V(D, G) by quadrature vs C(G)", criterion, value_quadrature,
             tolerances.value_quadrature)
  report.add("V(D, G) by Monte Carlo vs C(G)", criterion, value_monte_carlo,
             tolerances.value_monte_carlo,
             note=f"{config.eval_samples} samples each, standard error {float(standard_error):.1e}")
  report.details.update(
      criterion=float(criterion),
      monte_carlo_standard_error=float(standard_error),
      region=[float(grid.x[region].min()), float(grid.x[region].max())],
  )

  _plot_discriminator(grid, p_data, p_g, optimal, trained, region, workdir, report)
  _plot_value(-metrics["d_loss"][0], criterion, workdir, report)
  return report


def _plot_discriminator(grid, p_data, p_g, optimal, trained, region, workdir, report):
  plt = pyplot()
  x = np.asarray(grid.x)
  figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                       gridspec_kw={"height_ratios": [3, 1]})
  top.plot(x, p_data, color="tab:blue", label="p_data")
  top.plot(x, p_g, color="tab:orange", label="p_g")
  top.plot(x, optimal, color="black", label="D* = p_data / (p_data + p_g)")
  top.plot(x, trained, color="tab:red", linestyle="--", label="trained D")
  top.set_ylabel("density / probability")
  top.legend(loc="upper right", fontsize=8)
  bottom.plot(x, np.asarray(trained - optimal), color="tab:red")
  bottom.axhline(0.0, color="black", linewidth=0.5)
  for axis in (top, bottom):
    axis.fill_between(x, 0, 1, where=np.asarray(region), transform=axis.get_xaxis_transform(),
                      color="grey", alpha=0.1)
  bottom.set_ylabel("D - D*")
  bottom.set_xlabel("x (shaded: the region compared)")
  top.set_title("Proposition 1: the trained discriminator against D*")
  save_figure(figure, workdir, "discriminator.png", report)


def _plot_value(minibatch_values, criterion, workdir, report):
  plt = pyplot()
  figure, axis = plt.subplots(figsize=(7, 3.5))
  minibatch_values = np.asarray(minibatch_values)
  window = max(len(minibatch_values) // 50, 1)
  running_mean = np.convolve(minibatch_values, np.ones(window) / window, mode="valid")
  axis.plot(minibatch_values, color="tab:blue", linewidth=0.5, alpha=0.4,
            label="V(D, G) on each minibatch (-discriminator loss)")
  axis.plot(np.arange(window - 1, len(minibatch_values)), running_mean, color="tab:blue",
            label=f"its mean over {window} updates")
  axis.axhline(float(criterion), color="black", label="C(G) = max_D V(D, G)")
  axis.axhline(-np.log(4.0), color="grey", linestyle=":", label="-log 4")
  axis.set_xlabel("discriminator update")
  axis.set_ylabel("value")
  axis.legend(fontsize=8)
  axis.set_title("The discriminator climbs to C(G)")
  save_figure(figure, workdir, "value.png", report)
