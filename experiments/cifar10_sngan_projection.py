"""CIFAR-10, class-conditional cGAN-PD in Mimicry's set-up (needs TFDS 'cifar10' prepared).

  python -m ganjax.main --config=experiments/cifar10_sngan_projection.py --workdir=runs/cifar10_cgan_pd
  python -m ganjax.main --config=experiments/cifar10_sngan_projection.py:tiny --workdir=runs/cgan_pd_tiny

Miyato and Koyama 2018 ("cGANs with Projection Discriminator"), trained as Mimicry trains its
cGAN-PD baseline (Lee and Town 2020, README, CIFAR-10 table; torch_mimicry/nets/cgan_pd/
cgan_pd_32.py): the ResNet generator with 256 channels whose residual blocks' batch norms are
class-conditional (`ganjax.models.conditional.ClassConditionalBatchNorm`, gains initialised at
1), the spectrally normalised ResNet discriminator with 128 channels and a spectrally normalised
class embedding projected on its features, z of 128 dimensions, the hinge loss, 5 discriminator
updates per generator update, Adam with learning rate 2e-4, beta1 0 and beta2 0.9, both learning
rates decaying linearly to 0 over the run, batch 64, 100,000 generator updates, fake labels
uniform over the 10 classes. Mimicry reports for it FID 10.84 +- 0.03, IS 8.25 +- 0.13 and KID
0.0070 (50,000 generated images against the 50,000 training images; its unconditional SNGAN
under the same protocol: FID 16.77). Here the evaluation every 5,000 steps is today's quick one
(10,000 against 10,000), with the accuracy of the run's classifier on the generated images
against their labels and the intra-class FID (`eval.metrics`); `python -m ganjax.evaluate
--workdir=<run> --protocol=mimicry` measures a checkpoint as Mimicry did.
"""
import ml_collections

from ganjax import configs
from ganjax import data
from ganjax import image_quality

STEPS = 100_000
N_CRITIC = 5


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=("tiny",))
  config = configs.gan_config(seed=0)
  config.data = data.image_config("cifar10", image_size=32)
  # Off: DiffAugment with --config.augment.policy=color,translation,cutout --config.augment.p=1,
  # ADA with --config.augment.policy=bgc --config.augment.target=0.6 (ganjax.augment).
  config.augment = configs.augment_config()
  config.conditional = configs.conditional_config(True)
  config.model = ml_collections.ConfigDict({
      "generator": "resnet",
      "generator_kwargs": {"channels": 3, "features": 256},
      "discriminator": "resnet",
      "discriminator_kwargs": {"features": 128, "spectral_norm": True,
                               "conditioning": "projection"},
      "dtype": "",
      "latent_dim": 128,
  })
  config.loss = "hinge"
  # Linear decay to 0 over the run: STEPS generator updates, N_CRITIC times as many for D.
  adam = {"name": "adam", "learning_rate": 2e-4, "b1": 0.0, "b2": 0.9, "decay_to": 0.0}
  config.optimizer = ml_collections.ConfigDict({
      "generator": {**adam, "decay_steps": STEPS},
      "discriminator": {**adam, "decay_steps": STEPS * N_CRITIC},
  })
  config.train = configs.train_config(steps=STEPS, batch_size=64, n_critic=N_CRITIC,
                                      log_every=100, checkpoint_every=5000, sample_every=1000)
  config.eval = image_quality.eval_config(metrics="fid,kid,accuracy,intra_fid",
                                          features="inception", every=5000, best="fid")
  if arg == "tiny":
    configs.shrink_images(config, width=8, widths=("model.generator_kwargs.features",
                                                   "model.discriminator_kwargs.features"))
  return config
