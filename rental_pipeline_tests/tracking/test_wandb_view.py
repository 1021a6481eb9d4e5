"""What a W&B run shows of an asset's output metadata."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from rental_pipeline.assets.metadata import table
from rental_pipeline.tracking.wandb_view import summary, tables


def test_the_summary_keeps_what_a_runs_table_can_chart():
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(19_001),
        "val_mae": dg.MetadataValue.float(34.13),
        "oob_r2": dg.MetadataValue.float(float("nan")),
        "promoted": dg.MetadataValue.bool(True),
        "model": dg.MetadataValue.text("random_forest"),
        "promotion": "inference_pipeline:v3 test MAE 33.850 beats prod",
        "price_quantiles": dg.MetadataValue.json({"p50": 105.0, "p95": 300.0}),
        "best_config": dg.MetadataValue.json({"model": "random_forest", "max_tfidf_features": 15}),
        "price_histogram": dg.MetadataValue.md("| price | listings |\n|---:|---:|"),
        "next_step": "x" * 201,
        "feature_importances": table(pd.DataFrame({"feature": ["a"], "importance": [0.5]})),
    }
    assert summary(metadata) == {
        "row_count": 19_001,
        "val_mae": 34.13,
        "promoted": True,
        "model": "random_forest",
        "promotion": "inference_pipeline:v3 test MAE 33.850 beats prod",
        "price_quantiles": {"p50": 105.0, "p95": 300.0},
    }


def test_tables_keep_their_columns_in_order_and_missing_cells_empty():
    frame = pd.DataFrame({"id": [1, 2], "name": ["Loft", None], "abs_error": [120.5, 99.0]})
    assert tables({"worst_errors": table(frame), "rows": dg.MetadataValue.int(2)}) == {
        "worst_errors": {"columns": ["id", "name", "abs_error"], "data": [[1, "Loft", 120.5], [2, None, 99.0]]}
    }
