"""CIFAR-10, StyleGAN2 with ADA in the ADA code's 'cifar' configuration (needs TFDS 'cifar10').

  python -m ganjax.main --config=experiments/cifar10_stylegan2_ada.py --workdir=runs/cifar10_stylegan2_ada
  python -m ganjax.main --config=experiments/cifar10_stylegan2_ada.py:tiny --workdir=runs/stylegan2_ada_tiny

Karras et al. 2020 ("Training Generative Adversarial Networks with Limited Data"), trained as
NVlabs/stylegan2-ada-pytorch trains CIFAR-10 (`train.py --cfg=cifar`): StyleGAN2
(`ganjax.models.stylegan2`) at 32x32 with 512 channels at every resolution (channel_base 32768,
channel_max 512), z and w of 512 dimensions and a mapping network of 2 layers, the
discriminator's 'orig' architecture (no residual connections) with minibatch-stddev groups of
32, no style mixing and no path-length regularisation; the non-saturating loss; lazy R1 with
gamma 0.01 (`penalty.weight` = gamma / 2) every 16 discriminator updates; Adam with learning
rate 0.0025, betas (0, 0.99), eps 1e-8 for both players (the discriminator's corrected for the
lazy interval to lr * 16/17 and betas^(16/17)); batch 64; an EMA generator with a half-life of
500 kimg ramped up over the first 5% of the images seen (`train.ema_kimg`, `train.ema_rampup`);
ADA (`augment.policy='bgc'`, target 0.6, p adjusted every 4 updates, 500k images from 0 to 1);
100,000 kimg (1,562,500 steps). Class-conditional by `conditional.enabled` (on: the
configuration of the paper's record; --config.conditional.enabled=False for the unconditional
one): the label is embedded and concatenated to z in the mapping network and projected in the
discriminator through its own 8-layer mapping network. The numbers it targets (the ADA paper,
fid50k_full: 50,000 generated images against the 50,000 training images): FID 2.42 (IS 10.14)
class-conditional, FID 2.92 (IS 9.83) unconditional. The reference computes the activations
of its 4 highest resolutions in float16 with activations clamped to +-256; here the networks'
default dtype, 'auto' (model.dtype), computes them in bfloat16 on a GPU or TPU and in float32 on a
CPU, with the same clamp.
"""
import ml_collections

from ganjax import configs
from ganjax import data
from ganjax import image_quality

BATCH = 64
KIMG = 100_000


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=("tiny",))
  config = configs.gan_config(seed=0)
  config.data = data.image_config("cifar10", image_size=32)
  config.augment = configs.augment_config("bgc", target=0.6, speed=500_000, interval=4)
  config.conditional = configs.conditional_config(True)
  config.model = configs.stylegan2_model(resolution=32, mapping_layers=2, style_mixing=0.0,
                                         architecture="orig", mbstd_group=32)
  config.loss = "non_saturating"
  config.penalty.update({"name": "r1", "weight": 0.01 / 2, "every": 16})
  config.optimizer = configs.stylegan2_optimizers(0.0025)
  config.train = configs.train_config(steps=KIMG * 1000 // BATCH, batch_size=BATCH,
                                      ema_kimg=500.0, ema_rampup=0.05, log_every=100,
                                      checkpoint_every=5000, sample_every=1000)
  # The ADA code's protocol: fid50k_full (50,000 generated images against the whole training set)
  # and is50k, with the 2015 graph's own resize; KID in 100 subsets of 1,000 as its kid50k_full.
  config.eval = image_quality.eval_config(metrics="fid,kid,is", protocol="stylegan2_ada",
                                          every=5000, best="fid")
  if arg == "tiny":
    configs.shrink_stylegan2(config)
  return config
