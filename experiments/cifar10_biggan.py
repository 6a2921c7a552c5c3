"""CIFAR-10, class-conditional BigGAN at 32x32 (needs TFDS 'cifar10' prepared).

  python -m ganjax.main --config=experiments/cifar10_biggan.py --workdir=runs/cifar10_biggan
  python -m ganjax.main --config=experiments/cifar10_biggan.py:tiny --workdir=runs/cifar10_biggan_tiny

Brock, Donahue and Simonyan 2019 ("Large Scale GAN Training for High Fidelity Natural Image
Synthesis") at CIFAR-10's size, as BigGAN-PyTorch's CIFAR script trains it
(scripts/launch_cifar_ema.sh): the 32x32 architecture (`ganjax.models.biggan`: residual blocks
of 4 * 64 channels, a shared class embedding of 128 dimensions with hierarchical z of 128
dimensions feeding every generator block's conditional batch norm, spectral norm in both
players, a projection discriminator, N(0, 0.02) initialisation), the hinge loss, 4
discriminator updates per generator update, Adam with learning rate 2e-4 for both players and
betas (0, 0.999), batch 50, an EMA of the generator with decay 0.9999 (BigGAN-PyTorch starts it
at iteration 1000; here at step 0), 500 epochs (500,000 generator updates at 50,000 images and
batch 50), fake labels uniform over the 10 classes. Two settings follow the paper where that
script turns them off: self-attention at 16x16 in G and D (`attention_resolution`, 0: none) and
the orthogonal regularisation of G with beta 1e-4 in the paper's form beta * sum ||W W^T (1 - I)||^2
(`penalty.orthogonal_weight`; BigGAN-PyTorch's `--G_ortho 1e-4` is weight 5e-5 here,
`ganjax.regularizers.orthogonal_penalty`). Published numbers for this model class on CIFAR-10:
FID 14.73 and IS 9.22 (the BigGAN paper's appendix), FID 9.59, and 8.70 with DiffAugment (Zhao
et al. 2020, Table 1, 100% of the data, their BigGAN-PyTorch set-up).
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
  config.conditional = configs.conditional_config(True)
  config.model = ml_collections.ConfigDict({
      "generator": "biggan",
      "generator_kwargs": {"channels": 3, "ch": 64, "shared_dim": 128,
                           "attention_resolution": 16},
      "discriminator": "biggan",
      "discriminator_kwargs": {"ch": 64, "attention_resolution": 16,
                               "conditioning": "projection"},
      "dtype": "",
      "latent_dim": 128,
  })
  config.loss = "hinge"
  config.penalty.orthogonal_weight = 1e-4
  adam = {"name": "adam", "learning_rate": 2e-4, "b1": 0.0, "b2": 0.999, "eps": 1e-8}
  config.optimizer = ml_collections.ConfigDict({"generator": dict(adam),
                                                "discriminator": dict(adam)})
  config.train = configs.train_config(steps=500_000, batch_size=50, n_critic=4,
                                      ema_decay=0.9999, log_every=100, checkpoint_every=5000,
                                      sample_every=1000)
  config.eval = image_quality.eval_config(metrics="fid,kid,accuracy,intra_fid",
                                          features="inception", every=5000, best="fid")
  if arg == "tiny":
    configs.shrink_images(config, width=4, widths=("model.generator_kwargs.ch",
                                                   "model.discriminator_kwargs.ch"),
                          **{"model.generator_kwargs.shared_dim": 8,
                             "model.latent_dim": 8, "train.batch_size": 8})
  return config
