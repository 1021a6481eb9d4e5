"""Listing names split into tokens a whole batch at a time.

Run once per name, the name features' tokenizer and TF-IDF's regular expression would be most of
the time it takes to score a large file outside the model itself. Both tokenizers are simple
when stated per byte of UTF-8 text (ASCII letters, ASCII digits, everything else), so here they
are a handful of numpy passes over the Arrow buffer that holds a batch's names, and Python only
sees each distinct character and each distinct token once.

The byte rules agree with Python's Unicode rules except on characters that are rare in listing
names: a non-ASCII digit, the Kelvin sign, the dotted capital I, the Greek capital sigma, or a
character that this Python and Arrow classify differently. Such characters are found per
distinct character, and the few names containing them are tokenized by the Python rules
themselves, so the tokens are always the ones Python finds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

# The name features' tokens: a number (possibly ending in ".5") or a run of ASCII letters, in
# the lowercased name. Splitting digits from letters makes "2BR" and "2 br" the same tokens.
LISTING_TOKEN = re.compile(r"\d+(?:\.5)?|[a-z]+")
# scikit-learn's default word tokens: two or more Unicode word characters, in the lowercased name.
WORD_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
# Python's `\w` is `str.isalnum()` or "_"; these are the same classes for Arrow's regular
# expressions, checked character by character before they are relied on (`_word_rules_differ`).
_ARROW_WORD = r"[\p{L}\p{N}_]"
_ARROW_NON_WORDS = r"[^\p{L}\p{N}_]+"

# Byte classes of the tokenizers (letters are 1); a byte of a non-ASCII character is never a
# letter or a digit.
_NOTHING = 0
_DIGIT = 2
_HALF = 3  # the ".5" that ends a number such as "1.5"
_DOT, _FIVE, _UNDERSCORE = np.uint8(ord(".")), np.uint8(ord("5")), np.uint8(ord("_"))
_CAPITAL_A, _SMALL_A, _ZERO, _CASE_BIT = np.uint8(ord("A")), np.uint8(ord("a")), np.uint8(ord("0")), np.uint8(32)

# Per non-ASCII character: does it break the byte rules? Filled in as characters are met.
_LISTING_VERDICTS: dict[str, bool] = {}
_WORD_VERDICTS: dict[str, bool] = {}


@dataclass(frozen=True)
class Tokens:
    """The tokens of a batch of names in reading order, grouped by name the way a CSR matrix
    groups its entries: name r's tokens are `tokens[row_offsets[r]:row_offsets[r + 1]]`."""

    tokens: pa.Array
    row_offsets: np.ndarray

    @cached_property
    def rows(self) -> np.ndarray:
        """The name each token was found in."""
        return np.repeat(np.arange(len(self.row_offsets) - 1), np.diff(self.row_offsets))

    @classmethod
    def from_rows(cls, tokens: pa.Array, rows: np.ndarray, n_rows: int) -> Tokens:
        """Tokens given with their (ascending) rows."""
        row_offsets = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=row_offsets[1:])
        return cls(tokens, row_offsets)


def name_array(values: Any) -> pa.Array:
    """One string per row, a missing name being an empty one, as an Arrow array of the batch.

    A column of strings (the usual case, including pandas' Arrow-backed strings) converts without
    a Python loop; anything else is converted value by value with `str`, as the model always did.
    """
    if isinstance(values, pd.DataFrame) and values.shape[1] == 1:
        values = values.iloc[:, 0]
    array: pa.Array | pa.ChunkedArray | None = None
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype):
        array = pa.array(values.array)
    else:
        objects = np.asarray(values, dtype=object).reshape(-1)
        if pd.api.types.infer_dtype(objects, skipna=True) in ("string", "empty"):
            try:
                array = pa.array(objects, type=pa.string(), from_pandas=True)
            except (pa.ArrowException, TypeError, ValueError):
                array = None  # a missing-value marker Arrow does not know: convert one by one
        if array is None:
            texts = pd.Series(objects, dtype=object)
            array = pa.array(texts.where(texts.notna(), "").astype(str).tolist(), type=pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return pc.fill_null(array, "")


def listing_tokens(names: pa.Array) -> Tokens:
    """`LISTING_TOKEN.findall(name.lower())` for every name."""
    offsets, data = _utf8(names)
    found, ambiguous_rows = _listing_tokens_from_bytes(offsets, data)
    python_rows = np.union1d(_rows_breaking_rules(names, _listing_rules_differ, _LISTING_VERDICTS), ambiguous_rows)
    if not python_rows.size:
        return found
    texts = names.take(pa.array(python_rows)).to_pylist()
    return _replace_rows(found, python_rows, [LISTING_TOKEN.findall(text.lower()) for text in texts])


def word_tokens(names: pa.Array, analyzer: Callable[[str], Iterable[str]]) -> Tokens:
    """What scikit-learn's default word analyzer (lowercase, then `WORD_TOKEN_PATTERN`) finds in
    each name. Names with non-ASCII characters are tokenized with Arrow's Unicode lowercasing and
    classes, or, if they hold a character on which those differ from Python's, by `analyzer`."""
    offsets, data = _utf8(names)
    found = _word_tokens_from_bytes(offsets, data)
    non_ascii = _non_ascii_rows(names)
    if not non_ascii.size:
        return found
    python_rows = _rows_breaking_rules(names, _word_rules_differ, _WORD_VERDICTS, non_ascii)
    unicode_rows = np.setdiff1d(non_ascii, python_rows, assume_unique=True)
    unicode_found = _word_tokens_by_arrow(names.take(pa.array(unicode_rows)))
    texts = names.take(pa.array(python_rows)).to_pylist()
    return _replace_rows(
        found,
        np.concatenate([unicode_rows, python_rows]),
        [list(analyzer(text)) for text in texts],
        unicode=(unicode_rows, unicode_found),
    )


def letter_counts(names: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(ASCII letters, ASCII capitals) per name; in UTF-8 no other character has such a byte."""
    offsets, data = _utf8(names)
    return _per_row_sum(_letters(data), offsets), _per_row_sum(_capitals(data), offsets)


def tfidf_matrix(vectorizer: TfidfVectorizer, names: pa.Array) -> sp.csr_matrix:
    """`vectorizer.transform(names)` for a fitted vectorizer with the default word analyzer.

    Counts come from `word_tokens` against the fitted vocabulary; the weighting then repeats
    `TfidfTransformer.transform` step for step (sublinear tf, the fitted idf, row norm), on
    column indices sorted within rows as scikit-learn's are, so the numbers are the same, not
    merely close. Names holding a character whose lowercase or word class Arrow and this Python
    disagree on (the dotted capital I, a capital sigma, characters newer than this Python's
    Unicode tables) are tokenized by the vectorizer's own analyzer, and a vectorizer configured
    otherwise than by default is left to scikit-learn altogether.
    """
    if not _has_default_analyzer(vectorizer):
        return sp.csr_matrix(vectorizer.transform(names.to_pylist()))
    vocabulary = vectorizer.vocabulary_
    terms = pa.array(sorted(vocabulary, key=vocabulary.__getitem__), type=pa.string())
    found = word_tokens(names, vectorizer.build_analyzer())
    columns = pc.index_in(found.tokens, value_set=terms)
    known = columns.is_valid().to_numpy(zero_copy_only=False)
    known_before = np.zeros(len(known) + 1, dtype=np.int64)
    np.cumsum(known, out=known_before[1:])
    index_type = np.int32 if known_before[-1] < 2**31 else np.int64
    counts = sp.csr_matrix(
        (
            np.ones(int(known_before[-1]), dtype=vectorizer.dtype),
            columns.drop_null().to_numpy().astype(index_type),
            known_before[found.row_offsets].astype(index_type),
        ),
        shape=(len(names), len(terms)),
    )
    counts.sum_duplicates()  # one entry per (name, term), terms sorted within each name
    if vectorizer.sublinear_tf:
        np.log(counts.data, counts.data)
        counts.data += 1.0
    if vectorizer.use_idf:
        counts.data *= vectorizer.idf_[counts.indices]
    if vectorizer.norm is not None:
        counts = normalize(counts, norm=vectorizer.norm, copy=False)
    return counts


def _has_default_analyzer(vectorizer: TfidfVectorizer) -> bool:
    """Whether `word_tokens` is what the vectorizer's own analyzer does."""
    return (
        vectorizer.input == "content"
        and vectorizer.analyzer == "word"
        and vectorizer.lowercase
        and vectorizer.preprocessor is None
        and vectorizer.tokenizer is None
        and vectorizer.strip_accents is None
        and vectorizer.stop_words is None
        and tuple(vectorizer.ngram_range) == (1, 1)
        and vectorizer.token_pattern == WORD_TOKEN_PATTERN
        and not vectorizer.binary
    )


# --- bytes -----------------------------------------------------------------------------------


def _utf8(names: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array without nulls: name r is `data[offsets[r]:offsets[r + 1]]`."""
    _, offsets_buffer, data_buffer = names.buffers()
    offset_type = np.int64 if pa.types.is_large_string(names.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[names.offset : names.offset + len(names) + 1]
    offsets = offsets.astype(np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def _capitals(data: np.ndarray) -> np.ndarray:
    return (data - _CAPITAL_A) < 26  # unsigned: bytes below "A" wrap round to large numbers


def _letters(data: np.ndarray) -> np.ndarray:
    return ((data | _CASE_BIT) - _SMALL_A) < 26


def _digits(data: np.ndarray) -> np.ndarray:
    return (data - _ZERO) < 10


def _per_row_sum(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    lengths = np.diff(offsets)
    if not flags.size:
        return np.zeros(len(lengths), dtype=np.int32)
    sums = np.add.reduceat(flags.view(np.uint8), np.minimum(offsets[:-1], flags.size - 1), dtype=np.int32)
    sums[lengths == 0] = 0  # reduceat gives an empty row the value at its position
    return sums


def _string_array(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))


def _runs(data: np.ndarray, offsets: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of every maximal run of one nonzero class within a name, a `_HALF` run
    extending the number before it."""
    if not data.size:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    change = np.empty(data.size, dtype=bool)
    change[0] = True
    np.not_equal(classes[1:], classes[:-1], out=change[1:])
    change[offsets[:-1][offsets[:-1] < data.size]] = True
    segments = np.flatnonzero(change)
    kinds = classes[segments]
    ends = np.empty_like(segments)
    ends[:-1] = segments[1:]
    ends[-1] = data.size
    half_next = np.flatnonzero(kinds[1:] == _HALF)
    ends[half_next] = ends[half_next + 1]
    keep = (kinds != _NOTHING) & (kinds != _HALF)
    return np.compress(keep, segments), np.compress(keep, ends)


def _tokens(
    data: np.ndarray, offsets: np.ndarray, in_token: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> Tokens:
    """Tokens given as (start, end) byte ranges, lowercased; `in_token` flags exactly their bytes."""
    text = np.compress(in_token, data)
    text |= _capitals(text).view(np.uint8) << 5
    token_offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=token_offsets[1:])
    return Tokens(_string_array(token_offsets, text), np.searchsorted(starts, offsets))


def _listing_tokens_from_bytes(offsets: np.ndarray, data: np.ndarray) -> tuple[Tokens, np.ndarray]:
    """Tokens by the byte rules, and the rows where a ".5" could belong to two numbers ("1.5.5"),
    which only a left-to-right scan settles."""
    classes = _letters(data).view(np.uint8) | (_digits(data).view(np.uint8) << 1)
    ambiguous_rows = np.empty(0, dtype=np.int64)
    if data.size > 2:
        dots = np.flatnonzero(data[1:-1] == _DOT) + 1
        dots = dots[(classes[dots - 1] == _DIGIT) & (data[dots + 1] == _FIVE)]
        row_starts = np.zeros(data.size + 1, dtype=bool)
        row_starts[offsets[:-1]] = True
        dots = dots[~row_starts[dots] & ~row_starts[dots + 1]]  # the digit, "." and "5" in one name
        ambiguous = dots[1:][np.diff(dots) == 2]
        ambiguous_rows = np.unique(np.searchsorted(offsets, ambiguous, side="right") - 1)
        classes[dots] = _HALF
        classes[dots + 1] = _HALF
    starts, ends = _runs(data, offsets, classes)
    return _tokens(data, offsets, classes != _NOTHING, starts, ends), ambiguous_rows


def _word_tokens_from_bytes(offsets: np.ndarray, data: np.ndarray) -> Tokens:
    """Word tokens of ASCII names: runs of two or more of [A-Za-z0-9_], lowercased."""
    word = _letters(data) | _digits(data) | (data == _UNDERSCORE)
    starts, ends = _runs(data, offsets, word.view(np.uint8))
    single = ends - starts == 1
    word[np.compress(single, starts)] = False  # a one-character word is no token
    return _tokens(data, offsets, word, np.compress(~single, starts), np.compress(~single, ends))


def _word_tokens_by_arrow(names: pa.Array) -> Tokens:
    """Word tokens of names with non-ASCII characters: Arrow's Unicode lowercasing and classes."""
    spaced = pc.replace_substring_regex(pc.utf8_lower(names), _ARROW_NON_WORDS, " ")
    parts = pc.split_pattern(spaced, " ")
    tokens = pc.list_flatten(parts)
    long_enough = pc.greater_equal(pc.utf8_length(tokens), 2)
    rows = pc.list_parent_indices(parts).to_numpy(zero_copy_only=False).astype(np.int64)
    return Tokens.from_rows(tokens.filter(long_enough), rows[long_enough.to_numpy(zero_copy_only=False)], len(names))


# --- characters the byte rules cannot handle -------------------------------------------------


def _non_ascii_rows(names: pa.Array) -> np.ndarray:
    return np.flatnonzero(~pc.string_is_ascii(names).to_numpy(zero_copy_only=False))


def _rows_breaking_rules(
    names: pa.Array,
    differ: Callable[[list[str]], list[bool]],
    verdicts: dict[str, bool],
    non_ascii: np.ndarray | None = None,
) -> np.ndarray:
    """Rows holding a character for which `differ` says the fast rules and Python's disagree."""
    if non_ascii is None:
        non_ascii = _non_ascii_rows(names)
    if not non_ascii.size:
        return non_ascii
    texts = names.take(pa.array(non_ascii)).to_pylist()
    distinct = {c for c in set("".join(texts)) if c >= "\x80"}
    new = sorted(distinct.difference(verdicts))
    if new:
        verdicts.update(zip(new, differ(new)))
    breaking = {c for c in distinct if verdicts[c]}
    if not breaking:
        return np.empty(0, dtype=np.int64)
    return non_ascii[np.fromiter((not breaking.isdisjoint(text) for text in texts), dtype=bool, count=len(texts))]


def _listing_rules_differ(characters: list[str]) -> list[bool]:
    """A non-ASCII character matters to `LISTING_TOKEN` if it is a digit to Python (`\\d`) or
    lowercases to something with an ASCII letter (the Kelvin sign to "k")."""
    return [c.isdecimal() or any(x < "\x80" for x in c.lower()) for c in characters]


def _word_rules_differ(characters: list[str]) -> list[bool]:
    """Whether Arrow's lowercasing or word class differs from Python's for a character.

    Python lowercases the dotted capital I to two characters and a capital sigma by its context;
    the rest are characters the two Unicode databases disagree on (such as ones newer than this
    Python's).
    """
    python_lower = [c.lower() for c in characters]
    arrow_lower = pc.utf8_lower(pa.array(characters, type=pa.string())).to_pylist()
    pieces = sorted({x for text in python_lower for x in text})
    arrow_word = pc.match_substring_regex(pa.array(pieces, type=pa.string()), f"^{_ARROW_WORD}$").to_pylist()
    differs = {x for x, word in zip(pieces, arrow_word) if (x.isalnum() or x == "_") != word}
    return [
        c == "\u03a3" or python != arrow or not differs.isdisjoint(python)
        for c, python, arrow in zip(characters, python_lower, arrow_lower)
    ]


def _replace_rows(
    found: Tokens,
    replaced: np.ndarray,
    python_found: list[list[str]],
    unicode: tuple[np.ndarray, Tokens] | None = None,
) -> Tokens:
    """`found` with the tokens of the `replaced` rows swapped: the last `len(python_found)` of
    them for the lists given, the others (if any) for the `unicode` tokens of those rows."""
    n_rows = len(found.row_offsets) - 1
    keep = np.ones(n_rows, dtype=bool)
    keep[replaced] = False
    kept = keep[found.rows]
    python_rows = replaced[len(replaced) - len(python_found) :]
    parts = [(found.rows[kept], found.tokens.filter(pa.array(kept)))]
    if unicode is not None:
        unicode_rows, unicode_found = unicode
        parts.append((unicode_rows[unicode_found.rows], unicode_found.tokens))
    flat = [token for tokens in python_found for token in tokens]
    parts.append((np.repeat(python_rows, [len(tokens) for tokens in python_found]), pa.array(flat, type=pa.string())))
    rows = np.concatenate([part_rows.astype(np.int64) for part_rows, _ in parts])
    order = np.argsort(rows, kind="stable")  # parts cover disjoint rows: each row keeps its order
    tokens = pa.concat_arrays([part_tokens.cast(pa.string()) for _, part_tokens in parts])
    return Tokens.from_rows(tokens.take(pa.array(order)), rows[order], n_rows)
