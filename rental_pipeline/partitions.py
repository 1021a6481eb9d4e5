"""Weekly partitions in Dagster: the definition, and which week (so which store name) a step uses.

Weekly rather than dynamic partitions: every week has its slot from `FIRST_WEEK` on whether or not
its drop came, so the catalog shows a missing week as missing; a late drop, or a corrected one,
is just another materialization of a past week's partition (a new version of that week's
artifact, `raw_data.<week>:vN`, never of the newest week's); a manual run or a backfill names
weeks that exist without anyone adding keys first (dynamic partitions must be added to the
instance before `dagster asset materialize --partition` accepts them); and a drop is mapped to
its week by a date (in its file name, else when it landed), which is all a weekly cadence needs.

Only the weekly assets are partitioned: `weekly_raw_data`, `weekly_clean_sample` and their checks
(the same rules as the plain assets', judged per week, so one week failing blocks that week only).
The plain `raw_data` and `clean_sample` stay unpartitioned, and `training_job` with them, so a run
that names no week (`make run`, `dagster job execute -j training_job`) works as it always did,
with its figures, pins and refs (`raw_data:vN`). They cannot be the same assets: Dagster cannot run
a partitioned asset whose partitioned parent has materializations, nor a partitioned check, in a
run without a partition key, so one partitioned `raw_data` would make every run name a week and
every existing store name change. A week's store name comes from the plain one
(`rental_pipeline.weeks.store_name`), so in the store and W&B a week is `raw_data.<week>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from rental_pipeline.weeks import FIRST_WEEK, WEEKLY_PREFIX, store_name

PARTITION_TAG = "dagster/partition"

# Monday to Sunday; the week under way is a partition too (end_offset=1): a drop lands in its week.
WEEKS = dg.WeeklyPartitionsDefinition(start_date=FIRST_WEEK, day_offset=1, end_offset=1)


def week_of_run(tags: Mapping[str, str]) -> str | None:
    """The week a run targets (its partition), or None for a run that names none."""
    return tags.get(PARTITION_TAG) or None


def is_partitioned(step: Any, key: dg.AssetKey) -> bool:
    """Whether asset ``key`` of the step's job is partitioned."""
    return step.job_def.asset_layer.get(key).partitions_def is not None


def output_name(context: dg.OutputContext) -> str:
    """The store name an output is written under: `<asset>.<week>` for a week, else the plain name."""
    asset = context.asset_key.to_user_string()
    if not context.has_asset_partitions:
        return asset
    keys = context.asset_partition_keys
    if len(keys) != 1:
        raise dg.Failure(f"{asset}: one week per run, got {len(keys)} ({keys[0]}...{keys[-1]})")
    return store_name(asset, keys[0])


def input_name(context: dg.InputContext, step: Any) -> str | None:
    """The store name an input is read from: the week of a weekly asset the step reads (its own
    week for a weekly step, the run's week for a step that is not partitioned), else the plain name;
    None for a plain input this run does not read (`replaced_by_week`)."""
    asset = context.asset_key.to_user_string()
    if step is not None and replaced_by_week(step, context.asset_key):
        return None
    if step is None or not is_partitioned(step, context.asset_key):
        return asset
    keys = context.asset_partition_keys if context.has_partition_key else []
    week = keys[0] if len(keys) == 1 else week_of_run(step.dagster_run.tags)
    if week is None:
        raise dg.Failure(f"{asset} is weekly: name the week this run reads (a partition, e.g. --partition 2024-03-04)")
    return store_name(asset, week)


def replaced_by_week(step: Any, key: dg.AssetKey) -> bool:
    """Whether plain input ``key`` is not read because the run names a week and its job makes that
    week of the weekly twin (`weekly_clean_sample`): the step reads the week from the store instead."""
    twin = dg.AssetKey(f"{WEEKLY_PREFIX}{key.to_user_string()}")
    return week_of_run(step.dagster_run.tags) is not None and step.job_def.asset_layer.has(twin)


def run_week(context: dg.AssetExecutionContext) -> str | None:
    """The week the step's run names, or None."""
    return week_of_run(context.run.tags)


def asset_store_name(context: dg.AssetExecutionContext, key: dg.AssetKey) -> str | None:
    """The store name of asset ``key`` for an asset step: the step's week if ``key`` is partitioned;
    None for a plain input the run does not read (`replaced_by_week`)."""
    step = context.op_execution_context.get_step_execution_context()
    if replaced_by_week(step, key):
        return None
    if not is_partitioned(step, key):
        return key.to_user_string()
    return store_name(key.to_user_string(), week_of_run(step.dagster_run.tags))
