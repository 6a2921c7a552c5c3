"""Building blocks of class-conditional generators and discriminators, and self-attention.

Conditional batch normalisation (the generator's way of seeing the class), the projection
discriminator's inner product, the auxiliary-classifier heads (AC-GAN, TAC-GAN), and the
self-attention layer of SAGAN and BigGAN.

Labels are int32 class indices of shape (batch,), values in [0, num_classes). Out-of-range
labels are not checked inside a jitted function: a lookup with one returns NaN (jnp.take's
'fill' mode), which the training loop's non-finite check reports.

References:
  de Vries, Strub, Mary, Larochelle, Pietquin and Courville, "Modulating early visual
  processing by language", NeurIPS 2017, and Dumoulin, Shlens and Kudlur, "A Learned
  Representation for Artistic Style", ICLR 2017 (conditional batch normalisation).
  Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018.
  Odena, Olah and Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs",
  ICML 2017 (acgan).
  Gong, Liu, Tao, Gong and Batmanghelich, "Twin Auxiliary Classifiers GAN", NeurIPS 2019 (tac).
  Zhang, Goodfellow, Metaxas and Odena, "Self-Attention Generative Adversarial Networks",
  ICML 2019, and Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity
  Natural Image Synthesis", ICLR 2019 (self-attention; vector-conditional batch norm).
"""
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models import layers

Initializer = Callable[..., jax.Array]

# How a conditional discriminator uses the class: an inner product with a class embedding
# added to the logit, or a class head on the same features (one, or two for TAC-GAN).
CONDITIONINGS = ("projection", "acgan", "tac")

# The embedding initialiser of the projection discriminator in the authors' Chainer code
# (pfnet-research/sngan_projection, SNEmbedID with GlorotUniform) and in Mimicry's cGAN-PD
# (nn.init.xavier_uniform_ on SNEmbedding).
projection_embedding_init = nn.initializers.xavier_uniform()


def check_num_classes(num_classes: int) -> None:
  """Raises ValueError unless `num_classes` is 0 (unconditional) or positive."""
  if num_classes < 0:
    raise ValueError(f"num_classes must be >= 0 (0 for an unconditional network), got "
                     f"{num_classes}")


def check_conditioning(conditioning: str) -> None:
  """Raises ValueError, naming the valid values, unless `conditioning` is in CONDITIONINGS."""
  if conditioning not in CONDITIONINGS:
    raise ValueError(f"unknown conditioning {conditioning!r}; valid values: "
                     f"{', '.join(CONDITIONINGS)}")


def check_labels(labels: jax.Array | None, *, num_classes: int, batch_size: int, owner: str,
                 required: bool = True) -> None:
  """Checks the labels a module was called with against its `num_classes`.

  Args:
    labels: the labels argument, or None.
    num_classes: the module's number of classes; 0 for an unconditional module.
    batch_size: the batch size of the module's main input.
    owner: the module's class name, for the messages.
    required: whether a conditional module needs the labels (False for class heads).

  Raises:
    ValueError: labels missing where needed, given to an unconditional module, or not integers
      of shape (batch_size,). Every message is one line.
  """
  if num_classes == 0:
    if labels is not None:
      raise ValueError(f"{owner} is unconditional (num_classes=0) and takes no labels")
    return
  if labels is None:
    if required:
      raise ValueError(f"{owner} has num_classes={num_classes} and needs labels: int32 class "
                       f"indices of shape (batch,), passed as apply(variables, inputs, labels, "
                       f"train=...)")
    return
  if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.shape != (batch_size,):
    raise ValueError(f"{owner} needs integer labels of shape ({batch_size},), got "
                     f"{labels.dtype} of shape {tuple(labels.shape)}")


def _batch_normalize(x: jax.Array, train: bool, axis_name: str | None, dtype: Any) -> jax.Array:
  """x_hat: batch normalisation without scale or bias (an `nn.BatchNorm` submodule of the
  calling module, running statistics in 'batch_stats', ganjax's momentum and epsilon)."""
  return nn.BatchNorm(use_running_average=not train, use_scale=False, use_bias=False,
                      axis_name=axis_name, momentum=layers.BATCH_NORM_MOMENTUM,
                      epsilon=layers.BATCH_NORM_EPSILON, dtype=dtype)(x)


def _modulate(x_hat: jax.Array, gain_offset: jax.Array, bias: jax.Array) -> jax.Array:
  """(1 + gain_offset) * x_hat + bias, the per-example (batch, C) terms broadcast over the
  spatial axes of x_hat (batch, ..., C)."""
  shape = (x_hat.shape[0],) + (1,) * (x_hat.ndim - 2) + (x_hat.shape[-1],)
  gain_offset = gain_offset.reshape(shape).astype(x_hat.dtype)
  bias = bias.reshape(shape).astype(x_hat.dtype)
  return (1 + gain_offset) * x_hat + bias


class ClassConditionalBatchNorm(nn.Module):
  """Batch normalisation with a gain and a bias per class.

    out = (1 + gamma[y]) * x_hat + beta[y]

  where x_hat is x batch-normalised without a scale or bias of its own (the statistics, as in
  `nn.BatchNorm`, over every axis but the last) and gamma, beta are (num_classes, C) tables
  initialised to zero, so that at initialisation the layer is plain batch normalisation with
  gain 1. The "1 +" keeps the zero-initialised gain at 1 (its absence in compare_gan's
  conditional batch norm, which then starts every gain at 0, is compare_gan issue #54; Mimicry
  instead draws the gain table from N(1, 0.02^2)). BigGAN-PyTorch's `ccbn` without shared
  embeddings is this layer (its gain and bias are `nn.Embedding` tables, gain = 1 + table).

  Parameters: 'gamma' and 'beta', (num_classes, C). Running statistics: 'BatchNorm_0/mean' and
  'BatchNorm_0/var' in 'batch_stats'.

  References:
    de Vries et al., "Modulating early visual processing by language", NeurIPS 2017.
    Dumoulin, Shlens and Kudlur, "A Learned Representation for Artistic Style", ICLR 2017.
    Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018 (its generator).

  Attributes:
    num_classes: number of classes K.
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32.
  """
  num_classes: int
  axis_name: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array, train: bool = True) -> jax.Array:
    """Normalises `x` and applies each example's class gain and bias.

    Args:
      x: features of shape (batch, ..., C).
      labels: int class indices of shape (batch,).
      train: whether to use (and update) batch statistics rather than the running averages.

    Returns:
      An array of x's shape, in `dtype`.
    """
    check_labels(labels, num_classes=self.num_classes, batch_size=x.shape[0],
                 owner=type(self).__name__)
    features = x.shape[-1]
    gamma = self.param("gamma", nn.initializers.zeros, (self.num_classes, features))
    beta = self.param("beta", nn.initializers.zeros, (self.num_classes, features))
    x_hat = _batch_normalize(x, train, self.axis_name, self.dtype)
    return _modulate(x_hat, jnp.take(gamma, labels, axis=0), jnp.take(beta, labels, axis=0))


class VectorConditionalBatchNorm(nn.Module):
  """BigGAN's conditional batch normalisation: gain and bias linear in a conditioning vector.

    out = (1 + c W_gain) * x_hat + c W_bias

  with c of shape (batch, d) (in BigGAN, the shared class embedding concatenated with the
  block's chunk of z) and x_hat as in `ClassConditionalBatchNorm` (same normalisation code).
  This follows BigGAN-PyTorch's `layers.ccbn` with shared embeddings: its `which_linear` is
  `functools.partial(SNLinear, bias=False)`, so both linear maps are bias-free and spectrally
  normalised when the generator is (`G_param='SN'`, its default).

  Parameters: 'gain/kernel' and 'bias/kernel', (d, C). With `spectral_norm`, their power-
  iteration vectors are in 'batch_stats' (`SpectralNorm_0`, `SpectralNorm_1`), and the
  running statistics in 'BatchNorm_0'.

  References:
    Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
    Synthesis", ICLR 2019, section 3 and appendix B.

  Attributes:
    spectral_norm: whether to spectrally normalise the two linear maps.
    kernel_init: initialiser of the two kernels.
    axis_name: mapped axis over which batch statistics are averaged (sync BatchNorm), or None.
    dtype: computation dtype; parameters stay float32.
  """
  spectral_norm: bool = True
  kernel_init: Initializer = nn.initializers.normal(stddev=0.02)
  axis_name: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, condition: jax.Array, train: bool = True) -> jax.Array:
    """Normalises `x` and applies the gain and bias computed from `condition`.

    Args:
      x: features of shape (batch, ..., C).
      condition: conditioning vectors of shape (batch, d).
      train: whether to use (and update) batch statistics and run a power-iteration step.

    Returns:
      An array of x's shape, in `dtype`.
    """
    features = x.shape[-1]

    def linear(name):
      dense = nn.Dense(features, use_bias=False, kernel_init=self.kernel_init, dtype=self.dtype,
                       name=name)
      return layers.maybe_spectral_norm(dense, condition, spectral_norm=self.spectral_norm,
                                        train=train)

    gain_offset, bias = linear("gain"), linear("bias")
    return _modulate(_batch_normalize(x, train, self.axis_name, self.dtype), gain_offset, bias)


class Projection(nn.Module):
  """The projection discriminator's class term <E[y], phi(x)>.

  E is a (num_classes, D) embedding table of the discriminator's D-dimensional features
  phi(x), spectrally normalised when `spectral_norm` (the authors' SNEmbedID: E divided by its
  largest singular value, estimated by one power-iteration step per training call). The
  discriminator adds the result to its unconditional logit psi(phi(x)).

  Parameters: 'embed/embedding', (num_classes, D); with `spectral_norm`, its power-iteration
  vector 'SpectralNorm_0/embed/embedding/u' (shape (1, D)) and estimate '.../sigma' in
  'batch_stats'.

  References:
    Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018, equation (3).

  Attributes:
    num_classes: number of classes K.
    spectral_norm: whether to spectrally normalise the embedding table.
    embedding_init: initialiser of the table (Glorot uniform, as in the authors' code).
    dtype: computation dtype; the result is float32.
  """
  num_classes: int
  spectral_norm: bool = True
  embedding_init: Initializer = projection_embedding_init
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, features: jax.Array, labels: jax.Array, train: bool = True) -> jax.Array:
    """Returns <E[labels], features> for every example.

    Args:
      features: phi(x), shape (batch, D).
      labels: int class indices of shape (batch,).
      train: whether to run and store a power-iteration step of the spectral normalisation.

    Returns:
      Float32 array of shape (batch,).
    """
    embed = nn.Embed(self.num_classes, features.shape[-1], embedding_init=self.embedding_init,
                     dtype=self.dtype, name="embed")
    if self.spectral_norm:
      embedded = nn.SpectralNorm(embed)(labels, update_stats=train)
    else:
      embedded = embed(labels)
    return jnp.sum(embedded * features.astype(embedded.dtype), axis=-1).astype(jnp.float32)


def discriminator_output(features: jax.Array, labels: jax.Array | None, *, num_classes: int,
                         conditioning: str, spectral_norm: bool, train: bool,
                         kernel_init: Initializer,
                         embedding_init: Initializer = projection_embedding_init,
                         dtype: Any = jnp.float32
                         ) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
  """A discriminator's output layers on its pooled features phi(x).

  Call from inside a compact discriminator's `__call__`: the layers are created in its scope.
  The logit psi(phi) is an unnamed `nn.Dense(1)` (so an unconditional discriminator keeps the
  parameter names it had before conditioning existed); the conditional layers are named
  'projection' (a `Projection`), 'class_head' and 'twin_head' (`nn.Dense(num_classes)`).
  Every layer is spectrally normalised when `spectral_norm`.

  References:
    Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018 (projection).
    Odena, Olah and Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs",
    ICML 2017 (acgan).
    Gong et al., "Twin Auxiliary Classifiers GAN", NeurIPS 2019 (tac: a second, separate class
    head on the same features, the twin classifier that the generator plays against).

  Args:
    features: phi(x), shape (batch, D).
    labels: int class indices of shape (batch,); needed by "projection", unused by the heads.
    num_classes: 0 for an unconditional discriminator.
    conditioning: one of CONDITIONINGS.
    spectral_norm: whether to spectrally normalise every layer.
    train: whether to run and store power-iteration steps.
    kernel_init: initialiser of the Dense kernels.
    embedding_init: initialiser of the projection's embedding table.
    dtype: computation dtype.

  Returns:
    Float32 logits psi(phi) of shape (batch,) when unconditional; psi(phi) + <E[y], phi> for
    "projection"; (logits, {"classes": (batch, num_classes)}) for "acgan" and
    (logits, {"classes": ..., "twin": ...}) for "tac", class logits in float32.
  """
  check_conditioning(conditioning)

  def dense(units, name=None):
    layer = nn.Dense(units, kernel_init=kernel_init, dtype=dtype, name=name)
    outputs = layers.maybe_spectral_norm(layer, features, spectral_norm=spectral_norm,
                                         train=train)
    return outputs.astype(jnp.float32)

  logits = dense(1)[:, 0]
  if num_classes == 0:
    return logits
  if conditioning == "projection":
    projection = Projection(num_classes, spectral_norm=spectral_norm,
                            embedding_init=embedding_init, dtype=dtype, name="projection")
    return logits + projection(features, labels, train=train)
  heads = {"classes": dense(num_classes, "class_head")}
  if conditioning == "tac":
    heads["twin"] = dense(num_classes, "twin_head")
  return logits, heads


class SelfAttention(nn.Module):
  """SAGAN's self-attention layer in BigGAN-PyTorch's form (`layers.Attention`).

  On x of shape (batch, H, W, C), with bias-free 1x1 convolutions:
    theta = conv(x) to C/8 channels, at every one of the N = H W positions;
    phi = maxpool2x2(conv(x)) to C/8 channels, and g = maxpool2x2(conv(x)) to C/2, at N/4;
    beta = softmax over the pooled positions of theta phi^T, shape (batch, N, N/4);
    o = conv(beta g) back to C channels;
    out = x + gamma * o, with the scalar gamma initialised to 0 (the layer starts as the
  identity). The convolutions are spectrally normalised when `spectral_norm`.

  Parameters: 'theta', 'phi', 'g', 'o' (Conv kernels) and 'gamma' (a scalar).

  References:
    Zhang, Goodfellow, Metaxas and Odena, "Self-Attention Generative Adversarial Networks",
    ICML 2019, section 3.
    Brock, Donahue and Simonyan, ICLR 2019 (BigGAN-PyTorch `layers.Attention`, whose
    channel reductions and max-pooling this follows).

  Attributes:
    spectral_norm: whether to spectrally normalise the four convolutions.
    kernel_init: initialiser of the convolution kernels.
    dtype: computation dtype; parameters stay float32.
  """
  spectral_norm: bool = True
  kernel_init: Initializer = nn.initializers.normal(stddev=0.02)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Maps (batch, H, W, C) to the same shape; C divisible by 8, H and W even.

    Args:
      x: feature maps.
      train: whether to run and store power-iteration steps.

    Returns:
      x + gamma * o.
    """
    batch, height, width, channels = x.shape
    if channels % 8 or height % 2 or width % 2:
      raise ValueError(f"SelfAttention needs channels divisible by 8 and an even height and "
                       f"width, got {height}x{width}x{channels}")

    def conv(inputs, features, name):
      layer = nn.Conv(features, (1, 1), use_bias=False, kernel_init=self.kernel_init,
                      dtype=self.dtype, name=name)
      return layers.maybe_spectral_norm(layer, inputs, spectral_norm=self.spectral_norm,
                                        train=train)

    def pool(h):
      return nn.max_pool(h, (2, 2), strides=(2, 2))

    positions = height * width
    theta = conv(x, channels // 8, "theta").reshape(batch, positions, channels // 8)
    phi = pool(conv(x, channels // 8, "phi")).reshape(batch, positions // 4, channels // 8)
    g = pool(conv(x, channels // 2, "g")).reshape(batch, positions // 4, channels // 2)
    beta = nn.softmax(jnp.einsum("bnk,bmk->bnm", theta, phi), axis=-1)
    attended = jnp.einsum("bnm,bmc->bnc", beta, g).reshape(batch, height, width, channels // 2)
    o = conv(attended, channels, "o")
    gamma = self.param("gamma", nn.initializers.zeros, ())
    return x + gamma.astype(o.dtype) * o
