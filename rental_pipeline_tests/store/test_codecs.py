"""Codecs: deterministic bytes (so digests repeat) and faithful round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rental_pipeline.store import ArtifactStore, CodecError, codec_for
from rental_pipeline.store.codecs import (
    decode_dataframe,
    decode_json,
    encode_dataframe,
    encode_json,
)
from rental_pipeline_tests.store.imports import store_imports


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
            "last_review": pd.to_datetime(pd.Series(["2018-10-19", "2019-05-21", None, "2019-07-05"])),
            "neighbourhood_group": pd.Series(["Brooklyn", "Manhattan", "Manhattan", "Brooklyn"], dtype="str"),
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
    assert back["last_review"].dtype == frame["last_review"].dtype and back["last_review"].isna().sum() == 1
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


def test_the_store_itself_holds_no_model_codec() -> None:
    """Models are stored by a library beside the store (``rental_pipeline.model_files``), which
    registers its codec: no store module imports skops or scikit-learn, even lazily."""
    for source, module, level in store_imports():
        assert level or module.split(".")[0] not in ("skops", "sklearn"), f"{source} imports {module}"


def test_without_the_model_codec_a_model_is_refused_not_pickled(tmp_path: Path, monkeypatch) -> None:
    """A store whose process never imported ``rental_pipeline.model_files`` names what it lacks."""
    from sklearn.linear_model import Ridge

    from rental_pipeline.store import codecs

    plain = {fmt: codec for fmt, codec in codecs._REGISTRY.items() if fmt in ("json", "parquet")}
    monkeypatch.setattr(codecs, "_REGISTRY", plain)
    store = ArtifactStore(tmp_path)
    with pytest.raises(CodecError, match=r"no codec stores a sklearn\.linear_model\._ridge\.Ridge") as refused:
        store.save("model", Ridge().fit([[0.0], [1.0]], [0.0, 1.0]), type="model_export")
    assert "(formats: json, parquet)" in str(refused.value) and "registers its codec" in str(refused.value)
    assert store.names() == []  # nothing was written
    store.write("model", {"model.skops": b"PK not read"}, type="model_export", metadata={"format": "skops"})
    with pytest.raises(CodecError, match=r"^no codec for format 'skops' \(known: json, parquet\)$"):
        store.load("model")
