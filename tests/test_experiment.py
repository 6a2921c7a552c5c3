"""The experiment layer (`ganjax.experiment`) and the program registry: config problems are one
line before anything compiles, a bug in the library keeps its traceback, the workdir rules."""
import json
import pathlib

import ml_collections
import pytest

from ganjax import checkpoint
from ganjax import errors
from ganjax import experiment
from ganjax import models
from ganjax import programs
from ganjax import runner

from test_runner import ring_config


def test_field_reads_dotted_names_with_defaults():
  config = ml_collections.ConfigDict({"train": {"steps": 3, "warmup": None}, "seed": 0})
  assert experiment.field(config, "train.steps") == 3
  assert experiment.field(config, "train.warmup", 7) == 7  # None: the default
  assert experiment.field(config, "train.missing", 5) == 5
  with pytest.raises(errors.ConfigError, match="the config has no field 'train.missing'"):
    experiment.field(config, "train.missing")
  with pytest.raises(errors.ConfigError, match="'model.latent_dim'"):
    experiment.field(config, "model.latent_dim")


def test_lookup_names_the_field_and_the_choices():
  assert errors.lookup({"a": 1, "b": 2}, "b", "thing") == 2
  with pytest.raises(errors.ConfigError) as raised:
    errors.lookup({"b": 1, "a": 2}, "c", "thing", "x.name")
  assert str(raised.value) == "unknown thing 'c' (x.name); valid names: a, b"


@pytest.mark.parametrize("field, value, message", [
    ("model.latent_dim", None, "model.latent_dim"),
    ("train.batch_size", None, "train.batch_size"),
    ("optimizer.generator", {"name": "adamax_plus"}, "unknown optimizer 'adamax_plus'"),
    ("train.n_critic", 0, "n_critic must be at least 1"),
    ("model.generator_kwargs", {"output_dim": 3, "hidden": (8,)},
     r"generator makes samples of shape \(3,\), but the data has shape \(2,\)"),
])
def test_config_problems_are_one_line_run_errors(field, value, message):
  config = ring_config()
  *sections, last = field.split(".")
  node = config
  for section in sections:
    node = node[section]
  if value is None:
    del node[last]
  else:
    node[last] = value
  with pytest.raises(experiment.RunError, match=message) as raised:
    experiment.build(config)
  assert "\n" not in str(raised.value)


def test_a_bug_in_the_library_keeps_its_traceback(monkeypatch):
  def broken(name, **kwargs):
    raise ValueError("a bug, not a config problem")

  monkeypatch.setattr(models, "get_generator", broken)
  with pytest.raises(ValueError, match="a bug") as raised:
    experiment.build(ring_config())
  assert not isinstance(raised.value, experiment.RunError)


def test_programs_are_named_explicitly():
  from ganjax.programs import gan, seeds, study
  assert programs.get_program("gan") is gan.run
  assert programs.get_program("seeds") is seeds.run
  assert programs.get_program("study") is study.run
  with pytest.raises(experiment.RunError, match="unknown program 'train'.*gan, seeds, study"):
    programs.get_program("train")
  # Without a program field a config runs the GAN trainer, whatever other fields it has.
  assert ring_config().program == "gan"
  del_program = ring_config()
  del del_program["program"]
  assert del_program.get("program", programs.DEFAULT) == "gan"


def test_resume_rules(tmp_path):
  config = ring_config()
  config_json = experiment.config_to_dict(config)
  with checkpoint.Checkpointer(tmp_path, keep=1) as checkpoints:
    assert experiment.resume_step(tmp_path, checkpoints, config_json) is None
  runner.train_and_evaluate(config, tmp_path)
  with checkpoint.Checkpointer(tmp_path, keep=1) as checkpoints:
    assert experiment.resume_step(tmp_path, checkpoints, config_json) == config.train.steps
    longer = dict(config_json, train={**config_json["train"], "steps": 10_000})
    assert experiment.resume_step(tmp_path, checkpoints, longer) == config.train.steps
    other = dict(config_json, loss="hinge")
    with pytest.raises(experiment.RunError, match="another experiment .*differs in loss"):
      experiment.resume_step(tmp_path, checkpoints, other)
  stray = tmp_path / "stray"
  stray.mkdir()
  (stray / "notes.txt").write_text("mine")
  with checkpoint.Checkpointer(stray, keep=1) as checkpoints:
    with pytest.raises(experiment.RunError, match="holds files but no checkpoint"):
      experiment.resume_step(stray, checkpoints, config_json)


def test_config_round_trips_through_json():
  config = ring_config()
  again = experiment.config_from_dict(json.loads(json.dumps(experiment.config_to_dict(config))))
  assert again.model.generator_kwargs.hidden == (128, 128)  # tuples come back as tuples
  assert experiment.config_differences(experiment.config_to_dict(config),
                                       experiment.config_to_dict(again)) == []
