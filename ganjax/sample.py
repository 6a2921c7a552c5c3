"""Samples from a trained run: python -m ganjax.sample --workdir=<dir> --num=<N> --out=<file.npy>.

Restores the latest checkpoint of the run in `workdir` (its config is saved with it), draws N
samples from the generator (the EMA generator when the run keeps one) and writes them as a .npy
array; `--grid=<file.png>` also writes a picture of them (an image grid, or the samples over the
true density for toy data). A class-conditional generator makes them for `--labels` (by default
num / K of each class, class by class, so that the grid has one row per class), written beside
them as <out>_labels.npy.
"""
import re
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


def generate(state, num: int, seed: int = 0, use_ema: bool = True, batch_size: int = 1000,
             labels=None):
  """`num` samples in batches, as a numpy array; a class-conditional generator makes sample i
  for `labels[i]` (default: the classes in turn)."""
  import jax
  import numpy as np

  from ganjax import train

  key = jax.random.PRNGKey(seed)
  if labels is None:
    labels = train.default_labels(state, num)
  parts = [np.asarray(train.sample(
      state, min(batch_size, num - start), jax.random.fold_in(key, start),
      None if labels is None else labels[start:start + batch_size], use_ema=use_ema))
           for start in range(0, num, batch_size)]
  return np.concatenate(parts)


def parse_labels(value: str | None, num: int, num_classes: int):
  """The labels of `num` samples from --labels: None for an unconditional generator; by default
  num / K samples of each class, class by class (a class grid's rows); 'turn' for the classes
  in turn; or comma-separated classes, repeated in turn to `num`.

  Raises:
    ValueError: labels for an unconditional generator, or a class out of range, in one line.
  """
  import numpy as np

  if not num_classes:
    if value:
      raise ValueError("--labels: this run's generator is not class-conditional")
    return None
  if not value:
    from ganjax import experiment as experiment_lib
    return experiment_lib.class_grid_labels(num_classes, -(-num // num_classes))[:num]
  if value == "turn":
    return np.arange(num, dtype=np.int32) % num_classes
  try:
    classes = np.array([int(part) for part in value.split(",")], np.int32)
  except ValueError:
    raise ValueError(f"--labels must be comma-separated classes or 'turn', got {value!r}") from None
  if classes.min() < 0 or classes.max() >= num_classes:
    raise ValueError(f"--labels: classes must be in [0, {num_classes}), got {value!r}")
  return np.resize(classes, num)


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
  flags.DEFINE_string("labels", None, "A class-conditional generator's labels: comma-separated "
                      "classes repeated in turn ('3' or '0,5'), or 'turn' for every class in "
                      "turn; default: num / K samples of each class, class by class (the "
                      "grid's rows). Written beside --out as <out>_labels.npy.")
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
    labels = parse_labels(FLAGS.labels, FLAGS.num, state.spec.num_classes)
  except (experiment_lib.RunError, checkpoint_lib.CheckpointError, ValueError) as error:
    sys.exit(f"error: {error}")
  samples = generate(state, FLAGS.num, FLAGS.seed, FLAGS.ema, labels=labels)
  np.save(FLAGS.out, samples)
  written = f"wrote {samples.shape[0]} samples of shape {samples.shape[1:]} to {FLAGS.out}"
  if labels is not None:
    labels_out = re.sub(r"(\.npy)?$", "_labels.npy", FLAGS.out, count=1)
    np.save(labels_out, labels)
    written += f", their labels to {labels_out}"
  if FLAGS.grid:
    # A class grid (one row per class) when the labels go class by class.
    columns = None
    if labels is not None and not FLAGS.labels:
      columns = -(-FLAGS.num // state.spec.num_classes)
    pictures.save_samples(FLAGS.grid, samples, state.spec.data, labels=labels, columns=columns)
  print(written)


if __name__ == "__main__":
  _define_flags()
  cli.run(main)
