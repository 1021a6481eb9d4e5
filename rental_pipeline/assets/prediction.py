"""`batch_predictions`: a listings file scored by the prod model (or any pinned version)."""

import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from rental_pipeline.code_version import code_version
from rental_pipeline.io_manager import (
    USES_ARTIFACTS_KEY,
    ArtifactStoreResource,
    reused_output,
    reused_outputs,
    run_resolver,
)


class BatchPredictionsConfig(dg.Config):
    source: str | None = Field(
        default=None,
        description="Path, file:// or http(s):// URL of a CSV of listings to price. Empty: synthetic listings.",
    )
    model: str = Field(default="prod", description="Version or alias of inference_pipeline to score with.")
    rows: int = Field(default=1_000, ge=1, description="Synthetic listings to price when no source is given.")
    seed: int = Field(default=2026, description="Seed of those synthetic listings.")
    chunk_rows: int = Field(default=100_000, ge=1, description="Rows scored at a time.")
    timeout_seconds: float = Field(default=30.0, gt=0)


@dg.asset(
    group_name="model",
    kinds={"pandas", "scikitlearn"},
    deps=["model_evaluation"],  # after the promotion gate has decided which model is prod
    metadata={"artifact_type": "predictions"},
    code_version=code_version(__name__),
    description="Listings priced by the prod inference pipeline; rows it cannot use carry an error instead.",
)
def batch_predictions(
    context: dg.AssetExecutionContext, config: BatchPredictionsConfig, artifact_store: ArtifactStoreResource
) -> dg.Output:
    store = artifact_store.store()
    name, _, tag = config.model.rpartition(":")
    name = name or "inference_pipeline"
    wanted = f"{name}:{tag}"
    model_ref = run_resolver(context).alias(name, tag)
    if model_ref is None:
        raise dg.Failure(
            description=f"No model {wanted} in the store at {store.root}: materialize the training assets first "
            "(training_job promotes its first model to prod) or set `model` to a version such as v0 or latest."
        )
    # A file may change under the same name; synthetic listings are fixed by config.
    if not config.source and (hits := reused_outputs(context, {name: model_ref})):
        return reused_output(context, hits["batch_predictions"])
    import pandas as pd

    from rental_pipeline.assets.metadata import frame_metadata, table
    from rental_pipeline.listings import fetch_source
    from rental_pipeline.predict import ERROR, PREDICTION, predict_csv
    from rental_pipeline.synthetic import generate_listings

    model = store.load(model_ref)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "listings.csv"
        if config.source:
            source.write_bytes(fetch_source(config.source, timeout=config.timeout_seconds))
        else:
            generate_listings(rows=config.rows, seed=config.seed).to_csv(source, index=False)
        scored_path = Path(scratch) / "scored.csv"
        summary = predict_csv(model, source, scored_path, chunk_rows=config.chunk_rows)
        scored = pd.read_csv(scored_path, dtype={ERROR: "str"}, keep_default_na=False, na_values=[""])
    context.log.info(f"Priced {summary.predicted:,} of {summary.rows:,} listings with {model_ref}")
    return dg.Output(
        scored,
        metadata={
            "model": model_ref,
            USES_ARTIFACTS_KEY: model_ref,
            "source": config.source or f"synthetic (rows={config.rows}, seed={config.seed})",
            "predicted": summary.predicted,
            "failed": summary.failed,
            "rows_per_second": round(summary.rows_per_second),
            "median_predicted_price": float(scored[PREDICTION].median()),
            "failed_rows": table(scored.loc[scored[ERROR].notna(), ["id", ERROR]].head(20).reset_index(drop=True)),
            **{k: v for k, v in frame_metadata(scored).items() if k != "price_histogram"},
        },
    )
