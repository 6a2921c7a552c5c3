"""The command line: python -m ganjax.main --config=experiments/<name>.py[:arg] --workdir=<dir>.

Any config field can be overridden: --config.train.steps=100 (a field the config lacks stops
with one line naming the closest ones). Paths (the workdir, the config's data folder, weight and
classifier files) may be relative to the current directory. The console shows ganjax's lines;
--verbosity=0 adds the INFO lines of the libraries underneath (Orbax, clu). The work is in
`ganjax.runner.train_and_evaluate`, which a test or a notebook can call directly. Compiled
programs are kept for the next run in JAX's persistent compilation cache (--compilation_cache:
a folder, or 'off'; `ganjax.compilation.enable_persistent_cache`). On several
processes (a TPU pod, a GPU cluster) pass --distributed: JAX's own runtime connects them
(`ganjax.distributed.initialize`: on SLURM, a TPU pod slice or Open MPI it reads the cluster from
the environment; elsewhere give --coordinator_address, --num_processes and --process_id, or run
the processes under `python -m ganjax.launch`, which sets them).
"""
import sys

from ganjax import cli  # first: it quiets TensorFlow before anything imports it

from absl import flags  # pylint: disable=g-bad-import-order
from ml_collections import config_flags

from ganjax import distributed

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "An experiment file (experiments/<name>.py[:arg]).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for this run's checkpoints, metrics and samples.")
flags.DEFINE_bool("distributed", False, "Join the other processes of a multi-process job "
                  "(jax.distributed.initialize).")
flags.DEFINE_string("coordinator_address", None, "With --distributed: host:port of process 0's "
                    "coordinator (default: JAX_COORDINATOR_ADDRESS, or the cluster's).")
flags.DEFINE_integer("num_processes", None, "With --distributed: the number of processes "
                     "(default: GANJAX_NUM_PROCESSES, or the cluster's).")
flags.DEFINE_integer("process_id", None, "With --distributed: this process's index (default: "
                     "GANJAX_PROCESS_ID, or the cluster's).")
flags.DEFINE_integer("heartbeat_timeout", distributed.DEFAULT_HEARTBEAT_TIMEOUT,
                     "With --distributed: seconds after which a "
                     "process that stopped answering counts as dead and the others stop.")
cli.define_compilation_cache_flag()
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  cli.no_arguments(argv)
  if FLAGS.distributed:
    try:
      distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                             FLAGS.heartbeat_timeout)
    except distributed.DistributedError as error:
      sys.exit(f"error: {error}")
  elif any(FLAGS[name].present for name in ("coordinator_address", "num_processes",
                                            "process_id", "heartbeat_timeout")):
    sys.exit("error: --coordinator_address, --num_processes, --process_id and "
             "--heartbeat_timeout need --distributed")
  # Before anything compiles; on several processes they share the folder (process 0 writes).
  cli.enable_compilation_cache()
  from ganjax import runner
  # On several processes, a process that ends together with the others (the run is complete,
  # or all were preempted at the same step) tells them so; one that fails alone does not, and
  # the others stop when its heartbeat does (`ganjax.distributed.Watchdog`).
  try:
    runner.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except runner.Preempted as preempted:
    distributed.finish()
    print(f"stopped: {preempted}", file=sys.stderr)
    sys.exit(128 + preempted.signal_number)
  except runner.RunError as error:
    sys.exit(f"error: {error}")
  distributed.finish()


if __name__ == "__main__":
  cli.run(main)
