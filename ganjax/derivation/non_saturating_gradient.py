"""Theorem 2.5 of Arjovsky & Bottou 2017: the non-saturating generator does not follow the JSD.

With the optimal discriminator D* = p_data / (p_data + p_theta0) held fixed, the gradient of the
non-saturating generator loss E_z[-log D*(G_theta(z))] at theta0 is

  grad_theta [KL(p_theta || p_data) - 2 JSD(p_data || p_theta)],

while the minimax loss E_z[log(1 - D*(G_theta(z)))] gives grad_theta 2 JSD(p_data || p_theta)
(the gradient of C(G), Goodfellow et al. 2014, Theorem 1): the heuristic keeps the fixed point
p_theta = p_data but moves along another direction, the mode-seeking reverse KL minus the JSD.

Set-up: an affine generator G(z) = b + w z (the library's `MLPGenerator` without hidden layers,
p_theta = N(b, w^2), theta = (b, w)) at several parameter points, and a 1-D Gaussian mixture as
the data. Measured, at each point:

1. The gradient of the library's generator losses by `jax.grad` through the Flax generator, with
   the fake logit given by D*'s exact logit a*(x) = log p_data(x) - log p_theta0(x) (held fixed),
   and the latent at N(0, 1) quantiles (a deterministic quadrature of E_z).
2. The same non-saturating gradient with an MLP discriminator trained by
   `train.discriminator_update` against the fixed generator in place of D*: the gradient that
   training actually uses.

Theory: central finite differences (fourth order) of KL(p_theta || p_data) - 2 JSD and of
2 JSD, each computed by quadrature of the exact log-densities with `ganjax.theory` in float64.
"""
from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganjax import theory
from ganjax import train
from ganjax.data import toy
from ganjax.derivation import _dynamics
from ganjax.derivation import command, pyplot, save_figure
from ganjax.derivation.report import Report
from ganjax.models import MLPDiscriminator


def run(config, workdir: pathlib.Path) -> Report:
  """Measures the generator gradients at each parameter point and reports them against theory.

  Config fields: seed, mode, data (means, stds, weights), points ((b, w) pairs, w > 0),
  latent_samples, grid (low, high, num), finite_difference_step, discriminator (hidden,
  activation, learning_rate, steps), batch_size, tolerances (optimal_non_saturating,
  optimal_minimax, angle, trained_relative, trained_angle).
  """
  data = toy.mixture(config.data.means, config.data.stds, config.data.weights)
  points = np.asarray(config.points, np.float64)
  states = _trained_discriminators(config, data, points)
  z = jnp.asarray(_dynamics.normal_quantiles(config.latent_samples))
  measured = jax.tree.map(np.asarray, _measured_gradients(states, z))
  reference = _reference_gradients(config, data, points)

  report = Report("non_saturating_gradient", "Theorem 2.5 (Arjovsky & Bottou 2017): the "
                  "non-saturating gradient with D* fixed", command(config, workdir))
  _add_rows(report, config, points, measured, reference)
  _plot_directions(config, data, points, measured, reference, workdir, report)
  _plot_discriminators(data, points, states, workdir, report)
  return report


def _trained_discriminators(config, data, points: np.ndarray) -> train.GANState:
  """One state per parameter point, stacked: G set to the point, D trained against it."""
  spec = train.GANSpec(loss="non_saturating", latent_dim=1, batch_size=config.batch_size,
                       data=data)
  discriminator = MLPDiscriminator(hidden=tuple(config.discriminator.hidden),
                                   activation=config.discriminator.activation)
  steps = config.discriminator.steps
  learning_rate = optax.cosine_decay_schedule(config.discriminator.learning_rate, steps)
  # One state, then the generator set to each point: create_state compiles per call.
  state = _dynamics.create_state(_dynamics.affine_generator(), discriminator, spec,
                                 {"name": "sgd", "learning_rate": 0.0},
                                 {"name": "adam", "learning_rate": learning_rate}, config.seed)
  states = [state.replace(g_params=_dynamics.affine_params(b, w)) for b, w in points]
  states = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
  states, _ = jax.vmap(lambda s: _dynamics.train_discriminator(s, num_steps=steps))(states)
  return states


@jax.jit
def _measured_gradients(states: train.GANState, z: jax.Array):
  """(dL/db, dL/dw) at each point: both losses with D*, and non-saturating with the trained D."""

  def at(state):
    b, w = _dynamics.affine_of(state.g_params)

    def optimal_logit(x):
      # a*(x) = log p_data(x) - log p_theta0(x), held fixed as theta moves.
      return state.spec.data.log_prob(x) - jax.scipy.stats.norm.logpdf(x[:, 0], b, jnp.abs(w))

    def gradient(loss, logit_fn=None):
      grads = jax.grad(lambda p: _dynamics.generator_loss(state, p, z, loss, logit_fn))(
          state.g_params)
      return jnp.stack(_dynamics.affine_of(grads))

    return {"optimal_non_saturating": gradient("non_saturating", optimal_logit),
            "optimal_minimax": gradient("minimax", optimal_logit),
            "trained_non_saturating": gradient("non_saturating")}

  return jax.vmap(at)(states)


def _reference_gradients(config, data, points: np.ndarray) -> dict[str, np.ndarray]:
  """Finite-difference gradients of KL - 2 JSD and of 2 JSD at each point, in float64."""
  step = config.finite_difference_step
  stencil = ((-2, 1.0 / 12), (-1, -8.0 / 12), (1, 8.0 / 12), (2, -1.0 / 12))
  with jax.enable_x64(True):
    x, dx, log_p_data = _float64_grid(config, data)
    objectives = {
        "kl_minus_2jsd": lambda log_p_g: theory.kl_minus_2jsd(
            log_p_g=log_p_g, log_p_data=log_p_data, dx=dx),
        "two_jsd": lambda log_p_g: 2.0 * theory.jensen_shannon_divergence(
            log_p=log_p_data, log_q=log_p_g, dx=dx),
    }
    reference = {}
    for name, objective in objectives.items():
      value = jax.jit(lambda theta, objective=objective: objective(
          theory.gaussian_log_density(x, theta[0], theta[1])))
      gradients = np.zeros_like(points)
      for i, point in enumerate(points):
        for j in range(2):
          for offset, weight in stencil:
            shifted = point.copy()
            shifted[j] += offset * step
            gradients[i, j] += weight * float(value(jnp.asarray(shifted))) / step
      reference[name] = gradients
    # The library's closed form of the same gradient (density derivative, no differences):
    # agreement to ~1e-10 shows the finite differences are not the limit of the comparison.
    def log_density(theta):
      return theory.gaussian_log_density(x, theta[0], theta[1])

    closed_form = np.stack([np.asarray(theory.non_saturating_gradient_fixed_d(
        generator_log_density_fn=log_density, theta=jnp.asarray(point), log_p_data=log_p_data,
        dx=dx)) for point in points])
  reference["closed_form_error"] = float(np.max(
      np.linalg.norm(closed_form - reference["kl_minus_2jsd"], axis=-1)
      / np.linalg.norm(reference["kl_minus_2jsd"], axis=-1)))
  return reference


def _float64_grid(config, data) -> tuple[jax.Array, float, jax.Array]:
  """The config's quadrature grid in float64 (call under `jax.enable_x64`): the points, their
  spacing and the data's log-density at them."""
  x = jnp.linspace(config.grid.low, config.grid.high, config.grid.num, dtype=jnp.float64)
  return x, (config.grid.high - config.grid.low) / (config.grid.num - 1), data.log_prob(x[:, None])


def _relative_errors(measured: np.ndarray, reference: np.ndarray) -> np.ndarray:
  return np.linalg.norm(measured - reference, axis=-1) / np.linalg.norm(reference, axis=-1)


def _angles(u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Angles in degrees between rows of u and v."""
  cosine = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
  return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def _add_rows(report: Report, config, points, measured, reference) -> None:
  tolerances = config.tolerances
  target, jsd = reference["kl_minus_2jsd"], reference["two_jsd"]
  optimal_ns = measured["optimal_non_saturating"]
  optimal_minimax = measured["optimal_minimax"]
  trained_ns = measured["trained_non_saturating"]
  data = ", ".join(f"{w:g} N({m:g}, {s:g}^2)" for m, s, w in zip(
      config.data.means, config.data.stds, config.data.weights))
  report.text += [
      f"p_data = {data}; p_theta = N(b, w^2), G(z) = b + w z. Measured gradients: `jax.grad` "
      f"through the Flax generator and the library's generator loss on {config.latent_samples} "
      "latent quantiles, the fake logit given by D*'s exact logit (fixed) or by an MLP "
      f"discriminator {tuple(config.discriminator.hidden)} ({config.discriminator.activation}) "
      f"trained for {config.discriminator.steps} steps of {config.batch_size} samples (Adam, "
      f"cosine-decayed learning rate {config.discriminator.learning_rate:g}) against the fixed "
      "generator. Reference gradients: fourth-order central differences (step "
      f"{config.finite_difference_step:g}) of float64 quadratures on {config.grid.num} points in "
      f"[{config.grid.low:g}, {config.grid.high:g}]; the library's closed form "
      "`theory.non_saturating_gradient_fixed_d` agrees with them to "
      f"{reference['closed_form_error']:.1e}.",
      "",
      "| (b, w) | grad [KL - 2 JSD] | NS, D* | NS, trained D | norm trained / D* | grad 2 JSD | "
      "minimax, D* |",
      "|---|---|---|---|---|---|---|",
  ]
  norm_ratios = np.linalg.norm(trained_ns, axis=-1) / np.linalg.norm(optimal_ns, axis=-1)
  for i, (b, w) in enumerate(points):
    cells = [f"({g[0]:+.4f}, {g[1]:+.4f})" for g in (target[i], optimal_ns[i], trained_ns[i])]
    cells.append(f"{norm_ratios[i]:.3f}")
    cells += [f"({g[0]:+.4f}, {g[1]:+.4f})" for g in (jsd[i], optimal_minimax[i])]
    report.text.append(f"| ({b:g}, {w:g}) | " + " | ".join(cells) + " |")
  report.text += [
      "",
      "The trained discriminator's gradient is furthest off where much of p_g lies where "
      "p_data is almost 0. There D's own loss saturates (log(1 - D) -> 0 once D rejects a "
      "sample), so training pins its logit only to 'very negative', not to the slope of "
      "log p_data / p_g, which grows linearly away from the data; the network's extrapolation "
      "(piecewise linear with leaky ReLU) sets that slope instead, and the reverse-KL pull of "
      "those samples is misjudged (discriminators.png).",
      "",
  ]
  report.add("max relative error: NS gradient with D* vs grad [KL - 2 JSD]", 0.0,
             np.max(_relative_errors(optimal_ns, target)), tolerances.optimal_non_saturating,
             note=f"{len(points)} points")
  report.add("max relative error: minimax gradient with D* vs grad 2 JSD", 0.0,
             np.max(_relative_errors(optimal_minimax, jsd)), tolerances.optimal_minimax,
             note=f"{len(points)} points")
  theory_angles, measured_angles = _angles(target, jsd), _angles(optimal_ns, optimal_minimax)
  for (b, w), expected, angle in zip(points, theory_angles, measured_angles):
    report.add(f"angle (degrees) between NS and JSD gradients at (b, w) = ({b:g}, {w:g})",
               expected, angle, tolerances.angle,
               note="measured: NS vs minimax gradient with D*")
  report.add("max relative error: NS gradient with trained D vs grad [KL - 2 JSD]", 0.0,
             np.max(_relative_errors(trained_ns, target)), tolerances.trained_relative,
             note=f"{len(points)} points")
  report.add("max angle (degrees): NS gradient with trained D vs grad [KL - 2 JSD]", 0.0,
             np.max(_angles(trained_ns, target)), tolerances.trained_angle, kind="value")
  report.details.update(
      points=points,
      grad_kl_minus_2jsd=target,
      grad_2jsd=jsd,
      optimal_non_saturating=optimal_ns,
      optimal_minimax=optimal_minimax,
      trained_non_saturating=trained_ns,
      trained_relative_errors=_relative_errors(trained_ns, target),
      trained_angles=_angles(trained_ns, target),
      trained_norm_ratios=norm_ratios,
      angle_ns_vs_jsd=theory_angles,
      closed_form_error=reference["closed_form_error"],
  )


def _plot_directions(config, data, points, measured, reference, workdir, report) -> None:
  """Contours of KL - 2 JSD and 2 JSD over (b, w), with the descent directions at each point."""
  plt = pyplot()
  offsets = np.linspace(min(points[:, 0]) - 1.0, max(points[:, 0]) + 1.0, 61)
  scales = np.linspace(0.2, max(points[:, 1]) + 0.5, 41)
  with jax.enable_x64(True):
    x, dx, log_p_data = _float64_grid(config, data)
    b, w = jnp.meshgrid(jnp.asarray(offsets), jnp.asarray(scales))

    @jax.jit
    @jnp.vectorize
    def surfaces(b, w):
      log_p_g = theory.gaussian_log_density(x, b, w)
      return (theory.kl_minus_2jsd(log_p_g=log_p_g, log_p_data=log_p_data, dx=dx),
              2.0 * theory.jensen_shannon_divergence(log_p=log_p_data, log_q=log_p_g, dx=dx))

    kl_minus_2jsd, two_jsd = (np.asarray(s) for s in surfaces(b, w))
  figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
  arrows = (("optimal_non_saturating", "tab:blue", 0.012, "-NS gradient, D*"),
            ("trained_non_saturating", "tab:cyan", 0.005, "-NS gradient, trained D"),
            ("optimal_minimax", "tab:red", 0.005, "-minimax gradient, D* (= -grad 2 JSD)"))
  for axis, surface, title in ((axes[0], kl_minus_2jsd, "KL(p_g || p_data) - 2 JSD"),
                               (axes[1], two_jsd, "2 JSD(p_data || p_g)")):
    contour = axis.contour(offsets, scales, surface, levels=25, cmap="viridis", linewidths=0.7)
    axis.clabel(contour, fontsize=6)
    for name, color, width, label in arrows:
      direction = -measured[name] / np.linalg.norm(measured[name], axis=-1, keepdims=True)
      axis.quiver(points[:, 0], points[:, 1], direction[:, 0], direction[:, 1], color=color,
                  angles="xy", scale_units="xy", scale=2.0, width=width, label=label)
    axis.plot(points[:, 0], points[:, 1], "k.")
    axis.set_xlabel("b (mean of p_g)")
    axis.set_title(title)
  axes[0].set_ylabel("w (standard deviation of p_g); arrows: unit descent directions")
  axes[0].legend(fontsize=7, loc="upper left")
  save_figure(figure, workdir, "gradient_directions.png", report)


def _plot_discriminators(data, points, states, workdir, report) -> None:
  """D* and the trained D at each point, over the data and generator densities."""
  plt = pyplot()
  x = np.linspace(-6.0, 6.0, 601, dtype=np.float32)
  log_p_data = data.log_prob(x[:, None])
  p_data = np.exp(np.asarray(log_p_data))
  figure, axes = plt.subplots(1, len(points), figsize=(3.2 * len(points), 3), sharey=True)
  for i, (axis, (b, w)) in enumerate(zip(np.atleast_1d(axes), points)):
    state = jax.tree.map(lambda leaf, i=i: leaf[i], states)
    log_p_g = theory.gaussian_log_density(x, b, w)
    p_g = np.exp(np.asarray(log_p_g))
    trained = np.asarray(jax.nn.sigmoid(_dynamics.discriminate(state, x[:, None])))
    axis.fill_between(x, p_data / p_data.max(), color="tab:blue", alpha=0.15, label="p_data")
    axis.fill_between(x, p_g / p_g.max(), color="tab:orange", alpha=0.15, label="p_g")
    optimal = theory.optimal_discriminator(log_p_data=log_p_data, log_p_g=log_p_g)
    axis.plot(x, np.asarray(optimal), "k", label="D*")
    axis.plot(x, trained, "r--", label="trained D")
    axis.set_title(f"(b, w) = ({b:g}, {w:g})", fontsize=9)
    axis.set_xlabel("x")
  np.atleast_1d(axes)[0].legend(fontsize=7)
  np.atleast_1d(axes)[0].set_ylabel("D(x); densities scaled to max 1")
  save_figure(figure, workdir, "discriminators.png", report)
