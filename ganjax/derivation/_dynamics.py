"""What the training-dynamics studies share: 1-D players, their states and compiled loops.

The studies `saturation`, `non_saturating_gradient` and `convergence` train real Flax modules
with the per-device updates of `ganjax.train` (`discriminator_update`, `generator_update`,
`adversarial_update`), run for many steps inside one jitted `jax.lax.scan`. Their generators map
a one-dimensional latent z ~ N(0, 1) to the line; the affine one, G(z) = b + w z, is the
library's `MLPGenerator` with no hidden layer, so that p_g = N(b, w^2) is known exactly.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ganjax import experiment
from ganjax import losses
from ganjax import train
from ganjax.derivation import _densities

DATA_SHAPE = (1,)


# The affine generator G(z) = b + w z is the one the density studies use.
affine_generator, affine_params, affine_of = (_densities.affine_generator,
                                              _densities.affine_params, _densities.affine_of)


def create_states(generator: nn.Module, discriminator: nn.Module, spec: train.GANSpec,
                  g_optimizer: dict[str, Any], d_optimizer: dict[str, Any],
                  seeds: Sequence[int]) -> list[train.GANState]:
  """`train.create_state` for 1-D data and each seed, compiled once for all the seeds.

  Args:
    generator, discriminator: the players.
    spec: the training set-up (its `data` is the 1-D toy distribution sampled on the device).
    g_optimizer, d_optimizer: optimizer configs for `experiment.make_optimizer`.
    seeds: the runs' seeds.

  Returns:
    One state per seed.
  """
  g_tx, d_tx = experiment.make_optimizer(g_optimizer), experiment.make_optimizer(d_optimizer)
  return [train.create_state(generator, discriminator, g_tx, d_tx, spec, DATA_SHAPE, seed)
          for seed in seeds]


def create_state(generator: nn.Module, discriminator: nn.Module, spec: train.GANSpec,
                 g_optimizer: dict[str, Any], d_optimizer: dict[str, Any], seed: int,
                 g_params: Any = None) -> train.GANState:
  """One state of `create_states`, optionally starting the generator at `g_params` (its
  optimizer state is initialised for them)."""
  state, = create_states(generator, discriminator, spec, g_optimizer, d_optimizer, [seed])
  if g_params is not None:
    state = state.replace(g_params=g_params, g_opt_state=state.g_tx.init(g_params))
  return state


# `num_steps` discriminator updates against the fixed generator in one `lax.scan`, jitted.
train_discriminator = jax.jit(_densities.discriminator_updates, static_argnames=("num_steps",))


def generate(state: train.GANState, g_params: Any, z: jax.typing.ArrayLike) -> jax.Array:
  """G(z) with the given generator parameters, shape (num, 1)."""
  return state.generator.apply({"params": g_params, **state.g_collections}, z, train=False)


def discriminate(state: train.GANState, x: jax.typing.ArrayLike) -> jax.Array:
  """The discriminator's logits on x, shape (num,)."""
  return state.discriminator.apply({"params": state.d_params, **state.d_collections}, x,
                                   train=False)


def generator_loss(state: train.GANState, g_params: Any, z: jax.typing.ArrayLike, loss: str,
                   logit_fn: Callable[[jax.Array], jax.Array] | None = None) -> jax.Array:
  """The library's generator loss `loss` on the latents z, the discriminator held fixed.

  Args:
    state: supplies the generator, and the discriminator unless `logit_fn` is given.
    g_params: the generator's parameters (the argument to differentiate).
    z: latent vectors, shape (num, latent_dim).
    loss: a name that `ganjax.losses.get` accepts whose generator loss reads fake logits only.
    logit_fn: maps samples of shape (num, 1) to logits of shape (num,) in place of the trained
      discriminator (e.g. the optimal discriminator's exact logit).

  Returns:
    `ganjax.losses.get(loss).generator(None, logits of G(z))`.
  """
  fake = generate(state, g_params, z)
  logits = discriminate(state, fake) if logit_fn is None else logit_fn(fake)
  return losses.get(loss).generator(None, logits)


Update = Callable[[train.GANState], tuple[train.GANState, train.Metrics]]
Record = Callable[[train.GANState], Any]


@functools.partial(jax.jit, static_argnames=("num_steps", "record", "update"))
def trajectory(state: train.GANState, num_steps: int, record: Record,
               update: Update = train.adversarial_update) -> tuple[train.GANState, Any, Any]:
  """Trains for `num_steps` steps in one `lax.scan`, recording the state after every step.

  Args:
    state: the initial state.
    num_steps: the number of training steps.
    record: maps a state to what is kept of it (a pytree), e.g. the generator's parameters; a
      static argument, so reuse one function object to avoid recompiling.
    update: one training step, state -> (state, metrics); `train.adversarial_update` (the
      discriminator, then the generator) unless given.

  Returns:
    (final state, records, metrics): records stacked with the initial state's first, shape
    (num_steps + 1, ...); metrics of every step, shape (num_steps, ...).
  """
  def body(state, _):
    state, metrics = update(state)
    return state, (record(state), metrics)

  final, (records, metrics) = jax.lax.scan(body, state, length=num_steps)
  records = jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]),
                         record(state), records)
  return final, records, metrics


def normal_quantiles(num: int) -> np.ndarray:
  """Latent vectors z_i = Phi^-1((i + 1/2) / num), shape (num, 1).

  The mean of f(z_i) is a deterministic quadrature of E_{z ~ N(0, 1)} f(z) (the midpoint rule
  in the probability u = Phi(z)), so expectations over the latent carry no sampling noise.
  """
  with jax.enable_x64(True):
    levels = jax.scipy.special.ndtri((jnp.arange(num, dtype=jnp.float64) + 0.5) / num)
    return np.asarray(levels, np.float32)[:, None]
