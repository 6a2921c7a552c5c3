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

from ganjax import configs
from ganjax import data
from ganjax import image_quality


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=("tiny",))
  config = configs.gan_config(seed=0)
  config.data = data.image_config("celeb_a", image_size=64, crop_size=108)
  # Off: DiffAugment with --config.augment.policy=color,translation,cutout --config.augment.p=1,
  # ADA with --config.augment.policy=bgc --config.augment.target=0.6 (ganjax.augment).
  config.augment = configs.augment_config()
  config.model = ml_collections.ConfigDict({
      "generator": "dcgan",
      "generator_kwargs": {"image_shape": (64, 64, 3), "base_features": 64},
      "discriminator": "dcgan",
      "discriminator_kwargs": {"image_shape": (64, 64, 3), "base_features": 64},
      "dtype": "",
      "latent_dim": 100,
  })
  config.loss = "non_saturating"
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.5},
      "discriminator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.5},
  })
  config.train = configs.train_config(steps=32_000, batch_size=128, log_every=100,
                                      checkpoint_every=4000, sample_every=1000)
  # Image quality every eval.every steps on fixed noise, into metrics.jsonl and summary.json; the
  # best checkpoint by eval.best in best/ (ganjax.image_quality).
  config.eval = image_quality.eval_config(metrics="fid,kid", features="inception", every=4000,
                                       best="fid")
  if arg == "tiny":
    configs.shrink_images(config, widths=("model.generator_kwargs.base_features",
                                          "model.discriminator_kwargs.base_features"))
  return config
