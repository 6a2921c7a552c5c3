"""Saturation: against a strong discriminator the minimax generator loss gives almost no gradient.

With D = sigmoid(a), a the discriminator's logit on a generated sample, the two generator losses
of Goodfellow et al. 2014 have

  minimax         L = log(1 - D):  dL/da = -D,        -> 0 when D rejects the fakes (D -> 0),
  non-saturating  L = -log D:      dL/da = -(1 - D),  -> -1 there,

so early in training, when D(G(z)) is tiny, the minimax generator hardly moves (section 3 of the
paper; `theory.generator_logit_gradient`).

Set-up: data N(mu, s^2) far from an affine generator G(z) = b + w z (the library's
`MLPGenerator` without hidden layers), and an MLP discriminator pre-trained with
`train.discriminator_update` against the fixed G until D(G(z)) is tiny. Then, all through the
library's losses and networks:

1. A sweep of G's offset b across the line (w fixed, the pre-trained D held fixed), with the
   latent at quantiles of N(0, 1): for every sample the gradient of the generator loss with
   respect to its fake logit, by `jax.grad` (times the batch size: the loss is a mean), against
   -D and -(1 - D) at that sample; and the gradient with respect to G's parameters against the
   chain rule sum_i dL/da_i da_i/dtheta with the closed form for dL/da_i.
2. At the start: dL/db under each loss, and their ratio against E[D s] / E[(1 - D) s], s = da/db
   the logit's slope at each fake (the chain rule: exact), and the approximation
   E[D] / (1 - E[D]), which it equals when D's logit has the same slope at every fake.
3. Training from one state (same seed, same pre-trained D) with each loss,
   `train.adversarial_update` in a `lax.scan`: G's mean b over the steps; the ratio of the
   distances moved in the first steps against the ratio of the start gradients (what plain SGD
   predicts, an approximation: D and G move meanwhile), and the steps until
   |b - mu| < `reach_distance` under each loss, with SGD and with Adam for G (Adam divides the
   gradient by its running scale, which undoes most of the saturation).
"""
from __future__ import annotations

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import experiment
from ganjax import losses
from ganjax import train
from ganjax.data import toy
from ganjax.derivation import _dynamics, command, pyplot, save_figure
from ganjax.derivation.report import Report
from ganjax.models import MLPDiscriminator

LOSSES = ("minimax", "non_saturating")


def run(config, workdir: pathlib.Path) -> Report:
  """Pre-trains D, sweeps the gradients, trains G under both losses and reports.

  Config fields: seed, mode, data (mean, std), generator (offset, scale: G's start b, w),
  discriminator (hidden, activation, optimizer), batch_size, pretrain_steps, sweep (low, high,
  num, samples), generator_learning_rate, generator_optimizers (names for
  `experiment.make_optimizer`: 'sgd' first, then adaptive ones such as 'adam'), train_steps,
  initial_steps, reach_distance, tolerances (logit_gradient, parameter_gradient, start_d,
  start_ratio, equal_slopes, initial_speed, sgd_reach_ratio, adaptive_reach_ratio).
  """
  data = toy.gaussian_1d(config.data.mean, config.data.std)
  spec = train.GANSpec(loss=LOSSES[0], latent_dim=1, batch_size=config.batch_size, data=data)
  discriminator = MLPDiscriminator(hidden=tuple(config.discriminator.hidden),
                                   activation=config.discriminator.activation)
  state = _dynamics.create_state(
      _dynamics.affine_generator(), discriminator, spec, _optimizer(config, "sgd"),
      dict(config.discriminator.optimizer), config.seed,
      g_params=_dynamics.affine_params(config.generator.offset, config.generator.scale))
  state, pretrain_metrics = _dynamics.train_discriminator(
      state, num_steps=config.pretrain_steps)

  z = jnp.asarray(_dynamics.normal_quantiles(config.sweep.samples))
  offsets = np.linspace(config.sweep.low, config.sweep.high, config.sweep.num)
  # The start offset first, then the sweep: one compiled program for both.
  gradients = _with_d(_sweep_gradients(
      state, z, jnp.asarray(np.concatenate([[config.generator.offset], offsets]), jnp.float32),
      jnp.float32(config.generator.scale)))
  start = jax.tree.map(lambda x: x[0], gradients)
  sweep = jax.tree.map(lambda x: x[1:], gradients)

  curves = {}
  for name in config.generator_optimizers:
    g_tx = experiment.make_optimizer(_optimizer(config, name))
    for loss in LOSSES:
      trained = state.replace(spec=dataclasses.replace(spec, loss=loss), g_tx=g_tx,
                              g_opt_state=g_tx.init(state.g_params))
      _, (offset, _), metrics = _dynamics.trajectory(trained, config.train_steps, _generator_affine)
      curves[name, loss] = {"offset": np.asarray(offset), "d_fake": np.asarray(metrics["g_fake"])}

  report = Report("saturation", "Saturation: the minimax and non-saturating generator gradients "
                  "against a strong discriminator", command(config, workdir))
  _add_rows(report, config, sweep, start, curves)
  report.details.update(
      pretrain_d_fake=float(pretrain_metrics["d_fake"][-1]),
      pretrain_d_real=float(pretrain_metrics["d_real"][-1]),
      start_mean_d=float(np.mean(start["d"])),
      start_offset_gradient={loss: float(start[loss]["parameters"][0]) for loss in LOSSES},
      sweep_d_range=[float(np.min(sweep["d"])), float(np.max(sweep["d"]))],
      steps_to_reach={f"{name}/{loss}": _steps_to_reach(curve["offset"], config)
                      for (name, loss), curve in curves.items()},
      final_offset={f"{name}/{loss}": float(curve["offset"][-1])
                    for (name, loss), curve in curves.items()},
  )
  _plot_gradients(sweep, offsets, config, workdir, report)
  _plot_training(curves, config, workdir, report)
  return report


def _optimizer(config, name: str) -> dict:
  return {"name": name, "learning_rate": config.generator_learning_rate}


def _generator_affine(state: train.GANState):
  """What the training curves keep of a state: G's (b, w)."""
  return _dynamics.affine_of(state.g_params)


def _gradients_at(state: train.GANState, z: jax.Array, offset: jax.Array, scale: jax.Array):
  """Fake-logit and parameter gradients of both generator losses at G(z) = offset + scale z.

  Returns:
    {"logits": D's logit per sample, loss: {"logit": per-sample dL/da times the batch size,
    "parameters": (dL/db, dL/dw) by autodiff, "chain_rule": the same from the closed form of
    dL/da and the Jacobian of the logits}} for each loss.
  """
  g_params = _dynamics.affine_params(offset, scale)
  num = z.shape[0]

  def logits_of(params):
    return _dynamics.discriminate(state, _dynamics.generate(state, params, z))

  logits = logits_of(g_params)
  logit_jacobian = jax.jacrev(logits_of)(g_params)
  closed_forms = {"minimax": -jax.nn.sigmoid(logits), "non_saturating": -jax.nn.sigmoid(-logits)}
  # da_i/d(b, w) per sample: the logit's slopes in G's parameters.
  result = {"logits": logits, "slopes": jnp.stack(_dynamics.affine_of(logit_jacobian), axis=-1)}
  for loss in LOSSES:
    generator = losses.get(loss).generator
    chain_rule = jax.tree.map(lambda jac, c=closed_forms[loss]: jnp.tensordot(c, jac, 1) / num,
                              logit_jacobian)
    parameters = jax.grad(lambda p, loss=loss: _dynamics.generator_loss(state, p, z, loss))(
        g_params)
    result[loss] = {
        "logit": jax.grad(lambda a, g=generator: g(None, a))(logits) * num,
        "parameters": jnp.stack(_dynamics.affine_of(parameters)),
        "chain_rule": jnp.stack(_dynamics.affine_of(chain_rule)),
    }
  return result


@jax.jit
def _sweep_gradients(state, z, offsets, scale):
  """`_gradients_at` for each offset, stacked."""
  return jax.vmap(lambda offset: _gradients_at(state, z, offset, scale))(offsets)


def _with_d(gradients):
  """The gradients as numpy arrays, with "d": D(G(z)) in float64 from the float32 logits."""
  gradients = jax.tree.map(np.asarray, gradients)
  # sigmoid(a) = exp(-log(1 + exp(-a))), which neither overflows nor cancels.
  gradients["d"] = np.exp(-np.logaddexp(0.0, -gradients["logits"].astype(np.float64)))
  return gradients


def _optimizer_text(optimizer) -> str:
  """An optimizer config as text: its name, learning rate and b1 when given."""
  b1 = f", b1 = {optimizer['b1']:g}" if "b1" in optimizer else ""
  return f"{optimizer['name']} at learning rate {optimizer['learning_rate']:g}{b1}"


def _near_one(value: float) -> str:
  """A probability for the text, written as 1 - (1 - value) when it rounds to 1."""
  return f"1 - {1.0 - value:.2g}" if value > 0.99 else f"{value:.3g}"


def _steps_to_reach(offsets: np.ndarray, config) -> int | None:
  """The first step at which |b - mu| < reach_distance, or None if never within the run."""
  reached = np.abs(offsets - config.data.mean) < config.reach_distance
  return int(np.argmax(reached)) if reached.any() else None


def _add_rows(report: Report, config, sweep, start, curves) -> None:
  tolerances = config.tolerances
  d = sweep["d"]
  closed_forms = {"minimax": -d, "non_saturating": -(1.0 - d)}
  points = d.size
  report.text += [
      f"Data N({config.data.mean:g}, {config.data.std:g}^2); G(z) = b + w z starts at "
      f"b = {config.generator.offset:g}, w = {config.generator.scale:g}. The discriminator (MLP "
      f"{tuple(config.discriminator.hidden)}, {config.discriminator.activation}; "
      f"{_optimizer_text(config.discriminator.optimizer)}) is pre-trained "
      f"for {config.pretrain_steps} steps of {config.batch_size} samples with G fixed, until "
      f"D(G(z)) = {np.mean(start['d']):.2g} on average.",
      "",
      f"Sweep: b in [{config.sweep.low:g}, {config.sweep.high:g}] ({config.sweep.num} values), "
      f"{config.sweep.samples} latent quantiles each ({points} samples, D(G(z)) from "
      f"{d.min():.1e} to {d.max():.3f}), the pre-trained D held fixed. The closed forms are "
      "evaluated in float64 from the float32 logits.",
      "",
      f"Training: the same pre-trained state for both losses, {config.train_steps} steps of "
      f"`train.adversarial_update` (D: its pre-training optimizer, continued; G: the optimizer "
      f"named, learning rate {config.generator_learning_rate:g}). 'Reach' is the first step with "
      f"|b - {config.data.mean:g}| < {config.reach_distance:g}; a run that never reaches counts "
      f"as {config.train_steps} steps (then the ratio row is an upper bound).",
      "",
      "| G's optimizer | loss | steps to reach | b after the run | mean D(G(z)), last 100 "
      "steps |",
      "|---|---|---|---|---|",
  ]
  for (name, loss), curve in curves.items():
    reached = _steps_to_reach(curve["offset"], config)
    report.text.append(
        f"| {name} | {loss} | {'not within the run' if reached is None else reached} | "
        f"{curve['offset'][-1]:.3f} | {np.mean(curve['d_fake'][-100:]):.2g} |")
  report.text.append("")
  # The other end of the sweep: past the data, where the pre-trained D accepts the fakes.
  offsets = np.linspace(config.sweep.low, config.sweep.high, config.sweep.num)
  norms = {loss: np.linalg.norm(sweep[loss]["parameters"], axis=-1) for loss in LOSSES}
  mean_d = np.mean(d, axis=-1)
  report.text += [
      "Along the sweep (the pre-trained D fixed): "
      + "; ".join(f"at b = {offsets[i]:g}, mean D(G(z)) = {_near_one(mean_d[i])}, gradient "
                  f"norm on (b, w) {norms['minimax'][i]:.2g} (minimax) and "
                  f"{norms['non_saturating'][i]:.2g} (non-saturating)"
                  for i in (0, int(np.argmin(np.abs(offsets - config.generator.offset))),
                            int(np.argmin(np.abs(offsets - config.data.mean))), len(offsets) - 1))
      + ". Each loss saturates where D is sure: the minimax one where it rejects the fakes, "
      "the non-saturating one where it accepts them.",
      "",
  ]
  for loss, formula in (("minimax", "-D"), ("non_saturating", "-(1 - D)")):
    error = np.max(np.abs(sweep[loss]["logit"] - closed_forms[loss]))
    report.add(f"max abs(dL/da - ({formula})) over the sweep, {loss}", 0.0, error,
               tolerances.logit_gradient, note=f"{points} samples")
  for loss in LOSSES:
    chain_rule, autodiff = sweep[loss]["chain_rule"], sweep[loss]["parameters"]
    error = np.max(np.linalg.norm(autodiff - chain_rule, axis=-1)
                   / np.linalg.norm(chain_rule, axis=-1))
    report.add(f"max relative error of grad_theta L vs the chain rule, {loss}", 0.0, error,
               tolerances.parameter_gradient, note=f"{config.sweep.num} offsets")

  mean_d = float(np.mean(start["d"]))
  report.add("mean D(G(z)) at the start (a strong D)", 0.0, mean_d, tolerances.start_d,
             kind="value")
  start_ratio = start["minimax"]["parameters"][0] / start["non_saturating"]["parameters"][0]
  # By the chain rule dL/db = E[dL/da s], s = da/db at each fake: the ratio is exactly
  # E[D s] / E[(1 - D) s] (float64 from the float32 logits and slopes).
  slopes = start["slopes"][:, 0].astype(np.float64)
  exact_ratio = np.sum(start["d"] * slopes) / np.sum((1.0 - start["d"]) * slopes)
  report.add("dL/db at the start, minimax / non-saturating", exact_ratio, start_ratio,
             tolerances.start_ratio, kind="relative",
             note="theory E[D s] / E[(1 - D) s], s = da/db at each fake (the chain rule)")
  report.add("approximation E[D] / (1 - E[D]) vs the start ratio E[D s] / E[(1 - D) s]",
             exact_ratio, mean_d / (1.0 - mean_d), tolerances.equal_slopes, kind="relative",
             note="exact if D's logit were equally steep at every fake")

  sgd = config.generator_optimizers[0]
  steps = config.initial_steps
  moved = {loss: curves[sgd, loss]["offset"][steps] - curves[sgd, loss]["offset"][0]
           for loss in LOSSES}
  report.add(f"distance G's mean moves in {steps} steps ({sgd}), minimax / non-saturating",
             start_ratio, moved["minimax"] / moved["non_saturating"],
             tolerances.initial_speed, kind="relative",
             note="approximation: the start dL/db ratio (SGD moves b by -lr dL/db; D and G "
                  "move meanwhile)")
  for name in config.generator_optimizers:
    reach = {loss: _steps_to_reach(curves[name, loss]["offset"], config) for loss in LOSSES}
    reach = {loss: config.train_steps if value is None else value for loss, value in reach.items()}
    ratio = reach["non_saturating"] / reach["minimax"]
    note = f"{reach['non_saturating']} vs {reach['minimax']} steps"
    if name == sgd:
      report.add(f"steps to reach the data, non-saturating / minimax ({name})", start_ratio,
                 ratio, tolerances.sgd_reach_ratio, kind="value",
                 note=note + "; theory: the start gradient ratio, were D frozen")
    else:
      report.add(f"steps to reach the data, non-saturating / minimax ({name})", 1.0, ratio,
                 tolerances.adaptive_reach_ratio, kind="absolute",
                 note=note + "; approximation 1: an adaptive step does not scale with the "
                 "gradient's size")


def _plot_gradients(sweep, offsets, config, workdir, report) -> None:
  plt = pyplot()
  figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  d = np.asarray(sweep["d"]).ravel()
  order = np.argsort(d)
  colors = {"minimax": "tab:red", "non_saturating": "tab:blue"}
  formulas = {"minimax": "-D", "non_saturating": "-(1 - D)"}
  every = max(d.size // 2000, 1)
  for loss in LOSSES:
    measured = np.asarray(sweep[loss]["logit"]).ravel()
    left.plot(d[order][::every], np.abs(measured[order][::every]), ".", markersize=3,
              color=colors[loss], alpha=0.5, label=f"{loss}: autodiff through D(G(z))")
    curve = np.geomspace(max(d.min(), 1e-12), d.max(), 200)
    closed = curve if loss == "minimax" else 1.0 - curve
    left.plot(curve, closed, color="black", linewidth=0.8,
              linestyle="-" if loss == "minimax" else "--", label=f"|{formulas[loss]}|")
    right.semilogy(np.asarray(offsets), np.linalg.norm(sweep[loss]["parameters"], axis=-1),
                   color=colors[loss], label=loss)
  left.set_xscale("log")
  left.set_yscale("log")
  left.set_xlabel("D(G(z))")
  left.set_ylabel("|dL/da| (a: the fake logit)")
  left.legend(fontsize=8)
  left.set_title("generator gradient per sample")
  right.axvline(config.generator.offset, color="grey", linestyle=":", linewidth=0.8)
  right.axvline(config.data.mean, color="grey", linestyle="--", linewidth=0.8)
  twin = right.twinx()
  twin.semilogy(np.asarray(offsets), np.mean(np.asarray(sweep["d"]), axis=-1), color="grey",
                linewidth=0.8, label="mean D(G(z)) (right axis)")
  twin.set_ylabel("mean D(G(z))", color="grey")
  right.set_xlabel("G's offset b (w fixed; dotted: the start, dashed: the data mean)")
  right.set_ylabel("|grad_(b, w) L|")
  handles = [h for axis in (right, twin) for h in axis.get_legend_handles_labels()[0]]
  labels = [l for axis in (right, twin) for l in axis.get_legend_handles_labels()[1]]
  right.legend(handles, labels, fontsize=8, loc="lower left")
  right.set_title("gradient on G's parameters, the pre-trained D fixed")
  save_figure(figure, workdir, "saturation_gradients.png", report)


def _plot_training(curves, config, workdir, report) -> None:
  plt = pyplot()
  figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  colors = {"minimax": "tab:red", "non_saturating": "tab:blue"}
  styles = ["-", "--", ":"]
  for (name, loss), curve in curves.items():
    style = styles[list(config.generator_optimizers).index(name)]
    label = f"{loss}, {name}"
    left.plot(curve["offset"], color=colors[loss], linestyle=style, label=label)
    right.semilogy(np.arange(1, len(curve["d_fake"]) + 1), curve["d_fake"], color=colors[loss],
                   linestyle=style, label=label, linewidth=0.8)
  mean, reach = config.data.mean, config.reach_distance
  left.axhspan(mean - reach, mean + reach, color="grey", alpha=0.2, label="data mean +- reach")
  left.set_xlabel("training step")
  left.set_ylabel("G's mean b")
  left.legend(fontsize=8)
  left.set_title("from the same pre-trained state")
  right.set_xlabel("training step")
  right.set_ylabel("mean D(G(z)) seen by G")
  right.legend(fontsize=8)
  right.set_title("how the discriminator judges the fakes")
  save_figure(figure, workdir, "saturation_training.png", report)
