"""The landing sensor on an object-storage prefix, as a deployment whose machines share no disk uses
it, against a real S3 server (skipped, saying why, when none is running)."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest

from rental_pipeline.automation import landing_sensor, training_run_config
from rental_pipeline.landing import LANDING_VARIABLE
from rental_pipeline.listings import ListingsError, read_listings
from rental_pipeline.store.s3_backend import S3Backend
from rental_pipeline.synthetic import generate_listings
from rental_pipeline_tests.conftest import materialized
from rental_pipeline_tests.store.backends import TEST_BUCKET


@pytest.fixture
def landing(s3_credentials: str, monkeypatch: pytest.MonkeyPatch) -> tuple[S3Backend, str]:
    prefix = f"landing-{uuid.uuid4().hex[:10]}"
    url = f"s3://{TEST_BUCKET}/{prefix}/?endpoint_url={s3_credentials}&region=us-east-1"
    monkeypatch.setenv(LANDING_VARIABLE, url)
    return S3Backend(TEST_BUCKET, prefix, endpoint_url=s3_credentials, region="us-east-1"), url


def csv(rows: int, seed: int) -> bytes:
    return generate_listings(rows=rows, seed=seed).to_csv(index=False).encode()


def tick(instance: dg.DagsterInstance, cursor: str | None):
    from rental_pipeline.definitions import defs

    # the repository: a run request for a week is checked against its job's partitions
    context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=defs.get_repository_def())
    return landing_sensor.evaluate_tick(context)


@pytest.mark.slow
def test_a_drop_in_the_landing_prefix_starts_one_run_that_reads_it_from_object_storage(landing, instance):
    bucket, url = landing
    assert "no new CSV" in tick(instance, None).skip_message
    bucket.write("week-48.csv", csv(70, 4))
    for ignored in (".week-48.csv", "week-48.csv.part", "notes.txt", "archive/week-47.csv"):
        bucket.write(ignored, csv(10, 1))
    bucket.write("empty.csv", b"")

    seen = tick(instance, None)
    assert not seen.run_requests and "week-48.csv" in seen.skip_message
    started = tick(instance, seen.cursor)
    [request] = started.run_requests
    info = bucket.info("week-48.csv")
    source = f"s3://{TEST_BUCKET}/{bucket.prefix}/week-48.csv?{url.partition('?')[2]}"
    assert request.run_config == training_run_config(source)
    assert request.run_key == f"{source}:{int(info.modified * 1e9)}:{info.size}"
    assert not tick(instance, started.cursor).run_requests  # never twice

    from rental_pipeline.definitions import default_resources, weekly_assets

    result = dg.materialize(
        weekly_assets,
        instance=instance,
        selection=["weekly_raw_data"],
        run_config=request.run_config,
        partition_key=request.partition_key,
        resources=default_resources(),
    )
    metadata = materialized(result)["weekly_raw_data"]
    assert metadata["source"] == source and metadata["dagster/row_count"] == 70
    assert metadata["artifact"] == f"raw_data.{request.partition_key}:v0"  # the week it landed in


def test_a_missing_drop_is_named(landing) -> None:
    bucket, url = landing
    missing = f"s3://{TEST_BUCKET}/{bucket.prefix}/gone.csv?{url.partition('?')[2]}"
    with pytest.raises(ListingsError, match="gone.csv.*object does not exist"):
        read_listings(missing)


def test_in_the_landing_prefix_a_bad_name_is_refused_and_a_drop_ahead_waits_while_a_good_drop_starts(landing, instance):
    from rental_pipeline.landing import LandingCursor
    from rental_pipeline.partitions import WEEKS

    bucket, _ = landing
    bucket.write("listings_2099-01-01.csv", csv(20, 1))  # a week that has not begun
    bucket.write("listings_2024-02-30.csv", csv(20, 2))  # no such day
    bucket.write("listings.csv", csv(20, 3))  # no date: the week the sensor first saw it

    seen = tick(instance, None)
    assert not seen.run_requests
    assert "listings_2024-02-30.csv: 2024-02-30 is not a day of the calendar" in seen.skip_message
    started = tick(instance, seen.cursor)
    [request] = started.run_requests
    assert request.run_config["ops"]["weekly_raw_data"]["config"]["source"].split("?")[0].endswith("/listings.csv")
    assert request.partition_key == WEEKS.get_last_partition_key()
    cursor = LandingCursor.from_json(started.cursor)
    assert set(cursor.started) == {"listings.csv"} and "listings_2099-01-01.csv" in cursor.pending
    assert cursor.refused == ["listings_2024-02-30.csv"]
    later = tick(instance, started.cursor)
    assert not later.run_requests and "listings_2099-01-01.csv (week 2098-12-29)" in later.skip_message
