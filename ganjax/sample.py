"""Samples from a trained run: python -m ganjax.sample --workdir=<dir> --num=<N> --out=<file.npy>.

Restores the latest checkpoint of the run in `workdir` (its config is saved with it), draws N
samples from the generator (the EMA generator when the run keeps one) and writes them as a .npy
array; `--grid=<file.png>` also writes a picture of them (an image grid, or the samples over the
true density for toy data). A class-conditional generator makes them for `--labels` (by default
num / K of each class, class by class, so that the grid has one row per class), written beside
them as <out>_labels.npy.

A style-based generator (stylegan2) also takes `--truncation=psi` (the truncation trick: each w
moved towards the tracked average w_avg, w_avg + psi (w - w_avg); 0.7 is StyleGAN's picture
setting) and `--interpolate=S`: --num rows of S images along straight lines in w between two
latents each, written as an array (num, S, H, W, C) and a grid S images wide.
"""
import functools
import math
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
             labels=None, truncation: float = 1.0):
  """`num` samples in batches, as a numpy array; a class-conditional generator makes sample i
  for `labels[i]` (default: the classes in turn); a style-based one truncates its w by
  `truncation` (1: none)."""
  import jax
  import numpy as np

  from ganjax import train

  key = jax.random.PRNGKey(seed)
  if labels is None:
    labels = train.default_labels(state, num)
  parts = [np.asarray(_jitted_sample()(
      state, min(batch_size, num - start), jax.random.fold_in(key, start),
      None if labels is None else labels[start:start + batch_size], use_ema=use_ema,
      truncation_psi=truncation)) for start in range(0, num, batch_size)]
  return np.concatenate(parts)


@functools.cache
def _jitted_sample():
  """`train.sample` jitted once per process (built on first use: the command imports JAX
  lazily)."""
  from ganjax import train

  return train.jit(train.sample, static_argnames=("num", "use_ema", "truncation_psi"))


def interpolate(state, num: int, steps: int, seed: int = 0, use_ema: bool = True, labels=None,
                truncation: float = 1.0):
  """`num` rows of `steps` images along lines in w between two latents per row (drawn with
  `seed`; row i for `labels[i]` when class-conditional), as a numpy array (num, steps, ...)."""
  import jax
  import numpy as np

  from ganjax import train

  z_from, z_to = jax.random.normal(jax.random.PRNGKey(seed), (2, num, state.spec.latent_dim))
  if labels is None:
    labels = train.default_labels(state, num)
  return np.asarray(train.interpolate(state, z_from, z_to, steps, labels, use_ema, truncation))


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


def check_style_flags(state, truncation: float, interpolate: int) -> None:
  """Raises a one-line ValueError for --truncation or --interpolate that the run's generator or
  the values do not allow."""
  from ganjax import train

  if not math.isfinite(truncation):
    raise ValueError(f"--truncation must be a finite number, got {truncation}")
  train.check_truncation(state, truncation)
  if interpolate and (interpolate < 2 or not train.style_based(state.generator)):
    raise ValueError("--interpolate needs S >= 2 and a style-based generator (stylegan2), got "
                     f"{interpolate} and {type(state.generator).__name__}")


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
  flags.DEFINE_float("truncation", 1.0, "The truncation trick of a style-based generator "
                     "(stylegan2): w_avg + psi (w - w_avg); 1: none, 0.7: "
                     "StyleGAN's pictures.")
  flags.DEFINE_integer("interpolate", 0, "With S >= 2 (style-based generators): --num rows of "
                       "S images along lines in w between two latents each; --out holds "
                       "(num, S, H, W, C) and the grid is S images wide.")
  cli.define_compilation_cache_flag()
  flags.mark_flags_as_required(["workdir", "out"])


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  cli.enable_compilation_cache()
  import numpy as np

  from ganjax import checkpoint as checkpoint_lib
  from ganjax import pictures
  from ganjax import experiment as experiment_lib

  try:
    state, _ = load_state(FLAGS.workdir, FLAGS.step)
    labels = parse_labels(FLAGS.labels, FLAGS.num, state.spec.num_classes)
    check_style_flags(state, FLAGS.truncation, FLAGS.interpolate)
  except (experiment_lib.RunError, checkpoint_lib.CheckpointError, ValueError) as error:
    sys.exit(f"error: {error}")
  if FLAGS.interpolate:
    rows = interpolate(state, FLAGS.num, FLAGS.interpolate, FLAGS.seed, FLAGS.ema, labels,
                       FLAGS.truncation)
    np.save(FLAGS.out, rows)
    print(f"wrote {rows.shape[0]} interpolations of {rows.shape[1]} images of shape "
          f"{rows.shape[2:]} to {FLAGS.out}")
    if FLAGS.grid:
      pictures.save_samples(FLAGS.grid, rows.reshape(-1, *rows.shape[2:]), None,
                            columns=FLAGS.interpolate)
    return
  samples = generate(state, FLAGS.num, FLAGS.seed, FLAGS.ema, labels=labels,
                     truncation=FLAGS.truncation)
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
