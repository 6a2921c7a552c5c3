"""GAN objectives: pure functions of discriminator (critic) outputs.

Every loss returns a scalar to MINIMISE (the one exception, `value_function`, says so) and
reduces with a mean over all elements of its inputs, which may have any shape. Discriminator
losses are minimised over the discriminator's parameters, generator losses over the generator's.

Where the output is a logit a of a probability, D = sigmoid(a), and the losses use
log D = log_sigmoid(a) and log(1 - D) = log_sigmoid(-a): values and gradients stay finite in
float32 for |a| up to 1e4 and beyond. Critic values (Wasserstein, hinge), least-squares outputs and
f-GAN outputs v are used as they are.

`get(name)` returns the `Objective` a config names; it unpacks into the (discriminator,
generator) pair, both called as `loss(real_logits, fake_logits)`.

Class-conditional GANs with a class head on the discriminator add an auxiliary classification
loss: ACGAN's (`acgan_*`, Odena et al. 2017) or TAC-GAN's twin classifiers (`tac_*`, Gong et
al. 2019), registered in `CLASSIFIERS`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import jax
import jax.numpy as jnp

from ganjax import divergences
from ganjax import errors

PairLoss = Callable[[jax.typing.ArrayLike, jax.typing.ArrayLike], jax.Array]


def _log_d(logits: jax.typing.ArrayLike) -> jax.Array:
  """log D = log sigmoid(a)."""
  return jax.nn.log_sigmoid(jnp.asarray(logits))


def _log_one_minus_d(logits: jax.typing.ArrayLike) -> jax.Array:
  """log(1 - D) = log sigmoid(-a)."""
  return jax.nn.log_sigmoid(-jnp.asarray(logits))


# The original GAN (Goodfellow et al. 2014).


def discriminator_loss(
    real_logits: jax.typing.ArrayLike, fake_logits: jax.typing.ArrayLike) -> jax.Array:
  """The discriminator's loss of the original GAN: its objective L_D, negated.

      loss = -(E_x[log D(x)] + E_z[log(1 - D(G(z)))]) = -L_D = -V(D, G),

  the binary cross-entropy of real samples labelled 1 and fake ones labelled 0. Minimising it
  maximises V(D, G); for a fixed generator the minimiser is
  D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Proposition 1).

  Args:
    real_logits: logits a of D on data samples, D(x) = sigmoid(a); any shape.
    fake_logits: logits of D on generated samples G(z); any shape.

  Returns:
    The scalar loss to minimise over the discriminator.

  References:
    Goodfellow et al. 2014, "Generative Adversarial Nets", equation (1) and Proposition 1.
  """
  return -(jnp.mean(_log_d(real_logits)) + jnp.mean(_log_one_minus_d(fake_logits)))


def minimax_generator_loss(fake_logits: jax.typing.ArrayLike) -> jax.Array:
  """The generator's loss of the minimax game (saturating).

      loss = E_z[log(1 - D(G(z)))].

  With D = sigmoid(a), d loss / d a = -D / n for each of n elements: the gradient vanishes where
  the discriminator rejects fakes confidently (D -> 0), as it does early in training. Together
  with `discriminator_loss` it forms the zero-sum game min_G max_D V(D, G).

  Args:
    fake_logits: logits of D on generated samples G(z); any shape.

  Returns:
    The scalar loss to minimise over the generator.

  References:
    Goodfellow et al. 2014, "Generative Adversarial Nets", equation (1).
  """
  return jnp.mean(_log_one_minus_d(fake_logits))


def non_saturating_generator_loss(fake_logits: jax.typing.ArrayLike) -> jax.Array:
  """The generator's non-saturating loss.

      loss = -E_z[log D(G(z))].

  The generator maximises log D(G(z)) instead of minimising log(1 - D(G(z))): the same fixed
  point, but d loss / d a = -(1 - D) / n, which stays near -1 / n where D rejects fakes. The game
  is no longer zero-sum.

  Args:
    fake_logits: logits of D on generated samples G(z); any shape.

  Returns:
    The scalar loss to minimise over the generator.

  References:
    Goodfellow et al. 2014, "Generative Adversarial Nets", section 3.
  """
  return -jnp.mean(_log_d(fake_logits))


def value_function(
    real_logits: jax.typing.ArrayLike, fake_logits: jax.typing.ArrayLike) -> jax.Array:
  """The value V(D, G) of the minimax game, which D maximises and G minimises.

      V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

  This is a value, not a loss: the discriminator's loss is -V (`discriminator_loss`). At D = 1/2
  everywhere V = -log 4, the value of the game at its equilibrium p_g = p_data.

  Args:
    real_logits: logits a of D on data samples, D(x) = sigmoid(a); any shape.
    fake_logits: logits of D on generated samples G(z); any shape.

  Returns:
    The scalar V(D, G).

  References:
    Goodfellow et al. 2014, "Generative Adversarial Nets", equation (1) and Theorem 1.
  """
  return jnp.mean(_log_d(real_logits)) + jnp.mean(_log_one_minus_d(fake_logits))


# Wasserstein GAN (Arjovsky et al. 2017).


def wasserstein_discriminator_loss(
    real_values: jax.typing.ArrayLike, fake_values: jax.typing.ArrayLike) -> jax.Array:
  """The critic's loss of the Wasserstein GAN.

      loss = E_z[f(G(z))] - E_x[f(x)].

  Minimising it over 1-Lipschitz critics f gives -W_1(p_data, p_g) (Kantorovich-Rubinstein
  duality); the Lipschitz constraint comes from weight clipping or a gradient penalty
  (`ganjax.regularizers`).

  Args:
    real_values: critic values f(x) on data samples; any shape.
    fake_values: critic values f(G(z)) on generated samples; any shape.

  Returns:
    The scalar loss to minimise over the critic.

  References:
    Arjovsky, Chintala & Bottou 2017, "Wasserstein Generative Adversarial Networks", section 3.
  """
  return jnp.mean(jnp.asarray(fake_values)) - jnp.mean(jnp.asarray(real_values))


def wasserstein_generator_loss(fake_values: jax.typing.ArrayLike) -> jax.Array:
  """The generator's loss of the Wasserstein GAN.

      loss = -E_z[f(G(z))].

  Args:
    fake_values: critic values f(G(z)) on generated samples; any shape.

  Returns:
    The scalar loss to minimise over the generator.

  References:
    Arjovsky, Chintala & Bottou 2017, "Wasserstein Generative Adversarial Networks", Algorithm 1.
  """
  return -jnp.mean(jnp.asarray(fake_values))


# Hinge loss (Lim & Ye 2017; Miyato et al. 2018).


def hinge_discriminator_loss(
    real_values: jax.typing.ArrayLike, fake_values: jax.typing.ArrayLike) -> jax.Array:
  """The discriminator's hinge loss.

      loss = E_x[relu(1 - f(x))] + E_z[relu(1 + f(G(z)))].

  Args:
    real_values: discriminator outputs f(x) on data samples; any shape.
    fake_values: discriminator outputs f(G(z)) on generated samples; any shape.

  Returns:
    The scalar loss to minimise over the discriminator.

  References:
    Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization for Generative
    Adversarial Networks".
  """
  return (jnp.mean(jax.nn.relu(1.0 - jnp.asarray(real_values)))
          + jnp.mean(jax.nn.relu(1.0 + jnp.asarray(fake_values))))


def hinge_generator_loss(fake_values: jax.typing.ArrayLike) -> jax.Array:
  """The generator's loss paired with the hinge discriminator loss.

      loss = -E_z[f(G(z))].

  Args:
    fake_values: discriminator outputs f(G(z)) on generated samples; any shape.

  Returns:
    The scalar loss to minimise over the generator.

  References:
    Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization for Generative
    Adversarial Networks".
  """
  return -jnp.mean(jnp.asarray(fake_values))


# Least squares GAN (Mao et al. 2017).


def least_squares_discriminator_loss(
    real_outputs: jax.typing.ArrayLike,
    fake_outputs: jax.typing.ArrayLike,
    a: float = 0.0,
    b: float = 1.0,
) -> jax.Array:
  """The discriminator's least-squares loss.

      loss = 1/2 E_x[(D(x) - b)^2] + 1/2 E_z[(D(G(z)) - a)^2],

  on the raw outputs D (no sigmoid): b is the target for data, a for fakes. The paper's two
  codings are 0-1-1 (a = 0, b = 1, c = 1; the default) and -1-1-0 (a = -1, b = 1, c = 0), which
  satisfies b - c = 1, b - a = 2 and so makes the generator minimise the Pearson chi^2
  divergence of p_data + p_g from 2 p_g (section 3.2.2). For a fixed generator the minimiser is
  D*(x) = (b p_data(x) + a p_g(x)) / (p_data(x) + p_g(x)).

  Args:
    real_outputs: discriminator outputs D(x) on data samples; any shape.
    fake_outputs: discriminator outputs D(G(z)) on generated samples; any shape.
    a: the target for generated samples.
    b: the target for data samples.

  Returns:
    The scalar loss to minimise over the discriminator.

  References:
    Mao et al. 2017, "Least Squares Generative Adversarial Networks", section 3.2.
  """
  return 0.5 * (jnp.mean(jnp.square(jnp.asarray(real_outputs) - b))
                + jnp.mean(jnp.square(jnp.asarray(fake_outputs) - a)))


def least_squares_generator_loss(
    fake_outputs: jax.typing.ArrayLike, c: float = 1.0) -> jax.Array:
  """The generator's least-squares loss.

      loss = 1/2 E_z[(D(G(z)) - c)^2],

  on the raw outputs D (no sigmoid): c is the value the generator wants D to believe for fakes,
  1 in the 0-1-1 coding (the default), 0 in the -1-1-0 coding (see
  `least_squares_discriminator_loss`).

  Args:
    fake_outputs: discriminator outputs D(G(z)) on generated samples; any shape.
    c: the target the generator sets for its samples.

  Returns:
    The scalar loss to minimise over the generator.

  References:
    Mao et al. 2017, "Least Squares Generative Adversarial Networks", section 3.2.
  """
  return 0.5 * jnp.mean(jnp.square(jnp.asarray(fake_outputs) - c))


# Relativistic GANs (Jolicoeur-Martineau 2018).


def relativistic_discriminator_loss(
    real_logits: jax.typing.ArrayLike, fake_logits: jax.typing.ArrayLike) -> jax.Array:
  """The discriminator's loss of the relativistic standard GAN (RSGAN).

      loss = -E_(x_r, x_f)[log sigmoid(C(x_r) - C(x_f))],

  over PAIRED elements: real_logits[i] is compared with fake_logits[i] (the shapes must match or
  broadcast). C is the critic's logit; sigmoid(C(x_r) - C(x_f)) is the probability that the real
  sample is more realistic than the fake one.

  Args:
    real_logits: critic logits C(x_r) on data samples.
    fake_logits: critic logits C(x_f) on generated samples, paired with `real_logits`.

  Returns:
    The scalar loss to minimise over the discriminator.

  References:
    Jolicoeur-Martineau 2018, "The relativistic discriminator: a key element missing from
    standard GAN" (RSGAN).
  """
  return -jnp.mean(_log_d(jnp.asarray(real_logits) - jnp.asarray(fake_logits)))


def relativistic_generator_loss(
    real_logits: jax.typing.ArrayLike, fake_logits: jax.typing.ArrayLike) -> jax.Array:
  """The generator's loss of the relativistic standard GAN (RSGAN).

      loss = -E_(x_r, x_f)[log sigmoid(C(x_f) - C(x_r))],

  over paired elements as in `relativistic_discriminator_loss`. Unlike most generator losses it
  needs the critic's logits on real data too (their gradient reaches the generator only through
  the fake logits).

  Args:
    real_logits: critic logits C(x_r) on data samples.
    fake_logits: critic logits C(x_f) on generated samples, paired with `real_logits`.

  Returns:
    The scalar loss to minimise over the generator.

  References:
    Jolicoeur-Martineau 2018, "The relativistic discriminator: a key element missing from
    standard GAN" (RSGAN).
  """
  return -jnp.mean(_log_d(jnp.asarray(fake_logits) - jnp.asarray(real_logits)))


def _relativistic_average(
    favoured_logits: jax.typing.ArrayLike, other_logits: jax.typing.ArrayLike) -> jax.Array:
  """-E_1 log sigmoid(C_1 - E_2 C_2) - E_2 log(1 - sigmoid(C_2 - E_1 C_1))."""
  favoured_logits = jnp.asarray(favoured_logits)
  other_logits = jnp.asarray(other_logits)
  return -(jnp.mean(_log_d(favoured_logits - jnp.mean(other_logits)))
           + jnp.mean(_log_one_minus_d(other_logits - jnp.mean(favoured_logits))))


def relativistic_average_discriminator_loss(
    real_logits: jax.typing.ArrayLike, fake_logits: jax.typing.ArrayLike) -> jax.Array:
  """The discriminator's loss of the relativistic average standard GAN (RaSGAN).

      loss = -E_r[log sigmoid(C(x_r) - E_f C(x_f))] - E_f[log(1 - sigmoid(C(x_f) - E_r C(x_r)))].

  Each sample is compared with the mean logit of the other batch, so the two batches need not
  have the same shape.

  Args:
    real_logits: critic logits C(x_r) on data samples; any shape.
    fake_logits: critic logits C(x_f) on generated samples; any shape.

  Returns:
    The scalar loss to minimise over the discriminator.

  References:
    Jolicoeur-Martineau 2018, "The relativistic discriminator: a key element missing from
    standard GAN" (RaSGAN).
  """
  return _relativistic_average(real_logits, fake_logits)


def relativistic_average_generator_loss(
    real_logits: jax.typing.ArrayLike, fake_logits: jax.typing.ArrayLike) -> jax.Array:
  """The generator's loss of the relativistic average standard GAN (RaSGAN).

      loss = -E_f[log sigmoid(C(x_f) - E_r C(x_r))] - E_r[log(1 - sigmoid(C(x_r) - E_f C(x_f)))],

  the discriminator's loss with real and fake swapped. It needs the critic's logits on real data
  too: both terms depend on the generator.

  Args:
    real_logits: critic logits C(x_r) on data samples; any shape.
    fake_logits: critic logits C(x_f) on generated samples; any shape.

  Returns:
    The scalar loss to minimise over the generator.

  References:
    Jolicoeur-Martineau 2018, "The relativistic discriminator: a key element missing from
    standard GAN" (RaSGAN).
  """
  return _relativistic_average(fake_logits, real_logits)


# f-GAN (Nowozin et al. 2016).


def fgan_divergence_estimate(
    real_v: jax.typing.ArrayLike,
    fake_v: jax.typing.ArrayLike,
    divergence: str | divergences.FDivergence,
) -> jax.Array:
  """The f-GAN variational lower bound on D_f(P || Q), P the data and Q the generator.

      estimate = E_P[g_f(v)] - E_Q[f*(g_f(v))] <= D_f(P || Q),

  with equality when g_f(v(x)) = f'(p(x) / q(x)). This is a value, not a loss: the critic
  maximises it (`fgan_discriminator_loss` is its negation).

  Args:
    real_v: critic outputs v on data samples (before the activation g_f); any shape.
    fake_v: critic outputs v on generated samples; any shape.
    divergence: a name in `ganjax.divergences.DIVERGENCES` or an `FDivergence`.

  Returns:
    The scalar estimate.

  References:
    Nowozin, Cseke & Tomioka 2016, "f-GAN: Training Generative Neural Samplers using Variational
    Divergence Minimization", section 2 and Table 2.
  """
  divergence = divergences.get(divergence)
  return (jnp.mean(divergence.activation(jnp.asarray(real_v)))
          - jnp.mean(divergence.conjugate_of_activation(jnp.asarray(fake_v))))


def fgan_discriminator_loss(
    real_v: jax.typing.ArrayLike,
    fake_v: jax.typing.ArrayLike,
    divergence: str | divergences.FDivergence,
) -> jax.Array:
  """The f-GAN critic's loss: the variational lower bound, negated.

      loss = -(E_P[g_f(v)] - E_Q[f*(g_f(v))]).

  P is the data distribution and Q the generator's. For divergence 'gan' it equals
  `discriminator_loss`.

  Args:
    real_v: critic outputs v on data samples (before the activation g_f); any shape.
    fake_v: critic outputs v on generated samples; any shape.
    divergence: a name in `ganjax.divergences.DIVERGENCES` or an `FDivergence`.

  Returns:
    The scalar loss to minimise over the critic.

  References:
    Nowozin, Cseke & Tomioka 2016, "f-GAN: Training Generative Neural Samplers using Variational
    Divergence Minimization", section 2 and Table 2.
  """
  return -fgan_divergence_estimate(real_v, fake_v, divergence)


def fgan_generator_loss(
    fake_v: jax.typing.ArrayLike,
    divergence: str | divergences.FDivergence,
    non_saturating: bool = False,
) -> jax.Array:
  """The f-GAN generator's loss.

      loss = E_Q[-f*(g_f(v))]                (non_saturating=False)
      loss = -E_Q[g_f(v)]                    (non_saturating=True)

  The first is the only term of the variational bound that depends on the generator, so the
  generator minimises the bound (the saddle-point objective of the paper). The second is the paper's
  alternative (section 3.2), which for divergence 'gan' is `non_saturating_generator_loss`, as
  the first is `minimax_generator_loss`.

  Args:
    fake_v: critic outputs v on generated samples (before the activation g_f); any shape.
    divergence: a name in `ganjax.divergences.DIVERGENCES` or an `FDivergence`.
    non_saturating: whether to use the alternative -E_Q[g_f(v)].

  Returns:
    The scalar loss to minimise over the generator.

  References:
    Nowozin, Cseke & Tomioka 2016, "f-GAN: Training Generative Neural Samplers using Variational
    Divergence Minimization", sections 2 and 3.2.
  """
  divergence = divergences.get(divergence)
  fake_v = jnp.asarray(fake_v)
  if non_saturating:
    return -jnp.mean(divergence.activation(fake_v))
  return -jnp.mean(divergence.conjugate_of_activation(fake_v))


# Auxiliary classifiers of class-conditional GANs (labels y are ints in [0, num_classes)).


def classification_loss(class_logits: jax.typing.ArrayLike,
                        labels: jax.typing.ArrayLike) -> jax.Array:
  """The mean cross-entropy -E[log softmax(class_logits)[y]] of a class head on labelled samples.

  Args:
    class_logits: (..., num_classes) logits of p(y | x).
    labels: int labels of shape (...).

  Returns:
    The scalar mean negative log-likelihood of the labels.
  """
  log_p = jax.nn.log_softmax(jnp.asarray(class_logits, jnp.float32), axis=-1)
  labels = jnp.asarray(labels)
  return -jnp.mean(jnp.take_along_axis(log_p, labels[..., None], axis=-1))


def acgan_discriminator_loss(real_class_logits: jax.typing.ArrayLike,
                             real_labels: jax.typing.ArrayLike,
                             fake_class_logits: jax.typing.ArrayLike,
                             fake_labels: jax.typing.ArrayLike) -> jax.Array:
  """The discriminator's auxiliary-classifier loss of ACGAN: -L_C, the negated log-likelihood of
  the correct class on real samples and on fakes (labelled with the class they were generated
  for), added to the adversarial loss with a weight.

      loss = -E[log C(y | x)] - E[log C(y' | G(z, y'))].

  Known failure: the generator is rewarded for samples that are easy to classify, so ACGAN
  drops the hard parts of each class (low intra-class diversity, worse with many classes) and
  its classifier learns a biased p(y | x) (Shu et al. 2017; Gong et al. 2019). `tac_*` is the
  twin-classifier fix.

  References:
    Odena, Olah and Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs",
    equations (2)-(3): D maximises L_S + L_C, G maximises L_C - L_S.
  """
  return (classification_loss(real_class_logits, real_labels)
          + classification_loss(fake_class_logits, fake_labels))


def acgan_generator_loss(fake_class_logits: jax.typing.ArrayLike,
                         fake_labels: jax.typing.ArrayLike) -> jax.Array:
  """The generator's auxiliary-classifier loss of ACGAN: -E[log C(y' | G(z, y'))], the
  generator's share of -L_C (see `acgan_discriminator_loss`)."""
  return classification_loss(fake_class_logits, fake_labels)


def tac_discriminator_loss(real_class_logits: jax.typing.ArrayLike,
                           real_labels: jax.typing.ArrayLike,
                           fake_twin_logits: jax.typing.ArrayLike,
                           fake_labels: jax.typing.ArrayLike) -> jax.Array:
  """The discriminator's loss of TAC-GAN's two classifiers: the classifier C learns p(y | x) on
  real samples only, and the twin classifier C^mi learns the fakes' labels on fakes only.

      loss = -E_real[log C(y | x)] - E_fake[log C^mi(y' | G(z, y'))].

  References:
    Gong, Liu, Tao, Xu, Zhang, Batmanghelich and Tao 2019, "Twin Auxiliary Classifiers GAN",
    equation (8).
  """
  return (classification_loss(real_class_logits, real_labels)
          + classification_loss(fake_twin_logits, fake_labels))


def tac_generator_loss(fake_class_logits: jax.typing.ArrayLike,
                       fake_twin_logits: jax.typing.ArrayLike,
                       fake_labels: jax.typing.ArrayLike) -> jax.Array:
  """The generator's loss of TAC-GAN's classifiers: the ACGAN term minus the twin classifier's,

      loss = -E[log C(y' | G(z, y'))] + E[log C^mi(y' | G(z, y'))],

  so that the generator makes its class-conditional distribution hard for the twin to tell
  apart, which removes ACGAN's bias towards easily classified samples (the two terms together
  minimise the divergence between the real and fake joint distributions of (x, y)).

  References:
    Gong et al. 2019, "Twin Auxiliary Classifiers GAN", equation (8).
  """
  return (classification_loss(fake_class_logits, fake_labels)
          - classification_loss(fake_twin_logits, fake_labels))


@dataclasses.dataclass(frozen=True)
class Classifier:
  """An auxiliary classification loss, in the form the update calls it.

  Attributes:
    heads: the discriminator's class heads it reads ('classes', and 'twin' for TAC).
    discriminator: (real_heads, real_labels, fake_heads, fake_labels) -> scalar.
    generator: (fake_heads, fake_labels) -> scalar.
  """
  heads: tuple[str, ...]
  discriminator: Callable[..., jax.Array]
  generator: Callable[..., jax.Array]


CLASSIFIERS: dict[str, Classifier] = {
    "acgan": Classifier(
        ("classes",),
        lambda real, real_labels, fake, fake_labels: acgan_discriminator_loss(
            real["classes"], real_labels, fake["classes"], fake_labels),
        lambda fake, fake_labels: acgan_generator_loss(fake["classes"], fake_labels)),
    "tac": Classifier(
        ("classes", "twin"),
        lambda real, real_labels, fake, fake_labels: tac_discriminator_loss(
            real["classes"], real_labels, fake["twin"], fake_labels),
        lambda fake, fake_labels: tac_generator_loss(fake["classes"], fake["twin"], fake_labels)),
}


# The registry.


@dataclasses.dataclass(frozen=True)
class Objective:
  """A GAN objective: the discriminator's and the generator's losses.

  Both losses are called as `loss(real_logits, fake_logits)` with the discriminator's outputs
  on a real and a fake batch, and return a scalar to minimise; generator losses that do not need
  the real outputs ignore them. Iterating yields (discriminator, generator), so
  `d_loss, g_loss = losses.get(name)` works.

  Attributes:
    discriminator: the discriminator's (critic's) loss.
    generator: the generator's loss.
    generator_uses_real: whether the generator's loss depends on the real outputs (the
      relativistic objectives), so that the caller must compute them in the generator's step.
    probability_outputs: whether sigmoid(output) is the probability that a sample is real, so
      that D(real) and D(fake) are meaningful measurements.
  """
  discriminator: PairLoss
  generator: PairLoss
  generator_uses_real: bool
  probability_outputs: bool

  def __iter__(self) -> Iterator[PairLoss]:
    yield self.discriminator
    yield self.generator


def _fake_only(generator_loss: Callable[[jax.typing.ArrayLike], jax.Array]) -> PairLoss:
  """`generator_loss(fake)` as a function of (real, fake) that ignores real."""

  def loss(real_logits: jax.typing.ArrayLike, fake_logits: jax.typing.ArrayLike) -> jax.Array:
    del real_logits
    return generator_loss(fake_logits)

  loss.__name__ = loss.__qualname__ = generator_loss.__name__
  loss.__doc__ = generator_loss.__doc__
  return loss


def _least_squares(a: float, b: float, c: float) -> Objective:

  def discriminator(
      real_logits: jax.typing.ArrayLike, fake_logits: jax.typing.ArrayLike) -> jax.Array:
    return least_squares_discriminator_loss(real_logits, fake_logits, a=a, b=b)

  def generator(
      real_logits: jax.typing.ArrayLike, fake_logits: jax.typing.ArrayLike) -> jax.Array:
    del real_logits
    return least_squares_generator_loss(fake_logits, c=c)

  return Objective(discriminator, generator, generator_uses_real=False, probability_outputs=False)


def _fgan(divergence: divergences.FDivergence) -> Objective:

  def discriminator(real_v: jax.typing.ArrayLike, fake_v: jax.typing.ArrayLike) -> jax.Array:
    return fgan_discriminator_loss(real_v, fake_v, divergence)

  def generator(real_v: jax.typing.ArrayLike, fake_v: jax.typing.ArrayLike) -> jax.Array:
    del real_v
    return fgan_generator_loss(fake_v, divergence)

  return Objective(discriminator, generator, generator_uses_real=False,
                   probability_outputs=divergence.name == "gan")


OBJECTIVES: dict[str, Objective] = {
    "minimax": Objective(
        discriminator_loss, _fake_only(minimax_generator_loss),
        generator_uses_real=False, probability_outputs=True),
    "non_saturating": Objective(
        discriminator_loss, _fake_only(non_saturating_generator_loss),
        generator_uses_real=False, probability_outputs=True),
    "wasserstein": Objective(
        wasserstein_discriminator_loss, _fake_only(wasserstein_generator_loss),
        generator_uses_real=False, probability_outputs=False),
    "hinge": Objective(
        hinge_discriminator_loss, _fake_only(hinge_generator_loss),
        generator_uses_real=False, probability_outputs=False),
    "least_squares": _least_squares(a=0.0, b=1.0, c=1.0),
    "least_squares_symmetric": _least_squares(a=-1.0, b=1.0, c=0.0),
    "relativistic": Objective(
        relativistic_discriminator_loss, relativistic_generator_loss,
        generator_uses_real=True, probability_outputs=True),
    "relativistic_average": Objective(
        relativistic_average_discriminator_loss, relativistic_average_generator_loss,
        generator_uses_real=True, probability_outputs=True),
    **{f"fgan_{name}": _fgan(divergence)
       for name, divergence in divergences.DIVERGENCES.items()},
}


def get(name: str) -> Objective:
  """The objective a config names.

  Args:
    name: a key of `OBJECTIVES`: 'minimax', 'non_saturating', 'wasserstein', 'hinge',
      'least_squares' (the 0-1-1 coding), 'least_squares_symmetric' (-1-1-0), 'relativistic',
      'relativistic_average', or 'fgan_<divergence>' for a name in
      `ganjax.divergences.DIVERGENCES`.

  Returns:
    The `Objective`, which unpacks into (discriminator_loss, generator_loss).

  Raises:
    ConfigError: for an unknown name, listing the valid ones.
  """
  return errors.lookup(OBJECTIVES, name, "loss")
