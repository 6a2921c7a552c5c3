"""Flax Linen generators and discriminators, and the registry that configs name them by.

Every generator is called as `generator.apply(variables, z, train=...)` with z of shape
(batch, latent_dim) and returns samples of shape (batch, *data_shape); every discriminator is
called as `discriminator.apply(variables, x, train=...)` and returns float32 logits of shape
(batch,). Mutable state (BatchNorm statistics, spectral-norm vectors) lives in the
'batch_stats' collection.

Class-conditional networks. Every module of mlp, resnet and biggan has a field
`num_classes: int = 0`; with 0 it is the unconditional network (the same parameters, the same
numbers for the same key, as before conditioning existed). With num_classes = K > 0:
  - a generator is called as `apply(variables, z, labels, train=...)` (or `labels=`), labels
    int32 of shape (batch,) with values in [0, K); missing labels raise a one-line ValueError
    (an unconditional module given labels raises too);
  - a discriminator has the field `conditioning`, one of "projection", "acgan", "tac"
    (`conditional.CONDITIONINGS`), and is called as `apply(variables, x, labels, train=...)`:
    "projection" (labels required) returns float32 logits (batch,), psi(phi(x)) +
    <E[y], phi(x)>; "acgan" returns (logits, {"classes": (batch, K) float32}), a linear class
    head on the pooled features phi(x); "tac" returns (logits, {"classes": ..., "twin": ...}),
    two separate heads (TAC-GAN's twin classifier). The heads do not use the labels, which may
    be None.
The dcgan modules are unconditional only, and PacGAN packing (`pack > 1`) refuses a
conditional discriminator.

StyleGAN2 (`stylegan2`, the ADA code's networks): the generator is called as
`apply(variables, z, labels, train=..., keys=...)`, `keys` one raw PRNG key per example
(batch, 2) for its noise inputs and style mixing (its class attribute `takes_example_keys` is
True); its tracked average of w is 'w_avg' in 'batch_stats', updated when train=True. Its
discriminator's only conditioning is "projection" (the ADA code's label mapping network).

References:
  Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (mlp).
  Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep Convolutional
  Generative Adversarial Networks", ICLR 2016 (dcgan).
  Miyato, Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative Adversarial
  Networks", ICLR 2018 (resnet).
  Lin, Khetan, Fanti and Oh, "PacGAN: The power of two samples in generative adversarial
  networks", NeurIPS 2018 (packing: the discriminator keyword `pack`).
  Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018 (conditional resnet).
  Odena, Olah and Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs",
  ICML 2017, and Gong et al., "Twin Auxiliary Classifiers GAN", NeurIPS 2019 (acgan, tac).
  Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
  Synthesis", ICLR 2019 (biggan).
  Karras, Laine, Aittala, Hellsten, Lehtinen and Aila, "Analyzing and Improving the Image
  Quality of StyleGAN", CVPR 2020, and Karras et al., "Training Generative Adversarial Networks
  with Limited Data", NeurIPS 2020 (stylegan2).
"""
import collections.abc
import dataclasses
import types
import typing
from typing import Any

import flax.linen as nn
import numpy as np

from ganjax import errors
from ganjax.errors import ConfigError
from ganjax.models.biggan import BigGANDiscriminator, BigGANGenerator
from ganjax.models.conditional import CONDITIONINGS
from ganjax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganjax.models.layers import DTYPES, compute_dtype
from ganjax.models.mlp import MLPDiscriminator, MLPGenerator
from ganjax.models.packing import Packed
from ganjax.models.resnet import ResNetDiscriminator, ResNetGenerator
from ganjax.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

GENERATORS: dict[str, type[nn.Module]] = {
    "mlp": MLPGenerator,
    "dcgan": DCGANGenerator,
    "resnet": ResNetGenerator,
    "biggan": BigGANGenerator,
    "stylegan2": StyleGAN2Generator,
}
DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "mlp": MLPDiscriminator,
    "dcgan": DCGANDiscriminator,
    "resnet": ResNetDiscriminator,
    "biggan": BigGANDiscriminator,
    "stylegan2": StyleGAN2Discriminator,
}

_FLAX_FIELDS = ("parent", "name")
# The keywords `get_discriminator` takes besides the module's fields, with their types.
_DISCRIMINATOR_EXTRAS = {"pack": int}


def module_fields(module_class: type[nn.Module]) -> list[str]:
  """Returns the configurable field names of a Flax module class, sorted."""
  return sorted(field.name for field in dataclasses.fields(module_class)
                if field.name not in _FLAX_FIELDS)


def _fits(value: Any, annotation: Any) -> bool:
  """Whether `value` has the type `annotation`: int, float, bool, str, None, their unions, and
  sequences or tuples of them (a list passes for a tuple). Other annotations accept anything."""
  origin, args = typing.get_origin(annotation), typing.get_args(annotation)
  if annotation is type(None):
    return value is None
  if origin in (typing.Union, types.UnionType):
    return any(_fits(value, arg) for arg in args)
  if annotation in (bool, str):
    return isinstance(value, annotation)
  if annotation in (int, float):
    kinds = (int, np.integer) if annotation is int else (int, float, np.integer, np.floating)
    return isinstance(value, kinds) and not isinstance(value, bool)
  if origin in (tuple, collections.abc.Sequence):
    if not isinstance(value, (tuple, list)):
      return False
    if origin is tuple and args and args[-1] is not Ellipsis:
      return len(value) == len(args) and all(map(_fits, value, args))
    return not args or all(_fits(item, args[0]) for item in value)
  return True


def _type_name(annotation: Any) -> str:
  return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace(
      "typing.", "")


def _construct(module_class: type[nn.Module], *args: Any, **fields: Any) -> nn.Module:
  """`module_class(*args, **fields)`, the module's own checks of its fields' values raising
  ConfigError."""
  try:
    return module_class(*args, **fields)
  except ValueError as error:
    raise ConfigError(str(error)) from error


def _build(kind: str, registry: dict[str, type[nn.Module]], name: str, kwargs: dict[str, Any],
           extras: dict[str, Any] | None = None) -> nn.Module:
  extras = extras or {}
  module_class = errors.lookup(registry, name, kind)
  types_by_field = {**typing.get_type_hints(module_class), **extras}
  valid_fields = sorted([*module_fields(module_class), *extras])
  unknown = sorted(set(kwargs) - set(valid_fields))
  if unknown:
    raise ConfigError(
        f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
        f"{kind} {name!r} ({module_class.__name__}); valid fields: {', '.join(valid_fields)}")
  for field, value in kwargs.items():
    if not _fits(value, types_by_field[field]):
      raise ConfigError(f"field {field!r} of {kind} {name!r} must be "
                        f"{_type_name(types_by_field[field])}, got {value!r}")
  return _construct(module_class, **{k: v for k, v in kwargs.items() if k not in extras})


def get_generator(name: str, /, **kwargs: Any) -> nn.Module:
  """Builds the generator registered as `name`.

  Args:
    name: a key of `GENERATORS` (biggan, dcgan, mlp, resnet, stylegan2).
    **kwargs: fields of that module class.

  Returns:
    The unbound module.

  Raises:
    ConfigError: the name or a keyword is unknown, or a field's value has the wrong type or is
      invalid.
  """
  return _build("generator", GENERATORS, name, kwargs)


def get_discriminator(name: str, /, **kwargs: Any) -> nn.Module:
  """Builds the discriminator registered as `name`.

  Args:
    name: a key of `DISCRIMINATORS` (biggan, dcgan, mlp, resnet, stylegan2).
    **kwargs: fields of that module class, and `pack` (an int m, default 1): for m > 1 the
      discriminator scores packs of m samples (PacGAN; `Packed`).

  Returns:
    The unbound module.

  Raises:
    ConfigError: the name or a keyword is unknown, or a field's value has the wrong type or is
      invalid.
  """
  discriminator = _build("discriminator", DISCRIMINATORS, name, kwargs, _DISCRIMINATOR_EXTRAS)
  pack = kwargs.get("pack", 1)
  return discriminator if pack == 1 else _construct(Packed, discriminator, pack=pack)


__all__ = [
    "BigGANDiscriminator",
    "BigGANGenerator",
    "CONDITIONINGS",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DISCRIMINATORS",
    "DTYPES",
    "GENERATORS",
    "MLPDiscriminator",
    "MLPGenerator",
    "Packed",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "compute_dtype",
    "get_discriminator",
    "get_generator",
    "module_fields",
]
