"""Building blocks shared by ganjax's generators and discriminators.

Activations chosen by name (so that a config can name them), compute dtypes chosen by name, the
DCGAN initialisers, the maxout nonlinearity and the optional spectral-normalisation wrapper.

References:
  Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep Convolutional
  Generative Adversarial Networks", ICLR 2016 (DCGAN initialisation).
  Goodfellow, Warde-Farley, Mirza, Courville and Bengio, "Maxout Networks", ICML 2013.
  Miyato, Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative Adversarial
  Networks", ICLR 2018.
"""
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]

LEAKY_RELU_SLOPE = 0.2

# PyTorch's BatchNorm defaults (running average updated by 0.1 of the batch statistic), which are
# also those of the DCGAN and SNGAN reference code; Flax's own default momentum is 0.99.
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5

ACTIVATIONS: dict[str, Activation] = {
    "relu": nn.relu,
    "leaky_relu": lambda x: nn.leaky_relu(x, negative_slope=LEAKY_RELU_SLOPE),
    "tanh": jnp.tanh,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "swish": nn.swish,
    "silu": nn.silu,
    "softplus": nn.softplus,
}

# Compute dtypes a config can name; parameters stay float32 whatever the compute dtype.
DTYPES = ("auto", "float32", "bfloat16")


def compute_dtype(name: str) -> Any:
  """The dtype a config's dtype name means: 'auto' is bfloat16 on GPU and TPU, float32
  elsewhere (JAX's default backend, looked up when called)."""
  if name == "auto":
    return jnp.bfloat16 if jax.default_backend() in ("gpu", "tpu") else jnp.float32
  return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]


def get_activation(name: str) -> Activation:
  """Returns the activation function called `name`.

  Args:
    name: one of relu, leaky_relu (negative slope 0.2), tanh, elu, gelu, swish, silu, softplus.

  Returns:
    The elementwise function.

  Raises:
    ValueError: `name` is not a known activation.
  """
  if name not in ACTIVATIONS:
    raise ValueError(
        f"unknown activation {name!r}; valid names: {', '.join(sorted(ACTIVATIONS))}")
  return ACTIVATIONS[name]


dcgan_kernel_init = nn.initializers.normal(stddev=0.02)


def dcgan_scale_init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32
                     ) -> jax.Array:
  """BatchNorm scale initialiser of the DCGAN reference code: N(1, 0.02^2).

  Args:
    key: PRNG key.
    shape: shape of the scale parameter.
    dtype: parameter dtype.

  Returns:
    An array of `shape` drawn from a normal distribution of mean 1 and standard deviation 0.02.
  """
  return (1.0 + 0.02 * jax.random.normal(key, shape)).astype(dtype)


def maxout(pre_activations: jax.Array, pieces: int) -> jax.Array:
  """The maxout nonlinearity: the maximum over groups of `pieces` consecutive units.

  Applied to the output of a Dense layer of `features * pieces` units, unit
  `i * pieces + j` is piece j of output unit i, so the result is h_i(x) = max_j (x W_ij + b_ij).

  References:
    Goodfellow, Warde-Farley, Mirza, Courville and Bengio, "Maxout Networks", ICML 2013.

  Args:
    pre_activations: array of shape (..., features * pieces).
    pieces: number of affine pieces each output unit takes the maximum over.

  Returns:
    Array of shape (..., features).
  """
  *leading, width = pre_activations.shape
  if width % pieces:
    raise ValueError(f"{width} units cannot be split into groups of {pieces} pieces")
  grouped = pre_activations.reshape(*leading, width // pieces, pieces)
  return jnp.max(grouped, axis=-1)


def maybe_spectral_norm(layer: nn.Module, x: jax.Array, *, spectral_norm: bool, train: bool
                        ) -> jax.Array:
  """Applies `layer` to `x`, with its weights spectrally normalised when `spectral_norm`.

  Uses Flax's `nn.SpectralNorm`, which keeps the power-iteration vector `u` and the estimate
  `sigma` in the 'batch_stats' collection and updates them only when `train` is True. Call from
  inside a compact module's `__call__`.

  At `init`, Flax stores the kernel already divided by its first estimate of sigma (one
  power-iteration step from a random `u`), so a spectrally normalised layer starts with kernel
  parameters of spectral norm close to 1 whatever its initialiser; its output does not depend on
  the kernel's scale.

  Args:
    layer: an unbound layer with a `kernel` parameter (Dense, Conv).
    x: the layer's input.
    spectral_norm: whether to divide the kernel by its largest singular value.
    train: whether to run and store a power-iteration step.

  Returns:
    The layer's output.
  """
  if spectral_norm:
    return nn.SpectralNorm(layer)(x, update_stats=train)
  return layer(x)
