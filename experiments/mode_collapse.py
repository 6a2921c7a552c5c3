"""The mode-collapse benchmark: 10 seeds of one configuration on the ring or grid, one table row.

  python -m ganjax.main --config=experiments/mode_collapse.py --workdir=runs/mc_ring_fast_nonsat
  python -m ganjax.main --config=experiments/mode_collapse.py:tiny --workdir=runs/mc_tiny
  python -m ganjax.main --config=experiments/mode_collapse.py:grid,pacgan,pack2 --workdir=runs/mc

The argument is up to five comma-separated words, in any order: the dataset (ring, grid; default
ring), the preset (pacgan, fast, or tiny for tests; default fast), `decay` (both learning rates
fall linearly to 0 over the run's train.steps), the configuration (default nonsat) and, for a
class-conditional GAN whose label k is mode k, the discriminator's conditioning: `projection`
(Miyato and Koyama 2018), `acgan` (Odena et al. 2017) or `tac` (Gong et al. 2019); the row then
adds the per-class label accuracy (`ganjax.metrics.conditional_mode_statistics`). The best
configuration measured (benchmarks/mode_collapse/results.md) is
`ring,pacgan,pack2,decay --config.train.steps=200000`: every mode in 10 of 10 seeds, 98.4% high
quality. The configurations:

  minimax    the minimax (saturating) generator loss          (Goodfellow et al. 2014)
  nonsat     the non-saturating generator loss                (Goodfellow et al. 2014)
  wgan_gp    Wasserstein loss, gradient penalty 10, 5 critic updates per generator update
             (Gulrajani et al. 2017)
  hinge      hinge loss                                       (Lim and Ye 2017; Miyato et al. 2018)
  lsgan      least-squares loss, 0-1-1 coding                 (Mao et al. 2017)
  nonsat_r1  non-saturating loss + R1 penalty, gamma = 1 (penalty.weight = gamma / 2)
             (Mescheder et al. 2018)
  pack2, pack3, pack4   non-saturating loss, PacGAN packing of m = 2, 3, 4 samples per
             discriminator input (Lin et al. 2018); train.batch_size is m times the preset's, so
             that D scores as many packs per step as an unpacked D scores samples

Presets. pacgan: the PacGAN toy networks (Lin et al. 2018, section 5.1; see experiments/grid.py):
G 4 x 400 ReLU with batch norm, z of 2 dimensions; D maxout, 3 x 200 units, 5 pieces; Adam 1e-4,
beta1 0.8 for both players; batch 100; 50,000 steps (PacGAN trains 400,000:
--config.train.steps=400000). fast: smaller and faster networks for a sweep on a CPU (G
3 x 64 ReLU with batch norm, D maxout 2 x 64 units, 3 pieces, Adam 1e-3, beta1 0.5, batch 100,
1,200 steps: about 30 steps per second for 10 seeds side by side on 2 shared CPU cores, so that
the sweep of 18 rows took 19 minutes; far too short to reach the target).

The data and the protocol are those of the PacGAN code (`ganjax.data.toy.ring`, `toy.grid`,
`ganjax.metrics.mode_statistics`): 2,500 samples per seed; mean and standard error over 10 seeds,
trained side by side in one compiled program (`config.seeds`; `ganjax.programs.seeds`).
`benchmarks/mode_collapse.py` sweeps every configuration.
"""
import ml_collections

from ganjax import configs

DATASETS = ("ring", "grid")
PRESETS = ("fast", "pacgan", "tiny")
CONFIGS = ("minimax", "nonsat", "wgan_gp", "hinge", "lsgan", "nonsat_r1", "pack2", "pack3",
           "pack4")
CONDITIONINGS = ("projection", "acgan", "tac")

# The presets' models, optimizers, batch sizes and step counts.
_PRESETS = {
    "pacgan": {
        "generator_kwargs": {"output_dim": 2, "hidden": (400, 400, 400, 400), "activation": "relu",
                             "batch_norm": True},
        "discriminator_kwargs": {"hidden": (200, 200, 200), "maxout_pieces": 5},
        "latent_dim": 2, "learning_rate": 1e-4, "b1": 0.8, "batch_size": 100, "steps": 50_000,
        "log_every": 1000, "eval_every": 5000,
    },
    "fast": {
        "generator_kwargs": {"output_dim": 2, "hidden": (64, 64, 64), "activation": "relu",
                             "batch_norm": True},
        "discriminator_kwargs": {"hidden": (64, 64), "maxout_pieces": 3},
        "latent_dim": 2, "learning_rate": 1e-3, "b1": 0.5, "batch_size": 100, "steps": 1200,
        "log_every": 400, "eval_every": 400,
    },
    # Without batch norm in G: there, Adam turns the rounding noise in the exactly zero gradient
    # of the bias before batch norm into full-size updates, so that seeds side by side differ from
    # seeds alone by more than rounding (about 1e-3 after 20 steps); tests compare the two.
    "tiny": {
        "generator_kwargs": {"output_dim": 2, "hidden": (16, 16), "activation": "relu",
                             "batch_norm": False},
        "discriminator_kwargs": {"hidden": (16, 16), "maxout_pieces": 3},
        "latent_dim": 2, "learning_rate": 1e-3, "b1": 0.5, "batch_size": 32, "steps": 20,
        "log_every": 10, "eval_every": 10,
    },
}


def _parse(arg: str | None) -> tuple[str, str, str, bool, str]:
  dataset, preset, name, decay, conditioning = "ring", "fast", "nonsat", False, ""
  for word in (arg or "").split(","):
    if word == "decay":
      decay = True
    elif word in CONDITIONINGS:
      conditioning = word
    elif word in DATASETS:
      dataset = word
    elif word in PRESETS:
      preset = word
    elif word in CONFIGS:
      name = word
    elif word:
      raise ValueError(f"unknown word {word!r} in the argument {arg!r} of "
                       f"experiments/mode_collapse.py; valid: datasets {', '.join(DATASETS)}; "
                       f"presets {', '.join(PRESETS)}; configs {', '.join(CONFIGS)}; "
                       f"class-conditional {', '.join(CONDITIONINGS)}; decay")
  return dataset, preset, name, decay, conditioning


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  dataset, preset, name, decay, conditioning = _parse(arg)
  settings = _PRESETS[preset]
  # One reference: with the word decay, the learning rates decay over train.steps, also when
  # --config.train.steps changes it.
  steps = ml_collections.FieldReference(settings["steps"])
  config = ml_collections.ConfigDict()
  config.program = "seeds"
  config.seed = 0
  config.seeds = 3 if preset == "tiny" else 10
  config.benchmark = ml_collections.ConfigDict(
      {"config": f"{name}+{conditioning}" if conditioning else name, "preset": preset})
  config.data = ml_collections.ConfigDict({"name": dataset, "kwargs": {}})
  config.model = ml_collections.ConfigDict({
      "generator": "mlp",
      "generator_kwargs": dict(settings["generator_kwargs"]),
      "discriminator": "mlp",
      "discriminator_kwargs": dict(settings["discriminator_kwargs"]),
      "dtype": "",
      "latent_dim": settings["latent_dim"],
  })
  config.loss = "non_saturating"
  config.penalty = ml_collections.ConfigDict({"name": "", "weight": 0.0})
  config.conditional = configs.conditional_config(bool(conditioning))
  if conditioning:
    config.model.discriminator_kwargs.conditioning = conditioning
  # decay_steps > 0: the learning rate falls linearly to learning_rate * decay_to over that many
  # updates (`ganjax.experiment.make_optimizer`).
  adam = {"name": "adam", "learning_rate": settings["learning_rate"], "b1": settings["b1"],
          "decay_steps": 0, "decay_to": 0.0}
  config.optimizer = ml_collections.ConfigDict({"generator": dict(adam),
                                                "discriminator": dict(adam)})
  # The benchmark keeps no checkpoints and draws one picture at the end.
  config.train = configs.train_config(steps=steps, batch_size=settings["batch_size"],
                                      log_every=settings["log_every"], checkpoint_every=0,
                                      sample_every=0)
  # Mode statistics averaged over seeds every eval.every steps (0: off), into metrics.jsonl.
  config.eval = ml_collections.ConfigDict({"num_samples": 2500, "every": settings["eval_every"]})

  if name == "minimax":
    config.loss = "minimax"
  elif name == "wgan_gp":
    config.loss = "wasserstein"
    config.penalty = ml_collections.ConfigDict({"name": "gradient_penalty", "weight": 10.0})
    config.train.n_critic = 5
  elif name == "hinge":
    config.loss = "hinge"
  elif name == "lsgan":
    config.loss = "least_squares"
  elif name == "nonsat_r1":
    config.penalty = ml_collections.ConfigDict({"name": "r1", "weight": 0.5})
  elif name.startswith("pack"):
    pack = int(name[len("pack"):])
    config.model.discriminator_kwargs.pack = pack
    config.train.batch_size *= pack
  if decay:
    config.optimizer.generator.decay_steps = steps
    config.optimizer.discriminator.decay_steps = steps * config.train.n_critic
  return config
