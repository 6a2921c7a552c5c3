"""The adversarial update: one state pytree and pure, jitted discriminator and generator steps.

`GANState` holds everything a step needs and everything a checkpoint must keep. The update is
written once, per device, as a pure function (`discriminator_update`, `generator_update`,
`adversarial_update`, `adversarial_scan`) that averages with `jax.lax.pmean` over a named axis
when it is given one. `d_step`, `g_step`, `train_step` and `train_steps` are those functions
jitted for one device; `parallelize` maps any of them over several devices with `jax.pmap` or
with `jax.shard_map` over a 1-D mesh, and `vmap_seeds` trains independent seeds side by side.

Randomness is a function of (seed, counter, player, global example index) only: each example's
latent vector and on-device data sample come from
`fold_in(fold_in(fold_in(key, counter), player), global_index)`, where the global index places
the example in the global batch (the device index times the local batch plus its position). The
same seed therefore gives the same numbers on one device or several, and after a resume.

Real data is either fed from the host (`batch` arrays) or, for toy distributions, sampled
inside the step on the device (`batch=None`, `GANSpec.data` set).

Labels. With `GANSpec.num_classes > 0` the players are class-conditional: a host batch is the
pair (images, int32 labels), on-device toy data is labelled by its mixture component, and each
fake example's label is drawn on the device from its own key, the key of its latent vector's
example folded with another stream (uniformly, or from `GANSpec.fake_label_weights`), so that
labels, like latents, do not depend on the device count or a resume. The generator is called as
`G(z, labels)` and the discriminator as `D(x, labels)`; a discriminator with a class head
(`conditioning='acgan'` or `'tac'`) returns `(logits, heads)`, and the auxiliary classification
losses of `ganjax.losses` are added with `GANSpec.classifier_weight`. With `num_classes == 0`
none of this runs: the update is the unconditional one, number for number.

Little data. With `GANSpec.augment` the discriminator sees its real and fake inputs augmented
(`ganjax.augment`) in its own update and the fakes in the generator's, whose gradient flows
through the augmentation; each example's transforms come from its own key, folded with its
global index like its latent vector. ADA's controller (`GANState.ada`: p, adjusted from the sign
of D on the augmented reals), LeCam's moving averages (`GANState.lecam`), consistency
regularisation and lazy penalties (`GANSpec.penalty_every`) are parts of the discriminator's
update; with none of them set, the update is the plain one, number for number.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ganjax import augment
from ganjax import compilation
from ganjax import errors
from ganjax import losses
from ganjax import models
from ganjax import regularizers
from ganjax.data import toy
from ganjax.errors import ConfigError

AXIS_NAME = "batch"
PARALLEL_MODES = ("none", "pmap", "shard_map")
# How every update here is jitted (`ganjax.compilation`); the names stay here for callers.
jit = compilation.jit

# Streams folded into the step key, one per use of randomness.
_GENERATOR_STREAM, _DISCRIMINATOR_STREAM = 0, 1
_NOISE, _REAL, _PENALTY, _LABEL = 0, 1, 2, 3
# Streams of the augmentations: of D's real and fake inputs (and of the penalty's inputs), and the
# consistency regularisation's own transforms of reals and fakes.
_AUGMENT_REAL, _AUGMENT_FAKE, _AUGMENT_PENALTY, _CONSISTENCY_REAL, _CONSISTENCY_FAKE = 4, 5, 6, 7, 8
# Streams of a style-based generator's per-example keys (its noise inputs and style mixing) and of
# the path-length regularisation's latents, keys and image-space directions.
_SYNTHESIS, _PATH_LENGTH = 9, 10
# The key from which `generate` derives a style-based generator's noise for each latent vector.
_SAMPLE_NOISE = 0x401CE

Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class GANSpec:
  """The static part of a GAN's training set-up: what the step functions compile against.

  Attributes:
    loss: a name from `ganjax.losses.OBJECTIVES`.
    latent_dim: size of the latent vector z ~ N(0, I).
    batch_size: global batch size of generated samples (and of on-device real samples).
    penalty: a name from `ganjax.regularizers` ('gradient_penalty', 'r1', 'r2', 'dragan') or None.
    penalty_weight: the factor in front of the penalty in the discriminator's loss. For R1/R2 this
      is gamma / 2 in the notation of Mescheder et al. 2018.
    n_critic: discriminator updates per generator update.
    critic_warmup_steps: for the first this many generator updates (and every
      `critic_warmup_every` updates after, if set), run `critic_warmup_n` discriminator updates
      instead (the WGAN schedule: 100 for the first 25 and every 500th, Arjovsky et al. 2017).
    critic_warmup_n: discriminator updates per generator update during warm-up.
    critic_warmup_every: period of the extra warm-up steps (0: none after the first ones).
    ema_decay: decay of the exponential moving average of the generator's parameters
      (0 disables it; Karras et al. 2018, Yazici et al. 2019).
    reuse_fakes: in `adversarial_update`, the generator update uses the fakes of the last
      discriminator update (one generator forward pass per step, differentiated once, as in
      PyTorch's DCGAN example) instead of a fresh batch of latents. The generator's parameters
      are the same in both, so the two choices follow the same expected gradient; the numbers
      differ. `g_step` alone always draws fresh latents.
    data: a toy distribution sampled on the device, or None when batches come from the host.
    num_classes: number of classes of a class-conditional GAN (0: unconditional).
    fake_label_weights: the probabilities of the fake examples' labels (the data's class
      frequencies), or None for uniform labels.
    classifier: the auxiliary classification loss of a discriminator with a class head: '' (none),
      'acgan' (Odena et al. 2017) or 'tac' (Gong et al. 2019), from `ganjax.losses.CLASSIFIERS`.
    classifier_weight: its factor in both players' losses.
    orthogonal_weight: the weight of the orthogonal regularisation of the generator's parameters
      (`ganjax.regularizers.orthogonal_penalty`; BigGAN, Brock et al. 2019: 1e-4; 0: off).
    penalty_every: lazy regularisation (StyleGAN2): the penalty is taken every this many
      discriminator updates, as an extra optimizer step with its weight multiplied by it (the
      optimizer's correction, `regularizers.lazy_optimizer_correction`, is the caller's); 1: in
      every update's loss.
    augment: a policy of `ganjax.augment` ('' : none) applied to the discriminator's real and fake
      inputs in its update and to the fakes in the generator's (the gradient flows through it to
      G): DiffAugment's 'color,translation,cutout', ADA's 'bgc', ...
    augment_p: the probability with which each of its transforms is applied to an example (the
      starting value when `ada_target` is set).
    ada_target: ADA's target for r_t = E[sign(D(x))] on the augmented reals (0: p stays
      `augment_p`; the paper: 0.6). Every `ada_interval` discriminator updates p moves by
      sign(r_t - target) * batch_size * ada_interval / ada_speed, within [0, 1].
    ada_speed: the number of real images over which p can go from 0 to 1 (the paper: 500k).
    ada_interval: discriminator updates between adjustments of p (the paper's code: 4).
    cr_real, cr_fake: weights of the consistency regularisation of D on reals (CR) and on fakes
      (with cr_real: balanced CR), `regularizers.consistency_penalty`, under the transforms of
      `cr_policy` (applied with probability 1).
    lecam_weight: the weight of LeCam regularisation (`regularizers.lecam_penalty`; 0: off), with
      its averages' decay `lecam_decay`.
    ema_kimg: the EMA generator's half-life in thousands of generated images (StyleGAN2: 10; the
      ADA code's CIFAR configuration: 500): the decay at step t is 0.5 ** (batch_size / h) with
      h = 1000 * ema_kimg, or, with `ema_rampup` r > 0, h = min(1000 * ema_kimg, r * t *
      batch_size). 0: `ema_decay` is the decay.
    ema_rampup: see `ema_kimg` (the ADA code: 0.05 for CIFAR-10; 0: none).
    path_length_weight: the weight of StyleGAN2's path-length regularisation of a style-based
      generator (`regularizers.path_length_penalty`; the paper: 2; 0: off), taken lazily: every
      `path_length_every` generator updates, an extra optimizer step on `path_length_every`
      times the weighted penalty (the generator's optimizer correction is the caller's), on
      batch_size / `path_length_shrink` latents, with the running mean length decayed by
      `path_length_decay` (kept in `GANState.path_length`).
  """
  loss: str = "non_saturating"
  latent_dim: int = 128
  batch_size: int = 64
  penalty: str | None = None
  penalty_weight: float = 0.0
  n_critic: int = 1
  critic_warmup_steps: int = 0
  critic_warmup_n: int = 100
  critic_warmup_every: int = 0
  ema_decay: float = 0.0
  reuse_fakes: bool = False
  data: toy.GaussianMixture | None = None
  num_classes: int = 0
  fake_label_weights: tuple[float, ...] | None = None
  classifier: str = ""
  classifier_weight: float = 1.0
  orthogonal_weight: float = 0.0
  penalty_every: int = 1
  augment: str = ""
  augment_p: float = 0.0
  ada_target: float = 0.0
  ada_speed: float = 500_000.0
  ada_interval: int = 4
  cr_real: float = 0.0
  cr_fake: float = 0.0
  cr_policy: str = "xflip,translation"
  lecam_weight: float = 0.0
  lecam_decay: float = 0.99
  ema_kimg: float = 0.0
  ema_rampup: float = 0.0
  path_length_weight: float = 0.0
  path_length_decay: float = 0.01
  path_length_shrink: int = 2
  path_length_every: int = 4

  def __post_init__(self):
    losses.get(self.loss)
    if self.penalty is not None:
      regularizers.get(self.penalty)
    if self.n_critic < 1:
      raise ConfigError(f"n_critic must be at least 1, got {self.n_critic}")
    if not 0.0 <= self.ema_decay < 1.0:
      raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
    if self.num_classes < 0:
      raise ConfigError(f"num_classes must be >= 0, got {self.num_classes}")
    if self.classifier:
      errors.lookup(losses.CLASSIFIERS, self.classifier, "auxiliary classifier loss")
      if not self.num_classes:
        raise ConfigError(f"the auxiliary classifier {self.classifier!r} needs a class-"
                          "conditional run (num_classes > 0)")
    regularizers.lazy_optimizer_correction(self.penalty_every)
    if self.penalty_every > 1 and self.penalty is None:
      raise ConfigError(f"penalty.every={self.penalty_every} needs a penalty (penalty.name)")
    augment.parse(self.augment)
    augment.parse(self.cr_policy, "regularizer.cr_policy")
    if not 0.0 <= self.augment_p <= 1.0:
      raise ConfigError(f"augment.p must be in [0, 1], got {self.augment_p}")
    if self.augment and self.augment_p == 0.0 and self.ada_target == 0.0:
      raise ConfigError(f"augment.policy {self.augment!r} with augment.p 0 and no augment.target "
                        "changes nothing: set augment.p (1 for DiffAugment) or augment.target "
                        "(0.6 for ADA)")
    if self.ada_target and not self.augment:
      raise ConfigError("augment.target (ADA) needs augment.policy (ADA's: 'bgc')")
    if not -1.0 <= self.ada_target < 1.0 or self.ada_speed <= 0 or self.ada_interval < 1:
      raise ConfigError(f"ADA needs augment.target in [-1, 1), augment.speed > 0 and "
                        f"augment.interval >= 1, got {self.ada_target}, {self.ada_speed}, "
                        f"{self.ada_interval}")
    if min(self.cr_real, self.cr_fake, self.lecam_weight) < 0 or not 0 <= self.lecam_decay < 1:
      raise ConfigError("regularizer.cr_real, cr_fake and lecam must be >= 0 and lecam_decay in "
                        f"[0, 1), got {self.cr_real}, {self.cr_fake}, {self.lecam_weight}, "
                        f"{self.lecam_decay}")
    if self.ema_kimg < 0 or self.ema_rampup < 0:
      raise ConfigError(f"train.ema_kimg and train.ema_rampup must be >= 0, got {self.ema_kimg}, "
                        f"{self.ema_rampup}")
    if self.path_length_weight < 0 or not 0 < self.path_length_decay <= 1:
      raise ConfigError("regularizer.path_length must be >= 0 and path_length_decay in (0, 1], "
                        f"got {self.path_length_weight}, {self.path_length_decay}")
    regularizers.lazy_optimizer_correction(self.path_length_every,
                                           "regularizer.path_length_every")
    if self.path_length_weight and (self.path_length_shrink < 1
                                    or self.batch_size % self.path_length_shrink):
      raise ConfigError(f"regularizer.path_length_shrink must divide the batch size "
                        f"{self.batch_size}, got {self.path_length_shrink}")
    weights = self.fake_label_weights
    if weights is not None and (len(weights) != self.num_classes or min(weights) < 0
                                or not np.isclose(sum(weights), 1.0)):
      raise ConfigError(f"fake_label_weights must be {self.num_classes} non-negative numbers "
                        f"summing to 1, got {weights}")


class GANState(struct.PyTreeNode):
  """Both players' parameters, optimizer states and Flax collections, the EMA generator, the
  counters and the key: everything needed to continue training. Static fields (the modules,
  optimizers and `spec`) are rebuilt from the config, not saved.

  Attributes:
    step: number of generator updates so far (the training step).
    d_updates: number of discriminator updates so far.
    key: the run's PRNG key (raw uint32 key data), never split: steps fold counters into it.
    g_params, d_params: the players' parameters.
    g_opt_state, d_opt_state: their optimizer states.
    g_collections, d_collections: Flax collections ('batch_stats': batch-norm statistics and
      spectral-norm power-iteration vectors).
    ema_g_params: exponential moving average of g_params, or None when disabled.
    ada: ADA's controller, {'p': the augmentation probability, 'signs': the sum of the mean
      sign(D(x)) of the updates since the last adjustment, 'count': their number}, or None when p
      is fixed (`GANSpec.ada_target` 0).
    lecam: LeCam's moving averages of the mean D(x) and D(G(z)) (not debiased), {'real', 'fake'},
      or None when LeCam regularisation is off.
    path_length: the path-length regularisation's running mean length, {'mean'}, or None when it
      is off.
  """
  step: jax.Array
  d_updates: jax.Array
  key: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  g_collections: Any
  d_collections: Any
  ema_g_params: Any
  ada: Any
  lecam: Any
  path_length: Any
  generator: nn.Module = struct.field(pytree_node=False)
  discriminator: nn.Module = struct.field(pytree_node=False)
  g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  spec: GANSpec = struct.field(pytree_node=False)


# ----------------------------------------------------------------------------- construction


def create_state(generator: nn.Module, discriminator: nn.Module, g_tx: optax.GradientTransformation,
                 d_tx: optax.GradientTransformation, spec: GANSpec, data_shape: tuple[int, ...],
                 seed: int | jax.Array = 0) -> GANState:
  """Initialises both players for samples of shape `data_shape` (one example, no batch axis).

  Pure in `seed` (an int or a traced scalar), so it can be vmapped over seeds or evaluated with
  `jax.eval_shape` to get the abstract state a checkpoint is restored into.
  """
  key = (generator, discriminator, g_tx, d_tx, spec, tuple(data_shape))
  try:
    initialise = _initialiser(*key)
  except TypeError:  # An unhashable module or optimizer: build without the cache.
    initialise = _initialiser.__wrapped__(*key)
  return initialise(seed)


@functools.lru_cache(maxsize=32)
def _initialiser(generator, discriminator, g_tx, d_tx, spec, data_shape) -> Callable:
  """The jitted seed -> GANState function of `create_state`, built once per set of players,
  optimizers and spec (equal Flax modules and specs compare equal), so that creating states
  for many seeds or runs compiles it once."""
  z = jax.ShapeDtypeStruct((2, spec.latent_dim), jnp.float32)
  labels = _init_labels(spec)
  generator_args = (lambda z: (z,)) if labels is None else (lambda z: (z, labels))
  fake = jax.eval_shape(lambda z: generator.apply(
      generator.init(jax.random.PRNGKey(0), *generator_args(z), train=False),
      *generator_args(z), train=False), z)
  if fake.shape[1:] != tuple(data_shape):
    raise ConfigError(f"the generator makes samples of shape {fake.shape[1:]}, but the data has "
                     f"shape {tuple(data_shape)}; give the generator and the discriminator the "
                     f"data's shape (model.generator_kwargs, model.discriminator_kwargs)")
  d_inputs = (jax.ShapeDtypeStruct((2, *data_shape), jnp.float32),)
  # The output at initialisation (where a packed discriminator takes any batch).
  d_output = jax.eval_shape(lambda x: discriminator.init_with_output(
      jax.random.PRNGKey(0), *_with_labels(x, labels), train=False)[0], *d_inputs)
  _check_heads(spec, split_output(d_output)[1])
  if spec.path_length_weight and not style_based(generator):
    raise ConfigError("regularizer.path_length needs a style-based generator (a mapping network "
                      f"and a synthesis network: stylegan2), not {type(generator).__name__}")

  @jax.jit
  def initialise(seed):
    key = jax.random.PRNGKey(seed)
    g_key, d_key = jax.random.split(jax.random.fold_in(key, 0x5EED))
    g_params, g_collections = _split_params(
        generator.init(g_key, *generator_args(jnp.zeros(z.shape)), train=False))
    d_args = (jnp.zeros((2, *data_shape)),) + (() if labels is None else (labels,))
    d_params, d_collections = _split_params(discriminator.init(d_key, *d_args, train=False))
    return GANState(
        step=jnp.zeros((), jnp.int32),
        d_updates=jnp.zeros((), jnp.int32),
        key=key,
        g_params=g_params,
        d_params=d_params,
        g_opt_state=g_tx.init(g_params),
        d_opt_state=d_tx.init(d_params),
        g_collections=g_collections,
        d_collections=d_collections,
        ema_g_params=(jax.tree.map(lambda x: jnp.array(x, copy=True), g_params)
                      if spec.ema_decay > 0 or spec.ema_kimg > 0 else None),
        ada=({"p": jnp.asarray(spec.augment_p, jnp.float32),
              "signs": jnp.zeros((), jnp.float32), "count": jnp.zeros((), jnp.int32)}
             if spec.ada_target else None),
        lecam=({"real": jnp.zeros((), jnp.float32), "fake": jnp.zeros((), jnp.float32)}
               if spec.lecam_weight else None),
        path_length=({"mean": jnp.zeros((), jnp.float32)} if spec.path_length_weight else None),
        generator=generator,
        discriminator=discriminator,
        g_tx=g_tx,
        d_tx=d_tx,
        spec=spec,
    )

  return initialise


def _init_labels(spec: GANSpec) -> jax.Array | None:
  """The labels the players are initialised with (None for an unconditional GAN)."""
  return np.zeros((2,), np.int32) if spec.num_classes else None


def _check_heads(spec: GANSpec, heads: Mapping[str, Any]) -> None:
  """The discriminator's class heads fit the spec's auxiliary classifier loss."""
  needed = losses.CLASSIFIERS[spec.classifier].heads if spec.classifier else ()
  if set(heads) != set(needed):
    have = ", ".join(sorted(heads)) or "none"
    raise ConfigError(f"the discriminator's class heads ({have}) do not fit the auxiliary "
                      f"classifier loss {spec.classifier or 'none'!r}, which needs "
                      f"{', '.join(needed) or 'none'}: set the discriminator's conditioning "
                      "and the classifier together")


def _split_params(variables: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
  variables = dict(variables)
  params = variables.pop("params")
  return params, variables


# ----------------------------------------------------------------------------- the update


def _with_axis(module: nn.Module, axis_name: str | None) -> nn.Module:
  """The module with batch statistics synchronised over `axis_name` (modules without batch
  norm have no `axis_name` field and are returned unchanged)."""
  if axis_name is None or "axis_name" not in {f.name for f in dataclasses.fields(module)}:
    return module
  return module.clone(axis_name=axis_name)


def _shard_index(axis_name: str | None) -> jax.Array:
  return jnp.zeros((), jnp.int32) if axis_name is None else jax.lax.axis_index(axis_name)


def _pmean(tree, axis_name: str | None):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def _per_example(key: jax.Array, local_batch: int, axis_name: str | None,
                 draw: Callable[[jax.Array], jax.Array]) -> jax.Array:
  """Draws one value per example of this device's slice of the global batch, each from a key
  folded with the example's global index, so that the draw does not depend on the device count."""
  first = _shard_index(axis_name) * local_batch
  keys = jax.vmap(jax.random.fold_in, (None, 0))(key, first + jnp.arange(local_batch))
  return jax.vmap(draw)(keys)


def _local_batch(spec: GANSpec, num_shards: int) -> int:
  if spec.batch_size % num_shards:
    raise ValueError(f"batch size {spec.batch_size} is not divisible by {num_shards} devices")
  return spec.batch_size // num_shards


def _draw_latents(spec: GANSpec, key: jax.Array, local_batch: int, axis_name) -> jax.Array:
  return _per_example(jax.random.fold_in(key, _NOISE), local_batch, axis_name,
                      lambda k: jax.random.normal(k, (spec.latent_dim,)))


def _latents(state: GANState, key: jax.Array, axis_name, num_shards) -> jax.Array:
  return _draw_latents(state.spec, key, _local_batch(state.spec, num_shards), axis_name)


def _draw_fake_labels(spec: GANSpec, key: jax.Array, local_batch: int, axis_name
                      ) -> jax.Array | None:
  """Each of `local_batch` fake examples' label, drawn from its own key (uniformly, or with
  `spec.fake_label_weights`); None for an unconditional GAN."""
  if not spec.num_classes:
    return None
  if spec.fake_label_weights is None:
    draw = lambda k: jax.random.randint(k, (), 0, spec.num_classes)
  else:
    weights = jnp.asarray(spec.fake_label_weights, jnp.float32)
    draw = lambda k: jax.random.choice(k, spec.num_classes, p=weights)
  labels = _per_example(jax.random.fold_in(key, _LABEL), local_batch, axis_name, draw)
  return labels.astype(jnp.int32)


def _fake_labels(state: GANState, key: jax.Array, axis_name, num_shards) -> jax.Array | None:
  return _draw_fake_labels(state.spec, key, _local_batch(state.spec, num_shards), axis_name)


def _real_batch(state: GANState, batch, key, axis_name, num_shards
                ) -> tuple[jax.Array, jax.Array | None]:
  """(real examples, their labels): the host's batch (an array, or an (images, labels) pair), or
  samples of the on-device distribution. The labels are None for an unconditional GAN."""
  conditional = bool(state.spec.num_classes)
  if batch is not None:
    if isinstance(batch, (tuple, list)):
      images, labels = batch
      return images, (labels if conditional else None)
    if conditional:
      raise ValueError("a class-conditional GAN needs (images, labels) batches of real data")
    return batch, None
  if state.spec.data is None:
    raise ValueError("no batch was given and the spec has no on-device data distribution")
  draw = state.spec.data.sample_one_with_label if conditional else state.spec.data.sample_one
  real = _per_example(jax.random.fold_in(key, _REAL), _local_batch(state.spec, num_shards),
                      axis_name, draw)
  return real if conditional else (real, None)


def _with_labels(x: jax.Array, labels: jax.Array | None) -> tuple[jax.Array, ...]:
  """The players' positional arguments: (x,) or (x, labels)."""
  return (x,) if labels is None else (x, labels)


def style_based(generator: nn.Module) -> bool:
  """Whether `generator` is style-based (StyleGAN2's): it has `mapping` and `synthesis` methods
  and takes per-example keys (`keys=`, raw uint32 keys of shape (batch, 2)) for its noise inputs
  and style mixing."""
  return getattr(generator, "takes_example_keys", False)


def _example_keys(key: jax.Array, local_batch: int, axis_name: str | None) -> jax.Array:
  """One raw key per example of this device's slice of the batch, each folded with the
  example's global index: a style-based generator's noise and mixing keys."""
  return _per_example(jax.random.fold_in(key, _SYNTHESIS), local_batch, axis_name, lambda k: k)


def _generate(state: GANState, g_params, z, labels, axis_name, key):
  """(G(z, labels), G's updated collections) in training mode; a style-based generator gets
  per-example keys from `key` (`_example_keys`). The images are float32 whatever the generator's
  compute dtype, so that the discriminator's inputs, the losses and the penalties' input
  gradients are float32 (a bfloat16 discriminator casts its inputs itself)."""
  generator = _with_axis(state.generator, axis_name)
  keys = ({"keys": _example_keys(key, z.shape[0], axis_name)} if style_based(generator)
          else {})
  fake, updates = generator.apply({"params": g_params, **state.g_collections},
                                  *_with_labels(z, labels), train=True,
                                  mutable=list(state.g_collections), **keys)
  return fake.astype(jnp.float32), dict(updates)


def split_output(output) -> tuple[jax.Array, dict[str, jax.Array]]:
  """A discriminator's output as (logits, class heads): a discriminator with class heads returns
  (logits, {'classes': ..., 'twin': ...}), any other its logits alone (no heads)."""
  if isinstance(output, tuple):
    logits, heads = output
    return logits, dict(heads)
  return output, {}


def _discriminate(state: GANState, d_params, d_collections, x, labels, axis_name):
  """(logits, class heads, updated collections) of the discriminator on `x`."""
  discriminator = _with_axis(state.discriminator, axis_name)
  output, updates = discriminator.apply({"params": d_params, **d_collections},
                                        *_with_labels(x, labels), train=True,
                                        mutable=list(d_collections))
  logits, heads = split_output(output)
  return logits, heads, dict(updates)


def _mean_output(logits: jax.Array, objective: losses.Objective) -> jax.Array:
  """Mean D(x) as a probability where the objective has one, else the mean raw output."""
  return jnp.mean(jax.nn.sigmoid(logits) if objective.probability_outputs else logits)


def _penalty(state: GANState, d_params, d_collections, real, fake, key, axis_name):
  """The discriminator's penalty on (real, fake) = ((x, y), (G(z), y')): the input gradients are
  taken at fixed labels, the real ones for every penalty but R2 (which is taken on fakes). With
  augmentation, D sees its inputs augmented (a draw of their own) and the gradient is taken with
  respect to the images before it, through the augmentation, as in StyleGAN2-ADA."""
  (real, real_labels), (fake, fake_labels) = real, fake
  labels = fake_labels if state.spec.penalty == "r2" else real_labels
  augment_key = jax.random.fold_in(key, _AUGMENT_PENALTY)

  def disc_fn(x):
    # The penalty's forward pass must not move the collections: its updates are dropped.
    x = _augment(state, x, augment_key, axis_name)
    return _discriminate(state, d_params, d_collections, x, labels, axis_name)[0]

  return regularizers.penalty(state.spec.penalty)(disc_fn, real, fake, key)


def augment_probability(state: GANState) -> jax.Array | float:
  """The probability p of each augmentation: ADA's, from the state, or the spec's fixed one."""
  return state.spec.augment_p if state.ada is None else state.ada["p"]


def _augment(state: GANState, x, key, axis_name, policy: str | None = None, p=None):
  """`x` (this device's slice of the global batch) augmented with `policy` (the spec's
  `augment` by default) at probability `p` (`augment_probability` by default), each example
  from `key` folded with its global index; `x` itself when the policy is empty."""
  policy = state.spec.augment if policy is None else policy
  if not policy:
    return x
  p = augment_probability(state) if p is None else p
  first = _shard_index(axis_name) * x.shape[0]
  return augment.apply(policy, x, key, p, first_index=first)


def _consistency(state: GANState, d_params, collections, x, labels, logits, key, axis_name):
  """CR's penalty ||D(T(x)) - D(x)||^2 on `x` (with its `logits` D(x)), T from the spec's
  `cr_policy` at probability 1, and D's collections after the extra pass."""
  transformed = _augment(state, x, key, axis_name, state.spec.cr_policy, 1.0)
  transformed_logits, _, collections = _discriminate(state, d_params, collections, transformed,
                                                     labels, axis_name)
  return regularizers.consistency_penalty(logits, transformed_logits), collections


def _lecam(state: GANState, real_logits, fake_logits, axis_name) -> tuple[jax.Array, Any]:
  """LeCam's penalty on this update's outputs, with its averages first updated with this
  batch's mean outputs (over the devices), and the averages to keep."""
  count = state.d_updates + 1
  means = _pmean(jax.lax.stop_gradient(jnp.stack([jnp.mean(real_logits),
                                                  jnp.mean(fake_logits)])), axis_name)
  kept, debiased = {}, {}
  for index, side in enumerate(("real", "fake")):
    kept[side], debiased[side] = regularizers.ema_update(state.lecam[side], means[index],
                                                         state.spec.lecam_decay, count)
  penalty = regularizers.lecam_penalty(real_logits, fake_logits, debiased["real"],
                                       debiased["fake"])
  return penalty, kept


def _ada_adjust(state: GANState, real_sign: jax.Array) -> tuple[Any, Metrics]:
  """ADA's controller after one discriminator update whose augmented reals had mean sign(D(x))
  `real_sign` (averaged over the devices): the new controller state and its metrics, ada_p (p
  after this update) and ada_rt (r_t over the updates since the last adjustment)."""
  spec, ada = state.spec, state.ada
  signs, count = ada["signs"] + real_sign, ada["count"] + 1
  r_t = signs / count
  adjust = count >= spec.ada_interval
  step = jnp.sign(r_t - spec.ada_target) * (spec.batch_size * spec.ada_interval / spec.ada_speed)
  p = jnp.where(adjust, jnp.clip(ada["p"] + step, 0.0, 1.0), ada["p"])
  ada = {"p": p.astype(jnp.float32), "signs": jnp.where(adjust, 0.0, signs),
         "count": jnp.where(adjust, 0, count).astype(jnp.int32)}
  return ada, {"ada_p": ada["p"], "ada_rt": r_t}


def _classifier(spec: GANSpec) -> losses.Classifier | None:
  return losses.CLASSIFIERS[spec.classifier] if spec.classifier else None


def discriminator_update(state: GANState, batch=None, *, axis_name: str | None = None,
                         num_shards: int = 1) -> tuple[GANState, Metrics]:
  """One discriminator update, per device (pure; `d_step` is this function jitted).

  Args:
    state: the training state (replicated when mapped).
    batch: this device's real examples, shape (local_batch, ...) (with labels, the pair
      (examples, int32 labels of shape (local_batch,))), or None to sample them from
      `state.spec.data` on the device.
    axis_name: the mapped device axis to average over, or None on one device.
    num_shards: number of devices along `axis_name`.

  Returns:
    The updated state and metrics: d_loss (the objective), d_penalty (unweighted), d_classifier
    (the auxiliary classification loss, unweighted, with an ACGAN/TAC head), d_total, d_real and
    d_fake (mean D(x), D(G(z))), d_grad_norm, d_param_norm.
  """
  key = _discriminator_key(state)
  real = _real_batch(state, batch, key, axis_name, num_shards)
  z = _latents(state, key, axis_name, num_shards)
  fake_labels = _fake_labels(state, key, axis_name, num_shards)
  fake, g_collections = _generate(state, state.g_params, z, fake_labels, axis_name, key)
  return _discriminator_update_on_fakes(state, real, (fake, fake_labels), g_collections, key,
                                        axis_name)


def _discriminator_key(state: GANState) -> jax.Array:
  return jax.random.fold_in(jax.random.fold_in(state.key, state.d_updates), _DISCRIMINATOR_STREAM)


def _discriminator_update_on_fakes(state: GANState, real, fake, g_collections, key, axis_name
                                   ) -> tuple[GANState, Metrics]:
  """The discriminator update on given real and fake (examples, labels) pairs (the fakes are not
  differentiated)."""
  spec = state.spec
  objective = losses.get(spec.loss)
  classifier = _classifier(spec)
  (real_x, real_labels), (fake_x, fake_labels) = real, fake
  fake_x = jax.lax.stop_gradient(fake_x)
  real_seen = _augment(state, real_x, jax.random.fold_in(key, _AUGMENT_REAL), axis_name)
  fake_seen = _augment(state, fake_x, jax.random.fold_in(key, _AUGMENT_FAKE), axis_name)

  def loss_fn(d_params):
    real_logits, real_heads, collections = _discriminate(state, d_params, state.d_collections,
                                                         real_seen, real_labels, axis_name)
    fake_logits, fake_heads, collections = _discriminate(state, d_params, collections, fake_seen,
                                                         fake_labels, axis_name)
    loss = objective.discriminator(real_logits, fake_logits)
    metrics = {"d_loss": loss, "d_real": _mean_output(real_logits, objective),
               "d_fake": _mean_output(fake_logits, objective)}
    total = loss
    extra = {}
    if state.ada is not None:
      extra["real_sign"] = _pmean(jnp.mean(jnp.sign(jax.lax.stop_gradient(real_logits))),
                                  axis_name)
    if state.lecam is not None:
      lecam, extra["lecam"] = _lecam(state, real_logits, fake_logits, axis_name)
      metrics["d_lecam"] = lecam
      total = total + spec.lecam_weight * lecam
    sides = (("real", spec.cr_real, real_seen, real_labels, real_logits, _CONSISTENCY_REAL),
             ("fake", spec.cr_fake, fake_seen, fake_labels, fake_logits, _CONSISTENCY_FAKE))
    for side, weight, x, labels, logits, stream in sides:
      if weight:
        consistency, collections = _consistency(state, d_params, collections, x, labels, logits,
                                                jax.random.fold_in(key, stream), axis_name)
        metrics[f"d_cr_{side}"] = consistency
        total = total + weight * consistency
    if spec.penalty is not None and spec.penalty_every == 1:
      penalty = _penalty(state, d_params, collections, (real_x, real_labels),
                         (fake_x, fake_labels), jax.random.fold_in(key, _PENALTY), axis_name)
      metrics["d_penalty"] = penalty
      total = total + spec.penalty_weight * penalty
    if classifier is not None:
      class_loss = classifier.discriminator(real_heads, real_labels, fake_heads, fake_labels)
      metrics["d_classifier"] = class_loss
      metrics["d_class_accuracy"] = jnp.mean(
          jnp.argmax(real_heads["classes"], -1) == real_labels)
      total = total + spec.classifier_weight * class_loss
    metrics["d_total"] = total
    return total, (metrics, collections, extra)

  grads, (metrics, d_collections, extra) = jax.grad(loss_fn, has_aux=True)(state.d_params)
  grads, d_params, d_opt_state = _discriminator_optimizer_step(state, grads, axis_name)
  metrics.update(d_grad_norm=optax.tree.norm(grads), d_param_norm=optax.tree.norm(d_params))
  ada, lecam = state.ada, extra.get("lecam", state.lecam)
  if ada is not None:
    ada, ada_metrics = _ada_adjust(state, extra["real_sign"])
    metrics.update(ada_metrics)
  lazy_update = state.d_updates
  state = state.replace(d_params=d_params, d_opt_state=d_opt_state, d_updates=state.d_updates + 1,
                        g_collections=g_collections, d_collections=d_collections, ada=ada,
                        lecam=lecam)
  if spec.penalty is not None and spec.penalty_every > 1:
    state, metrics["d_penalty"] = _lazy_penalty_update(state, lazy_update, real, (fake_x,
                                                                                  fake_labels),
                                                       key, axis_name)
  return state, _pmean(metrics, axis_name)


def _optimizer_step(tx: optax.GradientTransformation, opt_state, params, grads, axis_name):
  """A player's gradient averaged over the devices, and its parameters and optimizer state after
  one step of `tx` with it: (grads, params, opt_state)."""
  grads = _pmean(grads, axis_name)
  updates, opt_state = tx.update(grads, opt_state, params)
  return grads, optax.apply_updates(params, updates), opt_state


def _discriminator_optimizer_step(state: GANState, grads, axis_name):
  """`_optimizer_step` of the discriminator: (grads, d_params, d_opt_state)."""
  return _optimizer_step(state.d_tx, state.d_opt_state, state.d_params, grads, axis_name)


def _generator_optimizer_step(state: GANState, grads, axis_name) -> tuple[jax.Array, GANState]:
  """`_optimizer_step` of the generator: (grads, the state with its parameters and optimizer
  state after the step)."""
  grads, g_params, g_opt_state = _optimizer_step(state.g_tx, state.g_opt_state, state.g_params,
                                                 grads, axis_name)
  return grads, state.replace(g_params=g_params, g_opt_state=g_opt_state)


def _lazily(update_index, every: int, regularise: Callable, state: GANState
            ) -> tuple[GANState, jax.Array]:
  """`regularise(state)` -> (state, k * penalty) on every `every`-th update (`update_index` %
  k == 0), else (state, 0): lazy regularisation (Karras et al. 2020, StyleGAN2 section 3.1).
  Over any k consecutive updates the mean of the second output is the penalty's, what the eager
  penalty's mean would be."""
  return jax.lax.cond(update_index % every == 0, regularise,
                      lambda state: (state, jnp.zeros((), jnp.float32)), state)


def _lazy_penalty_update(state: GANState, update_index, real, fake, key, axis_name
                         ) -> tuple[GANState, jax.Array]:
  """The discriminator's lazy penalty (`_lazily`): on every `penalty_every`-th discriminator
  update an extra optimizer step on k * weight * penalty alone, on the same real and fake
  examples; nothing on the others.

  Returns:
    The state and k * penalty on a regularised update, 0 on the others.
  """
  spec = state.spec
  every = spec.penalty_every

  def regularise(state):
    def loss_fn(d_params):
      penalty = _penalty(state, d_params, state.d_collections, real, fake,
                         jax.random.fold_in(key, _PENALTY), axis_name)
      return every * spec.penalty_weight * penalty, penalty

    grads, penalty = jax.grad(loss_fn, has_aux=True)(state.d_params)
    _, d_params, d_opt_state = _discriminator_optimizer_step(state, grads, axis_name)
    return (state.replace(d_params=d_params, d_opt_state=d_opt_state),
            (every * penalty).astype(jnp.float32))

  return _lazily(update_index, every, regularise, state)


def generator_update(state: GANState, batch=None, *, axis_name: str | None = None,
                     num_shards: int = 1) -> tuple[GANState, Metrics]:
  """One generator update, per device (pure; `g_step` is this function jitted).

  The batch of real examples is only used by objectives whose generator loss needs D(x)
  (relativistic ones); otherwise it may be None. Arguments as in `discriminator_update`.

  Returns:
    The updated state and metrics: g_loss, g_fake (mean D(G(z)) seen by the generator),
    g_classifier (with an ACGAN/TAC head), g_orthogonal (with orthogonal regularisation),
    g_grad_norm, g_param_norm.
  """
  key = _generator_key(state)
  z = _latents(state, key, axis_name, num_shards)
  fake_labels = _fake_labels(state, key, axis_name, num_shards)
  real_logits, d_collections = _generator_real_logits(state, batch, key, axis_name, num_shards)

  def loss_fn(g_params):
    fake, g_collections = _generate(state, g_params, z, fake_labels, axis_name, key)
    loss, (metrics, collections) = _generator_loss(state, real_logits, d_collections, fake,
                                                   fake_labels, key, axis_name)
    if state.spec.orthogonal_weight:
      orthogonal = regularizers.orthogonal_penalty(g_params)
      metrics["g_orthogonal"] = orthogonal
      loss = loss + state.spec.orthogonal_weight * orthogonal
    return loss, (metrics, g_collections, collections)

  grads, (metrics, g_collections, d_collections) = jax.grad(loss_fn, has_aux=True)(state.g_params)
  return _apply_generator_gradient(state, grads, metrics, g_collections, d_collections, key,
                                   axis_name, num_shards)


def _generator_update_on_fakes(state: GANState, batch, fake, generator_vjp, key, *, axis_name,
                               num_shards) -> tuple[GANState, Metrics]:
  """The generator update on fakes (examples, labels) already generated with the current
  generator parameters: the loss's gradient with respect to the fakes, pulled back through
  `generator_vjp` (plus the orthogonal regularisation's own gradient, when on)."""
  fake, fake_labels = fake
  real_logits, d_collections = _generator_real_logits(state, batch, key, axis_name, num_shards)
  fake_grads, (metrics, d_collections) = jax.grad(
      lambda fake: _generator_loss(state, real_logits, d_collections, fake, fake_labels, key,
                                   axis_name),
      has_aux=True)(fake)
  grads, = generator_vjp(fake_grads)
  if state.spec.orthogonal_weight:
    orthogonal, orthogonal_grads = jax.value_and_grad(regularizers.orthogonal_penalty)(
        state.g_params)
    metrics["g_orthogonal"] = orthogonal
    grads = jax.tree.map(lambda g, o: g + state.spec.orthogonal_weight * o, grads,
                         orthogonal_grads)
  return _apply_generator_gradient(state, grads, metrics, state.g_collections, d_collections,
                                   key, axis_name, num_shards)


def _generator_loss(state: GANState, real_logits, d_collections, fake, fake_labels, key,
                    axis_name):
  """The generator's loss on `fake` (with labels `fake_labels`; augmented first, with the
  stream of `key`, when the spec augments) through the current discriminator, with its metrics
  (g_loss, g_fake, g_classifier) and the discriminator's collections: (loss, (metrics,
  collections)), as `jax.grad(..., has_aux=True)` takes it."""
  objective = losses.get(state.spec.loss)
  fake = _augment(state, fake, jax.random.fold_in(key, _AUGMENT_FAKE), axis_name)
  fake_logits, fake_heads, collections = _discriminate(state, state.d_params, d_collections,
                                                       fake, fake_labels, axis_name)
  loss = objective.generator(real_logits, fake_logits)
  metrics = {"g_loss": loss, "g_fake": _mean_output(fake_logits, objective)}
  classifier = _classifier(state.spec)
  if classifier is not None:
    class_loss = classifier.generator(fake_heads, fake_labels)
    metrics["g_classifier"] = class_loss
    loss = loss + state.spec.classifier_weight * class_loss
  return loss, (metrics, collections)


def _generator_real_logits(state: GANState, batch, key, axis_name, num_shards):
  """D(x) on real examples for objectives whose generator loss needs it, else None."""
  if not losses.get(state.spec.loss).generator_uses_real:
    return None, state.d_collections
  real, real_labels = _real_batch(state, batch, key, axis_name, num_shards)
  real = _augment(state, real, jax.random.fold_in(key, _AUGMENT_REAL), axis_name)
  logits, _, collections = _discriminate(state, state.d_params, state.d_collections, real,
                                         real_labels, axis_name)
  return logits, collections


def _apply_generator_gradient(state: GANState, grads, metrics, g_collections, d_collections,
                              key, axis_name, num_shards) -> tuple[GANState, Metrics]:
  """The generator's optimizer step with `grads` (averaged over the devices), then, on every
  `path_length_every`-th update, the lazy path-length step, then the EMA generator's update."""
  spec = state.spec
  grads, state = _generator_optimizer_step(state, grads, axis_name)
  state = state.replace(g_collections=g_collections, d_collections=d_collections)
  metrics["g_grad_norm"] = optax.tree.norm(grads)
  if state.path_length is not None:
    state, metrics["g_path_length"] = _lazy_path_length_update(state, key, axis_name,
                                                               num_shards)
    metrics["g_path_length_mean"] = state.path_length["mean"]
  ema_g_params = state.ema_g_params
  if ema_g_params is not None:
    ema_g_params = optax.incremental_update(state.g_params, ema_g_params,
                                            1.0 - ema_beta(spec, state.step))
  metrics["g_param_norm"] = optax.tree.norm(state.g_params)
  state = state.replace(ema_g_params=ema_g_params, step=state.step + 1)
  return state, _pmean(metrics, axis_name)


def ema_beta(spec: GANSpec, step: jax.Array | int) -> jax.Array | float:
  """The EMA generator's decay at generator update `step` (counted from 0): `spec.ema_decay`,
  or with `spec.ema_kimg` the ADA code's 0.5 ** (batch / h), h = 1000 * ema_kimg, ramped up
  as min(h, ema_rampup * step * batch) when `ema_rampup` is set (0 at step 0: the EMA starts
  as the generator)."""
  if not spec.ema_kimg:
    return spec.ema_decay
  half_life = jnp.asarray(spec.ema_kimg * 1000.0, jnp.float32)
  if spec.ema_rampup:
    seen = jnp.asarray(step, jnp.float32) * spec.batch_size
    half_life = jnp.minimum(half_life, seen * spec.ema_rampup)
  return 0.5 ** (spec.batch_size / jnp.maximum(half_life, 1e-8))


def _lazy_path_length_update(state: GANState, key, axis_name, num_shards
                             ) -> tuple[GANState, jax.Array]:
  """StyleGAN2's lazy path-length regularisation (Karras et al. 2020, section 3.2 and appendix
  B; `_lazily`): on every `path_length_every`-th generator update (`state.step` % k == 0), an
  extra optimizer step on k * weight * E[(||J_w^T y|| - a)^2] over batch / `path_length_shrink`
  fresh latents (`regularizers.path_length_penalty`), where a, the running mean length, first
  moves by `path_length_decay` towards this batch's mean (over the devices). The lengths are
  taken with respect to the mapping's output w, without style mixing.

  Returns:
    The state and k * penalty on a regularised update, 0 on the others.
  """
  spec = state.spec
  every = spec.path_length_every
  local = _local_batch(spec, num_shards)
  if local % spec.path_length_shrink:
    raise ValueError(f"the per-device batch {local} is not divisible by "
                     f"path_length_shrink={spec.path_length_shrink}")
  local //= spec.path_length_shrink
  key = jax.random.fold_in(key, _PATH_LENGTH)
  generator = _with_axis(state.generator, axis_name)

  def lengths_fn(g_params):
    z = _draw_latents(spec, key, local, axis_name)
    labels = _draw_fake_labels(spec, key, local, axis_name)
    keys = _example_keys(key, local, axis_name)
    direction_keys = _example_keys(jax.random.fold_in(key, _PATH_LENGTH), local, axis_name)
    variables = {"params": g_params, **state.g_collections}
    ws = generator.apply(variables, z, labels, train=False, method="mapping")
    synthesize = lambda ws: generator.apply(variables, ws, keys=keys, train=True,
                                            method="synthesis")
    return regularizers.path_lengths(synthesize, ws, direction_keys)

  def regularise(state):
    def loss_fn(g_params):
      lengths = lengths_fn(g_params)
      batch_mean = _pmean(jnp.mean(jax.lax.stop_gradient(lengths)), axis_name)
      mean = state.path_length["mean"]
      mean = mean + spec.path_length_decay * (batch_mean - mean)
      penalty = regularizers.path_length_penalty(lengths, mean)
      return every * spec.path_length_weight * penalty, (penalty, mean)

    grads, (penalty, mean) = jax.grad(loss_fn, has_aux=True)(state.g_params)
    _, state = _generator_optimizer_step(state, grads, axis_name)
    return (state.replace(path_length={"mean": mean.astype(jnp.float32)}),
            (every * penalty).astype(jnp.float32))

  return _lazily(state.step, every, regularise, state)


def _generator_key(state: GANState) -> jax.Array:
  return jax.random.fold_in(jax.random.fold_in(state.key, state.step), _GENERATOR_STREAM)


def critic_updates_at(spec: GANSpec, step: jax.Array) -> jax.Array | int:
  """Discriminator updates to run before generator update number `step`."""
  if spec.critic_warmup_steps == 0 and spec.critic_warmup_every == 0:
    return spec.n_critic
  warm = step < spec.critic_warmup_steps
  if spec.critic_warmup_every:
    warm = warm | (step % spec.critic_warmup_every == 0)
  return jnp.where(warm, spec.critic_warmup_n, spec.n_critic)


def _repeat(start, stop, body, carry):
  """`jax.lax.fori_loop(start, stop, body, carry)`, unrolled when the trip count is a Python int
  (n_critic without a warm-up schedule). Convolutions inside an XLA while loop run far slower on
  the CPU backend: a ResNet step with 2 critic updates took 9 s in the loop and 0.7 s unrolled
  (32x32 images, batch 64, width 32; one run on 2 CPU cores)."""
  if isinstance(start, int) and isinstance(stop, int):
    for i in range(start, stop):
      carry = body(i, carry)
    return carry
  return jax.lax.fori_loop(start, stop, body, carry)


def _leading(batch) -> int:
  """The leading axis of a batch (of its images, for an (images, labels) pair)."""
  return jax.tree.leaves(batch)[0].shape[0]


def adversarial_update(state: GANState, batch=None, *, axis_name: str | None = None,
                       num_shards: int = 1) -> tuple[GANState, Metrics]:
  """`critic_updates_at(step)` discriminator updates, then one generator update (pure;
  `train_step` is this function jitted).

  Args:
    state: the training state.
    batch: real examples of shape (n_critic, local_batch, ...), one slice per discriminator
      update (during a critic warm-up the slices are reused in turn; the generator update sees the
      last one); with labels, the pair (examples, int32 labels of shape (n_critic, local_batch));
      or None for on-device data.
    axis_name, num_shards: as in `discriminator_update`.

  Returns:
    The state and the metrics of the last discriminator update and the generator update.
  """
  spec = state.spec
  if batch is not None and _leading(batch) != spec.n_critic:
    shapes = jax.tree.map(lambda x: x.shape, batch)
    raise ValueError(f"train_step expects real data of shape (n_critic={spec.n_critic}, batch, "
                     f"...), got {shapes}")

  real_at = lambda i: None if batch is None else jax.tree.map(lambda x: x[i % spec.n_critic],
                                                              batch)
  last_real = None if batch is None else jax.tree.map(lambda x: x[-1], batch)
  n = critic_updates_at(spec, state.step)
  if spec.reuse_fakes:
    state = _repeat(0, n - 1, lambda i, state: discriminator_update(
        state, real_at(i), axis_name=axis_name, num_shards=num_shards)[0], state)
    key = _discriminator_key(state)
    real = _real_batch(state, real_at(n - 1), key, axis_name, num_shards)
    z = _latents(state, key, axis_name, num_shards)
    fake_labels = _fake_labels(state, key, axis_name, num_shards)
    fake, generator_vjp, g_collections = jax.vjp(
        lambda g_params: _generate(state, g_params, z, fake_labels, axis_name, key),
        state.g_params, has_aux=True)
    state, d_metrics = _discriminator_update_on_fakes(state, real, (fake, fake_labels),
                                                      g_collections, key, axis_name)
    state, g_metrics = _generator_update_on_fakes(
        state, last_real, (fake, fake_labels), generator_vjp, _generator_key(state),
        axis_name=axis_name, num_shards=num_shards)
    return state, {**d_metrics, **g_metrics}

  def one_critic_update(i, carry):
    state, _ = carry
    return discriminator_update(state, real_at(i), axis_name=axis_name, num_shards=num_shards)

  first_state, first_metrics = discriminator_update(state, real_at(0), axis_name=axis_name,
                                                    num_shards=num_shards)
  state, d_metrics = _repeat(1, n, one_critic_update, (first_state, first_metrics))
  state, g_metrics = generator_update(state, last_real, axis_name=axis_name, num_shards=num_shards)
  return state, {**d_metrics, **g_metrics}


def adversarial_scan(state: GANState, batch: None = None, *, num_steps: int,
                     axis_name: str | None = None, num_shards: int = 1
                     ) -> tuple[GANState, Metrics]:
  """`num_steps` training steps on on-device data in one `lax.scan` (pure; `train_steps` is this
  function jitted). Returns the final state and the metrics of every step, stacked."""
  if batch is not None or state.spec.data is None:
    raise ValueError("train_steps samples its data on the device: the spec needs a toy "
                     "distribution and no batch is taken")

  def body(state, _):
    return adversarial_update(state, None, axis_name=axis_name, num_shards=num_shards)

  return jax.lax.scan(body, state, length=num_steps)


d_step = jit(discriminator_update, donate_argnums=0, static_argnames=("axis_name", "num_shards"))
g_step = jit(generator_update, donate_argnums=0, static_argnames=("axis_name", "num_shards"))
train_step = jit(adversarial_update, donate_argnums=0, static_argnames=("axis_name", "num_shards"))
train_steps = jit(adversarial_scan, donate_argnums=0,
                  static_argnames=("num_steps", "axis_name", "num_shards"))


# ----------------------------------------------------------------------------- mapping


def _devices(parallel: str, devices) -> list:
  """pmap maps over this process's devices; shard_map's mesh spans every process's devices."""
  if devices is not None:
    return list(devices)
  return list(jax.local_devices() if parallel == "pmap" else jax.devices())


def parallelize(update: Callable[..., tuple[GANState, Metrics]], parallel: str,
                devices=None, batch_axis: int = 0, **static_kwargs) -> Callable:
  """Maps a per-device update over devices.

  Args:
    update: one of `discriminator_update`, `generator_update`, `adversarial_update`,
      `adversarial_scan`.
    parallel: 'none' (jit on one device), 'pmap' (`jax.pmap` over this process's devices: the
      state carries a leading device axis, see `replicate`, and so does the batch) or 'shard_map'
      (`jax.shard_map` over a 1-D mesh of all devices: the state is replicated and the batch is one
      global array sharded along `batch_axis`, see `shard_batch`).
    devices: the devices to use (default: as above).
    batch_axis: the batch axis of the real data (1 for `adversarial_update`'s
      (n_critic, batch, ...) layout); used by 'shard_map' only.
    **static_kwargs: further static arguments of `update` (num_steps for `adversarial_scan`).

  Returns:
    A jitted function (state, batch) -> (state, metrics), donating the state's buffers.
  """
  if parallel not in PARALLEL_MODES:
    raise ValueError(f"unknown parallel mode {parallel!r}; valid: {', '.join(PARALLEL_MODES)}")
  if parallel == "none":
    return jit(functools.partial(update, **static_kwargs), donate_argnums=0)
  given, devices = devices, _devices(parallel, devices)
  if parallel == "pmap":
    per_device = functools.partial(update, axis_name=AXIS_NAME,
                                   num_shards=len(devices) * jax.process_count(), **static_kwargs)
    # On several processes pmap maps over every process's devices (given as jax.devices(), or
    # None), each process feeding its own.
    if given is None and jax.process_count() > 1:
      devices = None
    return jax.pmap(per_device, axis_name=AXIS_NAME, devices=devices, donate_argnums=0)
  per_device = functools.partial(update, axis_name=AXIS_NAME, num_shards=len(devices),
                                 **static_kwargs)
  mesh = Mesh(devices, (AXIS_NAME,))
  batch_spec = PartitionSpec(*([None] * batch_axis), AXIS_NAME)
  # check_vma=False gives pmap's semantics: the gradient of a replicated parameter is each
  # device's own, and the update averages it with pmean, so that one per-device function serves
  # both mappings. (With check_vma=True, shard_map would already sum it over the devices.)
  mapped = jax.shard_map(per_device, mesh=mesh, in_specs=(PartitionSpec(), batch_spec),
                         out_specs=PartitionSpec(), check_vma=False)
  return jit(mapped, donate_argnums=0)


def replicate(state: GANState, parallel: str, devices=None) -> GANState:
  """Places the state for a mapped update: a leading device axis for 'pmap', replicated over
  the mesh for 'shard_map', unchanged for 'none'."""
  if parallel == "none":
    return state
  devices = _devices(parallel, devices)
  if parallel == "pmap":
    # pmap splits a leading axis of size len(devices) over the devices. The copies are made
    # from host values: an array committed to one device (a restored checkpoint's) would not
    # match the sharding a pmap compiled ahead of time expects.
    return jax.tree.map(lambda x: jnp.broadcast_to(np.asarray(x), (len(devices),) + x.shape),
                        state)
  sharding = NamedSharding(Mesh(devices, (AXIS_NAME,)), PartitionSpec())
  if jax.process_count() > 1:
    # Each process places its own (equal) copy from host values: an array committed to one
    # device (a restored checkpoint's) would need a transfer between hosts.
    return jax.tree.map(lambda x: jax.device_put(np.asarray(x), sharding), state)
  return jax.device_put(state, sharding)


def unreplicate(state_or_metrics, parallel: str):
  """The single copy of a replicated state or metrics tree (the inverse of `replicate`)."""
  if parallel == "pmap":
    return jax.tree.map(_first_device_copy, state_or_metrics)
  return state_or_metrics


def _first_device_copy(x):
  """The copy on the first device of a pmapped output `x`, without computing on the others
  (indexing `x[0]` is a computation over all of this process's devices, which on several
  processes may wait on a collective that another process runs at the same time)."""
  if not isinstance(x, jax.Array):
    return x[0]
  return x.addressable_shards[0].data.reshape(x.shape[1:])


def shard_batch(batch, parallel: str, devices=None, batch_axis: int = 0):
  """Lays this process's batch (an array, or an (images, labels) pair) out for a mapped update:
  split into a leading device axis for 'pmap', a global array sharded along `batch_axis` for
  'shard_map' (assembled from every process's part), unchanged for 'none'."""
  if parallel == "none" or batch is None:
    return batch
  devices = _devices(parallel, devices)
  if parallel == "pmap":
    def split(x):
      shape = x.shape
      x = x.reshape(shape[:batch_axis] + (len(devices), -1) + shape[batch_axis + 1:])
      return jnp.moveaxis(x, batch_axis, 0)
    return jax.tree.map(split, batch)
  sharding = NamedSharding(Mesh(devices, (AXIS_NAME,)),
                           PartitionSpec(*([None] * batch_axis), AXIS_NAME))
  if jax.process_count() > 1:
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
  return jax.device_put(batch, sharding)


def vmap_seeds(update: Callable[..., tuple[GANState, Metrics]], **static_kwargs) -> Callable:
  """Trains independent seeds side by side: maps a per-device update over a leading seed axis of
  the state (see `create_seed_states`) in one compiled program, donating the state's buffers."""
  return jit(jax.vmap(functools.partial(update, **static_kwargs)), donate_argnums=0)


def create_seed_states(generator, discriminator, g_tx, d_tx, spec, data_shape,
                       seeds) -> GANState:
  """One state per seed, stacked along a leading axis; each equals `create_state` with that seed."""
  return jax.vmap(lambda seed: create_state(generator, discriminator, g_tx, d_tx, spec,
                                            data_shape, seed))(jnp.asarray(seeds))


def default_labels(state: GANState, num: int) -> jax.Array | None:
  """The labels of `num` samples of a class-conditional generator when none are given: the
  classes in turn (0, 1, ..., K - 1, 0, ...), so that a picture of consecutive samples shows every
  class and every evaluation is balanced over them; None for an unconditional generator."""
  if not state.spec.num_classes:
    return None
  return jnp.arange(num, dtype=jnp.int32) % state.spec.num_classes


def _generator_variables(state: GANState, use_ema: bool) -> dict[str, Any]:
  """The generator's variables outside training: the EMA parameters when asked and kept."""
  params = state.ema_g_params if (use_ema and state.ema_g_params is not None) else state.g_params
  return {"params": params, **state.g_collections}


def _generator_inputs(state: GANState, z: jax.Array, labels, use_ema: bool):
  """(variables, positional arguments) of the generator for latents `z`: `_generator_variables`
  and the labels of a class-conditional generator (default `default_labels`)."""
  if state.spec.num_classes:
    labels = default_labels(state, z.shape[0]) if labels is None else jnp.asarray(labels,
                                                                                  jnp.int32)
  elif labels is not None:
    raise ValueError("labels were given to an unconditional generator")
  return _generator_variables(state, use_ema), _with_labels(z, labels)


def latent_keys(z: jax.Array) -> jax.Array:
  """The keys of a style-based generator's noise inputs for latents `z` outside training: each
  example's from the bits of its latent vector, so that a latent vector always gives the same
  image, whatever the batch it is in, and different latents different noise."""
  bits = jax.lax.bitcast_convert_type(jnp.asarray(z, jnp.float32), jnp.uint32)
  mixed = jnp.bitwise_xor(bits[:, 0], bits[:, -1] * jnp.uint32(0x9E3779B1))
  return jax.vmap(jax.random.fold_in, (None, 0))(jax.random.PRNGKey(_SAMPLE_NOISE), mixed)


def check_truncation(state: GANState, truncation_psi) -> None:
  """Raises a one-line ValueError when `truncation_psi` is not 1 and the generator is not
  style-based (only a mapping network has a w_avg to truncate towards)."""
  if not style_based(state.generator) and (not isinstance(truncation_psi, (int, float))
                                           or truncation_psi != 1.0):
    raise ValueError("truncation needs a style-based generator (a mapping network: stylegan2), "
                     f"not {type(state.generator).__name__}")


def generate(state: GANState, z: jax.Array, labels: jax.Array | None = None,
             use_ema: bool = True, truncation_psi: float | jax.Array = 1.0) -> jax.Array:
  """The generator's output for latents `z` (the EMA generator when the state keeps one), with
  batch statistics in inference mode. A class-conditional generator takes `labels` (int, one per
  latent; default `default_labels`); an unconditional one takes none. A style-based generator
  draws its noise inputs from `latent_keys(z)` and moves w towards its tracked average by
  `truncation_psi` (the truncation trick: w_avg + psi (w - w_avg); 1: none)."""
  check_truncation(state, truncation_psi)
  variables, args = _generator_inputs(state, z, labels, use_ema)
  extra = ({"keys": latent_keys(z), "truncation_psi": truncation_psi}
           if style_based(state.generator) else {})
  return state.generator.apply(variables, *args, train=False, **extra)


def mapping(state: GANState, z: jax.Array, labels: jax.Array | None = None,
            use_ema: bool = True, truncation_psi: float | jax.Array = 1.0) -> jax.Array:
  """A style-based generator's intermediate latents w for `z`, (batch, num_ws, w_dim), truncated
  towards w_avg by `truncation_psi` (arguments as in `generate`)."""
  if not style_based(state.generator):
    raise ValueError(f"{type(state.generator).__name__} has no mapping network (stylegan2 has)")
  variables, args = _generator_inputs(state, z, labels, use_ema)
  return state.generator.apply(variables, *args, train=False, truncation_psi=truncation_psi,
                               method="mapping")


def synthesis(state: GANState, ws: jax.Array, keys: jax.Array, use_ema: bool = True
              ) -> jax.Array:
  """A style-based generator's images for intermediate latents `ws` (from `mapping`), its noise
  inputs drawn from `keys` (one raw key per example, as `latent_keys` makes them)."""
  return state.generator.apply(_generator_variables(state, use_ema), ws, keys=keys, train=False,
                               method="synthesis")


def interpolate(state: GANState, z_from: jax.Array, z_to: jax.Array, steps: int,
                labels: jax.Array | None = None, use_ema: bool = True,
                truncation_psi: float = 1.0) -> jax.Array:
  """Images along straight lines in w from the latents `z_from` to `z_to` (one line per row,
  `steps` points each, ends included; the noise of row i fixed to that of `z_from[i]`):
  (rows, steps, H, W, C). StyleGAN's interpolation in the intermediate latent space."""
  w_from = mapping(state, z_from, labels, use_ema, truncation_psi)
  w_to = mapping(state, z_to, labels, use_ema, truncation_psi)
  fractions = jnp.linspace(0.0, 1.0, steps)
  ws = w_from[:, None] + fractions[None, :, None, None] * (w_to - w_from)[:, None]
  keys = jnp.repeat(latent_keys(z_from), steps, axis=0)
  images = synthesis(state, ws.reshape(-1, *ws.shape[2:]), keys, use_ema)
  return images.reshape(z_from.shape[0], steps, *images.shape[1:])


def sample(state: GANState, num: int, key: jax.Array, labels: jax.Array | None = None,
           use_ema: bool = True, truncation_psi: float | jax.Array = 1.0) -> jax.Array:
  """`num` samples from the generator (`generate` of `num` latents drawn with `key`, and of
  `labels` for a class-conditional one)."""
  return generate(state, jax.random.normal(key, (num, state.spec.latent_dim)), labels, use_ema,
                  truncation_psi)
