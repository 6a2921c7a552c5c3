"""CIFAR-10 with WGAN-GP and a DCGAN-style critic without batch norm (needs TFDS 'cifar10').

  python -m ganjax.main --config=experiments/cifar10_wgan_gp.py --workdir=runs/cifar10_wgan_gp
  python -m ganjax.main --config=experiments/cifar10_wgan_gp.py:tiny --workdir=runs/wgan_gp_tiny

Gulrajani, Ahmed, Arjovsky, Dumoulin and Courville 2017 ("Improved Training of Wasserstein
GANs", section 5, and their code igul222/improved_wgan_training, gan_cifar.py): the Wasserstein
loss with the gradient penalty E(||grad D(x_hat)|| - 1)^2 of weight 10 on random interpolates,
5 critic updates per generator update, Adam with learning rate 1e-4, beta1 0.5, beta2 0.9, batch
64, z of 128 dimensions, 200,000 generator updates. Networks: the 32x32 DCGAN preset with their
widths (generator 512 -> 256 -> 128 -> 3 with batch normalisation; critic 128 -> 256 -> 512
with LeakyReLU 0.2 and no batch normalisation, which the penalty requires since it is taken per
example); their code uses 5x5 kernels where this preset has 4x4.
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
      "discriminator_kwargs": {"image_shape": (32, 32, 3), "base_features": 128,
                               "batch_norm": False},
      "dtype": "",
      "latent_dim": 128,
  })
  config.loss = "wasserstein"
  config.penalty.update({"name": "gradient_penalty", "weight": 10.0})
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 1e-4, "b1": 0.5, "b2": 0.9},
      "discriminator": {"name": "adam", "learning_rate": 1e-4, "b1": 0.5, "b2": 0.9},
  })
  config.train = configs.train_config(steps=200_000, batch_size=64, n_critic=5, log_every=100,
                                      checkpoint_every=10_000, sample_every=1000)
  # Image quality every eval.every steps on fixed noise, into metrics.jsonl and summary.json; the
  # best checkpoint by eval.best in best/ (ganjax.image_quality).
  config.eval = image_quality.eval_config(metrics="fid,kid", features="inception", every=10000,
                                       best="fid")
  if arg == "tiny":
    configs.shrink_images(config, widths=("model.generator_kwargs.base_features",
                                          "model.discriminator_kwargs.base_features"))
  return config
