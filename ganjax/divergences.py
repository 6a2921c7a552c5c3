"""f-divergences: the generator f, its convex conjugate f* and the f-GAN output activation g_f.

One definition serves both `ganjax.losses` (the variational f-GAN objective) and
`ganjax.theory` (the divergence itself, by quadrature), so the two cannot drift apart.

For a convex f (with f(1) = 0, so that it vanishes at P = Q) the f-divergence of P from Q is

    D_f(P || Q) = integral q(x) f(p(x) / q(x)) dx,

and for any function T, D_f(P || Q) >= E_P[T(x)] - E_Q[f*(T(x))] with
f*(t) = sup_u (u t - f(u)). f-GAN writes T = g_f(V) with an output activation g_f that maps
the real line into the domain of f*. P is the data distribution and Q the generator's.

The integrand q f(p / q) (the perspective of f) is also written for log-densities
(`FDivergence.integrand`): from log p and log q, without forming p, q or p / q, so that it stays
finite and accurate where a float32 density underflows (below about 1e-38, or e^-87) or the ratio
leaves float range, and takes its limiting value where one density vanishes (log-density -inf).

References: Nowozin, Cseke & Tomioka 2016, "f-GAN: Training Generative Neural Samplers using
Variational Divergence Minimization", Tables 1 and 2 (f, f*, g_f, f'(1)).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp

from ganjax import errors

ArrayFn = Callable[[jax.Array], jax.Array]
LogPerspective = Callable[[jax.Array, jax.Array], jax.Array]
_LOG2 = math.log(2.0)


def _xlogx(u: jax.Array) -> jax.Array:
  return jax.scipy.special.xlogy(u, u)


def log_ratio(log_p: jax.typing.ArrayLike, log_q: jax.typing.ArrayLike) -> jax.Array:
  """log p - log q, and 0 where both log-densities are -inf (the point carries no mass).

  Args:
    log_p: log-densities of P.
    log_q: log-densities of Q, broadcastable against log_p.

  Returns:
    log(p / q), +inf where only q vanishes and -inf where only p does.
  """
  log_p, log_q = jnp.asarray(log_p), jnp.asarray(log_q)
  neither = (log_p == -jnp.inf) & (log_q == -jnp.inf)
  return jnp.where(neither, 0.0, log_p - log_q)


def weighted(log_weight: jax.typing.ArrayLike, value: jax.typing.ArrayLike) -> jax.Array:
  """exp(log_weight) * value: 0 where log_weight = -inf whatever the value (0 log 0 = 0), and the
  infinite value where it is infinite and the weight positive, even if exp(log_weight) underflows.

  Args:
    log_weight: the log of a non-negative weight (a log-density).
    value: the value it weights, broadcastable against log_weight; it may be infinite or NaN
      where the weight vanishes.

  Returns:
    The product, with the broadcast shape; its gradient is 0 where the weight vanishes or the
    value is infinite.
  """
  log_weight, value = jnp.asarray(log_weight), jnp.asarray(value)
  vanishes, infinite = log_weight == -jnp.inf, jnp.isinf(value)
  finite_value = jnp.where(vanishes | infinite, 0.0, value)
  return jnp.where(vanishes, 0.0, jnp.where(infinite, value, jnp.exp(log_weight) * finite_value))


def _kl_from_logs(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
  # p log(p / q).
  return weighted(log_p, log_ratio(log_p, log_q))


def _reverse_kl_from_logs(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
  # q log(q / p).
  return weighted(log_q, -log_ratio(log_p, log_q))


def _pearson_from_logs(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
  # q (u - 1)^2 with u = p / q = e^d: q expm1(d)^2 where d <= 0, and (p^2 / q) expm1(-d)^2 =
  # exp(log p + d) expm1(-d)^2 where d > 0, so that no factor overflows.
  d = log_ratio(log_p, log_q)
  below, above = jnp.minimum(d, 0.0), jnp.maximum(d, 0.0)
  return jnp.where(d <= 0.0, weighted(log_q, jnp.expm1(below) ** 2),
                   weighted(log_p + above, jnp.expm1(-above) ** 2))


def _squared_hellinger_from_logs(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
  # (sqrt(p) - sqrt(q))^2 = max(p, q) (1 - exp(-|d| / 2))^2.
  d = log_ratio(log_p, log_q)
  return weighted(jnp.maximum(log_p, log_q), jnp.expm1(-0.5 * jnp.abs(d)) ** 2)


def _gan_from_logs(log_p: jax.Array, log_q: jax.Array, offset: float = 0.0) -> jax.Array:
  # p (offset + log(p / (p + q))) + q (offset + log(q / (p + q))), where
  # log(p / (p + q)) = log sigmoid(d).
  d = log_ratio(log_p, log_q)
  return (weighted(log_p, offset + jax.nn.log_sigmoid(d))
          + weighted(log_q, offset + jax.nn.log_sigmoid(-d)))


# p log(2 p / (p + q)) + q log(2 q / (p + q)): the GAN integrand + (p + q) log 2.
_jensen_shannon_from_logs = functools.partial(_gan_from_logs, offset=_LOG2)


@dataclasses.dataclass(frozen=True)
class FDivergence:
  """One row of the f-GAN tables.

  Attributes:
    name: the registry name.
    generator: f(u) for u > 0, convex, with f(1) = 0 in every row except GAN's (f(1) = -log 4,
      so that its divergence is 2 JSD - log 4 as in the paper).
    conjugate: f*(t), defined on `conjugate_domain`.
    activation: g_f(v), mapping a real network output v into the domain of f*.
    conjugate_of_activation: f*(g_f(v)), written in a numerically stable form.
    conjugate_domain: (low, high) open interval on which f* is finite.
    threshold: f'(1), the value of g_f(v) at which the critic calls a sample real
      (Nowozin et al. 2016, Table 2).
    perspective_from_logs: (log p, log q) -> q f(p / q), written stably in the log-densities
      (see `integrand`); None: computed from `generator`.
  """
  name: str
  generator: ArrayFn
  conjugate: ArrayFn
  activation: ArrayFn
  conjugate_of_activation: ArrayFn
  conjugate_domain: tuple[float, float]
  threshold: float
  perspective_from_logs: LogPerspective | None = None

  def integrand(self, log_p: jax.typing.ArrayLike, log_q: jax.typing.ArrayLike) -> jax.Array:
    """The integrand of D_f from log-densities.

      q f(p / q),   p = exp(log_p), q = exp(log_q),

    0 where both densities vanish. With `perspective_from_logs` (every row of the tables) it is
    computed without forming p / q and takes its limit p lim_{u -> inf} f(u) / u where only q
    vanishes (+inf for KL and Pearson, 0 for reverse KL, p for squared Hellinger, p log 2 for
    Jensen-Shannon, 0 for GAN); without, it is exp(log_q) f(exp(log_p - log_q)), NaN where only
    q vanishes.

    Args:
      log_p: log-densities of P, -inf where p = 0.
      log_q: log-densities of Q, broadcastable against log_p.

    Returns:
      q f(p / q) at each point, with the broadcast shape.

    References: Nowozin, Cseke & Tomioka 2016, Section 2 (Eq. 2).
    """
    log_p, log_q = jnp.asarray(log_p), jnp.asarray(log_q)
    if self.perspective_from_logs is not None:
      return self.perspective_from_logs(log_p, log_q)
    ratio = jnp.exp(log_ratio(log_p, log_q))
    only_q_vanishes = (log_q == -jnp.inf) & (log_p > -jnp.inf)
    return jnp.where(only_q_vanishes, jnp.nan, weighted(log_q, self.generator(ratio)))


KL = FDivergence(
    name="kl",
    generator=_xlogx,
    conjugate=lambda t: jnp.exp(t - 1.0),
    activation=lambda v: v,
    conjugate_of_activation=lambda v: jnp.exp(v - 1.0),
    conjugate_domain=(-math.inf, math.inf),
    threshold=1.0,
    perspective_from_logs=_kl_from_logs,
)

REVERSE_KL = FDivergence(
    name="reverse_kl",
    generator=lambda u: -jnp.log(u),
    conjugate=lambda t: -1.0 - jnp.log(-t),
    activation=lambda v: -jnp.exp(-v),
    # -1 - log(exp(-v)) = v - 1.
    conjugate_of_activation=lambda v: v - 1.0,
    conjugate_domain=(-math.inf, 0.0),
    threshold=-1.0,
    perspective_from_logs=_reverse_kl_from_logs,
)

PEARSON = FDivergence(
    name="pearson",
    generator=lambda u: (u - 1.0) ** 2,
    conjugate=lambda t: 0.25 * t ** 2 + t,
    activation=lambda v: v,
    conjugate_of_activation=lambda v: 0.25 * v ** 2 + v,
    conjugate_domain=(-math.inf, math.inf),
    threshold=0.0,
    perspective_from_logs=_pearson_from_logs,
)

SQUARED_HELLINGER = FDivergence(
    name="squared_hellinger",
    generator=lambda u: (jnp.sqrt(u) - 1.0) ** 2,
    conjugate=lambda t: t / (1.0 - t),
    activation=lambda v: 1.0 - jnp.exp(-v),
    # (1 - e^-v) / e^-v = e^v - 1.
    conjugate_of_activation=jnp.expm1,
    conjugate_domain=(-math.inf, 1.0),
    threshold=0.0,
    perspective_from_logs=_squared_hellinger_from_logs,
)

# With this f (the paper's), D_f(P || Q) = KL(P || M) + KL(Q || M) = 2 JSD(P || Q), M = (P + Q) / 2:
# Table 1's factor 1/2 does not match its f, f* and g_f, which are kept as they are.
JENSEN_SHANNON = FDivergence(
    name="jensen_shannon",
    generator=lambda u: -(u + 1.0) * jnp.log((1.0 + u) / 2.0) + _xlogx(u),
    conjugate=lambda t: -jnp.log(2.0 - jnp.exp(t)),
    activation=lambda v: _LOG2 + jax.nn.log_sigmoid(v),
    # 2 - exp(g_f(v)) = 2 - 2 sigmoid(v) = 2 sigmoid(-v).
    conjugate_of_activation=lambda v: -_LOG2 - jax.nn.log_sigmoid(-v),
    conjugate_domain=(-math.inf, _LOG2),
    threshold=0.0,
    perspective_from_logs=_jensen_shannon_from_logs,
)

# D_f(P || Q) = 2 JSD(P || Q) - log 4: the divergence the original GAN minimises (Theorem 1 of
# Goodfellow et al. 2014).
GAN = FDivergence(
    name="gan",
    generator=lambda u: _xlogx(u) - (u + 1.0) * jnp.log(u + 1.0),
    conjugate=lambda t: -jnp.log1p(-jnp.exp(t)),
    activation=jax.nn.log_sigmoid,
    # 1 - exp(log sigmoid(v)) = sigmoid(-v).
    conjugate_of_activation=lambda v: -jax.nn.log_sigmoid(-v),
    conjugate_domain=(-math.inf, 0.0),
    threshold=-_LOG2,
    perspective_from_logs=_gan_from_logs,
)

DIVERGENCES: dict[str, FDivergence] = {
    d.name: d for d in (KL, REVERSE_KL, PEARSON, SQUARED_HELLINGER, JENSEN_SHANNON, GAN)}


def get(divergence: str | FDivergence) -> FDivergence:
  """The f-divergence a name refers to (an `FDivergence` is returned unchanged).

  Raises:
    ConfigError: for an unknown name, listing the valid ones.
  """
  if isinstance(divergence, FDivergence):
    return divergence
  return errors.lookup(DIVERGENCES, divergence, "f-divergence")
