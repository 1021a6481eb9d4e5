"""Batch predictions: chunked, per-row errors instead of a failed batch, from the CLI and as an asset."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rental_pipeline.cleaning import clean_listings
from rental_pipeline.cli import main
from rental_pipeline.features import FEATURE_COLUMNS, ForestParams, build_inference_pipeline
from rental_pipeline.predict import ERROR, PREDICTION, predict_csv, predict_frame
from rental_pipeline.store import ArtifactStore, default_root
from rental_pipeline.synthetic import generate_listings
from rental_pipeline_tests.conftest import materialize, materialized, run_config


@pytest.fixture(scope="module")
def model():
    clean, _ = clean_listings(generate_listings(rows=1_500, seed=21))
    pipeline = build_inference_pipeline(5, ForestParams(n_estimators=10, n_jobs=1, oob_score=False))
    return pipeline.fit(clean[FEATURE_COLUMNS], clean["price"])


@pytest.fixture
def listings_csv(tmp_path):
    frame = generate_listings(rows=400, seed=8).astype({"latitude": object, "minimum_nights": object})
    frame.loc[3, "latitude"] = "forty point seven"
    frame.loc[10, "room_type"] = "Hotel room"  # a category the model never saw
    frame.loc[11, "last_review"] = "last week"
    frame.loc[12, "minimum_nights"] = "2 nights"
    frame.loc[20, ["name", "reviews_per_month", "last_review"]] = np.nan  # missing is fine
    path = tmp_path / "listings.csv"
    frame.to_csv(path, index=False)
    return path


def test_bad_rows_get_an_error_and_the_rest_are_priced(model, listings_csv):
    frame = pd.read_csv(listings_csv, dtype=str, keep_default_na=False, na_values=[""])
    scored = predict_frame(model, frame)
    failed = scored[ERROR] != ""
    assert scored.index[failed].tolist() == [3, 10, 11, 12]
    assert "latitude: 'forty point seven' is not a number" in scored.loc[3, ERROR]
    assert "Hotel room" in scored.loc[10, ERROR]
    assert "last_review: 'last week'" in scored.loc[11, ERROR]
    assert "minimum_nights: '2 nights'" in scored.loc[12, ERROR]
    assert scored.loc[failed, PREDICTION].isna().all()
    assert scored.loc[~failed, PREDICTION].notna().all() and np.isfinite(scored.loc[20, PREDICTION])

    clean = generate_listings(rows=400, seed=8).drop(index=[3, 10, 11, 12])
    clean["last_review"] = pd.to_datetime(clean["last_review"])
    expected = model.predict(clean[FEATURE_COLUMNS]).round(2)
    np.testing.assert_allclose(scored.loc[~failed, PREDICTION].drop(index=20), np.delete(expected, [16]), rtol=1e-9)


def test_chunked_output_is_the_same_as_one_chunk(model, listings_csv, tmp_path):
    progress = []
    small = predict_csv(model, listings_csv, tmp_path / "small.csv", chunk_rows=37,
                        on_progress=lambda done, rows: progress.append(rows))
    whole = predict_csv(model, listings_csv, tmp_path / "whole.csv", chunk_rows=10_000)
    assert (tmp_path / "small.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert (small.rows, small.failed, small.predicted) == (whole.rows, whole.failed, whole.predicted) == (400, 4, 396)
    assert progress == [min(37 * (i + 1), 400) for i in range(11)]
    assert not list(tmp_path.glob("*.partial"))


def test_a_missing_column_fails_the_batch_clearly(model, tmp_path):
    path = tmp_path / "no_room_type.csv"
    generate_listings(rows=50, seed=1).drop(columns=["room_type"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"no column\(s\) \['room_type'\]"):
        predict_csv(model, path, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_cli_predict_with_the_prod_model(instance, listings_csv, tmp_path):
    materialize(instance)
    output = tmp_path / "priced.csv"
    result = CliRunner().invoke(main, ["predict", "--model", "inference_pipeline:prod", str(listings_csv), str(output)])
    assert result.exit_code == 0, result.output
    assert "400 rows: 396 predicted, 4 with an error" in result.output
    priced = pd.read_csv(output)
    assert list(priced.columns[-2:]) == [PREDICTION, ERROR] and len(priced) == 400

    missing = CliRunner().invoke(main, ["predict", "--model", "inference_pipeline:v7", str(listings_csv), str(output)])
    assert missing.exit_code == 1 and "v7" in missing.output


def test_batch_predictions_asset_uses_prod_and_stores_an_artifact(instance, listings_csv):
    config = run_config()
    config["ops"]["batch_predictions"] = {"config": {"source": str(listings_csv), "chunk_rows": 100}}
    metadata = materialized(materialize(instance, config, selection=dg.AssetSelection.all()))["batch_predictions"]
    assert metadata["model"] == "inference_pipeline:v0"
    assert (metadata["predicted"], metadata["failed"]) == (396, 4)
    stored = ArtifactStore(default_root()).load(metadata["artifact"])
    assert len(stored) == 400 and stored[PREDICTION].notna().sum() == 396
