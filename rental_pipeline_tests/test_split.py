import pandas as pd
import pytest

from rental_pipeline.split import split_listings


@pytest.fixture
def frame() -> pd.DataFrame:
    boroughs = ["Manhattan"] * 50 + ["Brooklyn"] * 40 + ["Queens"] * 10
    return pd.DataFrame({"id": range(100), "neighbourhood_group": boroughs, "price": range(100)})


def test_sizes_and_disjoint_ids(frame):
    first, second = split_listings(frame, test_size=0.2, random_seed=42)
    assert (len(first), len(second)) == (80, 20)
    assert set(first["id"]).isdisjoint(second["id"])
    assert set(first["id"]) | set(second["id"]) == set(frame["id"])
    assert first.index.tolist() == list(range(80))


def test_stratified_shares_are_kept(frame):
    _, second = split_listings(frame, test_size=0.2, random_seed=1)
    assert second["neighbourhood_group"].value_counts().to_dict() == {"Manhattan": 10, "Brooklyn": 8, "Queens": 2}


def test_same_seed_same_split_other_seed_other_split(frame):
    a, _ = split_listings(frame, random_seed=42)
    b, _ = split_listings(frame, random_seed=42)
    c, _ = split_listings(frame, random_seed=43)
    pd.testing.assert_frame_equal(a, b)
    assert a["id"].tolist() != c["id"].tolist()


def test_stratify_none_works_even_when_a_class_is_too_small(frame):
    frame.loc[0, "neighbourhood_group"] = "Staten Island"  # one row: stratification would fail
    with pytest.raises(ValueError):
        split_listings(frame, stratify_by="neighbourhood_group")
    first, second = split_listings(frame, stratify_by="none")
    assert (len(first), len(second)) == (80, 20)


def test_unknown_stratify_column_is_named(frame):
    with pytest.raises(ValueError, match="'borough' is not a column"):
        split_listings(frame, stratify_by="borough")
