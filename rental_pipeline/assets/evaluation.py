"""`model_evaluation`: the inference pipeline scored on the test split, and the promotion gate."""

from collections.abc import Callable
from typing import Any

import dagster as dg
from pydantic import Field

from rental_pipeline.assets.metadata import CHARTS_NOTE
from rental_pipeline.code_version import code_version
from rental_pipeline.io_manager import ArtifactStoreResource
from rental_pipeline.promotion import COMPARISON_KEYS, MIN_UNSEEN_ROWS, Promotion, promote, training_listings
from rental_pipeline.reuse import REUSE_DESCRIPTION_KEY, REUSED_TAG, reusable
from rental_pipeline.run_state import loaded_artifacts, run_resolver, stored_value
from rental_pipeline.settings import Settings

# Tag of the observation of inference_pipeline that names the version holding prod (`_mark_prod`).
PROD_TAG = "rental_pipeline/prod"


class EvaluationConfig(dg.Config):
    promote: bool = Field(default=True, description="Move `prod` to the evaluated model when it beats the current one.")
    min_improvement: float = Field(
        default=0.0,
        description="How many dollars lower the new model's test MAE must be than prod's to replace it "
        "(0: any improvement; negative: accept a slightly worse model).",
    )
    min_unseen_rows: int = Field(
        default=MIN_UNSEEN_ROWS,
        ge=1,
        description="Fewest test listings neither model trained on that a comparison with prod needs; "
        "with fewer, prod stays and the decision says so.",
    )


def _promote_reused(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    artifact_store: ArtifactStoreResource,
    reused: dg.Output,
    test_data: Callable[[], Any],
) -> dg.Output:
    """The scores depend only on the model and the test split, so they may come from the run
    cache; whether the model becomes prod is this run's decision, made again against today's prod
    (reading the test split only if that needs it)."""
    store = artifact_store.store()
    test_mae = float(store.load(reused.value.version.ref)["test_mae"])
    facts = _promotion(context, config, store, loaded_artifacts(context)["inference_pipeline"], test_mae, test_data)
    # The comparison the earlier run made is not this run's: only this run's facts are shown, first
    # after the line saying the scores were reused.
    earlier = {k: v for k, v in reused.metadata.items() if k not in COMPARISON_KEYS and k not in facts}
    leading = {k: earlier.pop(k) for k in [REUSE_DESCRIPTION_KEY] if k in earlier}
    if REUSE_DESCRIPTION_KEY in leading:
        # The scores were not computed again, but the decision against today's prod was.
        reused_ref = str(reused.value.version.ref)
        run = str(reused.tags.get(REUSED_TAG, "unknown"))[:8] if reused.tags else "unknown"
        leading[REUSE_DESCRIPTION_KEY] = (
            f"Reused {reused_ref} from run {run}: same model and test split, so its scores, tables and pictures "
            "below are that run's; the comparison with prod and the decision are this run's (first below)."
        )
    return dg.Output(reused.value, metadata={**leading, **facts, **earlier}, tags=reused.tags)


def _promotion(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    store: Any,
    challenger: str,
    test_mae: float,
    test_data: Callable[[], Any],
) -> dict[str, Any]:
    """Champion against challenger, prod moved if the challenger wins; what the page shows of it."""
    promotion = promote(
        store,
        run_resolver(context),
        challenger,
        test_mae,
        test_data,
        load=lambda ref: stored_value(context, ref),
        min_improvement=config.min_improvement,
        min_unseen_rows=config.min_unseen_rows,
        apply=config.promote,
        actor=f"dagster run {context.run.run_id}",
    )
    context.log.info(f"Promotion: {promotion.outcome}")
    _mark_prod(context, promotion)
    # The page leads with the comparison and the decision, then where prod is: what a person opens it for.
    facts = promotion.metadata()
    leading = {key: facts.pop(key) for key in ("promotion", "prod_model", "promoted")}
    return {**_head_to_head_table(promotion, test_mae), **leading, **facts}


def _mark_prod(context: dg.AssetExecutionContext, promotion: Promotion) -> None:
    """An observation of inference_pipeline naming the version that holds `prod` after this run's
    decision, so the model's own page says which version is prod now (its materialization
    only knows the aliases it had when it was stored). For an asset that is materialized, Dagster
    reads data versions from materializations only, so the observation moves no "Unsynced" mark."""
    facts = promotion.metadata()
    prod = str(facts["prod_model"])
    if prod == "none":
        return
    if promotion.promoted:
        change = "promoted to prod by this run"
    elif prod == promotion.decision.champion:
        change = "stays prod"
    else:
        change = "moved there by another writer while this run decided"
    context.log_event(
        prod_observation(
            prod, change, f"decided by model_evaluation in run {context.run.run_id[:8]}",
            evaluated_model=facts["evaluated_model"], promotion=facts["promotion"],
        )
    )


def prod_observation(prod: str | None, change: str, why: str, **metadata: Any) -> dg.AssetObservation:
    """The observation of inference_pipeline naming the version that holds `prod` (None: none
    does), logged by model_evaluation after its decision and by `rental-pipeline artifacts alias`
    after a move by hand, so the model's page never names a holder that has since lost prod."""
    said = f"★ prod: {prod} ({change})" if prod else f"no version holds prod ({change})"
    return dg.AssetObservation(
        asset_key="inference_pipeline",
        description=f"{prod} holds prod ({change}; {why})" if prod else f"no version holds prod ({change}; {why})",
        metadata={"prod": said, **metadata},
        tags={PROD_TAG: prod.rpartition(":")[2] if prod else "none"},  # a tag value may not hold a colon: v3
    )


@dg.asset(
    group_name="model",
    kinds={"scikitlearn"},
    metadata={"artifact_type": "evaluation"},
    code_version=code_version(__name__, loads_models=True),
    description="Test MAE and R² of the inference pipeline, the listings it got most wrong, and whether it "
    "became prod (champion/challenger on the test listings neither model trained on)." + CHARTS_NOTE,
)
@reusable(on_hit=_promote_reused)
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    artifact_store: ArtifactStoreResource,
    inference_pipeline: Any,
    test_data: Any,
    settings: Settings,
) -> dg.Output:
    from rental_pipeline.evaluation import evaluate_pipeline

    store = artifact_store.store()
    challenger = loaded_artifacts(context)["inference_pipeline"]
    _refuse_leaked_test(store, challenger, loaded_artifacts(context)["test_data"], test_data, context)
    evaluation = evaluate_pipeline(inference_pipeline, test_data)
    context.log.info(f"Test MAE {evaluation.mae:.2f}, R² {evaluation.r2:.3f} on {evaluation.rows:,} listings")
    facts = _promotion(context, config, store, challenger, evaluation.mae, lambda: test_data)
    from rental_pipeline.assets.metadata import model_quality_metadata, table

    worst = evaluation.worst_errors
    # JSON has no NaN: a listing without a name is stored with a null name.
    records = worst.astype(object).where(worst.notna(), None).to_dict(orient="records")
    value = {**evaluation.metrics(), "worst_errors": records}
    return dg.Output(
        value,
        metadata={
            **facts,
            "test_mae": evaluation.mae,
            "test_r2": evaluation.r2,
            "test_rows": evaluation.rows,
            **(
                model_quality_metadata(evaluation.scored, "test", plots=settings.plots)
                if evaluation.scored is not None
                else {}
            ),
            "worst_errors": table(worst),
            "errors_by_borough": table(evaluation.by_borough),
        },
    )


def _head_to_head_table(promotion: Promotion, test_mae: float) -> dict[str, Any]:
    """Champion against challenger as a small table: each model, whether it holds prod now, the
    test listings it trained on, and its MAE on the listings both were judged on. With no other
    prod to compare with, the evaluated model alone, with its MAE on the whole test split."""
    import pandas as pd

    from rental_pipeline.assets.metadata import table

    decision, h = promotion.decision, promotion.decision.head_to_head
    prod = promotion.metadata()["prod_model"]

    def marker(model: str | None) -> str:
        return "★ prod" if model == prod else ""

    if h is None or decision.champion == decision.challenger:
        columns = ["model", "role", "prod now", "MAE on the whole test split"]
        if decision.champion is not None and decision.champion != decision.challenger:
            # A prod it could not be compared with (its training data is not readable): still on
            # the table, holding prod, rather than passing for "no prod before".
            why = "the test listings it trained on are not readable"
            if decision.older_than_prod:
                newer, older = decision.champion_week, decision.challenger_week
                why = f"it trained on a newer week ({newer}) than the challenger ({older})"
            frame = pd.DataFrame(
                [
                    (decision.challenger, "challenger (evaluated)", marker(decision.challenger), round(test_mae, 3)),
                    (decision.champion, f"champion (prod before this run), not compared: {why}",
                     marker(decision.champion), None),
                ],
                columns=columns,
            )
            return {"champion_vs_challenger": table(frame)}
        role = "challenger (evaluated), already prod" if decision.champion == decision.challenger else (
            "challenger (evaluated), no prod before")
        frame = pd.DataFrame([(decision.challenger, role, marker(decision.challenger), round(test_mae, 3))],
                             columns=columns)
        return {"champion_vs_challenger": table(frame)}
    rows = [
        (decision.challenger, "challenger (evaluated)", marker(decision.challenger), h.challenger_trained_on,
         h.challenger_mae),
        (decision.champion, "champion (prod before this run)", marker(decision.champion), h.champion_trained_on,
         h.champion_mae),
    ]
    frame = pd.DataFrame(
        rows, columns=["model", "role", "prod now", "test listings it trained on", f"MAE on the {h.rows:,} unseen"]
    )
    return {"champion_vs_challenger": table(frame.round(3))}


def _refuse_leaked_test(
    store: Any, model: str, test_ref: str, test_data: Any, context: dg.AssetExecutionContext
) -> None:
    """A test score is honest only on listings the model did not train on. The split guarantees
    it for its own two sides, but a model and a test_data from different splits (one side
    re-materialized alone with another seed, a pin) can share listings: refuse to score those."""
    trained = training_listings(store, model, lambda ref: stored_value(context, ref))
    if not trained:
        return
    leaked = int(test_data["id"].isin(trained).sum())
    if leaked:
        raise dg.Failure(
            description=f"{model} trained on {leaked:,} of the {len(test_data):,} listings of {test_ref}, so its "
            "test score would be dishonest. Materialize split_listings with both sides and train on its "
            "trainval_data, or pin a test_data from the same split as the model's training data.",
            metadata={"model": model, "test_data": test_ref, "leaked_listings": leaked},
        )
