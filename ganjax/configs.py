"""Config pieces the experiment files share: what every GAN experiment repeats lives here once,
while each file in experiments/ still reads as a complete recipe (its data, players, loss,
optimizers, schedule and evaluation).

    config = configs.gan_config()                       # program 'gan', seed 0, no penalty
    config.train = configs.train_config(steps=5000, batch_size=512, log_every=500,
                                        checkpoint_every=1000, sample_every=1000)
    if arg == "tiny":
      configs.shrink_images(config, widths=("model.generator_kwargs.base_features", ...))
    configs.check_argument(arg, __file__, valid=("tiny",))

With `data.image_config` (`ganjax.data`) and `image_quality.eval_config`
(`ganjax.image_quality`), these are the pieces the experiment files are made of.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import ml_collections

# The defaults of the train block: one discriminator update per step, no EMA (ema_decay, or
# StyleGAN2's half-life in thousands of images ema_kimg with its ramp-up ema_rampup), fresh fakes
# for the generator, one device, the latest 3 checkpoints, no profile.
TRAIN_DEFAULTS = {"n_critic": 1, "ema_decay": 0.0, "reuse_fakes": False, "parallel": "none",
                  "keep_checkpoints": 3, "profile_steps": 0, "ema_kimg": 0.0, "ema_rampup": 0.0}


def gan_config(seed: int = 0) -> ml_collections.ConfigDict:
  """A config for the GAN trainer (`config.program = 'gan'`) with `seed`, no penalty
  (`penalty.name = ''`, `penalty.weight = 0.0`; set them for WGAN-GP, R1, ...; `penalty.every`,
  lazy regularisation every k discriminator updates; and `penalty.orthogonal_weight = 0.0`,
  BigGAN's orthogonal regularisation of the generator), no consistency or LeCam regularisation
  (`regularizer_config()`) and no labels (`conditional_config()`)."""
  config = ml_collections.ConfigDict()
  config.program = "gan"
  config.seed = seed
  config.penalty = ml_collections.ConfigDict({"name": "", "weight": 0.0, "every": 1,
                                              "orthogonal_weight": 0.0})
  config.regularizer = regularizer_config()
  config.conditional = conditional_config()
  return config


def regularizer_config(*, cr_real: float = 0.0, cr_fake: float = 0.0,
                       cr_policy: str = "xflip,translation", lecam: float = 0.0,
                       lecam_decay: float = 0.99, path_length: float = 0.0,
                       path_length_decay: float = 0.01, path_length_shrink: int = 2,
                       path_length_every: int = 4) -> ml_collections.ConfigDict:
  """`config.regularizer`: the discriminator's regularisers beside the penalty (all off by
  default; `ganjax.regularizers`).

  Args:
    cr_real: the weight of consistency regularisation on reals (CR, Zhang et al. 2020: 10).
    cr_fake: on fakes too (balanced CR, Zhao et al. 2021: 10 and 10); image data only.
    cr_policy: CR's transforms T, a policy of `ganjax.augment` applied with probability 1 (the
      papers: flips and translations of a few pixels).
    lecam: the weight of LeCam regularisation (Tseng et al. 2021: 0.3 on CIFAR-10).
    lecam_decay: the decay of LeCam's moving averages of D's outputs (0.99).
    path_length: the weight of StyleGAN2's path-length regularisation of a style-based generator
      (Karras et al. 2020: 2), taken every `path_length_every` generator updates (4) on
      batch / `path_length_shrink` latents (2), its mean length decayed by `path_length_decay`
      (0.01); the generator's Adam is corrected for the interval as for `penalty.every`.
  """
  return ml_collections.ConfigDict({"cr_real": cr_real, "cr_fake": cr_fake,
                                    "cr_policy": cr_policy, "lecam": lecam,
                                    "lecam_decay": lecam_decay, "path_length": path_length,
                                    "path_length_decay": path_length_decay,
                                    "path_length_shrink": path_length_shrink,
                                    "path_length_every": path_length_every})


def augment_config(policy: str = "", *, p: float = 0.0, target: float = 0.0,
                   speed: int = 500_000, interval: int = 4) -> ml_collections.ConfigDict:
  """`config.augment`, in every image experiment: differentiable augmentation of the
  discriminator's real and fake inputs (`ganjax.augment`), off by default.

    --config.augment.policy=color,translation,cutout --config.augment.p=1    DiffAugment
    --config.augment.policy=bgc --config.augment.target=0.6                 ADA

  Args:
    policy: comma-separated transforms and presets of `ganjax.augment` ('' : none).
    p: the probability of each transform, per example (the start when `target` is set).
    target: ADA's target for r_t = E[sign(D(x))] (0: p stays fixed; the paper: 0.6).
    speed: images over which ADA's p can go from 0 to 1 (the paper: 500k).
    interval: discriminator updates between ADA's adjustments (4).
  """
  return ml_collections.ConfigDict({"policy": policy, "p": p, "target": target, "speed": speed,
                                    "interval": interval})


def conditional_config(enabled: bool = False, *, fake_labels: str = "uniform",
                       classifier_weight: float = 1.0) -> ml_collections.ConfigDict:
  """`config.conditional`: a class-conditional GAN when `enabled`.

  Args:
    enabled: condition both players on the data's labels (the generator and discriminator must
      be class-conditional models; the number of classes comes from the data and is recorded
      in the run's config as `num_classes`).
    fake_labels: how the fakes' labels are drawn: 'uniform', or 'data' (the data's class
      frequencies).
    classifier_weight: the weight of the auxiliary classification loss of a discriminator with
      a class head (`model.discriminator_kwargs.conditioning='acgan'` or 'tac').
  """
  from ml_collections import config_dict
  return ml_collections.ConfigDict({"enabled": enabled, "fake_labels": fake_labels,
                                    "classifier_weight": classifier_weight,
                                    "num_classes": config_dict.placeholder(int)})


def train_config(*, steps: int, batch_size: int, log_every: int, checkpoint_every: int,
                 sample_every: int, **fields: Any) -> ml_collections.ConfigDict:
  """`config.train`: the schedule an experiment sets, and `TRAIN_DEFAULTS` for the rest.

  Args:
    steps: training steps (generator updates).
    batch_size: the global batch.
    log_every, checkpoint_every, sample_every: periods in steps (0: never).
    **fields: other fields of the block (n_critic, ema_decay, ema_kimg, ema_rampup,
      reuse_fakes, parallel, keep_checkpoints, profile_steps, critic_warmup), replacing the
      defaults.

  Raises:
    ValueError: a field the train block does not have.
  """
  unknown = sorted(set(fields) - set(TRAIN_DEFAULTS) - {"critic_warmup"})
  if unknown:
    raise ValueError(f"train_config has no field {unknown[0]!r}; fields: steps, batch_size, "
                     f"log_every, checkpoint_every, sample_every, {', '.join(TRAIN_DEFAULTS)}, "
                     "critic_warmup")
  return ml_collections.ConfigDict({
      "steps": steps, "batch_size": batch_size, **TRAIN_DEFAULTS, **fields,
      "log_every": log_every, "checkpoint_every": checkpoint_every,
      "sample_every": sample_every})


def set_fields(config: ml_collections.ConfigDict, values: dict[str, Any]) -> None:
  """Sets dotted fields ('model.latent_dim') of `config`, each of which must exist."""
  for name, value in values.items():
    *sections, last = name.split(".")
    node = config
    for section in sections:
      node = node[section]
    if last not in node:
      raise KeyError(f"the config has no field {name!r}")
    node[last] = value


def shrink_images(config: ml_collections.ConfigDict, widths: Sequence[str], width: int = 4,
                  **fields: Any) -> None:
  """The `:tiny` variant of an image experiment: a run of seconds on CPU (4 steps of batch 8,
  every period 2, networks of width 4 to 8, 8 latent dimensions, a 64-image shuffle buffer) with
  image-quality evaluation off (it needs the Inception weights or a trained classifier; turn it
  on with --config.eval.metrics=fid,kid --config.eval.every=2 and a weight file).

  Args:
    config: an image experiment's config (`data.image_config`, `image_quality.eval_config`).
    widths: the dotted names of the model fields that set the networks' widths.
    width: what they are set to.
    **fields: further dotted fields to set, as {'model.generator_kwargs.features': 8}.
  """
  config.train.update({"steps": 4, "batch_size": 8, "log_every": 2, "checkpoint_every": 2,
                       "sample_every": 2})
  config.data.shuffle_buffer = 64
  config.model.latent_dim = 8
  set_fields(config, {name: width for name in widths})
  config.eval.update({"num_samples": 16, "metrics": "", "every": 0, "best": "", "protocol": ""})
  set_fields(config, fields)


def check_argument(arg: str | None, file: str, valid: Sequence[str]) -> None:
  """Raises ValueError naming the experiment file and its valid arguments when `arg` (the part
  of --config=<file>:<arg> after the colon) is not one of `valid` (None is always valid)."""
  if arg is not None and arg not in valid:
    name = f"experiments/{os.path.basename(file)}"
    raise ValueError(f"unknown argument {arg!r} for {name}; valid: {', '.join(valid)}")


def stylegan2_model(*, resolution: int, channels: int = 3, latent_dim: int = 512,
                    w_dim: int = 512, mapping_layers: int = 8, channel_base: int = 32768,
                    channel_max: int = 512, style_mixing: float = 0.9,
                    architecture: str = "resnet", mbstd_group: int = 4
                    ) -> ml_collections.ConfigDict:
  """`config.model` of a StyleGAN2 experiment (`ganjax.models.stylegan2`): the generator and
  discriminator of images of `channels` channels at `resolution`, with min(channel_base / r,
  channel_max) channels of features at resolution r (config F: 32768 and 512), `mapping_layers`
  mapping layers from a z of `latent_dim` to a w of `w_dim`, style mixing with probability
  `style_mixing` in training, D's `architecture` ('resnet': config F; 'orig': the ADA code's
  CIFAR-10 D) and minibatch-stddev group `mbstd_group`."""
  shared = {"resolution": resolution, "channels": channels, "channel_base": channel_base,
            "channel_max": channel_max}
  return ml_collections.ConfigDict({
      "generator": "stylegan2",
      "generator_kwargs": {**shared, "w_dim": w_dim, "mapping_layers": mapping_layers,
                           "style_mixing": style_mixing},
      "discriminator": "stylegan2",
      "discriminator_kwargs": {**shared, "architecture": architecture,
                               "mbstd_group": mbstd_group},
      "dtype": "",
      "latent_dim": latent_dim,
  })


def stylegan2_optimizers(learning_rate: float) -> ml_collections.ConfigDict:
  """`config.optimizer` of a StyleGAN2 experiment: Adam with `learning_rate`, betas (0, 0.99)
  and eps 1e-8 for both players (the ADA code's); the lazy regularisers' corrections
  (`penalty.every`, `regularizer.path_length_every`) are applied when the run builds them."""
  adam = {"name": "adam", "learning_rate": learning_rate, "b1": 0.0, "b2": 0.99, "eps": 1e-8}
  return ml_collections.ConfigDict({"generator": dict(adam), "discriminator": dict(adam)})


def shrink_stylegan2(config: ml_collections.ConfigDict) -> None:
  """The `:tiny` variant of a StyleGAN2 experiment (`shrink_images` with channels of at most 16,
  a w of 16 dimensions and 2 mapping layers)."""
  shrink_images(config, width=16, widths=("model.generator_kwargs.channel_max",
                                          "model.discriminator_kwargs.channel_max"),
                **{"model.generator_kwargs.channel_base": 128,
                   "model.discriminator_kwargs.channel_base": 128,
                   "model.generator_kwargs.w_dim": 16,
                   "model.generator_kwargs.mapping_layers": 2})


def stylegan2_config_f(data_config: ml_collections.ConfigDict, *, resolution: int,
                       batch_size: int = 32, kimg: int = 25_000) -> ml_collections.ConfigDict:
  """A StyleGAN2 config F experiment (Karras et al. 2020; NVlabs/stylegan2-ada-pytorch
  `train.py --cfg=stylegan2`) on `data_config` at `resolution`: 512 channels up to 64x64 (then
  channel_base / r), an 8-layer mapping network, style mixing 0.9, the residual discriminator
  with minibatch-stddev groups of 4, the non-saturating loss, lazy R1 every 16 discriminator
  updates with the ADA code's gamma = 0.0002 r^2 / batch, path-length regularisation (weight 2,
  every 4 generator updates), Adam with learning rate 0.002 and betas (0, 0.99), an EMA
  generator with a half-life of 10 kimg, `kimg` thousand images; ADA off (`augment_config()`).
  The experiment file adds its `eval` block."""
  config = gan_config(seed=0)
  config.data = data_config
  config.augment = augment_config()
  config.model = stylegan2_model(resolution=resolution)
  config.loss = "non_saturating"
  gamma = 0.0002 * resolution**2 / batch_size
  config.penalty.update({"name": "r1", "weight": gamma / 2, "every": 16})
  config.regularizer = regularizer_config(path_length=2.0)
  config.optimizer = stylegan2_optimizers(0.002)
  config.train = train_config(steps=kimg * 1000 // batch_size, batch_size=batch_size,
                              ema_kimg=10.0, log_every=100, checkpoint_every=5000,
                              sample_every=1000)
  return config
