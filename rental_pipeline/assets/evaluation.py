"""`model_evaluation`: the inference pipeline scored on the test split, and the promotion gate."""

from typing import Any

import dagster as dg
from pydantic import Field

from rental_pipeline.code_version import code_version
from rental_pipeline.io_manager import (
    ArtifactStoreResource,
    loaded_artifacts,
    loaded_value,
    reused_output,
    reused_outputs,
    run_resolver,
)
from rental_pipeline.promotion import PROD, decide_promotion
from rental_pipeline.store import AliasRefusedError


class EvaluationConfig(dg.Config):
    promote: bool = Field(default=True, description="Move `prod` to the evaluated model when it beats the current one.")
    min_improvement: float = Field(
        default=0.0,
        description="How many dollars lower the new model's test MAE must be than prod's to replace it "
        "(0: any improvement; negative: accept a slightly worse model).",
    )


@dg.asset(
    group_name="model",
    kinds={"scikitlearn"},
    metadata={"artifact_type": "evaluation"},
    code_version=code_version(__name__),
    description="Test MAE and R² of the inference pipeline, the listings it got most wrong, and whether it "
    "became prod (champion/challenger on the same test split).",
)
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    artifact_store: ArtifactStoreResource,
    inference_pipeline: Any,
    test_data: Any,
) -> dg.Output:
    from rental_pipeline.evaluation import evaluate_pipeline

    store = artifact_store.store()
    challenger = loaded_artifacts(context)["inference_pipeline"]
    # The scores depend only on the model and the test split, so they may come from the run
    # cache; the promotion decision is this run's and is always made again.
    hits = reused_outputs(context)
    reused = reused_output(context, hits["model_evaluation"]) if hits else None
    if reused is not None:
        test_mae = float(store.load(reused.value.version.ref)["test_mae"])
    else:
        evaluation = evaluate_pipeline(inference_pipeline, test_data)
        test_mae = evaluation.mae
        context.log.info(f"Test MAE {evaluation.mae:.2f}, R² {evaluation.r2:.3f} on {evaluation.rows:,} listings")

    resolver = run_resolver(context)
    champion = resolver.alias("inference_pipeline", PROD)
    champion_mae = None
    if champion is not None and champion != challenger:
        champion_mae = evaluate_pipeline(store.load(champion), loaded_value(context, test_data)).mae
    elif champion == challenger:
        champion_mae = test_mae
    decision = decide_promotion(challenger, test_mae, champion, champion_mae, min_improvement=config.min_improvement)
    promoted = False
    outcome = decision.reason
    if decision.promote and config.promote:
        try:
            store.set_alias(challenger, PROD, reason=decision.reason, actor=f"dagster run {context.run.run_id}")
            resolver.alias_moved("inference_pipeline", PROD, challenger)
            promoted = True
        except AliasRefusedError as refused:
            outcome = f"{decision.reason}; refused by the store: {refused}"
    elif decision.promote:
        outcome = f"{decision.reason} (not applied: promote is off)"
    context.log.info(f"Promotion: {outcome}")

    # The decision is a fact about this run, not about the scores: it goes to the model version's
    # flags and the alias log, so an unchanged re-run still reuses the stored evaluation.
    store.mark(challenger, "promotion", {**decision.as_dict(), "promoted": promoted, "outcome": outcome})
    promotion = {
        "evaluated_model": challenger,
        "prod_model": challenger if promoted else (champion or "none"),
        **({"previous_prod_test_mae": champion_mae} if champion_mae is not None else {}),
        "promoted": promoted,
        "promotion": outcome,
    }
    if reused is not None:
        return dg.Output(reused.value, metadata={**reused.metadata, **promotion})
    from rental_pipeline.assets.metadata import model_quality_metadata, table

    worst = evaluation.worst_errors
    # JSON has no NaN: a listing without a name is stored with a null name.
    records = worst.astype(object).where(worst.notna(), None).to_dict(orient="records")
    value = {**evaluation.metrics(), "worst_errors": records}
    return dg.Output(
        value,
        metadata={
            "test_mae": evaluation.mae,
            "test_r2": evaluation.r2,
            "test_rows": evaluation.rows,
            **promotion,
            **(model_quality_metadata(evaluation.scored, "test") if evaluation.scored is not None else {}),
            "worst_errors": table(worst),
            "errors_by_borough": table(evaluation.by_borough),
        },
    )
