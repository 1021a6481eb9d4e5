"""CatBoost models stored as their own JSON text: scored as CatBoost scores it, repeatable, and a
crafted text is refused before CatBoost's reader (which crashes on some) ever sees it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rental_pipeline.model_types  # noqa: F401 - the pipeline's trusted types, as every store has them
from rental_pipeline.catboost_trees import CatBoostTrees, UnsafeModelError, check_model_json, load_booster
from rental_pipeline.model_files import decode_model, encode_model

QUICK = {"iterations": 40, "learning_rate": 0.3, "depth": 4}


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(3)
    X = generator.normal(size=(600, 5))
    X[::17, 2] = np.nan  # CatBoost routes missing values; they must survive the text
    price = 80 + 30 * X[:, 0] - 10 * np.nan_to_num(X[:, 2]) + generator.normal(scale=5, size=600)
    y = np.log1p(price.clip(5, None))
    return X, y


@pytest.fixture(scope="module")
def fitted(rows) -> CatBoostTrees:
    return CatBoostTrees(loss="MAE", **QUICK).fit(*rows)


def test_scores_as_catboost_scores_its_own_text(fitted: CatBoostTrees, rows, tmp_path):
    from catboost import CatBoostRegressor

    path = tmp_path / "model.json"
    path.write_text(fitted.model_json_)
    own = CatBoostRegressor()
    own.load_model(str(path), format="json")
    X, _ = rows
    np.testing.assert_array_equal(fitted.predict(X), own.predict(X))
    assert fitted.score(*rows) > 0.5  # it learnt something: R² on its own rows


def test_the_same_fit_gives_the_same_text_and_another_seed_another(rows, fitted: CatBoostTrees):
    again = CatBoostTrees(loss="MAE", **QUICK).fit(*rows)
    assert again.model_json_ == fitted.model_json_
    other = CatBoostTrees(loss="MAE", random_state=7, **QUICK).fit(*rows)
    assert other.model_json_ != fitted.model_json_
    assert "model_guid" not in fitted.model_json_ and "catboost_version_info" not in fitted.model_json_


def test_the_stored_model_is_the_text_and_scores_the_same(fitted: CatBoostTrees, rows):
    data = encode_model(fitted)
    loaded = decode_model(data)
    X, _ = rows
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    assert encode_model(loaded) == data


def test_fitting_and_scoring_write_no_files(rows, tmp_path, monkeypatch):
    """CatBoost writes a catboost_info folder into the working directory unless told not to."""
    monkeypatch.chdir(tmp_path)
    CatBoostTrees(loss="RMSE", **QUICK).fit(*rows).predict(rows[0])
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_loss_or_a_feature_count_mismatch_is_refused(rows, fitted: CatBoostTrees):
    with pytest.raises(ValueError, match="unknown CatBoost loss 'Huber'"):
        CatBoostTrees(loss="Huber", **QUICK).fit(*rows)
    with pytest.raises(ValueError, match="fitted on 5"):
        fitted.predict(rows[0][:, :3])


def _crafted(text: str) -> dict[str, str]:
    """Model texts that CatBoost's own JSON reader crashes on or misreads, each named."""
    model = json.loads(text)
    tree = model["oblivious_trees"][0]
    cases = {}

    def case(name: str, change) -> None:
        document = copy.deepcopy(model)
        change(document)
        cases[name] = json.dumps(document)

    case("split index past the end", lambda d: d["oblivious_trees"][0]["splits"][0].update(split_index=10**7))
    case("deeper than its leaves", lambda d: d["oblivious_trees"][0].update(splits=tree["splits"] * 10))
    case("too few leaf values", lambda d: d["oblivious_trees"][0].update(leaf_values=tree["leaf_values"][:3]))
    case("a leaf value that is text", lambda d: d["oblivious_trees"][0]["leaf_values"].__setitem__(0, "x"))
    case("a split on a missing feature", lambda d: d["oblivious_trees"][0]["splits"][0].update(float_feature_index=99))
    case("a border the feature lacks", lambda d: d["oblivious_trees"][0]["splits"][0].update(border=1e30))
    case("a scale that is text", lambda d: d.update(scale_and_bias="zz"))
    case(
        "an extra feature",
        lambda d: d["features_info"]["float_features"].append(d["features_info"]["float_features"][0]),
    )
    case("categorical features", lambda d: d["features_info"].update(categorical_features=[]))
    case("unsorted borders", lambda d: d["features_info"]["float_features"][0]["borders"].reverse())
    case("an unknown key", lambda d: d.update(ctr_data={}))
    case("no trees", lambda d: d.update(oblivious_trees=[]))
    case("a named feature", lambda d: d["features_info"]["float_features"][0].update(feature_id="x"))
    case(
        "missing values handled as CatBoost never writes",
        lambda d: d["features_info"]["float_features"][0].update(has_nans=False, nan_value_treatment="AsTrue"),
    )
    case("a border beyond float32", lambda d: d["features_info"]["float_features"][-1]["borders"].append(3.5e38))
    case(
        "borders equal as float32",
        lambda d: d["features_info"]["float_features"][-1]["borders"].append(
            d["features_info"]["float_features"][-1]["borders"][-1] + 1e-12
        ),
    )
    case("a border too large for a double", lambda d: d["oblivious_trees"][0]["splits"][0].update(border=10**400))
    deepest = {**tree["splits"][0]}

    def many_leaves(d) -> None:  # 33 trees of depth 16: over MAX_LEAVES, in a few MB of text
        d["oblivious_trees"] = [{"leaf_values": [0.0] * 2**16, "splits": [deepest] * 16} for _ in range(33)]

    case("too many leaves", many_leaves)
    case("a non-finite leaf", lambda d: d["oblivious_trees"][0]["leaf_values"].__setitem__(0, 12345.678))
    cases["a non-finite leaf"] = cases["a non-finite leaf"].replace("12345.678", "NaN")
    cases["not JSON"] = text[: len(text) // 2]
    return cases


def test_crafted_texts_are_refused_without_crashing(fitted: CatBoostTrees, tmp_path):
    """In a child process, so that a text that got through to CatBoost's reader and crashed it
    fails this test instead of killing the test run."""
    cases = _crafted(fitted.model_json_)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    script = textwrap.dedent(
        """
        import json, sys
        from rental_pipeline.catboost_trees import UnsafeModelError, load_booster
        for name, text in json.load(open(sys.argv[1])).items():
            try:
                load_booster(text, 5)
            except UnsafeModelError as refused:
                print(name, "->", refused)
            else:
                print(name, "-> LOADED")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "cases.json")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcomes = dict(line.split(" -> ", 1) for line in done.stdout.splitlines())
    assert set(outcomes) == set(cases)
    assert all(message.startswith("refusing a CatBoost model: ") for message in outcomes.values()), outcomes
    assert "split index 10000000 is not" in outcomes["split index past the end"]
    assert "at most 16 splits" in outcomes["deeper than its leaves"]
    assert "over 2,097,152 leaves" in outcomes["too many leaves"]
    assert "finite float32" in outcomes["a border beyond float32"]
    assert "as float32 values too" in outcomes["borders equal as float32"]


def test_a_text_too_long_or_too_deep_is_refused_before_it_is_read():
    from rental_pipeline.catboost_trees import MAX_TEXT_CHARS

    with pytest.raises(UnsafeModelError, match="over 50,331,648"):
        load_booster(" " * (MAX_TEXT_CHARS + 1), 5)
    with pytest.raises(UnsafeModelError, match="not JSON it can read"):
        load_booster("[" * 200_000 + "]" * 200_000, 5)


def test_a_refit_scores_with_the_new_fit(rows, fitted: CatBoostTrees):
    X, y = rows
    model = CatBoostTrees(loss="MAE", **QUICK).fit(X, y)
    first = model.predict(X)
    model.fit(X, y[::-1])
    np.testing.assert_array_equal(model.predict(X), load_booster(model.model_json_, 5).predict(X, thread_count=1))
    assert not np.array_equal(model.predict(X), first)
    model.model_json_ = fitted.model_json_  # a text put in by hand is what is scored too
    np.testing.assert_array_equal(model.predict(X), fitted.predict(X))


def test_a_crafted_text_in_a_stored_model_fails_as_the_model_loads(fitted: CatBoostTrees):
    for name, text in _crafted(fitted.model_json_).items():
        bad = copy.deepcopy(fitted)
        bad.model_json_ = text
        bad.__dict__.pop("_booster_", None)
        with pytest.raises(UnsafeModelError, match="refusing a CatBoost model"):
            decode_model(encode_model(bad))
    extra = copy.deepcopy(fitted)
    extra.shadow_ = np.expm1  # a trusted function, but no attribute of a fitted CatBoostTrees
    with pytest.raises(UnsafeModelError, match=r"unexpected attributes \['shadow_'\]"):
        decode_model(encode_model(extra))
    wrong_width = copy.deepcopy(fitted)
    wrong_width.n_features_in_ = 6
    with pytest.raises(UnsafeModelError, match="expected 6 float features, found 5"):
        decode_model(encode_model(wrong_width))


def test_the_check_keeps_what_catboost_wrote(fitted: CatBoostTrees):
    document = json.loads(fitted.model_json_)
    assert check_model_json(document, 5) == document
    with pytest.raises(UnsafeModelError):
        load_booster("[]", 5)
