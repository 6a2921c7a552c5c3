"""Does alternating training reach the Nash equilibrium? The Dirac-GAN, then a real 1-D GAN.

  python -m ganjax.main --config=experiments/derivation/convergence.py --workdir=runs/convergence
  python -m ganjax.main --config=experiments/derivation/convergence.py:quick --workdir=runs/convergence_quick

Part 1, the Dirac-GAN of Mescheder et al. 2018 trained as Flax modules through the library:
minimax, non-saturating and Wasserstein losses, simultaneous and alternating SGD steps
(h = 0.1), R1 weights gamma in {0, 0.3, 3} (0.3: complex eigenvalues, spiralling in; 3: real,
overdamped; the critical gamma = 2 f'(0) gives a Jordan block and is avoided), 2000 steps from
(1e-3, 1e-3) for the growth rates and from (1, 1) for the phase plots and the value landscape
V(theta, psi), whose Hessian at the equilibrium is checked to be a saddle. Part 2, MLP players on
N(1, 0.5^2) with the non-saturating loss, Adam (1e-3, beta1 0.5), R1 gamma in {0, 1, 10},
4 seeds of 3000 steps each (`ganjax.derivation.convergence`).

The quick mode keeps only the minimax loss and gamma in {0, 0.3} for the Dirac-GAN (1000 steps),
and gamma in {0, 10} with 2 seeds of 1500 steps for the 1-D GAN.
"""
import ml_collections

MODES = ("quick",)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.program = "study"
  config.study = "convergence"
  config.mode = "full"
  config.seed = 0
  config.dirac = ml_collections.ConfigDict({
      "losses": ("minimax", "non_saturating", "wasserstein"),
      "gammas": (0.0, 0.3, 3.0),
      "learning_rate": 0.1,
      "steps": 2000,
      "near": (1e-3, 1e-3),
      "far": (1.0, 1.0),
      "batch_size": 8,
      "data_std": 1e-30,
  })
  config.real = ml_collections.ConfigDict({
      "data": {"mean": 1.0, "std": 0.5},
      "generator": {"hidden": (16, 16), "activation": "tanh"},
      "discriminator": {"hidden": (32, 32), "activation": "tanh"},
      "loss": "non_saturating",
      "optimizer": {"name": "adam", "learning_rate": 1e-3, "b1": 0.5},
      "batch_size": 128,
      "steps": 3000,
      "seeds": 4,
      "gammas": (0.0, 1.0, 10.0),
      "tail_fraction": 0.2,
      "quantiles": 1024,
  })
  # What the full runs measured (CPU, seeds 0, 1, 2), then the margin: the library's Dirac-GAN
  # trajectories equal theory.simulate_dirac_gan to at most 2.2e-30 of the distance (bitwise
  # until the decaying runs reach the data's spread, 1e-30); growth rates within 5.5e-6 of the
  # log spectral radius (the distance oscillates within each turn, which biases the tail slope);
  # V at the equilibrium to 3.8e-9 and the Hessian's eigenvalues exactly (float32 rounding); for
  # the 1-D GAN, tail W1 ratios R1 / none of 0.28, 0.27, 0.32 (gamma 1) and 0.13, 0.13, 0.13
  # (gamma 10), swing ratios 0.27, 0.24, 0.25 and 0.15, 0.12, 0.13, tail W1 0.032 with gamma 10
  # (medians over the 4 seeds of each run).
  config.tolerances = ml_collections.ConfigDict({
      "trajectory": 1e-6,
      "growth_rate": 2e-5,
      "real_w1": 0.06,
      "real_w1_ratio": 0.5,
      "real_swing_ratio": 0.5,
      "landscape": 1e-6,
  })
  if arg == "quick":
    config.mode = "quick"
    config.dirac.losses = ("minimax",)
    config.dirac.gammas = (0.0, 0.3)
    config.dirac.steps = 1000
    config.real.gammas = (0.0, 10.0)
    config.real.seeds = 2
    config.real.steps = 1500
    # Measured in the quick mode: growth rates within 1.6e-5 (a tail half as long), tail W1
    # 0.058 with gamma 10 and ratios 0.31 (half the steps, two seeds).
    config.tolerances.growth_rate = 3e-5
    config.tolerances.real_w1 = 0.1
  elif arg is not None:
    raise ValueError(f"unknown argument {arg!r} for experiments/derivation/convergence.py; "
                     f"valid: {', '.join(MODES)} (or none for the full run)")
  return config
