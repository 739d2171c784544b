"""The torch thread count of a single run, alone and beside other work: the measurement behind the default.

    RNNBENCH_DATA=/path/to/data python scripts/bench_threads.py                 # the table in docs/speed.md
    python scripts/bench_threads.py --jobs default --loads none torch --timeout 60

Each cell of the table is the wall time (seconds, from summary.json) of one ``python -m rnnbench`` run in a
fresh process, for a workload (``default``: the README's default job cut to 150 steps; ``ptb``: Zaremba et
al.'s small PTB model, 40 steps, 2 x 200 units, batch 20 x 35; ``ptb_medium``: their medium one, 10 steps,
2 x 650 units) under a load started in its own session, as
a second terminal would start it (``none``; ``torch``: a matrix-product loop on as many threads as there are
cores, what a second rnnbench run does with torch's default; ``busy``: one single-threaded Python loop), for
each candidate thread setting (``1``; ``all``: as many as cores, torch's default; ``all-passive``: the same
with OMP_WAIT_POLICY=PASSIVE, threads sleep instead of spinning while they wait). A run that does not end
within ``--timeout`` seconds shows as ``>T``. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORES = os.cpu_count() or 1
JOBS = {
    "default": ["trainer.max_steps=150"],
    "ptb": ["experiment=zaremba_small", "trainer.max_steps=40", "trainer.eval_batches=5"],
    "ptb_medium": ["experiment=zaremba_medium", "trainer.max_steps=10", "trainer.eval_batches=2"],
}
LOADS = {
    "none": None,
    "torch": f"import torch; torch.set_num_threads({CORES}); a = torch.randn(512, 512)\nwhile True: a @ a",
    "busy": "while True: pass",
}
CANDIDATES = {"1": (1, {}), "all": (CORES, {}), "all-passive": (CORES, {"OMP_WAIT_POLICY": "PASSIVE"})}


def timed_run(job: list[str], threads: int, env: dict, timeout: float) -> float | None:
    """Wall seconds of the run's training and evaluation (summary.json), or None past the timeout."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "rnnbench",
            *job,
            f"trainer.threads={threads}",
            "trainer.progress=false",
            f"results_dir={tmp}",
        ]
        try:
            subprocess.run(
                cmd,
                env={**os.environ, **env},
                timeout=timeout,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except subprocess.TimeoutExpired:
            return None
        (summary,) = Path(tmp).rglob("summary.json")
        return json.loads(summary.read_text())["wall_s"]


def start_load(name: str) -> subprocess.Popen | None:
    if LOADS[name] is None:
        return None
    load = subprocess.Popen([sys.executable, "-c", LOADS[name]], start_new_session=True)
    time.sleep(3)  # past its imports: the load is running before the run starts
    return load


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=list(JOBS))
    parser.add_argument("--loads", nargs="+", default=list(LOADS), choices=list(LOADS))
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds before a run counts as >T")
    parser.add_argument("--csv", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    for load_name in args.loads:
        load = start_load(load_name)
        try:
            for job in args.jobs:
                for name, (threads, env) in CANDIDATES.items():
                    wall = timed_run(JOBS[job], threads, env, args.timeout)
                    rows.append(
                        {
                            "job": job,
                            "load": load_name,
                            "threads": name,
                            "wall_s": "" if wall is None else round(wall, 1),
                        }
                    )
                    shown = f">{args.timeout:.0f}" if wall is None else f"{wall:.1f}"
                    print(f"{job:8s} load={load_name:6s} threads={name:12s} {shown:>7s} s", flush=True)
        finally:
            if load is not None:
                load.kill()
                load.wait()
    if args.csv:
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print(f"\n| job | load | {' | '.join(CANDIDATES)} |\n|---|---|{'---:|' * len(CANDIDATES)}")
    for job in args.jobs:
        for load_name in args.loads:
            cells = [
                next(r["wall_s"] for r in rows if (r["job"], r["load"], r["threads"]) == (job, load_name, c))
                for c in CANDIDATES
            ]
            shown = [f">{args.timeout:.0f}" if c == "" else str(c) for c in cells]
            print(f"| {job} | {load_name} | {' | '.join(shown)} |")


if __name__ == "__main__":
    main()
