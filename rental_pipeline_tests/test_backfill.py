"""Weeks from the command line: a manual run names its week, a backfill does several in one command."""

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from rental_pipeline.backfill import week_range
from rental_pipeline_tests.conftest import PROJECT_ROOT, artifact_store

BIN = Path(sys.executable).parent
CONFIG = {
    "ops": {
        "weekly_raw_data": {"config": {"rows": 1_500, "seed": 7}},
        "weekly_clean_sample_checks": {"config": {"min_rows": 100}},
    }
}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        cwd=PROJECT_ROOT,
        env={**os.environ, "WANDB_MODE": "disabled"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_range_of_weeks_is_every_monday_from_the_first_to_the_last():
    assert week_range("2024-02-26", "2024-03-11") == ["2024-02-26", "2024-03-04", "2024-03-11"]
    with pytest.raises(ValueError, match="ends .* before it starts"):
        week_range("2024-03-11", "2024-02-26")
    with pytest.raises(ValueError, match="is a Tuesday"):
        week_range("2024-02-27", "2024-03-11")


def this_week() -> str:
    from rental_pipeline.partitions import WEEKS

    return WEEKS.get_last_partition_key()


def weeks_after(week: str, count: int) -> str:
    return (date.fromisoformat(week) + timedelta(weeks=count)).isoformat()


def test_a_range_reaching_past_the_week_under_way_is_refused_whole():
    today = this_week()
    assert week_range(weeks_after(today, -1), today) == [weeks_after(today, -1), today]
    with pytest.raises(ValueError, match=f"week {weeks_after(today, 4)} does not exist yet: the last week is {today}"):
        week_range(today, weeks_after(today, 4))
    with pytest.raises(ValueError, match="before the first week, 2019-01-07"):
        week_range("2018-12-31", "2019-01-14")


def test_the_backfill_command_refuses_weeks_that_do_not_exist_before_running_any(tmp_path):
    from click.testing import CliRunner

    from rental_pipeline.backfill import backfill
    from rental_pipeline.backfill_cli import backfill_command

    today = this_week()
    for first, last, why in (
        (today, weeks_after(today, 4), f"the last week is {today}"),  # this week would run, then a crash
        ("2018-12-31", "2019-01-14", "is before the first week"),
    ):
        result = CliRunner().invoke(backfill_command, ["--from", first, "--to", last])
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
        [line] = result.output.strip().splitlines()  # one line
        assert line.startswith("Error: ") and why in line
    with dg.DagsterInstance.get() as instance:
        assert not instance.get_runs()  # not one week ran
        with pytest.raises(ValueError, match="does not exist yet"):
            next(backfill("weekly_job", [today, weeks_after(today, 1)], {}, instance))
        assert not instance.get_runs()


@pytest.mark.slow
def test_a_manual_run_names_its_week_and_a_backfill_skips_the_weeks_done(tmp_path):
    config = tmp_path / "weeks.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    manual = run(
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "rental_pipeline.definitions",
        "--select",
        "weekly_raw_data,weekly_clean_sample",
        "--partition",
        "2024-03-11",
        "--config",
        str(config),
    )
    assert manual.returncode == 0, manual.stdout + manual.stderr
    assert artifact_store().get("clean_sample.2024-03-11:latest").metadata["partition"] == "2024-03-11"

    backfilled = run(
        str(BIN / "rental-pipeline"), "backfill", "--from", "2024-03-04", "--to", "2024-03-18", "--config", str(config)
    )
    assert backfilled.returncode == 0, backfilled.stdout + backfilled.stderr
    lines = {line.split()[0]: line for line in backfilled.stdout.splitlines() if line[:4] == "2024"}
    assert "computed raw_data.2024-03-04:v0, clean_sample.2024-03-04:v0" in lines["2024-03-04"]
    assert "computed nothing; reused raw_data.2024-03-11:v0, clean_sample.2024-03-11:v0" in lines["2024-03-11"]
    assert "computed raw_data.2024-03-18:v0" in lines["2024-03-18"]
    with dg.DagsterInstance.get() as instance:  # each week a run of its own, its partition in the catalog
        weeks = instance.get_materialized_partitions(dg.AssetKey("weekly_clean_sample"))
        assert weeks == {"2024-03-04", "2024-03-11", "2024-03-18"}

    lineage = run(str(BIN / "rental-pipeline"), "lineage", "clean_sample.2024-03-18:latest")
    assert lineage.returncode == 0, lineage.stderr
    assert "clean_sample.2024-03-18:v0" in lineage.stdout and "week 2024-03-18" in lineage.stdout
    assert "raw_data.2024-03-18:v0" in lineage.stdout
    summary = run(str(BIN / "rental-pipeline"), "summary")
    assert summary.returncode == 0, summary.stderr
    assert "clean_sample.2024-03-18:v0" in summary.stdout  # the newest week's version, by its name
    assert "another store" not in summary.stdout
    listed = run(str(BIN / "rental-pipeline"), "artifacts", "list")
    assert "raw_data.2024-03-04" in listed.stdout and "clean_sample.2024-03-18" in listed.stdout

    wrong = run(str(BIN / "rental-pipeline"), "backfill", "--from", "2024-03-05", "--to", "2024-03-18")
    assert wrong.returncode != 0 and "is a Tuesday" in wrong.stderr and "Traceback" not in wrong.stderr
