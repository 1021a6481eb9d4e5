"""Section 1: the training graph through `dagster job execute` against the plain floor script
doing the same work, in interleaved pairs, on sample1 (when it is there) and on synthetic
listings of NYC size. Section 2 (incremental) measures its re-runs in the same workspaces, after
each full run, so it rides on this section's runs."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import (
    SAMPLE1,
    SAMPLE1_SHOWN,
    Bench,
    dagster_job,
    floor_run,
    fmt_s,
    log,
    median,
    summary,
    training_ops,
    versus_floor,
)
from benchmarks.measure import mib
from benchmarks.sections import incremental

LABEL = "1 overhead"
OVERHEAD_GOAL = 1.5  # dagster run / plain floor


def run(bench: Bench) -> None:
    sizes = bench.sizes
    measure_incremental = incremental.NAME in bench.selected
    datasets: list[tuple[str, dict[str, Any]]] = []
    if sizes.use_sample and SAMPLE1.exists():
        datasets.append(("sample1 (20,000 rows)", {"source": SAMPLE1}))
    elif sizes.use_sample:
        bench.report.add(LABEL, f"{SAMPLE1_SHOWN}: dagster / floor", "skipped", note=f"{SAMPLE1_SHOWN} not found")
    datasets.append((f"synthetic {sizes.nyc_rows:,} rows", {"rows": sizes.nyc_rows}))
    results: dict[str, Any] = {}
    for label, data in datasets:
        incremental_here = measure_incremental and "rows" in data
        pairs = []
        for rep in range(sizes.repeats):
            log(f"overhead {label}: dagster {rep + 1}/{sizes.repeats}")
            with bench.workspace("overhead") as ws:
                full = dagster_job(ws, training_ops(sizes, **data))
                full.extra["test_mae"] = ws.artifact_facts("model_evaluation:latest").get("test_mae")
                full.extra["versions"] = ws.versions()
                extra = incremental.runs(ws, sizes, data, rep) if incremental_here else {}
            log(f"  {full.seconds:.1f} s; floor {rep + 1}/{sizes.repeats}")
            with bench.workspace("floor") as ws:
                floor = floor_run(ws, sizes, **data)
            log(f"  {floor.seconds:.1f} s")
            pairs.append({"dagster": summary(full), "floor": summary(floor), **extra})
        results[label] = _rows(bench, label, pairs)
        if incremental_here:
            results[label].update(incremental.rows(bench, label, pairs))
    bench.report.results["overhead"] = results


def _rows(bench: Bench, label: str, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    dagster, floor, ratios, ratio, same_mae = versus_floor(pairs)
    n = len(pairs)
    add = bench.report.add
    add(LABEL, f"{label}: `dagster job execute` training_job", fmt_s(median(dagster)),
        note=f"median of {n}, peak RSS {mib(median([p['dagster']['peak_rss'] for p in pairs]))}")
    add(LABEL, f"{label}: plain floor script", fmt_s(median(floor)),
        note=f"median of {n}, peak RSS {mib(median([p['floor']['peak_rss'] for p in pairs]))}")
    add(LABEL, f"{label}: dagster / floor", f"{ratio:.2f}x", f"<= {OVERHEAD_GOAL}x",
        ratio <= OVERHEAD_GOAL,
        note=f"median of {n} interleaved pairs; same test MAE: {'yes' if same_mae else 'NO'}")
    return {
        "pairs": pairs, "dagster_seconds": median(dagster), "floor_seconds": median(floor),
        "ratio": ratio, "ratios": ratios, "same_test_mae": same_mae,
    }
