"""``python -m rnnbench.search status [storage]``: one line per study of a storage."""

from __future__ import annotations

import optuna
import pandas as pd

from rnnbench.search.study import counts


def status_table(storage) -> pd.DataFrame:
    rows = []
    for name in sorted(optuna.get_all_study_names(storage)):
        study = optuna.load_study(study_name=name, storage=storage)
        found = counts(study)
        attrs = study.user_attrs
        done = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.datetime_complete]
        started = [t.datetime_start for t in done if t.datetime_start]
        hours = (
            (max(t.datetime_complete for t in done) - min(started)).total_seconds() / 3600 if started else 0
        )
        outcomes = found["complete"] + found["pruned"] + found["failed"]
        best = study.best_value if found["complete"] else None
        rows.append(
            {
                "study": name,
                "task": attrs.get("task"),
                "cell": attrs.get("cell"),
                "done": f"{outcomes}/{attrs.get('n_trials', '?')}",
                **found,
                "best": best,
                "trials/h": round(outcomes / hours, 1) if hours else None,
            }
        )
    return pd.DataFrame(rows)


def print_status(storage) -> None:
    table = status_table(storage)
    if table.empty:
        print("no studies in this storage yet")
        return
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 500):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
