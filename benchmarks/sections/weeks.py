"""Section 10: weeks. A backfill of eight synthetic weeks of NYC-sized drops, as one command (a
Dagster run per week, all in one process: `rental-pipeline backfill`) against one `dagster asset
materialize --partition` process per week; the same backfill again (every week answered by the
run cache); and training on the newest week alone (K = 1) against a window of all eight (K = 8).
Time and peak memory of each whole command; and what a week's own Dagster run costs beyond its data
(tiny weeks), the most one single run for a whole range could save."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import BIN, DEFS, Bench, Workspace, as_yaml, fmt_s, log
from benchmarks.measure import mib

LABEL = "10 weeks"
WEEKS = ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29", "2024-02-05", "2024-02-12", "2024-02-19"]
SELECTION = "weekly_raw_data,weekly_clean_sample,week_by_week"


def _ops(rows: int, forest: dict[str, Any] | None = None, weeks: int = 1) -> dict[str, Any]:
    """Op name -> its config (`as_yaml` adds the `config:` level)."""
    ops: dict[str, Any] = {
        "weekly_raw_data": {"rows": rows, "seed": 42},
        "weekly_clean_sample_checks": {"min_rows": min(15_000, rows // 2)},
    }
    if forest is not None:
        ops["split_listings"] = {"weeks": weeks}
        if forest:  # the small forest of a smoke run; else the default model
            ops["inference_pipeline"] = {"model": "random_forest", "random_forest": forest}
    return ops


def _checked(measured: Any, what: str) -> Any:
    if not measured.ok:
        raise RuntimeError(f"{what} failed:\n{measured.stdout[-2000:]}\n{measured.stderr[-2000:]}")
    return measured


def backfill(ws: Workspace, rows: int, weeks: list[str] = WEEKS) -> Any:
    config = ws.write("weeks.yaml", as_yaml(_ops(rows)))
    argv = [BIN / "rental-pipeline", "backfill", "--from", weeks[0], "--to", weeks[-1], "--config", config]
    return _checked(ws.run(argv), "rental-pipeline backfill")


TINY_ROWS = 300  # a week this small costs almost nothing but its run's own bookkeeping


def run_cost(bench: Bench) -> float:
    """Seconds a week's Dagster run costs beyond its data: eight tiny weeks against one, per extra
    week. It bounds what one run for the whole range (`BackfillPolicy.single_run`) could save."""
    with bench.workspace("weeks-run-cost") as ws:
        one = backfill(ws, TINY_ROWS, WEEKS[:1])
    with bench.workspace("weeks-run-cost-8") as ws:
        eight = backfill(ws, TINY_ROWS)
    return (eight.seconds - one.seconds) / (len(WEEKS) - 1)


def run(bench: Bench) -> None:
    sizes, add = bench.sizes, bench.report.add
    rows = sizes.nyc_rows
    results: dict[str, Any] = {"rows_per_week": rows, "weeks": len(WEEKS)}
    with bench.workspace("weeks-one-process") as ws:
        log("weeks: backfill of 8 weeks in one process")
        once = backfill(ws, rows)
        log("weeks: the same backfill again")
        again = backfill(ws, rows)
        reused = again.stdout.count("computed nothing; reused")
        forest = sizes.forest or {}
        trainings = {}
        for window in (1, len(WEEKS)):
            log(f"weeks: training with K = {window}")
            config = ws.write(f"train-{window}.yaml", as_yaml(_ops(rows, forest, window)))
            argv = [BIN / "dagster", "job", "execute", *DEFS, "-j", "weekly_training_job", "-c", config,
                    "--tags", f'{{"dagster/partition": "{WEEKS[-1]}"}}']
            trainings[window] = _checked(ws.run(argv), f"weekly_training_job K={window}")
        train_rows = {w: ws.store().get("trainval_data:latest").metadata["facts"].get("dagster/row_count")
                      for w in (len(WEEKS),)}
    per_week = []
    with bench.workspace("weeks-run-per-week") as ws:
        config = ws.write("weeks.yaml", as_yaml(_ops(rows)))
        for week in WEEKS:
            log(f"weeks: dagster asset materialize --partition {week}")
            argv = [BIN / "dagster", "asset", "materialize", *DEFS, "--select", SELECTION, "--partition", week,
                    "-c", config]
            per_week.append(_checked(ws.run(argv), f"dagster asset materialize --partition {week}"))
    separate = sum(m.seconds for m in per_week)
    add(LABEL, f"backfill of 8 weeks of {rows:,} rows, one command, one process", fmt_s(once.seconds),
        note=f"peak RSS {mib(once.peak_rss)}; a Dagster run per week")
    add(LABEL, "the same 8 weeks, a `dagster asset materialize --partition` process per week", fmt_s(separate),
        note=f"peak RSS {mib(max(m.peak_rss for m in per_week))}; one process {separate / once.seconds:.1f}x faster")
    add(LABEL, "the same backfill again (the run cache answers every week)", fmt_s(again.seconds),
        note=f"{reused} of 8 weeks reused; peak RSS {mib(again.peak_rss)}")
    log("weeks: the cost of a run per week (tiny weeks)")
    per_run = run_cost(bench)
    add(LABEL, f"what a week's own Dagster run costs (8 weeks of {TINY_ROWS} rows against 1, per extra week)",
        fmt_s(per_run), note=f"at most {8 * per_run / once.seconds:.0%} of the 8-week backfill: what a single run "
        "could save")
    for window, measured in trainings.items():
        extra = f", {train_rows[window]:,} training rows" if window in train_rows and train_rows[window] else ""
        add(LABEL, f"`weekly_training_job` with K = {window} (its week and training)", fmt_s(measured.seconds),
            note=f"peak RSS {mib(measured.peak_rss)}{extra}")
    results.update(
        one_process=once.as_dict(), again=again.as_dict(), reused_weeks=reused, seconds_per_run=per_run,
        per_week=[m.as_dict() for m in per_week], trainings={w: m.as_dict() for w, m in trainings.items()},
    )
    bench.report.results["weeks"] = results
