"""`batch_predictions`: a listings file scored by the prod model (or any pinned version)."""

import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from rental_pipeline.assets.ingest import SourceConfig, fixed_by_config, warn_if_kept_by_dagster
from rental_pipeline.assets.metadata import CHARTS_NOTE
from rental_pipeline.code_version import code_version
from rental_pipeline.io_manager import ArtifactStoreResource
from rental_pipeline.records import USES_ARTIFACTS_KEY
from rental_pipeline.reuse import reusable
from rental_pipeline.run_state import run_resolver
from rental_pipeline.settings import Settings
from rental_pipeline.sources import SourceError, copy_source, describe


class BatchPredictionsConfig(SourceConfig):
    """The listings to price (no source: synthetic ones) and the model version to price them with."""

    model: str | None = Field(
        default=None,
        description="Version or alias of inference_pipeline to score with. Empty: prod, or the version the "
        "io_manager's pins name.",
    )
    rows: int = Field(default=1_000, ge=1, description="Synthetic listings to price when no source is given.")
    seed: int = Field(default=2026, description="Seed of those synthetic listings.")
    chunk_rows: int = Field(default=100_000, ge=1, description="Rows scored at a time.")


def scored_model(
    context: dg.AssetExecutionContext, config: BatchPredictionsConfig, artifact_store: ArtifactStoreResource
) -> dict[str, str]:
    """The model version the listings are scored with, as asset name -> `name:vN`: the one named
    in config, else the pinned one, else prod, the same for the whole run. Read from the store by
    the asset itself, so it is an input of the run-cache key like the ones Dagster loads."""
    store = artifact_store.store()
    resolver = run_resolver(context)
    name, _, tag = (config.model or "prod").rpartition(":")
    name = name or "inference_pipeline"
    wanted = f"{name}:{tag}"
    pin = resolver.pins.get(name)
    # A pin is a version chosen on purpose, for every reader of the model in the run (like an input).
    model_ref = resolver.input(name).ref if pin else resolver.alias(name, tag)
    if pin and config.model is not None and (not store.exists(wanted) or store.get(wanted).ref != model_ref):
        raise dg.Failure(
            description=f"batch_predictions was told to score with {wanted} (its config) and with {model_ref} "
            "(the io_manager's pins): remove one of them."
        )
    if model_ref is None:
        raise dg.Failure(
            description=f"No model {wanted} in the store at {store.root}: materialize the training assets first "
            "(training_job promotes its first model to prod) or set `model` to a version such as v0 or latest."
        )
    return {name: model_ref}


@dg.asset(
    group_name="model",
    kinds={"pandas", "scikitlearn"},
    deps=["model_evaluation"],  # after the promotion gate has decided which model is prod
    metadata={"artifact_type": "predictions"},
    code_version=code_version(__name__, loads_models=True),
    description="Listings priced by the prod inference pipeline; rows it cannot use carry an error instead."
    + CHARTS_NOTE,
)
@reusable(cacheable=fixed_by_config, extra_inputs=scored_model)
def batch_predictions(
    context: dg.AssetExecutionContext,
    config: BatchPredictionsConfig,
    artifact_store: ArtifactStoreResource,
    settings: Settings,
) -> dg.Output:
    store = artifact_store.store()
    [model_ref] = scored_model(context, config, artifact_store).values()
    import pandas as pd

    from rental_pipeline.assets.metadata import frame_metadata, quantile_table, table
    from rental_pipeline.predict import ERROR, PREDICTION, PredictionError, check_model, predict_csv
    from rental_pipeline.synthetic import generate_listings

    model = store.load(model_ref)
    try:
        check_model(model, f"{model_ref} ({store.get(model_ref).type})")
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / "listings.csv"
            if config.source:
                warn_if_kept_by_dagster(context, config.source)
                copy_source(
                    config.source,
                    source,
                    config.policy(settings),
                    timeout=config.timeout_seconds,
                    auth_variable=config.auth_header_variable,
                )
            else:
                generate_listings(rows=config.rows, seed=config.seed).to_csv(source, index=False)
            scored_path = Path(scratch) / "scored.csv"
            summary = predict_csv(model, source, scored_path, chunk_rows=config.chunk_rows)
            scored = pd.read_csv(scored_path, dtype={ERROR: "str"}, keep_default_na=False, na_values=[""])
    except (SourceError, PredictionError) as error:
        shown = describe(config.source) if config.source else "synthetic listings"
        described = f"{shown}: {error}" if isinstance(error, PredictionError) else str(error)
        raise dg.Failure(description=described) from None
    context.log.info(f"Priced {summary.predicted:,} of {summary.rows:,} listings with {model_ref}")
    predicted = scored[PREDICTION].dropna()
    described = {k: v for k, v in frame_metadata(scored).items() if k not in ("price_quantiles", "dagster/row_count")}
    return dg.Output(
        scored,
        metadata={
            "dagster/row_count": len(scored),
            "predicted": summary.predicted,
            "failed": summary.failed,
            "model": model_ref,
            USES_ARTIFACTS_KEY: model_ref,
            "source": (
                describe(config.source) if config.source else f"synthetic (rows={config.rows}, seed={config.seed})"
            ),
            "rows_per_second": round(summary.rows_per_second),
            "median_predicted_price": float(predicted.median()) if len(predicted) else float("nan"),
            # of the predictions: the input's own price column (if any) says nothing about the model
            **({"predicted_price_quantiles": quantile_table(predicted)} if len(predicted) else {}),
            **(_price_plot(predicted, model_ref) if len(predicted) and settings.plots else {}),
            "failed_rows": table(scored.loc[scored[ERROR].notna(), ["id", ERROR]].head(20).reset_index(drop=True)),
            **described,
        },
    )


def _price_plot(predicted: Any, model_ref: str) -> dict[str, Any]:
    from rental_pipeline.assets.metadata import image
    from rental_pipeline.plots import price_distribution

    png = price_distribution({"predicted_price": predicted}, title=f"Nightly prices predicted by {model_ref}")
    return {"predicted_price_plot": image(png, "predicted price distribution")}
