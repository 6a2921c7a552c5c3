"""The 8-Gaussian ring, class-conditional: a sample made for class k must land on mode k.

  python -m ganjax.main --config=experiments/ring_conditional.py --workdir=runs/ring_conditional
  python -m ganjax.main --config=experiments/ring_conditional.py:tiny --workdir=runs/ring_cond_tiny
  python -m ganjax.main --config=experiments/ring_conditional.py:acgan --workdir=runs/ring_acgan

The label of a real sample is its mode. The players and schedule of `ring.py` (Metz et al. 2017's set-up: MLPs with two hidden tanh
layers of 128 units, z of 256 dimensions, Adam 1e-3 / 1e-4 with beta1 0.5, batch 512, the
non-saturating loss), made class-conditional: the generator takes a learned class embedding
beside z, the discriminator projects its last hidden layer on a class embedding (Miyato and
Koyama 2018; `:acgan` instead gives it a class head and ACGAN's auxiliary classification loss,
Odena et al. 2017; `:tac`, TAC-GAN's twin classifiers, Gong et al. 2019). Fake labels are
uniform over the 8 classes. Besides the mode statistics, every evaluation measures
label_accuracy: the fraction of the samples generated for class k that are high-quality samples
of mode k, averaged over the classes (`ganjax.metrics.conditional_mode_statistics`; a generator
that ignored its labels would score high_quality / 8).
"""
import ml_collections

from ganjax import configs

ARGUMENTS = ("tiny", "acgan", "tac")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=ARGUMENTS)
  config = configs.gan_config(seed=0)
  config.data = ml_collections.ConfigDict({"name": "ring", "kwargs": {}})
  config.conditional = configs.conditional_config(True)
  conditioning = arg if arg in ("acgan", "tac") else "projection"
  config.model = ml_collections.ConfigDict({
      "generator": "mlp",
      "generator_kwargs": {"output_dim": 2, "hidden": (128, 128), "activation": "tanh"},
      "discriminator": "mlp",
      "discriminator_kwargs": {"hidden": (128, 128), "activation": "tanh",
                               "conditioning": conditioning},
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
  config.eval = ml_collections.ConfigDict({"num_samples": 2500, "every": 500})
  if arg == "tiny":
    config.train.update({"steps": 200, "batch_size": 64, "log_every": 50,
                         "checkpoint_every": 100, "sample_every": 100})
    config.eval.every = 100
    config.model.latent_dim = 16
  return config
