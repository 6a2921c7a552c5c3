"""CelebA at 64x64 with Radford et al.'s DCGAN (needs TFDS 'celeb_a' prepared).

  python -m ganjax.main --config=experiments/celeba64_dcgan.py --workdir=runs/celeba64_dcgan
  python -m ganjax.main --config=experiments/celeba64_dcgan.py:tiny --workdir=runs/celeba_tiny

Radford, Metz and Chintala 2016 ("Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", sections 3 and 4): the 64x64 preset of `ganjax.models.dcgan`
(generator 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3 with batch normalisation and
ReLU; discriminator 64 -> 128 -> 256 -> 512 with LeakyReLU 0.2 and batch normalisation after the
first layer), z of 100 dimensions, Adam with learning rate 2e-4 and beta1 0.5, batch 128, the
non-saturating loss. Faces are the aligned CelebA images, centre-cropped to 108x108 and resized
to 64x64 as in the DCGAN-tensorflow code (see `ganjax.data.images`). TFDS's 'celeb_a' train split
holds 162,770 images: 32,000 steps is about 25 epochs (that code's default).
"""
import ml_collections

from ganjax import data
from ganjax import evaluation


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = data.image_config("celeb_a", image_size=64, crop_size=108)
  config.model = ml_collections.ConfigDict({
      "generator": "dcgan",
      "generator_kwargs": {"image_shape": (64, 64, 3), "base_features": 64},
      "discriminator": "dcgan",
      "discriminator_kwargs": {"image_shape": (64, 64, 3), "base_features": 64},
      "latent_dim": 100,
  })
  config.loss = "non_saturating"
  config.penalty = ml_collections.ConfigDict({"name": "", "weight": 0.0})
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.5},
      "discriminator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.5},
  })
  config.train = ml_collections.ConfigDict({
      "steps": 32_000,
      "batch_size": 128,
      "n_critic": 1,
      "ema_decay": 0.0,
      "reuse_fakes": False,
      "parallel": "none",
      "log_every": 100,
      "checkpoint_every": 4000,
      "sample_every": 1000,
      "keep_checkpoints": 3,
  })
  # Image quality every eval.every steps on fixed noise, into metrics.jsonl and summary.json; the
  # best checkpoint by eval.best in best/ (ganjax.evaluation).
  config.eval = evaluation.eval_config(metrics="fid,kid", features="inception", every=4000,
                                       best="fid")
  if arg == "tiny":
    config.train.steps = 4
    config.train.batch_size = 8
    config.train.log_every = 2
    config.train.checkpoint_every = 2
    config.train.sample_every = 2
    config.data.shuffle_buffer = 64
    config.model.generator_kwargs.base_features = 4
    config.model.discriminator_kwargs.base_features = 4
    config.model.latent_dim = 8
    config.eval.num_samples = 16
    config.eval.metrics = ""  # needs the Inception weight file
    config.eval.every = 0
    config.eval.best = ""
  elif arg:
    raise ValueError(f"unknown argument {arg!r} for experiments/celeba64_dcgan.py; valid: tiny")
  return config
