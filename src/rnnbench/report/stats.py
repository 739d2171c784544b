"""Which trials count and how they are compared: selection by validation, the best fraction, Welch's test.

Only complete trials with a finite test value enter statistics; every other trial is counted in the
run facts. Selection ranks by the validation headline (the value the search optimised), never by the
test value, so that no number shown is chosen by looking at the test set.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

TOP_FRACTION = 0.1  # Greff et al.'s "best 10% of trials"
SIGNIFICANCE = 0.05


def scored(frame: pd.DataFrame) -> pd.DataFrame:
    """The trials statistics use: complete, with a finite test value."""
    return frame[(frame["state"] == "complete") & np.isfinite(frame["test"].astype(float))]


def by_validation(group: pd.DataFrame) -> pd.DataFrame:
    """``group`` ranked best first by its validation headline (NaN last, ties in trial order)."""
    if group.empty:
        return group
    higher = bool(group["headline_higher"].iloc[0])
    return group.sort_values(
        ["valid", "trial"], ascending=[not higher, True], na_position="last", kind="stable"
    )


def best_by_validation(group: pd.DataFrame) -> pd.Series:
    return by_validation(group).iloc[0]


def top_fraction(group: pd.DataFrame, fraction: float = TOP_FRACTION) -> pd.DataFrame:
    """The best ``fraction`` of ``group`` by validation (at least one trial)."""
    return by_validation(group).head(max(1, math.ceil(fraction * len(group))))


def welch(values, baseline) -> tuple[float, float]:
    """Welch's t-test (unequal variances) of ``values`` against ``baseline``: (t, p); NaN when either
    sample has fewer than two values (scipy's own answer for constant samples is kept)."""
    a, b = np.asarray(values, float), np.asarray(baseline, float)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():  # nearly equal samples: scipy warns, the p-value stands
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)
