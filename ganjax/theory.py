"""The derivation of adversarial training in closed form, checkable numerically.

Four groups of results, each a pure function:

* Densities on a grid: the optimal discriminator D* (Proposition 1 of Goodfellow et al. 2014),
  the value function V(D, G), the virtual training criterion C(G) = max_D V(D, G) =
  -log 4 + 2 JSD(p_data || p_g) (Theorem 1), KL, JSD and every f-divergence of
  `ganjax.divergences`, and the direction the non-saturating generator loss really follows
  (Arjovsky & Bottou 2017, Theorem 2.5).
* Saturation: the gradient of a generator loss with respect to the fake logit, as a function
  of D = sigmoid(a).
* Proposition 2 of Goodfellow et al. 2014: the generator's functional gradient with D* held
  fixed, and its descent in the space of densities with D* recomputed at every step.
* The Dirac-GAN of Mescheder, Geiger & Nowozin (2018): its gradient vector field, Jacobian,
  eigenvalues and discrete update maps, and simulated trajectories.

Densities are arrays of density values at equally spaced points x_i with spacing dx, and every
integral is the rectangle rule sum_i g(x_i) * dx. When the integrand vanishes at both ends of
the grid (a grid wide enough for the densities) this equals the trapezoid rule, and for smooth
integrands it is accurate far beyond the grid spacing. Logarithms are natural. Products
p log q follow the convention 0 log 0 = 0 (`jax.scipy.special.xlogy`).

Every function of densities on a grid also takes log-densities, as keyword arguments named
log_<density> (`kl_divergence(log_p=..., log_q=..., dx=...)`), and then works in log space:
log-ratios, log-sigmoids and `ganjax.divergences.FDivergence.integrand`, never a density ratio.
A float32 density flushes to 0 below about 1e-38 (e^-87, some 13 standard deviations from a
Gaussian's mean) while its log-density stays exact, so the log forms hold on grids as wide as
wanted, and a log-density of -inf marks a point outside a support. Give both densities of a pair
in the same form.

Wherever a GAN objective is needed it is the library's own, taken from `ganjax.losses` by
name, so what is analysed here is exactly what `ganjax.train` optimises.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import xlog1py, xlogy

from ganjax import divergences
from ganjax import losses

DensityFn = Callable[[Any], jax.Array]
DIRAC_GAN_UPDATES = ("simultaneous", "alternating")


def _integrate(integrand: jax.Array, dx: jax.typing.ArrayLike) -> jax.Array:
  if dx is None:
    raise ValueError("the grid spacing dx is required")
  return jnp.sum(integrand) * dx


def _densities_or_logs(function: str, names: tuple[str, str], densities, log_densities,
                       log_names: tuple[str, str] | None = None) -> tuple[bool, Any, Any]:
  """(in_logs, first, second): the pair of log-densities if it is given, else the densities.

  Raises:
    ValueError: unless exactly one of the two forms is given, both of its members.
  """
  log_names = log_names or tuple(f"log_{name}" for name in names)
  choices = (f"{function} takes {names[0]} and {names[1]}, or {log_names[0]} and "
             f"{log_names[1]} (keyword arguments)")
  if all(value is None for value in log_densities):
    if any(value is None for value in densities):
      raise ValueError(choices)
    return False, *densities
  if any(value is not None for value in densities):
    raise ValueError(f"{choices}, not a mixture of the two")
  if any(value is None for value in log_densities):
    raise ValueError(choices)
  return True, *log_densities


def _arrays_or_logs(function: str, names: tuple[str, str], densities, log_densities
                    ) -> tuple[bool, jax.Array, jax.Array]:
  """`_densities_or_logs` for a pair of arrays, returned as arrays."""
  in_logs, first, second = _densities_or_logs(function, names, densities, log_densities)
  return in_logs, jnp.asarray(first), jnp.asarray(second)


# Densities on a grid.


@jax.jit
def optimal_discriminator(
    p_data: jax.typing.ArrayLike | None = None,
    p_g: jax.typing.ArrayLike | None = None,
    *,
    log_p_data: jax.typing.ArrayLike | None = None,
    log_p_g: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  """The discriminator that maximises V(D, G) for a fixed generator.

    D*(x) = p_data(x) / (p_data(x) + p_g(x)) = sigmoid(log p_data(x) - log p_g(x)).

  Where both densities vanish D* is not determined by V (the point carries no mass); it is
  returned as 1/2 there, the value of the equilibrium, so that the result is never NaN. From
  log-densities D* is the sigmoid of the log-ratio (D*'s logit), which is right also where both
  densities would underflow.

  Args:
    p_data: data density at the grid points.
    p_g: generator density at the same points.
    log_p_data: the data log-density, in place of p_data.
    log_p_g: the generator log-density, in place of p_g.

  Returns:
    D*(x) at each point, the probability that x is real, with the shape of the inputs.

  Raises:
    ValueError: unless both densities or both log-densities are given.

  References: Goodfellow et al. 2014, Proposition 1.
  """
  in_logs, p_data, p_g = _arrays_or_logs(
      "optimal_discriminator", ("p_data", "p_g"), (p_data, p_g), (log_p_data, log_p_g))
  if in_logs:
    return jax.nn.sigmoid(divergences.log_ratio(p_data, p_g))
  total = p_data + p_g
  positive = total > 0
  return jnp.where(positive, p_data / jnp.where(positive, total, 1.0), 0.5)


@jax.jit
def value_function(
    discriminator: jax.typing.ArrayLike | None = None,
    p_data: jax.typing.ArrayLike | None = None,
    p_g: jax.typing.ArrayLike | None = None,
    dx: jax.typing.ArrayLike | None = None,
    *,
    logits: jax.typing.ArrayLike | None = None,
    log_p_data: jax.typing.ArrayLike | None = None,
    log_p_g: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  """The GAN value function of a discriminator, by quadrature.

    V(D, G) = integral p_data(x) log D(x) + p_g(x) log(1 - D(x)) dx,

  with 0 log 0 = 0: a point where D = 0 (or 1) costs nothing if it carries no data (or no
  generator) mass, and -inf otherwise. Given D's logits a, log D = log_sigmoid(a) and
  log(1 - D) = log_sigmoid(-a), finite where sigmoid(a) rounds to 1 or 0 (a > 17 or a < -88 in
  float32); given log-densities, each term is exp(log p) times its log, 0 where log p = -inf.

  Args:
    discriminator: D(x) in [0, 1] at the grid points (a probability, not a logit).
    p_data: data density at the grid points.
    p_g: generator density at the grid points.
    dx: the grid spacing.
    logits: D's logits at the grid points, in place of discriminator.
    log_p_data: the data log-density, in place of p_data.
    log_p_g: the generator log-density, in place of p_g.

  Returns:
    The scalar V(D, G).

  Raises:
    ValueError: unless exactly one of discriminator and logits is given, and both densities or
      both log-densities.

  References: Goodfellow et al. 2014, Eq. (1) and the proof of Proposition 1.
  """
  in_logs, p_data, p_g = _arrays_or_logs(
      "value_function", ("p_data", "p_g"), (p_data, p_g), (log_p_data, log_p_g))
  if (discriminator is None) == (logits is None):
    raise ValueError("value_function takes discriminator (probabilities) or logits")
  if logits is None and not in_logs:
    discriminator = jnp.asarray(discriminator)
    return _integrate(xlogy(p_data, discriminator) + xlog1py(p_g, -discriminator), dx)
  if logits is None:
    log_d, log_not_d = jnp.log(discriminator), jnp.log1p(-jnp.asarray(discriminator))
  else:
    log_d, log_not_d = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-jnp.asarray(logits))
  if in_logs:
    integrand = divergences.weighted(p_data, log_d) + divergences.weighted(p_g, log_not_d)
  else:
    integrand = (jnp.where(p_data == 0, 0.0, p_data * log_d)
                 + jnp.where(p_g == 0, 0.0, p_g * log_not_d))
  return _integrate(integrand, dx)


@jax.jit
def virtual_training_criterion(
    p_data: jax.typing.ArrayLike | None = None,
    p_g: jax.typing.ArrayLike | None = None,
    dx: jax.typing.ArrayLike | None = None,
    *,
    log_p_data: jax.typing.ArrayLike | None = None,
    log_p_g: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  """The generator's objective when the discriminator is optimal.

    C(G) = max_D V(D, G) = V(D*, G)
         = integral p_data log(p_data / (p_data + p_g)) + p_g log(p_g / (p_data + p_g)) dx
         = -log 4 + 2 JSD(p_data || p_g),

  whose minimum -log 4 is reached if and only if p_g = p_data. From densities it is computed
  from the second line as p log p + q log q - (p + q) log(p + q) rather than through D*: in
  floating point D* = p / (p + q) rounds to 1 where q << p, and log(1 - D*) would then be -inf.
  From log-densities, log(p / (p + q)) = log_sigmoid(log p - log q) (the 'gan' integrand of
  `ganjax.divergences`).

  Args:
    p_data: data density at the grid points.
    p_g: generator density at the grid points.
    dx: the grid spacing.
    log_p_data: the data log-density, in place of p_data.
    log_p_g: the generator log-density, in place of p_g.

  Returns:
    The scalar C(G).

  Raises:
    ValueError: unless both densities or both log-densities are given.

  References: Goodfellow et al. 2014, Theorem 1.
  """
  in_logs, p_data, p_g = _arrays_or_logs(
      "virtual_training_criterion", ("p_data", "p_g"), (p_data, p_g), (log_p_data, log_p_g))
  if in_logs:
    return _integrate(divergences.GAN.integrand(p_data, p_g), dx)
  total = p_data + p_g
  integrand = xlogy(p_data, p_data) + xlogy(p_g, p_g) - xlogy(total, total)
  return _integrate(integrand, dx)


@jax.jit
def kl_divergence(
    p: jax.typing.ArrayLike | None = None,
    q: jax.typing.ArrayLike | None = None,
    dx: jax.typing.ArrayLike | None = None,
    *,
    log_p: jax.typing.ArrayLike | None = None,
    log_q: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  """The Kullback-Leibler divergence of P from Q, by quadrature.

    KL(P || Q) = integral p(x) log(p(x) / q(x)) dx,

  +inf if some point has p > 0 = q; points where p = 0 contribute 0. Float32 densities flush
  to 0 below about 1e-38 (some 13 standard deviations from a Gaussian's mean), so with densities
  the grid should end where q is still positive wherever p is; with log-densities the integrand
  is exp(log p) (log p - log q) and no such limit applies (a point where exp(log p) underflows
  contributes 0, an error below 1e-38 |log p - log q| dx).

  Args:
    p: density of P at the grid points.
    q: density of Q at the grid points.
    dx: the grid spacing.
    log_p: log-density of P, in place of p (-inf outside its support).
    log_q: log-density of Q, in place of q.

  Returns:
    The scalar KL(P || Q) in nats.

  Raises:
    ValueError: unless both densities or both log-densities are given.

  References: Arjovsky & Bottou 2017, Section 2 (the divergences GAN training relates to).
  """
  in_logs, p, q = _arrays_or_logs("kl_divergence", ("p", "q"), (p, q), (log_p, log_q))
  if in_logs:
    return _integrate(divergences.KL.integrand(p, q), dx)
  return _integrate(xlogy(p, p) - xlogy(p, q), dx)


@jax.jit
def jensen_shannon_divergence(
    p: jax.typing.ArrayLike | None = None,
    q: jax.typing.ArrayLike | None = None,
    dx: jax.typing.ArrayLike | None = None,
    *,
    log_p: jax.typing.ArrayLike | None = None,
    log_q: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  """The Jensen-Shannon divergence, by quadrature.

    JSD(P || Q) = KL(P || M) / 2 + KL(Q || M) / 2,   M = (P + Q) / 2,
                = integral (p log p + q log q - (p + q) log((p + q) / 2)) / 2 dx
                = integral (p log(2 sigmoid(d)) + q log(2 sigmoid(-d))) / 2 dx,  d = log(p / q).

  It is symmetric, 0 iff P = Q and log 2 when the supports are disjoint (for normalised
  densities; the result is not clipped to [0, log 2], so quadrature error stays visible). From
  log-densities it is computed from the last line.

  Args:
    p: density of P at the grid points.
    q: density of Q at the grid points.
    dx: the grid spacing.
    log_p: log-density of P, in place of p (-inf outside its support).
    log_q: log-density of Q, in place of q.

  Returns:
    The scalar JSD(P || Q) in nats.

  Raises:
    ValueError: unless both densities or both log-densities are given.

  References: Goodfellow et al. 2014, Theorem 1; Arjovsky & Bottou 2017, Section 2.
  """
  in_logs, p, q = _arrays_or_logs(
      "jensen_shannon_divergence", ("p", "q"), (p, q), (log_p, log_q))
  if in_logs:
    return _integrate(divergences.JENSEN_SHANNON.integrand(p, q), dx) / 2.0
  total = p + q
  # log((p + q) / 2) as log(p + q) - log 2: (p + q) / 2 can flush to zero below float32's tiny.
  integrand = xlogy(p, p) + xlogy(q, q) - xlogy(total, total) + total * math.log(2.0)
  return _integrate(integrand, dx) / 2.0


@functools.partial(jax.jit, static_argnames=("divergence",))
def f_divergence(
    p: jax.typing.ArrayLike | None = None,
    q: jax.typing.ArrayLike | None = None,
    dx: jax.typing.ArrayLike | None = None,
    divergence: str | divergences.FDivergence | None = None,
    *,
    log_p: jax.typing.ArrayLike | None = None,
    log_q: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  """An f-divergence of `ganjax.divergences`, by quadrature.

    D_f(P || Q) = integral q(x) f(p(x) / q(x)) dx.

  Points where both densities vanish contribute 0. With densities the grid must have q > 0
  wherever p > 0: there the integrand is p * lim_{u -> inf} f(u) / u, which depends on f (+inf
  for KL, 0 for reverse KL), and the result is NaN. With log-densities the integrand is
  `FDivergence.integrand`, which takes that limit for every divergence of the tables.

  Args:
    p: density of P (the data) at the grid points.
    q: density of Q (the generator) at the grid points.
    dx: the grid spacing.
    divergence: a name in `ganjax.divergences.DIVERGENCES`, or an `FDivergence`.
    log_p: log-density of P, in place of p (-inf outside its support).
    log_q: log-density of Q, in place of q.

  Returns:
    The scalar D_f(P || Q). With the tables' f, 'gan' gives 2 JSD - log 4 and
    'jensen_shannon' gives 2 JSD (see `ganjax.divergences`).

  Raises:
    ValueError: for an unknown divergence, or unless both densities or both log-densities are
      given.

  References: Nowozin, Cseke & Tomioka 2016, Section 2 and Table 1.
  """
  divergence = divergences.get(divergence)
  in_logs, p, q = _arrays_or_logs("f_divergence", ("p", "q"), (p, q), (log_p, log_q))
  if in_logs:
    return _integrate(divergence.integrand(p, q), dx)
  f = divergence.generator
  q_positive = q > 0
  ratio = p / jnp.where(q_positive, q, 1.0)
  integrand = jnp.where(q_positive, q * f(ratio), jnp.where(p > 0, jnp.nan, 0.0))
  return _integrate(integrand, dx)


# Gaussians in one dimension.


@jax.jit
def gaussian_density(
    x: jax.typing.ArrayLike, mean: jax.typing.ArrayLike, std: jax.typing.ArrayLike) -> jax.Array:
  """The density of N(mean, std^2) at x.

    N(x; m, s^2) = exp(-(x - m)^2 / (2 s^2)) / (s sqrt(2 pi)).

  Args:
    x: points, any shape.
    mean: the mean, broadcastable against x.
    std: the standard deviation (> 0), broadcastable against x.

  Returns:
    The density at each point, with the broadcast shape.

  References: Goodfellow et al. 2014, Figure 1 (the 1-D picture this reproduces).
  """
  return jax.scipy.stats.norm.pdf(x, mean, std)


@jax.jit
def gaussian_log_density(
    x: jax.typing.ArrayLike, mean: jax.typing.ArrayLike, std: jax.typing.ArrayLike) -> jax.Array:
  """The log-density of N(mean, std^2) at x, exact far beyond where the density underflows.

    log N(x; m, s^2) = -(x - m)^2 / (2 s^2) - log s - log(2 pi) / 2.

  Args:
    x: points, any shape.
    mean: the mean, broadcastable against x.
    std: the standard deviation (> 0), broadcastable against x.

  Returns:
    The log-density at each point, with the broadcast shape.

  References: Goodfellow et al. 2014, Figure 1 (the 1-D picture this reproduces).
  """
  return jax.scipy.stats.norm.logpdf(x, mean, std)


@jax.jit
def gaussian_mixture_density(
    x: jax.typing.ArrayLike,
    means: jax.typing.ArrayLike,
    stds: jax.typing.ArrayLike,
    weights: jax.typing.ArrayLike,
) -> jax.Array:
  """The density of a 1-D Gaussian mixture at x.

    p(x) = sum_k w_k N(x; m_k, s_k^2).

  The weights are used as given; they should be non-negative and sum to 1.

  Args:
    x: points, any shape.
    means: component means, shape (K,).
    stds: component standard deviations, shape (K,).
    weights: component weights, shape (K,).

  Returns:
    The density at each point, with the shape of x.

  References: Arjovsky & Bottou 2017 (mixtures as data distributions whose modes a
  generator can drop).
  """
  x = jnp.asarray(x)[..., None]
  components = gaussian_density(x, jnp.asarray(means), jnp.asarray(stds))
  return jnp.sum(jnp.asarray(weights) * components, axis=-1)


@jax.jit
def gaussian_mixture_log_density(
    x: jax.typing.ArrayLike,
    means: jax.typing.ArrayLike,
    stds: jax.typing.ArrayLike,
    weights: jax.typing.ArrayLike,
) -> jax.Array:
  """The log-density of a 1-D Gaussian mixture at x, by log-sum-exp over the components.

    log p(x) = log sum_k w_k N(x; m_k, s_k^2)
             = M + log sum_k w_k exp(log N(x; m_k, s_k^2) - M),  M = max_k log N(x; m_k, s_k^2).

  Args:
    x: points, any shape.
    means: component means, shape (K,).
    stds: component standard deviations, shape (K,).
    weights: component weights, shape (K,), non-negative and summing to 1.

  Returns:
    The log-density at each point, with the shape of x.

  References: Arjovsky & Bottou 2017 (mixtures as data distributions whose modes a
  generator can drop).
  """
  x = jnp.asarray(x)[..., None]
  components = gaussian_log_density(x, jnp.asarray(means), jnp.asarray(stds))
  return jax.nn.logsumexp(components, axis=-1, b=jnp.asarray(weights))


@jax.jit
def gaussian_kl(
    mean_p: jax.typing.ArrayLike,
    std_p: jax.typing.ArrayLike,
    mean_q: jax.typing.ArrayLike,
    std_q: jax.typing.ArrayLike,
) -> jax.Array:
  """KL(N(m_p, s_p^2) || N(m_q, s_q^2)) in closed form.

    KL = log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2.

  Args:
    mean_p: mean of P.
    std_p: standard deviation of P (> 0).
    mean_q: mean of Q.
    std_q: standard deviation of Q (> 0).

  Returns:
    The divergence in nats, with the broadcast shape of the arguments.

  References: Arjovsky & Bottou 2017, Section 2.
  """
  std_p, std_q = jnp.asarray(std_p), jnp.asarray(std_q)
  return (jnp.log(std_q / std_p)
          + (std_p ** 2 + (jnp.asarray(mean_p) - mean_q) ** 2) / (2.0 * std_q ** 2) - 0.5)


# Saturation and the non-saturating heuristic.


def _generator_loss_of_logit(loss: str) -> Callable[[jax.Array], jax.Array]:
  """The library's generator loss as a function of one fake logit (the real logit held at 0)."""
  objective = losses.get(loss)
  real_logits = jnp.zeros((1,))
  return lambda fake_logit: objective.generator(real_logits, fake_logit[None])


@functools.partial(jax.jit, static_argnames=("loss",))
def generator_logit_gradient(loss: str, d: jax.typing.ArrayLike) -> jax.Array:
  """The gradient of a generator loss with respect to the fake logit, as a function of D.

  With a the discriminator's logit for a generated sample and D = sigmoid(a), this is
  d loss / d a at a = logit(D), taken by `jax.grad` through `ganjax.losses.get(loss).generator`
  on one sample. Closed forms:

    minimax         loss = log(1 - D):  d/da = -D,        -> 0 as D -> 0 (saturates),
    non_saturating  loss = -log D:      d/da = -(1 - D),  -> -1 as D -> 0.

  Early in training D rejects the fakes (D -> 0), so the minimax generator receives almost no
  gradient; the non-saturating one receives nearly the largest it ever does. Losses that also
  read real logits see a real logit of 0 (D(real) = 1/2).

  Args:
    loss: a generator loss name that `ganjax.losses.get` accepts.
    d: values of D(G(z)) in (0, 1), any shape.

  Returns:
    d loss / d a at each value of d, with the shape of d.

  References: Goodfellow et al. 2014, Section 3; Arjovsky & Bottou 2017, Section 2.2.
  """
  gradient = jnp.vectorize(jax.grad(_generator_loss_of_logit(loss)))
  return gradient(jax.scipy.special.logit(jnp.asarray(d, dtype=jnp.result_type(float))))


@functools.partial(jax.jit,
                   static_argnames=("loss", "generator_density_fn", "generator_log_density_fn"))
def generator_gradient_fixed_d(
    loss: str,
    generator_density_fn: DensityFn | None = None,
    theta: Any = None,
    p_data: jax.typing.ArrayLike | None = None,
    dx: jax.typing.ArrayLike | None = None,
    *,
    generator_log_density_fn: DensityFn | None = None,
    log_p_data: jax.typing.ArrayLike | None = None,
) -> Any:
  """The generator's gradient when the discriminator is optimal and held fixed.

  The discriminator is D* = p_data / (p_data + p_theta0) at theta0 = `theta`, held fixed as
  the generator moves; its logit is a*(x) = log p_data(x) - log p_theta0(x). With l(a) the
  library's generator loss of one fake logit, the generator's expected loss is
  integral p_theta(x) l(a*(x)) dx, and this returns its gradient with respect to theta at
  theta0:

    minimax:         d/dtheta 2 JSD(p_data || p_theta)                      (= d/dtheta C(G)),
    non_saturating:  d/dtheta [KL(p_theta || p_data) - 2 JSD(p_data || p_theta)].

  Both need p_data > 0 wherever p_theta0 > 0 on the grid (overlapping supports; otherwise
  a* = -inf there), and the grid mass of p_theta must not depend on theta. Points where
  p_theta0 = 0 contribute nothing. Given log-densities (`generator_log_density_fn` and
  `log_p_data`), a* is their difference and the expected loss integrates
  exp(log p_theta) l(a*), so that neither density has to be representable.

  Args:
    loss: a generator loss name that `ganjax.losses.get` accepts ('minimax',
      'non_saturating'); losses that read real logits see 0.
    generator_density_fn: maps parameters theta to the generator's density on the grid; a
      static argument of `jax.jit`, so reuse one function object to avoid recompiling.
    theta: the parameters theta0 (any pytree of arrays) at which D* is fixed and the gradient
      is taken.
    p_data: data density on the same grid.
    dx: the grid spacing.
    generator_log_density_fn: maps theta to the generator's log-density on the grid, in place
      of generator_density_fn (static too).
    log_p_data: the data log-density, in place of p_data.

  Returns:
    The gradient, with the structure of theta.

  Raises:
    ValueError: unless the densities or the log-densities (both of them) are given.

  References: Arjovsky & Bottou 2017, Theorem 2.5; Goodfellow et al. 2014, Theorem 1.
  """
  in_logs, p_data, density_fn = _densities_or_logs(
      "generator_gradient_fixed_d", ("p_data", "generator_density_fn"),
      (p_data, generator_density_fn), (log_p_data, generator_log_density_fn),
      ("log_p_data", "generator_log_density_fn"))
  p_data = jnp.asarray(p_data)
  if in_logs:
    fixed_log_density = jax.lax.stop_gradient(density_fn(theta))
    optimal_logits = divergences.log_ratio(p_data, fixed_log_density)
    fixed_mass = fixed_log_density > -jnp.inf
    weigh = divergences.weighted
  else:
    fixed_density = jax.lax.stop_gradient(density_fn(theta))
    optimal_logits = jnp.log(p_data) - jnp.log(fixed_density)
    fixed_mass = fixed_density > 0
    weigh = jnp.multiply
  per_point_loss = jax.vmap(_generator_loss_of_logit(loss))(optimal_logits)
  # A smooth non-negative density that is 0 at theta0 has a zero derivative there too.
  per_point_loss = jnp.where(fixed_mass, per_point_loss, 0.0)

  def expected_loss(parameters):
    return _integrate(weigh(density_fn(parameters), per_point_loss), dx)

  return jax.grad(expected_loss)(theta)


@functools.partial(jax.jit, static_argnames=("generator_density_fn", "generator_log_density_fn"))
def non_saturating_gradient_fixed_d(
    generator_density_fn: DensityFn | None = None,
    theta: Any = None,
    p_data: jax.typing.ArrayLike | None = None,
    dx: jax.typing.ArrayLike | None = None,
    *,
    generator_log_density_fn: DensityFn | None = None,
    log_p_data: jax.typing.ArrayLike | None = None,
) -> Any:
  """The non-saturating generator's gradient with D* fixed: not the gradient of the JSD.

  With D* = p_data / (p_data + p_theta0) held fixed at theta0 = `theta`,

    d/dtheta integral p_theta(x) (-log D*(x)) dx |theta0
        = d/dtheta [KL(p_theta || p_data) - 2 JSD(p_data || p_theta)] |theta0

  (compare with `kl_minus_2jsd`). The reverse KL term punishes generating where there is no
  data far more than missing data modes, and the -2 JSD term pushes the distributions apart:
  the heuristic keeps the fixed point p_theta = p_data of the minimax game but follows a
  different, mode-dropping direction.

  Args:
    generator_density_fn: maps parameters theta to the generator's density on the grid.
    theta: the parameters theta0 (any pytree of arrays).
    p_data: data density on the same grid.
    dx: the grid spacing.
    generator_log_density_fn: maps theta to the generator's log-density, in place of
      generator_density_fn.
    log_p_data: the data log-density, in place of p_data.

  Returns:
    The gradient, with the structure of theta. See `generator_gradient_fixed_d` for the
    requirements on the densities.

  Raises:
    ValueError: unless the densities or the log-densities (both of them) are given.

  References: Arjovsky & Bottou 2017, Theorem 2.5; Goodfellow et al. 2014, Section 3.
  """
  return generator_gradient_fixed_d(
      "non_saturating", generator_density_fn, theta, p_data, dx,
      generator_log_density_fn=generator_log_density_fn, log_p_data=log_p_data)


@jax.jit
def kl_minus_2jsd(
    p_g: jax.typing.ArrayLike | None = None,
    p_data: jax.typing.ArrayLike | None = None,
    dx: jax.typing.ArrayLike | None = None,
    *,
    log_p_g: jax.typing.ArrayLike | None = None,
    log_p_data: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  """The objective the non-saturating generator follows when D is optimal.

    KL(p_g || p_data) - 2 JSD(p_data || p_g).

  Its gradient with respect to the generator's parameters equals
  `non_saturating_gradient_fixed_d` (Theorem 2.5 of Arjovsky & Bottou 2017).

  Args:
    p_g: generator density at the grid points.
    p_data: data density at the grid points.
    dx: the grid spacing.
    log_p_g: the generator log-density, in place of p_g.
    log_p_data: the data log-density, in place of p_data.

  Returns:
    The scalar KL(p_g || p_data) - 2 JSD(p_data || p_g).

  Raises:
    ValueError: unless both densities or both log-densities are given.

  References: Arjovsky & Bottou 2017, Theorem 2.5.
  """
  in_logs, p_g, p_data = _arrays_or_logs(
      "kl_minus_2jsd", ("p_g", "p_data"), (p_g, p_data), (log_p_g, log_p_data))
  if in_logs:
    return (kl_divergence(log_p=p_g, log_q=p_data, dx=dx)
            - 2.0 * jensen_shannon_divergence(log_p=p_data, log_q=p_g, dx=dx))
  return kl_divergence(p_g, p_data, dx) - 2.0 * jensen_shannon_divergence(p_data, p_g, dx)


# Proposition 2: the generator's descent in the space of densities.


@functools.partial(jax.jit, static_argnames=("loss",))
def generator_functional_gradient(
    p_data: jax.typing.ArrayLike | None = None,
    p_g: jax.typing.ArrayLike | None = None,
    *,
    log_p_data: jax.typing.ArrayLike | None = None,
    log_p_g: jax.typing.ArrayLike | None = None,
    loss: str = "minimax",
) -> jax.Array:
  """The functional derivative of the generator's loss in p_g, with D = D* of p_g held fixed.

  With a*(x) = log p_data(x) - log p_g(x) the logit of D* (Proposition 1) and l(a) the library's
  generator loss of one fake logit, the generator's expected loss integral p_g l(a*) dx is
  linear in p_g, and its derivative at x is l(a*(x)):

    minimax:         log(1 - D*(x)) = log(p_g(x) / (p_data(x) + p_g(x))),
    non_saturating:  -log D*(x)     = log((p_data(x) + p_g(x)) / p_data(x)).

  The minimax one is also the derivative of C(G) = max_D V(D, G) at p_g (Danskin's theorem: D* is
  the maximiser, so moving p_g moves C as V(D*, .) does to first order): following it with
  D* recomputed at every step is gradient descent on C, which is convex in p_g.

  Args:
    p_data: data density at the grid points.
    p_g: generator density at the grid points.
    log_p_data: the data log-density, in place of p_data.
    log_p_g: the generator log-density, in place of p_g.
    loss: a generator loss name that `ganjax.losses.get` accepts whose generator loss reads fake
      logits only.

  Returns:
    l(a*(x)) at each point, with the shape of the inputs (+-inf where one density vanishes).

  Raises:
    ValueError: unless both densities or both log-densities are given.

  References: Goodfellow et al. 2014, Proposition 2 and its proof.
  """
  in_logs, p_data, p_g = _arrays_or_logs(
      "generator_functional_gradient", ("p_data", "p_g"), (p_data, p_g), (log_p_data, log_p_g))
  logits = (divergences.log_ratio(p_data, p_g) if in_logs
            else divergences.log_ratio(jnp.log(p_data), jnp.log(p_g)))
  return jnp.vectorize(_generator_loss_of_logit(loss))(logits)


@functools.partial(jax.jit, static_argnames=("loss",))
def density_descent_step(
    log_p_data: jax.typing.ArrayLike,
    log_p_g: jax.typing.ArrayLike,
    dx: jax.typing.ArrayLike,
    learning_rate: jax.typing.ArrayLike,
    loss: str = "minimax",
) -> jax.Array:
  """One step of the generator in the space of densities, the discriminator optimal for p_g.

    p_new(x) = p_g(x) exp(-h g(x)) / Z,   g = `generator_functional_gradient`,

  normalised on the grid: the exponentiated-gradient (mirror-descent) step on the densities,
  which keeps p_new a positive density without a projection. For 'minimax' it is
  p_new ~ p_g^(1 - h) (p_g + p_data)^h, and at h = 1 exactly (p_g + p_data) / 2.

  For the minimax loss and h <= 1 every step lowers C(G) and C(p_k) + log 4 <= KL(p_data || p_0)
  / (h k): C(p) = phi(p) + phi(p_data) - phi(p + p_data) with phi(m) = integral m log m, so its
  Bregman divergence is KL(q || p) minus the (non-negative) generalised KL of q + p_data from
  p + p_data: C is convex and 1-smooth relative to the entropy, the setting in which mirror
  descent with step h <= 1 decreases monotonically at rate 1/k (Lu, Freund & Nesterov 2018,
  Theorem 3.1). Near p_data, with p = p_data (1 + u), the step maps u to (1 - h / 2) u, so
  C + log 4 = 2 JSD falls by (1 - h / 2)^2 per step.

  Args:
    log_p_data: the data log-density at the grid points.
    log_p_g: the generator log-density at the grid points (finite wherever p_data > 0).
    dx: the grid spacing.
    learning_rate: the step h.
    loss: the generator loss whose functional derivative is followed ('minimax',
      'non_saturating').

  Returns:
    The log-density of p_new at the grid points.

  References: Goodfellow et al. 2014, Proposition 2; Lu, Freund & Nesterov 2018.
  """
  log_p_g = jnp.asarray(log_p_g)
  gradient = generator_functional_gradient(log_p_data=log_p_data, log_p_g=log_p_g, loss=loss)
  unnormalised = log_p_g - learning_rate * gradient
  return unnormalised - jax.nn.logsumexp(unnormalised) - jnp.log(dx)


# The Dirac-GAN.
#
# p_data = delta_0, p_g = delta_theta and a linear discriminator D(x) = psi * x (a logit), so the
# real logit is 0 and the fake logit psi * theta. The equilibrium is (theta, psi) = (0, 0).


def _float(value: jax.typing.ArrayLike) -> jax.Array:
  return jnp.asarray(value, dtype=jnp.result_type(float))


def _dirac_gan_velocities(loss: str, gamma: jax.typing.ArrayLike):
  """(v_theta, v_psi): each player's negative gradient, as functions of (theta, psi)."""
  objective = losses.get(loss)
  real_logits = jnp.zeros((1,))

  def discriminator_loss(theta, psi):
    # R1: ||d/dx D(x)||^2 = psi^2 at the data, weighted gamma / 2 as in Mescheder et al. 2018.
    fake_logits = (psi * theta)[None]
    return objective.discriminator(real_logits, fake_logits) + 0.5 * gamma * psi ** 2

  def generator_loss(theta, psi):
    return objective.generator(real_logits, (psi * theta)[None])

  def v_theta(theta, psi):
    return -jax.grad(generator_loss, argnums=0)(theta, psi)

  def v_psi(theta, psi):
    return -jax.grad(discriminator_loss, argnums=1)(theta, psi)

  return v_theta, v_psi


@functools.partial(jax.jit, static_argnames=("loss",))
def dirac_gan_vector_field(
    theta: jax.typing.ArrayLike,
    psi: jax.typing.ArrayLike,
    loss: str,
    gamma: jax.typing.ArrayLike = 0.0,
) -> tuple[jax.Array, jax.Array]:
  """The gradient vector field of the Dirac-GAN.

  With p_data = delta_0, p_g = delta_theta, D(x) = psi * x (a logit) and obj =
  `ganjax.losses.get(loss)`:

    L_D(theta, psi) = obj.discriminator([0], [psi theta]) + (gamma / 2) psi^2   (R1 penalty),
    L_G(theta, psi) = obj.generator([0], [psi theta]),
    v(theta, psi) = (-dL_G/dtheta, -dL_D/dpsi),

  the direction in which each player's gradient descent moves. For 'minimax', with
  sigma the logistic function, v = (psi sigma(psi theta), -theta sigma(psi theta) - gamma psi);
  for 'non_saturating' v_theta = psi sigma(-psi theta).

  Args:
    theta: the generator's position, any shape.
    psi: the discriminator's slope, broadcastable against theta.
    loss: a loss name that `ganjax.losses.get` accepts.
    gamma: the R1 weight (0: unregularised).

  Returns:
    (v_theta, v_psi), each with the broadcast shape of theta and psi.

  References: Mescheder, Geiger & Nowozin 2018, Sections 2.2 and 3.
  """
  v_theta, v_psi = _dirac_gan_velocities(loss, gamma)
  field = jnp.vectorize(lambda t, p: (v_theta(t, p), v_psi(t, p)))
  return field(_float(theta), _float(psi))


@functools.partial(jax.jit, static_argnames=("loss",))
def dirac_gan_jacobian(loss: str, gamma: jax.typing.ArrayLike = 0.0) -> jax.Array:
  """The Jacobian of the Dirac-GAN vector field at the equilibrium (0, 0).

    J = [[dv_theta/dtheta, dv_theta/dpsi],
         [dv_psi/dtheta,   dv_psi/dpsi  ]]  at (0, 0),

  by `jax.jacfwd`. Writing the discriminator loss as f(psi theta) + const, J =
  [[0, f'(0)], [-f'(0), -gamma]] for 'minimax' and 'non_saturating' (f'(0) = 1/2) and for
  'wasserstein' (f'(0) = 1).

  Args:
    loss: a loss name that `ganjax.losses.get` accepts.
    gamma: the R1 weight.

  Returns:
    The 2x2 Jacobian, rows and columns ordered (theta, psi).

  References: Mescheder, Geiger & Nowozin 2018, Lemma 2.2 and Section 3.
  """
  v_theta, v_psi = _dirac_gan_velocities(loss, gamma)
  field = lambda z: jnp.stack([v_theta(z[0], z[1]), v_psi(z[0], z[1])])
  return jax.jacfwd(field)(jnp.zeros((2,), dtype=jnp.result_type(float)))


def _eigenvalues_2x2(matrix: jax.Array) -> jax.Array:
  """Eigenvalues m -+ sqrt(m^2 - det), m = trace / 2, sorted by imaginary then real part."""
  half_trace = (matrix[0, 0] + matrix[1, 1]) / 2.0
  determinant = matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]
  discriminant = half_trace ** 2 - determinant
  root = jnp.where(discriminant >= 0,
                   jnp.sqrt(jnp.maximum(discriminant, 0.0)) + 0j,
                   1j * jnp.sqrt(jnp.maximum(-discriminant, 0.0)))
  return jnp.stack([half_trace - root, half_trace + root])


@functools.partial(jax.jit, static_argnames=("loss",))
def dirac_gan_jacobian_eigenvalues(loss: str, gamma: jax.typing.ArrayLike = 0.0) -> jax.Array:
  """Eigenvalues of the Dirac-GAN Jacobian at the equilibrium.

  For a discriminator loss f(psi theta) + const and R1 weight gamma,

    lambda = -gamma / 2 -+ sqrt(gamma^2 / 4 - f'(0)^2),

  so without regularisation +-f'(0) i: +-i/2 for 'minimax' and 'non_saturating', +-i for
  'wasserstein'. Purely imaginary eigenvalues mean the continuous dynamics circle the
  equilibrium and never reach it; with gamma > 0 both real parts are negative (complex while
  gamma < 2 f'(0)) and the equilibrium is locally attracting.

  Computed in closed form from the trace and determinant of the 2x2 Jacobian (the same on
  every backend; `jnp.linalg.eigvals` is CPU-only).

  Args:
    loss: a loss name that `ganjax.losses.get` accepts.
    gamma: the R1 weight.

  Returns:
    A complex array of shape (2,), sorted by imaginary part (then by real part).

  References: Mescheder, Geiger & Nowozin 2018, Lemma 2.2 and Section 3.
  """
  return _eigenvalues_2x2(dirac_gan_jacobian(loss, gamma))


def _check_update(update: str) -> None:
  if update not in DIRAC_GAN_UPDATES:
    raise ValueError(f"unknown update {update!r}; valid updates: "
                     f"{', '.join(DIRAC_GAN_UPDATES)}")


def _dirac_gan_step(loss: str, learning_rate, update: str, gamma):
  """One gradient step on (theta, psi), packed as an array of shape (2,)."""
  _check_update(update)
  v_theta, v_psi = _dirac_gan_velocities(loss, gamma)

  def step(point: jax.Array) -> jax.Array:
    theta, psi = point[0], point[1]
    if update == "simultaneous":
      next_theta = theta + learning_rate * v_theta(theta, psi)
      next_psi = psi + learning_rate * v_psi(theta, psi)
    else:
      # The discriminator moves first and the generator sees its new slope (as in train_step).
      next_psi = psi + learning_rate * v_psi(theta, psi)
      next_theta = theta + learning_rate * v_theta(theta, next_psi)
    return jnp.stack([next_theta, next_psi])

  return step


@functools.partial(jax.jit, static_argnames=("loss", "update"))
def dirac_gan_update_matrix(
    loss: str,
    learning_rate: jax.typing.ArrayLike,
    update: str,
    gamma: jax.typing.ArrayLike = 0.0,
) -> jax.Array:
  """The linearisation of one discrete Dirac-GAN step at the equilibrium.

  With J the Jacobian of the vector field at (0, 0) and h the learning rate:

    simultaneous:  I + h J,
    alternating:   (I + h E_theta J)(I + h E_psi J),   E_theta = diag(1, 0), E_psi = diag(0, 1),

  the psi step first. Computed by `jax.jacfwd` of the step that `simulate_dirac_gan` iterates.

  Args:
    loss: a loss name that `ganjax.losses.get` accepts.
    learning_rate: the step size h.
    update: 'simultaneous' or 'alternating'.
    gamma: the R1 weight.

  Returns:
    The 2x2 matrix mapping (theta, psi) near (0, 0) to the next (theta, psi).

  Raises:
    ValueError: for an unknown update.

  References: Mescheder, Geiger & Nowozin 2018, Section 2.2.
  """
  step = _dirac_gan_step(loss, learning_rate, update, gamma)
  return jax.jacfwd(step)(jnp.zeros((2,), dtype=jnp.result_type(float)))


@functools.partial(jax.jit, static_argnames=("loss", "update"))
def dirac_gan_update_matrix_spectral_radius(
    loss: str,
    learning_rate: jax.typing.ArrayLike,
    update: str,
    gamma: jax.typing.ArrayLike = 0.0,
) -> jax.Array:
  """The spectral radius of the linearised discrete Dirac-GAN update at the equilibrium.

  Near (0, 0) the distance to the equilibrium changes by about this factor per step (exactly,
  when the update matrix is a scaled rotation). For eigenvalues +-i f'(0) of J and step h:

    simultaneous:  |1 + h i f'(0)| = sqrt(1 + h^2 f'(0)^2) > 1: the iterates spiral outwards;
    alternating:   the determinant is 1 and, for h f'(0) < 2, the eigenvalues lie on the unit
                   circle: radius 1, the iterates circle forever;
    with R1 (gamma > 0) and a small enough step: < 1, training converges.

  Args:
    loss: a loss name that `ganjax.losses.get` accepts.
    learning_rate: the step size h.
    update: 'simultaneous' or 'alternating'.
    gamma: the R1 weight.

  Returns:
    The scalar max |eigenvalue| of `dirac_gan_update_matrix`.

  Raises:
    ValueError: for an unknown update.

  References: Mescheder, Geiger & Nowozin 2018, Sections 2.2 and 3.
  """
  matrix = dirac_gan_update_matrix(loss, learning_rate, update, gamma)
  return jnp.max(jnp.abs(_eigenvalues_2x2(matrix)))


@functools.partial(jax.jit, static_argnames=("steps", "update", "loss"))
def simulate_dirac_gan(
    theta: jax.typing.ArrayLike,
    psi: jax.typing.ArrayLike,
    steps: int,
    learning_rate: jax.typing.ArrayLike,
    update: str = "simultaneous",
    loss: str = "minimax",
    gamma: jax.typing.ArrayLike = 0.0,
) -> jax.Array:
  """Gradient-descent training of the Dirac-GAN.

  simultaneous:  (theta, psi) <- (theta, psi) + h v(theta, psi);
  alternating:   psi <- psi + h v_psi(theta, psi), then theta <- theta + h v_theta(theta, psi),
                 the discriminator first (the order of `ganjax.train.train_step`),

  with v = `dirac_gan_vector_field` and h the learning rate. Without regularisation the
  simultaneous iterates spiral away from the equilibrium and the alternating ones circle it
  (see `dirac_gan_update_matrix_spectral_radius`); with R1 (gamma > 0) and a small enough step
  both converge to (0, 0).

  A `jax.lax.scan` under `jax.jit`, with `steps`, `update` and `loss` static.

  Args:
    theta: the generator's initial position.
    psi: the discriminator's initial slope.
    steps: the number of updates.
    learning_rate: the step size h.
    update: 'simultaneous' or 'alternating'.
    loss: a loss name that `ganjax.losses.get` accepts.
    gamma: the R1 weight.

  Returns:
    The trajectory, shape (steps + 1, 2): row k is (theta, psi) after k updates.

  Raises:
    ValueError: for an unknown update.

  References: Mescheder, Geiger & Nowozin 2018, Figure 1 and Section 2.2.
  """
  step = _dirac_gan_step(loss, learning_rate, update, gamma)

  def body(point, _):
    next_point = step(point)
    return next_point, next_point

  start = jnp.stack([_float(theta), _float(psi)])
  _, trajectory = jax.lax.scan(body, start, length=steps)
  return jnp.concatenate([start[None], trajectory], axis=0)
