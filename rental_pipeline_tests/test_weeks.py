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
    assert week_in_file_name("listings_2024-13-40.csv") is None


def test_weeks_before_counts_back_from_the_newest_and_stops_at_the_first_week():
    assert weeks_before("2024-03-18", 3) == ["2024-03-04", "2024-03-11", "2024-03-18"]
    assert weeks_before(FIRST_WEEK, 4) == [FIRST_WEEK]


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
