"""A training job run with a process per step, for the resolver tests (imported by the child
processes Dagster starts, so it lives in a module, not in a test function)."""

import dagster as dg

from rental_pipeline.checks import all_checks
from rental_pipeline.definitions import all_assets, default_resources

SELECTION = ["raw_data", "clean_sample", "trainval_data", "test_data"]


def multiprocess_training_job() -> dg.JobDefinition:
    job = dg.define_asset_job("multiprocess_training_job", selection=SELECTION, executor_def=dg.multiprocess_executor)
    defs = dg.Definitions(assets=all_assets, asset_checks=all_checks, jobs=[job], resources=default_resources())
    return defs.resolve_job_def("multiprocess_training_job")
