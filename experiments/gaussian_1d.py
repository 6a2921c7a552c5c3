"""A two-mode 1-D Gaussian mixture with small MLP players (toy data, no download).

  python -m ganjax.main --config=experiments/gaussian_1d.py --workdir=runs/gaussian_1d
  python -m ganjax.main --config=experiments/gaussian_1d.py:tiny --workdir=runs/gaussian_1d_tiny

The one-dimensional picture of Goodfellow et al. 2014 ("Generative Adversarial Nets", Figure 1):
the data density is known exactly, so the trained discriminator can be compared with the optimal
D*(x) = p_data(x) / (p_data(x) + p_g(x)) and the value of the game with -log 4
(`ganjax.theory`). The data are N(-2, 0.5^2) and N(2, 0.5^2) with equal weights, a mode-dropping
test in one dimension. The paper gives no hyperparameters for its figure; these are small and
conventional: two hidden tanh layers of 32 units in each player, z of 4 dimensions, Adam with
learning rate 1e-3 and beta1 0.5, batch 256, the non-saturating loss (the paper's section 3
remedy for the saturating one).
"""
import ml_collections

from ganjax import configs


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=("tiny",))
  config = configs.gan_config(seed=0)
  config.data = ml_collections.ConfigDict({
      "name": "mixture_1d",
      "kwargs": {"means": (-2.0, 2.0), "stds": 0.5},
  })
  config.model = ml_collections.ConfigDict({
      "generator": "mlp",
      "generator_kwargs": {"output_dim": 1, "hidden": (32, 32), "activation": "tanh"},
      "discriminator": "mlp",
      "discriminator_kwargs": {"hidden": (32, 32), "activation": "tanh"},
      "dtype": "",
      "latent_dim": 4,
  })
  config.loss = "non_saturating"
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 1e-3, "b1": 0.5},
      "discriminator": {"name": "adam", "learning_rate": 1e-3, "b1": 0.5},
  })
  config.train = configs.train_config(steps=5000, batch_size=256, log_every=500,
                                      checkpoint_every=2500, sample_every=2500)
  config.eval = ml_collections.ConfigDict({"num_samples": 10_000})
  if arg == "tiny":
    config.train.update({"steps": 100, "batch_size": 64, "log_every": 50,
                         "checkpoint_every": 50, "sample_every": 50})
    config.model.generator_kwargs.hidden = (16, 16)
    config.model.discriminator_kwargs.hidden = (16, 16)
    config.eval.num_samples = 500
  return config
