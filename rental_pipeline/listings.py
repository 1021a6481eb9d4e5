"""The listings table: the 16 columns every weekly drop must carry, and how to read one.

Everything downstream (cleaning, checks, features, the synthetic generator) agrees on the column
names and dtypes through this module, so a drop that deviates fails here, with the file, the
column and the rows named, instead of deep inside a model fit.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname, urlopen

import numpy as np
import pandas as pd

COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "host_id",
    "host_name",
    "neighbourhood_group",
    "neighbourhood",
    "latitude",
    "longitude",
    "room_type",
    "price",
    "minimum_nights",
    "number_of_reviews",
    "last_review",
    "reviews_per_month",
    "calculated_host_listings_count",
    "availability_365",
)

INTEGER_COLUMNS: tuple[str, ...] = (
    "id",
    "host_id",
    "price",
    "minimum_nights",
    "number_of_reviews",
    "calculated_host_listings_count",
    "availability_365",
)
FLOAT_COLUMNS: tuple[str, ...] = ("latitude", "longitude", "reviews_per_month")
DATE_COLUMNS: tuple[str, ...] = ("last_review",)
TEXT_COLUMNS: tuple[str, ...] = tuple(
    c for c in COLUMNS if c not in INTEGER_COLUMNS + FLOAT_COLUMNS + DATE_COLUMNS
)

BOROUGHS: tuple[str, ...] = ("Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island")
ROOM_TYPES: tuple[str, ...] = ("Entire home/apt", "Private room", "Shared room")

REQUIRED_FLOAT_COLUMNS: tuple[str, ...] = ("latitude", "longitude")
ROWS_SHOWN = 10


class ListingsError(ValueError):
    """A listings drop that cannot be used, with where the problem is.

    `source`, `column` and `rows` (1-based data rows, header excluded) are kept as attributes so
    callers can show them as structured metadata as well as in the message.
    """

    def __init__(self, source: str, problem: str, column: str | None = None, rows: Sequence[int] = ()):
        self.source = source
        self.column = column
        self.rows = list(rows)
        where = f"{source}"
        if column is not None:
            where += f", column {column!r}"
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:ROWS_SHOWN])
            more = f" and {len(self.rows) - ROWS_SHOWN} more" if len(self.rows) > ROWS_SHOWN else ""
            where += f", rows {shown}{more}"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class ListingsDrop:
    """A parsed drop with the facts needed to trace it back to its bytes."""

    listings: pd.DataFrame
    source: str
    sha256: str
    size_bytes: int


def fetch_source(source: str, *, timeout: float = 30.0) -> bytes:
    """Bytes of a local path, a `file://` URL or an `http(s)://` URL; one attempt, bounded in time."""
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        try:
            with urlopen(source, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
                return response.read()
        except (URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ListingsError(source, f"cannot download listings ({reason}); timeout was {timeout:g} s") from error
    if parsed.scheme == "file":
        path = Path(url2pathname(unquote(parsed.path)))
    elif parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path, or one with a drive letter
        path = Path(source)
    else:
        raise ListingsError(source, f"unsupported source scheme {parsed.scheme!r}; use a path, file:// or http(s)://")
    try:
        return path.read_bytes()
    except FileNotFoundError as error:
        raise ListingsError(str(path), "file does not exist") from error
    except OSError as error:
        raise ListingsError(str(path), f"cannot read file ({error.strerror})") from error


def parse_listings(data: bytes, source: str) -> pd.DataFrame:
    """Parse CSV bytes into the typed listings table, or say exactly what is wrong with them.

    Well-formed files go through pandas' default parser untouched (so numbers parse exactly as in
    the reference); only a column that does not come out with its expected type is examined row
    by row, to name the rows that broke it.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ListingsError(source, f"is not UTF-8 text: byte {error.start} on line {line} cannot be decoded") from error
    if not text.strip():
        raise ListingsError(source, "file is empty: expected a header with the 16 listing columns")
    try:
        frame = pd.read_csv(io.StringIO(text))
    except pd.errors.ParserError as error:
        raise ListingsError(source, f"is not a well-formed CSV ({error})") from error
    _check_columns(frame, source)
    if frame.empty:
        raise ListingsError(source, "has a header but no listings rows")
    for column in INTEGER_COLUMNS:
        frame[column] = _as_numbers(frame[column], source, integer=True, required=True)
    for column in FLOAT_COLUMNS:
        frame[column] = _as_numbers(frame[column], source, integer=False, required=column in REQUIRED_FLOAT_COLUMNS)
    frame["last_review"] = _as_dates(frame["last_review"], source)
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].astype("str")
    return frame


def read_listings(source: str, *, timeout: float = 30.0) -> ListingsDrop:
    data = fetch_source(source, timeout=timeout)
    return ListingsDrop(
        listings=parse_listings(data, source),
        source=source,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
    )


def _check_columns(frame: pd.DataFrame, source: str) -> None:
    found = [str(c) for c in frame.columns]
    missing = [c for c in COLUMNS if c not in found]
    extra = [c for c in found if c not in COLUMNS]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if extra:
            parts.append(f"unexpected column(s) {extra}")
        raise ListingsError(
            source,
            "; ".join(parts) + f". Expected exactly these 16 columns in order: {list(COLUMNS)}",
            column=(missing or extra)[0],
        )
    if found != list(COLUMNS):
        first = next(i for i, (a, b) in enumerate(zip(found, COLUMNS)) if a != b)
        raise ListingsError(
            source,
            f"columns are out of order: position {first + 1} holds {found[first]!r}, expected {COLUMNS[first]!r}",
            column=found[first],
        )


def _data_rows(mask: pd.Series) -> list[int]:
    return [int(i) + 1 for i in np.flatnonzero(mask.to_numpy())]


def _as_numbers(values: pd.Series, source: str, *, integer: bool, required: bool) -> pd.Series:
    expected = "whole number" if integer else "number"
    if integer and pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("int64")
    if not integer and pd.api.types.is_float_dtype(values.dtype) and not required:
        return values
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    unparsable = numbers.isna() & values.notna()
    if unparsable.any():
        shown = values[unparsable].head(3).tolist()
        raise ListingsError(
            source, f"expected a {expected}, found {shown}", column=str(values.name), rows=_data_rows(unparsable)
        )
    if required and numbers.isna().any():
        raise ListingsError(source, f"value is missing; every listing needs a {expected} here",
                            column=str(values.name), rows=_data_rows(numbers.isna()))
    if integer:
        fractional = numbers % 1 != 0
        if fractional.any():
            raise ListingsError(source, f"expected a whole number, found {numbers[fractional].head(3).tolist()}",
                                column=str(values.name), rows=_data_rows(fractional))
        return numbers.astype("int64")
    return numbers


def _as_dates(values: pd.Series, source: str) -> pd.Series:
    text = values.astype("str")
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        raise ListingsError(source, f"expected a YYYY-MM-DD date or nothing, found {values[bad].head(3).tolist()}",
                            column=str(values.name), rows=_data_rows(bad))
    return text
