"""The week-by-week view: what a weekly team reads on Monday, one row a week.

Per week: the listings its drop held, what cleaning dropped, how far its borough mix is from the
reference (KL divergence in bits, the `borough_drift` check's measure), how the prod model prices
the week's new listings (those the week before did not hold: where a stale model shows first),
and whether a training run for that week moved prod. Plain functions on frames and manifests;
`rental_pipeline.assets.weekly` reads them from the store.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rental_pipeline.validation import borough_counts, kl_divergence_bits

COLUMNS = [
    "week", "version", "rows_in", "rows", "dropped", "drift_bits", "new_listings", "prod_mae_new", "prod_changed",
    "failed_checks",
]


@dataclass(frozen=True)
class Week:
    """One week as the store holds it: its clean listings, what cleaning reported, its reference."""

    week: str
    version: str  # clean_sample.<week>:vN
    clean: pd.DataFrame
    rows_in: int | None
    reference: pd.DataFrame | None
    prod_changed: bool
    failed_checks: str = ""  # the blocking checks the week failed, comma-separated


def week_rows(weeks: Sequence[Week], prod_mae: Mapping[str, float | None]) -> pd.DataFrame:
    """The table, oldest week first; ``prod_mae``: week -> prod's MAE on that week's new listings."""
    rows = []
    for week in sorted(weeks, key=lambda w: w.week):
        drift = None
        if week.reference is not None and len(week.clean):
            drift = kl_divergence_bits(borough_counts(week.clean), borough_counts(week.reference))
        rows.append(
            {
                "week": week.week,
                "version": week.version,
                "rows_in": week.rows_in,
                "rows": len(week.clean),
                "dropped": None if week.rows_in is None else week.rows_in - len(week.clean),
                "drift_bits": None if drift is None else round(drift, 4),
                "new_listings": None,
                "prod_mae_new": prod_mae.get(week.week),
                "prod_changed": week.prod_changed,
                "failed_checks": week.failed_checks,
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["new_listings"] = [len(ids) if ids is not None else None for ids in _new_ids(weeks).values()]
    return table


def new_listings(weeks: Sequence[Week]) -> dict[str, pd.DataFrame]:
    """Week -> its listings the previous week (in the calendar) did not hold; the first week has none
    to compare with and is left out."""
    frames = {w.week: w.clean for w in weeks}
    found = _new_ids(weeks).items()
    return {week: frames[week][frames[week]["id"].isin(ids)] for week, ids in found if ids is not None}


def _new_ids(weeks: Sequence[Week]) -> dict[str, set | None]:
    ordered = sorted(weeks, key=lambda w: w.week)
    found: dict[str, set | None] = {}
    for before, week in zip([None, *ordered[:-1]], ordered):
        if before is None or pd.Timestamp(week.week) - pd.Timestamp(before.week) != pd.Timedelta(weeks=1):
            found[week.week] = None
        else:
            found[week.week] = set(week.clean["id"]) - set(before.clean["id"])
    return found


def week_plot(table: pd.DataFrame) -> bytes:
    """Rows, drift and prod's MAE on new listings, week by week (PNG), prod changes marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5.5), dpi=100, layout="constrained")
    axes = figure.subplots(3, 1, sharex=True)
    x = pd.to_datetime(table["week"])
    panels = (("rows", "clean listings"), ("drift_bits", "borough drift (bits)"), ("prod_mae_new", "prod MAE, new ($)"))
    for ax, (column, label) in zip(axes, panels):
        values = pd.to_numeric(table[column], errors="coerce")
        ax.plot(x, values, marker="o", color="#1f77b4")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        for when in x[table["prod_changed"].astype(bool)]:
            ax.axvline(when, color="#2ca02c", alpha=0.4, linestyle="--")
    axes[0].set_title("Week by week (dashed: prod changed)")
    axes[-1].set_xlabel("week")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def mae(actual: pd.Series, predicted: np.ndarray) -> float | None:
    return float(np.mean(np.abs(actual.to_numpy(dtype=float) - predicted))) if len(actual) else None
