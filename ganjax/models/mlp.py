"""Fully connected generators and discriminators for low-dimensional data (the toy mixtures).

With `num_classes > 0` both players are class-conditional: the generator sees the one-hot
class next to z (Mirza and Osindero's conditional GAN), the discriminator conditions its last
hidden layer by projection or by class heads (`conditional.discriminator_output`). With
`num_classes = 0` (the default) they are the unconditional networks, parameter for parameter.

References:
  Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (MLP players).
  Goodfellow et al., "Maxout Networks", ICML 2013, and Lin, Khetan, Fanti and Oh, "PacGAN: The
  power of two samples in generative adversarial networks", NeurIPS 2018 (maxout discriminator).
  Mirza and Osindero, "Conditional Generative Adversarial Nets", arXiv:1411.1784, 2014
  (conditional generator).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models import conditional, layers


class MLPGenerator(nn.Module):
  """A multilayer perceptron mapping latent vectors to points of R^output_dim.

  Each hidden layer is Dense, then BatchNorm when `batch_norm`, then the activation; the output
  layer is Dense with no activation. With `num_classes = K > 0` the input is z concatenated
  with the one-hot encoding of the label, (batch, latent_dim + K): a one-hot input to the first
  Dense layer is a learned class embedding of the first hidden width, with no extra parameter
  table or embedding-size setting.

  References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
    Mirza and Osindero, "Conditional Generative Adversarial Nets", 2014 (y joined to z).

  Attributes:
    output_dim: dimension of a generated sample.
    hidden: widths of the hidden layers.
    activation: name of the hidden activation (see `layers.ACTIVATIONS`).
    batch_norm: whether to batch-normalise each hidden pre-activation.
    num_classes: number of classes K of a conditional generator; 0 for an unconditional one.
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32.
  """
  output_dim: int = 2
  hidden: Sequence[int] = (128, 128)
  activation: str = "relu"
  batch_norm: bool = False
  num_classes: int = 0
  axis_name: str | None = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.get_activation(self.activation)
    conditional.check_num_classes(self.num_classes)
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None, train: bool = True
               ) -> jax.Array:
    """Generates samples.

    Args:
      z: latent vectors of shape (batch, latent_dim).
      labels: int class indices of shape (batch,), required when `num_classes > 0`; None
        otherwise.
      train: whether BatchNorm uses (and updates) batch statistics.

    Returns:
      Samples of shape (batch, output_dim).
    """
    conditional.check_labels(labels, num_classes=self.num_classes, batch_size=z.shape[0],
                             owner=type(self).__name__)
    activation = layers.get_activation(self.activation)
    x = z
    if self.num_classes:
      x = jnp.concatenate([z, jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)], axis=-1)
    for width in self.hidden:
      x = nn.Dense(width, dtype=self.dtype)(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name,
                         momentum=layers.BATCH_NORM_MOMENTUM, epsilon=layers.BATCH_NORM_EPSILON,
                         dtype=self.dtype)(x)
      x = activation(x)
    return nn.Dense(self.output_dim, dtype=self.dtype)(x)


class MLPDiscriminator(nn.Module):
  """A multilayer perceptron returning one logit per sample.

  The input is flattened to (batch, -1), so packed inputs (PacGAN) work unchanged. Each hidden
  layer is Dense, then BatchNorm when `batch_norm`, then the activation; with `maxout_pieces > 0`
  each hidden layer is instead a maxout layer of that many pieces (the activation is then unused,
  and BatchNorm, when on, normalises the pieces before the maximum). PacGAN's toy discriminator
  is `hidden=(200, 200, 200), maxout_pieces=5`.

  With `num_classes = K > 0`, the output layers act on the last hidden layer's activations phi
  (of width hidden[-1]): "projection" adds <E[y], phi> to the logit, E a (K, hidden[-1])
  embedding table; "acgan" and "tac" add one or two Dense(K) class heads (see
  `conditional.discriminator_output`). Nothing here is spectrally normalised.

  References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
    Goodfellow et al., "Maxout Networks", ICML 2013.
    Lin, Khetan, Fanti and Oh, "PacGAN", NeurIPS 2018.
    Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018.

  Attributes:
    hidden: widths of the hidden layers.
    activation: name of the hidden activation (see `layers.ACTIVATIONS`).
    batch_norm: whether to batch-normalise each hidden pre-activation.
    maxout_pieces: pieces per maxout unit; 0 for ordinary Dense layers.
    num_classes: number of classes K of a conditional discriminator; 0 for an unconditional one.
    conditioning: how a conditional discriminator uses the class: "projection", "acgan" or
      "tac" (`conditional.CONDITIONINGS`).
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32. Logits are returned in float32.
  """
  hidden: Sequence[int] = (128, 128)
  activation: str = "relu"
  batch_norm: bool = False
  maxout_pieces: int = 0
  num_classes: int = 0
  conditioning: str = "projection"
  axis_name: str | None = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.get_activation(self.activation)
    if self.maxout_pieces < 0:
      raise ValueError(f"maxout_pieces must be >= 0, got {self.maxout_pieces}")
    conditional.check_num_classes(self.num_classes)
    conditional.check_conditioning(self.conditioning)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None, train: bool = True
               ) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """Scores samples.

    Args:
      x: samples of shape (batch, ...).
      labels: int class indices of shape (batch,): required by a "projection" discriminator
        with `num_classes > 0`, unused by "acgan" and "tac", None when unconditional.
      train: whether BatchNorm uses (and updates) batch statistics.

    Returns:
      Logits of shape (batch,), float32; for "acgan" and "tac", (logits, heads) with heads
      {"classes": (batch, K)} and, for "tac", "twin" as well.
    """
    conditional.check_labels(labels, num_classes=self.num_classes, batch_size=x.shape[0],
                             owner=type(self).__name__,
                             required=self.conditioning == "projection")
    activation = layers.get_activation(self.activation)
    batch_size = x.shape[0]
    x = x.reshape(batch_size, -1)
    pieces = max(self.maxout_pieces, 1)
    for width in self.hidden:
      x = nn.Dense(width * pieces, dtype=self.dtype)(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name,
                         momentum=layers.BATCH_NORM_MOMENTUM, epsilon=layers.BATCH_NORM_EPSILON,
                         dtype=self.dtype)(x)
      if self.maxout_pieces:
        x = layers.maxout(x, pieces)
      else:
        x = activation(x)
    return conditional.discriminator_output(
        x, labels, num_classes=self.num_classes, conditioning=self.conditioning,
        spectral_norm=False, train=train, kernel_init=nn.initializers.lecun_normal(),
        dtype=self.dtype)
