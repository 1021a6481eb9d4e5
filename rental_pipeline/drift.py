"""Drift of a week's listings from the reference version, column by column, as plain functions.

The reference project compared only the borough mix (KL divergence, in `validation`). A week whose
room types or prices shift would pass that test, so the other columns a price model leans on are
compared too, each with the Population Stability Index:

    PSI = sum over bins of (current share - reference share) * ln(current share / reference share)

Categories are their own bins; numbers are cut at the reference's deciles (open-ended at both
ends, so a new extreme value still lands in a bin) plus one bin for missing values, because a
change in how often a value is missing is drift too. Shares are floored at 0.0001 so an empty bin
does not make the index infinite. Rules of thumb: below 0.1 no real change, 0.1 to 0.25 a moderate
shift, above 0.25 a large one. Between two samples of the same distribution the index is about
(bins - 1) x (1/n + 1/m), so 0.01 for two samples of about 1,500 listings: thresholds near 0.1 are
far above sampling noise at any size this pipeline sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rental_pipeline.validation import CheckOutcome, ReferenceListings

SHARE_FLOOR = 1e-4
QUANTILES = np.linspace(0.1, 0.9, 9)  # inner bin edges at the reference's deciles
MISSING = "missing"


@dataclass(frozen=True)
class DriftRule:
    """One column compared with the reference: categorical shares or a numeric distribution."""

    column: str
    kind: str  # "shares" or "distribution"
    label: str  # how a person names it: "room-type mix", "price distribution"


DRIFT_RULES: Mapping[str, DriftRule] = {
    "room_type_drift": DriftRule("room_type", "shares", "room-type mix"),
    "price_drift": DriftRule("price", "distribution", "price distribution"),
    "minimum_nights_drift": DriftRule("minimum_nights", "distribution", "minimum-nights distribution"),
    "reviews_per_month_drift": DriftRule("reviews_per_month", "distribution", "reviews-per-month distribution"),
}


def psi(reference_shares: np.ndarray, current_shares: np.ndarray, floor: float = SHARE_FLOOR) -> float:
    """Population Stability Index of two share vectors over the same bins."""
    reference = np.maximum(np.asarray(reference_shares, dtype=float), floor)
    current = np.maximum(np.asarray(current_shares, dtype=float), floor)
    return float(np.sum((current - reference) * np.log(current / reference)))


def category_table(reference: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Per category (missing values as one more): listings and share on each side, sorted by name."""
    then = reference.astype(object).where(reference.notna(), MISSING).value_counts()
    now = current.astype(object).where(current.notna(), MISSING).value_counts()
    categories = sorted(set(then.index) | set(now.index), key=str)
    return _table(
        [str(c) for c in categories], then.reindex(categories, fill_value=0), now.reindex(categories, fill_value=0)
    )


def bin_edges(reference: pd.Series) -> np.ndarray:
    """Inner edges at the reference's deciles, duplicates dropped (a column of mostly 1s and 30s
    has few distinct deciles)."""
    values = pd.to_numeric(reference, errors="coerce").dropna().to_numpy(dtype=float)
    if not len(values):
        return np.array([])
    return np.unique(np.quantile(values, QUANTILES))


def binned_table(reference: pd.Series, current: pd.Series, edges: np.ndarray) -> pd.DataFrame:
    """Per bin of `edges` (open-ended outer bins, then missing values): listings and share on each side."""
    labels = bin_labels(edges)

    def counts(values: pd.Series) -> pd.Series:
        numbers = pd.to_numeric(values, errors="coerce")
        present = numbers.dropna().to_numpy(dtype=float)
        binned = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
        return pd.Series([*binned, int(numbers.isna().sum())], index=[*labels, MISSING])

    then, now = counts(reference), counts(current)
    return _table([*labels, MISSING], then, now)


def bin_labels(edges: np.ndarray) -> list[str]:
    """`< a`, `a to b`, ..., `>= z` for inner edges a..z: a value equal to an edge goes to the bin above."""
    if not len(edges):
        return ["any value"]
    labels = [f"< {edges[0]:g}"]
    labels += [f"{low:g} to {high:g}" for low, high in zip(edges[:-1], edges[1:])]
    labels.append(f">= {edges[-1]:g}")
    return labels


def _table(labels: list[str], then: pd.Series, now: pd.Series) -> pd.DataFrame:
    then_total, now_total = max(int(then.sum()), 1), max(int(now.sum()), 1)
    return pd.DataFrame(
        {
            "bin": labels,
            "reference_listings": then.to_numpy(dtype="int64"),
            "listings": now.to_numpy(dtype="int64"),
            "reference_share": (then.to_numpy(dtype=float) / then_total).round(4),
            "share": (now.to_numpy(dtype=float) / now_total).round(4),
        }
    )


def judge_column_drift(
    frame: pd.DataFrame,
    reference: ReferenceListings | None,
    rule: DriftRule,
    threshold: float,
    subject: str,
    *,
    warn_only: bool = True,
    became_reference: bool = False,
) -> CheckOutcome:
    """PSI of one column of `frame` against the reference version; fails at or above `threshold`.

    `warn_only` makes a failure a warning that downstream assets run past. With no reference there
    is nothing to compare with, and a version that has just been made the reference
    (`became_reference`: the first one, or on request) passes with the shift it had recorded.
    """
    statistic = f"PSI of the {rule.label} from the reference < {threshold:g}"
    facts: dict[str, Any] = {"psi_threshold": threshold, "reference": reference.label if reference else "none"}
    if rule.column not in frame.columns or (reference is not None and rule.column not in reference.listings.columns):
        return CheckOutcome(
            rule=statistic, passed=False, warning=warn_only, failing_rows=len(frame), facts=facts,
            message=f"{subject} or its reference has no column {rule.column!r}, so its drift cannot be measured: "
            "fix the columns first.",
        )
    if reference is None:
        then = (
            f"{subject} is the reference from now on" if became_reference
            else "the first version to pass every check becomes the reference"
        )
        return CheckOutcome(
            rule=statistic, passed=True, facts=facts,
            message=f"No reference version existed, so the {rule.label} of {subject} was not compared; {then}.",
        )
    if frame.empty:
        return CheckOutcome(
            rule=statistic, passed=False, warning=warn_only, facts=facts,
            message=f"{subject} has no listings, so its {rule.label} cannot be compared with {reference.label}: "
            "see the row_count check.",
        )
    if rule.kind == "shares":
        bins = category_table(reference.listings[rule.column], frame[rule.column])
    else:
        edges = bin_edges(reference.listings[rule.column])
        bins = binned_table(reference.listings[rule.column], frame[rule.column], edges)
    index = psi(bins["reference_share"].to_numpy(), bins["share"].to_numpy())
    facts["psi"] = round(index, 4)
    tables = {"shares": bins}
    measured = f"PSI {index:.3f} from {reference.label} (threshold {threshold:g})"
    if became_reference:
        return CheckOutcome(
            rule=statistic, passed=True, facts=facts, tables=tables,
            message=f"The {rule.label} of {subject} was {measured}; it is the reference now, on request.",
        )
    if index < threshold:
        return CheckOutcome(
            rule=statistic, passed=True, facts=facts, tables=tables,
            message=f"The {rule.label} of {subject} is {measured}.",
        )
    moved = bins.assign(change=(bins["share"] - bins["reference_share"]).abs()).nlargest(2, "change")
    biggest = ", ".join(f"{r.bin}: {r.share:.1%} vs {r.reference_share:.1%}" for r in moved.itertuples())
    consequence = (
        "This is a warning: downstream assets still run (set drift_severity: error in the clean_sample_checks "
        "config to stop them)."
        if warn_only
        else "Downstream assets will not run."
    )
    return CheckOutcome(
        rule=statistic, passed=False, warning=warn_only, facts=facts, tables=tables,
        message=f"The {rule.label} of {subject} moved: {measured}; largest changes {biggest}. If the source is "
        "wrong, fix it and re-materialize raw_data; if the change is expected, re-run the checks with "
        f"accept_as_reference: true in the clean_sample_checks config. {consequence}",
    )
