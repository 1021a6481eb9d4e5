"""Section 4: the reference forest and the default model on sample1's reference split, from
`benchmarks.model_comparison`: test MAE, R² and fit time."""

from __future__ import annotations

import importlib
import statistics
import traceback
from pathlib import Path
from typing import Any

from benchmarks.harness import SAMPLE1, SAMPLE1_SHOWN, Bench, log

LABEL = "4 model"


def run(bench: Bench) -> None:
    report = bench.report
    if not SAMPLE1.exists():
        report.add(LABEL, "model comparison on sample1", "skipped", note=f"{SAMPLE1_SHOWN} not found")
        return
    log(f"model: benchmarks.model_comparison, {bench.sizes.model_repeats} interleaved fit(s) per model")
    figures, why = model_comparison_figures(SAMPLE1, bench.sizes.model_repeats)
    report.results["model"] = {"models": figures, "unavailable": why}
    if figures is None:
        report.add(LABEL, "reference forest and default model on sample1", "not available", note=why)
        return
    for entry in figures:
        report.add(
            LABEL, f"{entry['name']}: sample1, reference split",
            f"test MAE {entry['test_mae']:.2f}, R² {entry['test_r2']:.3f}, fit {entry['fit_seconds']:.1f} s",
            note=f"fit CPU {entry['fit_cpu_seconds']:.1f} s; median of {len(entry['fit_seconds_all'])} fit(s)",
        )


def model_comparison_figures(sample: Path, repeats: int) -> tuple[list[dict[str, Any]] | None, str]:
    """(one record per model, "") from `benchmarks.model_comparison`, or (None, why not).

    Imported only here: it is maintained separately and may be missing or mid-change, and the
    other sections must not depend on it.
    """
    try:
        module = importlib.import_module("benchmarks.model_comparison")
    except ImportError as error:
        if getattr(error, "name", "") == "benchmarks.model_comparison":
            return None, "benchmarks/model_comparison.py is not there"
        return None, f"benchmarks.model_comparison does not import: {error}"
    except Exception as error:  # noqa: BLE001 - someone else's code: report, never stop the bench
        return None, f"benchmarks.model_comparison does not import: {type(error).__name__}: {error}"
    if not (callable(getattr(module, "reference_splits", None)) and callable(getattr(module, "compare", None))):
        return None, "benchmarks.model_comparison has no reference_splits()/compare()"
    try:
        figures = module.compare(module.reference_splits(str(sample)), repeats)
        records = []
        for entry in figures:
            records.append({
                "name": entry.name,
                "val_mae": float(entry.val_mae), "val_r2": float(entry.val_r2),
                "test_mae": float(entry.test_mae), "test_r2": float(entry.test_r2),
                "fit_seconds": float(statistics.median(entry.fit_seconds)),
                "fit_cpu_seconds": float(statistics.median(entry.fit_cpu_seconds)),
                "fit_seconds_all": [float(x) for x in entry.fit_seconds],
            })
    except Exception as error:  # noqa: BLE001
        traceback.print_exc()
        return None, f"benchmarks.model_comparison failed: {type(error).__name__}: {error}"
    return records, ""
