"""Disjoint supports (Arjovsky & Bottou 2017, Theorems 2.1-2.4): a perfect discriminator, a flat
criterion and a vanishing minimax gradient.

When p_data and p_g live on low-dimensional manifolds that do not perfectly align (disjoint
supports, or manifolds meeting in a set of measure zero), there is a smooth discriminator D* that
is 1 on the data and 0 on the fakes with zero gradient on both supports (Theorems 2.1, 2.2); then
JSD(p_data || p_g) = log 2 and C(G) = -log 4 + 2 JSD = 0 (Theorem 2.3) whatever the distance
between the manifolds: the criterion is flat and tells the generator nothing. And with a
discriminator close to D*, ||D - D*|| < eps (sup of |D - D*| plus that of ||grad_x D -
grad_x D*||), and E_z ||J_theta g_theta(z)||^2 <= M^2, the minimax generator's gradient is
small (Theorem 2.4):

  ||grad_theta E_z log(1 - D(g_theta(z)))|| < M eps / (1 - eps).

Proof in two lines: the gradient is E_z[-grad_x D(g(z)) J_theta g(z) / (1 - D(g(z)))], and on the
fakes D* = 0 and grad_x D* = 0, so D < eps and ||grad_x D|| < eps there; Cauchy-Schwarz gives
E ||J|| <= M.

Set-up, in the plane: p_data is N(mean, std^2) on the x-axis, points (u, 0) (`LineData`: a
distribution with no density in R^2). The generators are affine, G(z) = z k + b with a 1-D latent
(the library's `MLPGenerator` with no hidden layer): the same distribution on the parallel line
at height c (k = (std, 0), b = (mean, c); c = 0 is p_data itself), or on a line through the data
at a slope (k = (std, slope std), b = (mean, 0)), which meets the data's line in one point. An
MLP discriminator is trained against each frozen generator by `train.discriminator_update` (the
library's `discriminator_loss`), all side by side in one compiled program. Expectations over z
and over the data are quadratures on N(0, 1) quantiles, so that the inequality of Theorem 2.4
holds exactly for the quantities measured: eps is the largest D + ||grad_x D|| over the fakes
(which is all the proof uses) and M^2 the mean of ||J_theta g||_2^2 (= 1 + z^2 for this
generator, so M = sqrt(2)).
"""
from __future__ import annotations

import dataclasses
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganjax import train
from ganjax.derivation import _densities, _dynamics, command, pyplot, save_figure
from ganjax.derivation.report import Report
from ganjax.models import mlp


@dataclasses.dataclass(frozen=True)
class LineData:
  """Points (u, 0) of the plane with u ~ N(mean, std^2): a distribution on the x-axis, a 1-D
  manifold of R^2, sampled on the device like the toy mixtures (`sample`, `sample_one`)."""
  mean: float = 0.0
  std: float = 1.0

  @property
  def shape(self) -> tuple[int, ...]:
    return (2,)

  def sample(self, key: jax.Array, num: int) -> jax.Array:
    u = self.mean + self.std * jax.random.normal(key, (num,))
    return jnp.stack([u, jnp.zeros_like(u)], axis=-1)

  def sample_one(self, key: jax.Array) -> jax.Array:
    return self.sample(key, 1)[0]


def generators(config) -> list[dict]:
  """The generators of the config: {"name", "height" (None for a slope), "kernel", "bias"}."""
  mean, std = config.data.mean, config.data.std
  result = [{"name": f"height {c:g}", "height": float(c), "kernel": (std, 0.0), "bias": (mean, c)}
            for c in config.heights]
  result += [{"name": f"slope {s:g}", "height": None, "kernel": (std, s * std),
              "bias": (mean, 0.0)} for s in config.slopes]
  return result


def run(config, workdir: pathlib.Path) -> Report:
  """Trains a discriminator against each generator and reports the criterion and the gradients.

  Config fields: seed, mode, data (mean, std), heights (c; 0 is p_g = p_data), slopes,
  shown_height (the generator of the figure's plane), bound_height (the one whose gradients
  the figure follows), discriminator (hidden, activation), learning_rate (constant Adam),
  batch_size, steps, chunk (discriminator updates between measurements), quantiles,
  tolerances (plateau, sloped, equal, accuracy, jacobian, bound, vanished).
  """
  data = LineData(config.data.mean, config.data.std)
  members = generators(config)
  states = _states(config, data, members)
  z = jnp.asarray(_dynamics.normal_quantiles(config.quantiles))
  real = jnp.stack([config.data.mean + config.data.std * z[:, 0], jnp.zeros(len(z))], axis=-1)
  if config.steps % config.chunk:
    raise ValueError(f"steps = {config.steps} is not a multiple of chunk = {config.chunk}")
  update = train.vmap_seeds(_densities.discriminator_updates, num_steps=config.chunk)
  history = [jax.tree.map(np.asarray, _measure(states, z, real))]
  for _ in range(config.steps // config.chunk):
    states, _ = update(states)
    history.append(jax.tree.map(np.asarray, _measure(states, z, real)))
  history = {key: np.stack([h[key] for h in history]) for key in history[0]}
  steps = np.arange(0, config.steps + 1, config.chunk)

  report = Report("disjoint_supports", "Disjoint supports (Arjovsky & Bottou 2017): a perfect "
                  "discriminator, C(G) flat at 0, the minimax gradient vanishing",
                  command(config, workdir))
  _add_rows(report, config, members, history, steps, float(np.mean(np.asarray(z, np.float64) ** 2)))
  _plot(config, members, states, history, steps, workdir, report)
  return report


def _states(config, data: LineData, members: list[dict]) -> train.GANState:
  """One state per generator, stacked: the same discriminator and key, G set to the member."""
  spec = train.GANSpec(loss="minimax", latent_dim=1, batch_size=config.batch_size, data=data)
  generator = mlp.MLPGenerator(output_dim=2, hidden=())
  discriminator = _densities.mlp_discriminator(config.discriminator)
  state = train.create_state(generator, discriminator, optax.set_to_zero(),
                             optax.adam(config.learning_rate), spec, data.shape, config.seed)
  states = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (len(members), *leaf.shape)), state)
  params = {"Dense_0": {
      "kernel": jnp.asarray([[m["kernel"]] for m in members], jnp.float32),
      "bias": jnp.asarray([m["bias"] for m in members], jnp.float32)}}
  return states.replace(g_params=params)


def _norm(tree) -> jax.Array:
  return jnp.sqrt(sum(jnp.sum(leaf ** 2) for leaf in jax.tree.leaves(tree)))


@jax.jit
def _measure(states: train.GANState, z: jax.Array, real: jax.Array) -> dict[str, jax.Array]:
  """For each stacked state: V(D, G), D's accuracy, eps, M and the generator gradients."""

  def one(state):
    params = state.g_params
    fake = _dynamics.generate(state, params, z)
    real_logits = _dynamics.discriminate(state, real)
    fake_logits = _dynamics.discriminate(state, fake)
    d_fake = jax.nn.sigmoid(fake_logits)
    d_of = lambda x: jax.nn.sigmoid(_dynamics.discriminate(state, x[None])[0])
    grad_d = jnp.linalg.norm(jax.vmap(jax.grad(d_of))(fake), axis=-1)
    jacobians = jax.vmap(lambda zi: jnp.concatenate(
        [leaf.reshape(2, -1) for leaf in jax.tree.leaves(jax.jacrev(
            lambda p: _dynamics.generate(state, p, zi[None])[0])(params))], axis=1))(z)
    jacobian_norms = jnp.linalg.norm(jacobians, ord=2, axis=(1, 2))
    gradient = {loss: _norm(jax.grad(lambda p, loss=loss: _dynamics.generator_loss(
        state, p, z, loss))(params)) for loss in ("minimax", "non_saturating")}
    return {
        "value": jnp.mean(jax.nn.log_sigmoid(real_logits))
                 + jnp.mean(jax.nn.log_sigmoid(-fake_logits)),
        "accuracy": (jnp.mean(real_logits > 0) + jnp.mean(fake_logits < 0)) / 2,
        "epsilon": jnp.max(d_fake + grad_d),
        "jacobian_bound": jnp.sqrt(jnp.mean(jacobian_norms ** 2)),
        # The proof's middle term, E ||grad_x D|| ||J|| / (1 - D), between the gradient and
        # the bound.
        "pointwise": jnp.mean(grad_d * jacobian_norms / (1 - d_fake)),
        "minimax": gradient["minimax"],
        "non_saturating": gradient["non_saturating"],
        "mean_d_fake": jnp.mean(d_fake),
        "mean_d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
    }

  return jax.vmap(one)(states)


def _bound(history) -> np.ndarray:
  epsilon = history["epsilon"]
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(epsilon < 1, history["jacobian_bound"] * epsilon / (1 - epsilon), np.inf)


def _add_rows(report: Report, config, members, history, steps, mean_z2: float) -> None:
  tolerances = config.tolerances
  end = {key: values[-1] for key, values in history.items()}
  equal = [i for i, m in enumerate(members) if m["height"] == 0.0]
  bound = _bound(history)
  report.text += [
      f"p_data: N({config.data.mean:g}, {config.data.std:g}^2) on the x-axis of the plane. "
      f"Generators G(z) = z k + b, z ~ N(0, 1): the same distribution on the line at height c "
      f"for c in {{{', '.join(f'{c:g}' for c in config.heights)}}} (c = 0 is p_data itself) "
      f"and on lines through the data at slopes {{{', '.join(f'{s:g}' for s in config.slopes)}}}. "
      f"Each frozen generator gets an MLP discriminator {tuple(config.discriminator.hidden)} "
      f"({config.discriminator.activation}) trained with `discriminator_loss` for "
      f"{config.steps} steps of {config.batch_size} real and fake samples (Adam, constant "
      f"learning rate {config.learning_rate:g}). Expectations are quadratures on "
      f"{config.quantiles} N(0, 1) quantiles (of z, and of the data's u).",
      "",
      "Theory: for every c != 0 and every slope the supports meet in a set of measure zero, so "
      "JSD(p_data || p_g) = log 2 and C(G) = max_D V(D, G) = 0 (not attained: D would need "
      "infinite logits); at c = 0, C(G) = -log 4. The Wasserstein-1 distance would be |c|.",
      "",
      f"| generator | V(D, G) after {config.steps} steps | (V + log 4) / 2, a lower bound on "
      "the JSD | accuracy of D | mean D(x) | mean D(G(z)) | norm(grad minimax) | "
      "norm(grad non-saturating) | eps | M eps / (1 - eps) |",
      "|---|---|---|---|---|---|---|---|---|---|",
      *(f"| {m['name']} | {end['value'][i]:.3e} | {(end['value'][i] + math.log(4)) / 2:.5f} | "
        f"{end['accuracy'][i]:.4f} | {end['mean_d_real'][i]:.4f} | "
        f"{end['mean_d_fake'][i]:.2e} | {end['minimax'][i]:.2e} | "
        f"{end['non_saturating'][i]:.3g} | {end['epsilon'][i]:.2e} | {bound[-1, i]:.2e} |"
        for i, m in enumerate(members)),
      "",
      "eps is the largest D(G(z)) + norm(grad_x D(G(z))) over the fakes: D* = 0 with zero "
      "gradient on the generator's line, so this is ||D - D*|| there, all that the proof of "
      "Theorem 2.4 uses; the bound is infinite while eps >= 1.",
      "",
  ]
  parallel = [i for i, m in enumerate(members) if m["height"]]
  sloped = [i for i, m in enumerate(members) if m["height"] is None]
  report.add(f"parallel lines (c > 0): largest abs(V(D, G) - C(G)), C(G) = 0", 0.0,
             max(abs(end["value"][i]) for i in parallel), tolerances.plateau,
             note=f"{len(parallel)} heights; V <= C(G) = 0 for every D")
  for i in sloped:
    report.add(f"{members[i]['name']} (meets the data's line in one point): V(D, G) vs C(G) = 0",
               0.0, end["value"][i], tolerances.sloped,
               note="continuous D cannot be perfect at the crossing")
  for i in equal:
    report.add("c = 0 (p_g = p_data): V(D, G) vs C(G) = -log 4", -math.log(4.0), end["value"][i],
               tolerances.equal)
  report.add("parallel lines: smallest accuracy of D", 1.0,
             min(end["accuracy"][i] for i in parallel), tolerances.accuracy,
             note="theory: a perfect discriminator exists (Theorem 2.1)")
  # J_theta g = [z I, I] does not depend on the parameters: the same M for every generator.
  report.add("M = sqrt(E_z norm(J_theta g(z))^2) vs sqrt(1 + E z^2)", math.sqrt(1 + mean_z2),
             history["jacobian_bound"][0, 0], tolerances.jacobian, kind="relative",
             note="E over the latent quantiles (sqrt(2) in the limit); ||J||_2 by SVD of the "
                  "autodiff Jacobian")
  finite = np.isfinite(bound[:, parallel])
  ratios = history["minimax"][:, parallel][finite] / bound[:, parallel][finite]
  report.add("parallel lines: largest norm(grad_theta E log(1 - D(G(z)))) / (M eps / (1 - eps))",
             1.0, float(np.max(ratios)), tolerances.bound, kind="value",
             note=f"{ratios.size} (step, generator) pairs with eps < 1; theory: below 1 "
                  "(Theorem 2.4)")
  first = np.argmax(finite, axis=0)
  start = history["minimax"][first, parallel]
  report.add(f"parallel lines: largest norm(grad minimax) after {config.steps} steps / when eps "
             "first < 1", 0.0, float(np.max(end["minimax"][parallel] / start)),
             tolerances.vanished, kind="value", note="theory: -> 0 as D -> D*")
  report.details.update(
      generators=[m["name"] for m in members],
      steps=steps,
      **{key: values for key, values in history.items()},
      bound=bound,
  )


def _plot(config, members, states, history, steps, workdir, report) -> None:
  plt = pyplot()
  figure, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.4))
  # Left: the supports, and the trained D of one generator as the background colour.
  shown = next(i for i, m in enumerate(members) if m["height"] == config.shown_height)
  xs, ys = np.linspace(-3.0, 3.0, 241), np.linspace(-0.6, max(config.heights) + 0.9, 181)
  grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
  state = _densities.unstack(states, shown)
  d = np.asarray(jax.nn.sigmoid(_densities.discriminator_outputs(state, grid)))
  mesh = left.pcolormesh(xs, ys, d.reshape(len(ys), len(xs)), cmap="viridis", vmin=0, vmax=1,
                         shading="auto")
  bar = figure.colorbar(mesh, ax=left)
  bar.set_label(f"D(x), trained against the line at height {config.shown_height:g}")
  left.axhline(0.0, color="tab:red", linewidth=3, label="supp p_data (x_2 = 0)")
  u = np.array([-3.0, 3.0])
  for m in members:
    if m["height"] == 0.0:
      continue
    (kx, ky), (bx, by) = m["kernel"], m["bias"]
    line_z = (u - bx) / kx
    left.plot(u, by + ky * line_z, color="white", linewidth=1.5,
              linestyle="-" if m["height"] is not None else "--")
  left.plot([], [], color="white", label="supp p_g: lines at heights c")
  left.plot([], [], color="white", linestyle="--", label="supp p_g: a line at a slope")
  left.set_xlim(xs[0], xs[-1])
  left.set_ylim(ys[0], ys[-1])
  left.set_xlabel("x_1")
  left.set_ylabel("x_2")
  left.legend(fontsize=7, loc="upper left", facecolor="lightgrey")
  left.set_title("disjoint supports and a near-perfect D", fontsize=10)
  # Middle: the criterion against the height.
  heights = [i for i, m in enumerate(members) if m["height"] is not None]
  c = np.array([members[i]["height"] for i in heights])
  middle.plot(c, history["value"][-1, heights], "o", color="tab:red",
              label=f"V(D, G), D trained {config.steps} steps")
  middle.plot(c[c > 0], np.zeros(np.sum(c > 0)), "k_", markersize=14,
              label="C(G) = -log 4 + 2 JSD = 0 (c != 0)")
  middle.plot([0.0], [-math.log(4.0)], "ks", markersize=5, label="C(G) = -log 4 (c = 0)")
  middle.set_xlabel("height c of the generator's line")
  middle.set_ylabel("value")
  twin = middle.twinx()
  twin.plot(c, c, color="grey", linestyle=":", label="W1(p_data, p_g) = c (for contrast)")
  twin.set_ylabel("Wasserstein-1 distance", color="grey")
  lines = middle.get_legend_handles_labels()
  twin_lines = twin.get_legend_handles_labels()
  middle.legend(lines[0] + twin_lines[0], lines[1] + twin_lines[1], fontsize=7,
                loc="lower right")
  middle.set_title("C(G) is flat: it does not see how far p_g is", fontsize=10)
  # Right: Theorem 2.4 along the discriminator's training, for one generator.
  index = next(i for i, m in enumerate(members) if m["height"] == config.bound_height)
  bound = _bound(history)[:, index]
  shown_steps = steps[1:]
  right.loglog(shown_steps, history["minimax"][1:, index], color="tab:red",
               label="||grad_theta E log(1 - D(G(z)))|| (minimax)")
  right.loglog(shown_steps, history["pointwise"][1:, index], color="tab:red", linestyle=":",
               label="E ||grad_x D|| ||J|| / (1 - D) (the proof's middle term)")
  right.loglog(shown_steps, bound[1:], color="black", linestyle="--",
               label="M eps / (1 - eps) (Theorem 2.4)")
  right.loglog(shown_steps, history["non_saturating"][1:, index], color="tab:blue",
               label="||grad_theta E -log D(G(z))|| (non-saturating)")
  right.set_xlabel("discriminator updates")
  right.set_ylabel("gradient norm on G's parameters")
  right.legend(fontsize=7, loc="lower left")
  right.set_title(f"the generator's gradient, line at height {config.bound_height:g}",
                  fontsize=10)
  figure.tight_layout()
  save_figure(figure, workdir, "disjoint_supports.png", report)
