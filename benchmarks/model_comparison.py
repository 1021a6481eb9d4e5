"""The reference random forest against the boosted pipeline, under the reference split.

    python -m benchmarks.model_comparison                       # ../shared/data/sample1.csv
    python -m benchmarks.model_comparison --source PATH --repeats 7 --json out.json

Both models are fitted on the same train part (the reference's trainval/test split, then
train/validation), scored on validation and test, and timed: fits alternate between the two
models (A B, B A, A B, ...) in this one process and the median is reported, so a machine that
gets busier half-way through slows both sides alike. The CPU seconds the process spent fitting
are reported next to wall-clock seconds: on a machine shared with other work they are the
steadier figure. Prints a markdown table and, with `--json`, writes the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.pipeline import Pipeline

from rental_pipeline.boosting import INPUT_COLUMNS, BoostingParams, build_boosted_pipeline
from rental_pipeline.cleaning import clean_listings
from rental_pipeline.features import FEATURE_COLUMNS, TARGET, ForestParams, build_forest_pipeline
from rental_pipeline.listings import read_listings
from rental_pipeline.split import split_listings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = PROJECT_ROOT.parent / "shared" / "data" / "sample1.csv"
PACKAGES = ("pandas", "numpy", "scikit-learn", "scipy", "skops")
REFERENCE = "reference random forest"
BOOSTED = "boosted (rental_pipeline.boosting)"


@dataclass
class ModelFigures:
    name: str
    columns: list[str]
    val_mae: float = float("nan")
    val_r2: float = float("nan")
    test_mae: float = float("nan")
    test_r2: float = float("nan")
    fit_seconds: list[float] = field(default_factory=list)
    fit_cpu_seconds: list[float] = field(default_factory=list)

    @property
    def median_fit_seconds(self) -> float:
        return statistics.median(self.fit_seconds)

    @property
    def median_fit_cpu_seconds(self) -> float:
        return statistics.median(self.fit_cpu_seconds)


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def reference_splits(source: str) -> Splits:
    """The reference's rows: clean, trainval/test, then train/validation, all with its defaults."""
    clean, _ = clean_listings(read_listings(source).listings)
    trainval, test = split_listings(clean)
    train, validation = split_listings(trainval, test_size=0.2, random_seed=42)
    return Splits(train=train, validation=validation, test=test)


def timed_fit(build: Callable[[], Pipeline], frame: pd.DataFrame, columns: list[str]) -> tuple[Pipeline, float, float]:
    pipeline = build()
    wall, cpu = time.perf_counter(), time.process_time()
    pipeline.fit(frame[columns], frame[TARGET])
    return pipeline, time.perf_counter() - wall, time.process_time() - cpu


def compare(splits: Splits, repeats: int) -> list[ModelFigures]:
    """Fit each model `repeats` times, alternating which goes first; score the first fit of each.

    Both pipelines are deterministic (fixed seeds), so any fit gives the same scores.
    """
    builds: dict[str, tuple[Callable[[], Pipeline], list[str]]] = {
        REFERENCE: (lambda: build_forest_pipeline(5, ForestParams()), list(FEATURE_COLUMNS)),
        BOOSTED: (lambda: build_boosted_pipeline(BoostingParams()), list(INPUT_COLUMNS)),
    }
    figures = {name: ModelFigures(name=name, columns=columns) for name, (_, columns) in builds.items()}
    for repeat in range(repeats):
        order = list(builds) if repeat % 2 == 0 else list(reversed(builds))
        for name in order:
            build, columns = builds[name]
            pipeline, wall, cpu = timed_fit(build, splits.train, columns)
            entry = figures[name]
            entry.fit_seconds.append(wall)
            entry.fit_cpu_seconds.append(cpu)
            if repeat == 0:
                for part, frame in (("val", splits.validation), ("test", splits.test)):
                    predicted = pipeline.predict(frame[columns])
                    setattr(entry, f"{part}_mae", float(mean_absolute_error(frame[TARGET], predicted)))
                    setattr(entry, f"{part}_r2", float(r2_score(frame[TARGET], predicted)))
    return list(figures.values())


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "load_average_1_5_15_min": list(load) if load else None,
        "versions": versions,
    }


def markdown(figures: list[ModelFigures], meta: dict[str, Any]) -> str:
    reference, boosted = figures
    lines = [
        "| model | val MAE | val R² | test MAE | test R² | median fit s (wall) | median fit s (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in figures:
        lines.append(
            f"| {entry.name} | {entry.val_mae:.2f} | {entry.val_r2:.3f} | {entry.test_mae:.2f} | {entry.test_r2:.3f} "
            f"| {entry.median_fit_seconds:.2f} | {entry.median_fit_cpu_seconds:.2f} |"
        )

    def change(new: float, old: float) -> str:
        return f"{100 * (new / old - 1):+.1f}%"

    lines.append(
        f"| boosted vs reference | {change(boosted.val_mae, reference.val_mae)} | "
        f"{boosted.val_r2 - reference.val_r2:+.3f} | {change(boosted.test_mae, reference.test_mae)} | "
        f"{boosted.test_r2 - reference.test_r2:+.3f} | "
        f"{change(boosted.median_fit_seconds, reference.median_fit_seconds)} | "
        f"{change(boosted.median_fit_cpu_seconds, reference.median_fit_cpu_seconds)} |"
    )
    info = meta["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    load = info["load_average_1_5_15_min"]
    shown_load = "/".join(f"{value:.1f}" for value in load) if load else "n/a"
    lines += [
        "",
        f"Source {meta['source']} ({meta['rows']['train']} train, {meta['rows']['validation']} validation, "
        f"{meta['rows']['test']} test rows); fit times are medians of {meta['repeats']} interleaved fits "
        "on the train part.",
        f"Machine: {info['cores']} cores, {info['platform']}; load average before the fits {shown_load} "
        f"(1/5/15 min). {meta['date']}. {versions}.",
    ]
    return "\n".join(lines)


def shown_source(source: str) -> str:
    """The default sample is named relative to the project root, as the docs name it."""
    if Path(source).resolve() == DEFAULT_SOURCE.resolve():
        return "../shared/data/sample1.csv"
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.model_comparison", description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=str(DEFAULT_SOURCE),
                        help="listings CSV (path or URL); default ../shared/data/sample1.csv from the project root")
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per model, interleaved (default 5)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    splits = reference_splits(args.source)
    meta: dict[str, Any] = {
        "source": shown_source(args.source),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "repeats": args.repeats,
        "rows": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "machine": machine(),
        "boosting_params": asdict(BoostingParams()),
        "forest_params": asdict(ForestParams()),
    }
    figures = compare(splits, args.repeats)
    print(markdown(figures, meta))
    if args.json is not None:
        report = {
            "meta": meta,
            "models": [
                {**asdict(entry), "median_fit_seconds": entry.median_fit_seconds,
                 "median_fit_cpu_seconds": entry.median_fit_cpu_seconds}
                for entry in figures
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
