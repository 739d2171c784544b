"""trainer.logger=tensorboard: the event files, read back with TensorBoard's own reader, hold exactly the
values of metrics.jsonl at the same steps, for a run, a limited run extended, a run that turns the
logger on when resumed, a population's members and a search's trials."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers.configs import compose_config
from helpers.paths import CONFIGS
from rnnbench.config.schema import validate
from rnnbench.errors import ConfigError
from rnnbench.population import member_configs, train_population
from rnnbench.training.trainer import train

accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
hparams_metadata = pytest.importorskip("tensorboard.plugins.hparams.metadata")

TINY = [
    "debug=fast",
    "task.max_digits=2",
    "cell.hidden_size=8",
    "task.eval_size=32",
    "trainer.eval_batches=2",
]
ON = "trainer.logger=tensorboard"


def read_events(run_dir: Path):
    """TensorBoard's reader of an event folder, every point kept (it applies the purge markers)."""
    everything = {"scalars": 0, "tensors": 0}
    events = accumulator.EventAccumulator(str(run_dir / "tensorboard"), size_guidance=everything)
    events.Reload()
    return events


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = read_events(run_dir)
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def expected(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl as TensorBoard stores it: every number of a valid line at its step, the test/*
    values of the test line at its step, as float32; null values (non-finite) left out."""
    found: dict[str, list] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        for key, value in record.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if record["split"] == "test" and not key.startswith("test/"):
                continue
            found.setdefault(key, []).append((record["step"], float(np.float32(value))))
    return found


def assert_mirrors_metrics(run_dir: Path) -> dict:
    seen, wanted = scalars(run_dir), expected(run_dir)
    assert seen == wanted  # same tags, same steps in order (so no step twice), same values
    for tag, points in seen.items():
        steps = [step for step, _ in points]
        assert steps == sorted(set(steps)), tag
    return seen


def test_a_run_mirrors_its_metrics_and_config(tmp_path):
    summary = train(compose_config(*TINY, ON), tmp_path)
    seen = assert_mirrors_metrics(tmp_path)
    assert {"valid/acc", "valid/loss", "train/loss", "lr", "test/acc"} <= set(seen)
    assert [s for s, _ in seen["valid/acc"]] == [6, 12]
    assert [s for s, _ in seen["test/acc"]] == [summary["best_step"]]
    events = read_events(tmp_path)
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "hidden_size: 8" in text and "logger: tensorboard" in text
    content = events.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG).plugin_data.content
    hparams = hparams_metadata.parse_session_start_info_plugin_data(content).hparams
    assert hparams["cell.hidden_size"].number_value == 8 and hparams["cell.name"].string_value == "lstm"
    assert "trainer.logger" not in hparams and "trainer.max_steps" not in hparams  # runtime keys


def test_no_logger_writes_no_events(tmp_path):
    train(compose_config(*TINY, "trainer.max_steps=6"), tmp_path)
    assert (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "tensorboard").exists()


def test_an_extended_run_repeats_no_point(tmp_path):
    # 13 falls between evaluations: its evaluation at the limit and the test line are dropped when the
    # run is extended, so the second session's purge must hide them
    base = [*TINY, ON, "trainer.eval_every=5"]
    first = train(compose_config(*base, "trainer.max_steps=13"), tmp_path)
    assert first["steps"] == 13
    seen = assert_mirrors_metrics(tmp_path)
    assert [s for s, _ in seen["valid/acc"]] == [5, 10, 13]
    summary = train(compose_config(*base, "trainer.max_steps=22"), tmp_path)
    assert summary["status"] == "completed" and summary["steps"] == 22
    seen = assert_mirrors_metrics(tmp_path)
    assert [s for s, _ in seen["valid/acc"]] == [5, 10, 15, 20, 22]
    assert len(seen["test/acc"]) == 1
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one per session


def test_a_logger_turned_on_when_resuming_shows_the_whole_run(tmp_path):
    base = [*TINY, "trainer.eval_every=3"]
    train(compose_config(*base, "trainer.max_steps=6"), tmp_path)  # the logger is a runtime key
    train(compose_config(*base, "trainer.max_steps=9", ON), tmp_path)
    seen = assert_mirrors_metrics(tmp_path)
    assert [s for s, _ in seen["valid/acc"]] == [3, 6, 9]
    excluded = OmegaConf.load(CONFIGS / "config.yaml").hydra.job.config
    assert "trainer.logger" in excluded.override_dirname.exclude_keys  # not in the run directory's name


def test_each_population_member_has_its_own_events(tmp_path):
    cfg = compose_config(*TINY, ON, "trainer.population=2", "trainer.max_steps=6", "trainer.eval_every=3")
    summaries = train_population(*member_configs(cfg, tmp_path))
    assert [s["status"] for s in summaries] == ["completed", "completed"]
    mirrored = [assert_mirrors_metrics(tmp_path / f"member-{k}") for k in range(2)]
    assert mirrored[0]["train/loss"] != mirrored[1]["train/loss"]  # each member's own values
    assert not (tmp_path / "tensorboard").exists()


def test_search_trials_write_events_under_their_study(tmp_path):
    from rnnbench.search.__main__ import main

    lr = "+search.space.trainer.lr={choices:[0.01,0.02]}"
    args = [
        *TINY,
        "task=arithmetic",
        "search.name=t",
        "search.workers=1",
        f"results_dir={tmp_path}",
        lr,
        "cell=lstm,gru",
        "search.n_trials=1",
        ON,
    ]
    with pytest.raises(SystemExit) as ended:
        main(args)
    assert ended.value.code == 0
    for cell in ("lstm", "gru"):
        trials = sorted((tmp_path / "studies" / f"t-arithmetic-{cell}").glob("trial-*"))
        assert len(trials) == 1
        assert "valid/acc" in assert_mirrors_metrics(trials[0])


def test_a_missing_tensorboard_is_one_line_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    cfg = compose_config(*TINY, ON)
    with pytest.raises(
        ConfigError,
        match=r"trainer\.logger=tensorboard needs the tensorboard package: "
        r"pip install tensorboard",
    ) as error:
        train(cfg, tmp_path / "run")
    assert "\n" not in str(error.value) and not (tmp_path / "run").exists()
    validate(compose_config(*TINY))  # without the logger nothing is needed
