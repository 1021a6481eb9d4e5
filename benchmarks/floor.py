"""The floor: the training graph's work as one plain Python script, no Dagster, no store, no W&B.

Same functions and defaults as the assets (read or generate, clean, split, fit on train, score on
validation, score on test), so the difference between a `dagster job execute` run and this script
is what the orchestration, the checks, the artifact store and the W&B mirror cost.

    python benchmarks/floor.py --rows 48895 [--seed 42] [--model random_forest] [--json OUT]
    python benchmarks/floor.py --source listings.csv

Prints one JSON object: seconds per stage and the metrics (to check both paths computed the same).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

STARTED = time.time()  # wall clock once the interpreter runs this file: the rest is start-up and exit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--source", help="listings CSV, read as raw_data reads it")
    source.add_argument("--rows", type=int, help="synthetic listings, generated as raw_data generates them")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--model", default=None, help="boosted or random_forest (default: the asset's default)")
    parser.add_argument("--forest", default="{}", help="JSON of random forest parameters overriding the defaults")
    parser.add_argument("--max-tfidf-features", type=int, default=None)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    from dataclasses import replace

    from rental_pipeline.cleaning import clean_listings
    from rental_pipeline.evaluation import evaluate_pipeline
    from rental_pipeline.listings import read_listings
    from rental_pipeline.model_params import ForestParams
    from rental_pipeline.split import split_listings
    from rental_pipeline.synthetic import generate_listings
    from rental_pipeline.training import train_inference_pipeline

    stages: dict[str, float] = {"import": time.perf_counter() - started}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        stages[name] = now - since
        return now

    mark = time.perf_counter()
    if args.source:
        raw = read_listings(args.source).listings
    else:
        raw = generate_listings(rows=args.rows, seed=args.seed)
    mark = lap("raw_data", mark)
    clean, _ = clean_listings(raw)
    mark = lap("clean_sample", mark)
    trainval, test = split_listings(clean)
    mark = lap("split_listings", mark)
    training: dict = {}
    forest = json.loads(args.forest)
    if forest:  # as the asset does: overrides apply to the reference forest's parameters
        training["forest"] = replace(ForestParams(), **forest)
    if args.max_tfidf_features is not None:
        training["max_tfidf_features"] = args.max_tfidf_features
    if args.model is not None:
        training["model"] = args.model
    result = train_inference_pipeline(trainval, **training)
    mark = lap("inference_pipeline", mark)
    evaluation = evaluate_pipeline(result.pipeline, test)
    lap("model_evaluation", mark)

    record = {
        "rows": len(raw),
        "clean_rows": len(clean),
        "seconds": time.perf_counter() - started,
        "stages": stages,
        "fit_seconds": result.metrics["fit_seconds"],
        "val_mae": result.metrics["val_mae"],
        "test_mae": evaluation.mae,
        "test_r2": evaluation.r2,
        "wall_started": STARTED,
        "wall_done": time.time(),
    }
    text = json.dumps(record)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
