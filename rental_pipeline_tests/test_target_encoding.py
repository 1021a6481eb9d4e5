"""The host and neighbourhood encodings learn from training prices only, out of fold, and travel
inside the fitted model."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rental_pipeline.boosting import INPUT_COLUMNS
from rental_pipeline.cleaning import clean_listings
from rental_pipeline.features import TARGET
from rental_pipeline.model_params import BoostingParams
from rental_pipeline.predict import predict_frame
from rental_pipeline.split import split_listings
from rental_pipeline.synthetic import generate_listings
from rental_pipeline.target_encoding import HostRoomKey, host_price
from rental_pipeline.training import train_inference_pipeline

QUICK = BoostingParams(max_iter=8, learning_rate=0.5, max_leaf_nodes=15, n_jobs=1, catboost_iterations=8)


@pytest.fixture(scope="module")
def listings() -> pd.DataFrame:
    clean, _ = clean_listings(generate_listings(rows=700, seed=11))
    return clean


def _features_and_predictions(listings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """The graph's steps as plain functions: trainval/test split, training (train, validation,
    then the refit on train + validation), and every listing's features and price from the model."""
    trainval, _ = split_listings(listings)
    result = train_inference_pipeline(trainval, boosting=QUICK, importances=False)
    assert result.metrics["final_fit_rows"] == len(trainval)  # the stored model saw validation rows too
    model = result.pipeline
    every = listings[INPUT_COLUMNS]
    return model[:-1].transform(every), model.predict(every), [result.metrics["val_mae"]]


def test_changing_the_prices_of_test_rows_changes_no_feature_of_any_row(listings: pd.DataFrame):
    _, test = split_listings(listings)
    test_ids = set(test["id"])
    in_test = listings["id"].isin(test_ids)
    repriced = listings.assign(price=listings[TARGET].where(~in_test, listings[TARGET] * 3 + 17))
    assert split_listings(repriced)[1]["id"].tolist() == test["id"].tolist()  # the split ignores prices

    features, predicted, val_mae = _features_and_predictions(listings)
    features_after, predicted_after, val_mae_after = _features_and_predictions(repriced)
    np.testing.assert_array_equal(features_after, features)
    np.testing.assert_array_equal(predicted_after, predicted)
    assert val_mae_after == val_mae

    # The comparison can see a leak: the same change to training rows moves the host encodings.
    trainval_ids = set(listings["id"]) - test_ids
    some_train = listings["id"].isin(sorted(trainval_ids)[:100])
    changed = listings.assign(price=listings[TARGET].where(~some_train, listings[TARGET] * 3 + 17))
    features_changed, _, _ = _features_and_predictions(changed)
    host_column = -2  # host_room_log_price, then neighbourhood, are the preprocessor's last two columns
    assert not np.array_equal(features_changed[:, host_column], features[:, host_column])


def test_a_training_row_is_encoded_without_its_own_price(listings: pd.DataFrame):
    """Cross-fitted: a row's encoding on the training rows comes from the other folds' rows, so
    its own price cannot move it; new rows are encoded from every training row."""
    rows = listings[["host_id", "room_type"]]
    encoder = host_price(random_state=42)
    encoded = encoder.fit_transform(rows, listings[TARGET])[:, 0]
    for row in (0, 7, 123):
        repriced = listings[TARGET].copy()
        repriced.iloc[row] *= 5
        again = host_price(random_state=42).fit_transform(rows, repriced)[:, 0]
        assert again[row] == encoded[row]
    in_sample = encoder.transform(rows)[:, 0]
    log_price = np.log1p(listings[TARGET].to_numpy())
    assert np.abs(encoded - log_price).mean() > np.abs(in_sample - log_price).mean()


def test_host_and_room_type_make_one_numeric_key():
    rows = pd.DataFrame(
        {
            "host_id": [10, 10, "10", 11, None, "x", 12.5, 10],
            "room_type": ["Private room", "Entire home/apt", "Private room", "Private room",
                          "Private room", "Private room", "Private room", "Hotel room"],
        }
    )
    key = HostRoomKey().fit(rows.iloc[:4])
    got = key.transform(rows)[:, 0]
    assert list(key.room_types_) == ["Entire home/apt", "Private room"]
    assert got[0] == got[2] != got[1]  # a host id read as text is the same host
    assert got[3] != got[0]
    assert np.isnan(got[4:7]).all()  # missing, not a number, not a whole number: a missing key
    assert got[7] == 10 * 3  # a room type unseen in training: code 0, still this host
    # Text as `predict` reads it (Arrow-backed): cast by Arrow when all numbers, else as above.
    as_text = rows.astype({"host_id": "str"}).assign(host_id=lambda f: f["host_id"].where(f.index != 5, "x"))
    np.testing.assert_array_equal(key.transform(as_text)[:, 0], got)
    np.testing.assert_array_equal(key.transform(as_text.drop(index=[4, 5, 6]))[:, 0], got[[0, 1, 2, 3, 7]])


def test_a_batch_scored_by_predict_gets_the_same_prices_as_the_model(listings: pd.DataFrame):
    """`predict` reads every column but numbers and dates as text, host ids included; the host
    key reads them back as the numbers the model was fitted on."""
    trainval, test = split_listings(listings)
    model = train_inference_pipeline(trainval, boosting=QUICK, importances=False).pipeline
    as_read = test.astype({"host_id": str})
    scored = predict_frame(model, as_read)
    assert (scored["prediction_error"] == "").all()
    np.testing.assert_allclose(scored["predicted_price"], model.predict(test[INPUT_COLUMNS]).round(2))


def _retargeted(data: bytes, class_name: str, module: str, new_class: str) -> bytes:
    """The stored model's archive with every node of `class_name` naming `module.new_class`."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("__class__") == class_name:
                value["__module__"], value["__class__"] = module, new_class
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, json.dumps(schema) if name == "schema.json" else source.read(name))
    return out.getvalue()


@pytest.mark.parametrize(
    ("stored", "crafted"),
    [
        ("KFold", ("subprocess", "Popen")),  # the encoder's folds
        ("LogPriceTargetEncoder", ("sklearn.preprocessing._target_encoder", "TargetEncoder")),  # not reviewed here
        ("HostRoomKey", ("os", "system")),
    ],
)
def test_a_stored_model_with_its_encoders_retargeted_is_refused(listings: pd.DataFrame, stored, crafted):
    """The encoders' nodes are trusted by exact (loader, type) pair, like every other node: the
    same file naming another type is refused, naming it, before anything is imported."""
    import rental_pipeline.model_types  # noqa: F401 - the pipeline's trusted types, as every store has them
    from rental_pipeline.store import CodecError, codec_named

    model_file = codec_named("skops")  # what the store writes and reads a model with
    trainval, _ = split_listings(listings)
    model = train_inference_pipeline(trainval, boosting=QUICK, importances=False, final_fit=False).pipeline
    data = model_file.encode(model)
    assert model_file.decode(data).predict(listings[INPUT_COLUMNS]).shape == (len(listings),)
    module, name = crafted
    with pytest.raises(CodecError, match=f"refusing to load a model .*: .*{module}.{name}"):
        model_file.decode(_retargeted(data, stored, module, name))


def test_a_host_id_too_large_for_an_exact_key_is_an_unknown_host_not_a_failed_batch():
    """A key must name one host and one room type: an id whose key is not exact in a float (or
    overflows to infinity) would merge hosts, or make the encoder refuse the whole batch."""
    rows = pd.DataFrame({"host_id": [10, 11], "room_type": ["Private room", "Entire home/apt"]})
    encoder = host_price(0).fit(pd.concat([rows] * 5, ignore_index=True), [60.0, 200.0] * 5)
    huge = pd.DataFrame(
        {"host_id": [1e308, 2.0**53, 2.0**53 + 2, -(2.0**60), 10], "room_type": ["Private room"] * 5}
    )
    key = encoder["key"].transform(huge)[:, 0]
    assert np.isnan(key[:4]).all()
    assert key[4] == 10 * 3 + 2
    encoded = encoder.transform(huge)[:, 0]  # scored, not refused
    assert np.isfinite(encoded).all()
    assert encoded[0] == encoded[1] == encoded[2] == encoded[3] != encoded[4]
