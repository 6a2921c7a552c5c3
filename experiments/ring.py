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


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = ml_collections.ConfigDict({"name": "ring", "kwargs": {}})
  config.model = ml_collections.ConfigDict({
      "generator": "mlp",
      "generator_kwargs": {"output_dim": 2, "hidden": (128, 128), "activation": "tanh"},
      "discriminator": "mlp",
      "discriminator_kwargs": {"hidden": (128, 128), "activation": "tanh"},
      "latent_dim": 256,
  })
  config.loss = "non_saturating"
  config.penalty = ml_collections.ConfigDict({"name": "", "weight": 0.0})
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 1e-3, "b1": 0.5},
      "discriminator": {"name": "adam", "learning_rate": 1e-4, "b1": 0.5},
  })
  config.train = ml_collections.ConfigDict({
      "steps": 5000,
      "batch_size": 512,
      "n_critic": 1,
      "ema_decay": 0.0,
      "reuse_fakes": False,
      "parallel": "none",
      "log_every": 500,
      "checkpoint_every": 1000,
      "sample_every": 1000,
      "keep_checkpoints": 3,
  })
  # Mode statistics of eval.num_samples samples every eval.every steps, in metrics.jsonl (0: off).
  config.eval = ml_collections.ConfigDict({"num_samples": 2500, "every": 500})
  if arg == "tiny":
    config.train.steps = 200
    config.train.log_every = 50
    config.train.checkpoint_every = 100
    config.train.sample_every = 100
    config.eval.every = 100
    config.train.batch_size = 64
    config.model.latent_dim = 16
  elif arg:
    raise ValueError(f"unknown argument {arg!r} for experiments/ring.py; valid: tiny")
  return config
