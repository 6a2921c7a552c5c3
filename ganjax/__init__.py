"""ganjax: generative adversarial networks in JAX and Flax.

Every GAN objective is a pure function of discriminator outputs (`ganjax.losses`), the
derivation of adversarial training is available in closed form (`ganjax.theory`), and one
pytree (`ganjax.train.GANState`) holds everything a jitted update needs.
"""

__version__ = "0.1.0"
