"""The fidelity table from reproduction folders built here with known values: each status rule (a number
within 3%, a range, outside, a protocol that differs, a fidelity.yaml override, a missing folder), the
Welch findings against scipy, the fANOVA ordering, and the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import create_trial
from scipy import stats

from rnnbench.report.__main__ import main
from rnnbench.report.fidelity import measure as fidelity_measure
from rnnbench.report.fidelity.claims import COST
from rnnbench.report.fidelity.table import CLAIMS, as_frame, fidelity_rows, write_fidelity
from rnnbench.report.paper_results import GREFF_CELLS, lookup

optuna.logging.set_verbosity(optuna.logging.WARNING)

GREFF_SPACE = {
    "cell.hidden_size": IntDistribution(20, 200, log=True),
    "trainer.lr": FloatDistribution(1e-6, 1e-2, log=True),
    "1-trainer.momentum": FloatDistribution(0.01, 1.0, log=True),
    "model.input_noise_std": FloatDistribution(0.0, 1.0),
}
GREFF_PROTOCOL = {"trainer": {"loss_over_time": "sum", "max_epochs": 150, "patience": 15}}
# Test NLL offsets against greff_v on the same draws: nfg clearly worse (the paper's finding), noaf clearly
# better (against it), cifg the same (as the paper), np clearly worse (against "not different").
OFFSETS = {"greff_v": 0.0, "nfg": 1.0, "noaf": -1.0, "cifg": 0.02, "np": 1.0}
DRAWS = 20


def write_run(run_dir: Path, config: dict, summary: dict | None, curve: list[dict]) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    lines = [{"split": "valid", **line} for line in curve]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    if summary is not None:
        (run_dir / "summary.json").write_text(json.dumps(summary))


def summary_of(task, cell, headline, higher, valid, test: dict, epochs=5) -> dict:
    return {
        "status": "completed",
        "stop_reason": "max_epochs",
        "cell": cell,
        "task": task,
        "headline": headline,
        "higher_is_better": higher,
        "steps": 100,
        "epochs": epochs,
        "best_step": 100,
        "best": {headline: valid},
        "final": {},
        "test": test,
        "device": "cpu",
        "num_params": 5000,
        "hidden_size": 32,
        "num_layers": 1,
        "wall_s": 6.0,
    }


def draw(k: int) -> dict:
    rng = np.random.default_rng(k)
    return {
        "cell.hidden_size": int(np.exp(rng.uniform(np.log(20), np.log(200)))),
        "trainer.lr": float(np.exp(rng.uniform(np.log(1e-6), np.log(1e-2)))),
        "1-trainer.momentum": float(np.exp(rng.uniform(np.log(0.01), 0.0))),
        "model.input_noise_std": float(rng.uniform(0, 1)),
    }


def greff_nll(cell: str, k: int, offsets=OFFSETS, momentum=0.0) -> tuple[float, float]:
    """(valid, test) of draw ``k``: mostly the learning rate (the larger the better), a little hidden size
    and input noise, no momentum (unless ``momentum`` weighs log10(1 - momentum)); plus the cell's offset
    and a little noise."""
    p, rng = draw(k), np.random.default_rng(1000 + k)
    test = 8.45 + 0.5 * (-2 - np.log10(p["trainer.lr"])) + 0.3 * p["model.input_noise_std"]
    test += 0.1 * np.log(200 / p["cell.hidden_size"]) - momentum * np.log10(p["1-trainer.momentum"])
    test += offsets[cell] + rng.normal(0, 0.02)
    return test + rng.normal(0, 0.01), test


def make_study(data: Path, task: str, cell: str, search: str, headline: str, higher: bool, trials):
    """An Optuna study as the project's search writes it: user attributes, run files per trial.
    ``trials``: (params, distributions, valid, test metrics dict, config dict)."""
    storage = f"sqlite:///{data / 'studies.db'}"
    name = f"{search}-{task}-{cell}"
    study = optuna.create_study(
        storage=storage, study_name=name, direction="maximize" if higher else "minimize"
    )
    attrs = {"task": task, "cell": cell, "search": search, "headline": headline, "higher_is_better": higher}
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    for k, (params, space, valid, test, config) in enumerate(trials):
        run_dir = data / "studies" / name / f"trial-{k:012x}"
        summary = summary_of(task, cell, headline, higher, valid, test)
        write_run(run_dir, config, summary, [{"step": 100, "epoch": 1, headline: valid}])
        user = {"run_dir": str(run_dir), "outcome": "completed", "headline": headline}
        user |= {"valid": {headline: valid}, "test": test, "num_params": 5000, "wall_s": 3.0}
        study.add_trial(create_trial(value=valid, params=params, distributions=space, user_attrs=user))


def make_greff(root: Path, offsets=OFFSETS, protocol=GREFF_PROTOCOL, draws=DRAWS, momentum=0.0) -> Path:
    data = root / "greff-jsb" / "data"
    data.mkdir(parents=True)
    (root / "greff-jsb" / "README.md").write_text("# greff\n")
    for cell in offsets:
        trials = []
        for k in range(draws):
            valid, test = greff_nll(cell, k, offsets, momentum)
            trials.append((draw(k), GREFF_SPACE, valid, {"test/nll": test}, protocol))
        make_study(data, "jsb", cell, "greff", "valid/nll", False, trials)
    return root / "greff-jsb"


ZAREMBA_SMALL = {
    "cell": {"name": "lstm", "hidden_size": 200, "num_layers": 2},
    "model": {"dropout": 0.0},
    "task": {"name": "ptb", "bptt": 20},
    "trainer": {"max_epochs": 13},
}


def make_zaremba(
    root: Path, test_ppl: float, config=ZAREMBA_SMALL, epochs=13, human=None, test_weights="last"
) -> Path:
    folder = root / "zaremba-small"
    run_dir = folder / "data" / "runs" / "ptb" / "lstm" / "experiment=zaremba_small"
    test = {"test/ppl": test_ppl, "test/mean_p": 0.12, "test/acc": 0.25}
    curve = [
        {"step": 10 * e, "epoch": e, "valid/ppl": 200.0 - 5 * e, "lr": 1.0, "wall_s": 60.0 * e}
        for e in (1, 2)
    ]
    summary = summary_of("ptb", "lstm", "valid/ppl", False, test_ppl + 4, test, epochs=epochs)
    write_run(run_dir, config, summary | {"test_weights": test_weights}, curve)
    if human is not None:
        (folder / "fidelity.yaml").write_text(human)
    return folder


def rows_of(root: Path):
    rows, _ = fidelity_rows(root)
    return as_frame(rows)


@pytest.fixture(scope="module")
def greff(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproductions")
    make_greff(root)
    return root, rows_of(root)


def test_claims_cover_the_reference_list_once_with_the_papers_values():
    ids = [claim.id for claim in CLAIMS]
    assert len(ids) == len(set(ids))
    # every number of reference-results.md: 10 cells x 3 search columns, 7 PTB-with-dropout values, 3 Zaremba
    # models, 2 Chung values, the Greff ranges (best 10% per variant, all trials) and the four Welch findings
    # plus the two fANOVA findings; and the architecture search's two findings (spec/search.md)
    assert len(ids) == 30 + 7 + 3 + 2 + len(GREFF_CELLS) + 1 + 4 + 2 + 2
    by_id = {claim.id: claim for claim in CLAIMS}
    assert by_id["jozefowicz.xml.lstm"].paper is lookup("xml", "lstm", "acc", "search")
    assert (
        by_id["jozefowicz.ptb.gru"].paper.metric == "mean_p"
        and "inferred" in by_id["jozefowicz.ptb.gru"].paper_text
    )
    assert by_id["zaremba.small"].paper.low == 114.5 and by_id["greff.jsb.top10.nfg"].paper.high == 8.8
    assert all(claim.cost == COST[claim.folder] and claim.cost for claim in CLAIMS)


def test_a_number_within_three_percent_is_reproduced_and_outside_is_not(tmp_path):
    make_zaremba(tmp_path / "a", 117.0)  # 2.2% above 114.5
    make_zaremba(tmp_path / "b", 118.5)  # 3.5% above
    a, b = rows_of(tmp_path / "a").loc["zaremba.small"], rows_of(tmp_path / "b").loc["zaremba.small"]
    assert (a["status"], a["ours"], a["difference"]) == ("reproduced", "117.0", "+2.5 (+2.2%)")
    assert (b["status"], b["ours"]) == ("not reproduced", "118.5")


def test_a_protocol_that_differs_is_not_comparable(tmp_path):
    config = {**ZAREMBA_SMALL, "trainer": {"max_epochs": 5}}
    make_zaremba(tmp_path, 114.6, config=config, epochs=5)
    row = rows_of(tmp_path).loc["zaremba.small"]
    assert row["status"] == "not comparable"  # though within 3%
    assert "trainer.max_epochs=5 (paper: 13)" in row["note"] and "stopped after 5 epochs" in row["note"]
    make_zaremba(tmp_path / "best", 114.6, test_weights="best")  # their code scores the last weights
    row = rows_of(tmp_path / "best").loc["zaremba.small"]
    assert row["status"] == "not comparable"
    assert "test scored with the best validation evaluation's weights (their code: the last)" in row["note"]


def test_fidelity_yaml_can_only_move_a_row_to_not_comparable_and_is_quoted(tmp_path):
    human = "zaremba.small:\n  status: not comparable\n  note: our PTB copy | has another <unk> rate\n"
    make_zaremba(tmp_path / "a", 117.0, human=human)
    row = rows_of(tmp_path / "a").loc["zaremba.small"]
    assert row["status"] == "not comparable"
    assert (
        "numbers alone: reproduced" in row["note"]
        and "“our PTB copy | has another <unk> rate”" in row["note"]
    )
    human = "zaremba.small:\n  status: not reproduced\n  note: I doubt it\n"
    make_zaremba(tmp_path / "b", 117.0, human=human)
    row = rows_of(tmp_path / "b").loc["zaremba.small"]
    assert row["status"] == "reproduced" and "not applied (the numbers say reproduced)" in row["note"]
    make_zaremba(tmp_path / "c", 130.0, human="zaremba.small:\n  note: the unk rate, measured\n")
    row = rows_of(tmp_path / "c").loc["zaremba.small"]
    assert row["status"] == "not reproduced" and "“the unk rate, measured”" in row["note"]


@pytest.mark.parametrize(
    "text, named",
    [
        ("zaremba.small:\n  status: reproduced\n  note: x\n", "reproduced comes from the numbers"),
        ("zaremba.small:\n  status: not comparable\n", "needs a note"),
        ("zaremba.smal:\n  note: typo\n", "'zaremba.smal' is not a claim id of folder zaremba-small"),
        ("greff.jsb.all-trials:\n  note: other folder's\n", "is not a claim id of folder zaremba-small"),
        ("[1, 2]\n", "must map claim ids"),
        ("a: [\n", "not readable YAML"),
    ],
)
def test_a_bad_fidelity_yaml_is_one_line(tmp_path, capsys, text, named):
    make_zaremba(tmp_path, 117.0, human=text)
    assert main(["--fidelity", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnnbench.report: error: ") and named in err, err


def test_missing_folders_are_not_run_with_their_cost(tmp_path):
    rows = rows_of(tmp_path)
    assert len(rows) == len(CLAIMS) and set(rows["status"]) == {"not run"}
    row = rows.loc["zaremba.medium"]
    assert "no folder zaremba-medium/" in row["note"] and COST["zaremba-medium"] in row["note"]


def test_a_run_in_progress_is_not_run_and_its_curve_is_listed(tmp_path):
    make_zaremba(tmp_path, 117.0)
    (
        tmp_path
        / "zaremba-small"
        / "data"
        / "runs"
        / "ptb"
        / "lstm"
        / "experiment=zaremba_small"
        / "summary.json"
    ).unlink()
    row = rows_of(tmp_path).loc["zaremba.small"]
    assert row["status"] == "not run" and "in progress: epoch 2, valid ppl 190.0" in row["note"]
    text = write_fidelity(tmp_path).read_text()
    assert "## zaremba-small: ptb lstm, validation per evaluation" in text
    assert "| 1 | 10 | 195.0 | 1.0000 | 1.0 |" in text


def test_best_ten_percent_inside_the_range_is_reproduced_and_outside_is_not(greff):
    _, rows = greff
    for cell in OFFSETS:
        trials = sorted(greff_nll(cell, k) for k in range(DRAWS))  # by validation
        top = [test for _, test in trials[: math.ceil(0.1 * DRAWS)]]
        row = rows.loc[f"greff.jsb.top10.{cell}"]
        assert row["ours"] == f"{np.median(top):.2f} (median of 2)"
        inside = 8.4 <= np.median(top) <= 8.8
        assert row["status"] == ("reproduced" if inside else "not reproduced"), (cell, row.to_dict())
    assert rows.loc["greff.jsb.top10.greff_v", "status"] == "reproduced"
    assert rows.loc["greff.jsb.top10.nfg", "status"] == "not reproduced"
    assert rows.loc["greff.jsb.top10.nig", "status"] == "not run"  # not in the search


def test_all_trials_with_fewer_draws_than_the_paper_are_not_comparable(greff):
    row = greff[1].loc["greff.jsb.all-trials"]
    tests = [greff_nll(cell, k)[1] for cell in OFFSETS for k in range(DRAWS)]
    assert row["ours"] == f"{min(tests):.2f}–{max(tests):.2f}"
    assert row["status"] == "not comparable" and "paper: 200 each" in row["note"]
    names = [(cell, k) for cell in OFFSETS for k in range(DRAWS)]
    by_trial = {f"{cell} greff-jsb-{cell}#{k}": greff_nll(cell, k)[1] for cell, k in names}
    top = max(by_trial.values())
    highest = [name for name, value in by_trial.items() if value == top]  # (two offsets tie)
    above = sum(value > 12.5 for value in by_trial.values())
    assert any(f"{above} above 12.5, the highest {name} ({top:.2f})" in row["note"] for name in highest)


def test_welch_findings_follow_the_sign_and_p_value(greff):
    _, rows = greff
    base = [greff_nll("greff_v", k)[1] for k in range(DRAWS)]
    expected = {"nfg": "reproduced", "noaf": "not reproduced", "cifg": "reproduced", "np": "not reproduced"}
    for cell, status in expected.items():
        ours = [greff_nll(cell, k)[1] for k in range(DRAWS)]
        result = stats.ttest_ind(ours, base, equal_var=False)
        row = rows.loc[f"greff.jsb.welch.{cell}"]
        assert row["status"] == status, (cell, row.to_dict())
        assert row["ours"] == f"t = {result.statistic:+.2f}, p = {fidelity_measure.fmt_p(result.pvalue)}"
    assert (
        stats.ttest_ind([greff_nll("cifg", k)[1] for k in range(DRAWS)], base, equal_var=False).pvalue >= 0.05
    )


def test_a_significant_finding_not_shown_with_fewer_draws_is_not_comparable(tmp_path):
    make_greff(tmp_path, offsets={"greff_v": 0.0, "noaf": 0.05})  # worse, but not significantly with 20 draws
    row = rows_of(tmp_path).loc["greff.jsb.welch.noaf"]
    assert row["status"] == "not comparable" and "too few to show the difference" in row["note"]


def test_fanova_ordering_learning_rate_largest_momentum_smallest(greff):
    _, rows = greff
    lr, momentum = rows.loc["greff.jsb.fanova.lr"], rows.loc["greff.jsb.fanova.momentum"]
    assert lr["status"] == "reproduced" and lr["ours"].startswith("learning rate ")
    assert momentum["status"] == "reproduced" and momentum["ours"].startswith("momentum 0.0")
    assert "(largest in 5/5 variants)" in lr["ours"]


def test_fanova_finds_a_momentum_that_matters(tmp_path):
    make_greff(tmp_path, offsets={"greff_v": 0.0}, momentum=2.0)  # momentum now outweighs the rest
    rows = rows_of(tmp_path)
    assert rows.loc["greff.jsb.fanova.momentum", "status"] == "not reproduced"
    assert rows.loc["greff.jsb.fanova.lr", "status"] == "not reproduced"
    assert "(largest in 0/1 variants)" in rows.loc["greff.jsb.fanova.lr", "ours"]


def test_the_greff_protocol_is_read_from_the_trials_configs(tmp_path):
    cut = {"trainer": {"loss_over_time": "mean", "max_epochs": 20, "patience": 5}}
    make_greff(tmp_path, offsets={"greff_v": 0.0, "nfg": 1.0}, protocol=cut)
    rows = rows_of(tmp_path)
    assert set(rows.loc[[c.id for c in CLAIMS if c.folder == "greff-jsb"], "status"]) == {
        "not comparable",
        "not run",
    }
    note = rows.loc["greff.jsb.welch.nfg", "note"]
    assert (
        "trainer.max_epochs=20 (paper: at most 150 epochs)" in note and "trainer.loss_over_time=mean" in note
    )


def test_a_jozefowicz_search_shows_the_validation_selected_best_and_what_differs(tmp_path):
    data = tmp_path / "jozefowicz-xml" / "data"
    data.mkdir(parents=True)
    space = {
        "trainer.lr": FloatDistribution(0.1, 5.0),
        "model.param_budget": IntDistribution(250000, 1000000),
    }
    config = {
        "task": {"name": "xml", "indent": 1},
        "trainer": {"loss_over_time": "sum", "schedule": "halving", "max_epochs": 10},
        "model": {"param_budget": 250000},
    }
    # (valid, test): the best by validation (0.44) is not the best by test (0.46)
    runs = [(0.44, 0.43), (0.40, 0.46), (0.30, 0.31)]
    trials = [
        ({"trainer.lr": 0.5, "model.param_budget": 250000}, space, v, {"test/acc": t}, config)
        for v, t in runs
    ]
    make_study(data, "xml", "lstm", "jozefowicz", "valid/acc", True, trials)
    row = rows_of(tmp_path).loc["jozefowicz.xml.lstm"]
    assert row["ours"] == "0.4300 (best of 3)" and row["difference"] == "+0.0053 (+1.2%)"
    assert row["status"] == "not comparable"  # within 3%, but not under the paper's protocol
    for differs in (
        "task.indent=1",
        "trainer.max_epochs=10",
        "3 complete draws",
        "budgets 250,000 (paper: 250,000, 1,000,000)",
    ):
        assert differs in row["note"], differs
    assert rows_of(tmp_path).loc["jozefowicz.xml.gru", "status"] == "not run"
    assert fidelity_measure.ceilings_note("xml", {"indent": 1}) in row["note"]
    assert "oracle 0." in row["note"] and "memoryless 0." in row["note"]


def test_the_command_line_writes_readme_and_fails_in_one_line(tmp_path, capsys):
    root = tmp_path / "reproductions"
    make_zaremba(root, 117.0)
    (root / "zaremba-small" / "README.md").write_text("# zaremba\n")
    assert main(["--fidelity", str(root)]) == 0
    assert capsys.readouterr().out == f"{root / 'README.md'}\n"
    text = (root / "README.md").read_text()
    assert "python -m rnnbench.report --fidelity results/reproductions" in text
    assert "| id | paper | claim | paper's value | ours | difference | status | note |" in text
    assert (
        "| `zaremba.small` | Zaremba 2014 | PTB, small LSTM: test perplexity | 114.5 [untagged] | 117.0 |"
        in text
    )
    assert "## Status rules" in text and "- **not comparable**:" in text
    assert "[zaremba-small](zaremba-small/README.md)" in text
    assert main(["--fidelity", str(root), "--out", str(tmp_path / "elsewhere")]) == 0
    again = (tmp_path / "elsewhere" / "README.md").read_text()
    assert "[zaremba-small](../reproductions/zaremba-small/README.md)" in again
    assert again.replace("../reproductions/", "") == text  # deterministic, only the links move
    capsys.readouterr()
    assert main(["--fidelity", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err == f"rnnbench.report: error: {tmp_path / 'missing'} does not exist; " + (
        "give the folder that holds the reproduction folders\n"
    )
    with pytest.raises(SystemExit) as stop:
        main(["--fidelity", str(root), "other-input"])
    assert stop.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    with pytest.raises(SystemExit):  # the report's own mode is unchanged: --out is still required
        main([str(root)])
    assert "the following arguments are required: --out" in capsys.readouterr().err


def test_a_no_difference_finding_needs_enough_trials(tmp_path):
    """A few trials per variant are rarely significantly different: that is no evidence for the paper's
    "CIFG not significantly different from V", so the row is not comparable, not reproduced."""
    make_greff(tmp_path, offsets={"greff_v": 0.0, "cifg": 0.0}, draws=3)
    row = rows_of(tmp_path).loc["greff.jsb.welch.cifg"]
    assert row["status"] == "not comparable" and "a no-difference finding needs >= 20" in row["note"]


def make_evolve(root: Path, bests: dict, paper_scale: bool) -> None:
    """A search summary as ``rnnbench.evolve`` writes it: ``bests`` maps an origin (lstm, gru, lstm_b, or
    a mutant's hash) to its best per task; at the paper's scale or at this machine's."""
    tasks = ["arithmetic", "xml", "ptb"] if paper_scale else ["arithmetic", "xml"]
    gru = bests["gru"]

    def scored(best):  # ratios and fitness against the GRU, as the search computes them (ptb: lower wins)
        ratios = {t: gru[t] / best[t] if t == "ptb" else best[t] / gru[t] for t in tasks}
        return {"ratios": ratios, "fitness": min(ratios.values())}

    candidates = []
    for name, best in bests.items():
        origin = name if name in ("lstm", "gru", "lstm_b") else "mutant"
        candidates.append({"hash": f"{name:0>16}", "origin": origin, "best": best, **scored(best)})
    summary = {
        "settings": {"tasks": tasks, "draws": 20 if paper_scale else 3},
        "funnel": {"generated": 10_000 if paper_scale else 200},
        "candidates": candidates,
    }
    folder = root / "jozefowicz-evolve" / "data" / "evolve" / "search"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))


REFERENCES = {
    "lstm": {"arithmetic": 0.80, "xml": 0.40, "ptb": 120.0},
    "gru": {"arithmetic": 0.85, "xml": 0.42, "ptb": 118.0},
}


@pytest.mark.parametrize(
    "mutant, paper_scale, status",
    [
        ({"arithmetic": 0.90, "xml": 0.41, "ptb": 119.0}, True, "reproduced"),  # beats both on one task
        ({"arithmetic": 0.90, "xml": 0.43, "ptb": 117.0}, True, "not reproduced"),  # on every task only
        ({"arithmetic": 0.84, "xml": 0.41, "ptb": 119.0}, True, "not reproduced"),  # on none
        ({"arithmetic": 0.90, "xml": 0.41}, False, "not comparable"),  # a CPU-scale search
    ],
)
def test_an_architecture_beating_both_references_on_some_tasks(tmp_path, mutant, paper_scale, status):
    bests = {**REFERENCES, "lstm_b": REFERENCES["lstm"], "m1": mutant}
    make_evolve(tmp_path, bests, paper_scale)
    row = rows_of(tmp_path).loc["jozefowicz.evolve.beats-some"]
    assert row["status"] == status, row["note"]
    if status == "reproduced":
        assert (
            row["ours"].startswith("1 of 1 mutant scored on every task")
            and "arithmetic 1.059x" in row["ours"]
        )
    if status == "not comparable":
        assert "200 mutants (paper: over 10,000)" in row["note"] and "3 draws per task" in row["note"]
        assert "tasks arithmetic, xml (paper: arithmetic, xml, ptb)" in row["note"]


@pytest.mark.parametrize("lstm_b_xml, status", [(0.415, "reproduced"), (0.39, "not reproduced")])
def test_the_forget_bias_closing_the_gap_to_the_gru(tmp_path, lstm_b_xml, status):
    lstm_b = {"arithmetic": 0.86, "xml": lstm_b_xml, "ptb": 118.5}
    make_evolve(tmp_path, {**REFERENCES, "lstm_b": lstm_b}, paper_scale=True)
    row = rows_of(tmp_path).loc["jozefowicz.evolve.forget-bias"]
    assert row["status"] == status, row["note"]
    # fitness: the smallest ratio to the GRU's best (arithmetic for the LSTM, 0.80 / 0.85)
    assert "lstm 0.941" in row["ours"] and f"lstm_b {min(lstm_b_xml / 0.42, 118 / 118.5):.3f}" in row["ours"]


def test_a_mutant_without_a_value_is_left_out_of_the_findings(tmp_path):
    bests = {
        **REFERENCES,
        "lstm_b": REFERENCES["lstm"],
        "m1": {"arithmetic": 0.90, "xml": 0.41, "ptb": 119.0},
    }
    make_evolve(tmp_path, bests, paper_scale=True)
    path = tmp_path / "jozefowicz-evolve" / "data" / "evolve" / "search" / "summary.json"
    summary = json.loads(path.read_text())
    summary["candidates"].append(  # a draw that never trained: summary.json writes its NaN as null
        {"hash": "f" * 16, "origin": "mutant", "best": {"arithmetic": 0.95, "xml": None, "ptb": 110.0}}
    )
    path.write_text(json.dumps(summary))
    row = rows_of(tmp_path).loc["jozefowicz.evolve.beats-some"]
    assert row["status"] == "reproduced" and row["ours"].startswith("1 of 1 mutant"), row["ours"]
