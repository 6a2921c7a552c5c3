"""What the collectives between processes cost: training steps per second of the same devices as
1 process x 4 devices and as 2 processes x 2 devices (`python -m ganjax.launch`, gloo over
127.0.0.1), on this machine.

  python benchmarks/multiprocess.py --out=benchmarks/multiprocess [--rounds=2]

Workloads (each with `train.parallel=pmap`; 4 fake CPU devices in all):
  ring     experiments/ring.py:tiny, 2,000 steps at batch 512 (on-device data, 100 steps per
           compiled call)
  digits   experiments/mnist_dcgan.py (the full DCGAN networks) on scikit-learn's 1,797 digits
           written as a 28x28 image folder, `--digits_steps` steps at batch 64, data.shards=2 (host
           data: one call per step)

Each workload runs as 1x4 and 2x2 in turn, `--rounds` times (alternating, so that both see the
same machine). A run's speed is the median of its metrics.jsonl `steps_per_sec` values (the
training's own clock, which stops while checkpoints, logs and pictures are written) after the
first logged interval (which holds the compilation); its wall time is the whole command's,
start-up, compilation and the final summary included. Results go to <out>/results.json and
<out>/results.md; the runs to <out>/runs (kept out of git). Needs scikit-learn.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
IGNORED = "# written by benchmarks/multiprocess.py: only the results are kept\n*\n" \
          "!.gitignore\n!results.json\n!results.md\n"
LAYOUTS = {"1x4": (1, 4), "2x2": (2, 2)}


def workloads(folder: pathlib.Path, digits_steps: int) -> dict[str, list[str]]:
  return {
      "ring": [f"--config={REPO / 'experiments' / 'ring.py'}:tiny", "--config.train.steps=2000",
               "--config.train.log_every=100", "--config.train.checkpoint_every=1000",
               "--config.train.sample_every=0", "--config.eval.every=0"],
      "digits": [f"--config={REPO / 'experiments' / 'mnist_dcgan.py'}",
                 "--config.data.name=folder", f"--config.data.folder={folder}",
                 "--config.data.channels=1", "--config.data.shards=2",
                 "--config.train.batch_size=64", f"--config.train.steps={digits_steps}",
                 "--config.train.log_every=5", f"--config.train.checkpoint_every={digits_steps}",
                 "--config.train.sample_every=0", "--config.eval.every=0",
                 "--config.eval.metrics=", "--config.eval.best="],
  }


def run(name: str, layout: str, args: list[str], workdir: pathlib.Path) -> dict:
  processes, devices = LAYOUTS[layout]
  shutil.rmtree(workdir, ignore_errors=True)
  command = [sys.executable, "-m", "ganjax.launch", f"--processes={processes}",
             f"--cpu_devices={devices}", "--timeout=3000", "--",
             sys.executable, "-m", "ganjax.main", *args, "--config.train.parallel=pmap",
             f"--workdir={workdir}", *(["--distributed"] if processes > 1 else [])]
  started = time.perf_counter()
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
  wall = time.perf_counter() - started
  if result.returncode:
    sys.exit(f"{name} {layout} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
  lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  speeds = [line["steps_per_sec"] for line in lines if "steps_per_sec" in line][1:]
  row = {"workload": name, "layout": layout, "steps_per_sec": statistics.median(speeds),
         "wall_seconds": round(wall, 1), "intervals": len(speeds)}
  print(json.dumps(row), flush=True)
  return row


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="benchmarks/multiprocess")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--digits_steps", type=int, default=60)
  args = parser.parse_args()
  out = pathlib.Path(args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  (out / ".gitignore").write_text(IGNORED)
  sys.path.insert(0, str(REPO / "benchmarks"))
  from conditional_digits import write_digits  # pylint: disable=import-outside-toplevel
  folder = out / "digits28"
  if not (folder / "train").exists():
    print(f"wrote {write_digits(folder, 28)} digits to {folder}", flush=True)
  rows = []
  for round_index in range(args.rounds):
    for name, workload in workloads(folder, args.digits_steps).items():
      for layout in LAYOUTS:
        rows.append({**run(name, layout, workload, out / "runs" / f"{name}_{layout}"),
                     "round": round_index})
  summary = {}
  for name in workloads(folder, args.digits_steps):
    speeds = {layout: statistics.median(r["steps_per_sec"] for r in rows
                                        if r["workload"] == name and r["layout"] == layout)
              for layout in LAYOUTS}
    walls = {layout: statistics.median(r["wall_seconds"] for r in rows
                                       if r["workload"] == name and r["layout"] == layout)
             for layout in LAYOUTS}
    summary[name] = {"steps_per_sec": speeds, "wall_seconds": walls,
                     "ratio_2x2_to_1x4": speeds["2x2"] / speeds["1x4"]}
  machine = f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPU cores"
  (out / "results.json").write_text(json.dumps({"machine": machine, "rounds": args.rounds,
                                                "runs": rows, "summary": summary}, indent=2)
                                    + "\n")
  table = ["| workload | 1x4 steps/s | 2x2 steps/s | 2x2 / 1x4 | wall 1x4 | wall 2x2 |",
           "|---|---|---|---|---|---|"]
  for name, values in summary.items():
    speeds, walls = values["steps_per_sec"], values["wall_seconds"]
    table.append(f"| {name} | {speeds['1x4']:.1f} | {speeds['2x2']:.1f} | "
                 f"{values['ratio_2x2_to_1x4']:.2f} | {walls['1x4']:.0f} s | "
                 f"{walls['2x2']:.0f} s |")
  (out / "results.md").write_text(
      f"# 1 process x 4 devices against 2 processes x 2 devices\n\n{machine}; medians of "
      f"{args.rounds} alternating rounds (`python benchmarks/multiprocess.py`).\n\n"
      + "\n".join(table) + "\n")
  print("\n".join(table))


if __name__ == "__main__":
  main()
