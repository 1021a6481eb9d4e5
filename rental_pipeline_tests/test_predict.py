"""Batch predictions: chunked, per-row errors instead of a failed batch, from the CLI and as an asset."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rental_pipeline.cleaning import clean_listings
from rental_pipeline.cli import main
from rental_pipeline.features import FEATURE_COLUMNS, ForestParams, build_forest_pipeline
from rental_pipeline.home import open_store
from rental_pipeline.predict import (
    DATE_FEATURES,
    ERROR,
    NUMERIC_FEATURES,
    PREDICTION,
    PredictionError,
    category_domains,
    predict_csv,
    predict_frame,
)
from rental_pipeline.synthetic import generate_listings
from rental_pipeline_tests.conftest import materialize, materialized, run_config


@pytest.fixture(scope="module")
def model():
    clean, _ = clean_listings(generate_listings(rows=1_500, seed=21))
    pipeline = build_forest_pipeline(5, ForestParams(n_estimators=10, n_jobs=1, oob_score=False))
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_batch_predictions_asset_uses_prod_and_stores_an_artifact(instance, listings_csv):
    config = run_config()
    config["ops"]["batch_predictions"] = {"config": {"source": str(listings_csv), "chunk_rows": 100}}
    metadata = materialized(materialize(instance, config, selection=dg.AssetSelection.all()))["batch_predictions"]
    assert metadata["model"] == "inference_pipeline:v0"
    assert (metadata["predicted"], metadata["failed"]) == (396, 4)
    stored = open_store().load(metadata["artifact"])
    assert len(stored) == 400 and stored[PREDICTION].notna().sum() == 396


# --- the same output as the pandas implementation it replaced ------------------------------------


def predict_frame_as_before(model, chunk: pd.DataFrame) -> pd.DataFrame:
    """`predict_frame` as it was before typing moved to Arrow: pandas parsing, label-based errors;
    plus the rule added since, that a category the model never saw (or a missing one it cannot
    impute) is an error rather than a guess (`category_domains` is tested on its own below)."""
    errors = pd.Series("", index=chunk.index, dtype=object)
    domains = category_domains(model)
    features = {}
    for column in [str(c) for c in model.feature_names_in_]:
        values = chunk[column]
        if column in NUMERIC_FEATURES:
            typed, what = pd.to_numeric(values, errors="coerce"), "not a number"
        elif column in DATE_FEATURES:
            typed, what = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce"), "not a YYYY-MM-DD date"
        else:
            typed, what = values.astype("str"), ""
        bad = typed.isna() & values.notna() if what else pd.Series(False, index=chunk.index)
        if bad.any():
            errors[bad] += [f"{column}: {value!r} is {what}; " for value in values[bad]]
        if column in domains:
            known = domains[column].known
            unseen = values.notna() & ~values.isin(known)
            errors[unseen] += [
                f"{column}: {value!r} was not seen in training (known: {', '.join(sorted(known))}); "
                for value in values[unseen]
            ]
            if not domains[column].missing_ok:
                errors[values.isna()] += f"{column}: missing, and the model saw no listing without one in training; "
        features[column] = typed
    features = pd.DataFrame(features, index=chunk.index)
    predictions = pd.Series(np.nan, index=chunk.index)

    def predict_or_blame(rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        try:
            predictions[rows.index] = model.predict(rows)
        except ValueError as error:
            if len(rows) == 1:
                errors[rows.index] = f"the model refused this row ({str(error).splitlines()[0]}); "
                return
            predict_or_blame(rows.iloc[: len(rows) // 2])
            predict_or_blame(rows.iloc[len(rows) // 2 :])

    predict_or_blame(features[errors == ""])
    return chunk.assign(**{PREDICTION: predictions.round(2), ERROR: errors.str.rstrip("; ")})


def predict_csv_as_before(model, source, destination, chunk_rows: int) -> tuple[int, int]:
    rows = failed = 0
    with open(source, "rb") as handle, open(destination, "w", newline="", encoding="utf-8") as out:
        reader = pd.read_csv(handle, chunksize=chunk_rows, dtype=str, keep_default_na=False, na_values=[""])
        for number, chunk in enumerate(reader):
            scored = predict_frame_as_before(model, chunk)
            scored.to_csv(out, index=False, header=number == 0)
            rows += len(scored)
            failed += int((scored[ERROR] != "").sum())
    return rows, failed


@pytest.fixture(scope="module")
def boosted():
    from rental_pipeline.boosting import INPUT_COLUMNS, BoostingParams, build_boosted_pipeline

    clean, _ = clean_listings(generate_listings(rows=1_500, seed=22))
    pipeline = build_boosted_pipeline(BoostingParams(max_iter=20, learning_rate=0.3, n_jobs=1, catboost_iterations=20))
    return pipeline.fit(clean[INPUT_COLUMNS], clean["price"])


# Text where Arrow's parsing and pandas' could part ways: spaces, signs, exponents, long mantissas,
# words for infinity, non-ASCII digits, impossible or out-of-range dates, unknown categories.
AWKWARD_VALUES = {
    "latitude": ["abc", " 40.71 ", "40.712345678901234567", "1,5", ".", "-", "4O.7", "-0", "nan", "1e1", "١٢"],
    "longitude": ["-73.9e0", "+-73.9", "-73.95", "inf", "-Infinity", "0x10", "", "-.5", "5.", "1_000", "−73.9"],
    "minimum_nights": ["2 nights", "99999999999999999999", "+5", "00012", "1E3", "NaN", "3.0", " 7", "7 ", "٣", "2"],
    "last_review": ["2019-6-5", "2019-02-30", " 2019-06-05", "1899-12-31", "2100-01-01", "2020-02-29",
                    "2019-06-05T00:00", "last week", "2019/06/05", "0000-01-01", "2019-13-01"],
    "room_type": ["Hotel room", "Entire home/apt", "", "private room", "Shared room", None, "x", "y", "z", "w", "v"],
    "name": ["İstanbul 2 bed", "ΣΑΣ", "K 3 br", "🏠 1.5 bath", "٣ bedroom", None, "1.5.5 ba", "x", "", "2BR", "a"],
}


def awkward_listings(rows: int = 300) -> pd.DataFrame:
    """Synthetic listings with the awkward values spread over different rows."""
    frame = generate_listings(rows=rows, seed=8).astype(object)
    for column, values in AWKWARD_VALUES.items():
        for offset, value in enumerate(values):
            frame.loc[7 * offset + list(AWKWARD_VALUES).index(column), column] = value
    return frame


@pytest.mark.slow
@pytest.mark.parametrize("which", ["model", "boosted"])
def test_typing_errors_and_prices_are_as_before(which, request, tmp_path):
    fitted = request.getfixturevalue(which)
    path = tmp_path / "awkward.csv"
    awkward_listings().to_csv(path, index=False)
    for chunk in (pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]),
                  pd.read_csv(path, dtype=object, keep_default_na=False, na_values=[""])):
        scored, expected = predict_frame(fitted, chunk), predict_frame_as_before(fitted, chunk)
        assert scored[ERROR].tolist() == expected[ERROR].tolist()
        assert (expected[ERROR] != "").any() and (expected[ERROR] == "").any()
        np.testing.assert_array_equal(scored[PREDICTION].to_numpy(), expected[PREDICTION].to_numpy())


def csv_variants() -> dict[str, bytes]:
    """Files pandas' reader copes with in its own way; Arrow must read them the same or hand over."""
    listings = generate_listings(rows=200, seed=4)
    listings.loc[5, "name"] = 'A "quoted", multi-line\nname'
    text = listings.to_csv(index=False)
    return {
        "plain": text.encode(),
        "awkward values": awkward_listings().to_csv(index=False).encode(),
        "windows line ends": listings.to_csv(index=False, lineterminator="\r\n").encode(),
        "byte order mark": ("\ufeff" + text).encode(),
        "everything quoted": listings.to_csv(index=False, quoting=1).encode(),
        "blank lines": text.replace("\n", "\n\n", 9).encode(),
        "no final newline": text.rstrip("\n").encode(),
        "a short row": (text + "1,short\n").encode(),
        "a long row": (text + ",".join(["1"] * 20) + "\n").encode(),
        "cut inside a quoted field": (text + ",".join(["1"] * 15) + ',"unterminated').encode(),
        "old Mac line ends": text.replace("\n", "\r", 4).encode(),
        "a carriage return before a row": (text + "\r," + ",".join(["1"] * 15) + "\n").encode(),
        "only a header": text.splitlines(keepends=True)[0].encode(),
        "a repeated column name": text.replace("host_name", "id", 1).encode(),
        "an unnamed column": text.replace("host_name", "", 1).encode(),
        "extra columns": listings.assign(note="x,y", predicted_price="7").to_csv(index=False).encode(),
        "not UTF-8": text.encode() + b"\xff\xfe,broken\n",
        "empty": b"",
    }


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(csv_variants()))
def test_awkward_files_score_as_before(boosted, variant, tmp_path):
    source = tmp_path / "listings.csv"
    source.write_bytes(csv_variants()[variant])
    if variant == "empty":  # pandas' "No columns to parse from file" became a sentence
        with pytest.raises(PredictionError, match=r"listings\.csv: file is empty: expected a header"):
            predict_csv(boosted, source, tmp_path / "after.csv")
        assert list(tmp_path.iterdir()) == [source]
        return
    for chunk_rows in (37, 100_000):
        try:
            expected = predict_csv_as_before(boosted, source, tmp_path / "before.csv", chunk_rows)
        except Exception as error:  # the whole batch failed before: it must fail the same way
            with pytest.raises(type(error)) as raised:
                predict_csv(boosted, source, tmp_path / "after.csv", chunk_rows=chunk_rows)
            assert str(raised.value) == str(error)
            continue
        summary = predict_csv(boosted, source, tmp_path / "after.csv", chunk_rows=chunk_rows)
        assert (summary.rows, summary.failed) == expected
        if not (tmp_path / "before.csv").read_bytes():
            continue
        read = {"dtype": str, "keep_default_na": False, "na_values": [""]}
        after, before = pd.read_csv(tmp_path / "after.csv", **read), pd.read_csv(tmp_path / "before.csv", **read)
        pd.testing.assert_frame_equal(after.drop(columns=PREDICTION), before.drop(columns=PREDICTION))
        np.testing.assert_array_equal(after[PREDICTION].astype(float), before[PREDICTION].astype(float))
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "after.csv"), pd.read_csv(tmp_path / "before.csv"))


# --- never a guess, never a traceback, never a trace of a failure ------------------------------


def odd_categories(rows: int = 60) -> pd.DataFrame:
    frame = generate_listings(rows=rows, seed=9).astype({"room_type": object, "neighbourhood_group": object})
    frame.loc[1, "room_type"] = "Treehouse"
    frame.loc[2, "room_type"] = np.nan  # an empty field
    frame.loc[3, "neighbourhood_group"] = "Long Island"
    frame.loc[4, "neighbourhood_group"] = np.nan
    frame.loc[5, "room_type"] = "private room"  # not the spelling the model saw
    return frame


@pytest.mark.parametrize("which", ["model", "boosted"])
def test_a_category_the_model_never_saw_gets_an_error_not_a_price(which, request, tmp_path):
    fitted = request.getfixturevalue(which)
    path = tmp_path / "odd.csv"
    odd_categories().to_csv(path, index=False)
    predict_csv(fitted, path, tmp_path / "priced.csv")
    priced = pd.read_csv(tmp_path / "priced.csv", dtype={ERROR: str}, keep_default_na=False, na_values=[""])
    errors = priced[ERROR].fillna("")
    known = "known: Entire home/apt, Private room, Shared room"
    assert f"room_type: 'Treehouse' was not seen in training ({known})" in errors[1]
    assert "room_type: missing, and the model saw no listing without one in training" in errors[2]
    assert "neighbourhood_group: 'Long Island' was not seen in training" in errors[3]
    assert "room_type: 'private room' was not seen in training" in errors[5]
    refused = sorted([1, 2, 3, 5] + ([] if which == "model" else [4]))  # the forest imputes a missing borough
    assert errors.index[errors != ""].tolist() == refused
    assert priced.loc[refused, PREDICTION].isna().all() and priced.drop(index=refused)[PREDICTION].notna().all()


def test_category_domains_are_what_training_saw(model, boosted):
    training = clean_listings(generate_listings(rows=1_500, seed=21))[0]
    forest = category_domains(model)
    assert forest["room_type"].known == set(training["room_type"]) and not forest["room_type"].missing_ok
    assert forest["neighbourhood_group"].known == set(training["neighbourhood_group"])
    assert forest["neighbourhood_group"].missing_ok  # most-frequent imputed, as in the reference
    for column, domain in category_domains(boosted).items():
        assert not domain.missing_ok and domain.known == set(
            clean_listings(generate_listings(rows=1_500, seed=22))[0][column]
        )
    assert set(category_domains(boosted)) == {"room_type", "neighbourhood_group"}


@pytest.mark.slow
def test_predict_refuses_what_it_cannot_do_in_one_line_and_leaves_nothing(instance, listings_csv, tmp_path):
    materialize(instance)
    before = listings_csv.read_bytes()

    def predict(*args: str):
        return CliRunner().invoke(main, ["predict", *args])

    cases = {
        "missing folder": (
            [str(listings_csv), str(tmp_path / "no" / "such" / "out.csv")],
            f"output folder {tmp_path / 'no' / 'such'} does not exist",
        ),
        "output is the input": ([str(listings_csv), str(listings_csv)], "would overwrite the input file"),
        "output beside the input's partial": (
            [str(listings_csv.with_name("in.csv.partial")), str(listings_csv.with_name("in.csv"))],
            "would overwrite the input file",
        ),
        "output is a folder": ([str(listings_csv), str(tmp_path)], "is a folder; give the output file's name"),
        "not a model": (
            ["--model", "clean_sample:latest", str(listings_csv), str(tmp_path / "o.csv")],
            "clean_sample:v0 (type clean_sample) is a pandas.DataFrame, not a fitted model",
        ),
        "an empty file": ([str(write(tmp_path / "empty.csv", b"")), str(tmp_path / "o.csv")], "file is empty"),
        "a zip file": ([str(write(tmp_path / "in.zip", b"PK\x03\x04" + b"\x00" * 50)), str(tmp_path / "o.csv")],
                       "is zip-compressed; only .csv and .csv.gz files are read"),
        "a named pipe": ([str(fifo(tmp_path / "pipe.csv")), str(tmp_path / "o.csv")], "is a named pipe"),
    }
    write(listings_csv.with_name("in.csv.partial"), before)
    for name, (args, says) in cases.items():
        result = predict(*args)
        assert result.exit_code == 1, name
        assert says in result.output and "Traceback" not in result.output, (name, result.output)
        assert result.output.strip().splitlines()[-1].startswith("Error: "), name
    assert listings_csv.read_bytes() == before
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.rglob("*.csv.partial.partial"))
    assert sorted(p.name for p in tmp_path.glob("*.partial")) == ["in.csv.partial"]  # the one made on purpose


def test_gzip_input_scores_like_the_plain_file(model, listings_csv, tmp_path):
    import gzip

    packed = tmp_path / "listings.csv.gz"
    packed.write_bytes(gzip.compress(listings_csv.read_bytes()))
    progress = []
    predict_csv(
        model, packed, tmp_path / "from_gz.csv", chunk_rows=50, on_progress=lambda done, rows: progress.append(done)
    )
    predict_csv(model, listings_csv, tmp_path / "from_csv.csv")
    assert (tmp_path / "from_gz.csv").read_bytes() == (tmp_path / "from_csv.csv").read_bytes()
    assert progress[-1] == packed.stat().st_size  # progress counts the bytes of the file on disk

    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(packed.read_bytes()[:-200])
    with pytest.raises(PredictionError, match="cut.csv.gz: is gzip-compressed but damaged or cut off"):
        predict_csv(model, cut, tmp_path / "o.csv")
    assert not list(tmp_path.glob("o.csv*"))


def test_an_interrupted_batch_leaves_no_partial_output(model, listings_csv, tmp_path):
    def interrupt(done: int, rows: int) -> None:
        if rows >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_csv(model, listings_csv, tmp_path / "out.csv", chunk_rows=50, on_progress=interrupt)
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.csv.partial").exists()


def test_windows_line_ends_price_the_same(model, tmp_path):
    frame = generate_listings(rows=200, seed=6)
    frame.loc[7, "name"] = "Loft\nby the park"
    unix, windows = tmp_path / "unix.csv", tmp_path / "windows.csv"
    frame.to_csv(unix, index=False)
    windows.write_bytes(unix.read_bytes().replace(b"\n", b"\r\n"))
    predict_csv(model, unix, tmp_path / "a.csv")
    predict_csv(model, windows, tmp_path / "b.csv")
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    pd.testing.assert_series_equal(a[PREDICTION], b[PREDICTION])


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def fifo(path):
    import os

    os.mkfifo(path)
    return path


def predict_pinned(instance, pin: str, **config):
    from rental_pipeline.definitions import all_assets
    from rental_pipeline.io_manager import ArtifactIOManager, ArtifactStoreResource

    artifact_store = ArtifactStoreResource()
    return dg.materialize(
        all_assets,
        instance=instance,
        selection=["batch_predictions"],
        run_config={"ops": {"batch_predictions": {"config": config}}} if config else None,
        resources={
            "artifact_store": artifact_store,
            "io_manager": ArtifactIOManager(artifact_store=artifact_store, pins={"inference_pipeline": pin}),
        },
        raise_on_error=False,
    )


@pytest.mark.slow
def test_an_io_manager_pin_chooses_the_model_batch_predictions_scores_with(instance):
    """A pin is a version chosen on purpose: batch_predictions honours it like any reader, whether
    it computes or the run cache holds its result, and refuses a config naming another model."""
    store = open_store()
    materialize(instance)
    materialize(instance, run_config(training={"max_tfidf_features": 2}), selection=["inference_pipeline"])
    store.set_alias("inference_pipeline:v1", "prod", reason="a later model", force=True)
    for _ in range(2):  # computed, then reused from the run cache
        result = predict_pinned(instance, "v0")
        assert result.success
        assert materialized(result)["batch_predictions"]["model"] == "inference_pipeline:v0"
        assert "inference_pipeline:v0" in store.get("batch_predictions:latest").inputs
    for named in ("inference_pipeline:v1", "prod", "v1"):  # "prod" too: it is the default's meaning, said
        conflicting = predict_pinned(instance, "v0", model=named)
        assert not conflicting.success
        failure = next(e for e in conflicting.all_events if e.event_type_value == "STEP_FAILURE")
        assert "remove one of them" in str(failure.event_specific_data.error)
    assert predict_pinned(instance, "v0", model="v0").success  # the same version twice is no conflict
    assert predict_pinned(instance, "inference_pipeline:v0", model="v0").success  # a pin may be a whole ref
