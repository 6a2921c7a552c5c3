"""The error the library raises for a value a user chose and can fix.

`ConfigError` is raised by the functions that turn names and fields into objects (a loss, model,
optimizer, penalty, dataset or evaluation measure that does not exist, a field of the wrong type
or range). The experiment layer reports it in one line, before anything compiles; any other
exception is a bug and keeps its traceback.
"""


class ConfigError(ValueError):
  """A name or field a user chose that cannot be used; the message names it and the choices."""


def lookup(registry, name, what: str, field: str | None = None):
  """`registry[name]`, the entry a config names.

  Args:
    registry: a mapping from names to what they name (losses, penalties, divergences, ...).
    name: the name a config gives.
    what: what the entries are, for the message ('loss', 'penalty').
    field: the config field that gave the name, for the message ('penalty.name'), or None.

  Raises:
    ConfigError: 'unknown <what> <name> (<field>); valid names: <sorted names>'.
  """
  try:
    return registry[name]
  except (KeyError, TypeError):
    where = f" ({field})" if field else ""
    raise ConfigError(f"unknown {what} {name!r}{where}; valid names: "
                      f"{', '.join(sorted(registry))}") from None
