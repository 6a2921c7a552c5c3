"""Proposition 2 of Goodfellow et al. 2014: when the generator's updates do converge.

"If G and D have enough capacity, and at each step the discriminator is allowed to reach its
optimum given G, and p_g is updated so as to improve the criterion
E_p_data log D* + E_p_g log(1 - D*), then p_g converges to p_data." The proof: V(D, G) is
linear in p_g, so C(G) = max_D V(D, G) = V(D*, G), a supremum of linear functions, is convex in
p_g; by Danskin's theorem its derivative at p_g is that of V(D*, .) with D* held fixed,
log(1 - D*(x)) (`theory.generator_functional_gradient`); descent along it with D* recomputed
at every step is descent on a convex function, which reaches its minimum -log 4 at
p_g = p_data (Theorem 1) for small enough steps.

The study makes the steps and measures each part of the argument, in float64 on a grid:

1. The generator's step in the space of densities, D = D* of the current p_g
   (`theory.density_descent_step`): p <- p exp(-h log(1 - D*)) / Z, the exponentiated-gradient
   (mirror-descent) step that keeps p a density. C is convex and 1-smooth relative to the
   entropy, so for h <= 1 C(p_k) never increases and C(p_k) + log 4 <= KL(p_data || p_0) / (h k);
   near p_data 2 JSD falls by (1 - h/2)^2 per step, and at h = 1 the step is exactly
   p <- (p + p_data) / 2. A larger step (h = 2) and the non-saturating functional step
   (-log D* in place of log(1 - D*)) are run beside them, without a guarantee.
2. Convexity: C on segments t p + (1 - t) q between densities against its chords.
3. Danskin: the derivative of C along each segment (central differences) against
   integral (p - q) log(1 - D*) dx, and V(D*_m, .) for the D* of the segment's midpoint m,
   which is linear, below C with equality at m: only its gradient at m matches C's.

p_0 is a generator that dropped a mode (a Gaussian on one of the data's two modes): in the space
of densities, where C has no local minima, the updates bring the missing mode back.
"""
from __future__ import annotations

import functools
import itertools
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import theory
from ganjax.derivation import command, pyplot, save_figure
from ganjax.derivation.report import Report

# The generator losses whose functional step is run; rows hold the minimax one to the theory.
LOSSES = ("minimax", "non_saturating")


def run(config, workdir: pathlib.Path) -> Report:
  """Runs the density updates, checks convexity and Danskin's identity, and reports.

  Config fields: seed (unused: nothing here is random), mode, data (means, stds, weights),
  start (mean, std: p_0), grid (low, high, num), runs ((loss, learning rate) pairs; the minimax
  ones with learning rate <= 1 are held to the theory), steps, rate_window (low, high: the range
  of C + log 4 over which the rate per step is fitted), shown_steps, convexity (gaussians:
  (mean, std) pairs besides p_data and p_0, points: values of t per segment,
  difference_step), tolerances (increase, bound, final, rate, closed_form, convexity,
  derivative, support).
  """
  with jax.enable_x64(True):
    x = jnp.linspace(config.grid.low, config.grid.high, config.grid.num, dtype=jnp.float64)
    dx = (config.grid.high - config.grid.low) / (config.grid.num - 1)
    log_p_data = theory.gaussian_mixture_log_density(
        x, jnp.asarray(config.data.means, jnp.float64), jnp.asarray(config.data.stds, jnp.float64),
        jnp.asarray(config.data.weights, jnp.float64))
    log_p0 = theory.gaussian_log_density(x, config.start.mean, config.start.std)
    runs = {}
    for loss, rate in config.runs:
      log_densities = _descend(log_p_data, log_p0, dx, float(rate), config.steps, loss)
      runs[loss, float(rate)] = {
          "log_densities": log_densities,
          "excess": np.asarray(_criteria(log_p_data, log_densities, dx)) + math.log(4.0),
          "left_mass": np.asarray(jnp.sum(jnp.exp(log_densities) * (x < 0), axis=-1) * dx),
      }
    kl_start = float(theory.kl_divergence(log_p=log_p_data, log_q=log_p0, dx=dx))
    segments = _segments(config, x, log_p_data, log_p0, dx)
    report = Report("density_descent", "Proposition 2: descent in the space of densities, D "
                    "optimal at every step", command(config, workdir))
    _add_rows(report, config, runs, kl_start, segments, x, log_p_data, log_p0)
    _plot(config, x, log_p_data, runs, kl_start, segments, workdir, report)
  return report


@functools.partial(jax.jit, static_argnames=("steps", "loss"))
def _descend(log_p_data, log_p0, dx, learning_rate, steps: int, loss: str) -> jax.Array:
  """log p_k for k = 0..steps, shape (steps + 1, num): `theory.density_descent_step` repeated."""
  def body(log_p, _):
    log_p = theory.density_descent_step(log_p_data, log_p, dx, learning_rate, loss)
    return log_p, log_p

  _, rest = jax.lax.scan(body, log_p0, length=steps)
  return jnp.concatenate([log_p0[None], rest])


@jax.jit
def _criteria(log_p_data, log_densities, dx) -> jax.Array:
  """C(G) = -log 4 + 2 JSD for each row of log-densities."""
  return jax.vmap(lambda log_p: theory.virtual_training_criterion(
      log_p_data=log_p_data, log_p_g=log_p, dx=dx))(log_densities)


def _mix(log_p, log_q, t):
  """log(t p + (1 - t) q) for t in [0, 1] (t may be an array: a leading axis)."""
  t = jnp.asarray(t)[..., None]
  return jnp.logaddexp(jnp.log(t) + log_p, jnp.log1p(-t) + log_q)


def _segments(config, x, log_p_data, log_p0, dx) -> dict:
  """C on segments between every pair of the test densities, its chord, its derivative at the
  midpoint (central differences and Danskin's formula) and the supporting line there."""
  named = {"p_data": log_p_data, "p_0": log_p0}
  for mean, std in config.convexity.gaussians:
    named[f"N({mean:g}, {std:g}^2)"] = theory.gaussian_log_density(x, mean, std)
  t = jnp.linspace(0.0, 1.0, config.convexity.points)
  step = config.convexity.difference_step
  criterion = lambda log_p: theory.virtual_training_criterion(
      log_p_data=log_p_data, log_p_g=log_p, dx=dx)
  results = {}
  for (name_p, log_p), (name_q, log_q) in itertools.combinations(named.items(), 2):
    inner = t[1:-1]
    along = np.asarray(_criteria(log_p_data, _mix(log_p, log_q, inner), dx))
    ends = float(criterion(log_p)), float(criterion(log_q))
    chord = np.asarray(inner) * ends[0] + (1 - np.asarray(inner)) * ends[1]
    log_mid = _mix(log_p, log_q, 0.5)
    # dC/dt at t = 1/2: central differences of C, and Danskin's integral (p - q) log(1 - D*).
    differenced = (float(criterion(_mix(log_p, log_q, 0.5 + step)))
                   - float(criterion(_mix(log_p, log_q, 0.5 - step)))) / (2 * step)
    gradient = theory.generator_functional_gradient(log_p_data=log_p_data, log_p_g=log_mid)
    danskin = float(jnp.sum((jnp.exp(log_p) - jnp.exp(log_q)) * gradient) * dx)
    # V(D*_mid, .) along the segment: linear in t, at most C, equal at t = 1/2.
    mid_logits = log_p_data - log_mid
    support = np.asarray(jax.vmap(lambda log_m: theory.value_function(
        logits=mid_logits, log_p_data=log_p_data, log_p_g=log_m, dx=dx))(_mix(log_p, log_q, t)))
    full = np.asarray(_criteria(log_p_data, _mix(log_p, log_q, t), dx))
    results[name_p, name_q] = {"t": np.asarray(t), "criterion": full, "support": support,
                               "convexity_gap": along - chord, "differenced": differenced,
                               "danskin": danskin}
  return results


def _tail_rate(excess: np.ndarray, window) -> float:
  """The geometric mean of excess_{k+1} / excess_k over the steps whose excess lies in the
  window (low, high): the rate per step once p_k is near p_data, before float64 rounding."""
  low, high = window
  inside = np.flatnonzero((excess[:-1] <= high) & (excess[1:] >= low))
  if inside.size == 0:
    return float("nan")
  return float(np.exp(np.mean(np.log(excess[inside + 1] / excess[inside]))))


def _guaranteed(config):
  """The runs the theory covers: the minimax loss with a learning rate at most 1."""
  return [(loss, float(rate)) for loss, rate in config.runs if loss == "minimax" and rate <= 1.0]


def _add_rows(report: Report, config, runs, kl_start, segments, x, log_p_data, log_p0) -> None:
  tolerances = config.tolerances
  data = ", ".join(f"{w:g} N({m:g}, {s:g}^2)" for m, s, w in zip(
      config.data.means, config.data.stds, config.data.weights))
  shown = [k for k in config.shown_steps if k <= config.steps]
  report.text += [
      f"p_data = {data}; p_0 = N({config.start.mean:g}, {config.start.std:g}^2), one of its "
      "modes only. Each step recomputes D* = p_data / (p_data + p_k) and moves the density "
      "along the generator loss's functional derivative: p_(k+1) = p_k exp(-h g) / Z with "
      "g = log(1 - D*) (minimax; the derivative of C(G) at p_k) or g = -log D* "
      f"(non-saturating), `theory.density_descent_step`, {config.steps} steps, float64 on "
      f"{config.grid.num} points in [{config.grid.low:g}, {config.grid.high:g}]. "
      f"KL(p_data || p_0) = {kl_start:.4g}.",
      "",
      "C(p_k) + log 4 = 2 JSD(p_data || p_k):",
      "",
      "| loss | h | " + " | ".join(f"k = {k}" for k in shown) + " |",
      "|---|---|" + "---|" * len(shown),
      *(f"| {loss} | {rate:g} | " + " | ".join(f"{run['excess'][k]:.2e}" for k in shown) + " |"
        for (loss, rate), run in runs.items()),
      "",
      "The mass of p_k on x < 0, where p_0 has almost none and p_data has 1/2:",
      "",
      "| loss | h | " + " | ".join(f"k = {k}" for k in shown) + " |",
      "|---|---|" + "---|" * len(shown),
      *(f"| {loss} | {rate:g} | " + " | ".join(f"{run['left_mass'][k]:.3f}" for k in shown)
        + " |" for (loss, rate), run in runs.items()),
      "",
      "The theory holds the minimax steps with h <= 1 (C convex and 1-smooth relative to the "
      "entropy: C(p_k) non-increasing, C(p_k) + log 4 <= KL(p_data || p_0) / (h k), and near "
      "p_data a factor (1 - h/2)^2 per step); the other runs have no such guarantee. The rate "
      f"per step is fitted where C + log 4 lies in [{config.rate_window[0]:g}, "
      f"{config.rate_window[1]:g}].",
      "",
      f"Convexity and Danskin's theorem are checked on the segments between every pair of "
      f"{{{', '.join(sorted({name for pair in segments for name in pair}))}}} "
      f"({config.convexity.points} values of t each; derivative at t = 1/2 by central "
      f"differences of step {config.convexity.difference_step:g}).",
      "",
  ]
  for loss, rate in _guaranteed(config):
    excess = runs[loss, rate]["excess"]
    steps = np.arange(1, len(excess))
    report.add(f"{loss}, h = {rate:g}: largest increase of C(p_k) in one step", 0.0,
               np.max(np.diff(excess)), tolerances.increase, kind="value",
               note="theory: never increases")
    report.add(f"{loss}, h = {rate:g}: largest h k (C(p_k) + log 4) / KL(p_data, p_0)", 1.0,
               np.max(rate * steps * excess[1:] / kl_start), tolerances.bound, kind="value",
               note="theory: at most 1")
    report.add(f"{loss}, h = {rate:g}: C(p_K) vs -log 4, K = {config.steps}", -math.log(4.0),
               excess[-1] - math.log(4.0), tolerances.final)
    report.add(f"{loss}, h = {rate:g}: 2 JSD ratio per step near p_data vs (1 - h/2)^2",
               (1 - rate / 2) ** 2, _tail_rate(excess, config.rate_window), tolerances.rate,
               kind="relative")
  if ("minimax", 1.0) in runs:
    k = np.arange(config.steps + 1)[:, None]
    p_data, p_0 = np.exp(np.asarray(log_p_data)), np.exp(np.asarray(log_p0))
    closed = p_data + 2.0 ** -k * (p_0 - p_data)
    measured = np.exp(np.asarray(runs["minimax", 1.0]["log_densities"]))
    report.add("minimax, h = 1: max abs(p_k - (p_data + 2^-k (p_0 - p_data))) / max p_data",
               0.0, np.max(np.abs(measured - closed)) / p_data.max(), tolerances.closed_form)
  report.add("convexity: largest C(t p + (1 - t) q) - (t C(p) + (1 - t) C(q))", 0.0,
             max(np.max(s["convexity_gap"]) for s in segments.values()), tolerances.convexity,
             kind="value", note=f"{len(segments)} segments; theory: at most 0")
  report.add("Danskin: dC/dt at t = 1/2 vs integral (p - q) log(1 - D*) dx", 0.0,
             max(abs(s["differenced"] - s["danskin"]) / abs(s["danskin"])
                 for s in segments.values()), tolerances.derivative,
             note="largest relative error over the segments")
  report.add("V(D*_m, .) along the segment minus C, m its midpoint", 0.0,
             max(np.max(s["support"] - s["criterion"]) for s in segments.values()),
             tolerances.support, kind="value", note="theory: at most 0, and 0 at m")
  report.details.update(
      kl_start=kl_start,
      excess={f"{loss}/{rate:g}": run["excess"] for (loss, rate), run in runs.items()},
      left_mass={f"{loss}/{rate:g}": run["left_mass"] for (loss, rate), run in runs.items()},
      largest_increase={f"{loss}/{rate:g}": float(np.max(np.diff(run["excess"])))
                        for (loss, rate), run in runs.items()},
  )


def _plot(config, x, log_p_data, runs, kl_start, segments, workdir, report) -> None:
  plt = pyplot()
  x = np.asarray(x)
  figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.2))
  # Left: the densities of the slowest guaranteed run, coloured by step.
  loss, rate = min(_guaranteed(config), key=lambda run: run[1])
  densities = np.exp(np.asarray(runs[loss, rate]["log_densities"]))
  shown = [k for k in config.shown_steps if k <= config.steps]
  colormap = plt.cm.viridis
  norm = plt.Normalize(0, max(shown))
  for k in shown:
    left.plot(x, densities[k], color=colormap(norm(k)), linewidth=1.0)
  left.plot(x, np.exp(np.asarray(log_p_data)), "k--", linewidth=1.2, label="p_data")
  left.set_xlim(-5, 5)
  left.set_xlabel("x")
  left.set_ylabel("density")
  left.legend(fontsize=8, loc="upper left")
  left.set_title(f"p_k, {loss} step h = {rate:g}, D = D* at every step", fontsize=10)
  bar = figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=colormap), ax=left)
  bar.set_label("step k")
  # Middle: C(p_k) + log 4 = 2 JSD against the step, with the 1/k bound.
  steps = np.arange(config.steps + 1)
  styles = {"minimax": "-", "non_saturating": "--"}
  colors = plt.cm.tab10(np.arange(len(runs)))
  for color, ((loss, rate), run) in zip(colors, runs.items()):
    # Below 1e-15 the values are float64 rounding of a quantity that is 0: not drawn.
    excess = np.where(run["excess"] > 1e-15, run["excess"], np.nan)
    middle.semilogy(steps, excess, styles[loss], color=color, label=f"{loss}, h = {rate:g}")
    if (loss, rate) in _guaranteed(config):
      middle.semilogy(steps[1:], kl_start / (rate * steps[1:]), ":", color=color, linewidth=0.8,
                      label=f"bound KL(p_data || p_0) / (h k), h = {rate:g}")
  middle.set_ylim(1e-15, 1e2)
  middle.set_xlabel("step k (values below 1e-15, float64 rounding, not drawn)")
  middle.set_ylabel("C(p_k) + log 4 = 2 JSD(p_data || p_k)")
  middle.legend(fontsize=7)
  middle.set_title("the criterion along the updates", fontsize=10)
  # Right: C on the segment from p_0 to p_data, its chord and the tangent line at the midpoint.
  segment = segments["p_data", "p_0"]
  t = segment["t"]
  right.plot(t, segment["criterion"], color="black",
             label="C(p_t), p_t = t p_data + (1 - t) p_0")
  right.plot([0, 1], [segment["criterion"][0], segment["criterion"][-1]], color="grey",
             linestyle=":", label="chord")
  right.plot(t, segment["support"], color="tab:red", linestyle="--",
             label="V(D*_m, p_t): D* of m = p_(1/2) held fixed")
  right.plot([0.5], [segment["criterion"][len(t) // 2]], "o", color="tab:red", markersize=4)
  right.axhline(-math.log(4.0), color="grey", linewidth=0.6, label="-log 4")
  right.set_xlabel("t (0: p_0, 1: p_data)")
  right.set_ylabel("value")
  right.legend(fontsize=7, loc="lower left")
  right.set_title("C is convex in p_g; V(D*_m, .) is its tangent at m", fontsize=10)
  figure.tight_layout()
  save_figure(figure, workdir, "density_descent.png", report)
