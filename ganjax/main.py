"""The command line: python -m ganjax.main --config=experiments/<name>.py[:arg] --workdir=<dir>.

Any config field can be overridden: --config.train.steps=100. The work is in
`ganjax.runner.train_and_evaluate`, which a test or a notebook can call directly. On several
processes (a TPU pod, a GPU cluster) pass --distributed: JAX's own runtime connects them
(`jax.distributed.initialize()` reads the cluster from the environment).
"""
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "An experiment file (experiments/<name>.py[:arg]).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for this run's checkpoints, metrics and samples.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-process jobs).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
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
  app.run(main)
