import pandas as pd
import pytest

from rental_pipeline.cleaning import CleaningRules, clean_listings


def listings(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "id": range(n),
        "price": [100] * n,
        "longitude": [-73.95] * n,
        "latitude": [40.7] * n,
        "last_review": ["2019-06-01"] * n,
        "reviews_per_month": [1.0] * n,
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_price_bounds_are_inclusive_and_outliers_counted():
    clean, report = clean_listings(listings(price=[9, 10, 200, 350, 351, 0, 10_000]))
    assert clean["price"].tolist() == [10, 200, 350]
    assert (report.rows_in, report.price_outliers, report.outside_box, report.rows_out) == (7, 4, 0, 3)


def test_rows_outside_the_box_are_dropped_after_price():
    frame = listings(
        price=[100, 100, 100, 5],
        longitude=[-74.25, -74.26, -73.50, -80.0],
        latitude=[40.5, 40.7, 41.2, 40.7],
    )
    clean, report = clean_listings(frame)
    assert clean["id"].tolist() == [0, 2]
    assert report.price_outliers == 1
    assert report.outside_box == 1  # the -80 row was already gone for its price


def test_review_date_is_parsed_and_missing_values_stay_missing():
    clean, _ = clean_listings(listings(last_review=["2019-06-01", None], reviews_per_month=[1.5, None]))
    assert pd.api.types.is_datetime64_any_dtype(clean["last_review"])
    assert clean["last_review"].iloc[0] == pd.Timestamp("2019-06-01")
    assert clean["last_review"].isna().tolist() == [False, True]
    assert clean["reviews_per_month"].isna().tolist() == [False, True]


def test_source_order_is_kept_and_index_renumbered():
    clean, _ = clean_listings(listings(id=[5, 3, 9, 1], price=[100, 1, 100, 100]))
    assert clean["id"].tolist() == [5, 9, 1]
    assert clean.index.tolist() == [0, 1, 2]


def test_custom_rules_apply():
    clean, _ = clean_listings(listings(price=[50, 150, 250]), CleaningRules(min_price=100, max_price=200))
    assert clean["price"].tolist() == [150]


def test_input_frame_is_not_modified():
    frame = listings(price=[1, 100])
    before = frame.copy()
    clean_listings(frame)
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize("column", ["price", "longitude", "latitude"])
def test_missing_rule_values_drop_the_row(column):
    frame = listings(price=[100, 100])
    frame.loc[1, column] = None
    clean, _ = clean_listings(frame)
    assert clean["id"].tolist() == [0]
