"""Flax Linen generators and discriminators, and the registry that configs name them by.

Every generator is called as `generator.apply(variables, z, train=...)` with z of shape
(batch, latent_dim) and returns samples of shape (batch, *data_shape); every discriminator is
called as `discriminator.apply(variables, x, train=...)` and returns float32 logits of shape
(batch,). Mutable state (BatchNorm statistics, spectral-norm vectors) lives in the
'batch_stats' collection.

References:
  Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (mlp).
  Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep Convolutional
  Generative Adversarial Networks", ICLR 2016 (dcgan).
  Miyato, Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative Adversarial
  Networks", ICLR 2018 (resnet).
  Lin, Khetan, Fanti and Oh, "PacGAN: The power of two samples in generative adversarial
  networks", NeurIPS 2018 (packing: the discriminator keyword `pack`).
"""
import dataclasses
from typing import Any

import flax.linen as nn

from ganjax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganjax.models.mlp import MLPDiscriminator, MLPGenerator
from ganjax.models.packing import Packed
from ganjax.models.resnet import ResNetDiscriminator, ResNetGenerator

GENERATORS: dict[str, type[nn.Module]] = {
    "mlp": MLPGenerator,
    "dcgan": DCGANGenerator,
    "resnet": ResNetGenerator,
}
DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "mlp": MLPDiscriminator,
    "dcgan": DCGANDiscriminator,
    "resnet": ResNetDiscriminator,
}

_FLAX_FIELDS = ("parent", "name")


def module_fields(module_class: type[nn.Module]) -> list[str]:
  """Returns the configurable field names of a Flax module class, sorted."""
  return sorted(field.name for field in dataclasses.fields(module_class)
                if field.name not in _FLAX_FIELDS)


def _build(kind: str, registry: dict[str, type[nn.Module]], name: str, kwargs: dict[str, Any],
           extra_fields: tuple[str, ...] = ()) -> nn.Module:
  if name not in registry:
    raise ValueError(f"unknown {kind} {name!r}; valid names: {', '.join(sorted(registry))}")
  module_class = registry[name]
  valid_fields = sorted([*module_fields(module_class), *extra_fields])
  unknown = sorted(set(kwargs) - set(valid_fields))
  if unknown:
    raise ValueError(
        f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
        f"{kind} {name!r} ({module_class.__name__}); valid fields: {', '.join(valid_fields)}")
  return module_class(**{k: v for k, v in kwargs.items() if k not in extra_fields})


def get_generator(name: str, /, **kwargs: Any) -> nn.Module:
  """Builds the generator registered as `name`.

  Args:
    name: a key of `GENERATORS` (dcgan, mlp, resnet).
    **kwargs: fields of that module class.

  Returns:
    The unbound module.

  Raises:
    ValueError: the name or a keyword is unknown, or a field's value is invalid.
  """
  return _build("generator", GENERATORS, name, kwargs)


def get_discriminator(name: str, /, **kwargs: Any) -> nn.Module:
  """Builds the discriminator registered as `name`.

  Args:
    name: a key of `DISCRIMINATORS` (dcgan, mlp, resnet).
    **kwargs: fields of that module class, and `pack` (an int m, default 1): for m > 1 the
      discriminator scores packs of m samples (PacGAN; `Packed`).

  Returns:
    The unbound module.

  Raises:
    ValueError: the name or a keyword is unknown, or a field's value is invalid.
  """
  discriminator = _build("discriminator", DISCRIMINATORS, name, kwargs, extra_fields=("pack",))
  pack = kwargs.get("pack", 1)
  return discriminator if pack == 1 else Packed(discriminator, pack=pack)


__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DISCRIMINATORS",
    "GENERATORS",
    "MLPDiscriminator",
    "MLPGenerator",
    "Packed",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "get_discriminator",
    "get_generator",
    "module_fields",
]
