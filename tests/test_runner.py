"""The experiment runner end to end, in temporary workdirs: outputs, exact resume, preemption,
SIGKILL, and the one-line errors a user gets before anything compiles."""
import json
import pathlib
import signal
import sys
import types

import jax
import numpy as np
import pytest

from ganjax import experiment as experiment_lib
from ganjax import metrics
from ganjax import runner
from ganjax import sample as sample_lib
from ganjax import train
from ganjax.data import toy

from _subprocess import Child, command_env, ganjax_main
from _trees import assert_same_leaves, load_experiment

REPO = pathlib.Path(__file__).resolve().parents[1]


def ring_config(**train_fields):
  config = load_experiment("ring")
  for name, value in train_fields.items():
    setattr(config.train, name, value)
  return config


class CompileCounter:
  """Counts XLA compilations while active."""

  def __init__(self):
    self.count = 0
    jax.monitoring.register_event_duration_secs_listener(self._listen)

  def _listen(self, event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
      self.count += 1


COMPILES = CompileCounter()


def test_ring_run_writes_checkpoints_logs_and_pictures(tmp_path):
  summary = runner.train_and_evaluate(ring_config(), tmp_path)
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == [100, 200]
  lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [line["step"] for line in lines] == [50, 100, 150, 200]
  for line in lines:
    assert {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm",
            "steps_per_sec", "uptime"} <= set(line)
    assert all(np.isfinite(v) for v in line.values())
  assert list(tmp_path.glob("events.out.tfevents.*"))
  assert (tmp_path / "samples_0000100.png").stat().st_size > 0
  assert (tmp_path / "samples_0000200.png").stat().st_size > 0
  assert (tmp_path / "samples.png").stat().st_size > 0
  samples = np.load(tmp_path / "samples.npy")
  assert samples.shape == (2500, 2)
  assert summary == json.loads((tmp_path / "summary.json").read_text())
  assert 0 <= summary["modes"] <= 8 and summary["step"] == 200

  # Mode statistics every eval.every = 100 steps, on the fixed-noise samples: at the last step
  # they are those of the final generator (the summary's, and a direct computation).
  evaluated = [line for line in lines if "modes" in line]
  assert [line["step"] for line in evaluated] == [100, 200]
  for line in evaluated:
    assert 0 <= line["modes"] <= 8 and 0.0 <= line["high_quality"] <= 1.0
    assert 0.0 <= line["reverse_kl"] <= np.log(8) + 1e-6
  last = evaluated[-1]
  assert {k: last[k] for k in ("modes", "high_quality", "reverse_kl")} == {
      k: summary[k] for k in ("modes", "high_quality", "reverse_kl")}

  # The sample command reads the run back.
  state, config = sample_lib.load_state(tmp_path)
  assert int(state.step) == 200 and config.loss == "non_saturating"
  drawn = sample_lib.generate(state, 10, seed=3)
  assert drawn.shape == (10, 2) and np.isfinite(drawn).all()
  # The final samples and their statistics, from the checkpoint as the runner computes them
  # (the same programs on the same bits: a sample on a mode's boundary falls the same way).
  final = train.sample(state, 2500, jax.random.fold_in(state.key, experiment_lib.SAMPLE_STREAM))
  np.testing.assert_array_equal(final, samples)
  direct = metrics.mixture_mode_statistics(final, toy.ring())
  assert last["modes"] == int(direct["modes"])
  np.testing.assert_allclose([last["high_quality"], last["reverse_kl"]],
                             [direct["high_quality"], direct["reverse_kl"]], rtol=1e-6, atol=1e-7)


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
  straight, resumed = tmp_path / "straight", tmp_path / "resumed"
  runner.train_and_evaluate(ring_config(steps=200), straight)
  runner.train_and_evaluate(ring_config(steps=100), resumed)
  runner.train_and_evaluate(ring_config(steps=200), resumed)
  state_straight, _ = sample_lib.load_state(straight)
  state_resumed, _ = sample_lib.load_state(resumed)
  assert int(state_resumed.step) == 200
  assert_same_leaves(state_resumed, state_straight)
  steps = [json.loads(line)["step"]
           for line in (resumed / "metrics.jsonl").read_text().splitlines()]
  assert steps == [50, 100, 150, 200]


def _launch(workdir, *overrides):
  """python -m ganjax.main on the tiny ring in `workdir`, on one CPU device."""
  return Child([sys.executable, "-m", "ganjax.main", "--config=experiments/ring.py:tiny",
                f"--workdir={workdir}", *overrides], cwd=REPO,
               env=command_env(PYTHONUNBUFFERED="1"))


def test_sigterm_saves_a_checkpoint_before_exiting(tmp_path):
  with _launch(tmp_path, "--config.train.steps=100000", "--config.train.checkpoint_every=0",
               "--config.train.sample_every=0", "--config.train.log_every=50") as child:
    child.wait_for("step 100/", timeout=240)
    child.process.send_signal(signal.SIGTERM)
    returncode, output = child.finish(timeout=120)
  assert returncode == 128 + signal.SIGTERM, output
  assert "SIGTERM at step" in output
  saved = int(output.split("SIGTERM at step ")[1].split(":")[0])
  state, _ = sample_lib.load_state(tmp_path)
  assert int(state.step) == saved >= 100


def _logged(workdir):
  """The lines of a run's metrics.jsonl without the speeds and times, which are timings."""
  return [{name: value for name, value in json.loads(line).items()
           if name not in ("steps_per_sec", "uptime")}
          for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_sigkill_mid_run_resumes_from_the_last_checkpoint(tmp_path):
  periods = ("--config.train.checkpoint_every=50", "--config.train.log_every=50",
             "--config.train.sample_every=0")
  killed, straight = tmp_path / "killed", tmp_path / "straight"
  with _launch(killed, "--config.train.steps=100000", *periods) as child:
    child.wait_for("step 150/", timeout=240)
    child.kill()  # possibly during the save of step 100 or a later one
  assert child.process.returncode == -signal.SIGKILL
  # The steps whose (asynchronous) saves had finished: each save first waits for the one before
  # it, so step 50's had finished when step 100's began, before step 150 was printed.
  finished = [int(path.name) for path in (killed / "checkpoints").iterdir() if path.name.isdigit()]
  assert finished and min(finished) >= 50
  # The resumed run, and beside it an uninterrupted one.
  with (_launch(killed, "--config.train.steps=300", *periods) as resumed,
        _launch(straight, "--config.train.steps=300", *periods) as uninterrupted):
    returncode, output = resumed.finish(timeout=300)
    assert returncode == 0, output
    assert f"resuming from step {max(finished)} in" in output, output
    returncode, output = uninterrupted.finish(timeout=300)
    assert returncode == 0, output
  # The same program on the same machine: the killed and resumed run ends bit for bit where the
  # uninterrupted one does, and its log (the killed run's lines up to the step it resumed from,
  # the resumed run's after it) is the uninterrupted run's.
  resumed_state, _ = sample_lib.load_state(killed)
  straight_state, _ = sample_lib.load_state(straight)
  assert int(resumed_state.step) == int(straight_state.step) == 300
  assert_same_leaves(resumed_state, straight_state)
  assert [line["step"] for line in _logged(straight)] == list(range(50, 301, 50))
  assert _logged(killed) == _logged(straight)


@pytest.mark.parametrize("field, value, message", [
    ("loss", "nonsaturating", "unknown loss 'nonsaturating'; valid names:"),
    ("model.generator", "mpl", "unknown generator 'mpl'; valid names: biggan, dcgan, mlp, resnet"),
    ("data.name", "rings", "unknown dataset 'rings' .data.name.; valid names: celeb_a, cifar10, "
     "fashion_mnist, folder, gaussian_1d, grid, mixture_1d, mnist, ring"),
    ("train.parallel", "gpu", "train.parallel 'gpu' is not one of: none, pmap, shard_map"),
    ("train.steps", -5, "train.steps must be a positive integer"),
    ("eval.every", -1, "eval.every must be a non-negative integer .0: off., got -1"),
])
def test_bad_config_fails_in_one_line_before_compiling(tmp_path, field, value, message):
  config = ring_config()
  section, _, name = field.rpartition(".")
  setattr(config[section] if section else config, name, value)
  before = COMPILES.count
  with pytest.raises(runner.RunError, match=message.replace("(", r"\(")) as error:
    runner.train_and_evaluate(config, tmp_path / "run")
  assert "\n" not in str(error.value)
  assert COMPILES.count == before
  assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_periodic_evaluation_needs_2d_toy_data(tmp_path):
  config = load_experiment("gaussian_1d")
  config.eval.every = 10
  with pytest.raises(runner.RunError, match="eval.every needs 2-D toy data .ring, grid. or image "
                     "data, not data.name 'mixture_1d'; set eval.every=0"):
    runner.train_and_evaluate(config, tmp_path)


def test_unknown_model_field_names_the_field(tmp_path):
  config = ring_config()
  config.model.generator_kwargs.widht = 3
  with pytest.raises(runner.RunError, match="widht"):
    runner.train_and_evaluate(config, tmp_path)


def test_workdir_of_another_experiment_is_refused_untouched(tmp_path):
  runner.train_and_evaluate(ring_config(steps=100), tmp_path)
  before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
  other = ring_config(steps=200)
  other.loss = "hinge"
  compiles = COMPILES.count
  with pytest.raises(runner.RunError, match="another experiment .*loss"):
    runner.train_and_evaluate(other, tmp_path)
  assert COMPILES.count == compiles
  assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_workdir_with_files_but_no_checkpoint_is_refused(tmp_path):
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(runner.RunError, match="holds files but no checkpoint"):
    runner.train_and_evaluate(ring_config(), tmp_path)
  assert (tmp_path / "notes.txt").read_text() == "mine"


def test_command_line_errors_are_one_line(tmp_path):
  result = ganjax_main("--config=experiments/ring.py:tiny", f"--workdir={tmp_path}",
                       "--config.loss=hinj", cwd=REPO, timeout=120)
  assert result.returncode == 1
  errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and "unknown loss 'hinj'" in errors[0], result.stderr
  result = ganjax_main("--config=experiments/ring.py:tiny", f"--workdir={tmp_path}",
                       "--config.train.steps=many", cwd=REPO, timeout=120)
  assert result.returncode != 0
  assert "train.steps" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
  """A loss that turns NaN after step 100 (injected into the metrics the step returns) stops the
  run at the next check, naming the step and the checkpoint of step 100, which stays."""
  from ganjax import train
  parallelize = train.parallelize

  def poisoned(update, parallel, **kwargs):
    step_fn = parallelize(update, parallel, **kwargs)

    def step(state, batch):
      state, metrics = step_fn(state, batch)
      if int(np.max(state.step)) > 100:
        metrics = {**metrics, "g_loss": metrics["g_loss"] * np.nan}
      return state, metrics

    # The runner compiles ahead of time (step_fn.lower(...).compile()); keep the poison in place.
    step.lower = lambda *args: types.SimpleNamespace(compile=lambda: step)
    return step

  monkeypatch.setattr(train, "parallelize", poisoned)
  with pytest.raises(runner.RunError, match="non-finite g_loss by step 150; the last good "
                     "checkpoint, step 100, is kept") as error:
    runner.train_and_evaluate(ring_config(steps=200, checkpoint_every=100, log_every=50),
                              tmp_path)
  assert "\n" not in str(error.value)
  steps = sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == ["100"]


def test_mnist_dcgan_tiny_runs_on_mock_data(tmp_path):
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=64):
    summary = runner.train_and_evaluate(load_experiment("mnist_dcgan"), tmp_path)
  assert summary["step"] == 4
  samples = np.load(tmp_path / "samples.npy")
  assert samples.shape[1:] == (28, 28, 1) and np.abs(samples).max() <= 1.0
  assert (tmp_path / "samples_0000004.png").exists() and (tmp_path / "samples.png").exists()
  lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [line["step"] for line in lines] == [2, 4]
  state, _ = sample_lib.load_state(tmp_path)
  assert int(state.step) == 4 and int(state.d_updates) == 4


def test_unprepared_dataset_says_how_to_prepare_it(tmp_path):
  config = load_experiment("mnist_dcgan")
  config.data.data_dir = str(tmp_path / "no_data_here")
  before = COMPILES.count
  with pytest.raises(runner.RunError, match="not prepared") as error:
    runner.train_and_evaluate(config, tmp_path / "run")
  assert "\n" not in str(error.value) and "data_dir" in str(error.value)
  assert COMPILES.count == before
