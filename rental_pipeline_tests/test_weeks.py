"""Weeks as plain functions: names, dates, the training window, the synthetic sequence of drops."""

from datetime import date

import pandas as pd
import pytest

from rental_pipeline.synthetic_weeks import generate_week
from rental_pipeline.weeks import (
    FIRST_WEEK,
    dagster_asset,
    dedupe_latest,
    parse_week,
    reference_week,
    split_name,
    store_name,
    week_in_file_name,
    week_of,
    weeks_before,
    window_trainval,
)


def test_a_week_is_an_artifact_of_its_own_named_after_the_plain_one():
    assert store_name("weekly_raw_data", "2024-03-04") == "raw_data.2024-03-04"
    assert store_name("raw_data", None) == "raw_data"
    assert split_name("clean_sample.2024-03-04") == ("clean_sample", "2024-03-04")
    assert split_name("clean_sample") == ("clean_sample", None)
    assert dagster_asset("raw_data.2024-03-04") == "weekly_raw_data"
    assert dagster_asset("raw_data") == "raw_data"


def test_a_day_belongs_to_the_week_of_its_monday_and_a_bad_week_says_what_is_wrong():
    assert week_of(date(2024, 3, 6)) == "2024-03-04"
    assert week_of(date(2024, 3, 4)) == "2024-03-04"
    assert parse_week("2024-03-04") == date(2024, 3, 4)
    with pytest.raises(ValueError, match="is a Wednesday: .* here 2024-03-04"):
        parse_week("2024-03-06")
    with pytest.raises(ValueError, match="not a date like"):
        parse_week("week 10")
    with pytest.raises(ValueError, match="before the first week"):
        parse_week("2018-12-31")


def test_a_drop_finds_its_week_in_its_file_name():
    assert week_in_file_name("listings_2024-03-06.csv") == "2024-03-04"
    assert week_in_file_name("nyc-20240310.csv") == "2024-03-04"
    assert week_in_file_name("listings.csv") is None
    with pytest.raises(ValueError, match="2024-13-40 is not a day of the calendar"):
        week_in_file_name("listings_2024-13-40.csv")


def test_a_date_in_a_name_is_a_whole_iso_token_and_every_candidate_is_tried():
    assert week_in_file_name("nyc_2023-2024_2024-03-06.csv") == "2024-03-04"  # past "2023-20-24"
    assert week_in_file_name("listings_2024-03-06T10-00-00.csv") == "2024-03-04"
    assert week_in_file_name("listings_2024-02-30_2024-03-06.csv") == "2024-03-04"  # a usable one wins
    assert week_in_file_name(f"listings_{FIRST_WEEK}.csv") == FIRST_WEEK
    assert week_in_file_name("listings_2099-01-01.csv") == "2098-12-29"  # a week ahead is the sensor's call
    for no_date in ("id_1202403061.csv", "id_202403061.csv", "export_12345678.csv", "nyc_2023-2024.csv"):
        assert week_in_file_name(no_date) is None, no_date  # digits inside a longer number, or no date shape


@pytest.mark.parametrize(
    "name, why",
    [
        ("listings_2018-12-31.csv", "2018-12-31 is before the first week, 2019-01-07"),
        ("listings_0999-06-15.csv", "0999-06-15 is before the first week, 2019-01-07"),  # not "999-06-10"
        ("listings_20190106.csv", "20190106 is before the first week"),
        ("listings_2024-02-30.csv", "2024-02-30 is not a day of the calendar"),
        ("listings_20241340.csv", "20241340 is not a day of the calendar"),
        ("listings_06-03-2024.csv", "06-03-2024 is not an ISO date"),
        ("listings_6.3.2024.csv", "6.3.2024 is not an ISO date"),
        ("listings_2024-3-6.csv", "2024-3-6 is not an ISO date"),
        ("listings_2024_03_06.csv", "2024_03_06 is not an ISO date"),
    ],
)
def test_a_name_with_something_date_like_but_no_usable_date_is_refused_saying_why(name, why):
    with pytest.raises(ValueError, match=f"^{name}: .*{why}"):
        week_in_file_name(name)


def test_weeks_before_counts_back_from_the_newest_and_stops_at_the_first_week():
    assert weeks_before("2024-03-18", 3) == ["2024-03-04", "2024-03-11", "2024-03-18"]
    assert weeks_before(FIRST_WEEK, 4) == [FIRST_WEEK]
    every = weeks_before("2024-03-04", 1_000_000)  # no overflow: the weeks stop at the first
    assert every[0] == FIRST_WEEK and every[-1] == "2024-03-04" and len(every) == 270


def test_a_training_window_is_at_most_ten_years():
    from pydantic import ValidationError

    from rental_pipeline.assets.split import SplitConfig

    assert SplitConfig(weeks=520).weeks == 520
    for too_many in (521, 1_000_000):
        with pytest.raises(ValidationError, match="less than or equal to 520"):
            SplitConfig(weeks=too_many)
    assert "at most 520 (ten years)" in SplitConfig.model_fields["weeks"].description


def _frame(ids: list[int], price: int) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "price": [price] * len(ids)})


def test_a_listing_seen_in_several_weeks_counts_once_with_its_newest_row():
    frames = {
        "2024-03-04": _frame([1, 2, 3], 100),
        "2024-03-11": _frame([2, 3, 4], 110),
        "2024-03-18": _frame([3], 120),
    }
    combined = dedupe_latest(frames)
    assert sorted(combined["id"]) == [1, 2, 3, 4]
    assert dict(zip(combined["id"], combined["price"])) == {1: 100, 2: 110, 3: 120, 4: 110}


def test_the_window_trains_on_older_weeks_only_for_listings_the_newest_week_does_not_hold():
    newest = _frame([3, 4, 5, 6], 120)
    newest_trainval = newest[newest["id"].isin([3, 4, 5])]  # 6 is held out for the test
    older = {"2024-03-04": _frame([1, 2, 6], 100), "2024-03-11": _frame([2, 6, 7], 110)}
    trainval = window_trainval(newest_trainval, newest, older)
    assert sorted(trainval["id"]) == [1, 2, 3, 4, 5, 7]  # 6, the newest week's test listing, is not trained on
    assert trainval["id"].is_unique
    assert window_trainval(newest_trainval, newest, {}) is newest_trainval  # one week: the single-week protocol


def test_a_week_is_judged_against_the_newest_reference_up_to_it():
    names = ["clean_sample", "clean_sample.2024-03-04", "clean_sample.2024-03-18", "raw_data.2024-03-11"]
    assert reference_week(names, "clean_sample", "2024-03-11") == "clean_sample.2024-03-04"
    assert reference_week(names, "clean_sample", "2024-03-25") == "clean_sample.2024-03-18"
    assert reference_week(names, "clean_sample", "2024-02-26") is None


def test_synthetic_weeks_are_a_plausible_sequence_of_drops():
    first, second = generate_week("2024-03-04", rows=4_000, seed=3), generate_week("2024-03-11", rows=4_000, seed=3)
    assert generate_week("2024-03-04", rows=4_000, seed=3).equals(first)  # same week, same frame
    assert 3_400 < len(first) < 4_600 and first["id"].is_unique
    persisting = first["id"].isin(second["id"]).mean()
    assert 0.85 < persisting < 0.99  # most listings persist, some leave
    assert (~second["id"].isin(first["id"])).sum() > 0  # and some arrive
    both = first.merge(second, on="id", suffixes=("_then", "_now"))
    both = both[both["price_then"].between(20, 5_000)]
    moved = (both["price_now"] / both["price_then"] - 1).abs()
    assert 0 < moved.median() < 0.1  # prices move a little
    assert list(first.columns) == list(second.columns) and first.dtypes.equals(second.dtypes)


def test_a_week_asked_to_drift_changes_its_borough_mix():
    usual = generate_week("2024-03-04", rows=4_000, seed=3)["neighbourhood_group"].value_counts(normalize=True)
    drifted = generate_week("2024-03-04", rows=4_000, seed=3, drift=True)
    shares = drifted["neighbourhood_group"].value_counts(normalize=True)
    assert shares["Manhattan"] < usual["Manhattan"] / 2 and shares["Queens"] > usual["Queens"] * 1.5
    assert drifted["id"].is_unique


@pytest.mark.slow
@pytest.mark.usefixtures("no_mirror")
def test_a_long_window_over_a_short_history_says_once_which_weeks_it_goes_without(instance):
    import dagster as dg

    from rental_pipeline.definitions import defs

    week = "2024-03-04"
    config = {
        "ops": {
            "weekly_raw_data": {"config": {"rows": 1_500, "seed": 7}},
            "weekly_clean_sample_checks": {"config": {"min_rows": 100}},
        }
    }
    made = defs.resolve_job_def("weekly_job").execute_in_process(
        instance=instance, partition_key=week, run_config=config
    )
    assert made.success
    split = defs.resolve_job_def("weekly_training_job").execute_in_process(
        instance=instance,
        partition_key=week,
        run_config={"ops": {"split_listings": {"config": {"weeks": 500}}}},
        asset_selection=[dg.AssetKey("trainval_data")],
    )
    assert split.success
    messages = [entry.user_message for entry in instance.all_logs(split.run_id) if entry.user_message]
    missing = [m for m in messages if "not in the store" in m or "have no clean_sample" in m]
    # 269 weeks of the window (2019-01-07 to 2024-02-26) are missing: said in one line, not 269.
    assert missing and len(missing) <= 2  # the run cache's look at the window and the split's
    assert all(
        "269 weeks of the window have no clean_sample in the store (2019-01-07 to 2024-02-26)" in m for m in missing
    )
