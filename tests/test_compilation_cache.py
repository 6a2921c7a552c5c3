"""JAX's persistent compilation cache as ganjax turns it on (`ganjax.compilation`): a second run
loads what the first compiled and trains to the same numbers, the folder comes from
--compilation_cache, $GANJAX_COMPILATION_CACHE or the user's cache folder, 'off' writes nothing,
and a folder that cannot be written costs one warning line, not the run."""
import json
import os
import pathlib
import re
import subprocess
import sys

from _subprocess import command_env
from _subprocess import ganjax_main
from ganjax import compilation

REPO = pathlib.Path(__file__).resolve().parents[1]
RING = "--config=experiments/ring.py:tiny"
# What JAX logs with JAX_LOG_COMPILES=1 for a program it loads from the cache.
HIT = re.compile(r"Persistent compilation cache hit for '(\w+)' with key '([\w-]+)'")


def _entries(folder):
  """The cache keys of the programs in `folder` (its files are <key>-cache)."""
  return {name.removesuffix("-cache") for name in os.listdir(folder) if name.endswith("-cache")}


def _run_ring(tmp_path, name, *args, **env):
  """The tiny ring experiment in tmp_path/name with more `args`, the environment changed by
  `env` (`command_env`)."""
  result = ganjax_main(RING, f"--workdir={tmp_path / name}", *args, cwd=REPO,
                       env=command_env(**env))
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def test_cache_directory_is_the_argument_the_variable_or_the_user_cache_folder(monkeypatch):
  monkeypatch.setenv("GANJAX_CACHE", "/user/cache")
  monkeypatch.delenv(compilation.CACHE_ENV, raising=False)
  assert compilation.cache_directory() == "/user/cache/xla"
  assert compilation.cache_directory("/given") == "/given"
  assert compilation.cache_directory("relative") == os.path.abspath("relative")
  assert compilation.cache_directory("~/xla") == os.path.expanduser("~/xla")
  monkeypatch.setenv(compilation.CACHE_ENV, "/from/variable")
  assert compilation.cache_directory() == "/from/variable"
  assert compilation.cache_directory("/given") == "/given"
  for off in ("off", "OFF", "none", "0", ""):
    assert compilation.cache_directory(off) is None
    monkeypatch.setenv(compilation.CACHE_ENV, off)
    assert compilation.cache_directory() is None


def test_a_second_run_loads_what_the_first_compiled_and_trains_the_same(tmp_path):
  folder = tmp_path / "xla"
  # The first run finds the folder in the variable, the second on the command line.
  first = _run_ring(tmp_path, "first", GANJAX_COMPILATION_CACHE=str(folder),
                    JAX_LOG_COMPILES="1")
  written = _entries(folder)
  names = {key.split("-", 1)[0] for key in written}
  assert {"jit_adversarial_scan", "jit_initialise"} <= names, names
  assert not HIT.search(first.stdout + first.stderr)

  second = _run_ring(tmp_path, "second", f"--compilation_cache={folder}",
                     GANJAX_COMPILATION_CACHE="off", JAX_LOG_COMPILES="1")
  hits = {key for _, key in HIT.findall(second.stdout + second.stderr)}
  assert written <= hits, written - hits  # nothing the first run wrote was compiled again
  # A program that compiled in just under the threshold the first time may just pass it under
  # load the second; the training step and the initialisation are loaded, not written again.
  added = {key.split("-", 1)[0] for key in _entries(folder) - written}
  assert not added & {"jit_adversarial_scan", "jit_initialise"}, added

  summaries = [json.loads((tmp_path / name / "summary.json").read_text())
               for name in ("first", "second")]
  for summary in summaries:
    del summary["wall_seconds"]
  assert summaries[0] == summaries[1]
  assert summaries[0]["step"] == 200


# For each case: the environment variable (None: unset), the argument of enable_persistent_cache,
# and a program of its own to compile (a new shape). Every program is written (no threshold).
_CASES_SCRIPT = """
import json, os, sys
import jax, jax.numpy as jnp, numpy as np
from ganjax import compilation
jax.jit(jnp.cos)(np.ones(1))  # a compilation before the cache is turned on
for size, (variable, argument) in enumerate(json.loads(sys.argv[1]), start=2):
  if variable is None:
    os.environ.pop(compilation.CACHE_ENV, None)
  else:
    os.environ[compilation.CACHE_ENV] = variable
  folder = compilation.enable_persistent_cache(argument)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.jit(jnp.sin)(np.ones(size)).block_until_ready()
  print(json.dumps(folder))
"""


def test_the_folder_in_use_is_the_argument_the_variable_or_the_default_and_off_is_none(tmp_path):
  user_cache, from_variable, given = tmp_path / "user", tmp_path / "variable", tmp_path / "given"
  cases = [
      ("off", None),  # off by the variable: nothing written, not even the default folder
      ("", None),  # an empty variable is off too
      (str(from_variable), "off"),  # off by the argument, over the variable
      (None, None),  # the default: <GANJAX_CACHE>/xla
      (str(from_variable), None),  # the variable, after another folder was in use
      (str(from_variable), str(given)),  # the argument over the variable
  ]
  result = subprocess.run([sys.executable, "-c", _CASES_SCRIPT, json.dumps(cases)], cwd=REPO,
                          env=command_env(GANJAX_CACHE=str(user_cache)), capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  folders = [json.loads(line) for line in result.stdout.splitlines()]
  assert folders == [None, None, None, str(user_cache / "xla"), str(from_variable), str(given)]
  # One program each (jnp.sin of its shape), in the folder that was in use when it compiled.
  assert sorted(os.listdir(tmp_path)) == ["given", "user", "variable"]
  for folder in (user_cache / "xla", from_variable, given):
    assert [key.split("-", 1)[0] for key in _entries(folder)] == ["jit_sin"], folder


def test_an_unwritable_folder_warns_once_and_the_run_goes_on(tmp_path, capsys):
  (tmp_path / "a_file").write_text("")
  unwritable = tmp_path / "a_file" / "xla"  # under a file: not even root can create it
  saved = compilation.cache_directory(os.environ.get(compilation.CACHE_ENV))
  try:
    assert compilation.enable_persistent_cache(str(unwritable)) is None
  finally:
    compilation.enable_persistent_cache(saved or "off")
  warning = capsys.readouterr().err.splitlines()
  assert len(warning) == 1 and warning[0].startswith(
      f"warning: the compilation cache {unwritable} cannot be written"), warning

  result = _run_ring(tmp_path, "run", f"--compilation_cache={unwritable}")
  assert result.stderr.splitlines() == warning
  assert json.loads((tmp_path / "run" / "summary.json").read_text())["step"] == 200
  assert not unwritable.exists()
