"""The variational bounds of f-GAN (Nowozin, Cseke & Tomioka 2016) against the f-divergences.

For every convex f and every function T,

  D_f(P || Q) >= E_P[T(x)] - E_Q[f*(T(x))],

with equality at T*(x) = f'(p(x) / q(x)). P = N(m_p, s_p^2) is the data and Q = N(m_q, s_q^2) an
affine generator set by hand and never updated. For each divergence of `ganjax.divergences` the
variational function T = g_f(v) (v an MLP, the discriminator) is trained by
`train.discriminator_update` with the library's `fgan_discriminator_loss` (the objective
'fgan_<divergence>'); the bound it reaches, by quadrature and by Monte Carlo
(`losses.fgan_divergence_estimate`), is compared with D_f by quadrature of the log-densities
(`theory.f_divergence`).
By Fenchel-Young, g_f(v) u - f*(g_f(v)) <= f(u) at every point, so the quadrature bound is below
D_f for any network; the Monte Carlo bound is, up to its sampling noise.
"""
from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import divergences
from ganjax import losses
from ganjax import theory
from ganjax import train
from ganjax.data import toy
from ganjax.derivation import _densities, command, pyplot, save_figure
from ganjax.derivation.report import Report


def run(config, workdir: pathlib.Path) -> Report:
  """Trains one variational function per divergence and reports each bound against D_f.

  Config fields: seed, mode, data (mean, std: P), generator (mean, std: Q), divergences (names
  in `ganjax.divergences.DIVERGENCES`), discriminator (hidden, activation), steps, batch_size,
  learning_rate, grid (low, high, num), eval_samples, region_fraction (of the figure), tolerances
  (gap: a mapping from divergence name to the largest abs(D_f - bound) allowed;
  monte_carlo_excess: the largest (Monte Carlo bound - D_f) / standard error allowed).
  """
  data = toy.gaussian_1d(config.data.mean, config.data.std)
  mean, std = config.generator.mean, config.generator.std
  grid = _densities.Grid.linspace(config.grid.low, config.grid.high, config.grid.num)
  log_p = _densities.mixture_log_density(data, grid)
  log_q = theory.gaussian_log_density(grid.x, mean, std)
  p, q = jnp.exp(log_p), jnp.exp(log_q)
  jsd = float(theory.jensen_shannon_divergence(log_p=log_p, log_q=log_q, dx=grid.dx))

  report = Report("fgan_bounds", "f-GAN: the variational lower bounds on f-divergences",
                  command(config, workdir))
  tolerances = config.tolerances
  initial_states = _densities.frozen_generator_states(
      _densities.mlp_discriminator(config.discriminator),
      _densities.adam(config.learning_rate, config.steps), f"fgan_{config.divergences[0]}", data,
      config.batch_size, config.seed, [mean], [std])
  results = {}
  for name in config.divergences:
    states = _densities.with_loss(initial_states, f"fgan_{name}")
    states, _ = _densities.train_discriminators(states, config.steps)
    result = _evaluate(_densities.unstack(states, 0), log_p, log_q, grid.points, grid.dx, name,
                       config.eval_samples, jax.random.PRNGKey(config.seed + 1))
    result = {key: np.asarray(value) if value.ndim else float(value)
              for key, value in result.items()}
    result["divergence"] = float(theory.f_divergence(log_p=log_p, log_q=log_q, dx=grid.dx,
                                                     divergence=name))
    results[name] = result
    true_value, bound = result["divergence"], result["bound"]
    note = ""
    if name == "jensen_shannon":
      note = f"D_f = 2 JSD, JSD = {jsd:.5f}; bound / JSD = {bound / jsd:.4f}"
    elif name == "gan":
      note = f"D_f = 2 JSD - log 4 (Goodfellow et al.'s C(G)), JSD = {jsd:.5f}"
    report.add(f"{name}: bound (quadrature) vs D_f", true_value, bound, tolerances.gap[name],
               note=note)

  excess = max((r["monte_carlo"] - r["divergence"]) / r["standard_error"]
               for r in results.values())
  report.add("largest (Monte Carlo bound - D_f) / standard error", 0.0, excess,
             tolerances.monte_carlo_excess, kind="value",
             note=f"{config.eval_samples} samples of P and of Q")
  report.text += [
      f"P (data) = N({config.data.mean:g}, {config.data.std:g}^2), Q (generator) = "
      f"N({mean:g}, {std:g}^2), an affine generator set by hand and never updated. For each "
      f"divergence an MLP v {tuple(config.discriminator.hidden)} "
      f"({config.discriminator.activation}) is trained with `fgan_discriminator_loss` for "
      f"{config.steps} steps of {config.batch_size} samples of P and of Q (Adam, "
      f"cosine-decayed learning rate {config.learning_rate:g}); T = g_f(v).",
      "",
      "The bound is E_P[T] - E_Q[f*(T)], by quadrature on the grid and by Monte Carlo "
      "(`losses.fgan_divergence_estimate` on fresh samples); D_f = integral q f(p / q) by "
      "quadrature (`theory.f_divergence`). The quadrature bound is <= D_f for any T "
      "(Fenchel-Young, pointwise), so each row's error is D_f - bound; the last row checks "
      "that the Monte Carlo bound does not exceed D_f by more than its sampling noise.",
      "",
      "Conventions: with the f, f* and g_f of the paper's tables (`ganjax.divergences`), "
      f"'jensen_shannon' is 2 JSD(P || Q) (= {2 * jsd:.5f}) and 'gan' is 2 JSD - log 4 "
      f"(= {2 * jsd - np.log(4.0):.5f}), where JSD(P || Q) = {jsd:.5f} "
      "(`theory.jensen_shannon_divergence`). Table 1 of the paper writes the Jensen-Shannon "
      "divergence with a factor 1/2 that its f does not have: its f, f* and g_f, kept as they "
      "are, give 2 JSD.",
      "",
      "| divergence | D_f (quadrature) | bound (quadrature) | D_f - bound | "
      "bound (Monte Carlo) | standard error |",
      "|---|---|---|---|---|---|",
      *(f"| {name} | {r['divergence']:.5f} | {r['bound']:.5f} | "
        f"{r['divergence'] - r['bound']:.1e} | {r['monte_carlo']:.5f} | "
        f"{r['standard_error']:.1e} |" for name, r in results.items()),
  ]
  report.details.update(jsd=jsd, results={
      name: {key: value for key, value in r.items() if key not in ("variational", "optimal")}
      for name, r in results.items()})

  _plot(results, grid, p, q, config.region_fraction, workdir, report)
  return report


@functools.partial(jax.jit, static_argnames=("name", "num"))
def _evaluate(state, log_p: jax.Array, log_q: jax.Array, points: jax.Array, dx: float,
              name: str, num: int, key: jax.Array) -> dict[str, jax.Array]:
  """The trained critic's bound and variational function, given the log-densities of P and Q.

  Returns:
    bound: integral p g_f(v) - q f*(g_f(v)) dx, the bound of the trained v under the true
      densities (quadrature on the grid `points` of spacing dx, each term exp(log p) times its
      factor).
    monte_carlo, standard_error: `losses.fgan_divergence_estimate` on `num` fresh samples of P
      and of Q, and its standard error.
    variational: T = g_f(v) at the grid points.
    optimal: T* = f'(p / q) at the grid points, the function at which the bound is tight
      (f' by `jax.grad`).
  """
  divergence = divergences.get(name)
  v = _densities.discriminator_outputs(state, points)
  bound = jnp.sum(divergences.weighted(log_p, divergence.activation(v))
                  - divergences.weighted(log_q, divergence.conjugate_of_activation(v)))
  data_key, noise_key = jax.random.split(key)
  real_v = _densities.discriminator_outputs(state, state.spec.data.sample(data_key, num))
  fake_v = _densities.discriminator_outputs(
      state, train.sample(state, num, noise_key, use_ema=False))
  variance = (jnp.var(divergence.activation(real_v))
              + jnp.var(divergence.conjugate_of_activation(fake_v)))
  return {
      "bound": bound * dx,
      "monte_carlo": losses.fgan_divergence_estimate(real_v, fake_v, name),
      "standard_error": jnp.sqrt(variance / num),
      "variational": divergence.activation(v),
      "optimal": jax.vmap(jax.grad(divergence.generator))(jnp.exp(log_p - log_q)),
  }


def _plot(results, grid, p, q, region_fraction, workdir, report):
  plt = pyplot()
  x = np.asarray(grid.x)
  shown = np.asarray(_densities.region(p + q, region_fraction))
  columns = 3
  rows = -(-len(results) // columns)
  figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
  for index, (axis, (name, r)) in enumerate(zip(axes.flat, results.items())):
    # Where P and Q have mass, on a second axis behind the functions.
    density = axis.twinx()
    density.fill_between(x[shown], np.asarray(p)[shown], color="tab:blue", alpha=0.12,
                         label="p (P, the data)")
    density.fill_between(x[shown], np.asarray(q)[shown], color="tab:orange", alpha=0.12,
                         label="q (Q, the generator)")
    density.set_ylim(0, 1.05 * float(max(np.max(p), np.max(q))))
    if index % columns == columns - 1 or index == len(results) - 1:
      density.set_ylabel("density (shaded)")
    axis.set_zorder(density.get_zorder() + 1)
    axis.patch.set_visible(False)
    axis.plot(x[shown], np.asarray(r["optimal"])[shown], color="black",
              label="T* = f'(p / q), the optimum")
    axis.plot(x[shown], np.asarray(r["variational"])[shown], color="tab:red", linestyle="--",
              label="trained T = g_f(v)")
    axis.set_title(f"{name}: bound {r['bound']:.4f} / D_f {r['divergence']:.4f}", fontsize=9)
    axis.set_xlabel("x")
    if index % columns == 0:
      axis.set_ylabel("T(x)")
  for axis in list(axes.flat)[len(results):]:
    axis.axis("off")
  handles = [h for axis in (axes.flat[0], density) for h in axis.get_legend_handles_labels()[0]]
  labels = [l for axis in (axes.flat[0], density) for l in axis.get_legend_handles_labels()[1]]
  figure.suptitle("f-GAN: trained variational functions against the optimal ones")
  figure.tight_layout(rect=(0, 0.06, 1, 1))
  figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
  save_figure(figure, workdir, "variational_functions.png", report)
