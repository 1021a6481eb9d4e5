"""A backfill of a range of weeks in one command: one Dagster run per week, all in one process.

Each week is a run of its own on the Dagster instance (so the catalog shows each week's
materialization and check status, and a week that fails its checks fails alone while the others
go on), but the runs share one process: the code location, pandas and scikit-learn load once
instead of once per week, and a week already done is answered by the run cache. `dagster job
backfill` would launch the same runs through the instance's run queue, which needs the daemon
(`dagster dev`); this needs nothing running.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dagster as dg

from rental_pipeline.weeks import WEEK_FORMAT, parse_week

REUSED_KEY = "reused_from_run"


@dataclass(frozen=True)
class WeekOutcome:
    week: str
    run_id: str
    success: bool
    computed: tuple[str, ...]  # store names of the versions the run computed
    reused: tuple[str, ...]  # and of those the run cache answered
    failed_checks: tuple[str, ...]


def week_range(first: str, last: str, newest: str | None = None) -> list[str]:
    """Every week from ``first`` to ``last``, both included, as partition keys; a ValueError, before
    anything runs, for a range that is not all weeks that exist: from FIRST_WEEK to ``newest``
    (default: the week under way, the last partition of `WEEKS`)."""
    start, end = parse_week(first), parse_week(last)
    if end < start:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    newest = newest or _last_week()
    if last > newest:
        raise ValueError(f"week {last} does not exist yet: the last week is {newest}, the week under way")
    return [(start + timedelta(weeks=n)).strftime(WEEK_FORMAT) for n in range((end - start).days // 7 + 1)]


def _last_week() -> str:
    from rental_pipeline.partitions import WEEKS

    return WEEKS.get_last_partition_key()


def backfill(
    job: str, weeks: list[str], run_config: dict[str, Any], instance: dg.DagsterInstance
) -> Iterator[WeekOutcome]:
    """Run ``job`` of the code location for each week in turn, as it finishes each one."""
    from rental_pipeline.definitions import defs

    if weeks:  # every week must exist before the first runs: a backfill never stops half way for this
        week_range(min(weeks), max(weeks))
    job_def = defs.resolve_job_def(job)
    for week in weeks:
        result = job_def.execute_in_process(
            instance=instance,
            partition_key=week,
            run_config=run_config,
            tags={"rental_pipeline/backfill": f"{weeks[0]}...{weeks[-1]}"},
            raise_on_error=False,
        )
        computed, reused = [], []
        for event in result.get_asset_materialization_events():
            metadata = event.materialization.metadata
            artifact = str(metadata["artifact"].value) if "artifact" in metadata else event.asset_key.to_user_string()
            (reused if REUSED_KEY in metadata else computed).append(artifact)
        failed = tuple(
            f"{e.asset_key.to_user_string()}:{e.check_name}"
            for e in result.get_asset_check_evaluations()
            if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
        )
        yield WeekOutcome(week, result.run_id, result.success, tuple(computed), tuple(reused), failed)
