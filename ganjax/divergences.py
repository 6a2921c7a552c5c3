"""f-divergences: the generator f, its convex conjugate f* and the f-GAN output activation g_f.

One definition serves both `ganjax.losses` (the variational f-GAN objective) and
`ganjax.theory` (the divergence itself, by quadrature), so the two cannot drift apart.

For a convex f (with f(1) = 0, so that it vanishes at P = Q) the f-divergence of P from Q is

    D_f(P || Q) = integral q(x) f(p(x) / q(x)) dx,

and for any function T, D_f(P || Q) >= E_P[T(x)] - E_Q[f*(T(x))] with
f*(t) = sup_u (u t - f(u)). f-GAN writes T = g_f(V) with an output activation g_f that maps
the real line into the domain of f*. P is the data distribution and Q the generator's.

References: Nowozin, Cseke & Tomioka 2016, "f-GAN: Training Generative Neural Samplers using
Variational Divergence Minimization", Tables 1 and 2 (f, f*, g_f, f'(1)).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

ArrayFn = Callable[[jax.Array], jax.Array]
_LOG2 = math.log(2.0)


def _xlogx(u: jax.Array) -> jax.Array:
  return jax.scipy.special.xlogy(u, u)


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
  """
  name: str
  generator: ArrayFn
  conjugate: ArrayFn
  activation: ArrayFn
  conjugate_of_activation: ArrayFn
  conjugate_domain: tuple[float, float]
  threshold: float


KL = FDivergence(
    name="kl",
    generator=_xlogx,
    conjugate=lambda t: jnp.exp(t - 1.0),
    activation=lambda v: v,
    conjugate_of_activation=lambda v: jnp.exp(v - 1.0),
    conjugate_domain=(-math.inf, math.inf),
    threshold=1.0,
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
)

PEARSON = FDivergence(
    name="pearson",
    generator=lambda u: (u - 1.0) ** 2,
    conjugate=lambda t: 0.25 * t ** 2 + t,
    activation=lambda v: v,
    conjugate_of_activation=lambda v: 0.25 * v ** 2 + v,
    conjugate_domain=(-math.inf, math.inf),
    threshold=0.0,
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
)

DIVERGENCES: dict[str, FDivergence] = {
    d.name: d for d in (KL, REVERSE_KL, PEARSON, SQUARED_HELLINGER, JENSEN_SHANNON, GAN)}


def get(divergence: str | FDivergence) -> FDivergence:
  """The f-divergence a name refers to (an `FDivergence` is returned unchanged).

  Raises:
    ValueError: for an unknown name, listing the valid ones.
  """
  if isinstance(divergence, FDivergence):
    return divergence
  try:
    return DIVERGENCES[divergence]
  except (KeyError, TypeError):
    raise ValueError(f"unknown f-divergence {divergence!r}; valid names: "
                     f"{', '.join(sorted(DIVERGENCES))}") from None
