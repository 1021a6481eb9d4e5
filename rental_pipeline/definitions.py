"""The code location: assets, jobs and resources, wired together and nothing else."""

from __future__ import annotations

from typing import Any

import dagster as dg

from rental_pipeline.assets import cleaning, evaluation, ingest, prediction, split, sweep, training, week_view, weekly
from rental_pipeline.automation import all_schedules, all_sensors
from rental_pipeline.checks import all_checks
from rental_pipeline.io_manager import ArtifactIOManager, ArtifactStoreResource, artifact_io_manager
from rental_pipeline.tracking.run_tracker import WandbRunTracker
from rental_pipeline.weekly_checks import weekly_checks

all_assets = dg.load_assets_from_modules([ingest, cleaning, split, training, evaluation, prediction, sweep])
# One partition a week (`rental_pipeline.partitions`): beside the graph, never in a run that names no week.
weekly_assets = dg.load_assets_from_modules([weekly, week_view])
WEEKLY = dg.AssetSelection.groups(weekly.WEEKS_GROUP)

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets("batch_predictions", "sweep_leaderboard") - WEEKLY,
    description="Raw listings to an evaluated inference pipeline, promoted to prod if it is better.",
)

sweep_job = dg.define_asset_job(
    "sweep_job",
    selection=dg.AssetSelection.assets("sweep_leaderboard"),
    description="Train every configuration of a grid (run config) on trainval and rank them by validation MAE.",
)

predict_job = dg.define_asset_job(
    "predict_job",
    selection=dg.AssetSelection.assets("batch_predictions"),
    description="Price a listings file with the prod model (config: ops.batch_predictions.config.source).",
)

checks_job = dg.define_asset_job(
    "checks_job",
    selection=dg.AssetSelection.checks_for_assets(*all_assets),  # not the weekly checks: they need a week
    description="Every data check against the stored values; materializes nothing.",
)


# Each run is tracked on W&B: the tracker listens to the run's store (see `tracking.run_tracker`).
ArtifactIOManager.trackers = (WandbRunTracker.start,)


weekly_job = dg.define_asset_job(
    "weekly_job",
    selection=WEEKLY,
    description="One week's drop, read and cleaned, with its checks (a partition per week; backfill a range).",
)

weekly_training_job = dg.define_asset_job(
    "weekly_training_job",
    selection=WEEKLY | dg.AssetSelection.assets("trainval_data", "test_data", "inference_pipeline", "model_evaluation"),
    description="A week's drop, then a model trained on the last weeks (ops.split_listings.config.weeks, default 1) "
    "and evaluated on that week's listings it did not train on; promoted to prod if it is better.",
)


def default_resources() -> dict[str, Any]:
    """The artifact store, mirrored to W&B (offline unless credentials say otherwise).

    The store's root is run config (`resources: {artifact_store: {config: {root: ...}}}`), else
    `$RENTAL_PIPELINE_STORE`, else `$RENTAL_PIPELINE_HOME/artifacts`. The IO manager takes the run's
    `artifact_store` resource by key (`artifact_io_manager`), so whichever way the root is given,
    every write, flag and alias move of a run lands in the one store the assets and checks use. The
    IO manager also reads the run's `Settings` from the environment as each run starts, and hands
    them to the asset steps (`rental_pipeline.reuse`).
    """
    return {"artifact_store": ArtifactStoreResource(), "io_manager": artifact_io_manager}


defs = dg.Definitions(
    assets=[*all_assets, *weekly_assets],
    asset_checks=[*all_checks, *weekly_checks],
    jobs=[training_job, checks_job, sweep_job, predict_job, weekly_job, weekly_training_job, sweep.train_best_job],
    schedules=all_schedules,
    sensors=all_sensors,
    resources=default_resources(),
    # One process for the whole run: the graph is a chain, so per-step processes only add start-up.
    executor=dg.in_process_executor,
)
