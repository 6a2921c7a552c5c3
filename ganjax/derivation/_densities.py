"""What the 1-D density studies share: a quadrature grid, hand-set affine generators, a
discriminator trained against a frozen generator, and densities of samples.

The studies `optimal_discriminator`, `training_criterion`, `equilibrium` and `fgan_bounds` all
compare a network trained by `ganjax.train` with integrals of known 1-D densities. An affine
generator G(z) = w z + b with one latent dimension (`MLPGenerator` with no hidden layer) makes
p_g = N(b, w^2) exactly, so its parameters can be set by hand and p_g is known. The discriminator
is then trained by `train.discriminator_update` against that frozen generator, many steps in one
`lax.scan`, and over several generators side by side with `train.vmap_seeds`; the same training
measures C(G) = max_D V(D, G) for a generator trained with D (`retrained_discriminator`).
Evaluation (discriminator outputs, generator samples, the Monte Carlo value) is jitted on the
state without its optimizers, so that it compiles once per pair of networks.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganjax import losses
from ganjax import theory
from ganjax import train
from ganjax.data import toy
from ganjax.models import mlp

# p_g of an affine generator is N(b, w^2) only for one latent dimension (z ~ N(0, 1)).
AFFINE_LATENT_DIM = 1


@dataclasses.dataclass(frozen=True)
class Grid:
  """Equally spaced points x_i = low + i dx on which densities are integrated (`ganjax.theory`).

  Attributes:
    x: the points, shape (num,).
    dx: the spacing.
  """
  x: jax.Array
  dx: float

  @classmethod
  def linspace(cls, low: float, high: float, num: int) -> Grid:
    # The spacing in float64: x[1] - x[0] of the float32 points is off by up to ulp(|low|) / dx
    # relative (4.7e-5 for [-8, 8] in 2000 steps, 2.3e-5 for [-10, 10]), an error every integral
    # would carry.
    return cls(x=jnp.linspace(low, high, num), dx=(high - low) / (num - 1))

  @property
  def points(self) -> jax.Array:
    """The points as a batch of 1-D samples, shape (num, 1)."""
    return self.x[:, None]


def mixture_from_config(config: Any) -> toy.GaussianMixture:
  """The 1-D Gaussian mixture of a config with fields means, stds and weights (None: equal)."""
  weights = config.get("weights")
  return toy.mixture_1d(means=tuple(config.means), stds=tuple(config.stds),
                        weights=None if weights is None else tuple(weights))


def mixture_density(data: toy.GaussianMixture, grid: Grid) -> jax.Array:
  """The density of a 1-D mixture at the grid points (`theory.gaussian_mixture_density`, the
  closed form of the mixture's `prob`, compiled once for every grid and mixture size)."""
  return theory.gaussian_mixture_density(grid.x, *_components(data))


def mixture_log_density(data: toy.GaussianMixture, grid: Grid) -> jax.Array:
  """The log-density of a 1-D mixture at the grid points (`theory.gaussian_mixture_log_density`,
  the mixture's `log_prob`), exact where the density underflows."""
  return theory.gaussian_mixture_log_density(grid.x, *_components(data))


def _components(data: toy.GaussianMixture) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(means, stds, weights) of a 1-D mixture."""
  return jnp.asarray(data.means)[:, 0], jnp.asarray(data.stds), jnp.asarray(data.weights)


def affine_generator() -> mlp.MLPGenerator:
  """G(z) = w z + b: an `MLPGenerator` with no hidden layer and one output."""
  return mlp.MLPGenerator(output_dim=1, hidden=())


def affine_params(mean: jax.typing.ArrayLike, std: jax.typing.ArrayLike) -> dict[str, Any]:
  """Parameters of `affine_generator` for which p_g = N(mean, std^2) (z ~ N(0, 1))."""
  mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
  return {"Dense_0": {"kernel": std.reshape(1, 1), "bias": mean.reshape(1)}}


def affine_of(g_params: dict[str, Any]) -> tuple[jax.Array, jax.Array]:
  """(b, w) of `affine_generator` parameters, G(z) = b + w z (any leading axes are kept)."""
  dense = g_params["Dense_0"]
  return dense["bias"][..., 0], dense["kernel"][..., 0, 0]


def affine_mean_std(g_params: Any) -> tuple[float, float]:
  """(mean, std) of p_g for the parameters of an `affine_generator`."""
  b, w = affine_of(g_params)
  return float(b), float(jnp.abs(w))


def mlp_discriminator(config: Any) -> mlp.MLPDiscriminator:
  """The discriminator of a config with fields hidden and activation."""
  return mlp.MLPDiscriminator(hidden=tuple(config.hidden), activation=config.activation)


def adam(learning_rate: float, steps: int, b1: float = 0.9) -> optax.GradientTransformation:
  """Adam whose learning rate decays to 0 along a cosine over `steps` updates.

  The decay lets the last updates average out the minibatch noise, so that the network ends
  near the optimum of the expected loss rather than wandering around it at a constant step.
  """
  return optax.adam(optax.cosine_decay_schedule(learning_rate, steps), b1=b1)


def frozen_generator_states(discriminator: mlp.MLPDiscriminator,
                            d_tx: optax.GradientTransformation, loss: str,
                            data: toy.GaussianMixture, batch_size: int, seed: int,
                            means: Sequence[float], stds: Sequence[float]) -> train.GANState:
  """Training states whose generators are affine with p_g = N(means[i], stds[i]^2), stacked.

  Every state starts from the same discriminator and the same key, so the states differ only in
  p_g and see the same data and latent draws (common random numbers: differences between them
  are not sampling noise). The generator's optimizer sets every update to zero; the studies never
  update it anyway (only `discriminator_update` runs).

  Args:
    discriminator: the discriminator module.
    d_tx: its optimizer.
    loss: a name of `ganjax.losses.OBJECTIVES` whose discriminator loss is trained.
    data: the data distribution, sampled on the device inside the step.
    batch_size: samples per discriminator update, real and fake each.
    seed: seed of the initial discriminator and of the run's key.
    means: generator means, one per state.
    stds: generator standard deviations, one per state.

  Returns:
    A `GANState` whose leaves have a leading axis of size len(means).
  """
  spec = train.GANSpec(loss=loss, latent_dim=AFFINE_LATENT_DIM, batch_size=batch_size, data=data)
  state = train.create_state(affine_generator(), discriminator, optax.set_to_zero(), d_tx, spec,
                             data.shape, seed)
  num = len(means)
  states = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (num, *leaf.shape)), state)
  return states.replace(g_params=jax.vmap(affine_params)(jnp.asarray(means), jnp.asarray(stds)))


def with_loss(states: train.GANState, loss: str) -> train.GANState:
  """A copy of the states (training donates their buffers) that trains the objective `loss`.

  Every objective of `ganjax.losses` trains the same parameters, so states built once serve
  all of them.
  """
  copy = jax.tree.map(lambda leaf: jnp.array(leaf, copy=True), states)
  return copy.replace(spec=dataclasses.replace(states.spec, loss=loss))


def discriminator_updates(state: train.GANState, *, num_steps: int
                          ) -> tuple[train.GANState, train.Metrics]:
  """`num_steps` discriminator updates (`train.discriminator_update`, data sampled on the device)
  in one `lax.scan`; the generator is left as it is. Returns the final state and every update's
  metrics, stacked."""

  def body(state, _):
    return train.discriminator_update(state)

  return jax.lax.scan(body, state, length=num_steps)


def train_discriminators(states: train.GANState, num_steps: int
                         ) -> tuple[train.GANState, train.Metrics]:
  """Trains each of the stacked states' discriminators for `num_steps` updates, side by side in
  one compiled program (the states' buffers are donated)."""
  return train.vmap_seeds(discriminator_updates, num_steps=num_steps)(states)


def retrained_discriminator(state: train.GANState, learning_rate: float, steps: int
                            ) -> train.GANState:
  """The state with its discriminator trained `steps` more updates against its generator, which
  is frozen: an approximation of the best response D* to the generator, whose value V(D, G) then
  measures C(G) = max_D V(D, G). The discriminator starts from its parameters in `state` with a
  fresh `adam` (cosine-decayed from `learning_rate`)."""
  d_tx = adam(learning_rate, steps)
  state = state.replace(d_tx=d_tx, d_opt_state=d_tx.init(state.d_params))
  states, _ = train_discriminators(jax.tree.map(lambda leaf: leaf[None], state), steps)
  return unstack(states, 0)


def _without_optimizers(state: train.GANState) -> train.GANState:
  """The state without its optimizers, which evaluation does not use: as a jitted function's
  argument, its static part no longer changes when a discriminator gets a new optimizer."""
  return state.replace(g_tx=None, d_tx=None, g_opt_state=None, d_opt_state=None)


def discriminator_outputs(state: train.GANState, x: jax.Array) -> jax.Array:
  """The discriminator's raw outputs (logits, or f-GAN's v) at points x of shape (n, 1)."""
  return _discriminator_outputs(_without_optimizers(state), x)


@jax.jit
def _discriminator_outputs(state: train.GANState, x: jax.Array) -> jax.Array:
  return state.discriminator.apply({"params": state.d_params, **state.d_collections}, x,
                                   train=False)


@jax.jit
def stacked_outputs(states: train.GANState, x: jax.Array) -> jax.Array:
  """`discriminator_outputs` of each of the stacked states, shape (num_states, n)."""
  return jax.vmap(discriminator_outputs, in_axes=(0, None))(states, x)


def unstack(states: train.GANState, index: int) -> train.GANState:
  """The state at `index` of stacked states."""
  return jax.tree.map(lambda leaf: leaf[index], states)


def generator_samples(state: train.GANState, num: int, key: jax.Array) -> jax.Array:
  """`num` samples of the state's generator (`train.sample`), shape (num, 1)."""
  return _generator_samples(_without_optimizers(state), num, key)


@functools.partial(jax.jit, static_argnums=1)
def _generator_samples(state: train.GANState, num: int, key: jax.Array) -> jax.Array:
  return train.sample(state, num, key)


def smoothed_density(samples: jax.typing.ArrayLike, grid: Grid, bandwidth: float) -> jax.Array:
  """The Gaussian kernel density estimate of 1-D samples at the grid points.

  Its expectation is p convolved with N(0, bandwidth^2): compare it with
  `smoothed_mixture_density`, which applies the same smoothing to a known mixture, so that the
  comparison carries no smoothing bias (only sampling noise).
  """
  samples = np.asarray(samples, np.float64).reshape(-1)
  x = np.asarray(grid.x, np.float64)
  # Bin the samples on the grid first: the estimate is then one convolution, not n * grid terms.
  edges = np.concatenate([x - grid.dx / 2, [x[-1] + grid.dx / 2]])
  counts, _ = np.histogram(samples, bins=edges)
  offsets = np.arange(-(len(x) - 1), len(x)) * grid.dx
  kernel = np.exp(-0.5 * (offsets / bandwidth) ** 2) / (bandwidth * np.sqrt(2 * np.pi))
  density = np.convolve(counts, kernel, mode="valid") / len(samples)
  return jnp.asarray(density, jnp.float32)


def smoothed_mixture_density(data: toy.GaussianMixture, grid: Grid,
                             bandwidth: float) -> jax.Array:
  """The density of a 1-D mixture convolved with N(0, bandwidth^2), at the grid points: each
  component's variance grows by bandwidth^2."""
  stds = tuple(float(np.hypot(std, bandwidth)) for std in data.stds)
  return mixture_density(dataclasses.replace(data, stds=stds), grid)


def region(density: jax.Array, fraction: float) -> jax.Array:
  """The grid points where `density` is at least `fraction` of its maximum (a boolean mask)."""
  return density >= fraction * jnp.max(density)


def monte_carlo_value(state: train.GANState, num: int, key: jax.Array
                      ) -> tuple[jax.Array, jax.Array]:
  """V(D, G) = E log D(x) + E log(1 - D(G(z))) (`losses.value_function`) on `num` fresh data and
  generator samples, and its Monte Carlo standard error."""
  return _monte_carlo_value(_without_optimizers(state), num, key)


@functools.partial(jax.jit, static_argnums=1)
def _monte_carlo_value(state: train.GANState, num: int, key: jax.Array
                       ) -> tuple[jax.Array, jax.Array]:
  data_key, noise_key = jax.random.split(key)
  real_logits = discriminator_outputs(state, state.spec.data.sample(data_key, num))
  fake_logits = discriminator_outputs(state, train.sample(state, num, noise_key, use_ema=False))
  value = losses.value_function(real_logits, fake_logits)
  log_d, log_one_minus_d = jax.nn.log_sigmoid(real_logits), jax.nn.log_sigmoid(-fake_logits)
  standard_error = jnp.sqrt((jnp.var(log_d) + jnp.var(log_one_minus_d)) / num)
  return value, standard_error
