"""The one training loop (`ganjax.loop`): when each hook runs, what reaches metrics.jsonl and the
console, the steps/s clock that stops during the hooks, preemption, the profiler."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import loop


def test_itstime_and_chunk():
  assert [s for s in range(1, 11) if loop.itstime(s, 3, 10)] == [3, 6, 9]
  assert [s for s in range(1, 11) if loop.itstime(s, 3, 10, at_end=True)] == [3, 6, 9, 10]
  assert not any(loop.itstime(s, 0, 10) for s in range(1, 11))
  assert loop.itstime(10, 0, 10, at_end=True)
  assert loop.chunk(5000, (500, 1000, 0, 1000)) == 500
  assert loop.chunk(200, (50, 100, 100, 100)) == 50
  assert loop.chunk(210, (0, 0)) == 210
  assert loop.chunk(300, (40,)) == 20  # the last step must end a call too


class Recorder(loop._StepLines):
  def __init__(self):
    super().__init__()
    self.lines = []

  def _emit(self, step, values):
    self.lines.append((step, dict(values)))


def counting_step(state, batch):
  """Adds one per step of a call of 5 steps; its metric is the state after each step."""
  del batch
  values = state + jnp.arange(1, 6, dtype=jnp.float32)
  return state + 5, {"value": values}


def test_hooks_run_when_due_in_order_and_write_one_line_per_step():
  calls = []

  def hook(name, result=None):
    def action(step, state, window):
      calls.append((name, step, float(state)))
      return result(window) if result else None
    return action

  writer = Recorder()
  hooks = [loop.Hook("log", 10, hook("log", lambda w: w.take()), at_end=True),
           loop.Hook("evaluate", 15, hook("evaluate", lambda w: {"score": 1.0})),
           loop.Hook("checkpoint", 20, hook("checkpoint"), at_end=True)]
  state = loop.Loop(counting_step, total_steps=25, steps_per_call=5, hooks=hooks,
                    writer=writer).run(jnp.float32(0.0), start_step=0)
  assert float(state) == 25.0
  assert calls == [("log", 10, 10.0), ("evaluate", 15, 15.0), ("log", 20, 20.0),
                   ("checkpoint", 20, 20.0), ("log", 25, 25.0), ("checkpoint", 25, 25.0)]
  steps = [step for step, _ in writer.lines]
  assert steps == [10, 15, 20, 25]
  lines = dict(writer.lines)
  # The log line holds the mean over the steps since the last one (1..10, then 11..20, 21..25).
  assert lines[10]["value"] == pytest.approx(np.mean(np.arange(1, 11)))
  assert lines[20]["value"] == pytest.approx(np.mean(np.arange(11, 21)))
  assert lines[25]["value"] == pytest.approx(np.mean(np.arange(21, 26)))
  # ReportProgress writes steps_per_sec and uptime into the log steps' lines, not elsewhere.
  for step in (10, 20, 25):
    assert lines[step]["steps_per_sec"] > 0 and lines[step]["uptime"] >= 0
  assert lines[15] == {"score": 1.0}


def test_a_resumed_loop_makes_the_same_calls_from_its_start_step():
  seen = []
  hooks = [loop.Hook("log", 10, lambda step, state, window: seen.append(step) or window.take())]
  loop.Loop(counting_step, total_steps=30, steps_per_call=5, hooks=hooks,
            writer=Recorder()).run(jnp.float32(10.0), start_step=10)
  assert seen == [20, 30]


def test_steps_per_second_exclude_the_hooks_time(monkeypatch):
  # A clock that moves 1 s per call of the step and 100 s inside each hook.
  now = [0.0]
  monkeypatch.setattr(loop.time, "monotonic", lambda: now[0])
  import clu.periodic_actions as actions
  monkeypatch.setattr(actions.time, "monotonic", lambda: now[0])

  def step(state, batch):
    now[0] += 1.0
    return counting_step(state, batch)

  def slow_hook(step_number, state, window):
    now[0] += 100.0
    return window.take()

  writer = Recorder()
  loop.Loop(step, total_steps=20, steps_per_call=5, hooks=[loop.Hook("log", 10, slow_hook)],
            writer=writer).run(jnp.float32(0.0), start_step=0)
  lines = dict(writer.lines)
  assert lines[10]["steps_per_sec"] == pytest.approx(10 / 2.0)  # 2 calls of 5 steps, 1 s each
  assert lines[20]["steps_per_sec"] == pytest.approx(10 / 2.0)
  assert lines[20]["uptime"] == pytest.approx(204.0)  # the wall time, hooks included


def test_stop_runs_on_stop_at_the_next_boundary_but_not_after_the_last_step():
  stops = []

  def on_stop(step, state, window):
    stops.append((step, len(window.means())))
    raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    loop.Loop(counting_step, total_steps=20, steps_per_call=5, hooks=[], writer=Recorder(),
              stop=lambda: True, on_stop=on_stop).run(jnp.float32(0.0), start_step=0)
  assert stops == [(5, 1)]
  # A stop asked at the last step ends the loop normally.
  state = loop.Loop(counting_step, total_steps=5, steps_per_call=5, hooks=[], writer=Recorder(),
                    stop=lambda: True, on_stop=on_stop).run(jnp.float32(0.0), start_step=0)
  assert float(state) == 5.0 and stops == [(5, 1)]


def test_host_batches_one_per_call_through_batch_fn():
  seen = []

  def step(state, batch):
    seen.append(batch)
    return state + 1, {"value": jnp.float32(batch)}

  loop.Loop(step, total_steps=3, steps_per_call=1, hooks=[], writer=Recorder(),
            batches=iter([10, 20, 30, 40])).run(jnp.float32(0.0), 0, batch_fn=lambda b: b + 1)
  assert seen == [11, 21, 31]


def test_jsonl_and_console_lines(tmp_path, capsys):
  path = tmp_path / "metrics.jsonl"
  path.write_text("".join(json.dumps({"step": s, "x": s}) + "\n" for s in (10, 20, 30)))
  jsonl = loop.JsonlWriter(path, resume_step=20)  # resuming at 20: the line of 30 is redone
  console = loop.ConsoleWriter(total_steps=100, shown=("d_loss", "fid"), start_step=20)
  for writer in (jsonl, console):
    writer.write_scalars(40, {"d_loss": 1.5, "other": 2})
    writer.write_scalars(40, {"steps_per_sec": 4.0, "uptime": 10.0})
    writer.write_scalars(50, {"fid": 7.25})
    writer.write_scalars(60, {"other": 1})  # nothing shown: no console line
    writer.close()
  lines = [json.loads(line) for line in path.read_text().splitlines()]
  assert [line["step"] for line in lines] == [10, 20, 40, 50, 60]
  assert lines[2] == {"step": 40, "d_loss": 1.5, "other": 2.0, "steps_per_sec": 4.0,
                      "uptime": 10.0}
  out = capsys.readouterr().out.splitlines()
  # 10 s for the 20 steps since the start: 30 s for the 60 steps left.
  assert out == ["step 40/100  d_loss 1.5  4.0 steps/s  0m30s left", "step 50/100  fid 7.25"]


def test_profile_traces_into_the_workdir(tmp_path):
  loop.Loop(counting_step, total_steps=20, steps_per_call=5, hooks=[], writer=Recorder(),
            profile_steps=5, profile_dir=tmp_path).run(jnp.float32(0.0), start_step=0)
  traces = list((tmp_path / "plugins" / "profile").rglob("*.xplane.pb"))
  assert traces, sorted(str(p) for p in tmp_path.rglob("*"))
