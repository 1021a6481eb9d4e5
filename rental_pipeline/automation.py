"""Weekly retraining: a Monday-morning schedule and a sensor on the landing folder.

Both start `weekly_training_job` for the drop's week (a partition): `weekly_raw_data` reads the
drop as that week's, and the model is retrained on the window of weeks ending there; every other
stage keeps its configured defaults. The sensor finds a drop's week in its file name
(`listings_2024-03-06.csv`, so a late or corrected drop for a past week makes a new version of
that week), else takes the week it landed in; the schedule's week is the one its Monday starts.
They are off until someone turns them on, in the UI (Automation), with `dagster schedule start` /
`dagster sensor start`, or for a deployment by setting `RENTAL_PIPELINE_AUTOMATION=on` in the code
location's environment. Turning them on needs the Dagster daemon running: `dagster dev` starts
one; a Helm deployment runs one.

Declarative automation can also retrain when a new week lands: the training assets carry an
`AutomationCondition` (`RETRAIN_ON_NEW_WEEK`: a dependency was updated since the asset was last
requested or made, e.g. a week of `weekly_clean_sample`; no plain dependency is missing, none is in
progress), evaluated by the `retrain_on_new_week` automation sensor, which is stopped unless
`RENTAL_PIPELINE_RETRAIN_ON_NEW_WEEK=on` (or started in the UI). Its runs name no week: they retrain
as `training_job` does, on `clean_sample`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import dagster as dg

from rental_pipeline.landing import LandingCursor, folder_exists, landing_folder, scan
from rental_pipeline.settings import AUTOMATION_VARIABLE as AUTOMATION_VARIABLE
from rental_pipeline.settings import LANDING_VARIABLE, RETRAIN_VARIABLE, WEEKLY_SOURCE_VARIABLE, Settings
from rental_pipeline.sources import describe
from rental_pipeline.weeks import week_of

TRAINING_JOB = "weekly_training_job"

WEEKLY_CRON = "0 6 * * 1"  # Mondays 06:00
WEEKLY_TIMEZONE = "America/New_York"
LANDING_INTERVAL_SECONDS = 30


def automation_enabled() -> bool:
    """Off unless `RENTAL_PIPELINE_AUTOMATION` is on: a laptop should not start training by itself.
    Read as the code location loads: it sets the default status of the schedule and the sensor."""
    return Settings.from_environment().automation


# The training path's assets, retrained by declarative automation when a dependency (a new week) lands.
RETRAIN_TARGETS = ("trainval_data", "test_data", "inference_pipeline", "model_evaluation")
# Like `eager()`, but a week never made is not a missing dependency: the training assets depend on
# every week of `weekly_clean_sample`, most of which never arrive.
RETRAIN_ON_NEW_WEEK = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.groups("weeks"))
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("retrain when a new week lands")


def with_retrain_condition(assets: list) -> list:
    """``assets`` with `RETRAIN_ON_NEW_WEEK` on the training path's assets (the condition is always
    there; the sensor that evaluates it is what the setting turns on)."""
    return list(
        dg.map_asset_specs(
            lambda spec: spec.replace_attributes(automation_condition=RETRAIN_ON_NEW_WEEK)
            if spec.key.to_user_string() in RETRAIN_TARGETS
            else spec,
            assets,
        )
    )


def retrain_sensor(enabled: bool | None = None) -> dg.AutomationConditionSensorDefinition:
    """The sensor that evaluates `RETRAIN_ON_NEW_WEEK`: stopped unless ``enabled`` (default: the
    `RENTAL_PIPELINE_RETRAIN_ON_NEW_WEEK` setting)."""
    enabled = Settings.from_environment().retrain_on_new_week if enabled is None else enabled
    return dg.AutomationConditionSensorDefinition(
        "retrain_on_new_week",
        target=dg.AssetSelection.assets(*RETRAIN_TARGETS),
        default_status=dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED,
        description=f"Retrain when a new week lands (declarative automation on {', '.join(RETRAIN_TARGETS)}); "
        f"stopped unless ${RETRAIN_VARIABLE} is on. Its runs name no week.",
    )


def training_run_config(source: str | dict[str, str]) -> dict[str, Any]:
    """Run config of `weekly_training_job` that reads the week's drop from `source` (a path or URL,
    or `{"env": VARIABLE}` naming one) with every other default."""
    return {"ops": {"weekly_raw_data": {"config": {"source": source}}}}


@dg.schedule(
    name="weekly_training",
    cron_schedule=WEEKLY_CRON,
    execution_timezone=WEEKLY_TIMEZONE,
    job_name=TRAINING_JOB,
    default_status=dg.DefaultScheduleStatus.RUNNING if automation_enabled() else dg.DefaultScheduleStatus.STOPPED,
    description=f"Mondays 06:00 New York time: that week's drop from the listings at ${WEEKLY_SOURCE_VARIABLE} "
    "(a path or URL the provider refreshes weekly), and a retrained model. Skips, saying so, while that "
    "variable is unset.",
)
def weekly_training(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    source = Settings.from_environment().weekly_source
    if not source:
        return dg.SkipReason(
            f"{WEEKLY_SOURCE_VARIABLE} is not set: nothing to retrain on. Set it to the path or URL of the "
            f"weekly listings file, or drop files into the landing folder instead."
        )
    when = context.scheduled_execution_time or datetime.now(timezone.utc)
    week = week_of(when)
    # The run config names the variable rather than holding its value: a URL's query may carry a
    # token, and Dagster keeps run config (and tags) in its run history as they are.
    return dg.RunRequest(
        run_key=f"weekly:{week}",
        partition_key=week,
        run_config=training_run_config({"env": WEEKLY_SOURCE_VARIABLE}),
        tags={"rental_pipeline/trigger": "weekly_training", "rental_pipeline/source": describe(source)},
    )


@dg.sensor(
    name="landing_sensor",
    job_name=TRAINING_JOB,
    minimum_interval_seconds=LANDING_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING if automation_enabled() else dg.DefaultSensorStatus.STOPPED,
    description=f"One training run per new CSV in the landing folder (${LANDING_VARIABLE}, default "
    "$RENTAL_PIPELINE_HOME/landing), started once the file's size and time stop changing between two ticks, "
    "for the week a date in its name falls in (else the week it landed in).",
)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    settings = Settings.from_environment()
    folder = landing_folder(settings)
    if not folder_exists(folder):
        return dg.SensorResult(
            skip_reason=f"landing folder {folder} does not exist (create it, or set {LANDING_VARIABLE})",
            cursor=context.cursor,
        )
    found = scan(folder, LandingCursor.from_json(context.cursor), settings)
    run_requests = [
        dg.RunRequest(
            run_key=drop.run_key,
            partition_key=drop.week,
            run_config=training_run_config(str(drop.path)),
            tags={"rental_pipeline/trigger": "landing_sensor", "rental_pipeline/source": str(drop.path)},
        )
        for drop in found.ready
    ]
    for drop in found.ready:
        context.log.info(f"starting {TRAINING_JOB} for week {drop.week} on {drop.path} ({drop.size:,} bytes)")
    skip_reason = None
    if not run_requests:
        if found.waiting:
            names = ", ".join(drop.name for drop in found.waiting)
            skip_reason = f"waiting for {names} in {folder} to stop changing"
        else:
            skip_reason = f"no new CSV file in {folder}"
    return dg.SensorResult(run_requests=run_requests, skip_reason=skip_reason, cursor=found.cursor.to_json())


all_schedules = [weekly_training]
all_sensors = [landing_sensor, retrain_sensor()]
