"""Section 5: `rental-pipeline predict` on synthetic files of two sizes, scored with a model the
training graph has just made: rows per second of the whole command, whether memory stays flat as
the file grows, and the model's own ceiling (benchmarks/predict_stages.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness import BIN, TIMEOUT, Bench, dagster_job, fmt_s, log, median, summary, training_ops
from benchmarks.measure import Measurement, mib

LABEL = "5 predict"
PREDICT_GOAL_ROWS_PER_SECOND = 250_000
FLAT_MEMORY_GOAL = 1.2  # peak RSS at the large size / at the small size
PREDICT_STAGES = Path(__file__).resolve().parents[1] / "predict_stages.py"
# The command's closing line is its only report of the scoring loop's own rate.
_LOOP_RATE_RE = re.compile(r"\(([\d,]+) rows/s\)")


def run(bench: Bench) -> None:
    sizes = bench.sizes
    small, large = sizes.predict_rows
    with bench.workspace("predict") as ws:
        log(f"predict: training a model on {sizes.nyc_rows:,} synthetic rows")
        dagster_job(ws, training_ops(sizes, rows=sizes.nyc_rows))
        files = {}
        for rows in (small, large):
            path = ws.root / f"listings-{rows}.csv"
            subprocess.run(
                [sys.executable, "-c",
                 "import sys; from rental_pipeline.synthetic import generate_listings; "
                 "generate_listings(int(sys.argv[1]), 2026).to_csv(sys.argv[2], index=False)",
                 str(rows), str(path)],
                env=ws.env, check=True, timeout=TIMEOUT,
            )
            files[rows] = path
        runs: dict[int, list[Measurement]] = {small: [], large: []}
        for rep in range(sizes.repeats):
            for rows in (large, small):
                log(f"predict: {rows:,} rows {rep + 1}/{sizes.repeats}")
                out = ws.root / "scored.csv"
                chunks = ["--chunk-rows", sizes.predict_chunk_rows] if sizes.predict_chunk_rows else []
                measured = ws.run([BIN / "rental-pipeline", "predict", "--model", "inference_pipeline:prod",
                                   *chunks, files[rows], out])
                found = _LOOP_RATE_RE.search(measured.stdout + measured.stderr)
                measured.extra["loop_rows_per_second"] = float(found.group(1).replace(",", "")) if found else None
                measured.extra["output_rows"] = _count_lines(out) - 1
                out.unlink()
                runs[rows].append(measured)
        log(f"predict: stages on {large:,} rows")
        stages = ws.run([sys.executable, PREDICT_STAGES, "inference_pipeline:prod", files[large]])
        stage_figures = json.loads(stages.stdout.strip().splitlines()[-1])
    results: dict[str, Any] = {"stages": stage_figures}
    for rows, measured_runs in runs.items():
        seconds = median([m.seconds for m in measured_runs])
        loop = [m.extra["loop_rows_per_second"] for m in measured_runs if m.extra["loop_rows_per_second"]]
        results[str(rows)] = {
            "seconds": seconds, "rows_per_second": rows / seconds,
            "loop_rows_per_second": median(loop) if loop else None,
            "peak_rss": median([m.peak_rss for m in measured_runs]),
            "max_process_rss": median([m.max_process_rss for m in measured_runs]),
            "output_rows_ok": all(m.extra["output_rows"] == rows for m in measured_runs),
            "runs": [summary(m) for m in measured_runs],
        }
    big, little = results[str(large)], results[str(small)]
    goal = sizes.name == "full"
    bench.report.add(
        LABEL, f"`rental-pipeline predict` {large:,} rows: rows per second (whole command)",
        f"{big['rows_per_second']:,.0f}", f">= {PREDICT_GOAL_ROWS_PER_SECOND:,}",
        big["rows_per_second"] >= PREDICT_GOAL_ROWS_PER_SECOND if goal else None,
        note=f"{fmt_s(big['seconds'])}; scoring loop alone {big['loop_rows_per_second'] or 0:,.0f} rows/s; "
        f"median of {len(runs[large])}",
    )
    ratio = big["peak_rss"] / little["peak_rss"]
    bench.report.add(
        LABEL, f"peak RSS at {large:,} rows vs {small:,} rows",
        f"{mib(big['peak_rss'])} vs {mib(little['peak_rss'])} ({ratio:.2f}x)",
        f"flat (<= {FLAT_MEMORY_GOAL}x)", ratio <= FLAT_MEMORY_GOAL,
        note=f"{small:,} rows: {little['rows_per_second']:,.0f} rows/s; chunks of "
        f"{sizes.predict_chunk_rows or 100_000:,} rows",
    )
    bench.report.add(
        LABEL, f"the same {large:,} rows in memory: preprocessing, then the model's trees alone",
        f"{stage_figures['preprocess_rows_per_second']:,.0f} rows/s, then "
        f"{stage_figures['regressor_rows_per_second']:,.0f} rows/s",
        note=f"{stage_figures['regressor']}; median of 3; the trees' rate caps the whole command",
    )
    results["memory_ratio"] = ratio
    bench.report.results["predict"] = results


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
