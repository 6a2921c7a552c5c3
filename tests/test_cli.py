"""The commands as a user types them: the README's default command from the repository root with
a relative workdir, a console that holds ganjax's own lines, one line for an override that cannot
be used, and the image experiments trained on a folder given by a relative path."""
import json
import pathlib
import re

import numpy as np
import pytest

from _subprocess import ganjax_main as _ganjax
from _trees import config_from_command_line
from ganjax import cli
from ganjax import progress
from ganjax import runner

REPO = pathlib.Path(__file__).resolve().parents[1]
# A line that absl, Orbax, clu or TensorFlow's C++ runtime writes (I1201 12:00:00 ... file.py:12]).
LIBRARY_LINE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)")
# The lines a ring run prints of its own.
GANJAX_LINE = re.compile(r"^(compiled the training step|step \d+/\d+ |summary: |resuming from|"
                         r"the run in .* is complete)")


def test_default_command_with_a_relative_workdir_and_a_readable_console(tmp_path):
  # The README's command, typed in a directory that holds experiments/ (as the repository root
  # does) with the workdir relative to it; then typed again, which resumes the finished run.
  (tmp_path / "experiments").symlink_to(REPO / "experiments")
  args = ("--config=experiments/ring.py:tiny", "--workdir=runs/ring")
  first = _ganjax(*args, cwd=tmp_path)
  assert first.returncode == 0, first.stderr[-3000:]
  lines = (first.stdout + first.stderr).splitlines()
  assert not [line for line in lines if LIBRARY_LINE.match(line)], "\n".join(lines)
  assert all(GANJAX_LINE.match(line) for line in lines), "\n".join(lines)
  # ring.py:tiny logs every 50 of 200 steps: the compile line, 4 progress lines, the summary.
  assert len(lines) == 6, "\n".join(lines)
  workdir = tmp_path / "runs" / "ring"
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["100", "200"]
  assert json.loads((workdir / "summary.json").read_text())["step"] == 200
  assert not (workdir / "run.lock").exists()

  again = _ganjax(*args, cwd=tmp_path)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "resuming from step 200" in again.stdout and "is complete" in again.stdout


@pytest.mark.parametrize("override, message", [
    ("--config.train.stepz=3", "--config.train.stepz: experiments/ring.py has no field "
                               "'train.stepz'; closest: train.steps"),
    ("--config.trian.steps=3", "has no field 'trian.steps'; closest: train.steps"),
    ("--config.train.steps=many", "flag --config.train.steps=many: invalid literal for int()"),
])
def test_a_bad_override_is_one_line_and_writes_nothing(tmp_path, override, message):
  result = _ganjax("--config=experiments/ring.py:tiny", f"--workdir={tmp_path / 'run'}", override,
                   cwd=REPO, timeout=120)
  assert result.returncode == cli.USAGE_ERROR
  assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
  assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
  assert not (tmp_path / "run").exists()


def test_a_config_file_that_does_not_load_is_one_line(tmp_path):
  missing = _ganjax("--config=experiments/rnig.py", f"--workdir={tmp_path}", cwd=REPO,
                    timeout=120)
  bad_arg = _ganjax("--config=experiments/ring.py:tiyn", f"--workdir={tmp_path}", cwd=REPO,
                    timeout=120)
  for result, text in ((missing, "No such file or directory: 'experiments/rnig.py'"),
                       (bad_arg, "unknown argument 'tiyn' for experiments/ring.py; valid: tiny")):
    assert result.returncode == cli.USAGE_ERROR
    assert len(result.stderr.splitlines()) == 1 and text in result.stderr, result.stderr


def test_unknown_field_message_names_the_closest_fields():
  config = runner.config_from_dict({"train": {"steps": 1, "log_every": 1}, "seed": 0})
  assert cli.unknown_field_message(config, "train.steps") is None
  assert cli.unknown_field_message(config, "train") is None
  assert cli.unknown_field_message(config, "train.step") == (
      "--config.train.step: the config has no field 'train.step'; closest: train.steps")
  # Nothing alike: the fields of the deepest section that exists, never the section itself.
  assert cli.unknown_field_message(config, "train.qqqq.x") == (
      "--config.train.qqqq.x: the config has no field 'train.qqqq.x'; closest: "
      "train.log_every, train.steps")  # ConfigDict lists its fields in sorted order
  assert cli.unknown_field_message(config, "zzzz").endswith("closest: seed, train")


def _write_digits(folder, count=24, side=12):
  """`count` greyscale PNGs of two labels, a bright square whose place depends on the label."""
  from PIL import Image
  rng = np.random.default_rng(0)
  for index in range(count):
    label = index % 2
    image = rng.integers(0, 60, (side, side), dtype=np.uint8)
    image[2:6, 2 + 6 * label:6 + 6 * label] = 255
    path = folder / "train" / str(label) / f"{index:03d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
def test_image_experiment_trains_on_a_folder_given_relative_to_the_current_directory(
    tmp_path, monkeypatch):
  _write_digits(tmp_path / "digits")
  monkeypatch.chdir(tmp_path)
  config = config_from_command_line(
      f"--config={REPO / 'experiments' / 'mnist_dcgan.py'}:tiny", "--config.data.name=folder",
      "--config.data.folder=digits", "--config.data.channels=1")
  summary = runner.train_and_evaluate(config, "runs/digits")
  assert summary["step"] == config.train.steps
  samples = np.load(tmp_path / "runs" / "digits" / "samples.npy")
  assert samples.shape == (config.eval.num_samples, 28, 28, 1)
  # The config is saved with the folder's absolute path, so a resume or `ganjax.evaluate` started
  # from another directory reads the same images.
  from ganjax import checkpoint
  with checkpoint.Checkpointer(tmp_path / "runs" / "digits", read_only=True) as checkpoints:
    assert checkpoints.read_config()["data"]["folder"] == str(tmp_path / "digits")
  monkeypatch.chdir(REPO)
  config.data.folder = str(tmp_path / "digits")
  assert runner.train_and_evaluate(config, tmp_path / "runs" / "digits")["step"] == summary["step"]


@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
def test_image_experiment_with_channels_the_models_lack_is_one_line(tmp_path):
  _write_digits(tmp_path / "digits")
  config = config_from_command_line(
      f"--config={REPO / 'experiments' / 'mnist_dcgan.py'}:tiny", "--config.data.name=folder",
      f"--config.data.folder={tmp_path / 'digits'}", "--config.data.channels=3")
  with pytest.raises(runner.RunError, match=r"generator makes samples of shape \(28, 28, 1\), "
                                            r"but the data has shape \(28, 28, 3\)"):
    runner.train_and_evaluate(config, tmp_path / "run")
  assert not (tmp_path / "run").exists()


def test_progress_prints_when_due_and_at_the_end(capsys):
  asked = []

  def loss():
    asked.append(1)
    return "loss 0.5"

  quiet = progress.Progress("phase", total=3, unit="images", every_seconds=1e9)
  for done in (1, 2, 3):
    quiet.update(done, loss)
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 1 and lines[0].startswith("phase: 3/3 images, loss 0.5, ")
  assert len(asked) == 1  # the value is fetched only for the line printed
  chatty = progress.Progress("phase", total=2000, every_seconds=0.0)
  chatty.update(1000)
  line = capsys.readouterr().out.strip()
  assert line.startswith("phase: 1,000/2,000 steps, ") and line.endswith(" left")
  assert [progress.duration(s) for s in (5, 65, 3725)] == ["0m05s", "1m05s", "1h02m"]
