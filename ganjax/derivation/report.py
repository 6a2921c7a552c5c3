"""The report of a derivation study: theory against measurement, as Markdown and JSON.

Each row is one checked claim: the quantity, its theoretical value (a closed form, a quadrature,
an eigenvalue), the value measured on trained networks, the error between them and the tolerance
the claim is held to. `report.md` is the table a reader looks at; `report.json` holds the same
numbers for scripts and tests.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from typing import Any

ERROR_KINDS = ("absolute", "relative", "value")


@dataclasses.dataclass(frozen=True)
class Row:
  """One checked quantity. `error` is |measured - theory| ("absolute"), that over |theory|
  ("relative"), or the measured value itself ("value": a quantity whose theoretical value is a
  bound, an order or a sign, with `theory` shown for reference)."""
  quantity: str
  theory: float
  measured: float
  error: float
  tolerance: float
  kind: str = "absolute"
  note: str = ""

  @property
  def passed(self) -> bool:
    return bool(math.isfinite(self.error) and self.error <= self.tolerance)


class Report:
  """Rows of theory against measurement for one study, written to a workdir."""

  def __init__(self, study: str, title: str, command: str = ""):
    self.study, self.title, self.command = study, title, command
    self.rows: list[Row] = []
    self.figures: list[str] = []
    self.details: dict[str, Any] = {}
    self.text: list[str] = []

  def add(self, quantity: str, theory: float, measured: float, tolerance: float,
          kind: str = "absolute", error: float | None = None, note: str = "") -> Row:
    """Adds a row; the error is computed from `kind` unless given."""
    if kind not in ERROR_KINDS:
      raise ValueError(f"unknown error kind {kind!r}; valid: {', '.join(ERROR_KINDS)}")
    theory, measured = float(theory), float(measured)
    if error is None:
      if kind == "absolute":
        error = abs(measured - theory)
      elif kind == "relative":
        error = abs(measured - theory) / max(abs(theory), 1e-300)
      else:
        error = measured
    row = Row(quantity, theory, measured, float(error), float(tolerance), kind, note)
    self.rows.append(row)
    return row

  def row(self, quantity: str) -> Row:
    """The row named `quantity`."""
    for row in self.rows:
      if row.quantity == quantity:
        return row
    raise KeyError(f"no row {quantity!r}; rows: {', '.join(r.quantity for r in self.rows)}")

  @property
  def passed(self) -> bool:
    return all(row.passed for row in self.rows)

  def to_dict(self) -> dict[str, Any]:
    return {
        "study": self.study,
        "title": self.title,
        "command": self.command,
        "passed": self.passed,
        "rows": [dict(dataclasses.asdict(row), passed=row.passed) for row in self.rows],
        "figures": list(self.figures),
        "details": self.details,
    }

  def markdown(self) -> str:
    lines = [f"# {self.title}", ""]
    if self.command:
      lines += ["```", self.command, "```", ""]
    lines += list(self.text) + ([""] if self.text else [])
    lines += ["| quantity | theory | measured | error | tolerance | within |",
              "|---|---|---|---|---|---|"]
    for row in self.rows:
      error = f"{_number(row.error)} ({row.kind})" if row.kind != "value" else "—"
      note = f" ({row.note})" if row.note else ""
      lines.append(f"| {_cell(row.quantity + note)} | {_number(row.theory)} | "
                   f"{_number(row.measured)} | {error} | {_number(row.tolerance)} | "
                   f"{'yes' if row.passed else 'NO'} |")
    lines.append("")
    lines += [f"![{name}]({name})" for name in self.figures]
    return "\n".join(lines) + "\n"

  def write(self, workdir: str | pathlib.Path) -> None:
    """Writes report.md and report.json into `workdir`."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "report.md").write_text(self.markdown())
    (workdir / "report.json").write_text(json.dumps(_plain(self.to_dict()), indent=1) + "\n")


def _plain(value):
  """JSON-compatible copies of numpy and JAX scalars and arrays (non-finite floats as strings)."""
  if isinstance(value, dict):
    return {str(k): _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  if hasattr(value, "tolist"):
    return _plain(value.tolist())
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


def _cell(text: str) -> str:
  """Text for a Markdown table cell: a '|' in it would end the cell."""
  return text.replace("|", "\\|")


def _number(value: float) -> str:
  if not math.isfinite(value):
    return str(value)
  if value == 0:
    return "0"
  if 1e-3 <= abs(value) < 1e4:
    return f"{value:.4g}"
  return f"{value:.3e}"
