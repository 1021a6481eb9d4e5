"""Weekly retraining: a Monday-morning schedule and a sensor on the landing folder.

Both start `weekly_training_job` for the drop's week (a partition): `weekly_raw_data` reads the
drop as that week's, and the model is retrained on the window of weeks ending there; every other
stage keeps its configured defaults. The sensor finds a drop's week in its file name
(`listings_2024-03-06.csv`, so a late or corrected drop for a past week makes a new version of
that week), else takes the week the sensor first saw the file in (`rental_pipeline.landing`); the
schedule's week is the one its Monday starts.
They are off until someone turns them on, in the UI (Automation), with `dagster schedule start` /
`dagster sensor start`, or for a deployment by setting `RENTAL_PIPELINE_AUTOMATION=on` in the code
location's environment. Turning them on needs the Dagster daemon running: `dagster dev` starts
one; a Helm deployment runs one.

A week can also land without training (a backfill, `weekly_job`, a click in the UI): the
`retrain_on_new_week` sensor, stopped unless `RENTAL_PIPELINE_RETRAIN_ON_NEW_WEEK=on` (or started in
the UI), then starts the training assets of `weekly_training_job` for the newest week whose checks
were judged and passed (`weeks.trainable`). It is a sensor rather than declarative automation
(`AutomationCondition`) because the training assets are not partitioned: the runs automation
requests for them name no week, so they would train on `clean_sample`, not on the week that
landed; a sensor's run names its week.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import dagster as dg

from rental_pipeline.landing import LandingCursor, folder_exists, landing_folder, scan
from rental_pipeline.partitions import PARTITION_TAG
from rental_pipeline.promotion import MODEL, PROD, newest_week, newest_week_version
from rental_pipeline.settings import AUTOMATION_VARIABLE as AUTOMATION_VARIABLE
from rental_pipeline.settings import LANDING_VARIABLE, RETRAIN_VARIABLE, WEEKLY_SOURCE_VARIABLE, Settings
from rental_pipeline.sources import describe
from rental_pipeline.weeks import newest_trainable_week, store_name, week_of

if TYPE_CHECKING:
    from rental_pipeline.store import ArtifactStore

TRAINING_JOB = "weekly_training_job"

WEEKLY_CRON = "0 6 * * 1"  # Mondays 06:00
WEEKLY_TIMEZONE = "America/New_York"
LANDING_INTERVAL_SECONDS = 30


def automation_enabled() -> bool:
    """Off unless `RENTAL_PIPELINE_AUTOMATION` is on: a laptop should not start training by itself.
    Read as the code location loads: it sets the default status of the schedule and the sensor."""
    return Settings.from_environment().automation


# The training path's assets: what a retraining on a newly landed week makes (its week's drop is
# already stored, so the run reads it rather than reading the drop again).
RETRAIN_TARGETS = ("trainval_data", "test_data", "inference_pipeline", "model_evaluation")


def retraining(store: ArtifactStore) -> dg.SensorResult:
    """What `retrain_on_new_week` asks for: one run of `weekly_training_job`'s training assets for
    the newest week in ``store`` whose checks were judged and passed (`weeks.newest_trainable_week`),
    unless a model already trained on that exact week version, or prod trained on a newer week
    (a model of an older week could never replace it: `promotion`).

    Read from the store alone, so nothing can wedge it: a week whose run is still judging its
    checks, or was killed before them, is not trainable yet; a week that failed is never the one
    named; a week its own run trained on (the landing sensor's, the schedule's) is done. The run
    key names the week version, so Dagster starts each at most once, however many ticks see it (a
    failed retraining is started again by hand)."""
    week = newest_trainable_week(store)
    if week is None:
        return dg.SensorResult(skip_reason="no week in the store has passed its checks yet: nothing to train on")
    newest = store.get(f"{store_name('clean_sample', week)}:latest").ref
    trained = next((model for model in _models(store) if newest_week_version(store, model) == newest), None)
    if trained is not None:
        return dg.SensorResult(skip_reason=f"{trained} trained on {newest}, the newest week that passed its checks")
    prod = store.get(f"{MODEL}:{PROD}").ref if store.exists(f"{MODEL}:{PROD}") else None
    prod_week = newest_week(store, prod) if prod else None
    if prod_week is not None and prod_week > week:
        return dg.SensorResult(
            skip_reason=f"{newest} is the newest week that passed its checks, but {PROD} {prod} trained on "
            f"{prod_week}, a newer week: a model of it could not replace {PROD}"
        )
    request = dg.RunRequest(
        run_key=f"retrain:{newest}",
        asset_selection=[dg.AssetKey(name) for name in RETRAIN_TARGETS],
        # The week as a tag, not `partition_key`: Dagster resolves a request's partition key against
        # the selected assets' partitions, and the training assets have none.
        tags={PARTITION_TAG: week, "rental_pipeline/trigger": "retrain_on_new_week", "rental_pipeline/week": newest},
    )
    return dg.SensorResult(run_requests=[request])


def _models(store: ArtifactStore) -> Iterator[str]:
    """Every stored model, newest first, read one at a time: the newest is usually the answer."""
    versions = store.versions(MODEL) if MODEL in store.names() else []
    return (f"{MODEL}:v{number}" for number in reversed(versions))


def retrain_sensor(enabled: bool | None = None) -> dg.SensorDefinition:
    """The `retrain_on_new_week` sensor: stopped unless ``enabled`` (default: the
    `RENTAL_PIPELINE_RETRAIN_ON_NEW_WEEK` setting)."""
    enabled = Settings.from_environment().retrain_on_new_week if enabled is None else enabled

    @dg.sensor(
        name="retrain_on_new_week",
        job_name=TRAINING_JOB,
        minimum_interval_seconds=LANDING_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED,
        description=f"Retrain when a week lands by a run that did not train (a backfill, weekly_job, the UI): "
        f"{', '.join(RETRAIN_TARGETS)} for the newest week that passed its checks, once; stopped unless "
        f"${RETRAIN_VARIABLE} is on.",
    )
    def retrain_on_new_week(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        from rental_pipeline.home import open_store

        return retraining(open_store(settings=Settings.from_environment()))

    return retrain_on_new_week


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
    "for the week of an ISO date in its name (else the week the sensor first saw it). A name with an "
    "unusable date is refused, and a drop for a week that has not begun waits for it.",
)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    # The week under way is the last partition: a drop for a later week waits, rather than asking
    # for a partition that does not exist (which would fail every tick, good drops included).
    from rental_pipeline.partitions import WEEKS

    settings = Settings.from_environment()
    folder = landing_folder(settings)
    if not folder_exists(folder):
        return dg.SensorResult(
            skip_reason=f"landing folder {folder} does not exist (create it, or set {LANDING_VARIABLE})",
            cursor=context.cursor,
        )
    last_week = WEEKS.get_last_partition_key()
    found = scan(folder, LandingCursor.from_json(context.cursor), settings, last_week=last_week)
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
    for refusal in found.refused:
        if refusal.new:
            context.log.warning(
                f"refused {refusal.drop.path}: {refusal.reason}. Not started; rename it with its week's "
                f"date as YYYY-MM-DD (e.g. listings_2024-03-06.csv), or with no date for the week it lands in"
            )
    for drop in found.not_due:
        if drop.name in found.newly_not_due:
            context.log.warning(
                f"not starting {drop.path} yet: its week, {drop.week}, has not begun (the last week is "
                f"{last_week}); it starts once that week begins"
            )
    notes = []
    if found.refused:
        notes.append(
            "refused (the name holds no usable date; rename it): "
            + "; ".join(refusal.reason for refusal in found.refused)
        )
    if found.not_due:
        notes.append(
            f"not started, its week has not begun (the last week is {last_week}): "
            + ", ".join(f"{drop.name} (week {drop.week})" for drop in found.not_due)
        )
    skip_reason = None
    if not run_requests:
        if found.waiting:
            names = ", ".join(drop.name for drop in found.waiting)
            skip_reason = f"waiting for {names} in {folder} to stop changing"
        elif notes:
            skip_reason = f"nothing to start in {folder}"
        else:
            skip_reason = f"no new CSV file in {folder}"
        skip_reason = "; ".join([skip_reason, *notes])
    return dg.SensorResult(run_requests=run_requests, skip_reason=skip_reason, cursor=found.cursor.to_json())


all_schedules = [weekly_training]
all_sensors = [landing_sensor, retrain_sensor()]
