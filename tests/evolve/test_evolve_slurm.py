"""The architecture search on a real one-node SLURM cluster (the ``slurm`` fixture of tests/conftest.py):
with ``search.launcher=slurm`` every evaluation's trials run as worker jobs submitted through sbatch, the
search waits for them, and it ends as it does on local workers."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna

from rnnbench.search.study import counts, open_storage

ARGS = [
    "evolve=jozefowicz",
    "debug=fast",
    "evolve.candidates=1",
    "evolve.draws=1",
    "evolve.tasks=[arithmetic]",
    "evolve.score=[]",
    "evolve.memorization.pass=0.0",
    "task.eval_size=40",
    "search.space.cell.num_layers.choices=[1]",
    "search.launcher=slurm",
    "search.slurm.cluster=slurm",
    "search.slurm.jobs=1",
    "search.slurm.cpus_per_task=1",
    "search.slurm.mem_gb=0.5",
    "search.slurm.timeout_min=30",
]


def test_every_evaluation_of_an_architecture_search_runs_as_a_slurm_job(tmp_path, slurm):
    results = tmp_path / "results"
    env = {**slurm.env, "MPLCONFIGDIR": str(tmp_path / "mpl")}
    env.pop("RNNBENCH_DATA", None)  # arithmetic and copy are generated
    command = [sys.executable, "-m", "rnnbench.evolve", *ARGS, f"results_dir={results}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    summary = json.loads((results / "evolve" / "jozefowicz" / "summary.json").read_text())
    assert summary["funnel"]["generated"] == 1
    storage = open_storage(None, str(results))
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    # lstm and gru on copy and arithmetic, and the mutant on copy (and arithmetic unless a duplicate)
    assert len(names) in (5, 6), names
    for name in names:  # each evaluation's one draw ran to its end
        found = counts(optuna.load_study(study_name=name, storage=storage))
        assert found["complete"] == 1 and found["failed"] == found["waiting"] == found["running"] == 0, (
            name,
            found,
        )
    # one job per evaluation, through sbatch: its submission script and the job's own log
    jobs = sorted(p for p in (results / "slurm").iterdir() if p.is_dir())
    assert len(jobs) == len(names), [p.name for p in jobs]
    for job in jobs:
        assert list(job.glob("*_submission.sh")), sorted(p.name for p in job.iterdir())
        assert list(job.glob("*.out")), sorted(p.name for p in job.iterdir())
