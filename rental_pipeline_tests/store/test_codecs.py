"""Codecs: deterministic bytes (so digests repeat) and faithful round trips."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.preprocessing import FunctionTransformer

from rental_pipeline.store import ArtifactStore, CodecError, UntrustedTypesError, codec_for
from rental_pipeline.store.codecs import (
    decode_dataframe,
    decode_json,
    encode_dataframe,
    encode_json,
)
from rental_pipeline.store.model_codec import decode_model, encode_model, normalise_skops

FIT_SCRIPT = Path(__file__).with_name("model_fit.py")


def load_fit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("model_fit", FIT_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def listings_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.array([2539, 2595, 3647, 3831], dtype="int64"),
            "name": pd.Series(
                ["Clean & quiet apt", None, "THE VILLAGE OF HARLEM", "Cozy Entire Floor"],
                dtype="str",
            ),
            "price": np.array([149, 225, 150, 89], dtype="int64"),
            "latitude": [40.64749, 40.75362, np.nan, 40.68514],
            "last_review": pd.to_datetime(
                pd.Series(["2018-10-19", "2019-05-21", None, "2019-07-05"])
            ),
            "neighbourhood_group": pd.Series(
                ["Brooklyn", "Manhattan", "Manhattan", "Brooklyn"], dtype="str"
            ),
        }
    )


def test_dataframe_round_trip_keeps_dtypes_and_missing_values() -> None:
    frame = listings_frame()
    back = decode_dataframe(encode_dataframe(frame))
    pd.testing.assert_frame_equal(back, frame)
    assert str(back["name"].dtype) == "str" and back["name"].isna().tolist() == [
        False,
        True,
        False,
        False,
    ]
    assert (
        back["last_review"].dtype == frame["last_review"].dtype
        and back["last_review"].isna().sum() == 1
    )
    assert back["id"].dtype == np.int64 and back["latitude"].dtype == np.float64
    assert isinstance(back.index, pd.RangeIndex)


def test_dataframe_keeps_a_split_index_and_second_dates() -> None:
    frame = listings_frame().iloc[[3, 0, 2]]  # what a train/test split leaves
    frame = frame.assign(day=frame["last_review"].astype("datetime64[s]"))
    back = decode_dataframe(encode_dataframe(frame))
    pd.testing.assert_frame_equal(back, frame)
    assert back.index.tolist() == [3, 0, 2]
    assert str(back["day"].dtype) == "datetime64[s]"


def test_dataframe_bytes_are_deterministic_and_stable_through_a_round_trip() -> None:
    data = encode_dataframe(listings_frame())
    assert encode_dataframe(listings_frame()) == data  # independently built, equal frame
    assert encode_dataframe(decode_dataframe(data)) == data  # load-then-save makes no new version
    split = listings_frame().iloc[[3, 1]]
    assert encode_dataframe(decode_dataframe(encode_dataframe(split))) == encode_dataframe(split)


def test_dataframe_refuses_what_parquet_cannot_hold() -> None:
    with pytest.raises(CodecError, match="mixed"):
        encode_dataframe(pd.DataFrame({"mixed": pd.Series([1, "x"], dtype=object)}))
    with pytest.raises(CodecError, match="text column names"):
        encode_dataframe(pd.DataFrame({0: [1]}))


def test_json_is_sorted_indented_and_strict() -> None:
    metrics = {"r2": np.float64(0.56), "mae": 33.85, "n": np.int64(3801)}
    data = encode_json(metrics)
    assert data == b'{\n  "mae": 33.85,\n  "n": 3801,\n  "r2": 0.56\n}\n'
    assert decode_json(data) == {"mae": 33.85, "n": 3801, "r2": 0.56}
    with pytest.raises(CodecError):
        encode_json({"mae": float("nan")})


def test_identical_pipelines_give_identical_skops_bytes() -> None:
    fit = load_fit_module()
    first = encode_model(fit.fitted_pipeline())
    second = encode_model(fit.fitted_pipeline())
    assert first == second
    assert skops.io.dumps(fit.fitted_pipeline()) != skops.io.dumps(
        fit.fitted_pipeline()
    )  # why we normalise
    assert normalise_skops(first) == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
        assert infos[0].filename == "schema.json"
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert all(i.filename.split(".")[0].isdigit() for i in infos[1:])


@pytest.mark.slow
def test_skops_bytes_do_not_depend_on_the_process() -> None:
    fit = load_fit_module()
    here = hashlib.sha256(encode_model(fit.fitted_pipeline())).hexdigest()
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run(
        [sys.executable, str(FIT_SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert child.stdout.strip() == here


def test_model_round_trip_through_the_store(tmp_path: Path) -> None:
    fit = load_fit_module()
    frame, _ = fit.listings(n=50, seed=1)
    model = fit.fitted_pipeline()
    store = ArtifactStore(tmp_path)
    saved = store.save("inference_pipeline", model, type="model_export")
    assert (
        saved.version.metadata["format"] == "skops" and saved.version.files[0].path == "model.skops"
    )
    store.set_alias(saved.version.ref, "prod", reason="best validation MAE")
    again = store.save("inference_pipeline", fit.fitted_pipeline(), type="model_export")
    assert not again.created  # retraining to the same model makes no new version

    loaded = ArtifactStore(tmp_path).load("inference_pipeline:prod")
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(
        loaded.named_steps["forest"].feature_importances_,
        model.named_steps["forest"].feature_importances_,
    )


def shout(values):  # a function outside the allow-list
    return values


def test_types_outside_the_allow_list_are_refused() -> None:
    model = FunctionTransformer(shout).fit(np.ones((2, 1)))
    with pytest.raises(UntrustedTypesError, match=r"test_codecs\.shout") as refused:
        encode_model(model)
    assert refused.value.types == [f"{__name__}.shout"]
    with pytest.raises(UntrustedTypesError, match=r"test_codecs\.shout"):
        decode_model(skops.io.dumps(model))  # bytes that bypassed the save-time check
    assert isinstance(
        decode_model(encode_model(FunctionTransformer(np.log1p))), FunctionTransformer
    )


def test_encoding_in_one_pass_gives_the_bytes_of_normalising_what_skops_dumps() -> None:
    """encode_model builds the canonical archive from skops' state in memory; the bytes must be
    exactly those of writing skops' own archive and normalising it. Sets (sorted), tuples (lists
    in JSON), shared arrays and byte strings are all in this pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    from rental_pipeline.store.model_codec import _archive, _as_json, _canonical, _skops_state

    texts = ["sunny loft near the park", "quiet studio", "the loft and the view", "park view studio"]
    model = make_pipeline(TfidfVectorizer(stop_words=["the", "and", "near"]), FunctionTransformer(np.log1p))
    model.fit(texts)
    # a set, a tuple and bytes in the state, as skops meets them in other estimators
    model.steps[1][1].kw_args = {"names": {"park", "loft", "view"}, "where": (True, False), "tag": b"\x00bytes"}
    expected = normalise_skops(skops.io.dumps(model))
    assert _archive(*_canonical(*_skops_state(model))) == expected
    fit = load_fit_module()
    pipeline = fit.fitted_pipeline()
    assert encode_model(pipeline) == normalise_skops(skops.io.dumps(pipeline))
    # What the state looks like once JSON has read it back, and a key JSON would refuse is refused.
    state = {1: 1.5, None: [{"a": (3,)}], 2.5: "x", "k": {False: None}}
    assert _as_json(state) == json.loads(json.dumps(state))
    with pytest.raises(CodecError, match="tuple key"):
        _as_json({(1, 2): "x"})


def test_save_and_load_pick_the_codec_from_the_object(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    frame = listings_frame()
    store.save("clean_sample.csv", frame, type="clean_sample")
    store.save("metrics", {"mae": 33.85}, type="metrics")
    pd.testing.assert_frame_equal(store.load("clean_sample.csv"), frame)
    assert store.load("metrics:latest") == {"mae": 33.85}
    assert store.get("clean_sample.csv").files[0].path == "data.parquet"
    assert store.get("metrics").files[0].path == "value.json"
    assert store.save("clean_sample.csv", listings_frame(), type="clean_sample").created is False
    with pytest.raises(CodecError, match="no codec"):
        codec_for(object())
    store.write("raw", {"x": b"1"}, type="raw_data")
    with pytest.raises(CodecError, match="format"):
        store.load("raw")
