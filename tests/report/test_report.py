"""Reports from run folders and Optuna studies made here with known values: the tables hold them, the
statistics equal scipy's, selection uses validation, failures are counted but not averaged, every
figure is written and embedded, and bad input is one line."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from scipy import stats

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))

from helpers.paths import CONFIGS  # noqa: E402
from helpers.runs import write_run  # noqa: E402
from rnnbench.report import make_report  # noqa: E402
from rnnbench.report.__main__ import main  # noqa: E402
from rnnbench.report.load import load  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "cell.hidden_size": IntDistribution(20, 200, log=True),
    "trainer.lr": FloatDistribution(1e-6, 1e-2, log=True),
    "1-trainer.momentum": FloatDistribution(0.01, 1.0, log=True),
    "model.input_noise_std": FloatDistribution(0.0, 1.0),
}
# JSB (NLL, lower is better): per cell, (valid, test) of its complete trials. In greff_v the best trial by
# validation (8.60) is not the best by test (8.45 at valid 8.90): selection must follow validation.
JSB = {
    "greff_v": [
        (8.60, 8.70),
        (8.90, 8.45),
        (9.0, 9.1),
        (9.2, 9.3),
        (9.5, 9.4),
        (9.9, 10.2),
        (10.4, 10.1),
        (10.8, 11.0),
        (11.0, 10.9),
        (11.5, 11.9),
        (12.0, 12.2),
        (12.5, 12.4),
    ],
    "nfg": [(11.1, 11.3), (11.4, 11.5), (11.7, 11.9), (12.0, 12.4), (12.5, 12.7), (12.8, 13.2), (13.5, 13.6)],
    "cifg": [(8.7, 8.8), (9.1, 9.0)],  # too few trials: shown and flagged
}
# Arithmetic plain runs (accuracy, higher is better): cell -> (valid, test, lr, status)
ARITHMETIC = {
    "lstm": [
        (0.80, 0.79, 0.1, "completed"),
        (0.85, 0.84, 0.5, "completed"),
        (0.60, 0.61, 2.0, "completed"),
        (0.70, 0.69, 1.0, "completed"),
        (0.75, 0.74, 0.2, "completed"),
        (None, None, 5.0, "diverged"),
    ],
    "gru": [
        (0.88, 0.86, 0.3, "completed"),
        (0.82, 0.87, 0.1, "completed"),
        (0.50, 0.52, 5.0, "completed"),
        (0.65, 0.64, 2.0, "completed"),
        (0.78, 0.77, 0.5, "completed"),
        (0.40, None, 1.0, "pruned"),
    ],
}


def params(draw: int) -> dict:
    rng = np.random.default_rng(draw)
    return {
        "cell.hidden_size": int(np.exp(rng.uniform(np.log(20), np.log(200)))),
        "trainer.lr": float(np.exp(rng.uniform(np.log(1e-6), np.log(1e-2)))),
        "1-trainer.momentum": float(np.exp(rng.uniform(np.log(0.01), 0.0))),
        "model.input_noise_std": float(rng.uniform(0, 1)),
    }


def make_study(storage, results: Path, cell: str, trials, extra=()):
    study = optuna.create_study(storage=storage, study_name=f"greff-jsb-{cell}", direction="minimize")
    for key, value in {
        "task": "jsb",
        "cell": cell,
        "search": "greff",
        "headline": "valid/nll",
        "higher_is_better": False,
        "n_trials": 20,
        "paired": True,
        "seed": 0,
    }.items():
        study.set_user_attr(key, value)
    for draw, (valid, test) in enumerate(trials):
        run_dir = results / "studies" / study.study_name / f"trial-{draw:012x}"
        write_run(run_dir, "jsb", cell, "valid/nll", False, valid, test, "completed")
        attrs = {
            "draw": draw,
            "seed": 0,
            "run_dir": str(run_dir),
            "outcome": "completed",
            "reason": None,
            "headline": "valid/nll",
            "valid": {"valid/nll": valid},
            "test": {"test/nll": test},
            "num_params": 20000 + draw,
            "hidden_size": params(draw)["cell.hidden_size"],
            "num_layers": 1,
            "wall_s": 30.0 + draw,
            "steps": 100,
            "epochs": 5,
            "device": "cpu",
        }
        study.add_trial(create_trial(value=valid, params=params(draw), distributions=SPACE, user_attrs=attrs))
    for state, attrs in extra:
        if state == TrialState.WAITING:  # a queued draw, as the search leaves it
            study.enqueue_trial(params(98), user_attrs=attrs)
        else:
            study.add_trial(
                create_trial(state=state, params=params(99), distributions=SPACE, user_attrs=attrs)
            )
    return study


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results folder: studies.db with three JSB studies (greff_v also has a diverged, a killed, a
    pruned and a queued trial, with misleading test values that statistics must ignore) and arithmetic
    plain runs."""
    results = tmp_path_factory.mktemp("results")
    storage = f"sqlite:///{results / 'studies.db'}"
    bogus = {"test": {"test/nll": 0.001}, "valid": {"valid/nll": 0.001}, "wall_s": 5.0}
    make_study(
        storage,
        results,
        "greff_v",
        JSB["greff_v"],
        extra=[
            (TrialState.FAIL, {**bogus, "outcome": "diverged", "draw": 90}),
            (TrialState.FAIL, {"draw": 91, "seed": 0}),  # a killed worker: no outcome
            (TrialState.PRUNED, {**bogus, "outcome": "pruned", "draw": 92}),
            (TrialState.WAITING, {"draw": 93}),
        ],
    )
    make_study(storage, results, "nfg", JSB["nfg"])
    make_study(storage, results, "cifg", JSB["cifg"])
    for cell, runs in ARITHMETIC.items():
        for valid, test, lr, status in runs:
            write_run(
                results / "runs" / "arithmetic" / cell / f"trainer.lr={lr}",
                "arithmetic",
                cell,
                "valid/acc",
                True,
                valid,
                test,
                status,
                lr=lr,
            )
    return results


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    make_report([str(results)], out)
    return out


def by_validation(pairs, lower_is_better=True):
    return sorted(pairs, key=lambda p: p[0] if lower_is_better else -p[0])


def test_every_trial_is_read_once(results):
    frame = load([str(results)]).frame
    again = load(
        [str(results), f"sqlite:///{results}/studies.db", str(results / "studies.db"), str(results / "runs")]
    )
    assert len(again.frame) == len(frame)
    assert len(frame) == sum(map(len, JSB.values())) + 4 + sum(map(len, ARITHMETIC.values()))
    assert frame["run_dir"].dropna().map(lambda d: Path(d).resolve()).is_unique
    assert set(frame[frame["task"] == "jsb"]["study"]) == {
        "greff-jsb-greff_v",
        "greff-jsb-nfg",
        "greff-jsb-cifg",
    }


def test_jozefowicz_table_holds_the_validation_selected_test_values(report):
    table = pd.read_csv(report / "table-jozefowicz.csv").set_index(["task", "cell"])
    for cell, pairs in JSB.items():
        assert table.loc[("jsb", cell), "value"] == pytest.approx(by_validation(pairs)[0][1])
    for cell, runs in ARITHMETIC.items():
        done = [(v, t) for v, t, _, status in runs if status == "completed"]
        assert table.loc[("arithmetic", cell), "value"] == pytest.approx(by_validation(done, False)[0][1])
    assert table.loc[("jsb", "greff_v"), "value"] == 8.70  # not 8.45, the best test value
    assert table.loc[("arithmetic", "gru"), "value"] == 0.86  # not 0.87
    assert list(table[table["best"]].index) == [("arithmetic", "gru"), ("jsb", "greff_v")]
    assert table.loc[("arithmetic", "lstm"), "paper"] == "0.89228 [secondary]"
    assert table.loc[("arithmetic", "lstm"), "difference"] == pytest.approx(0.84 - 0.89228)
    assert "Jozefowicz" in table.loc[("arithmetic", "lstm"), "paper_source"]


def test_greff_table_statistics_and_welch_p_values_equal_scipys(report):
    table = pd.read_csv(report / "table-greff.csv").set_index(["task", "cell"])
    base = [t for _, t in JSB["greff_v"]]
    base_top = [t for _, t in by_validation(JSB["greff_v"])[:2]]  # 10% of 12 trials, rounded up
    for cell in ("nfg", "cifg"):
        tests = [t for _, t in JSB[cell]]
        top = [t for _, t in by_validation(JSB[cell])[: int(np.ceil(0.1 * len(tests)))]]
        row = table.loc[("jsb", cell)]
        assert row["mean_all"] == pytest.approx(np.mean(tests))
        assert row["median_all"] == pytest.approx(np.median(tests))
        assert row["p_all"] == pytest.approx(stats.ttest_ind(tests, base, equal_var=False).pvalue, rel=1e-12)
        assert row["t_all"] == pytest.approx(stats.ttest_ind(tests, base, equal_var=False).statistic)
        assert row["mean_top"] == pytest.approx(np.mean(top))
        assert np.isnan(row["p_top"])  # one trial in the top 10%: no test
        assert bool(row["significant_all"]) == (row["p_all"] < 0.05)
    assert table.loc[("jsb", "nfg"), "significant_all"]
    assert np.isnan(table.loc[("jsb", "greff_v"), "p_all"])  # the baseline is not tested against itself
    assert table.loc[("jsb", "greff_v"), "mean_top"] == pytest.approx(np.mean(base_top))


def test_best_ten_percent_is_chosen_by_validation_not_test(report):
    row = pd.read_csv(report / "table-greff.csv").set_index(["task", "cell"]).loc[("jsb", "greff_v")]
    assert row["n_top"] == 2
    assert row["mean_top"] == pytest.approx((8.70 + 8.45) / 2)  # valid 8.60 and 8.90; by test: 8.45, 8.70 too
    assert row["median_top"] == pytest.approx((8.70 + 8.45) / 2)
    assert row["best"] == pytest.approx(8.70)
    gru = pd.read_csv(report / "table-greff.csv").set_index(["task", "cell"]).loc[("arithmetic", "gru")]
    assert gru["mean_top"] == pytest.approx(0.86)  # the best by validation; the best test is 0.87


def test_failed_trials_are_counted_but_not_averaged(report):
    facts = pd.read_csv(report / "table-run-facts.csv").set_index(["task", "cell"])
    v = facts.loc[("jsb", "greff_v")]
    counts = ("trials", "complete", "diverged", "failed", "killed", "pruned", "incomplete", "waiting")
    assert tuple(v[list(counts)]) == (15, 12, 1, 0, 1, 1, 0, 1)
    assert facts.loc[("arithmetic", "lstm"), "diverged"] == 1
    assert facts.loc[("arithmetic", "gru"), "pruned"] == 1
    greff = pd.read_csv(report / "table-greff.csv").set_index(["task", "cell"])
    assert greff.loc[("jsb", "greff_v"), "n_complete"] == 12
    assert greff.loc[("jsb", "greff_v"), "mean_all"] == pytest.approx(np.mean([t for _, t in JSB["greff_v"]]))
    assert greff.loc[("arithmetic", "gru"), "n_complete"] == 5


def test_cells_with_few_trials_are_shown_and_flagged(report):
    table = pd.read_csv(report / "table-jozefowicz.csv").set_index(["task", "cell"])
    assert table.loc[("jsb", "cifg"), "few_trials"] and not table.loc[("jsb", "nfg"), "few_trials"]
    assert "cifg †" in (report / "report.md").read_text()


def test_every_figure_is_written_and_embedded_in_the_html(report):
    stems = ["heatmap"] + [
        f"{kind}-{task}"
        for kind in ("boxes", "importance", "marginals", "curves")
        for task in ("arithmetic", "jsb")
    ]
    page = (report / "report.html").read_text()
    markdown = (report / "report.md").read_text()
    for stem in stems:
        for suffix in (".png", ".svg"):
            assert (report / (stem + suffix)).stat().st_size > 1000, stem + suffix
        assert base64.b64encode((report / f"{stem}.png").read_bytes()).decode() in page, stem
        assert f"({stem}.png)" in markdown
    assert page.count("data:image/png;base64,") == len(stems)
    assert "http" not in page.replace("http-equiv", "")  # opens offline: nothing fetched
    for text in ("<strong>0.86</strong>", "<strong>8.7</strong>", "0.89228 [secondary]", "cifg †", "Welch"):
        assert text in page


def test_importance_covers_the_varying_hyperparameters(report):
    fanova = pd.read_csv(report / "table-importance.csv")
    jsb = fanova[(fanova["task"] == "jsb") & (fanova["cell"] == "greff_v")]
    assert set(jsb["param"]) == set(SPACE)
    assert ((jsb["importance"] >= 0) & (jsb["importance"] <= 1)).all()
    assert set(fanova[fanova["task"] == "arithmetic"]["param"]) == {"trainer.lr"}


def test_a_journal_storage_reads_like_sqlite(results, tmp_path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = tmp_path / "studies.log"
    make_study(JournalStorage(JournalFileBackend(str(journal))), tmp_path, "nfg", JSB["nfg"])
    frame = load([str(journal)]).frame
    assert sorted(frame["test"]) == sorted(t for _, t in JSB["nfg"])
    assert set(frame["cell"]) == {"nfg"}


@pytest.mark.parametrize(
    "make_input, named",
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: d, "no trials or runs found"),  # an empty folder
        (lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt", "not a results folder"),
        (lambda d: (d / "other.db").write_bytes(b"not sqlite at all, " * 10) and d / "other.db", "SQLite"),
        (lambda d: (d / "x.log").write_text("plain log\n") and d / "x.log", "not an Optuna journal"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, make_input, named):
    bad = make_input(tmp_path)
    assert main([str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnnbench.report: error: ") and named in err, err


def test_the_command_line_runs_and_fails_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "rnnbench.report", f"sqlite:///{tmp_path}/none.db", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"rnnbench.report: error: sqlite:///{tmp_path}/none.db: no such file"
    ]
    assert not (tmp_path / "none.db").exists()  # nothing created in the inputs


def test_a_search_with_nothing_complete_yet_is_reported(tmp_path):
    runs = tmp_path / "results" / "runs" / "arithmetic"
    write_run(runs / "lstm" / "a", "arithmetic", "lstm", "valid/acc", True, None, None, "diverged")
    write_run(runs / "gru" / "b", "arithmetic", "gru", "valid/acc", True, 0.3, None, "interrupted")
    (runs / "gru" / "b" / "summary.json").unlink()  # still running: metrics and config only
    make_report([str(tmp_path / "results")], tmp_path / "out")
    facts = pd.read_csv(tmp_path / "out" / "table-run-facts.csv").set_index("cell")
    assert (facts.loc["lstm", "diverged"], facts.loc["gru", "incomplete"]) == (1, 1)
    table = pd.read_csv(tmp_path / "out" / "table-jozefowicz.csv").set_index("cell")
    assert table["few_trials"].all() and table["value"].isna().all()
    assert "lstm †" in (tmp_path / "out" / "report.html").read_text()


def test_the_report_says_which_weights_its_test_values_are_of(tmp_path):
    runs = tmp_path / "results" / "runs" / "arithmetic"
    write_run(runs / "lstm" / "a", "arithmetic", "lstm", "valid/acc", True, 0.5, 0.4, "completed")
    write_run(runs / "gru" / "b", "arithmetic", "gru", "valid/acc", True, 0.6, 0.5, "completed")
    make_report([str(tmp_path / "results")], tmp_path / "out")
    assert (
        "Test values are those of each run's best validation weights."
        in (tmp_path / "out" / "report.md").read_text()
    )
    summary = runs / "gru" / "b" / "summary.json"
    summary.write_text(json.dumps(json.loads(summary.read_text()) | {"test_weights": "last"}))
    make_report([str(tmp_path / "results")], tmp_path / "out")
    assert (
        "except for 1 of the 2 complete runs: the weights they ended with (`trainer.test_weights=last`)"
        in (tmp_path / "out" / "report.md").read_text()
    )


def test_ptb_is_shown_as_the_inferred_paper_metric_not_one_over_perplexity():
    from rnnbench.report.paper_results import JOZEFOWICZ_PTB_METRIC, lookup
    from rnnbench.report.units import read_value, report_metric

    metric = report_metric("ptb", "valid/ppl", False)
    assert (metric.name, metric.higher_is_better) == (JOZEFOWICZ_PTB_METRIC, True) == ("mean_p", True)
    assert read_value({"test/ppl": 80.0, "test/mean_p": 0.091}, "test", metric) == 0.091
    assert np.isnan(read_value({"test/ppl": 80.0}, "test", metric))  # never 1/perplexity
    assert "inferred" in lookup("ptb", "lstm", JOZEFOWICZ_PTB_METRIC, "search").text
    assert report_metric("jsb", "valid/nll", False).name == "nll"
    assert report_metric("ptb_char", "valid/bpc", False).name == "bpc"


def test_reading_a_report_never_imports_the_trainer():
    code = "import sys, rnnbench.report.__main__; print('rnnbench.training.trainer' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def same_configs() -> bool:
    """Whether ``rnnbench.configs`` is this checkout's configs/ (an editable install of another checkout
    serves its own, which this checkout's schema may refuse)."""
    import rnnbench.configs

    ours, served = CONFIGS, Path(rnnbench.configs.__path__[0])
    names = sorted(p.relative_to(ours) for p in ours.rglob("*.yaml"))
    return names == sorted(p.relative_to(served) for p in served.rglob("*.yaml")) and all(
        (ours / n).read_bytes() == (served / n).read_bytes() for n in names
    )


@pytest.mark.slow
def test_a_real_debug_search_is_reported_end_to_end(tmp_path):
    if not same_configs():
        pytest.skip("rnnbench.configs is another checkout's configs/")
    search = [
        sys.executable,
        "-m",
        "rnnbench.search",
        "search=jozefowicz",
        "task=arithmetic",
        "cell=lstm,gru",
    ]
    search += ["debug=fast", "search.n_trials=2", "search.workers=1"]
    search += ["search.space.cell.num_layers.choices=[1]", f"results_dir={tmp_path / 'results'}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    ran = subprocess.run(search, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert main([str(tmp_path / "results"), "--out", str(tmp_path / "report"), "--baseline", "lstm"]) == 0
    storage = f"sqlite:///{tmp_path / 'results' / 'studies.db'}"
    table = pd.read_csv(tmp_path / "report" / "table-jozefowicz.csv").set_index("cell")
    for cell in ("lstm", "gru"):
        study = optuna.load_study(study_name=f"jozefowicz-arithmetic-{cell}", storage=storage)
        assert table.loc[cell, "value"] == pytest.approx(study.best_trial.user_attrs["test"]["test/acc"])
    facts = pd.read_csv(tmp_path / "report" / "table-run-facts.csv")
    assert facts["complete"].sum() == 4
    assert (tmp_path / "report" / "curves-arithmetic.png").stat().st_size > 1000


def test_synthetic_tasks_show_their_ceilings_beside_the_cells(report):
    from rnnbench.tasks.ceilings import ceilings

    table = pd.read_csv(report / "table-jozefowicz.csv").set_index(["task", "cell"])
    expected = ceilings("arithmetic", {})  # the fixture runs' configs set no arithmetic option
    for cell in ("lstm", "gru"):
        assert table.loc[("arithmetic", cell), "oracle"] == pytest.approx(expected["oracle"])
        assert table.loc[("arithmetic", cell), "memoryless"] == pytest.approx(expected["memoryless"])
    assert np.isnan(table.loc[("jsb", "greff_v"), "oracle"])  # music has no ceiling
    assert f"oracle 1, memoryless {expected['memoryless']:.4g}" in (report / "report.md").read_text()
