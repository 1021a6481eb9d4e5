"""Section 3: the whole training graph at growing sizes of synthetic listings: wall time and the
peak memory of the whole process tree, against the goals at a million rows."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import Bench, dagster_job, fmt_s, log, summary, training_ops
from benchmarks.measure import gib

LABEL = "3 scale"
SCALE_GOAL_SECONDS = 300.0  # 1M rows, full training graph
SCALE_GOAL_BYTES = 4 * 2**30


def run(bench: Bench) -> None:
    runs: list[dict[str, Any]] = []
    for rows in bench.sizes.scale_rows:
        log(f"scale: {rows:,} rows")
        with bench.workspace("scale") as ws:
            measured = dagster_job(ws, training_ops(bench.sizes, rows=rows))
        log(f"  {measured.seconds:.1f} s, peak tree RSS {gib(measured.peak_rss)}")
        runs.append({"rows": rows, **summary(measured)})
    largest = runs[-1]["rows"]
    for i, measured_run in enumerate(runs):
        growth = ""
        if i:
            factor = measured_run["rows"] / runs[i - 1]["rows"]
            growth = f"{measured_run['seconds'] / runs[i - 1]['seconds']:.2f}x time for {factor:g}x rows"
            measured_run["time_growth"] = measured_run["seconds"] / runs[i - 1]["seconds"]
        is_goal = bench.sizes.name == "full" and measured_run["rows"] == largest
        bench.report.add(
            LABEL, f"synthetic {measured_run['rows']:,} rows: full training graph, wall time",
            fmt_s(measured_run["seconds"]), "<= 5 min" if is_goal else "",
            measured_run["seconds"] <= SCALE_GOAL_SECONDS if is_goal else None, note=growth,
        )
        bench.report.add(
            LABEL, f"synthetic {measured_run['rows']:,} rows: peak RSS of the process tree",
            gib(measured_run["peak_rss"]), "<= 4 GiB" if is_goal else "",
            measured_run["peak_rss"] <= SCALE_GOAL_BYTES if is_goal else None,
            note=f"largest single process {gib(measured_run['max_process_rss'])}",
        )
    bench.report.results["scale"] = runs
