"""What every ganjax command shares: a console that holds ganjax's own lines, and one line for a
flag or config override that cannot be used.

Import this module before anything imports TensorFlow (the commands import it first): it turns
off TensorFlow's C++ start-up messages (the oneDNN banner, CPU-feature notes) unless the
environment already sets TF_CPP_MIN_LOG_LEVEL or TF_ENABLE_ONEDNN_OPTS. TensorFlow only reads
and resizes images in ganjax; TF_ENABLE_ONEDNN_OPTS=0 keeps those ops on TensorFlow's own
kernels.

The commands that compile take --compilation_cache (`define_compilation_cache_flag`), and
call `enable_compilation_cache()` before anything compiles.

`run(main)` runs an absl program as `absl.app.run` does, except that:
  * a flag or config override that cannot be parsed (an unknown field, a value of the wrong
    type, a config file that does not load) stops with one line, `error: ...`, exit status 2;
    for an unknown field the line names the closest existing fields;
  * absl's Python logging (Orbax, clu, TensorFlow's Python side) shows warnings and errors only,
    unless --verbosity (-v) is given: --verbosity=0 shows their INFO lines again.
"""
from __future__ import annotations

import difflib
import os
import sys
from typing import Any, Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging as absl_logging

USAGE_ERROR = 2


def run(main: Callable[[list[str]], Any]) -> None:
  """`absl.app.run(main)` with one-line flag errors and a quiet console (module docstring)."""
  app.run(main, flags_parser=parse_flags)


def define_compilation_cache_flag() -> None:
  """Defines --compilation_cache, the folder of JAX's persistent compilation cache."""
  flags.DEFINE_string("compilation_cache", None, "Folder that keeps compiled programs for the "
                      "next run (JAX's persistent compilation cache); 'off' for none. Default: "
                      "$GANJAX_COMPILATION_CACHE, else <$GANJAX_CACHE or ~/.cache/ganjax>/xla.")


def enable_compilation_cache() -> None:
  """Turns JAX's persistent compilation cache on as --compilation_cache says
  (`ganjax.compilation.enable_persistent_cache`)."""
  from ganjax import compilation
  compilation.enable_persistent_cache(flags.FLAGS.compilation_cache)


def no_arguments(argv: Sequence[str]) -> None:
  """Exits with one line when a command that takes only flags is given other arguments."""
  if len(argv) > 1:
    print(f"error: unexpected arguments: {' '.join(argv[1:])} (flags are --name=value)",
          file=sys.stderr)
    sys.exit(USAGE_ERROR)


def parse_flags(argv: Sequence[str]) -> list[str]:
  """Parses `argv` into absl's FLAGS; on a bad flag, exits with one line.

  Returns:
    The arguments that are not flags (argv[0] first), as `absl.app.run` expects.
  """
  argv = list(argv)
  try:
    rest = flags.FLAGS(argv)
    if "config" in flags.FLAGS and flags.FLAGS["config"].present:
      flags.FLAGS.config.keys()  # a config file that failed to load raises only when used
  except SystemExit:
    raise
  except Exception as error:  # pylint: disable=broad-except
    print(f"error: {describe_flag_error(argv, error)}", file=sys.stderr)
    sys.exit(USAGE_ERROR)
  if not flags.FLAGS["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.WARNING)
  return rest


def _config_argument(argv: Sequence[str]) -> str | None:
  """The value of --config (as --config=<file> or --config <file>), or None."""
  for index, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and index + 1 < len(argv):
      return argv[index + 1]
  return None


def _overrides(argv: Sequence[str]) -> list[str]:
  """The dotted field names of the --config.<field>=<value> overrides in `argv`, in order."""
  names = []
  for arg in argv:
    if arg.startswith("--config."):
      names.append(arg[len("--config."):].split("=", 1)[0])
  return names


def field_names(config: Any, prefix: str = "") -> list[str]:
  """Every field of a ConfigDict as a dotted name, sections and their fields alike."""
  names = []
  for key, value in config.items():
    name = f"{prefix}{key}"
    names.append(name)
    if hasattr(value, "items") and not isinstance(value, (str, bytes)):
      names.extend(field_names(value, name + "."))
  return names


def unknown_field_message(config: Any, name: str, where: str = "the config") -> str | None:
  """The one-line error for an override of `name`, or None when `config` has that field."""
  names = field_names(config)
  if name in names:
    return None
  ancestors = {name.rsplit(".", depth)[0] for depth in range(1, name.count(".") + 1)}
  candidates = [n for n in names if n not in ancestors]
  closest = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
  if not closest:
    # The existing fields of the deepest section that exists.
    section = name.rsplit(".", 1)[0] if "." in name else ""
    while section and section not in names:
      section = section.rsplit(".", 1)[0] if "." in section else ""
    closest = [n for n in names if ("." in n and n.rsplit(".", 1)[0] == section)
               or (not section and "." not in n)][:6]
  hint = f"; closest: {', '.join(closest)}" if closest else ""
  return f"--config.{name}: {where} has no field {name!r}{hint}"


def _load_config(path: str) -> Any:
  """The config of an experiment file argument (<file>[:arg]), loaded without overrides."""
  from ml_collections import config_flags
  argv = ["ganjax", f"--config={path}"]
  values = flags.FlagValues()
  # sys_argv: the overrides config_flags would otherwise take from the real command line.
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, sys_argv=argv)
  values(argv)
  return values["config"].value


def describe_flag_error(argv: Sequence[str], error: BaseException) -> str:
  """One line for an exception raised while parsing `argv`."""
  config_path = _config_argument(argv)
  if config_path and _overrides(argv):
    try:
      config = _load_config(config_path)
    except Exception:  # pylint: disable=broad-except
      config = None
    if config is not None:
      for name in _overrides(argv):
        message = unknown_field_message(config, name, where=config_path.split(":", 1)[0])
        if message:
          return message
  text = str(error).strip()
  if isinstance(error, KeyError) and text[:1] in ("'", '"') and text[-1:] == text[:1]:
    text = text[1:-1]
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if isinstance(error, OSError) and config_path:
    return f"--config={config_path}: cannot load the file: {lines[-1] if lines else error}"
  if not lines:
    return type(error).__name__
  if len(lines) == 1:
    return lines[0]
  return f"{lines[0].rstrip(':')}: {lines[-1]}"
