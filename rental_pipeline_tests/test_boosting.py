"""The boosted pipeline: it fits, copes with gaps, repeats itself, survives skops, and beats the forest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from rental_pipeline.boosting import (
    INPUT_COLUMNS,
    PREDICT_BLOCK_ROWS,
    AveragedRegressor,
    BoostingParams,
    CrossFittedTextPrice,
    ListingNameFeatures,
    build_boosted_pipeline,
)
from rental_pipeline.features import FEATURE_COLUMNS, TARGET
from rental_pipeline.training import boosted_feature_importances

SAMPLE1 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sample1.csv"
ALLOWED_TYPE_PREFIXES = (
    "sklearn.", "numpy.", "scipy.", "rental_pipeline.boosting.", "rental_pipeline.features.",
    "rental_pipeline.target_encoding.", "rental_pipeline.catboost_trees.",
)
# Fewer, larger steps than the default: the tests check behaviour, not accuracy.
QUICK = BoostingParams(max_iter=30, learning_rate=0.3, catboost_iterations=40, catboost_learning_rate=0.3)


@pytest.fixture(scope="module")
def listings() -> pd.DataFrame:
    from rental_pipeline.cleaning import clean_listings
    from rental_pipeline.synthetic import generate_listings

    clean, _ = clean_listings(generate_listings(rows=800, seed=5))
    return clean


@pytest.fixture(scope="module")
def fitted(listings: pd.DataFrame):
    train = listings.iloc[:600]
    return build_boosted_pipeline(QUICK).fit(train[INPUT_COLUMNS], train[TARGET])


def test_takes_the_reference_columns_and_the_host_and_neighbourhood():
    assert INPUT_COLUMNS == FEATURE_COLUMNS + ["host_id", "neighbourhood"]


def test_predicts_finite_positive_prices(fitted, listings: pd.DataFrame):
    predicted = fitted.predict(listings.iloc[600:][INPUT_COLUMNS])
    assert predicted.shape == (len(listings) - 600,)
    assert np.isfinite(predicted).all()
    assert (predicted > 0).all()


def test_rows_with_missing_or_unknown_values_are_scored(fitted, listings: pd.DataFrame):
    rows = listings[INPUT_COLUMNS].head(len(INPUT_COLUMNS)).astype(object).reset_index(drop=True)
    for row, column in enumerate(INPUT_COLUMNS):  # one gap per row, in every column in turn
        rows.loc[row, column] = None
    empty = pd.DataFrame({column: [None] for column in INPUT_COLUMNS}, dtype=object)
    unknown = listings[INPUT_COLUMNS].head(1).assign(
        room_type="Hotel room", neighbourhood_group="Long Island", host_id=1, neighbourhood="Atlantis"
    )
    for batch in (rows, empty, unknown):
        assert np.isfinite(fitted.predict(batch)).all()


def test_two_fits_give_identical_predictions(listings: pd.DataFrame):
    train, scored = listings.iloc[:600], listings.iloc[600:][INPUT_COLUMNS]
    first = build_boosted_pipeline(QUICK).fit(train[INPUT_COLUMNS], train[TARGET]).predict(scored)
    second = build_boosted_pipeline(QUICK).fit(train[INPUT_COLUMNS], train[TARGET]).predict(scored)
    np.testing.assert_array_equal(first, second)


def _with_gaps_and_infinities(features: np.ndarray, rows: int) -> np.ndarray:
    """`features` repeated to `rows` rows (several blocks of `AveragedRegressor.predict`), with
    missing and infinite values sprinkled over every column."""
    tiled = np.resize(features, (rows, features.shape[1])).copy()
    for column in range(tiled.shape[1]):
        tiled[column::97, column] = np.nan
        tiled[column + 1::89, column] = np.inf
        tiled[column + 2::83, column] = -np.inf
    return tiled


def _assert_scored_as_each_member_would(regressor: AveragedRegressor, features: np.ndarray) -> None:
    from rental_pipeline.boosting import _binned_views

    assert _binned_views(regressor.estimators_, features) is not None, "the default members share their bins"
    expected = regressor.predict_whole(features)  # each member's own predict on all rows, then the mean
    np.testing.assert_array_equal(regressor.predict(features), expected)
    np.testing.assert_array_equal(regressor.predict(pd.DataFrame(features)), expected)  # not binned
    for n_jobs in (1, 3):
        regressor.set_params(n_jobs=n_jobs)
        np.testing.assert_array_equal(regressor.predict(features), expected)
    regressor.set_params(n_jobs=2)


def test_scoring_on_bins_in_blocks_gives_each_members_own_predictions(fitted, listings: pd.DataFrame):
    """`AveragedRegressor.predict` bins each block once and walks every member's trees on the
    bins; the numbers must be, bit for bit, those of the members' own `predict` on all rows."""
    features = fitted[:-1].transform(listings[INPUT_COLUMNS])
    _assert_scored_as_each_member_would(fitted[-1], _with_gaps_and_infinities(features, 2 * PREDICT_BLOCK_ROWS + 7))
    with pytest.raises(ValueError):  # as the members' own predict refuses no rows
        fitted[-1].predict(features[:0])


def test_a_binned_walk_that_disagrees_on_the_first_rows_is_not_used(fitted, listings: pd.DataFrame, monkeypatch):
    """Should a scikit-learn release stop reading its binned flag, the members would score bins as
    if they were values; the probe of the first rows sees it and every row is scored as is."""
    import rental_pipeline.boosting as boosting

    def values_read_as_bins(members, X):  # the members themselves, given bins: wrong numbers
        found = real_views(members, X)
        return None if found is None else (found[0], list(members))

    real_views = boosting._binned_views
    features = fitted[:-1].transform(listings[INPUT_COLUMNS])
    members = fitted[-1].estimators_
    regressor = fitted[-1]
    assert boosting._same_on_probe(members, real_views(members, features), features)
    monkeypatch.setattr(boosting, "_binned_views", values_read_as_bins)
    assert not boosting._same_on_probe(members, values_read_as_bins(members, features), features)
    np.testing.assert_array_equal(regressor.predict(features), regressor.predict_whole(features))


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLE1.exists(), reason="the reference sample is not there")
def test_scoring_on_bins_matches_the_members_on_the_real_sample():
    from rental_pipeline.cleaning import clean_listings
    from rental_pipeline.listings import read_listings
    from rental_pipeline.split import split_listings

    clean, _ = clean_listings(read_listings(str(SAMPLE1)).listings)
    train, scored = split_listings(clean, random_seed=42)
    model = build_boosted_pipeline().fit(train[INPUT_COLUMNS], train[TARGET])
    features = model[:-1].transform(scored[INPUT_COLUMNS])
    _assert_scored_as_each_member_would(model[-1], _with_gaps_and_infinities(features, 3 * len(features)))


def test_members_that_do_not_read_bins_are_scored_on_the_values_beside_those_that_do(listings: pd.DataFrame):
    from sklearn.tree import DecisionTreeRegressor

    from rental_pipeline.boosting import _binned_views, _boosted_trees

    train = listings.iloc[:600]
    features = np.nan_to_num(build_boosted_pipeline(QUICK)[:-1].fit_transform(train[INPUT_COLUMNS], train[TARGET]))
    mixed = AveragedRegressor(
        [("trees", _boosted_trees(QUICK, "squared_error")), ("tree", DecisionTreeRegressor(max_depth=6))]
    )
    mixed.fit(features, train[TARGET])
    _, views = _binned_views(mixed.estimators_, features)
    assert views[0] is not None and views[1] is None
    tiled = np.resize(features, (PREDICT_BLOCK_ROWS + 5, features.shape[1]))
    np.testing.assert_array_equal(mixed.predict(tiled), mixed.predict_whole(tiled))


def test_members_that_cannot_share_bins_are_scored_as_they_are(listings: pd.DataFrame):
    from dataclasses import replace

    from rental_pipeline.boosting import _binned_views, _boosted_trees

    train = listings.iloc[:600]
    features = build_boosted_pipeline(QUICK)[:-1].fit_transform(train[INPUT_COLUMNS], train[TARGET])
    apart = AveragedRegressor([
        ("fine", _boosted_trees(QUICK, "absolute_error")),
        ("coarse", _boosted_trees(replace(QUICK, max_bins=31), "absolute_error")),
    ]).fit(features, train[TARGET])
    assert _binned_views(apart.estimators_, features) is None
    tiled = np.resize(features, (PREDICT_BLOCK_ROWS + 5, features.shape[1]))
    np.testing.assert_array_equal(apart.predict(tiled), apart.predict_whole(tiled))


def test_the_default_averages_histogram_boosting_and_catboost_models():
    from rental_pipeline.boosting import averaged_models

    names = [name for name, _ in averaged_models(BoostingParams())]
    assert names == [
        "log_price_absolute_error", "log_price_absolute_error_2", "log_price_catboost_rmse", "log_price_catboost_mae",
    ]
    earlier = averaged_models(BoostingParams(squared_error_models=1, absolute_error_models=2, catboost_models=0))
    assert [(name, model.regressor.random_state) for name, model in earlier] == [
        ("log_price_squared_error", 42), ("log_price_absolute_error", 42), ("log_price_absolute_error_2", 43),
    ]
    with pytest.raises(ValueError, match="averages no models"):
        BoostingParams(absolute_error_models=0, catboost_models=0)


def test_skops_round_trip_needs_only_allowed_types(fitted, listings: pd.DataFrame):
    data = sio.dumps(fitted)
    untrusted = sio.get_untrusted_types(data=data)
    assert untrusted, "the project's own transformers are not skops defaults"
    assert [t for t in untrusted if not t.startswith(ALLOWED_TYPE_PREFIXES)] == []
    loaded = sio.loads(data, trusted=untrusted)
    scored = listings.iloc[600:][INPUT_COLUMNS]
    np.testing.assert_array_equal(loaded.predict(scored), fitted.predict(scored))


def test_review_date_feature_does_not_depend_on_the_batch(fitted, listings: pd.DataFrame):
    days = fitted["preprocessor"].named_transformers_["review_date"]
    assert days.reference_date_ == str(pd.to_datetime(listings.iloc[:600]["last_review"]).max().date())
    batch = listings.iloc[600:620][INPUT_COLUMNS].copy()
    together = fitted.predict(batch)
    newer = batch.assign(last_review=pd.Timestamp("2030-01-01"))  # far newer than anything in training
    mixed = pd.concat([batch.iloc[[3]], newer], ignore_index=True)
    alone = np.array([fitted.predict(batch.iloc[[i]])[0] for i in (0, 3, 19)])
    np.testing.assert_allclose(alone, together[[0, 3, 19]])
    np.testing.assert_allclose(fitted.predict(mixed)[0], together[3])


def test_feature_names_label_every_column_and_importances_use_them(fitted, listings: pd.DataFrame):
    names = fitted[:-1].get_feature_names_out()
    assert len(names) == len(set(names)) == fitted["regressor"].n_features_in_
    assert {
        "room_type", "last_review_days", "km_to_times_square", "name_bedrooms", "name_text_log_price",
        "host_room_log_price", "neighbourhood",
    } <= set(names)
    held_out = listings.iloc[600:]
    table = boosted_feature_importances(fitted, held_out, held_out[TARGET], n_repeats=2)
    assert list(table.columns) == ["feature", "mae_increase", "mae_increase_std"]
    assert set(table["feature"]) == set(names)
    assert table["mae_increase"].is_monotonic_decreasing


def test_counts_and_keywords_are_read_from_names():
    names = pd.DataFrame({"name": ["Two bedroom, 1.5 bath DUPLEX", "2BR/2BA w/ roof deck", "Cozy room", None]})
    features = pd.DataFrame(ListingNameFeatures().fit_transform(names),
                            columns=ListingNameFeatures().fit(names).get_feature_names_out())
    assert features["name_bedrooms"].tolist() == [2, 2, 0, 0]
    assert features["name_baths"].tolist() == [1.5, 2, 0, 0]
    assert features["name_says_duplex"].tolist() == [1, 0, 0, 0]
    assert features["name_says_outdoor"].tolist() == [0, 1, 0, 0]
    assert features["name_says_small"].tolist() == [0, 0, 1, 0]
    assert features.loc[3, "name_length"] == 0


def test_text_price_on_training_rows_is_cross_fitted(listings: pd.DataFrame):
    names, prices = listings[["name"]], listings[TARGET]
    encoder = CrossFittedTextPrice()
    out_of_fold = encoder.fit_transform(names, prices)
    in_sample = encoder.transform(names)
    log_price = np.log1p(prices.to_numpy())
    # Scored by ridges that never saw them, training rows look as hard as new ones.
    assert np.abs(out_of_fold[:, 0] - log_price).mean() > np.abs(in_sample[:, 0] - log_price).mean()
    np.testing.assert_array_equal(out_of_fold, CrossFittedTextPrice().fit_transform(names, prices))


@pytest.mark.slow
def test_beats_the_reference_forest_by_twelve_percent_on_the_real_sample():
    """Fitted on the train part only (29.40; refitted on train + validation, as the pipeline
    stores it, 28.93; the three-model default before it, 29.50 and 29.06)."""
    if not SAMPLE1.exists():
        pytest.skip(f"reference sample not found at ../shared/data/sample1.csv (looked in {SAMPLE1.parent})")
    from sklearn.metrics import mean_absolute_error

    from rental_pipeline.cleaning import clean_listings
    from rental_pipeline.listings import read_listings
    from rental_pipeline.split import split_listings

    clean, _ = clean_listings(read_listings(str(SAMPLE1)).listings)
    trainval, test = split_listings(clean)
    train, _ = split_listings(trainval, test_size=0.2, random_seed=42)
    pipeline = build_boosted_pipeline().fit(train[INPUT_COLUMNS], train[TARGET])
    test_mae = mean_absolute_error(test[TARGET], pipeline.predict(test[INPUT_COLUMNS]))
    assert test_mae <= 29.8, f"test MAE {test_mae:.2f}; the reference forest gets 33.85"
