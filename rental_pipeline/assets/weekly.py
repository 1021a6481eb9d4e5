"""`weekly_raw_data` and `weekly_clean_sample`: the listings drop of each week, a partition each.

The same reading and cleaning as `raw_data` and `clean_sample`, one week per partition, stored as
`raw_data.<week>` and `clean_sample.<week>` (`rental_pipeline.partitions` says why they are
assets of their own). A run names its week: `dagster asset materialize --partition 2024-03-04`,
the landing sensor and the weekly schedule, or a backfill of a range of weeks. With no file
configured, a week is one of a plausible synthetic sequence (`rental_pipeline.synthetic_weeks`).
"""

from typing import Any

import dagster as dg
from pydantic import Field

from rental_pipeline.assets.cleaning import CleaningConfig, clean_drop
from rental_pipeline.assets.ingest import RawDataConfig, fixed_by_config, read_drop
from rental_pipeline.code_version import code_version
from rental_pipeline.partitions import WEEKS
from rental_pipeline.reuse import reusable
from rental_pipeline.settings import Settings

WEEKS_GROUP = "weeks"


class WeeklyRawDataConfig(RawDataConfig):
    """Where a week's listings come from. No source: that week of the synthetic sequence."""

    drift: bool = Field(
        default=False,
        description="Synthetic weeks only: make this week drift (most Manhattan listings leave, the outer "
        "boroughs grow, prices rise), to see a bad week stopped by its checks.",
    )

    def used(self) -> dict:
        return {**super().used(), **({"drift": True} if self.drift and not self.source else {})}


@dg.asset(
    group_name=WEEKS_GROUP,
    kinds={"pandas"},
    metadata={"artifact_type": "raw_data"},
    code_version=code_version(__name__),
    partitions_def=WEEKS,
    description="One week's raw listings drop, exactly as received; stored as raw_data.<week>.",
)
@reusable(cacheable=fixed_by_config)
def weekly_raw_data(context: dg.AssetExecutionContext, config: WeeklyRawDataConfig, settings: Settings) -> dg.Output:
    return read_drop(context, config, settings, week=context.partition_key)


@dg.asset(
    group_name=WEEKS_GROUP,
    kinds={"pandas"},
    metadata={"artifact_type": "clean_sample"},
    code_version=code_version(__name__),
    partitions_def=WEEKS,
    description="One week's clean listings (the clean_sample rules); stored as clean_sample.<week>.",
)
@reusable
def weekly_clean_sample(
    context: dg.AssetExecutionContext, config: CleaningConfig, weekly_raw_data: Any, settings: Settings
) -> dg.Output:
    return clean_drop(context, config, weekly_raw_data, settings)
