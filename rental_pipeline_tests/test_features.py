import numpy as np
import pandas as pd
import pytest

from rental_pipeline.features import (
    FEATURE_COLUMNS,
    TARGET,
    DaysBeforeReference,
    ForestParams,
    build_forest_pipeline,
    feature_importances,
)


def test_reference_date_is_fixed_at_fit_time():
    days = DaysBeforeReference().fit(pd.DataFrame({"last_review": pd.to_datetime(["2019-01-01", "2019-07-01"])}))
    assert days.reference_date_ == "2019-07-01"
    alone = days.transform(pd.DataFrame({"last_review": pd.to_datetime(["2019-06-30"])}))
    with_newer = days.transform(pd.DataFrame({"last_review": pd.to_datetime(["2019-06-30", "2020-01-01"])}))
    assert alone[0, 0] == with_newer[0, 0] == 1
    assert with_newer[1, 0] < 0


def test_missing_dates_count_from_2010():
    days = DaysBeforeReference().fit(pd.DataFrame({"last_review": pd.to_datetime(["2010-01-11", None])}))
    assert days.transform(pd.DataFrame({"last_review": [pd.NaT]}))[0, 0] == 10
    assert days.get_feature_names_out().tolist() == ["last_review_days"]


def test_dates_as_text_work_like_dates():
    days = DaysBeforeReference().fit(pd.DataFrame({"last_review": ["2019-07-01"]}))
    assert days.transform(pd.DataFrame({"last_review": ["2019-06-21", None]})).ravel().tolist()[0] == 10


@pytest.fixture(scope="module")
def fitted(request):
    from rental_pipeline.cleaning import clean_listings
    from rental_pipeline.synthetic import generate_listings

    clean, _ = clean_listings(generate_listings(rows=800, seed=3))
    pipeline = build_forest_pipeline(5, ForestParams(n_estimators=10, n_jobs=1, oob_score=False))
    pipeline.fit(clean[FEATURE_COLUMNS], clean[TARGET])
    return pipeline, clean


def test_feature_names_come_from_the_fitted_preprocessor(fitted):
    pipeline, _ = fitted
    table = feature_importances(pipeline)
    names = set(table["feature"])
    assert names == set(pipeline["preprocessor"].get_feature_names_out())
    assert len(table) == pipeline["regressor"].n_features_in_
    assert {"ordinal_cat__room_type", "transform_date__last_review_days", "impute_zero__latitude"} <= names
    assert {f"non_ordinal_cat__neighbourhood_group_{b}" for b in ("Bronx", "Manhattan")} <= names
    assert sum(n.startswith("transform_name__") for n in names) == 5
    assert table["importance"].is_monotonic_decreasing
    assert table["importance"].sum() == pytest.approx(1.0)


def test_a_prediction_does_not_depend_on_its_batch(fitted):
    pipeline, clean = fitted
    batch = clean[FEATURE_COLUMNS].head(50)
    together = pipeline.predict(batch)
    alone = np.array([pipeline.predict(batch.iloc[[i]])[0] for i in (0, 17, 49)])
    np.testing.assert_allclose(alone, together[[0, 17, 49]])


def test_rows_with_missing_values_are_scored(fitted):
    pipeline, clean = fitted
    row = clean[FEATURE_COLUMNS].head(1).copy()
    row["name"] = pd.Series([None], dtype="str", index=row.index)
    row["last_review"] = pd.NaT
    row["reviews_per_month"] = np.nan
    assert np.isfinite(pipeline.predict(row)).all()
