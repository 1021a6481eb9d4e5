"""The previous default model against the current one, as each is trained and stored.

    python -m benchmarks.default_model                      # sample1 and 48,895 synthetic rows
    python -m benchmarks.default_model --rows 5000 --score-rows 25000 --json out.json

The previous default is the boosted model as it was before its CatBoost models: the same
preprocessing (host and neighbourhood encodings included) and three histogram boosting models of
log price averaged (squared error, and absolute error on two seeds; `previous_params`). The
current default is `BoostingParams()`: two absolute error histogram boosting models and two
CatBoost models (RMSE and MAE). Both are validated on a fit to the train part and stored
as refitted on train + validation (`training.train_inference_pipeline`), and measured under the
reference protocol (clean, trainval/test split, train/validation split, one seed for both splits):

* test MAE on `../shared/data/sample1.csv` with the reference seed 42, and over seeds 1, 7 and 13:
  one test split has a standard error of about 0.5 dollars, so the paired gap (new minus old on
  the same split) is what says whether the change holds, not one number;
* test MAE on synthetic NYC-sized listings, with the time the training step takes there (its fit
  on train plus its refit), wall clock and CPU;
* rows per second of `predict.predict_csv` (the `predict` command's scoring of a file, without
  starting the process and loading the model) on a synthetic file, runs interleaved, per second
  of wall clock and per second of this process's CPU time (the steadier figure when other work
  shares the machine);
* the model file's size (the store's skops bytes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE1 = PROJECT_ROOT.parent / "shared" / "data" / "sample1.csv"
REFERENCE_SEED = 42
OTHER_SEEDS = (1, 7, 13)
OLD, NEW = "previous default", "current default"
GOAL_SAMPLE1_TEST_MAE = 29.0


def previous_params() -> Any:
    """The default's parameters before its CatBoost models (three histogram boosting models)."""
    from rental_pipeline.model_params import BoostingParams

    return BoostingParams(squared_error_models=1, absolute_error_models=2, catboost_models=0)


def previous_default() -> Pipeline:
    """The default model as it was before its CatBoost models, unfitted."""
    from rental_pipeline.boosting import build_boosted_pipeline

    return build_boosted_pipeline(previous_params())


@dataclass
class Trained:
    model: Pipeline
    val_mae: float
    fit_seconds: float  # the whole training step: fit on train, and the refit where there is one
    fit_cpu_seconds: float


def train(which: str, trainval: pd.DataFrame, seed: int) -> Trained:
    """`which` trained on trainval as the pipeline trains (and stores) it."""
    from rental_pipeline.model_params import BoostingParams
    from rental_pipeline.training import train_inference_pipeline

    params = BoostingParams() if which == NEW else previous_params()
    wall, cpu = time.perf_counter(), time.process_time()
    result = train_inference_pipeline(trainval, random_seed=seed, boosting=params, importances=False)
    return Trained(result.pipeline, result.metrics["val_mae"], time.perf_counter() - wall, time.process_time() - cpu)


def test_mae(model: Pipeline, test: pd.DataFrame) -> float:
    from rental_pipeline.evaluation import mean_absolute_error_on

    return mean_absolute_error_on(model, test)


@dataclass
class Figures:
    name: str
    sample1: dict[int, dict[str, float]] = field(default_factory=dict)  # seed -> val_mae, test_mae
    synthetic_test_mae: float = float("nan")
    fit_seconds: float = float("nan")
    fit_cpu_seconds: float = float("nan")
    rows_per_second: list[float] = field(default_factory=list)
    rows_per_cpu_second: list[float] = field(default_factory=list)  # steadier on a shared machine
    model_bytes: int = 0

    def other_seeds_mean(self) -> float:
        values = [self.sample1[s]["test_mae"] for s in OTHER_SEEDS if s in self.sample1]
        return statistics.fmean(values) if values else float("nan")


def sample1_figures(
    figures: dict[str, Figures], source: Path, seeds: tuple[int, ...], log: Callable[[str], None]
) -> None:
    from rental_pipeline.cleaning import clean_listings
    from rental_pipeline.listings import read_listings
    from rental_pipeline.split import split_listings

    clean, _ = clean_listings(read_listings(str(source)).listings)
    for seed in seeds:
        trainval, test = split_listings(clean, random_seed=seed)
        for name in (OLD, NEW):
            trained = train(name, trainval, seed)
            figures[name].sample1[seed] = {"val_mae": trained.val_mae, "test_mae": test_mae(trained.model, test)}
            log(f"sample1 seed {seed}, {name}: test MAE {figures[name].sample1[seed]['test_mae']:.2f}")


def synthetic_figures(
    figures: dict[str, Figures], rows: int, score_rows: int, repeats: int, log: Callable[[str], None]
) -> None:
    """Test MAE, training time and model size on NYC-sized synthetic listings; scoring speed."""
    import rental_pipeline.model_types  # noqa: F401 - the pipeline's trusted types, as every store has them
    from rental_pipeline.cleaning import clean_listings
    from rental_pipeline.predict import predict_csv
    from rental_pipeline.split import split_listings
    from rental_pipeline.store import codec_named
    from rental_pipeline.synthetic import generate_listings

    clean, _ = clean_listings(generate_listings(rows, 2026))
    trainval, test = split_listings(clean)
    models = {}
    for name in (OLD, NEW):
        trained = train(name, trainval, REFERENCE_SEED)
        models[name] = trained.model
        entry = figures[name]
        entry.synthetic_test_mae = test_mae(trained.model, test)
        entry.fit_seconds, entry.fit_cpu_seconds = trained.fit_seconds, trained.fit_cpu_seconds
        entry.model_bytes = len(codec_named("skops").encode(trained.model))  # the stored file's bytes
        log(f"synthetic {rows:,} rows, {name}: test MAE {entry.synthetic_test_mae:.2f}, fit {entry.fit_seconds:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        listings = Path(folder) / "listings.csv"
        generate_listings(score_rows, 7).to_csv(listings, index=False)
        for repeat in range(repeats):
            order = (OLD, NEW) if repeat % 2 == 0 else (NEW, OLD)
            for name in order:
                cpu = time.process_time()
                summary = predict_csv(models[name], listings, Path(folder) / "scored.csv")
                figures[name].rows_per_second.append(summary.rows_per_second)
                figures[name].rows_per_cpu_second.append(summary.rows / (time.process_time() - cpu))
                log(f"predict_csv {score_rows:,} rows, {name}: {summary.rows_per_second:,.0f} rows/s, "
                    f"{figures[name].rows_per_cpu_second[-1]:,.0f} rows per CPU second")


def measure(
    *, source: Path | None, rows: int, score_rows: int, repeats: int, seeds: tuple[int, ...], log: Callable[[str], None]
) -> dict[str, Figures]:
    figures = {name: Figures(name) for name in (OLD, NEW)}
    if source is not None:
        sample1_figures(figures, source, seeds, log)
    synthetic_figures(figures, rows, score_rows, repeats, log)
    return figures


def paired_gaps(figures: dict[str, Figures]) -> list[float]:
    """New minus old test MAE on each other seed's split."""
    old, new = figures[OLD].sample1, figures[NEW].sample1
    return [new[s]["test_mae"] - old[s]["test_mae"] for s in OTHER_SEEDS if s in old and s in new]


def as_json(figures: dict[str, Figures]) -> dict[str, Any]:
    return {
        name: {
            "sample1": {str(seed): values for seed, values in entry.sample1.items()},
            "other_seeds_mean_test_mae": entry.other_seeds_mean(),
            "synthetic_test_mae": entry.synthetic_test_mae,
            "fit_seconds": entry.fit_seconds,
            "fit_cpu_seconds": entry.fit_cpu_seconds,
            "rows_per_second": entry.rows_per_second,
            "median_rows_per_second": statistics.median(entry.rows_per_second) if entry.rows_per_second else None,
            "rows_per_cpu_second": entry.rows_per_cpu_second,
            "model_bytes": entry.model_bytes,
        }
        for name, entry in figures.items()
    } | {"paired_gaps_other_seeds": paired_gaps(figures)}


def markdown(figures: dict[str, Figures], rows: int, score_rows: int) -> str:
    lines = [
        f"| model | sample1 val MAE | sample1 test MAE | mean test MAE, seeds {', '.join(map(str, OTHER_SEEDS))} "
        f"| synthetic test MAE | training s ({rows:,} rows) | predict rows/s ({score_rows:,}) "
        "| predict rows per CPU s | model file |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in figures.values():
        reference = entry.sample1.get(REFERENCE_SEED, {})
        val, test = reference.get("val_mae", float("nan")), reference.get("test_mae", float("nan"))
        lines.append(
            f"| {entry.name} | {val:.2f} | {test:.2f} "
            f"| {entry.other_seeds_mean():.2f} | {entry.synthetic_test_mae:.2f} | {entry.fit_seconds:.1f} "
            f"| {statistics.median(entry.rows_per_second):,.0f} | {statistics.median(entry.rows_per_cpu_second):,.0f} "
            f"| {entry.model_bytes / 2**20:.1f} MiB |"
        )
    gaps = paired_gaps(figures)
    if gaps:
        lines += ["", "Paired test MAE gaps (new - old) on seeds " + ", ".join(f"{g:+.2f}" for g in gaps) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.default_model", description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=SAMPLE1, help="default ../shared/data/sample1.csv")
    parser.add_argument("--rows", type=int, default=48_895, help="synthetic listings to train on (default NYC-sized)")
    parser.add_argument("--score-rows", type=int, default=250_000, help="synthetic listings to score")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved scoring runs per model")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    source = args.source if args.source.exists() else None

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    seeds = (REFERENCE_SEED, *OTHER_SEEDS)
    figures = measure(
        source=source, rows=args.rows, score_rows=args.score_rows, repeats=args.repeats, seeds=seeds, log=log
    )
    print(markdown(figures, args.rows, args.score_rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(as_json(figures), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
