"""The 8-Gaussian ring with MLP players: the default experiment (toy data, no download).

  python -m ganjax.main --config=experiments/ring.py --workdir=runs/ring
  python -m ganjax.main --config=experiments/ring.py:tiny --workdir=runs/ring_tiny

The set-up of Metz et al. 2017 ("Unrolled Generative Adversarial Networks", appendix A): a mixture
of 8 Gaussians with standard deviation 0.01 on the unit circle (here at angles 2*pi*k/8, as in the
PacGAN code); z of 256 dimensions; generator and discriminator with two hidden tanh layers of
128 units; Adam with learning rate 1e-3 for G and 1e-4 for D, beta1 0.5; batch 512. The loss is
the non-saturating one of Goodfellow et al. 2014.
"""
import ml_collections

from ganjax import configs


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=("tiny",))
  config = configs.gan_config(seed=0)
  config.data = ml_collections.ConfigDict({"name": "ring", "kwargs": {}})
  config.model = ml_collections.ConfigDict({
      "generator": "mlp",
      "generator_kwargs": {"output_dim": 2, "hidden": (128, 128), "activation": "tanh"},
      "discriminator": "mlp",
      "discriminator_kwargs": {"hidden": (128, 128), "activation": "tanh"},
      "dtype": "",
      "latent_dim": 256,
  })
  config.loss = "non_saturating"
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 1e-3, "b1": 0.5},
      "discriminator": {"name": "adam", "learning_rate": 1e-4, "b1": 0.5},
  })
  config.train = configs.train_config(steps=5000, batch_size=512, log_every=500,
                                      checkpoint_every=1000, sample_every=1000)
  # Mode statistics of eval.num_samples samples every eval.every steps, in metrics.jsonl (0: off).
  config.eval = ml_collections.ConfigDict({"num_samples": 2500, "every": 500})
  if arg == "tiny":
    config.train.update({"steps": 200, "batch_size": 64, "log_every": 50,
                         "checkpoint_every": 100, "sample_every": 100})
    config.eval.every = 100
    config.model.latent_dim = 16
  return config
