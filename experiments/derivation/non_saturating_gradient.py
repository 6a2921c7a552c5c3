"""Theorem 2.5 (Arjovsky & Bottou 2017): with D* fixed the non-saturating gradient is grad [KL - 2 JSD].

  python -m ganjax.main --config=experiments/derivation/non_saturating_gradient.py --workdir=runs/non_saturating_gradient
  python -m ganjax.main --config=experiments/derivation/non_saturating_gradient.py:quick --workdir=runs/non_saturating_gradient_quick

p_data = 0.5 N(-2, 0.6^2) + 0.5 N(2, 0.6^2); an affine generator G(z) = b + w z at four
parameter points (b, w), chosen off the symmetric centre so that the two directions differ:
(0.5, 1.5) straddles both modes, (1, 0.8) and (-1, 0.4) sit between them, (3, 1) beyond one.
At each point the generator's gradient under the library's non-saturating and minimax losses,
with the fake logit from the exact D* (held fixed) and the latent at 262144 N(0, 1) quantiles, is
compared with finite differences of KL(p_g || p_data) - 2 JSD and of 2 JSD; then the
non-saturating gradient through an MLP discriminator (64, 64, leaky ReLU; Adam, cosine-decayed
from 3e-3, 5000 steps of 512 samples) trained against the fixed generator
(`ganjax.derivation.non_saturating_gradient`). Gradient descent on both objectives over (b, w),
from each point and from (2, 0.6) and (0, 2), locates their local minima: the one-mode pocket
of KL - 2 JSD and the minimum covering both modes.

The quick mode uses 65536 latent quantiles and a (32, 32) discriminator trained for 1000 steps
of 256 samples from 1e-2.
"""
import ml_collections

MODES = ("quick",)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.program = "study"
  config.study = "non_saturating_gradient"
  config.mode = "full"
  config.seed = 0
  config.data = ml_collections.ConfigDict(
      {"means": (-2.0, 2.0), "stds": (0.6, 0.6), "weights": (0.5, 0.5)})
  config.points = ((0.5, 1.5), (1.0, 0.8), (3.0, 1.0), (-1.0, 0.4))
  config.latent_samples = 262144
  config.grid = ml_collections.ConfigDict({"low": -14.0, "high": 14.0, "num": 5601})
  config.finite_difference_step = 1e-3
  config.discriminator = ml_collections.ConfigDict({
      "hidden": (64, 64), "activation": "leaky_relu", "learning_rate": 3e-3, "steps": 5000})
  config.batch_size = 512
  # Gradient descent on both objectives over (b, w), D* recomputed at every step, from each point
  # and from a one-mode and a covering start: the local minima of the family.
  config.flow = ml_collections.ConfigDict({
      "learning_rate": 0.02, "steps": 4000,
      "starts": {"one_mode": (2.0, 0.6), "covering": (0.0, 2.0)}})
  # What the full run measured (CPU), then the margin: the identities with D* hold to the
  # latent-quantile quadrature's error (~1/latent_samples): 3.7e-5 and 1.7e-5, angles to 7e-4
  # degrees (the same for every seed: nothing random enters); the trained discriminator's
  # gradient is off by up to 0.18, 0.19, 0.17 (relative, seeds 0, 1, 2) and 4.9, 5.2, 4.7
  # degrees, at the points where much of p_g lies off the data. The descent on KL - 2 JSD from
  # (2, 0.6) ends 1.8e-3 and 2.9e-3 from the mode (the modes' overlap moves it; 0.01 is the
  # claim), and the minima's differences are -0.554 and -0.121 (signs: theory).
  config.tolerances = ml_collections.ConfigDict({
      "optimal_non_saturating": 1e-4,
      "optimal_minimax": 5e-5,
      "angle": 5e-3,
      "trained_relative": 0.25,
      "trained_angle": 7.0,
      "pocket": 0.01,
  })
  if arg == "quick":
    config.mode = "quick"
    config.latent_samples = 65536
    config.discriminator.hidden = (32, 32)
    config.discriminator.steps = 1000
    config.discriminator.learning_rate = 1e-2
    config.batch_size = 256
    # Measured in the quick mode: 1.4e-4 and 3.8e-5 (a quarter of the latent quantiles), angles
    # 1.6e-3 degrees, the trained D 0.29 and 8.0 degrees (a smaller D, trained a fifth as long).
    config.tolerances.optimal_non_saturating = 3e-4
    config.tolerances.optimal_minimax = 1e-4
    config.tolerances.trained_relative = 0.4
    config.tolerances.trained_angle = 12.0
  elif arg is not None:
    raise ValueError(f"unknown argument {arg!r} for experiments/derivation/"
                     f"non_saturating_gradient.py; valid: {', '.join(MODES)} (or none for the "
                     "full run)")
  return config
