"""The weekly schedule and the landing-folder sensor, evaluated as Dagster evaluates them, on real folders."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from rental_pipeline.automation import (
    AUTOMATION_VARIABLE,
    WEEKLY_SOURCE_VARIABLE,
    landing_sensor,
    training_run_config,
    weekly_training,
)
from rental_pipeline.landing import LANDING_VARIABLE, LandingCursor, landing_folder
from rental_pipeline.synthetic import generate_listings
from rental_pipeline.weeks import week_of
from rental_pipeline_tests.conftest import PROJECT_ROOT


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    monkeypatch.setenv(LANDING_VARIABLE, str(folder))
    return folder


@pytest.fixture
def dagster_instance() -> dg.DagsterInstance:
    # Sensor and schedule contexts need a persistent instance; DAGSTER_HOME is this test's own folder.
    with dg.DagsterInstance.get() as instance:
        yield instance


def materialize(instance: dg.DagsterInstance, config: dict, selection: list[str], partition_key: str):
    """A weekly run of the code location's assets, for the week a request names."""
    from rental_pipeline.definitions import default_resources, weekly_assets
    from rental_pipeline.weekly_checks import weekly_checks

    return dg.materialize(
        [*weekly_assets, *weekly_checks],
        instance=instance,
        selection=selection,
        run_config=config,
        partition_key=partition_key,
        resources=default_resources(),
    )


def write_drop(path: Path, rows: int = 40, seed: int = 1) -> Path:
    generate_listings(rows=rows, seed=seed).to_csv(path, index=False)
    return path


def tick(instance: dg.DagsterInstance, cursor: str | None):
    """One sensor evaluation, as the daemon does it: a fresh context carrying only the stored cursor."""
    return landing_sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repository())
    )


def repository() -> dg.RepositoryDefinition:
    """The code location's repository: a partitioned run request is checked against its job."""
    from rental_pipeline.definitions import defs

    return defs.get_repository_def()


def training_job_def():
    from rental_pipeline.definitions import defs

    return defs.resolve_job_def("weekly_training_job")


# -- schedule ---------------------------------------------------------------------------------


def test_weekly_schedule_targets_the_weekly_training_job_on_monday_mornings_in_new_york():
    assert weekly_training.cron_schedule == "0 6 * * 1"
    assert weekly_training.execution_timezone == "America/New_York"
    assert weekly_training.job_name == "weekly_training_job"
    assert weekly_training.default_status == dg.DefaultScheduleStatus.STOPPED


def test_weekly_schedule_skips_with_a_reason_until_a_source_is_configured(dagster_instance, monkeypatch):
    monkeypatch.delenv(WEEKLY_SOURCE_VARIABLE, raising=False)
    monday = dt.datetime(2026, 11, 30, 6, 0, tzinfo=ZoneInfo("America/New_York"))
    result = weekly_training.evaluate_tick(
        dg.build_schedule_context(
            instance=dagster_instance, scheduled_execution_time=monday, repository_def=repository()
        )
    )
    assert not result.run_requests
    assert WEEKLY_SOURCE_VARIABLE in result.skip_message


def test_weekly_schedule_trains_on_the_configured_source(dagster_instance, monkeypatch, tmp_path):
    source = write_drop(tmp_path / "weekly.csv")
    monkeypatch.setenv(WEEKLY_SOURCE_VARIABLE, str(source))
    monday = dt.datetime(2026, 11, 30, 6, 0, tzinfo=ZoneInfo("America/New_York"))
    result = weekly_training.evaluate_tick(
        dg.build_schedule_context(
            instance=dagster_instance, scheduled_execution_time=monday, repository_def=repository()
        )
    )
    assert result.skip_message is None
    [request] = result.run_requests
    assert request.run_key == "weekly:2026-11-30"
    assert request.partition_key == "2026-11-30"  # the week its Monday starts
    assert request.run_config == {"ops": {"weekly_raw_data": {"config": {"source": {"env": WEEKLY_SOURCE_VARIABLE}}}}}
    resolved = dg.validate_run_config(training_job_def(), request.run_config)
    assert resolved["ops"]["weekly_raw_data"]["config"]["source"] == str(source)


def test_weekly_schedule_keeps_a_url_token_out_of_the_run_record(dagster_instance, monkeypatch):
    monkeypatch.setenv(WEEKLY_SOURCE_VARIABLE, "https://data.example.com/listings.csv?token=s3cr3t-weekly")
    monday = dt.datetime(2026, 11, 30, 6, 0, tzinfo=ZoneInfo("America/New_York"))
    result = weekly_training.evaluate_tick(
        dg.build_schedule_context(
            instance=dagster_instance, scheduled_execution_time=monday, repository_def=repository()
        )
    )
    [request] = result.run_requests
    assert "s3cr3t" not in repr(request.run_config) + repr(request.tags)
    assert request.tags["rental_pipeline/source"] == "https://data.example.com/listings.csv?<redacted>"


# -- landing folder ----------------------------------------------------------------------------


def test_landing_folder_defaults_under_the_project_home(monkeypatch, tmp_path):
    monkeypatch.delenv(LANDING_VARIABLE, raising=False)
    monkeypatch.setenv("RENTAL_PIPELINE_HOME", str(tmp_path / "home"))
    assert landing_folder() == (tmp_path / "home" / "landing").resolve()
    monkeypatch.setenv(LANDING_VARIABLE, str(tmp_path / "drops"))
    assert landing_folder() == (tmp_path / "drops").resolve()


def test_missing_landing_folder_is_a_skip_that_names_it(dagster_instance, monkeypatch, tmp_path):
    monkeypatch.setenv(LANDING_VARIABLE, str(tmp_path / "nowhere"))
    result = tick(dagster_instance, None)
    assert not result.run_requests
    assert "nowhere" in result.skip_message and "does not exist" in result.skip_message


def test_one_run_per_new_file_once_it_is_stable_and_never_twice(dagster_instance, landing):
    assert "no new CSV" in tick(dagster_instance, None).skip_message

    first = write_drop(landing / "listings-2026-11-23.csv")
    # First sight: the file may still be growing, so it only becomes pending.
    seen = tick(dagster_instance, None)
    assert not seen.run_requests
    assert "listings-2026-11-23.csv" in seen.skip_message

    started = tick(dagster_instance, seen.cursor)
    [request] = started.run_requests
    stat = first.stat()
    assert request.run_key == f"{first.resolve()}:{stat.st_mtime_ns}:{stat.st_size}"
    assert request.partition_key == "2026-11-23"  # the week of the date in its name
    assert request.run_config == training_run_config(str(first.resolve()))
    assert request.tags["rental_pipeline/source"] == str(first.resolve())
    assert dg.validate_run_config(training_job_def(), request.run_config)

    # The same file again, however many ticks later: nothing.
    again = tick(dagster_instance, started.cursor)
    assert not again.run_requests
    assert not tick(dagster_instance, again.cursor).run_requests

    # A second file: exactly one more run, for that file only.
    second = write_drop(landing / "listings-2026-11-30.csv", seed=2)
    pending = tick(dagster_instance, again.cursor)
    assert not pending.run_requests
    [request] = tick(dagster_instance, pending.cursor).run_requests
    assert request.run_config == training_run_config(str(second.resolve()))
    assert request.partition_key == "2026-11-30"


def test_a_file_still_being_written_waits_until_it_stops_changing(dagster_instance, landing, tmp_path):
    whole = write_drop(tmp_path / "whole.csv", rows=200).read_bytes()
    growing = landing / "big.csv"
    growing.write_bytes(whole[: len(whole) // 2])

    first = tick(dagster_instance, None)
    assert not first.run_requests
    with growing.open("ab") as handle:  # the copy goes on between two ticks
        handle.write(whole[len(whole) // 2 :])
    still_changing = tick(dagster_instance, first.cursor)
    assert not still_changing.run_requests
    assert "big.csv" in still_changing.skip_message

    [request] = tick(dagster_instance, still_changing.cursor).run_requests
    assert request.run_key.endswith(f":{len(whole)}")


def test_partial_and_hidden_names_are_ignored_until_renamed(dagster_instance, landing):
    part = write_drop(landing / "week.csv.part")
    write_drop(landing / ".week.csv")
    (landing / "empty.csv").touch()
    (landing / "notes.txt").write_text("not a drop")
    (landing / "archive.csv").mkdir()

    cursor = None
    for _ in range(3):
        result = tick(dagster_instance, cursor)
        assert not result.run_requests
        assert result.skip_message.startswith("no new CSV")
        cursor = result.cursor

    part.rename(landing / "week.csv")  # the atomic rename that publishes the drop
    result = tick(dagster_instance, cursor)
    [request] = tick(dagster_instance, result.cursor).run_requests
    assert request.run_config == training_run_config(str((landing / "week.csv").resolve()))


def test_cursor_round_trip_survives_a_restart_and_forgets_files_that_left(dagster_instance, landing):
    a = write_drop(landing / "a.csv")
    b = write_drop(landing / "b.csv", seed=2)
    cursor = tick(dagster_instance, None).cursor
    result = tick(dagster_instance, cursor)
    assert sorted(r.run_config["ops"]["weekly_raw_data"]["config"]["source"] for r in result.run_requests) == [
        str(a.resolve()),
        str(b.resolve()),
    ]

    # The cursor is plain JSON that parses back to the same state, and a fresh context (a daemon
    # restart) with it starts nothing.
    state = LandingCursor.from_json(result.cursor)
    assert state.to_json() == result.cursor
    assert set(state.started) == {"a.csv", "b.csv"} and not state.pending
    assert not tick(dagster_instance, state.to_json()).run_requests

    # A file that leaves the folder is forgotten; a corrected file under an old name is a new drop.
    b.unlink()
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 1_000_000_000))
    after = tick(dagster_instance, result.cursor)
    assert set(LandingCursor.from_json(after.cursor).started) == {"a.csv"}
    [request] = tick(dagster_instance, after.cursor).run_requests
    assert request.run_key.startswith(f"{a.resolve()}:")
    assert request.run_key not in {r.run_key for r in result.run_requests}


def test_a_broken_cursor_is_an_error_not_a_silent_restart(dagster_instance, landing):
    write_drop(landing / "a.csv")
    with pytest.raises(Exception, match="cursor is not valid"):
        tick(dagster_instance, "{not json")


@pytest.mark.slow
def test_the_requested_run_reads_the_dropped_file_as_its_week(dagster_instance, landing, instance):
    drop = write_drop(landing / "drop.csv", rows=60, seed=3)
    [request] = tick(dagster_instance, tick(dagster_instance, None).cursor).run_requests
    landed = dt.datetime.fromtimestamp(drop.stat().st_mtime, dt.timezone.utc).date()
    assert request.partition_key == week_of(landed)  # no date in its name: the week it landed in
    week = request.partition_key
    result = materialize(instance, request.run_config, selection=["weekly_raw_data"], partition_key=week)
    [event] = result.get_asset_materialization_events()
    assert event.partition == request.partition_key
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["source"] == str(drop.resolve())
    assert metadata["dagster/row_count"] == 60
    assert metadata["artifact"] == f"raw_data.{request.partition_key}:v0"


@pytest.mark.slow
def test_schedule_and_sensor_are_registered_and_follow_the_automation_switch():
    script = (
        "from rental_pipeline.definitions import defs\n"
        "repo = defs.get_repository_def()\n"
        "print(repo.get_schedule_def('weekly_training').default_status.value,"
        " repo.get_sensor_def('landing_sensor').default_status.value,"
        " repo.get_sensor_def('landing_sensor').job_name)\n"
    )
    job = "weekly_training_job"
    for switch, expected in (("", f"STOPPED STOPPED {job}"), ("on", f"RUNNING RUNNING {job}")):
        env = {**os.environ, AUTOMATION_VARIABLE: switch}
        out = subprocess.run(
            [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == expected


def test_retraining_on_a_new_week_is_there_but_stopped_unless_its_setting_is_on(monkeypatch):
    from rental_pipeline.automation import retrain_sensor
    from rental_pipeline.definitions import defs
    from rental_pipeline.settings import RETRAIN_VARIABLE

    registered = defs.resolve_sensor_def("retrain_on_new_week")
    assert registered.default_status == dg.DefaultSensorStatus.STOPPED  # this test's environment sets nothing
    assert registered.job_name == "weekly_training_job"
    graph = defs.resolve_asset_graph()
    assert all(graph.get(key).automation_condition is None for key in graph.get_all_asset_keys())

    monkeypatch.delenv(RETRAIN_VARIABLE, raising=False)
    assert retrain_sensor().default_status == dg.DefaultSensorStatus.STOPPED
    monkeypatch.setenv(RETRAIN_VARIABLE, "on")
    assert retrain_sensor().default_status == dg.DefaultSensorStatus.RUNNING
    assert retrain_sensor(enabled=False).default_status == dg.DefaultSensorStatus.STOPPED


# -- a drop's week -----------------------------------------------------------------------------


def this_week() -> str:
    """The week under way, as the sensor's tick sees it (the last partition of WEEKS)."""
    from rental_pipeline.partitions import WEEKS

    return WEEKS.get_last_partition_key()


def weeks_after(week: str, count: int) -> str:
    return (dt.date.fromisoformat(week) + dt.timedelta(weeks=count)).isoformat()


def started(result) -> dict[str, str]:
    """File name -> week of each run a tick asks for."""
    return {
        Path(r.run_config["ops"]["weekly_raw_data"]["config"]["source"]).name: r.partition_key
        for r in result.run_requests
    }


def settle(instance: dg.DagsterInstance, cursor: str | None = None):
    """Two ticks: the first sees the folder, the second starts what stayed the same."""
    return tick(instance, tick(instance, cursor).cursor)


def test_a_drop_for_a_week_that_has_not_begun_waits_and_stops_nothing_else(dagster_instance, landing, capfd):
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    write_drop(landing / "listings_2099-01-01.csv")  # a date far ahead
    next_monday = weeks_after(this_week(), 1)
    write_drop(landing / f"listings_{next_monday}.csv", seed=2)  # next week's drop, dropped early
    skewed = write_drop(landing / "skewed.csv", seed=3)  # a writer whose clock is 8 days ahead
    os.utime(skewed, (now + 8 * 86_400, now + 8 * 86_400))
    write_drop(landing / "listings_2024-03-06.csv", seed=4)  # a good drop beside them

    result = settle(dagster_instance)
    # The good drops start (the skewed file in the week the sensor saw it, not its clock's);
    # nothing raises an unknown partition.
    assert started(result) == {"listings_2024-03-06.csv": "2024-03-04", "skewed.csv": this_week()}
    logged = capfd.readouterr().err
    assert f"its week, {next_monday}, has not begun" in logged and "listings_2099-01-01.csv" in logged

    # Not started, so not remembered as started: still waiting, for as long as its week is ahead.
    cursor = LandingCursor.from_json(result.cursor)
    assert set(cursor.started) == {"listings_2024-03-06.csv", "skewed.csv"}
    assert {"listings_2099-01-01.csv", f"listings_{next_monday}.csv"} <= set(cursor.pending)
    again = tick(dagster_instance, result.cursor)
    assert not again.run_requests
    assert "its week has not begun" in again.skip_message
    assert f"listings_{next_monday}.csv (week {next_monday})" in again.skip_message
    assert "has not begun" not in capfd.readouterr().err  # said once, not on every tick

    # Once its week begins (a look whose week under way is that one), the drop starts.
    from rental_pipeline.landing import scan

    later = scan(landing, LandingCursor.from_json(again.cursor), last_week=next_monday)
    assert [(d.name, d.week) for d in later.ready] == [(f"listings_{next_monday}.csv", next_monday)]
    assert [d.name for d in later.not_due] == ["listings_2099-01-01.csv"]


@pytest.mark.parametrize(
    "name, why",
    [
        ("listings_2018-12-31.csv", "2018-12-31 is before the first week, 2019-01-07"),
        ("listings_2024-02-30.csv", "2024-02-30 is not a day of the calendar"),
        ("listings_06-03-2024.csv", "06-03-2024 is not an ISO date"),
        ("listings_2024-3-6.csv", "2024-3-6 is not an ISO date"),
    ],
)
def test_a_name_with_an_unusable_date_is_refused_once_and_looked_at_again_when_renamed(
    dagster_instance, landing, capfd, name, why
):
    drop = write_drop(landing / name)
    first = tick(dagster_instance, None)
    assert not first.run_requests
    assert "refused" in first.skip_message and f"{name}: {why}" in first.skip_message
    logged = capfd.readouterr().err
    assert f"refused {drop.resolve()}: {name}: {why}" in logged  # a warning naming the file and why

    cursor = first.cursor
    for _ in range(2):  # never started, nor reported as new again
        result = tick(dagster_instance, cursor)
        assert not result.run_requests and why in result.skip_message
        cursor = result.cursor
    assert "refused" not in capfd.readouterr().err
    assert LandingCursor.from_json(cursor).refused == [name] and not LandingCursor.from_json(cursor).started

    drop.rename(landing / "listings_2024-03-06.csv")  # renamed with a usable date: a drop like any other
    assert started(settle(dagster_instance, cursor)) == {"listings_2024-03-06.csv": "2024-03-04"}


def test_a_date_is_a_whole_token_and_every_one_in_the_name_is_tried(dagster_instance, landing):
    write_drop(landing / "nyc_2023-2024_2024-03-06.csv")  # "2023-20-24" is no date; 2024-03-06 is
    write_drop(landing / "id_1202403061.csv", seed=2)  # digits inside a longer number: no date at all
    assert started(settle(dagster_instance)) == {
        "nyc_2023-2024_2024-03-06.csv": "2024-03-04",
        "id_1202403061.csv": this_week(),
    }


def test_a_file_with_no_date_goes_to_the_week_the_sensor_first_saw_it_not_its_modification_time(
    dagster_instance, landing
):
    copied = write_drop(landing / "listings.csv")  # copied with its time kept (cp -p, rsync -a, unzip)
    old = dt.datetime(2024, 3, 6, 12, tzinfo=dt.timezone.utc).timestamp()
    os.utime(copied, (old, old))
    assert started(settle(dagster_instance)) == {"listings.csv": this_week()}

    # The week is the one the sensor first saw the file in, kept in the cursor while the file
    # settles: a file first seen last week and found ready this week is last week's drop.
    fresh = write_drop(landing / "late.csv", seed=2)
    seen = tick(dagster_instance, None)
    state = LandingCursor.from_json(seen.cursor)
    mtime_ns, size, first_seen = state.pending[fresh.name]
    assert [mtime_ns, size] == [fresh.stat().st_mtime_ns, fresh.stat().st_size]
    assert week_of(dt.datetime.fromtimestamp(first_seen / 1e9, dt.timezone.utc)) == this_week()
    state.pending[fresh.name][2] = first_seen - 7 * 86_400 * 10**9  # as a tick a week ago recorded it
    ready = tick(dagster_instance, state.to_json())
    assert started(ready)["late.csv"] == weeks_after(this_week(), -1)


def test_a_cursor_from_before_first_seen_times_still_loads(dagster_instance, landing):
    drop = write_drop(landing / "listings.csv")
    old = dt.datetime(2024, 3, 6, 12, tzinfo=dt.timezone.utc).timestamp()
    os.utime(drop, (old, old))
    stat = drop.stat()
    cursor = '{"pending": {"listings.csv": [%d, %d]}, "started": {"a.csv": [1, 2]}}' % (stat.st_mtime_ns, stat.st_size)
    # The waiting entry has no first-seen time: the file takes the week of the tick that finds it ready.
    assert started(tick(dagster_instance, cursor)) == {"listings.csv": this_week()}
