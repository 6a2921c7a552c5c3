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
from ganjax.derivation import _dynamics, command, pyplot, save_figure
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

  flows = _flows(config, data, points)
  report = Report("non_saturating_gradient", "Theorem 2.5 (Arjovsky & Bottou 2017): the "
                  "non-saturating gradient with D* fixed", command(config, workdir))
  _add_rows(report, config, points, measured, reference)
  _add_flow_rows(report, config, points, flows)
  _plot_directions(config, data, points, measured, flows, workdir, report)
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


def _objectives(log_p_data, x, dx):
  """The two objectives over theta = (b, w), p_theta = N(b, w^2): KL(p_theta || p_data) - 2 JSD,
  which the non-saturating generator descends with D* fixed, and 2 JSD = C(G) + log 4, which
  the minimax one descends."""
  def log_p_g(theta):
    return theory.gaussian_log_density(x, theta[0], theta[1])

  return {
      "kl_minus_2jsd": lambda theta: theory.kl_minus_2jsd(
          log_p_g=log_p_g(theta), log_p_data=log_p_data, dx=dx),
      "two_jsd": lambda theta: 2.0 * theory.jensen_shannon_divergence(
          log_p=log_p_data, log_q=log_p_g(theta), dx=dx),
  }


def _flows(config, data, points: np.ndarray) -> dict:
  """Gradient descent on each objective over (b, w) from each parameter point and from the
  config's two starts (one mode, both modes), in float64: {objective: {"paths": (points, steps +
  1, 2), "minima": {start: (b, w, value)}}}. A flow of the objective with D* recomputed at every
  step: where the generator would go if D stayed optimal."""
  settings = config.flow
  starts = {name: tuple(start) for name, start in settings.starts.items()}
  with jax.enable_x64(True):
    x, dx, log_p_data = _float64_grid(config, data)
    result = {}
    for name, objective in _objectives(log_p_data, x, dx).items():
      gradient = jax.grad(objective)

      @jax.jit
      def descend(theta, gradient=gradient):
        def body(theta, _):
          theta = theta - settings.learning_rate * gradient(theta)
          return theta, theta
        _, path = jax.lax.scan(body, theta, length=settings.steps)
        return jnp.concatenate([theta[None], path])

      everything = np.asarray(jax.vmap(descend)(
          jnp.asarray(np.concatenate([points, np.asarray(list(starts.values()))]))))
      value = jax.jit(objective)
      minima = {}
      for (start, _), path in zip(starts.items(), everything[len(points):]):
        end = jnp.asarray(path[-1])
        minima[start] = (float(end[0]), float(end[1]), float(value(end)),
                         float(jnp.linalg.norm(gradient(end))))
      result[name] = {"paths": everything[:len(points)], "minima": minima,
                      "ends": [(float(b), float(w), float(value(jnp.asarray((b, w)))))
                               for b, w in everything[:len(points), -1]]}
  return result


def _add_flow_rows(report: Report, config, points, flows) -> None:
  tolerances = config.tolerances
  names = {"kl_minus_2jsd": "KL - 2 JSD", "two_jsd": "2 JSD"}
  report.text += [
      f"Within the family N(b, w^2) both objectives have more than one local minimum. Gradient "
      f"descent on each over (b, w) (step {config.flow.learning_rate:g}, {config.flow.steps} "
      "steps, float64: where the generator goes if D stays optimal at every step) from the "
      "config's two starts finds them, and from each parameter point shows which one it falls "
      "into:",
      "",
      "| objective | start | minimum (b, w) | value | gradient norm there |",
      "|---|---|---|---|---|",
      *(f"| {names[name]} | {start} {tuple(config.flow.starts[start])} | ({b:.4f}, {w:.4f}) | "
        f"{value:.5f} | {norm:.1e} |"
        for name, flow in flows.items() for start, (b, w, value, norm) in flow["minima"].items()),
      "",
      "| objective | from (b, w) | ends at (b, w) | value |",
      "|---|---|---|---|",
      *(f"| {names[name]} | ({b0:g}, {w0:g}) | ({b:.3f}, {w:.3f}) | {value:.4f} |"
        for name, flow in flows.items()
        for (b0, w0), (b, w, value) in zip(points, flow["ends"])),
      "",
  ]
  one_mode, covering = (flows["kl_minus_2jsd"]["minima"][start] for start in ("one_mode",
                                                                               "covering"))
  mode_mean, mode_std = config.flow.starts.one_mode
  report.add("KL - 2 JSD: the one-mode minimum's b vs the mode's mean", mode_mean, one_mode[0],
             tolerances.pocket, note="theory exact as the modes separate")
  report.add("KL - 2 JSD: the one-mode minimum's w vs the mode's std", mode_std, one_mode[1],
             tolerances.pocket)
  report.add("KL - 2 JSD: one-mode minimum minus the minimum covering both modes", 0.0,
             one_mode[2] - covering[2], 0.0, kind="value",
             note="negative: the non-saturating objective prefers dropping a mode")
  jsd_one, jsd_covering = (flows["two_jsd"]["minima"][start] for start in ("one_mode",
                                                                           "covering"))
  report.add("2 JSD: minimum covering both modes minus the one-mode minimum", 0.0,
             jsd_covering[2] - jsd_one[2], 0.0, kind="value",
             note="negative: the minimax objective prefers covering them")
  report.details["flows"] = {name: {"minima": flow["minima"], "ends": flow["ends"]}
                             for name, flow in flows.items()}


def _plot_directions(config, data, points, measured, flows, workdir, report) -> None:
  """Contours of KL - 2 JSD and 2 JSD over (b, w), the descent directions at each point, the
  descent paths and the minima."""
  plt = pyplot()
  offsets = np.linspace(min(points[:, 0]) - 1.6, max(points[:, 0]) + 1.0, 67)
  scales = np.linspace(0.2, max(points[:, 1]) + 0.9, 46)
  with jax.enable_x64(True):
    x, dx, log_p_data = _float64_grid(config, data)
    b, w = jnp.meshgrid(jnp.asarray(offsets), jnp.asarray(scales))
    surfaces = {name: np.asarray(jax.jit(jnp.vectorize(
        lambda b, w, objective=objective: objective(jnp.stack([b, w]))))(b, w))
                for name, objective in _objectives(log_p_data, x, dx).items()}
  figure, axes = plt.subplots(1, 2, figsize=(14, 5), sharey=True)
  # Unit descent directions; the trained D's arrow is shorter and drawn on top, so that both
  # arrows of a point stay visible where they nearly coincide.
  arrows = (("optimal_non_saturating", "tab:blue", 0.5, 0.010, "-NS gradient, D*"),
            ("optimal_minimax", "tab:red", 0.5, 0.010, "-minimax gradient, D* (= -grad 2 JSD)"),
            ("trained_non_saturating", "black", 0.3, 0.004, "-NS gradient, trained D (shorter)"))
  titles = {"kl_minus_2jsd": "KL(p_g || p_data) - 2 JSD: followed by the non-saturating G",
            "two_jsd": "2 JSD(p_data || p_g) = C(G) + log 4: followed by the minimax G"}
  path_colors = {"kl_minus_2jsd": "tab:blue", "two_jsd": "tab:red"}
  for axis, (name, surface) in zip(axes, surfaces.items()):
    contour = axis.contour(offsets, scales, surface, levels=25, cmap="viridis", linewidths=0.7)
    bar = figure.colorbar(contour, ax=axis)
    bar.set_label(titles[name].split(":")[0])
    for path in flows[name]["paths"]:
      axis.plot(path[:, 0], path[:, 1], color=path_colors[name], linestyle=":", linewidth=1.2)
      axis.plot(*path[-1], "x", color=path_colors[name], markersize=7)
    for start, (mb, mw, value, _) in flows[name]["minima"].items():
      label = "one mode" if start == "one_mode" else "both modes"
      axis.plot(mb, mw, "*", color="tab:orange", markersize=12, markeredgecolor="black")
      axis.annotate(f"{label}: {value:.3f}", (mb, mw), xytext=(6, 6),
                    textcoords="offset points", fontsize=8)
    for arrow, color, length, width, label in arrows:
      direction = -measured[arrow] / np.linalg.norm(measured[arrow], axis=-1, keepdims=True)
      axis.quiver(points[:, 0], points[:, 1], length * direction[:, 0], length * direction[:, 1],
                  color=color, angles="xy", scale_units="xy", scale=1.0, width=width,
                  label=label, zorder=3 if color == "black" else 2)
    axis.plot(points[:, 0], points[:, 1], "k.", zorder=4)
    axis.set_xlabel("b (mean of p_g)")
    axis.set_title(titles[name], fontsize=10)
  for name, color in path_colors.items():
    axes[0].plot([], [], color=color, linestyle=":", marker="x",
                 label=f"descent path on {titles[name].split(':')[0].split(' =')[0]}, D* at "
                       "every step, and its end")
  axes[0].plot([], [], "*", color="tab:orange", markeredgecolor="black", linestyle="none",
               label="a local minimum (its value)")
  axes[0].set_ylabel("w (standard deviation of p_g)")
  figure.tight_layout(rect=(0, 0.1, 1, 1))
  figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8)
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
