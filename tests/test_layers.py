"""The import graph of ganjax: layers point down, and no module reaches back into one above it.

Every `import` counts, at module level or inside a function. `python tests/test_layers.py`
prints the graph, one module and what it imports per line.
"""
import ast
import fnmatch
import pathlib
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "ganjax"
# From the bottom up; a module may import modules of its own layer and of the layers below.
LAYERS = (
    ("base", ("ganjax", "ganjax.errors", "ganjax.compilation", "ganjax.paths", "ganjax.cache",
              "ganjax.progress", "ganjax.cli", "ganjax.configs", "ganjax.divergences",
              "ganjax.distributed")),
    ("library", ("ganjax.losses", "ganjax.regularizers", "ganjax.augment", "ganjax.theory",
                 "ganjax.models", "ganjax.models.*", "ganjax.data", "ganjax.data.*",
                 "ganjax.metrics", "ganjax.train", "ganjax.pictures")),
    ("evaluation and storage", ("ganjax.image_quality", "ganjax.evaluation", "ganjax.classifier",
                                "ganjax.checkpoint", "ganjax.workdir")),
    ("experiment", ("ganjax.experiment", "ganjax.loop")),
    ("programs", ("ganjax.programs", "ganjax.programs.*", "ganjax.derivation",
                  "ganjax.derivation.*", "ganjax.mode_collapse")),
    ("runner", ("ganjax.runner",)),
    ("commands", ("ganjax.main", "ganjax.sample", "ganjax.evaluate", "ganjax.launch")),
)


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, pathlib.Path]:
  return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: pathlib.Path, known: set[str]) -> set[str]:
  """The ganjax modules a file imports anywhere in it (`from ganjax import x` counts as the
  module ganjax.x where there is one)."""
  found = set()
  try:
    this = module_name(path)
  except ValueError:  # a file outside the package
    this = path.stem
  package = this if path.name == "__init__.py" else this.rsplit(".", 1)[0]
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names if alias.name.startswith("ganjax"))
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                        + ([base] if base else []))
      if not base.startswith("ganjax"):
        continue
      for alias in node.names:
        found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
  return {name for name in found if name in known and name != this}


def graph() -> dict[str, set[str]]:
  found = modules()
  return {name: imports_of(path, set(found)) for name, path in found.items()}


def layer(name: str) -> int:
  for index, (_, patterns) in enumerate(LAYERS):
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
      return index
  raise AssertionError(f"{name} is in no layer of tests/test_layers.py: place it")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components with more than one module (Tarjan's algorithm)."""
  index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

  def visit(node):
    index[node] = low[node] = counter[0]
    counter[0] += 1
    stack.append(node)
    on_stack.add(node)
    for other in sorted(edges[node]):
      if other not in index:
        visit(other)
        low[node] = min(low[node], low[other])
      elif other in on_stack:
        low[node] = min(low[node], index[other])
    if low[node] == index[node]:
      component = []
      while True:
        other = stack.pop()
        on_stack.discard(other)
        component.append(other)
        if other == node:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for node in sorted(edges):
    if node not in index:
      visit(node)
  return found


def test_every_module_has_a_layer():
  for name in graph():
    layer(name)


def test_no_import_reaches_up_a_layer():
  upward = [f"{name} ({LAYERS[layer(name)][0]}) imports {other} ({LAYERS[layer(other)][0]})"
            for name, imported in graph().items() for other in sorted(imported)
            if layer(other) > layer(name)]
  assert not upward, "\n".join(upward)


def test_no_import_cycle():
  assert not cycles(graph())


def test_the_checks_see_an_upward_import_and_a_cycle():
  edges = {"ganjax.train": {"ganjax.runner"}, "ganjax.runner": {"ganjax.train"}}
  assert cycles(edges) == [["ganjax.runner", "ganjax.train"]]
  assert layer("ganjax.runner") > layer("ganjax.train")
  with pytest.raises(AssertionError, match="in no layer"):
    layer("ganjax.nowhere")


def test_function_level_and_relative_imports_are_seen(tmp_path):
  source = tmp_path / "probe.py"
  source.write_text("def f():\n  from ganjax import runner\n  import ganjax.train\n")
  known = {"ganjax.runner", "ganjax.train", "ganjax"}
  assert imports_of(source, known) >= {"ganjax.runner", "ganjax.train"}


if __name__ == "__main__":
  for name, imported in sorted(graph().items()):
    print(f"{name} -> {', '.join(sorted(imported)) or '(nothing in ganjax)'}")
  sys.exit(0)
