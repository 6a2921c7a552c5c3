"""CIFAR-10 with Radford et al.'s DCGAN (needs TFDS 'cifar10' prepared).

  python -m ganjax.main --config=experiments/cifar10_dcgan.py --workdir=runs/cifar10_dcgan
  python -m ganjax.main --config=experiments/cifar10_dcgan.py:tiny --workdir=runs/dcgan_tiny

Radford, Metz and Chintala 2016 ("Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", section 4): the 32x32 preset of `ganjax.models.dcgan` (a
generator 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x3 with batch normalisation and ReLU, a
discriminator 64 -> 128 -> 256 with LeakyReLU 0.2 and batch normalisation after the first layer;
4x4 kernels, N(0, 0.02^2) weights), z of 100 dimensions, Adam with learning rate 2e-4 and beta1
0.5, batch 128, the non-saturating loss. The paper gives no training length for CIFAR-10: 50,000
steps is 128 epochs of the 50,000 training images.
"""
import ml_collections

from ganjax import configs
from ganjax import data
from ganjax import image_quality


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=("tiny",))
  config = configs.gan_config(seed=0)
  config.data = data.image_config("cifar10", image_size=32)
  # Off: DiffAugment with --config.augment.policy=color,translation,cutout --config.augment.p=1,
  # ADA with --config.augment.policy=bgc --config.augment.target=0.6 (ganjax.augment).
  config.augment = configs.augment_config()
  config.model = ml_collections.ConfigDict({
      "generator": "dcgan",
      "generator_kwargs": {"image_shape": (32, 32, 3), "base_features": 64},
      "discriminator": "dcgan",
      "discriminator_kwargs": {"image_shape": (32, 32, 3), "base_features": 64},
      "dtype": "",
      "latent_dim": 100,
  })
  config.loss = "non_saturating"
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.5},
      "discriminator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.5},
  })
  config.train = configs.train_config(steps=50_000, batch_size=128, log_every=100,
                                      checkpoint_every=5000, sample_every=1000)
  # Image quality every eval.every steps on fixed noise, into metrics.jsonl and summary.json; the
  # best checkpoint by eval.best in best/ (ganjax.image_quality).
  config.eval = image_quality.eval_config(metrics="fid,kid", features="inception", every=5000,
                                       best="fid")
  if arg == "tiny":
    configs.shrink_images(config, widths=("model.generator_kwargs.base_features",
                                          "model.discriminator_kwargs.base_features"))
  return config
