"""Model files: deterministic skops bytes (so digests repeat) and faithful round trips."""

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
import pytest
import skops.io
from sklearn.preprocessing import FunctionTransformer

from rental_pipeline.model_files import encode_model, normalise_skops
from rental_pipeline.store import ArtifactStore, CodecError

FIT_SCRIPT = Path(__file__).with_name("model_fit.py")


def load_fit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("model_fit", FIT_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_encoding_in_one_pass_gives_the_bytes_of_normalising_what_skops_dumps() -> None:
    """encode_model builds the canonical archive from skops' state in memory; the bytes must be
    exactly those of writing skops' own archive and normalising it. Sets (sorted), tuples (lists
    in JSON), shared arrays and byte strings are all in this pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    from rental_pipeline.model_files.archive import _archive, _as_json, _canonical, _skops_state

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
