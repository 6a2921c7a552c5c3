"""Image-quality measures of a run's checkpoint, for a paper's table:

  python -m ganjax.evaluate --workdir=<run> [--step=<N>] [--protocol=sngan] [--metrics=is,fid] \
      [--features=inception] [--num_samples=50000] [--num_real=50000] [--resize=tf1] \
      [--reference_stats=<mu_sigma.npz>] [--out=<file.json>] [--json]

Restores the checkpoint (the latest by default; `--best` the one kept by `eval.best`), takes the
run's saved config for the dataset and the evaluation settings (`config.eval`, see
`ganjax.image_quality`), overrides them with the flags given, and prints a table: each number
with the protocol, the generated images, the reference and the Inception input beside it. With
--json (or --out, which writes it) one JSON object: the measures, the step, the feature network,
the numbers of images and the 'evaluation' that produced them (for a class-conditional run's
accuracy and intra_fid also per_class_accuracy and per_class_fid, one value per class).

--protocol names a preset of `ganjax.image_quality.PROTOCOLS` (quick, mimicry, sngan,
stylegan2_ada, studiogan): it fixes the Inception network, the number of generated and real
images, the reference split, the resize and the Inception Score's splits, so --features,
--num_samples, --num_real, --resize, --splits (and --split, where it names one) cannot be given
with it. The real images' features are cached as during training, so a second
evaluation against the same dataset only computes the generated images' features. `accuracy`
uses the run's classifier (`<workdir>/classifier.msgpack` unless --classifier names another).
"""
import contextlib
import json
import sys

from ganjax import cli  # first: it quiets TensorFlow before anything imports it

from absl import flags  # pylint: disable=g-bad-import-order

_OVERRIDES = ("metrics", "features", "num_samples", "num_real", "inception_weights", "classifier",
              "protocol", "resize", "splits", "reference_stats")
_PATH_OVERRIDES = ("inception_weights", "classifier", "data_dir", "reference_stats")


def evaluate(workdir, *, step=None, best=False, **overrides):
  """The measures of the checkpoint `step` (latest; `best`: the one in best/) of the run in
  `workdir`, with `config.eval` fields replaced by `overrides` (data_dir and split go to
  `config.data`).

  Raises:
    experiment.RunError: no checkpoint, or a bad setting or missing input (one line).
  """
  import pathlib

  from ganjax import image_quality
  from ganjax import experiment as experiment_lib
  from ganjax import paths
  from ganjax import sample
  from ganjax.data import images
  from ganjax.errors import ConfigError

  workdir = pathlib.Path(paths.absolute(workdir))
  overrides = {name: paths.absolute(value) if name in _PATH_OVERRIDES and value else value
               for name, value in overrides.items()}
  protocol = None
  if overrides.get("protocol"):
    protocol = image_quality.PROTOCOLS.get(overrides["protocol"])
    if protocol is None:
      raise experiment_lib.RunError(f"--protocol={overrides['protocol']} is not one of: "
                                    f"{', '.join(image_quality.PROTOCOLS)}")
    fixed = [name for name in image_quality.PROTOCOL_FIELDS if overrides.get(name) is not None]
    if protocol.split is not None and overrides.get("split"):
      fixed.append("split")
    if fixed:
      raise experiment_lib.RunError(
          f"--protocol={overrides['protocol']} fixes {', '.join('--' + n for n in fixed)}; give "
          "either the protocol or those flags")
  source = workdir / "best" if best else workdir
  state, config = sample.load_state(source, step)
  for name in ("data_dir", "split"):
    if overrides.get(name) is not None:
      config.data[name] = overrides[name]
  eval_config = dict(config.get("eval", {}))
  eval_config.update({name: value for name, value in overrides.items()
                      if name in _OVERRIDES and value is not None})
  if protocol is not None and not overrides.get("metrics"):
    eval_config["metrics"] = ",".join(protocol.metrics)  # what its source reported
  if not eval_config.get("metrics"):
    eval_config["metrics"] = "fid"
  try:
    metric_names = image_quality.parse_metrics(eval_config["metrics"])
  except ConfigError as error:
    raise experiment_lib.RunError(str(error).splitlines()[0]) from None
  # The run's classifier gives the features of eval.features='classifier' and the predicted
  # classes that `accuracy` scores.
  if ((eval_config.get("features", "inception") == "classifier"
       or "predictions" in image_quality.needs(metric_names))
      and not eval_config.get("classifier")):
    eval_config["classifier"] = str(workdir / image_quality.CLASSIFIER_FILE)
  config.eval = eval_config
  if state.spec.data is not None:
    raise experiment_lib.RunError(f"the run in {workdir} trains on toy data "
                                  f"({config.data.get('name')!r}); image-quality measures need "
                                  "images")
  try:
    evaluator = image_quality.Evaluator(config, None, images.image_shape(config.data))
  except ConfigError as error:
    raise experiment_lib.RunError(str(error).splitlines()[0]) from None
  evaluator.report = True
  try:
    values = evaluator(state)
  except image_quality.EvaluationError as error:
    raise experiment_lib.RunError(str(error).splitlines()[0]) from None
  return {**values, **evaluator.details, "step": int(state.step),
          "features": evaluator.network.name,
          "feature_network": evaluator.network.identity,
          "num_samples": evaluator.settings["num_samples"],
          "num_real": evaluator.settings["num_real"], "dataset": config.data.get("name"),
          "split": evaluator.data_config.get("split", "train"),
          "evaluation": evaluator.description()}


def table(result: dict) -> str:
  """The measures of `evaluate`'s result as a table, how each was measured beside it: the
  protocol ('-': none), the generated images, the reference images or statistics, the Inception
  input's resize and the Inception Score's splits."""
  from ganjax import image_quality
  evaluation = result["evaluation"]
  reference = evaluation["reference"]
  real = (f"{reference['dataset']} {reference['split']} ({reference['num_real']:,})"
          if "num_real" in reference else "-")
  rows = [("measure", "value", "protocol", "generated", "reference", "input")]
  for name, count in evaluation["samples"].items():
    if name == "is":
      where = f"{evaluation['splits']} splits"
    elif name == "fid" and "reference_stats" in reference:
      where = reference["reference_stats"]
    else:
      where = real
    network = evaluation["features"] + (f", {evaluation['resize']} resize"
                                        if evaluation["resize"] else "")
    for number in image_quality.MEASURES[name].numbers:
      rows.append((number, f"{result[number]:.4f}", evaluation["protocol"] or "-", f"{count:,}",
                   where, network))
  widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
  return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                   for row in rows)


def _define_flags() -> None:
  """The command's flags, defined only when it runs as a program (so that importing this module
  beside other absl programs defines none)."""
  flags.DEFINE_string("workdir", None, "The run's workdir (it holds checkpoints/).")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
  flags.DEFINE_bool("best", False, "Evaluate the checkpoint kept in best/ by eval.best.")
  flags.DEFINE_string("protocol", None, "A named protocol: quick, mimicry, sngan, stylegan2_ada, "
                      "studiogan (see ganjax.image_quality.PROTOCOLS).")
  flags.DEFINE_string("metrics", None, "Comma-separated: fid, kid, precision_recall, "
                      "density_coverage, is, accuracy, intra_fid (the last two for a "
                      "class-conditional run; default: the protocol's, else the run's "
                      "eval.metrics).")
  flags.DEFINE_enum("resize", None, ["pytorch", "tf1"], "The Inception input: pytorch-fid's "
                    "resize, or the 2015 graph's own TensorFlow 1 resize.")
  flags.DEFINE_integer("splits", None, "Splits of the Inception Score (default 10).")
  flags.DEFINE_string("reference_stats", None, "An .npz with 'mu' and 'sigma' (pytorch-fid, "
                      "TTUR, clean-fid) to compute FID against instead of the dataset.")
  flags.DEFINE_bool("json", False, "Print the result as JSON instead of a table (and the "
                    "progress lines on stderr).")
  flags.DEFINE_enum("features", None, ["inception", "classifier"],
                    "Feature network (default: the run's eval.features).")
  flags.DEFINE_integer("num_samples", None, "Generated images (default: the run's eval.num_samples).")
  flags.DEFINE_integer("num_real", None, "Real images (default: the run's eval.num_real).")
  flags.DEFINE_string("inception_weights", None, "pt_inception-2015-12-05-6726825d.pth "
                      "(default: the run's, or $GANJAX_INCEPTION_WEIGHTS).")
  flags.DEFINE_string("classifier", None, "Classifier file (default: the run's classifier.msgpack).")
  flags.DEFINE_string("data_dir", None, "TFDS data directory (default: the run's data.data_dir).")
  flags.DEFINE_string("split", None, "Dataset split of the real images (default: the "
                      "protocol's, else the run's).")
  flags.DEFINE_string("out", None, "Also write the result to this JSON file.")
  cli.define_compilation_cache_flag()
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  cli.no_arguments(argv)
  cli.enable_compilation_cache()
  from ganjax import checkpoint as checkpoint_lib
  from ganjax import experiment as experiment_lib
  FLAGS = flags.FLAGS
  overrides = {name: getattr(FLAGS, name) for name in (*_OVERRIDES, "data_dir", "split")}
  # With --json the progress lines go to stderr, so that stdout holds the JSON alone.
  progress_to = contextlib.redirect_stdout(sys.stderr) if FLAGS.json else contextlib.nullcontext()
  try:
    with progress_to:
      result = evaluate(FLAGS.workdir, step=FLAGS.step, best=FLAGS.best, **overrides)
  except (experiment_lib.RunError, checkpoint_lib.CheckpointError) as error:
    sys.exit(f"error: {error}")
  text = json.dumps(result, indent=2)
  if FLAGS.out:
    with open(FLAGS.out, "w") as file:
      file.write(text + "\n")
  print(text if FLAGS.json else table(result))


if __name__ == "__main__":
  _define_flags()
  cli.run(main)
