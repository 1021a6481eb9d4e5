"""The week-by-week view: what a weekly team reads on Monday, one row a week.

Per week: the listings its drop held, what cleaning dropped, how far its borough mix is from the
reference (KL divergence in bits, the `borough_drift` check's measure), how the prod model prices
the week's new listings it never trained on (where a stale model shows first), and whether a
training run for that week moved prod. A week whose drop was stored but never cleaned (it failed
its raw checks) has a row too, or its failure would never be seen. Plain functions on frames and
manifests; `rental_pipeline.assets.week_view` reads them from the store.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rental_pipeline.validation import borough_counts, kl_divergence_bits

COLUMNS = [
    "week",
    "version",
    "rows_in",
    "rows",
    "dropped",
    "drift_bits",
    "new_listings",
    "new_since",
    "new_unseen",
    "prod_mae_new",
    "prod_changed",
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
    # A newer drop of the week its raw checks stopped (raw_data.<week>:vN), and what it failed: the
    # week keeps the clean listings it has, but the failure of its newest drop must show.
    stopped_drop: str = ""
    stopped_drop_failed: str = ""


@dataclass(frozen=True)
class Drop:
    """A week whose drop was stored but has no clean week: its raw checks stopped it before cleaning."""

    week: str
    version: str  # raw_data.<week>:vN
    rows_in: int | None
    failed_checks: str = ""  # the raw checks it failed, comma-separated


@dataclass(frozen=True)
class ProdScore:
    """Prod on a week's new listings, out of sample only: scored on those it did not train on, since
    an in-sample error looks far better than what prod does on listings it meets for the first time."""

    scored: int | None  # new listings prod did not train on; None: what it trained on is unknown
    mae: float | None  # None when none were scored


def week_rows(
    weeks: Sequence[Week], prod: Mapping[str, ProdScore], drops: Sequence[Drop] = (), baseline: Week | None = None
) -> pd.DataFrame:
    """The table, oldest week first; ``prod``: week -> prod's score on that week's new listings;
    ``baseline``: the newest good week before those shown, which the oldest is compared with."""
    baselines = _new_ids([*([baseline] if baseline else []), *weeks])
    rows = []
    for week in sorted(weeks, key=lambda w: w.week):
        drift = None
        if week.reference is not None and len(week.clean):
            drift = kl_divergence_bits(borough_counts(week.clean), borough_counts(week.reference))
        since, ids = baselines.get(week.week) or (None, None)
        score = prod.get(week.week)
        rows.append(
            {
                "week": week.week,
                "version": week.version,
                "rows_in": week.rows_in,
                "rows": len(week.clean),
                "dropped": None if week.rows_in is None else week.rows_in - len(week.clean),
                "drift_bits": None if drift is None else round(drift, 4),
                "new_listings": None if ids is None else len(ids),
                "new_since": since,
                "new_unseen": None if score is None else score.scored,
                "prod_mae_new": None if score is None else score.mae,
                "prod_changed": week.prod_changed,
                "failed_checks": _failures(week),
            }
        )
    for drop in drops:
        rows.append(
            {
                "week": drop.week,
                "version": drop.version,
                "rows_in": drop.rows_in,
                "prod_changed": False,
                "failed_checks": drop.failed_checks,
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values("week", kind="stable").reset_index(drop=True)


def _failures(week: Week) -> str:
    stopped = f"{week.stopped_drop_failed} ({week.stopped_drop})" if week.stopped_drop else ""
    return ", ".join(part for part in (week.failed_checks, stopped) if part)


def new_listings(weeks: Sequence[Week], baseline: Week | None = None) -> dict[str, pd.DataFrame]:
    """Week -> its listings the newest earlier week that passed its checks (``baseline`` for the
    oldest) did not hold; a week with no such week before it is left out."""
    frames = {w.week: w.clean for w in weeks}
    found = _new_ids([*([baseline] if baseline else []), *weeks]).items()
    return {week: frames[week][frames[week]["id"].isin(ids)] for week, (_, ids) in found}


def _new_ids(weeks: Sequence[Week]) -> dict[str, tuple[str, set]]:
    """Week -> (the week it is compared with, its new ids). Compared with the last week that passed
    its checks, not the calendar's previous one: a drifting or broken week holds listings the
    market did not, and counting against it would call most of the next week new."""
    found: dict[str, tuple[str, set]] = {}
    last_good: Week | None = None
    for week in sorted(weeks, key=lambda w: w.week):
        if last_good is not None:
            found[week.week] = (last_good.week, set(week.clean["id"]) - set(last_good.clean["id"]))
        if not week.failed_checks:
            last_good = week
    return found


def prod_scores(
    new: Mapping[str, pd.DataFrame],
    trained_on: frozenset | None,
    predict: Callable[[pd.DataFrame], np.ndarray],
) -> dict[str, ProdScore]:
    """Prod's score on each week's new listings (``new``, `new_listings`) it did not train on
    (``trained_on``, `promotion.training_listings`). Weekly drops overlap, so a model trained on a
    window of weeks has seen most of a later week's "new" listings; with its training unknown
    (None) nothing can be told apart, so nothing is scored."""
    scores = {}
    for week, frame in new.items():
        if trained_on is None:
            scores[week] = ProdScore(scored=None, mae=None)
            continue
        unseen = frame[~frame["id"].isin(trained_on)]
        scores[week] = ProdScore(scored=len(unseen), mae=mae(unseen["price"], predict(unseen)) if len(unseen) else None)
    return scores


def sources_digest(sources: Mapping[str, Any]) -> str:
    """One value for everything the view reads that can change while the versions it shows do not
    (a week's checks judged again, a reference accepted, prod moved), so the run cache never
    answers with a view of how the store was before."""
    text = json.dumps(sources, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def week_plot(table: pd.DataFrame) -> bytes:
    """Rows, drift and prod's MAE on unseen new listings, week by week (PNG), prod changes marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5.5), dpi=100, layout="constrained")
    axes = figure.subplots(3, 1, sharex=True)
    x = pd.to_datetime(table["week"])
    panels = (
        ("rows", "clean listings"),
        ("drift_bits", "borough drift (bits)"),
        ("prod_mae_new", "prod MAE, new unseen ($)"),
    )
    for ax, (column, label) in zip(axes, panels):
        values = pd.to_numeric(table[column], errors="coerce")
        ax.plot(x, values, marker="o", color="#1f77b4")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        for when in x[table["prod_changed"].astype(bool)]:
            ax.axvline(when, color="#2ca02c", alpha=0.4, linestyle="--")
        for when in x[table["failed_checks"].fillna("").astype(bool)]:
            ax.axvline(when, color="#d62728", alpha=0.3, linestyle=":")
    axes[0].set_title("Week by week (dashed: prod changed; dotted: failed checks)")
    axes[-1].set_xlabel("week")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def mae(actual: pd.Series, predicted: np.ndarray) -> float | None:
    return float(np.mean(np.abs(actual.to_numpy(dtype=float) - predicted))) if len(actual) else None
