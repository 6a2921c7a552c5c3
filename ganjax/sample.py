"""Samples from a trained run: python -m ganjax.sample --workdir=<dir> --num=<N> --out=<file.npy>.

Restores the latest checkpoint of the run in `workdir` (its config is saved with it), draws N
samples from the generator (the EMA generator when the run keeps one) and writes them as a .npy
array; `--grid=<file.png>` also writes a picture of them (an image grid, or the samples over the
true density for toy data).
"""
import sys

from ganjax import cli  # first: it quiets TensorFlow before anything imports it

from absl import flags  # pylint: disable=g-bad-import-order


def load_state(workdir, step=None):
  """The training state and config of the run in `workdir` (latest checkpoint by default)."""
  from ganjax import checkpoint as checkpoint_lib
  from ganjax import experiment as experiment_lib

  with checkpoint_lib.Checkpointer(workdir, read_only=True) as checkpoints:
    step = checkpoints.latest_step() if step is None else step
    if step is None:
      raise experiment_lib.RunError(f"no checkpoint in {workdir}")
    config = experiment_lib.config_from_dict(checkpoints.read_config(step))
    experiment = experiment_lib.build(config, check_data=False)
    state, _, _ = checkpoints.restore(experiment.abstract_state(config.seed), step)
  return state, config


def generate(state, num: int, seed: int = 0, use_ema: bool = True, batch_size: int = 1000):
  """`num` samples in batches, as a numpy array."""
  import jax
  import numpy as np

  from ganjax import train

  key = jax.random.PRNGKey(seed)
  parts = [np.asarray(train.sample(state, min(batch_size, num - start),
                                   jax.random.fold_in(key, start), use_ema=use_ema))
           for start in range(0, num, batch_size)]
  return np.concatenate(parts)


def _define_flags() -> None:
  """The command's flags, defined only when it runs as a program (`ganjax.evaluate` imports
  this module and defines flags of the same names)."""
  flags.DEFINE_string("workdir", None, "The run's workdir (it holds checkpoints/).")
  flags.DEFINE_integer("num", 64, "Number of samples.")
  flags.DEFINE_string("out", None, "Where to write the samples (.npy).")
  flags.DEFINE_string("grid", None, "Where to write a picture of the samples (.png).")
  flags.DEFINE_integer("seed", 0, "Seed of the latent vectors.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
  flags.DEFINE_bool("ema", True, "Use the EMA generator when the run keeps one.")
  flags.mark_flags_as_required(["workdir", "out"])


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  import numpy as np

  from ganjax import checkpoint as checkpoint_lib
  from ganjax import pictures
  from ganjax import experiment as experiment_lib

  try:
    state, _ = load_state(FLAGS.workdir, FLAGS.step)
  except (experiment_lib.RunError, checkpoint_lib.CheckpointError) as error:
    sys.exit(f"error: {error}")
  samples = generate(state, FLAGS.num, FLAGS.seed, FLAGS.ema)
  np.save(FLAGS.out, samples)
  if FLAGS.grid:
    pictures.save_samples(FLAGS.grid, samples, state.spec.data)
  print(f"wrote {samples.shape[0]} samples of shape {samples.shape[1:]} to {FLAGS.out}")


if __name__ == "__main__":
  _define_flags()
  cli.run(main)
