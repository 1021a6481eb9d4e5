"""The synthetic listings must stand in for real data everywhere the pipeline goes.

These tests pin down what the pipeline relies on (schema, the guarantees that keep cleaning,
checks and the stratified split working) and how closely the shapes follow the real sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from rental_pipeline import synthetic
from rental_pipeline.listings import (
    BOROUGHS,
    COLUMNS,
    FLOAT_COLUMNS,
    INTEGER_COLUMNS,
    ROOM_TYPES,
    TEXT_COLUMNS,
)
from rental_pipeline.synthetic import generate_listings

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sample1.csv"
MIN_PRICE, MAX_PRICE = 10, 350
LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = synthetic.NYC_BOX
# Published shares of the reference sample, independent of the generator's own constants.
REAL_BOROUGH_SHARES = {
    "Manhattan": 0.439, "Brooklyn": 0.413, "Queens": 0.118, "Bronx": 0.022, "Staten Island": 0.008,
}


@pytest.fixture(scope="module")
def listings() -> pd.DataFrame:
    return generate_listings()


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    if not SAMPLE.exists():
        pytest.skip(f"real sample not found at {SAMPLE}; fidelity checks need it")
    return pd.read_csv(SAMPLE)


def inside_box(frame: pd.DataFrame) -> pd.Series:
    latitude, longitude = frame["latitude"], frame["longitude"]
    return latitude.between(LAT_MIN, LAT_MAX) & longitude.between(LON_MIN, LON_MAX)


def clean(frame: pd.DataFrame) -> pd.DataFrame:
    """The reference cleaning: price range and the New York box, nothing imputed."""
    return frame[frame["price"].between(MIN_PRICE, MAX_PRICE) & inside_box(frame)]


def borough_kl_bits(current: pd.Series, reference: pd.Series) -> float:
    counts = current.value_counts().reindex(BOROUGHS, fill_value=0)
    return float(entropy(counts, reference.reindex(BOROUGHS), base=2))


# --- determinism and schema ------------------------------------------------------------------


def test_same_seed_gives_the_same_frame_and_another_seed_a_different_one() -> None:
    first = generate_listings(3_000, seed=7)
    pd.testing.assert_frame_equal(first, generate_listings(3_000, seed=7))
    other = generate_listings(3_000, seed=8)
    assert not first.equals(other)
    assert (first["price"] != other["price"]).mean() > 0.5


def test_columns_and_dtypes_match_the_listings_schema(listings: pd.DataFrame) -> None:
    assert list(listings.columns) == list(COLUMNS)
    text_dtype = pd.Series(["x"], dtype="str").dtype
    for column in COLUMNS:
        expected = ("int64" if column in INTEGER_COLUMNS
                    else "float64" if column in FLOAT_COLUMNS else text_dtype)
        assert listings[column].dtype == expected, column
    assert set(TEXT_COLUMNS) | {"last_review"} == {
        c for c in COLUMNS if listings[c].dtype == text_dtype}


def test_csv_round_trip_changes_nothing(listings: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "listings.csv"
    listings.to_csv(path, index=False)
    pd.testing.assert_frame_equal(pd.read_csv(path), listings)


def test_dtypes_equal_those_of_the_real_sample(listings: pd.DataFrame,
                                               sample: pd.DataFrame) -> None:
    pd.testing.assert_series_equal(listings.dtypes, sample.dtypes)


def test_empty_and_negative_sizes() -> None:
    empty = generate_listings(0)
    assert list(empty.columns) == list(COLUMNS) and empty.empty
    pd.testing.assert_series_equal(empty.dtypes, generate_listings(10).dtypes)
    with pytest.raises(ValueError, match="rows"):
        generate_listings(-1)


def test_ids_are_unique_and_hosts_consistent() -> None:
    frame = generate_listings(100_000, seed=3)
    assert frame["id"].is_unique
    rows_per_host = frame.groupby("host_id")["id"].transform("size")
    assert (frame["calculated_host_listings_count"] >= rows_per_host).all()
    assert (rows_per_host > 1).mean() > 0.1  # some hosts run several listings
    assert frame.groupby("host_id")["host_name"].nunique().max() == 1


# --- calibration -----------------------------------------------------------------------------


def test_borough_and_room_type_shares_follow_the_calibration(listings: pd.DataFrame) -> None:
    n = len(listings)
    shares = listings["neighbourhood_group"].value_counts(normalize=True)
    for borough, expected in REAL_BOROUGH_SHARES.items():
        assert abs(shares[borough] - expected) < 4 * np.sqrt(expected * (1 - expected) / n), borough
    for borough, group in listings.groupby("neighbourhood_group"):
        room_shares = group["room_type"].value_counts(normalize=True)
        for room, expected in zip(ROOM_TYPES, synthetic.ROOM_TYPE_SHARES[borough]):
            tolerance = 4 * np.sqrt(expected * (1 - expected) / len(group)) + 0.005
            assert abs(room_shares.get(room, 0.0) - expected) < tolerance, (borough, room)


def test_borough_counts_diverge_little_from_the_calibration(listings: pd.DataFrame) -> None:
    reference = pd.Series(REAL_BOROUGH_SHARES) * 20_000
    assert borough_kl_bits(listings["neighbourhood_group"], reference) < 0.01


def test_borough_counts_diverge_little_from_the_real_sample(listings: pd.DataFrame,
                                                            sample: pd.DataFrame) -> None:
    reference = sample["neighbourhood_group"].value_counts()
    assert borough_kl_bits(listings["neighbourhood_group"], reference) < 0.05


def test_neighbourhoods_lie_inside_their_borough(listings: pd.DataFrame) -> None:
    inside = listings[inside_box(listings)]
    for borough, group in inside.groupby("neighbourhood_group"):
        lat_min, lat_max, lon_min, lon_max = synthetic.BOROUGH_BOUNDS[borough]
        assert group["latitude"].between(lat_min, lat_max).all(), borough
        assert group["longitude"].between(lon_min, lon_max).all(), borough
        known = {n[0] for n in synthetic.NEIGHBOURHOODS[borough]}
        assert set(group["neighbourhood"]) <= known, borough
        assert group["neighbourhood"].nunique() >= 8, borough
    # one borough per neighbourhood, and each sits near its calibrated centre
    assert listings.groupby("neighbourhood")["neighbourhood_group"].nunique().max() == 1
    centres = inside.groupby("neighbourhood")[["latitude", "longitude"]].median()
    for borough in BOROUGHS:
        for name, _, lat, lon, _, _ in synthetic.NEIGHBOURHOODS[borough]:
            assert abs(centres.loc[name, "latitude"] - lat) < 0.01, name
            assert abs(centres.loc[name, "longitude"] - lon) < 0.01, name


def test_review_fields_are_missing_exactly_where_there_are_no_reviews(
        listings: pd.DataFrame) -> None:
    unreviewed = listings["number_of_reviews"] == 0
    assert (listings["last_review"].isna() == unreviewed).all()
    assert (listings["reviews_per_month"].isna() == unreviewed).all()
    assert 0.15 < unreviewed.mean() < 0.26
    dates = pd.to_datetime(listings["last_review"], format="%Y-%m-%d")
    assert dates.min() >= pd.Timestamp("2011-01-01")
    assert dates.max() <= pd.Timestamp("2019-07-31")
    assert 0.5 < (dates.dt.year == 2019).sum() / dates.notna().sum() < 0.8
    assert (listings.loc[~unreviewed, "reviews_per_month"] > 0).all()


def test_counts_have_skewed_realistic_shapes(listings: pd.DataFrame) -> None:
    nights = listings["minimum_nights"]
    assert nights.min() >= 1 and nights.median() <= 3 and nights.max() >= 180
    reviewed = listings.loc[listings["number_of_reviews"] > 0, "number_of_reviews"]
    assert reviewed.median() < reviewed.mean() / 2  # long right tail
    assert 0.3 < (listings["availability_365"] == 0).mean() < 0.42
    assert listings["availability_365"].between(0, 365).all()
    assert (listings["calculated_host_listings_count"] == 1).mean() > 0.6
    assert listings["calculated_host_listings_count"].max() > 100


def test_names_are_rarely_missing_as_in_the_real_file(listings: pd.DataFrame) -> None:
    missing = listings["name"].isna().sum() + listings["host_name"].isna().sum()
    assert 0 < missing < 0.002 * len(listings)


def test_price_distribution_is_close_to_the_calibration(listings: pd.DataFrame) -> None:
    price = listings["price"]
    assert 90 <= price.median() <= 120
    outside_range = ~price.between(MIN_PRICE, MAX_PRICE)
    assert 0.035 < outside_range.mean() < 0.065
    assert (price > 1_000).mean() > 0.002


def test_median_price_is_within_15_percent_of_the_real_sample(listings: pd.DataFrame,
                                                             sample: pd.DataFrame) -> None:
    real = sample["price"].median()
    assert abs(listings["price"].median() - real) <= 0.15 * real


# --- what cleaning and the split rely on -----------------------------------------------------


@pytest.mark.parametrize("rows", [2_000, 20_000])
def test_outliers_give_cleaning_work(rows: int) -> None:
    frame = generate_listings(rows, seed=11)
    assert (frame["price"] == 0).any()
    assert (frame["price"] == 10_000).any()
    outside = (~inside_box(frame)).sum()
    assert outside >= 1
    assert outside / rows <= 0.002
    if rows >= 20_000:
        assert outside / rows >= 0.0005


def test_cleaning_keeps_most_rows_and_all_boroughs(listings: pd.DataFrame) -> None:
    cleaned = clean(listings)
    assert len(cleaned) > 15_000
    assert set(cleaned["neighbourhood_group"]) == set(BOROUGHS)


@pytest.mark.parametrize("rows,seed", [(100, 0), (100, 1), (137, 2), (250, 3), (500, 4)])
def test_small_frames_survive_cleaning_and_a_double_stratified_split(rows: int,
                                                                     seed: int) -> None:
    cleaned = clean(generate_listings(rows, seed=seed))
    assert cleaned["neighbourhood_group"].value_counts().reindex(BOROUGHS).min() >= 5
    trainval, test = train_test_split(cleaned, test_size=0.2, random_state=42,
                                      stratify=cleaned["neighbourhood_group"])
    train, validation = train_test_split(trainval, test_size=0.2, random_state=42,
                                         stratify=trainval["neighbourhood_group"])
    assert set(train["neighbourhood_group"]) == set(BOROUGHS)
    assert len(train) + len(validation) + len(test) == len(cleaned)


# --- the price carries signal ------------------------------------------------------------------


def test_price_follows_room_type_borough_and_title(listings: pd.DataFrame) -> None:
    cleaned = clean(listings)
    by_room = cleaned.groupby("room_type")["price"].median()
    assert by_room["Entire home/apt"] > 1.8 * by_room["Private room"]
    assert by_room["Private room"] > by_room["Shared room"]
    by_borough = cleaned.groupby("neighbourhood_group")["price"].median()
    assert by_borough["Manhattan"] > 1.5 * by_borough["Bronx"]
    homes = cleaned[cleaned["room_type"] == "Entire home/apt"]
    upscale = homes["name"].str.contains("Luxury|Penthouse", na=False)
    assert homes.loc[upscale, "price"].median() > 1.15 * homes.loc[~upscale, "price"].median()
    rooms = cleaned[cleaned["room_type"] == "Private room"]
    cozy = rooms["name"].str.contains("Cozy", na=False)
    assert rooms.loc[cozy, "price"].median() < rooms.loc[~cozy, "price"].median()


@pytest.mark.slow
def test_a_small_forest_learns_price_from_held_out_rows(listings: pd.DataFrame) -> None:
    cleaned = clean(listings)
    features = pd.DataFrame({
        "room": cleaned["room_type"].map({r: i for i, r in enumerate(ROOM_TYPES)}),
        "borough": cleaned["neighbourhood_group"].map({b: i for i, b in enumerate(BOROUGHS)}),
        "latitude": cleaned["latitude"], "longitude": cleaned["longitude"],
        "upscale": cleaned["name"].str.contains("Luxury|Penthouse|Loft", na=False),
        "minimum_nights": cleaned["minimum_nights"],
    })
    x_train, x_test, y_train, y_test = train_test_split(
        features, cleaned["price"], test_size=0.2, random_state=42,
        stratify=cleaned["neighbourhood_group"])
    forest = RandomForestRegressor(n_estimators=40, max_depth=12, min_samples_leaf=3,
                                   n_jobs=-1, random_state=42).fit(x_train, y_train)
    assert r2_score(y_test, forest.predict(x_test)) > 0.3
