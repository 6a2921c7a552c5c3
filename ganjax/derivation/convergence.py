"""Does alternating training reach the Nash equilibrium? The Dirac-GAN, then a real 1-D GAN.

The seed says that training alternates D and G updates and in the end reaches the equilibrium.
Mescheder, Geiger & Nowozin (2018) show that it need not. Their Dirac-GAN has p_data = delta_0,
a generator p_g = delta_theta and a linear discriminator D(x) = psi x (a logit); the equilibrium
is (theta, psi) = (0, 0), where the Jacobian of the gradient field has eigenvalues +-f'(0) i
(f'(0) = 1/2 for the minimax and non-saturating losses, 1 for Wasserstein). Gradient steps of
size h then

  simultaneous:  spiral outwards, |1 + h i f'(0)| = sqrt(1 + h^2 f'(0)^2) > 1 per step,
  alternating:   circle for ever (the update map has determinant 1, its eigenvalues lie on the
                 unit circle),

and with the R1 penalty (gamma / 2) psi^2 the eigenvalues move to -gamma/2 +- sqrt(gamma^2/4 -
f'(0)^2) and, for a small enough step, both converge (`theory.dirac_gan_*`).

Part 1 trains the Dirac-GAN as Flax modules (`DiracGenerator`, `LinearDiscriminator`) through the
library: `train.adversarial_update` (discriminator then generator, the alternating step) and
`simultaneous_update` (both gradients at the same state), SGD for both players, data from
`toy.gaussian_1d(0, tiny std)` and R1 through `GANSpec(penalty='r1', penalty_weight=gamma / 2)`.
The trajectories are compared with `theory.simulate_dirac_gan`, and the growth rate of the
distance to the equilibrium, a least-squares slope of log distance over the tail of a run
started near the equilibrium (where the linearisation holds), with the log of the spectral
radius of the linearised update map.

Part 2 asks the same question of a real GAN: MLP players on 1-D Gaussian data, trained with
Adam through `train.adversarial_update`, several seeds, with and without R1. There is no
closed form there: what is measured is whether the generator's distribution settles (the
Wasserstein-1 distance to the data, and the swing of G's mean, over the last part of the run).
"""
from __future__ import annotations

import pathlib

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ganjax import losses
from ganjax import theory
from ganjax import train
from ganjax.data import toy
from ganjax.derivation import _dynamics, command, pyplot, save_figure
from ganjax.derivation.report import Report
from ganjax.models import MLPDiscriminator, MLPGenerator

UPDATES = ("simultaneous", "alternating")
# A growth rate (log distance per step) within this of 0 is "constant" when classifying theory.
_CONSTANT = 1e-6


class DiracGenerator(nn.Module):
  """G(z) = theta for every latent z: p_g = delta_theta. theta starts at 0 (set it directly)."""

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train
    theta = self.param("theta", nn.initializers.zeros, ())
    return jnp.broadcast_to(theta, (z.shape[0], 1))


class LinearDiscriminator(nn.Module):
  """D(x) = psi x, a logit with no bias. psi starts at 0 (set it directly)."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train
    psi = self.param("psi", nn.initializers.zeros, ())
    return psi * x.reshape(x.shape[0], -1)[:, 0]


def simultaneous_update(state: train.GANState) -> tuple[train.GANState, train.Metrics]:
  """Both players' gradient steps taken at the same state (the library's per-device updates)."""
  d_state, d_metrics = train.discriminator_update(state)
  g_state, g_metrics = train.generator_update(state)
  state = d_state.replace(g_params=g_state.g_params, g_opt_state=g_state.g_opt_state,
                          step=g_state.step)
  return state, {**d_metrics, **g_metrics}


_STEP_FUNCTIONS = {"simultaneous": simultaneous_update, "alternating": train.adversarial_update}


def _spec(loss: str, gamma: float, batch_size: int, data: toy.GaussianMixture) -> train.GANSpec:
  """A 1-D-latent set-up with R1 weighted gamma / 2 (none for gamma = 0)."""
  return train.GANSpec(loss=loss, latent_dim=1, batch_size=batch_size, data=data,
                       penalty="r1" if gamma else None, penalty_weight=gamma / 2)


def run(config, workdir: pathlib.Path) -> Report:
  """Trains the Dirac-GANs and the 1-D GANs and reports them against the linearised theory.

  Config fields: seed, mode, dirac (losses, gammas, learning_rate, steps, near, far, batch_size,
  data_std), real (data (mean, std), generator (hidden, activation; a 1-D latent),
  discriminator (hidden, activation), loss, optimizer, batch_size, steps, seeds, gammas (0
  first), tail_fraction, quantiles), tolerances (trajectory, growth_rate, real_w1, real_w1_ratio,
  real_swing_ratio).
  """
  report = Report("convergence", "Does alternating training reach the Nash equilibrium? "
                  "The Dirac-GAN and a 1-D GAN", command(config, workdir))
  dirac = _dirac_gans(config)
  _add_dirac_rows(report, config, dirac)
  _add_landscape_rows(report, config)
  real = _real_gans(config)
  _add_real_rows(report, config, real)
  _plot_dirac_trajectories(config, dirac, workdir, report)
  _plot_dirac_distances(config, dirac, workdir, report)
  _plot_value_landscape(config, dirac, workdir, report)
  _plot_real(config, real, workdir, report)
  return report


# ----------------------------------------------------------------------------- the Dirac-GAN


def _theta_psi(state: train.GANState) -> jax.Array:
  return jnp.stack([state.g_params["theta"], state.d_params["psi"]])


def _dirac_gans(config) -> dict:
  """{(loss, update, gamma): {"library", "theory": trajectories (2 starts, steps + 1, 2),
  "radius": spectral radius of the linearised update, "eigenvalues": of the Jacobian}}; start 0
  is `near`, start 1 `far`."""
  settings = config.dirac
  sgd = {"name": "sgd", "learning_rate": settings.learning_rate}
  data = toy.gaussian_1d(0.0, settings.data_std)
  state = _dynamics.create_state(
      DiracGenerator(), LinearDiscriminator(),
      _spec(settings.losses[0], 0.0, settings.batch_size, data), sgd, sgd, config.seed)
  starts = (tuple(settings.near), tuple(settings.far))
  start_states = [state.replace(g_params={"theta": jnp.float32(theta)},
                                d_params={"psi": jnp.float32(psi)}) for theta, psi in starts]
  results = {}
  for loss in settings.losses:
    for gamma in settings.gammas:
      spec = _spec(loss, gamma, settings.batch_size, data)
      for update in UPDATES:
        # One start after the other: under a vmap over starts XLA vectorises the float32
        # arithmetic differently from theory.simulate_dirac_gan's program, and the last-bit
        # differences accumulate (to 1e-4 of the distance over 2000 steps).
        trajectories = np.stack([np.asarray(_dynamics.trajectory(
            start.replace(spec=spec), settings.steps, _theta_psi, _STEP_FUNCTIONS[update])[1])
            for start in start_states])
        simulated = np.stack([np.asarray(theory.simulate_dirac_gan(
            theta, psi, settings.steps, settings.learning_rate, update, loss, gamma))
            for theta, psi in starts])
        results[loss, update, gamma] = {
            "library": trajectories,
            "theory": simulated,
            "radius": float(theory.dirac_gan_update_matrix_spectral_radius(
                loss, settings.learning_rate, update, gamma)),
            "eigenvalues": np.asarray(theory.dirac_gan_jacobian_eigenvalues(loss, gamma)),
        }
  return results


def _tail_rate(distances: np.ndarray) -> float:
  """Least-squares slope of log distance per step over the second half of the run, or of its
  part before the distance falls below 1e-25 of its start (float32 underflows further on)."""
  vanished = np.flatnonzero(distances < 1e-25 * distances[0])
  end = int(vanished[0]) if vanished.size else len(distances)
  steps = np.arange(end // 2, end)
  return float(np.polyfit(steps, np.log(distances[steps]), 1)[0])


def _classify(rate: float, threshold: float) -> str:
  if rate > threshold:
    return "grows"
  return "decays" if rate < -threshold else "constant"


def _add_dirac_rows(report: Report, config, dirac) -> None:
  settings, tolerances = config.dirac, config.tolerances
  h = settings.learning_rate
  report.text += [
      "## Part 1: the Dirac-GAN",
      "",
      f"Flax modules trained through the library with SGD (learning rate h = {h:g}) for both "
      f"players, {settings.steps} steps, data N(0, {settings.data_std:g}^2) (a point mass at 0 to "
      "float precision), batches of "
      f"{settings.batch_size}. Two starts: near = {tuple(settings.near)} (for the growth rates: "
      f"the linearisation holds there) and far = {tuple(settings.far)} (the phase plots). "
      "Growth rate: least-squares slope of log ||(theta, psi)|| per step over the second half of "
      "the near run; theory: log of the spectral radius of the linearised update map "
      "(`theory.dirac_gan_update_matrix_spectral_radius`, from the Jacobian below).",
      "",
      "| loss | gamma | Jacobian eigenvalues | update | log radius (theory) | measured rate | "
      "theory | measured | far start: distance / start at step K/2 | at step K |",
      "|---|---|---|---|---|---|---|---|---|---|",
  ]
  rates = {}
  for (loss, update, gamma), result in dirac.items():
    distances = np.linalg.norm(result["library"][0], axis=-1)
    far = np.linalg.norm(result["library"][1], axis=-1)
    rate, expected = _tail_rate(distances), float(np.log(result["radius"]))
    rates[loss, update, gamma] = rate
    eigenvalues = ", ".join(f"{z.real:+.3g}{z.imag:+.3g}i" for z in result["eigenvalues"])
    report.text.append(
        f"| {loss} | {gamma:g} | {eigenvalues} | {update} | {expected:+.3e} | {rate:+.3e} | "
        f"{_classify(expected, _CONSTANT)} | "
        f"{_classify(rate, tolerances.growth_rate)} | {far[len(far) // 2] / far[0]:.3g} | "
        f"{far[-1] / far[0]:.3g} |")
  report.text += [
      "",
      "'measured' classifies the measured rate with the growth-rate tolerance as the threshold "
      f"for 'constant'. The last two columns (K = {settings.steps}) are the nonlinear regime, "
      "which the linearisation does not describe: there the minimax field conserves "
      "theta^2 + psi^2 in continuous time, while the non-saturating one damps it "
      "(d/dt (theta^2 + psi^2) / 2 = u (sigmoid(-u) - sigmoid(u)) <= 0, u = psi theta). Its "
      "unregularised runs from the far start therefore "
      "shrink: with simultaneous steps to the cycle where the steps' growth balances that "
      "damping, with alternating steps slowly on towards 0. Near the equilibrium the damping "
      "is of higher order and the linearised rates hold for all three losses.",
      "",
  ]
  for update, order in (("alternating", "train.adversarial_update: D, then G"),
                        ("simultaneous", "both gradients at the same state")):
    deviation = max(
        np.max(np.abs(result["library"] - result["theory"]))
        / np.max(np.linalg.norm(result["theory"], axis=-1))
        for (_, kind, _), result in dirac.items() if kind == update)
    report.add(f"Dirac-GAN: library trajectory vs theory.simulate_dirac_gan, {update}", 0.0,
               deviation, tolerances.trajectory,
               note=f"{order}; max abs difference over the largest distance, all runs")
  for (loss, update, gamma), rate in rates.items():
    report.add(f"Dirac-GAN log growth per step: {loss}, {update}, gamma={gamma:g}",
               np.log(dirac[loss, update, gamma]["radius"]), rate, tolerances.growth_rate)


def _dirac_value(theta, psi):
  """V(D, G) of the Dirac-GAN by the library's `losses.value_function`: real logit psi * 0,
  fake logit psi * theta."""
  return losses.value_function(jnp.zeros((1,)), (psi * theta)[None])


def _add_landscape_rows(report: Report, config) -> None:
  """The value of the game at the equilibrium, and its Hessian there: a saddle."""
  tolerances = config.tolerances
  origin = jnp.zeros((2,))
  value = float(_dirac_value(*origin))
  hessian = np.asarray(jax.hessian(lambda z: _dirac_value(z[0], z[1]))(origin))
  eigenvalues = np.linalg.eigvalsh(hessian)
  report.text += [
      "## The value landscape",
      "",
      "V(D, G) = E log D(x) + E log(1 - D(G(z))) of the Dirac-GAN is log sigmoid(0) + "
      "log sigmoid(-psi theta) = -log 2 - log(1 + exp(psi theta)) (`losses.value_function`): "
      "-log 4 at the equilibrium, where its Hessian is [[0, -1/2], [-1/2, 0]] (d^2 V / d theta "
      "d psi = -sigmoid(0) = -f'(0)), eigenvalues -1/2 and +1/2: a saddle. V is concave in psi for "
      "every theta (D's best response is psi -> -infinity sign(theta)), but not convex in theta: "
      "the game is not convex-concave in the players' parameters, unlike in p_g (Proposition 2).",
      "",
  ]
  report.add("Dirac-GAN: V(D, G) at the equilibrium vs -log 4", -math.log(4.0), value,
             tolerances.landscape, note="`losses.value_function`")
  for name, theory_value, measured in (("smaller", -0.5, eigenvalues[0]),
                                       ("larger", 0.5, eigenvalues[1])):
    report.add(f"Dirac-GAN: {name} eigenvalue of the Hessian of V at the equilibrium",
               theory_value, measured, tolerances.landscape,
               note="jax.hessian of the library's value; theory -+f'(0) = -+1/2: a saddle")


# ----------------------------------------------------------------------------- a real 1-D GAN


def _real_gans(config) -> dict:
  """{gamma: {"w1", "mean", "std": (seeds, steps + 1)}} of the MLP GANs, one run per seed."""
  settings = config.real
  if settings.gammas[0] != 0.0:
    raise ValueError(f"real.gammas must start with 0 (no R1), got {tuple(settings.gammas)}")
  data = toy.gaussian_1d(settings.data.mean, settings.data.std)
  generator = MLPGenerator(output_dim=1, hidden=tuple(settings.generator.hidden),
                           activation=settings.generator.activation)
  discriminator = MLPDiscriminator(hidden=tuple(settings.discriminator.hidden),
                                   activation=settings.discriminator.activation)
  states = _dynamics.create_states(
      generator, discriminator, _spec(settings.loss, 0.0, settings.batch_size, data),
      dict(settings.optimizer), dict(settings.optimizer),
      [config.seed + i for i in range(settings.seeds)])
  levels = jnp.asarray(_dynamics.normal_quantiles(settings.quantiles))
  target = settings.data.mean + settings.data.std * levels[:, 0]
  results = {}
  for gamma in settings.gammas:
    spec = _spec(settings.loss, gamma, settings.batch_size, data)
    # Seeds one after the other: one compilation per gamma (a vmap over seeds compiles slower).
    params = [_dynamics.trajectory(state.replace(spec=spec), settings.steps, _generator_params)[1]
              for state in states]
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *params)
    results[gamma] = jax.tree.map(np.asarray, _distributions(states[0], params, levels, target))
  return results


def _generator_params(state: train.GANState):
  return state.g_params


@jax.jit
def _distributions(state: train.GANState, params, levels: jax.Array, target: jax.Array):
  """G's W1 to the data, mean and std for each set of generator parameters (leading axes).

  With the latent at N(0, 1) quantiles `levels` the sorted G(z_i) are quantiles of p_g, and
  W1(p_g, p_data) = mean_i |sorted G(z)_i - F_data^-1(u_i)|, `target` being F_data^-1(u_i).
  """
  def measure(g_params):
    samples = jnp.sort(_dynamics.generate(state, g_params, levels)[:, 0])
    return {"w1": jnp.mean(jnp.abs(samples - target)), "mean": jnp.mean(samples),
            "std": jnp.std(samples)}

  return jax.vmap(jax.vmap(measure))(params)


def _tail(values: np.ndarray, fraction: float) -> np.ndarray:
  return values[..., -max(int(round(values.shape[-1] * fraction)), 1):]


def _add_real_rows(report: Report, config, real) -> None:
  settings, tolerances = config.real, config.tolerances
  fraction = settings.tail_fraction
  tail_w1 = {gamma: np.median(np.mean(_tail(r["w1"], fraction), axis=-1))
             for gamma, r in real.items()}
  swing = {gamma: np.median(np.ptp(_tail(r["mean"], fraction), axis=-1))
           for gamma, r in real.items()}
  report.text += [
      "## Part 2: a real 1-D GAN",
      "",
      f"Data N({settings.data.mean:g}, {settings.data.std:g}^2); MLP generator "
      f"{tuple(settings.generator.hidden)} ({settings.generator.activation}, 1-D latent) and "
      f"discriminator {tuple(settings.discriminator.hidden)} "
      f"({settings.discriminator.activation}), the '{settings.loss}' loss, "
      f"{settings.optimizer.name} (learning rate {settings.optimizer.learning_rate:g}"
      f"{', b1 = %g' % settings.optimizer.b1 if 'b1' in settings.optimizer else ''}) for both, "
      f"batch {settings.batch_size}, {settings.steps} steps of `train.adversarial_update`, "
      f"{settings.seeds} seeds per setting; R1 weighted gamma / 2. W1 is measured on "
      f"{settings.quantiles} latent quantiles; 'tail' is the last {fraction:.0%} of the steps, "
      "and a value per setting is the median over the seeds.",
      "",
      "| gamma | tail W1 (median) | per seed | tail swing of G's mean (max - min) | final std "
      f"of G (data {settings.data.std:g}) | tail range of G's std, all seeds |",
      "|---|---|---|---|---|---|",
  ]
  for gamma, records in real.items():
    per_seed = ", ".join(f"{v:.3f}" for v in np.mean(_tail(records["w1"], fraction), axis=-1))
    final_std = ", ".join(f"{v:.3f}" for v in records["std"][:, -1])
    tail_std = _tail(records["std"], fraction)
    report.text.append(f"| {gamma:g} | {tail_w1[gamma]:.4f} | {per_seed} | {swing[gamma]:.4f} "
                       f"| {final_std} | {tail_std.min():.3f} to {tail_std.max():.3f} |")
  report.text.append("")
  for gamma in settings.gammas[1:]:
    report.add(f"1-D GAN tail W1, R1 gamma={gamma:g} / no R1", 0.0,
               tail_w1[gamma] / tail_w1[0.0], tolerances.real_w1_ratio, kind="value",
               note="medians over seeds; theory: R1 converges, the unregularised game need not")
    report.add(f"1-D GAN tail swing of G's mean, R1 gamma={gamma:g} / no R1", 0.0,
               swing[gamma] / swing[0.0], tolerances.real_swing_ratio, kind="value")
  strongest = max(real)
  report.add(f"1-D GAN tail W1 to the data, R1 gamma={strongest:g}", 0.0, tail_w1[strongest],
             tolerances.real_w1, kind="value", note="theory 0 up to minibatch noise")
  report.details.update(
      real_tail_w1={f"{gamma:g}": float(value) for gamma, value in tail_w1.items()},
      real_tail_swing={f"{gamma:g}": float(value) for gamma, value in swing.items()},
  )


# ----------------------------------------------------------------------------- figures


def _plot_dirac_trajectories(config, dirac, workdir, report) -> None:
  plt = pyplot()
  losses, gammas = config.dirac.losses, config.dirac.gammas
  figure, axes = plt.subplots(len(losses), len(UPDATES), figsize=(9, 3.6 * len(losses)),
                              squeeze=False, constrained_layout=True)
  colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(gammas)))
  for row, loss in enumerate(losses):
    for column, update in enumerate(UPDATES):
      axis = axes[row, column]
      for color, gamma in zip(colors, gammas):
        trajectory = dirac[loss, update, gamma]["library"][1]
        axis.plot(trajectory[:, 0], trajectory[:, 1], color=color, linewidth=0.8,
                  label=f"gamma = {gamma:g}")
      axis.plot(*trajectory[0], "ko", markersize=4)
      axis.plot(0.0, 0.0, "r*", markersize=9)
      far = np.abs(np.asarray(config.dirac.far)).max()
      axis.set_xlim(-3 * far, 3 * far)
      axis.set_ylim(-3 * far, 3 * far)
      axis.set_title(f"{loss}, {update}", fontsize=9)
      axis.set_xlabel("theta (generator)")
      axis.set_ylabel("psi (discriminator)")
  axes[0, 0].legend(fontsize=7)
  save_figure(figure, workdir, "dirac_trajectories.png", report)


def _plot_dirac_distances(config, dirac, workdir, report) -> None:
  plt = pyplot()
  losses, gammas = config.dirac.losses, config.dirac.gammas
  figure, axes = plt.subplots(len(losses), len(UPDATES), figsize=(9, 3.2 * len(losses)),
                              squeeze=False, sharex=True, constrained_layout=True)
  colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(gammas)))
  steps = np.arange(config.dirac.steps + 1)
  for row, loss in enumerate(losses):
    for column, update in enumerate(UPDATES):
      axis = axes[row, column]
      for color, gamma in zip(colors, gammas):
        result = dirac[loss, update, gamma]
        distances = np.linalg.norm(result["library"][0], axis=-1)
        with np.errstate(divide="ignore"):
          axis.semilogy(steps, distances / distances[0], color=color, linewidth=1.0,
                        label=f"gamma = {gamma:g}")
          axis.semilogy(steps, result["radius"] ** steps, color="black", linewidth=0.6,
                        linestyle="--")
      axis.set_ylim(1e-12, 1e3)
      axis.set_title(f"{loss}, {update} (dashed: radius^k)", fontsize=9)
      axis.set_ylabel("distance / start")
  for axis in axes[-1]:
    axis.set_xlabel("step")
  axes[0, 0].legend(fontsize=7)
  save_figure(figure, workdir, "dirac_distances.png", report)


def _inside(path: np.ndarray, extent: float) -> np.ndarray:
  """The part of a trajectory before it first leaves the square [-extent, extent]^2."""
  outside = np.flatnonzero(np.any(np.abs(path) > extent, axis=-1))
  return path[:outside[0]] if outside.size else path


def _plot_value_landscape(config, dirac, workdir, report) -> None:
  """V(theta, psi) of the Dirac-GAN as a surface and as contours, with trained trajectories."""
  plt = pyplot()
  far = float(np.abs(np.asarray(config.dirac.far)).max())
  value_of = jax.jit(jnp.vectorize(_dirac_value))
  loss = config.dirac.losses[0]
  shown = [(update, gamma) for update, gamma in (("simultaneous", 0.0), ("alternating", 0.0),
                                                 ("alternating", config.dirac.gammas[1]))
           if (loss, update, gamma) in dirac]
  colors = ("tab:red", "black", "tab:cyan")
  figure = plt.figure(figsize=(13, 5))
  surface_axis = figure.add_subplot(1, 2, 1, projection="3d")
  contour_axis = figure.add_subplot(1, 2, 2)
  for axis, extent in ((surface_axis, 1.5 * far), (contour_axis, 2.5 * far)):
    values = np.linspace(-extent, extent, 121)
    theta, psi = np.meshgrid(values, values)
    value = np.asarray(value_of(theta, psi))
    if axis is surface_axis:
      axis.plot_surface(theta, psi, value, cmap="viridis", linewidth=0, alpha=0.7, rstride=3,
                        cstride=3)
    else:
      levels = np.linspace(-3.5, -math.log(2.0), 29)
      filled = axis.contourf(theta, psi, value, levels=levels, cmap="viridis", extend="min")
      axis.contour(theta, psi, value, levels=[-math.log(4.0)], colors="white", linewidths=0.8,
                   linestyles="--")
      bar = figure.colorbar(filled, ax=axis)
      bar.set_label("V(D, G) = -log 2 - log(1 + exp(psi theta))")
    for color, (update, gamma) in zip(colors, shown):
      path = _inside(dirac[loss, update, gamma]["library"][1], extent)
      if axis is surface_axis:
        axis.plot(path[:, 0], path[:, 1], np.asarray(value_of(path[:, 0], path[:, 1])),
                  color=color, linewidth=1.2)
      else:
        axis.plot(path[:, 0], path[:, 1], color=color, linewidth=0.9,
                  label=f"{update}, gamma = {gamma:g}")
  contour_axis.plot(*np.asarray(config.dirac.far), "ko", markersize=4, label="start")
  contour_axis.plot(0.0, 0.0, "r*", markersize=10, label="equilibrium: V = -log 4, a saddle")
  surface_axis.scatter([0.0], [0.0], [-math.log(4.0)], color="red", marker="*", s=80)
  surface_axis.set_xlabel("theta (generator)")
  surface_axis.set_ylabel("psi (discriminator)")
  surface_axis.set_zlabel("V(D, G)")
  surface_axis.set_title(f"V of the Dirac-GAN ({loss}) with the trajectories lifted onto it",
                         fontsize=10)
  contour_axis.set_xlabel("theta (generator: minimises V)")
  contour_axis.set_ylabel("psi (discriminator: maximises V)")
  contour_axis.set_title("trained trajectories from the far start (dashed: V = -log 4)",
                         fontsize=10)
  contour_axis.legend(fontsize=7, loc="lower left")
  figure.tight_layout()
  save_figure(figure, workdir, "value_landscape.png", report)


def _plot_real(config, real, workdir, report) -> None:
  plt = pyplot()
  figure, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4))
  colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(real)))
  for color, (gamma, records) in zip(colors, real.items()):
    steps = np.arange(records["w1"].shape[-1])
    left.semilogy(steps, np.median(records["w1"], axis=0), color=color, label=f"gamma = {gamma:g}")
    left.fill_between(steps, records["w1"].min(axis=0), records["w1"].max(axis=0), color=color,
                      alpha=0.15)
    middle.plot(steps, records["mean"][0], color=color, linewidth=0.8,
                label=f"gamma = {gamma:g}")
    right.plot(steps, np.median(records["std"], axis=0), color=color, linewidth=0.8,
               label=f"gamma = {gamma:g}")
    right.fill_between(steps, records["std"].min(axis=0), records["std"].max(axis=0),
                       color=color, alpha=0.15)
  middle.axhline(config.real.data.mean, color="black", linewidth=0.6, linestyle="--")
  right.axhline(config.real.data.std, color="black", linewidth=0.6, linestyle="--")
  left.set_xlabel("step")
  left.set_ylabel("W1(p_g, p_data) (median, min-max over seeds)")
  left.legend(fontsize=8)
  left.set_title("distance to the data", fontsize=10)
  middle.set_xlabel("step")
  middle.set_ylabel("mean of G(z), first seed (dashed: data)")
  middle.legend(fontsize=8)
  middle.set_title("the generator's mean", fontsize=10)
  right.set_xlabel("step")
  right.set_ylabel("std of G(z) (median, min-max over seeds; dashed: data)")
  right.legend(fontsize=8)
  right.set_title("the generator's spread", fontsize=10)
  save_figure(figure, workdir, "real_gan.png", report)
