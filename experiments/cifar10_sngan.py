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

from ganjax import data
from ganjax import evaluation


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = data.image_config("cifar10", image_size=32)
  config.model = ml_collections.ConfigDict({
      "generator": "resnet",
      "generator_kwargs": {"channels": 3, "features": 256},
      "discriminator": "resnet",
      "discriminator_kwargs": {"features": 128, "spectral_norm": True},
      "latent_dim": 128,
  })
  config.loss = "hinge"
  config.penalty = ml_collections.ConfigDict({"name": "", "weight": 0.0})
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.0, "b2": 0.9},
      "discriminator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.0, "b2": 0.9},
  })
  config.train = ml_collections.ConfigDict({
      "steps": 50_000,
      "batch_size": 64,
      "n_critic": 5,
      "ema_decay": 0.0,
      "reuse_fakes": False,
      "parallel": "none",
      "log_every": 100,
      "checkpoint_every": 5000,
      "sample_every": 1000,
      "keep_checkpoints": 3,
  })
  # Image quality every eval.every steps on fixed noise, into metrics.jsonl and summary.json; the
  # best checkpoint by eval.best in best/ (ganjax.evaluation).
  config.eval = evaluation.eval_config(metrics="fid,kid", features="inception", every=5000,
                                       best="fid")
  if arg == "tiny":
    config.train.steps = 4
    config.train.batch_size = 8
    config.train.log_every = 2
    config.train.checkpoint_every = 2
    config.train.sample_every = 2
    config.data.shuffle_buffer = 64
    config.model.generator_kwargs.features = 8
    config.model.discriminator_kwargs.features = 8
    config.model.latent_dim = 8
    config.eval.num_samples = 16
    config.eval.metrics = ""  # needs the Inception weight file
    config.eval.every = 0
    config.eval.best = ""
  elif arg:
    raise ValueError(f"unknown argument {arg!r} for experiments/cifar10_sngan.py; valid: tiny")
  return config
