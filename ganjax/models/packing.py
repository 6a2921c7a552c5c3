"""PacGAN packing: the discriminator judges m samples at a time, concatenated.

A batch of B samples of shape `shape` becomes B/m packs of m consecutive samples joined along the
last (feature or channel) axis, shape (B/m, *shape[:-1], m * shape[-1]), and the inner
discriminator returns one logit per pack. Real packs hold only real samples and fake packs only
generated ones, so every loss in `ganjax.losses` (a mean over logits) applies unchanged.

A config selects it with the discriminator keyword `pack` (see `ganjax.models.get_discriminator`):
`model.discriminator_kwargs.pack = 2`. The batch (per device, when mapped) must be divisible by m.

Packing is for unconditional discriminators only: a pack mixes samples of different classes,
so a class-conditional inner discriminator (`num_classes > 0`) is refused.

Gradient penalties (`ganjax.regularizers`) call the discriminator on (B, ...) inputs and take the
input-gradient norm of each sample, not of each pack: R1 and R2 come out as the per-pack penalty
divided by m, and the WGAN-GP and DRAGAN norms are per sample.

References:
  Lin, Khetan, Fanti and Oh, "PacGAN: The power of two samples in generative adversarial
  networks", NeurIPS 2018, section 3.
"""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp


def pack_samples(x: jax.Array, pack: int) -> jax.Array:
  """Joins every `pack` consecutive samples along the last axis.

  Args:
    x: samples of shape (batch, *shape), batch divisible by `pack`.
    pack: samples per pack, m.

  Returns:
    Packs of shape (batch / m, *shape[:-1], m * shape[-1]); pack i is samples i*m, ..., i*m + m - 1
    in that order.

  Raises:
    ValueError: the batch is not divisible by `pack`.
  """
  batch = x.shape[0]
  if batch % pack:
    raise ValueError(f"a packed discriminator (pack={pack}) needs a batch divisible by {pack}, "
                     f"got {batch} samples")
  grouped = x.reshape(batch // pack, pack, *x.shape[1:])
  grouped = jnp.moveaxis(grouped, 1, -2)  # (batch / m, *shape[:-1], m, shape[-1])
  return grouped.reshape(batch // pack, *x.shape[1:-1], pack * x.shape[-1])


class Packed(nn.Module):
  """A discriminator applied to packs of `pack` samples (PacGAN).

  Attributes:
    inner: the discriminator that scores one pack, unconditional (`num_classes` 0 or absent);
      its parameters live under 'inner'.
    pack: samples per pack, m (1 gives the inner discriminator itself).
    axis_name: mapped axis over which the inner discriminator's batch statistics are averaged,
      passed on to it when it has such a field (so `train` synchronises it like any other).
  """
  inner: nn.Module
  pack: int = 2
  axis_name: str | None = None

  def __post_init__(self):
    if not isinstance(self.pack, int) or self.pack < 1:
      raise ValueError(f"pack must be a positive integer, got {self.pack!r}")
    num_classes = getattr(self.inner, "num_classes", 0)
    if num_classes:
      raise ValueError(f"PacGAN packing (pack={self.pack}) needs an unconditional discriminator, "
                       f"got {type(self.inner).__name__} with num_classes={num_classes}")
    inner_fields = {field.name for field in dataclasses.fields(self.inner)}
    if self.axis_name is not None and "axis_name" in inner_fields:
      object.__setattr__(self, "inner", self.inner.clone(axis_name=self.axis_name))
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Scores packs of samples.

    Args:
      x: samples of shape (batch, *shape), batch divisible by `pack` (at initialisation any batch:
        it is repeated `pack` times, since only the parameters' shapes are needed then).
      train: passed to the inner discriminator.

    Returns:
      Logits of shape (batch / pack,).
    """
    if self.is_initializing():
      x = jnp.concatenate([x] * self.pack)
    return self.inner(pack_samples(x, self.pack), train=train)
