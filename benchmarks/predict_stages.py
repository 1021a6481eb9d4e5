"""Where `rental-pipeline predict` spends its time: reading, features, the model's trees.

    python benchmarks/predict_stages.py inference_pipeline:prod listings.csv

Loads the stored model, reads the whole file into memory once, then times the preprocessing and
the final regressor separately on every row (median of a few repeats). The regressor's rate is
the ceiling of the whole command on this machine: no reading, typing or writing can make the
trees cheaper. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="store reference of the model, e.g. inference_pipeline:prod")
    parser.add_argument("listings", help="listings CSV")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import pandas as pd

    from rental_pipeline.home import open_store
    from rental_pipeline.predict import required_columns

    model = open_store().load(args.model)
    started = time.perf_counter()
    listings = pd.read_csv(args.listings, engine="pyarrow")
    read_seconds = time.perf_counter() - started
    features = listings[required_columns(model)]
    preprocess, trees = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        matrix = model[:-1].transform(features)
        preprocess.append(time.perf_counter() - started)
        started = time.perf_counter()
        model[-1].predict(matrix)
        trees.append(time.perf_counter() - started)
    rows = len(listings)
    record = {
        "rows": rows,
        "regressor": type(model[-1]).__name__,
        "read_seconds": read_seconds,
        "preprocess_seconds": statistics.median(preprocess),
        "regressor_seconds": statistics.median(trees),
        "preprocess_rows_per_second": rows / statistics.median(preprocess),
        "regressor_rows_per_second": rows / statistics.median(trees),
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
