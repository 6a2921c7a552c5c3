"""Cost of the periodic image-quality evaluation of experiments/mnist_dcgan.py against its training.

  python benchmarks/eval_overhead.py
  python benchmarks/eval_overhead.py --classifier-steps 200 --out eval_overhead.json
  python benchmarks/eval_overhead.py --features inception --num-samples 500 --num-real 500

The run's config (experiments/mnist_dcgan.py: classifier features; fid, kid, precision_recall and
density_coverage; every 1000 steps; 10,000 generated and 10,000 real images) is loaded as the run
loads it; the options below override its fields. Measured, in this order:

  1. the training step: the run's jitted update (`train.parallelize(train.adversarial_update,
     'none', batch_axis=1)`, as `ganjax.runner` compiles it) on one random real batch of the run's
     (n_critic, batch, 28, 28, 1) layout, fed from the host at every step: its compile time and
     the median of `--train-steps` steps timed one by one, after one untimed step;
  2. the one-time costs of an evaluating run: training the feature classifier
     (`image_quality.feature_network`, `--classifier-steps` steps, its accuracy pass over the test
     split and its file included) and the features of `--num-real` real images
     (`image_quality.real_features`, compilation included), then building the `Evaluator` on those
     (the classifier file and the cached features read back);
  3. one evaluation, `evaluator(state)`: `--num-samples` generated images, their features and all
     the measures; the first call (which compiles) apart, then the median of `--repeats` calls,
     and separately the median of generation plus features (`evaluator.features.samples`) and of
     each measure (`image_quality.compute` on those features); the part of precision/recall and
     density/coverage that depends on the real features only (their k-NN radii, k = 3 and 5) is
     computed once when the Evaluator is built and timed apart (real_radii_s);
  4. the overhead: evaluation time / (every x step time), in percent, for every = 500, 1000, 2000
     and `--every`, and over the whole run (train.steps steps, an evaluation every `--every`
     steps and at the end, the first evaluation's compilation and the one-time costs included).

MNIST is faked with `tfds.testing.mock_data` (random images and labels of MNIST's shapes, at
least `--num-real` of them per split): nothing is downloaded and no prepared dataset is needed.
Generating the fake examples replaces reading and decoding the real ones, so the one-time costs'
input part differs a little from a real run's; the network and measure times do not depend on the
pixel values. With `--features inception` the Fréchet Inception network has random weights
(`inception.random_state_dict` and `convert_state_dict`: no weight file, the same cost). The
classifier, the real features' cache (`eval.stats_dir`) and `$GANJAX_CACHE` go to a temporary
directory, removed at the end.

Prints one JSON object (`backend`, `device_kind`, every setting, every figure in seconds or
milliseconds as named, the 1-, 5- and 15-minute load averages from /proc/loadavg before and
after); --out also writes it to a file. Progress goes to stderr.
"""
import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

from ganjax import image_quality
from ganjax import experiment
from ganjax import train

REPO = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "experiments" / "mnist_dcgan.py"
DATA_SHAPE = (28, 28, 1)
EVERY_VALUES = (500, 1000, 2000)


def load_config():
  spec = importlib.util.spec_from_file_location("mnist_dcgan_experiment", EXPERIMENT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, help="training batch size (default: the config's)")
  parser.add_argument("--num-samples", type=int, default=10_000,
                      help="generated images per evaluation")
  parser.add_argument("--num-real", type=int, default=10_000,
                      help="real images of the cached features")
  parser.add_argument("--every", type=int, help="steps between evaluations (default: the config's)")
  parser.add_argument("--eval-batch", type=int,
                      help="images per feature batch (default: the config's eval.batch_size)")
  parser.add_argument("--features", choices=image_quality.FEATURES, default="classifier",
                      help="feature network (inception: random weights, no weight file)")
  parser.add_argument("--classifier-steps", type=int,
                      help="training steps of the feature classifier (default: the config's)")
  parser.add_argument("--train-steps", type=int, default=20, help="timed training steps")
  parser.add_argument("--repeats", type=int, default=3, help="timed evaluations")
  parser.add_argument("--out", help="also write the JSON object to this file")
  return parser.parse_args(argv)


def loadavg():
  with open("/proc/loadavg") as file:
    return [float(value) for value in file.read().split()[:3]]


def log(message):
  print(message, file=sys.stderr, flush=True)


def seconds(fn):
  """(fn's result, wall seconds of the call)."""
  start = time.perf_counter()
  result = fn()
  return result, time.perf_counter() - start


def median(values, digits=3):
  return round(statistics.median(values), digits)


def configure(args, tmp):
  """The run's config with the options applied, its caches in `tmp`."""
  config = load_config()
  if args.batch:
    config.train.batch_size = args.batch
  config.eval.features = args.features
  config.eval.num_samples = args.num_samples
  config.eval.num_real = args.num_real
  if args.every:
    config.eval.every = args.every
  if args.eval_batch:
    config.eval.batch_size = args.eval_batch
  if args.classifier_steps:
    config.eval.classifier_steps = args.classifier_steps
  config.eval.stats_dir = str(tmp / "real_features")
  image_quality.settings(config)  # every eval field checked before anything runs
  return config


def time_steps(config, num_steps):
  """The run's compiled update on a random host batch: (state, compile s, ms of each step)."""
  state = experiment.create_state_from_config(config, DATA_SHAPE)
  spec = state.spec
  batch = np.random.default_rng(0).uniform(-1, 1, (spec.n_critic, spec.batch_size, *DATA_SHAPE))
  batch = batch.astype(np.float32)
  step_fn = train.parallelize(train.adversarial_update, "none", batch_axis=1)
  step_fn, compile_s = seconds(lambda: step_fn.lower(state, batch).compile())
  state = jax.block_until_ready(step_fn(state, batch)[0])
  times = []
  for _ in range(num_steps):
    state, step_s = seconds(lambda: jax.block_until_ready(step_fn(state, batch)[0]))
    times.append(step_s * 1e3)
  return state, compile_s, times


def random_inception_network():
  """pytorch-fid's network with random weights, as `image_quality.inception_network` builds it."""
  from ganjax.models import inception
  variables = inception.convert_state_dict(inception.random_state_dict(seed=0))
  return image_quality.FeatureNetwork(
      "inception", "inception-random-0", inception.FEATURE_DIM,
      lambda v, images: inception.extract_features(v, (images + 1.0) / 2.0), variables)


@contextlib.contextmanager
def feature_network_is(network):
  """`image_quality.feature_network` returns `network` (for an Evaluator without a weight file)."""
  original = image_quality.feature_network
  image_quality.feature_network = lambda *args, **kwargs: network
  try:
    yield
  finally:
    image_quality.feature_network = original


def one_time_costs(config, workdir, settings, record):
  """Trains the classifier (or builds random Inception), computes the real features and builds the
  Evaluator; the times go into `record`."""
  if settings["features"] == "classifier":
    log(f"training the feature classifier ({settings['classifier_steps']} steps)")
    network, record["classifier_s"] = seconds(
        lambda: image_quality.feature_network(config, workdir, DATA_SHAPE))
  else:
    network = random_inception_network()
  log(f"features of {settings['num_real']} real images")
  _, record["real_features_s"] = seconds(lambda: image_quality.real_features(
      config.data, network, num_real=settings["num_real"], batch_size=settings["batch_size"],
      stats_dir=settings["stats_dir"]))
  patch = (feature_network_is(network) if settings["features"] == "inception"
           else contextlib.nullcontext())
  with patch:
    evaluator, record["evaluator_init_s"] = seconds(
        lambda: image_quality.Evaluator(config, workdir, DATA_SHAPE))
  log(", ".join(f"{name} {record[name]:.1f}" for name in
                ("classifier_s", "real_features_s", "evaluator_init_s") if name in record))
  return evaluator


def real_radii_s(evaluator):
  """Wall seconds of the real features' k-NN radii (k = 3 and 5), which the Evaluator computes
  once, when it is built, for precision_recall and density_coverage."""
  return seconds(lambda: image_quality.real_radii(evaluator.real, evaluator.metrics))[1]


def time_evaluations(evaluator, state, repeats, record):
  """The first evaluation, then `repeats` of: one evaluation, its generation plus features, and
  each measure on those features; medians into `record`."""
  num = evaluator.settings["num_samples"]
  log(f"first evaluation ({num} generated images)")
  _, record["eval_first_s"] = seconds(lambda: evaluator(state))
  evals, generated, measures = [], [], {name: [] for name in evaluator.metrics}
  for repeat in range(repeats):
    log(f"evaluation {repeat + 1} of {repeats}")
    evals.append(seconds(lambda: evaluator(state))[1])
    log(f"evaluation: {evals[-1]:.1f} s")
    fake, generate_s = seconds(lambda: evaluator.features.samples(state, num))
    generated.append(generate_s)
    for name in evaluator.metrics:
      measures[name].append(seconds(lambda: image_quality.compute(
          evaluator.real, fake, (name,), evaluator.real_statistics, evaluator.real_radii))[1])
  totals = [sum(values) for values in zip(*measures.values())]
  record.update(eval_s_median=median(evals), eval_s=[round(x, 3) for x in evals],
                generate_features_s_median=median(generated),
                measures_s_median=median(totals),
                measure_s_median={name: median(values) for name, values in measures.items()})
  if evaluator.real_radii:
    record["real_radii_s"] = real_radii_s(evaluator)


def overheads(config, settings, record):
  """Evaluation time over training time, per evaluation period and over the whole run."""
  step_s = record["step_ms_median"] / 1e3
  eval_s = record["eval_s_median"]
  every = settings["every"]
  periods = sorted({*EVERY_VALUES, every})
  record["overhead_percent"] = {str(period): round(100 * eval_s / (period * step_s), 2)
                                for period in periods}
  steps = config.train.steps
  count = steps // every + (1 if steps % every else 0)  # and the final one, unless it fell on one
  one_time = (record.get("classifier_s", 0.0) + record["real_features_s"]
              + record["evaluator_init_s"])
  evaluating = count * eval_s + (record["eval_first_s"] - eval_s) + one_time
  training = steps * step_s + record["step_compile_s"]
  record["run"] = {"steps": steps, "evaluations": count, "train_s": round(training, 1),
                   "eval_s": round(evaluating, 1), "one_time_s": round(one_time, 1),
                   "overhead_percent": round(100 * evaluating / training, 2)}


def main(argv=None):
  args = parse_args(argv)
  import tensorflow_datasets as tfds

  started = datetime.datetime.now(datetime.timezone.utc)
  load_before = loadavg()
  wall_start = time.perf_counter()
  with tempfile.TemporaryDirectory(prefix="eval_overhead_") as tmp:
    tmp = pathlib.Path(tmp)
    os.environ["GANJAX_CACHE"] = str(tmp / "cache")
    config = configure(args, tmp)
    settings = image_quality.settings(config)
    record = {"config": "experiments/mnist_dcgan.py", "backend": jax.default_backend(),
              "device_kind": jax.devices()[0].device_kind, "devices": jax.device_count(),
              "started_utc": started.strftime("%Y-%m-%d %H:%M:%S"),
              "features": settings["features"], "metrics": list(settings["metrics"]),
              "batch": config.train.batch_size, "n_critic": config.train.n_critic,
              "num_samples": settings["num_samples"], "num_real": settings["num_real"],
              "eval_batch_size": settings["batch_size"], "every": settings["every"],
              "train_steps": args.train_steps, "repeats": args.repeats}
    if settings["features"] == "classifier":
      record["classifier_steps"] = settings["classifier_steps"]

    log(f"training step, batch {config.train.batch_size}: compile and {args.train_steps} steps")
    state, compile_s, step_ms = time_steps(config, args.train_steps)
    record.update(step_compile_s=round(compile_s, 3), step_ms_median=median(step_ms, 2),
                  step_ms_min=round(min(step_ms), 2), step_ms_max=round(max(step_ms), 2))
    log(f"training step: compile {compile_s:.1f} s, median {record['step_ms_median']} ms")

    mock_examples = max(settings["num_real"], 1000)
    record["mock_examples"] = mock_examples
    with tfds.testing.mock_data(num_examples=mock_examples), \
        contextlib.redirect_stdout(sys.stderr):
      evaluator = one_time_costs(config, tmp / "run", settings, record)
      time_evaluations(evaluator, state, args.repeats, record)
  for name in ("classifier_s", "real_features_s", "evaluator_init_s", "eval_first_s"):
    if name in record:
      record[name] = round(record[name], 3)
  overheads(config, settings, record)
  record.update(wall_s=round(time.perf_counter() - wall_start, 1), loadavg_before=load_before,
                loadavg_after=loadavg())
  line = json.dumps(record)
  print(line)
  if args.out:
    pathlib.Path(args.out).write_text(line + "\n")


if __name__ == "__main__":
  main()
