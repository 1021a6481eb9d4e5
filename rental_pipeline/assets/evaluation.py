"""`model_evaluation`: the inference pipeline scored on the test split it never saw."""

from typing import Any

import dagster as dg
import pandas as pd
from sklearn.pipeline import Pipeline

from rental_pipeline.assets.metadata import table
from rental_pipeline.evaluation import evaluate_pipeline


@dg.asset(
    group_name="model",
    kinds={"scikitlearn"},
    description="Test MAE and R² of the inference pipeline, with the listings it got most wrong.",
)
def model_evaluation(
    context: dg.AssetExecutionContext, inference_pipeline: Pipeline, test_data: pd.DataFrame
) -> dg.Output[dict[str, Any]]:
    evaluation = evaluate_pipeline(inference_pipeline, test_data)
    context.log.info(f"Test MAE {evaluation.mae:.2f}, R² {evaluation.r2:.3f} on {evaluation.rows:,} listings")
    value = {**evaluation.metrics(), "worst_errors": evaluation.worst_errors.to_dict(orient="records")}
    return dg.Output(
        value,
        metadata={
            "test_mae": evaluation.mae,
            "test_r2": evaluation.r2,
            "test_rows": evaluation.rows,
            "worst_errors": table(evaluation.worst_errors),
        },
    )
