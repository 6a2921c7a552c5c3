"""The 25-Gaussian grid with PacGAN's toy networks (toy data, no download).

  python -m ganjax.main --config=experiments/grid.py --workdir=runs/grid
  python -m ganjax.main --config=experiments/grid.py:tiny --workdir=runs/grid_tiny

The set-up of Lin, Khetan, Fanti and Oh 2018 ("PacGAN: The power of two samples in generative
adversarial networks", section 5.1, and their code fjxmlzn/PacGAN,
synthetic_data_experiments/2DGrid_GAN&PacGAN/config.py), after Srivastava et al. 2017
(VEEGAN): 25 Gaussians with standard deviation 0.05 centred on {-4, -2, 0, 2, 4}^2; z of 2
dimensions; a generator of four hidden ReLU layers of 400 units with batch normalisation; a
discriminator of three maxout layers of 200 units with 5 pieces; Adam with learning rate 1e-4 and
beta1 0.8 for both players; batch 100; the non-saturating loss. PacGAN trains for 400 epochs of
100,000 samples (400,000 steps); this file runs 10,000 steps, five to ten minutes on two CPU
cores, after which about 21 of the 25 modes hold samples but most samples still lie between
modes (`--config.train.steps=400000` for the paper's length). Packing (PacGAN's m > 1) is not
applied here.
"""
import ml_collections

from ganjax import configs


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=("tiny",))
  config = configs.gan_config(seed=0)
  config.data = ml_collections.ConfigDict({"name": "grid", "kwargs": {}})
  config.model = ml_collections.ConfigDict({
      "generator": "mlp",
      "generator_kwargs": {"output_dim": 2, "hidden": (400, 400, 400, 400),
                           "activation": "relu", "batch_norm": True},
      "discriminator": "mlp",
      "discriminator_kwargs": {"hidden": (200, 200, 200), "maxout_pieces": 5},
      "dtype": "",
      "latent_dim": 2,
  })
  config.loss = "non_saturating"
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 1e-4, "b1": 0.8},
      "discriminator": {"name": "adam", "learning_rate": 1e-4, "b1": 0.8},
  })
  config.train = configs.train_config(steps=10_000, batch_size=100, log_every=500,
                                      checkpoint_every=2500, sample_every=2500)
  # Mode statistics of eval.num_samples samples every eval.every steps, in metrics.jsonl (0: off).
  config.eval = ml_collections.ConfigDict({"num_samples": 2500, "every": 500})
  if arg == "tiny":
    config.train.update({"steps": 100, "batch_size": 32, "log_every": 50,
                         "checkpoint_every": 50, "sample_every": 50})
    config.eval.update({"every": 50, "num_samples": 500})
    config.model.generator_kwargs.hidden = (32, 32, 32, 32)
    config.model.discriminator_kwargs.hidden = (16, 16, 16)
  return config
