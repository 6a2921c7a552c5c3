"""The command line: python -m ganjax.main --config=experiments/<name>.py[:arg] --workdir=<dir>.

Any config field can be overridden: --config.train.steps=100 (a field the config lacks stops
with one line naming the closest ones). Paths (the workdir, the config's data folder, weight and
classifier files) may be relative to the current directory. The console shows ganjax's lines;
--verbosity=0 adds the INFO lines of the libraries underneath (Orbax, clu). The work is in
`ganjax.runner.train_and_evaluate`, which a test or a notebook can call directly. On several
processes (a TPU pod, a GPU cluster) pass --distributed: JAX's own runtime connects them
(`jax.distributed.initialize()` reads the cluster from the environment).
"""
import sys

from ganjax import cli  # first: it quiets TensorFlow before anything imports it

from absl import flags  # pylint: disable=g-bad-import-order
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "An experiment file (experiments/<name>.py[:arg]).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for this run's checkpoints, metrics and samples.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-process jobs).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  cli.no_arguments(argv)
  import jax
  if FLAGS.distributed:
    jax.distributed.initialize()
  from ganjax import runner
  try:
    runner.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except runner.Preempted as preempted:
    print(f"stopped: {preempted}", file=sys.stderr)
    sys.exit(128 + preempted.signal_number)
  except runner.RunError as error:
    sys.exit(f"error: {error}")


if __name__ == "__main__":
  cli.run(main)
