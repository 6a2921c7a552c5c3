"""MNIST with the TensorFlow DCGAN tutorial's networks (needs TFDS 'mnist' prepared).

  python -m ganjax.main --config=experiments/mnist_dcgan.py --workdir=runs/mnist_dcgan
  python -m ganjax.main --config=experiments/mnist_dcgan.py:tiny --workdir=runs/mnist_dcgan_tiny

Networks: the 28x28 preset of `ganjax.models.dcgan`, those of the TensorFlow tutorial "Deep
Convolutional Generative Adversarial Network"
(https://www.tensorflow.org/tutorials/generative/dcgan): a generator 7x7x256 -> 7x7x128 ->
14x14x64 -> 28x28x1 with 5x5 kernels, batch normalisation and LeakyReLU, and a discriminator of
two 5x5 strided convolutions (64, 128) without batch normalisation (the tutorial's dropout 0.3
is left out). As in the tutorial: z of 100 dimensions, batch 256, 50 epochs of the 60,000
training images (11,700 steps). The optimizer is that of Radford, Metz and Chintala 2016
("Unsupervised Representation Learning with Deep Convolutional Generative Adversarial
Networks", section 4): Adam with learning rate 2e-4 and beta1 0.5 (the tutorial uses 1e-4 and
the default beta1 0.9). Loss: non-saturating.
"""
import ml_collections

from ganjax import configs
from ganjax import data
from ganjax import image_quality


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  configs.check_argument(arg, __file__, valid=("tiny",))
  config = configs.gan_config(seed=0)
  config.data = data.image_config("mnist", image_size=28)
  # Off: DiffAugment with --config.augment.policy=color,translation,cutout --config.augment.p=1,
  # ADA with --config.augment.policy=bgc --config.augment.target=0.6 (ganjax.augment).
  config.augment = configs.augment_config()
  config.model = ml_collections.ConfigDict({
      "generator": "dcgan",
      "generator_kwargs": {"image_shape": (28, 28, 1), "base_features": 64},
      "discriminator": "dcgan",
      "discriminator_kwargs": {"image_shape": (28, 28, 1), "base_features": 64},
      "dtype": "",
      "latent_dim": 100,
  })
  config.loss = "non_saturating"
  config.optimizer = ml_collections.ConfigDict({
      "generator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.5},
      "discriminator": {"name": "adam", "learning_rate": 2e-4, "b1": 0.5},
  })
  config.train = configs.train_config(steps=11_700, batch_size=256, log_every=100,
                                      checkpoint_every=2000, sample_every=1000)
  # Image quality every eval.every steps on fixed noise, into metrics.jsonl and summary.json; the
  # best checkpoint by eval.best in best/ (ganjax.image_quality).
  config.eval = image_quality.eval_config(metrics="fid,kid,precision_recall,density_coverage",
                                       features="classifier", every=1000, best="fid")
  if arg == "tiny":
    # --config.eval.metrics=fid,kid --config.eval.every=2 to try the classifier FID.
    configs.shrink_images(config, widths=("model.generator_kwargs.base_features",
                                          "model.discriminator_kwargs.base_features"),
                          **{"eval.num_real": 16, "eval.batch_size": 8,
                             "eval.classifier_steps": 3})
  return config
