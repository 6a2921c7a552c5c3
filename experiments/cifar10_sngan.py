"""CIFAR-10 with SNGAN's ResNet pair and the hinge loss (needs TFDS 'cifar10' prepared).

  python -m ganjax.main --config=experiments/cifar10_sngan.py --workdir=runs/cifar10_sngan
  python -m ganjax.main --config=experiments/cifar10_sngan.py:tiny --workdir=runs/cifar10_sngan_tiny

Miyato, Kataoka, Koyama and Yoshida 2018 ("Spectral Normalization for Generative Adversarial
Networks", Table 4 and Appendix B.4, and their code pfnet-research/sngan_projection,
configs/sn_cifar10_unconditional.yml): the ResNet generator with 256 channels and the spectrally
normalised ResNet discriminator with 128 channels, z of 128 dimensions, the hinge loss, 5
discriminator updates per generator update, Adam with learning rate 2e-4, beta1 0 and beta2 0.9,
batch 64, 50,000 generator updates. Their code also decays the learning rate linearly to 0 and
draws 128 generated samples per generator update; here the learning rate is constant and the
generator update uses the batch size.
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
      "generator": "resnet",
      "generator_kwargs": {"channels": 3, "features": 256},
      "discriminator": "resnet",
      "discriminator_kwargs": {"features": 128, "spectral_norm": True},
      "dtype": "",
      "latent_dim": 128,
  })
  config.loss = "hinge"
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.0, "b2": 0.9},
      "discriminator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.0, "b2": 0.9},
  })
  config.train = configs.train_config(steps=50_000, batch_size=64, n_critic=5, log_every=100,
                                      checkpoint_every=5000, sample_every=1000)
  # Image quality every eval.every steps on fixed noise, into metrics.jsonl and summary.json; the
  # best checkpoint by eval.best in best/ (ganjax.image_quality).
  config.eval = image_quality.eval_config(metrics="fid,kid", features="inception", every=5000,
                                       best="fid")
  if arg == "tiny":
    configs.shrink_images(config, width=8, widths=("model.generator_kwargs.features",
                                                   "model.discriminator_kwargs.features"))
  return config
