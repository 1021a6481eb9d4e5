"""The code location: assets, jobs and resources, wired together and nothing else."""

from __future__ import annotations

import dagster as dg

from rental_pipeline.assets import cleaning, evaluation, ingest, split, training
from rental_pipeline.home import project_home

all_assets = dg.load_assets_from_modules([ingest, cleaning, split, training, evaluation])

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.all(),
    description="The whole graph: raw listings to evaluated inference pipeline.",
)


def default_io_manager() -> dg.ConfigurableIOManager:
    return dg.FilesystemIOManager(base_dir=str(project_home() / "storage"))


defs = dg.Definitions(
    assets=all_assets,
    jobs=[training_job],
    resources={"io_manager": default_io_manager()},
    # One process for the whole run: the graph is a chain, so per-step processes only add start-up.
    executor=dg.in_process_executor,
)
