"""The equilibrium of the seed's S6/S8: trained together, G reaches p_g = p_data and D = 1/2,
where V(D, G) = -log 4.

Both players are trained by the library's `train.train_steps` on 1-D data sampled on the device,
with the non-saturating generator loss (the seed's S7 remedy, Goodfellow et al. 2014 section 3),
which has the same fixed point as the minimax game. Two generators:

* affine, G(z) = w z + b with z ~ N(0, 1), on Gaussian data N(mu, s^2): p_g = N(b, w^2) exactly,
  so its mean and std are read from the parameters and the JSD is a quadrature of two known
  densities;
* an MLP on a 1-D mixture: p_g is only known through samples, so the JSD is measured between
  kernel density estimates: the estimate of p_g against p_data smoothed by the same kernel
  (`_densities.smoothed_mixture_density`), which removes the smoothing bias. Smoothing both can
  only lower a divergence (data processing), so this JSD is a lower bound on the true one at the
  bandwidth's resolution.

At the end D is compared with 1/2 where either density is and under M = (p_data + p_g) / 2, the
distribution it is trained on (its largest deviation where p_data or p_g reaches a fraction of
p_data's maximum, and its mean under M), and V(D, G) (Monte Carlo) with -log 4. Under p_data
alone the comparison would miss where p_g puts mass that the data lack (between the modes of a
mixture, say), where D* < 1/2. These two alone do not certify the equilibrium: the
discriminator trained along with G need not be the best response to the final G, and can sit near
1/2 while p_g is visibly off. So the JSD rows measure p_g directly, and for the MLP generator,
whose p_g is not known in closed form, the final G is also frozen and its discriminator trained on
alone: that D's value measures C(G) = max_D V(D, G) = -log 4 + 2 JSD(p_data || p_g) (Theorem 1),
which is -log 4 only at p_g = p_data.
"""
from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import theory
from ganjax import train
from ganjax.derivation import _densities, command, pyplot, save_figure
from ganjax.derivation.report import Report
from ganjax.models import mlp


def run(config, workdir: pathlib.Path) -> Report:
  """Trains an affine and an MLP generator, each with an MLP discriminator, and reports the end.

  Config fields: seed, mode, loss, discriminator (hidden, activation), batch_size, grid (low,
  high, num), region_fraction, bandwidth, eval_samples, history_points; affine and mlp: data
  (means, stds, weights), steps, learning_rate (D), generator_learning_rate, b1 (both players'
  Adam); mlp also generator (hidden, activation, latent_dim) and retrain (steps, learning_rate:
  the discriminator trained on against the final generator); tolerances.affine (mean, std, jsd,
  max_discriminator_error, mean_discriminator_error, value) and tolerances.mlp (jsd,
  max_discriminator_error, mean_discriminator_error, value, criterion).
  """
  grid = _densities.Grid.linspace(config.grid.low, config.grid.high, config.grid.num)
  report = Report("equilibrium", "S6/S8: the equilibrium p_g = p_data, D = 1/2, V = -log 4",
                  command(config, workdir))
  report.text += [
      f"Both players are trained together with `train.train_steps` and the '{config.loss}' "
      f"objective (the seed's S7 remedy; its fixed point is that of the minimax game), "
      f"{config.batch_size} real and fake samples per update, Adam with cosine-decayed learning "
      f"rates: for the affine generator {config.affine.learning_rate:g} (D) and "
      f"{config.affine.generator_learning_rate:g} (G), b1 = {config.affine.b1:g}; for the MLP "
      f"generator {config.mlp.learning_rate:g} (D) and {config.mlp.generator_learning_rate:g} "
      f"(G), b1 = {config.mlp.b1:g}. The discriminator is an MLP "
      f"{tuple(config.discriminator.hidden)} ({config.discriminator.activation}); the MLP "
      f"generator {tuple(config.mlp.generator.hidden)} ({config.mlp.generator.activation}, "
      f"latent dimension {config.mlp.generator.latent_dim}).",
      "",
      "JSD(p_data || p_g) is a quadrature of the two log-densities for the affine generator (p_g = "
      "N(b, w^2) exactly); for the MLP generator it compares a Gaussian kernel density estimate "
      f"(bandwidth {config.bandwidth:g}, {config.eval_samples} samples) with p_data smoothed by "
      "the same kernel, a lower bound on the JSD at that resolution. D is compared with 1/2 "
      "where either density is and under M = (p_data + p_g) / 2, the distribution it is trained "
      "on (its largest deviation where p_data or p_g reaches "
      f"{config.region_fraction:g} of p_data's maximum, and its mean under M): where p_g "
      "puts mass that the data lack, D* = p_data / (p_data + p_g) falls below 1/2, and a measure "
      "taken only where the data are would miss it. V(D, G) by Monte Carlo on "
      f"{config.eval_samples} samples of each.",
      "",
      "D = 1/2 and V = -log 4 alone do not certify the equilibrium: the discriminator trained "
      "along with G need not be the best response to the final G. For the MLP generator the "
      f"final G is therefore frozen and D trained on for {config.mlp.retrain.steps} updates "
      f"(Adam, cosine-decayed learning rate {config.mlp.retrain.learning_rate:g}); its V(D, G) "
      "measures C(G) = -log 4 + 2 JSD(p_data || p_g) from below (Theorem 1).",
  ]
  _affine(config, grid, workdir, report)
  _mlp(config, grid, workdir, report)
  return report


def _affine(config, grid: _densities.Grid, workdir, report: Report) -> None:
  """The affine generator on Gaussian data: p_g = N(b, w^2) is read from the parameters."""
  settings, tolerances = config.affine, config.tolerances.affine
  data = _densities.mixture_from_config(settings.data)
  log_p_data = _densities.mixture_log_density(data, grid)
  p_data = jnp.exp(log_p_data)

  def measure(state):
    mean, std = _densities.affine_mean_std(state.g_params)
    log_p_g = theory.gaussian_log_density(grid.x, mean, std)
    jsd = theory.jensen_shannon_divergence(log_p=log_p_data, log_q=log_p_g, dx=grid.dx)
    return jnp.exp(log_p_g), {"jsd": float(jsd), "mean": mean, "std": std}

  state = _initial_state(config, settings, _densities.affine_generator(),
                         _densities.AFFINE_LATENT_DIM, data)
  state, history = _train_with_history(config, settings, state, measure)
  p_g, end = measure(state)
  data_mean, data_std = data.means[0][0], data.stds[0]
  label = "affine G"
  report.add(f"{label}: mean of p_g vs data mean", data_mean, end["mean"], tolerances.mean,
             note=f"data N({data_mean:g}, {data_std:g}^2), {settings.steps} steps")
  report.add(f"{label}: std of p_g vs data std", data_std, end["std"], tolerances.std)
  report.add(f"{label}: JSD(p_data, p_g), quadrature", 0.0, end["jsd"], tolerances.jsd)
  discriminator, region = _add_discriminator_rows(config, label, state, p_data, p_g, grid,
                                                  tolerances, report)
  report.details["affine"] = history
  _plot("affine", label, grid, p_data, p_g, {"D(x)": discriminator}, region, history, config,
        workdir, report)


def _mlp(config, grid: _densities.Grid, workdir, report: Report) -> None:
  """The MLP generator on a mixture: p_g is estimated from samples, C(G) by a retrained D."""
  settings, tolerances = config.mlp, config.tolerances.mlp
  data = _densities.mixture_from_config(settings.data)
  p_data = _densities.mixture_density(data, grid)
  smoothed_data = _densities.smoothed_mixture_density(data, grid, config.bandwidth)
  sample_key = jax.random.PRNGKey(config.seed + 1)

  def measure(state):
    samples = _densities.generator_samples(state, config.eval_samples, sample_key)
    p_g = _densities.smoothed_density(samples, grid, config.bandwidth)
    return p_g, {"jsd": float(theory.jensen_shannon_divergence(smoothed_data, p_g, grid.dx))}

  generator = mlp.MLPGenerator(output_dim=1, hidden=tuple(settings.generator.hidden),
                               activation=settings.generator.activation)
  state = _initial_state(config, settings, generator, settings.generator.latent_dim, data)
  state, history = _train_with_history(config, settings, state, measure)
  p_g, end = measure(state)
  weights = ", ".join(f"{w:g} N({m[0]:g}, {s:g}^2)"
                      for m, s, w in zip(data.means, data.stds, data.weights))
  label = "MLP G"
  report.add(f"{label}: JSD(p_data, p_g), smoothed", 0.0, end["jsd"], tolerances.jsd,
             note=f"data {weights}, {settings.steps} steps")
  discriminator, region = _add_discriminator_rows(config, label, state, p_data, p_g, grid,
                                                  tolerances, report)
  retrained = _densities.retrained_discriminator(state, settings.retrain.learning_rate,
                                                 settings.retrain.steps)
  criterion, standard_error = _densities.monte_carlo_value(
      retrained, config.eval_samples, jax.random.PRNGKey(config.seed + 3))
  report.add(f"{label}: C(G) = max_D V(D, G) vs -log 4", -math.log(4.0), criterion,
             tolerances.criterion, note=f"D trained on against the final G, standard error "
             f"{float(standard_error):.1e}; (C(G) + log 4) / 2 = "
             f"{(float(criterion) + math.log(4.0)) / 2:.4f} estimates the JSD")
  report.details["mlp"] = history
  retrained_discriminator = jax.nn.sigmoid(
      _densities.discriminator_outputs(retrained, grid.points))
  _plot("mlp", label, grid, p_data, p_g,
        {"D(x)": discriminator, "D trained on against the final G": retrained_discriminator},
        region, history, config, workdir, report)


def _initial_state(config, settings, generator, latent_dim: int, data) -> train.GANState:
  """The initial state of a generator and the config's discriminator on `data`."""
  spec = train.GANSpec(loss=config.loss, latent_dim=latent_dim, batch_size=config.batch_size,
                       data=data)
  return train.create_state(
      generator, _densities.mlp_discriminator(config.discriminator),
      _densities.adam(settings.generator_learning_rate, settings.steps, settings.b1),
      _densities.adam(settings.learning_rate, settings.steps, settings.b1),
      spec, data.shape, config.seed)


def _train_with_history(config, settings, state: train.GANState, measure
                        ) -> tuple[train.GANState, dict[str, list[float]]]:
  """Runs `settings.steps` steps of `train.train_steps` in `config.history_points` equal chunks
  (one compiled program), recording `measure(state)` and the mean D(x), D(G(z)) of each."""
  if settings.steps % config.history_points:
    raise ValueError(f"steps = {settings.steps} is not a multiple of history_points = "
                     f"{config.history_points}")
  chunk = settings.steps // config.history_points
  history = {"step": [], "d_real": [], "d_fake": []}
  for index in range(config.history_points):
    state, metrics = train.train_steps(state, num_steps=chunk)
    history["step"].append((index + 1) * chunk)
    history["d_real"].append(float(jnp.mean(metrics["d_real"])))
    history["d_fake"].append(float(jnp.mean(metrics["d_fake"])))
    for name, value in measure(state)[1].items():
      history.setdefault(name, []).append(value)
  return state, history


def _add_discriminator_rows(config, label: str, state: train.GANState, p_data, p_g, grid,
                            tolerances, report: Report) -> tuple[jax.Array, jax.Array]:
  """Adds the rows of D against 1/2 under M = (p_data + p_g) / 2 and V(D, G) against -log 4;
  returns D on the grid and the region where it is compared with 1/2."""
  discriminator = jax.nn.sigmoid(_densities.discriminator_outputs(state, grid.points))
  mixture = (p_data + p_g) / 2
  # Where either density reaches the fraction of the data's peak: a fraction of the mixture's
  # own peak would shrink the region to almost nothing when p_g has a narrow spike.
  region = _densities.region(p_data, config.region_fraction) | (
      p_g >= config.region_fraction * jnp.max(p_data))
  in_region_error = jnp.where(region, jnp.abs(discriminator - 0.5), 0.0)
  at = float(grid.x[jnp.argmax(in_region_error)])
  report.add(f"{label}: max abs(D - 1/2) where p_data or p_g is", 0.0,
             jnp.max(in_region_error), tolerances.max_discriminator_error,
             note=f"at x = {at:.2f}, where D = "
                  f"{float(discriminator[jnp.argmax(in_region_error)]):.3f}")
  report.add(f"{label}: mean abs(D - 1/2) under (p_data + p_g) / 2", 0.0,
             jnp.sum(jnp.abs(discriminator - 0.5) * mixture) * grid.dx,
             tolerances.mean_discriminator_error)
  value, standard_error = _densities.monte_carlo_value(
      state, config.eval_samples, jax.random.PRNGKey(config.seed + 2))
  report.add(f"{label}: V(D, G) vs -log 4", -math.log(4.0), value, tolerances.value,
             note=f"standard error {float(standard_error):.1e}")
  return discriminator, region


def _plot(part, label, grid, p_data, p_g, discriminators, region, history, config, workdir,
          report):
  plt = pyplot()
  x = np.asarray(grid.x)
  shown = np.asarray(_densities.region(p_data + p_g, 1e-3))
  figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  left.plot(x[shown], np.asarray(p_data)[shown], color="tab:blue", label="p_data")
  p_g_label = "p_g" if part == "affine" else f"p_g (kernel estimate, h = {config.bandwidth:g})"
  left.plot(x[shown], np.asarray(p_g)[shown], color="tab:orange", linestyle="--",
            label=p_g_label)
  for (name, values), style in zip(discriminators.items(), ("-", ":")):
    left.plot(x[shown], np.asarray(values)[shown], color="tab:red", linestyle=style, label=name)
  left.axhline(0.5, color="grey", linestyle=":", label="1/2")
  left.fill_between(x, 0, 1, where=np.asarray(region), transform=left.get_xaxis_transform(),
                    color="grey", alpha=0.1)
  left.set_xlabel(f"x (shaded: where p_data or p_g >= {config.region_fraction:g} of p_data's "
                  "maximum)")
  left.set_ylabel("density; D(x)")
  left.set_ylim(0.0, 1.0)
  left.legend(fontsize=7, loc="upper center", ncol=2)
  left.set_title(f"{label}: the end of training")
  steps = history["step"]
  right.semilogy(steps, np.maximum(history["jsd"], 1e-8), "o-", color="black",
                 label="JSD(p_data || p_g)")
  right.set_xlabel("generator update")
  right.set_ylabel("JSD(p_data || p_g)"
                   + ("" if part == "affine" else " (smoothed: a lower bound)"))
  twin = right.twinx()
  if part == "affine":
    data = config.affine.data
    twin.plot(steps, history["mean"], color="tab:green", label="mean of p_g")
    twin.plot(steps, history["std"], color="tab:purple", label="std of p_g")
    twin.axhline(data.means[0], color="tab:green", linestyle=":")
    twin.axhline(data.stds[0], color="tab:purple", linestyle=":")
    twin.set_ylabel("mean, std of p_g (dotted: the data's)")
  else:
    twin.plot(steps, history["d_real"], color="tab:blue", label="mean D(x), data")
    twin.plot(steps, history["d_fake"], color="tab:orange", label="mean D(G(z))")
    twin.axhline(0.5, color="grey", linestyle=":")
    twin.set_ylabel("mean D over each chunk (dotted: 1/2)")
  right.legend(loc="upper right", fontsize=8)
  twin.legend(loc="center right", fontsize=8)
  right.set_title(f"{label}: during training")
  figure.tight_layout()
  save_figure(figure, workdir, f"equilibrium_{part}.png", report)
