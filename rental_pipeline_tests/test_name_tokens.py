"""Batch tokenizing of listing names finds exactly what the per-name Python code finds.

The per-name implementations the vectorised code replaced are kept here as oracles: the name
features' Python loop, and scikit-learn's own analyzer and `TfidfVectorizer.transform`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

import rental_pipeline.boosting as boosting
from rental_pipeline.boosting import NAME_KEYWORDS, CrossFittedTextPrice, ListingNameFeatures
from rental_pipeline.name_tokens import listing_tokens, name_array, tfidf_matrix, word_tokens
from rental_pipeline_tests.conftest import SAMPLE1

TRICKY_NAMES = [
    "",
    None,
    np.nan,
    "2BR",
    "2br/2ba",
    "1.5ba",
    "1.55",
    "2.3",
    "1.5.5 bath",
    "1.5.5.5 bedrooms",
    "x1.5.5.5.5y 12.5.3",
    "a.5 .5 5. 1. .5",
    "0 br 11 bed 10 bed 9.5 bath 2.5 baths",
    "two bedroom, three-bath",
    "2 BR / 2 BA w/ roof deck",
    "İstanbul loft 2 bed",
    "KELVIN Kelvin 2 bed",
    "ΣΑΣ ΟΔΟΣ Σ",
    "café naïve Pied-à-Terre",
    "e\u0301te\u0301 A\u0300B",
    "東京 2BR 公寓 温馨的家",
    "🏠✨ 3 bed ❤️ near ☆ subway",
    "٣ bedroom ١.٥ bath",
    "２ＢＲ ３ bed",
    "ß straße ǅungla ǈ",
    "Ⅻ roman ⅻ x² ½ bath",
    "ﬁne ﬂat 𝐁𝐫𝐨𝐨𝐤𝐥𝐲𝐧 𝟐𝐁𝐑",
    "snake_case_name __ _a a_ 2_br",
    "tab\tand\nnewline\r\nloft",
    "!!!---...,,,;;;",
    "\u1c89 \U00011f50 \U0001e4f0 newer characters",
    "Cozy STUDIO near Times Sq",
    "a" * 5000 + " 2 br " + "LUX" * 3000,
]


def python_names(values: object) -> list[str]:
    """The names as the model always read them: one string per row, missing as empty."""
    series = pd.Series(np.asarray(values, dtype=object).reshape(-1))
    return series.where(series.notna(), "").astype(str).tolist()


def python_name_features(names: list[str]) -> np.ndarray:
    """`ListingNameFeatures.transform` as a plain loop over the names (the implementation the
    vectorised one replaced)."""
    token_pattern = re.compile(r"\d+(?:\.5)?|[a-z]+")
    rows, groups = [], []
    bedrooms = np.zeros(len(names))
    baths = np.zeros(len(names))
    for row, name in enumerate(names):
        number = None
        for token in token_pattern.findall(name.lower()):
            found = boosting._keyword_groups(token)
            rows.extend([row] * len(found))
            groups.extend(found)
            if number is not None:
                if token in boosting._BEDROOM_WORDS and 0 < number < boosting._MAX_BEDROOMS and not bedrooms[row]:
                    bedrooms[row] = number
                elif token in boosting._BATH_WORDS and 0 < number < boosting._MAX_BATHS and not baths[row]:
                    baths[row] = number
            number = float(token) if token[0].isdigit() else boosting._NUMBER_WORDS.get(token)
    flags = np.zeros((len(names), len(NAME_KEYWORDS)))
    flags[rows, groups] = 1.0
    text = pd.Series(names, dtype=object)
    length = text.str.len().to_numpy(dtype=float)
    letters = text.str.count(r"[A-Za-z]").to_numpy(dtype=float)
    capitals = text.str.count(r"[A-Z]").to_numpy(dtype=float)
    capital_share = np.divide(capitals, letters, out=np.zeros(len(names)), where=letters > 0)
    return np.column_stack([length, capital_share, bedrooms, baths, flags])


def character_sweep() -> list[str]:
    """Every character below U+3000 and a few beyond it, each in places where it could join,
    split or start a token."""
    beyond = [0x212A, 0x3000, 0x3007, 0x4E00, 0xFF10, 0xFF21, 0x1D400, 0x1D7CE, 0x1F3E0, 0x1C89, 0x11F50, 0x1E4F0]
    characters = [chr(c) for c in [*range(0x80, 0x3000), *beyond] if not 0xD800 <= c <= 0xDFFF]
    return [f"a{c}b 1{c}5 {c}{c}x 2{c}br {c}" for c in characters]


def names_of(dataset: str) -> pd.Series:
    if dataset == "tricky":
        return pd.Series(TRICKY_NAMES, dtype=object)
    if dataset == "synthetic":
        from rental_pipeline.synthetic import generate_listings

        return generate_listings(rows=20_000, seed=11)["name"].astype(object)
    if dataset == "sample1":
        if not SAMPLE1.exists():
            pytest.skip(f"reference sample not found at ../shared/data/sample1.csv (looked in {SAMPLE1.parent})")
        from rental_pipeline.listings import read_listings

        return read_listings(str(SAMPLE1)).listings["name"].astype(object)
    return pd.Series(character_sweep(), dtype=object)


DATASETS = ["tricky", "synthetic", "sample1", "characters"]


def by_row(tokens) -> list[list[str]]:
    flat = tokens.tokens.to_pylist()
    offsets = tokens.row_offsets.tolist()
    return [flat[offsets[row] : offsets[row + 1]] for row in range(len(offsets) - 1)]


@pytest.mark.parametrize("dataset", DATASETS)
def test_listing_tokens_are_the_python_tokens(dataset: str):
    names = names_of(dataset)
    expected = [re.findall(r"\d+(?:\.5)?|[a-z]+", name.lower()) for name in python_names(names)]
    assert by_row(listing_tokens(name_array(names))) == expected


@pytest.mark.parametrize("dataset", DATASETS)
def test_word_tokens_are_the_analyzers_tokens(dataset: str):
    names = names_of(dataset)
    analyzer = TfidfVectorizer().build_analyzer()
    expected = [analyzer(name) for name in python_names(names)]
    assert by_row(word_tokens(name_array(names), analyzer)) == expected


@pytest.mark.parametrize("dataset", ["tricky", "synthetic", "sample1"])
@pytest.mark.parametrize("dtype", [object, "str"])
def test_name_features_equal_the_python_implementation(dataset: str, dtype: object):
    frame = pd.DataFrame({"name": names_of(dataset)}).astype(dtype)
    features = ListingNameFeatures().fit(frame).transform(frame)
    np.testing.assert_array_equal(features, python_name_features(python_names(frame)))


@pytest.mark.parametrize("dataset", DATASETS)
def test_tfidf_matrix_equals_the_vectorizers(dataset: str):
    names = python_names(names_of(dataset))
    # Every token of the batch in the vocabulary, so that rare characters are counted too.
    vectorizer = TfidfVectorizer(min_df=1, sublinear_tf=True, dtype=np.float64).fit(names)
    fast = tfidf_matrix(vectorizer, name_array(pd.Series(names, dtype="str")))
    expected = vectorizer.transform(names)
    assert fast.shape == expected.shape
    np.testing.assert_array_equal(fast.indptr, expected.indptr)
    np.testing.assert_array_equal(fast.indices, expected.indices)
    np.testing.assert_allclose(fast.data, expected.data, rtol=1e-12, atol=0)


def test_a_vectorizer_with_other_settings_is_left_to_scikit_learn():
    names = python_names(names_of("tricky"))
    others = (TfidfVectorizer(lowercase=False), TfidfVectorizer(ngram_range=(1, 2)), TfidfVectorizer(binary=True))
    for vectorizer in others:
        vectorizer.fit(names)
        fast = tfidf_matrix(vectorizer, name_array(pd.Series(names, dtype=object)))
        np.testing.assert_array_equal(fast.toarray(), vectorizer.transform(names).toarray())


def test_text_price_scores_new_names_as_the_fitted_vectorizer_would():
    from rental_pipeline.cleaning import clean_listings
    from rental_pipeline.synthetic import generate_listings

    train, _ = clean_listings(generate_listings(rows=3_000, seed=12))
    encoder = CrossFittedTextPrice().fit(train[["name"]], train["price"])
    for dataset in ("tricky", "synthetic"):
        frame = pd.DataFrame({"name": names_of(dataset)})
        expected = encoder.ridge_.predict(encoder.vectorizer_.transform(python_names(frame))).reshape(-1, 1)
        np.testing.assert_array_equal(encoder.transform(frame), expected)
        np.testing.assert_array_equal(encoder.transform(frame.astype("str")), expected)


def test_names_are_read_as_the_model_always_read_them():
    odd = [None, np.nan, pd.NA, pd.NaT, float("nan"), np.float32("nan"), 5, 1.5, True, "x", np.str_("y"), "", b"z"]
    for values in (
        pd.Series(odd, dtype=object),
        pd.DataFrame({"name": odd}),
        np.array(odd, dtype=object).reshape(-1, 1),
        pd.Series(["a", None, "c"], dtype="str"),
        pd.Series(["a", None, "c"], dtype=pd.StringDtype("python")),
        pd.DataFrame({"name": pd.Series([], dtype=object)}),
    ):
        assert name_array(values).to_pylist() == python_names(values)
        assert name_array(values).null_count == 0


def test_one_name_scores_the_same_alone_and_in_a_batch():
    frame = pd.DataFrame({"name": names_of("tricky")})
    features = ListingNameFeatures().fit(frame)
    together = features.transform(frame)
    for row in range(len(frame)):
        np.testing.assert_array_equal(features.transform(frame.iloc[[row]]), together[[row]])
