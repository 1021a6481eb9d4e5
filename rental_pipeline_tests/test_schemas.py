"""The pandera models: what they accept, how they report what they refuse, and what the UI shows from them."""

import pandas as pd
import pytest

from rental_pipeline.assets.metadata import frame_metadata
from rental_pipeline.cleaning import clean_listings
from rental_pipeline.listings import COLUMNS, read_listings
from rental_pipeline.schemas import (
    LISTINGS_MODELS,
    CleanListings,
    RawListings,
    SplitListings,
    column_docs,
    model_for,
)
from rental_pipeline.synthetic import generate_listings
from rental_pipeline.validation import MAX_FAILURE_CASES, check_schema


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return generate_listings(rows=1_500, seed=21)


@pytest.fixture(scope="module")
def clean(raw) -> pd.DataFrame:
    return clean_listings(raw)[0]


@pytest.mark.parametrize("model", LISTINGS_MODELS, ids=lambda m: m.__name__)
def test_every_model_has_the_16_listing_columns_in_order(model):
    assert list(model.to_schema().columns) == list(COLUMNS)


def test_synthetic_listings_follow_the_models(raw, clean):
    RawListings.validate(raw, lazy=True)
    CleanListings.validate(clean, lazy=True)
    SplitListings.validate(clean.iloc[:100], lazy=True)


def test_the_reference_sample_follows_the_models(sample1):
    listings = read_listings(str(sample1)).listings
    RawListings.validate(listings, lazy=True)
    CleanListings.validate(clean_listings(listings)[0], lazy=True)


@pytest.mark.parametrize(
    ("column", "bad_value", "check"),
    [
        ("room_type", "Hotel room", "isin"),
        ("neighbourhood_group", "Long Island", "isin"),
        ("price", -5, "greater_than_or_equal_to(0)"),
        ("minimum_nights", 0, "greater_than_or_equal_to(1)"),
        ("availability_365", 400, "less_than_or_equal_to(365)"),
        ("last_review", "06/01/2019", "str_matches"),
        ("neighbourhood", None, "not_nullable"),
    ],
)
def test_a_broken_raw_rule_names_the_column_the_rule_and_the_file_rows(raw, column, bad_value, check):
    frame = raw.copy()
    frame.loc[[4, 11], column] = bad_value
    outcome = check_schema(frame, RawListings, "drop.csv", "Fix the source.", file_rows=True)
    assert not outcome.passed and outcome.failing_rows == 2
    cases = outcome.failure_cases
    assert cases["row"].tolist() == [5, 12]
    assert cases["id"].tolist() == frame.loc[[4, 11], "id"].tolist()
    assert set(cases["column"]) == {column} and cases["check"].str.contains(check, regex=False).all()
    assert outcome.message.startswith("2 of 1,500 listings in drop.csv break the raw listings schema: ")
    assert f"column {column!r}" in outcome.message and "rows 5, 12" in outcome.message
    assert outcome.message.endswith("Fix the source.")


def test_duplicated_ids_are_a_schema_failure(raw):
    frame = raw.copy()
    frame.loc[9, "id"] = frame.loc[3, "id"]
    outcome = check_schema(frame, RawListings, "drop.csv", "", file_rows=True)
    assert outcome.failure_cases[["row", "column", "check"]].to_dict("records") == [
        {"row": 4, "column": "id", "check": "field_uniqueness"},
        {"row": 10, "column": "id", "check": "field_uniqueness"},
    ]


def test_a_wrong_type_fails_the_whole_column(raw):
    outcome = check_schema(raw.astype({"price": "float64"}), RawListings, "drop.csv", "", file_rows=True)
    assert (outcome.passed, outcome.failing_rows) == (False, 1_500)
    case = outcome.failure_cases.iloc[0]
    assert (case["column"], case["check"], case["value"]) == ("price", "dtype('int64')", "float64")
    assert pd.isna(case["row"]) and "whole column" in outcome.message


def test_failure_cases_stop_at_twenty_but_every_failing_row_is_counted(raw):
    frame = raw.copy()
    frame.loc[:99, "room_type"] = "Hotel room"
    outcome = check_schema(frame, RawListings, "drop.csv", "", file_rows=True)
    assert outcome.failing_rows == 100 and len(outcome.failure_cases) == MAX_FAILURE_CASES
    assert "rows 1, 2, 3, 4, 5 and 95 more" in outcome.message


def test_clean_listings_have_parsed_review_dates(raw, clean):
    outcome = check_schema(raw, CleanListings, "clean_sample", "")
    assert not outcome.passed
    assert outcome.failure_cases[["column", "check"]].to_dict("records") == [
        {"column": "last_review", "check": "dtype('datetime64[ns]')"}
    ]
    assert check_schema(clean, CleanListings, "clean_sample", "").passed


def test_a_split_side_needs_listings(clean):
    outcome = check_schema(clean.iloc[:0], SplitListings, "test_data", "Re-split.")
    assert not outcome.passed and "the split side holds no listings" in outcome.message
    assert check_schema(clean.iloc[:0], CleanListings, "clean_sample", "").passed  # row_count judges that


def test_a_missing_or_extra_column_fails_the_schema(raw):
    outcome = check_schema(raw.drop(columns="price").assign(extra=1), RawListings, "drop.csv", "")
    problems = set(zip(outcome.failure_cases["column"], outcome.failure_cases["value"]))
    assert ("raw listings", "price") in problems and ("raw listings", "extra") in problems


def test_column_docs_describe_every_column_with_its_constraints():
    docs = {doc.name: doc for doc in column_docs(RawListings)}
    assert list(docs) == list(COLUMNS) and all(doc.description for doc in docs.values())
    assert docs["price"].constraints == (">= 0",) and "10 <= price <= 350" in docs["price"].description
    assert docs["room_type"].constraints == ("one of Entire home/apt, Private room, Shared room",)
    assert docs["availability_365"].constraints == (">= 0", "<= 365")
    assert docs["last_review"].constraints == (r"matches ^\d{4}-\d{2}-\d{2}$",)
    assert docs["id"].unique and not docs["id"].nullable and docs["name"].nullable
    assert {doc.name: doc.type for doc in column_docs(CleanListings)}["last_review"] == "date"


def test_asset_pages_show_the_schema_the_checks_enforce(raw, clean):
    assert (model_for(raw), model_for(clean), model_for(clean[["id", "price"]])) == (RawListings, CleanListings, None)

    raw_schema = {c.name: c for c in frame_metadata(raw)["dagster/column_schema"].columns}
    assert list(raw_schema) == list(COLUMNS)
    assert raw_schema["price"].constraints.other == [">= 0"]
    assert raw_schema["price"].description.startswith("Nightly price in US dollars")
    assert raw_schema["id"].constraints.unique and not raw_schema["id"].constraints.nullable
    assert raw_schema["last_review"].type == "string"

    clean_schema = {c.name: c for c in frame_metadata(clean)["dagster/column_schema"].columns}
    missing = int(clean["last_review"].isna().sum())
    assert clean_schema["last_review"].type == "date"
    assert clean_schema["last_review"].description.endswith(f"Missing in {missing:,} listings of this version.")

    other = frame_metadata(pd.DataFrame({"feature": ["a"], "importance": [0.5]}))["dagster/column_schema"]
    assert [(c.name, c.type) for c in other.columns] == [("feature", "string"), ("importance", "float")]
