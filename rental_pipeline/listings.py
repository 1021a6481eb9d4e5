"""The listings table: the 16 columns every weekly drop must carry, and how to read one.

Everything downstream (cleaning, checks, features, the synthetic generator) agrees on the column
names and dtypes through this module, so a drop that deviates fails here, with the file, the
column and the rows named, instead of deep inside a model fit.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
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
DOWNLOAD_CHUNK = 1 << 16


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
    """Bytes of a local path, a `file://`, `http(s)://` or `s3://` URL; one attempt, bounded in time."""
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        return _download(source, timeout)
    if parsed.scheme == "s3":
        return _read_s3(source)
    if parsed.scheme == "file":
        path = Path(url2pathname(unquote(parsed.path)))
    elif parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path, or one with a drive letter
        path = Path(source)
    else:
        raise ListingsError(
            source, f"unsupported source scheme {parsed.scheme!r}; use a path, file://, http(s):// or s3://"
        )
    try:
        return path.read_bytes()
    except FileNotFoundError as error:
        raise ListingsError(str(path), "file does not exist") from error
    except OSError as error:
        raise ListingsError(str(path), f"cannot read file ({error.strerror})") from error


def _read_s3(url: str) -> bytes:
    """An object of S3-compatible storage (a drop in the landing prefix), with the store's client
    settings: endpoint and region from the AWS_* variables, credentials from the environment."""
    from rental_pipeline.store.s3_backend import ObjectStorageError, S3ConfigError, read_object

    try:
        return read_object(url)
    except FileNotFoundError as error:
        raise ListingsError(url, "object does not exist") from error
    except (ObjectStorageError, S3ConfigError) as error:
        raise ListingsError(url, f"cannot read object ({error})") from error


def _download(url: str, timeout: float) -> bytes:
    """One attempt, and `timeout` bounds the whole download, not only each socket read.

    A server that accepts the connection and then trickles bytes would otherwise hold a run for
    far longer than the configured limit.
    """
    deadline = time.monotonic() + timeout
    chunks = []
    try:
        with urlopen(url, timeout=timeout) as response:  # noqa: S310 (the caller checked the scheme)
            while chunk := response.read1(DOWNLOAD_CHUNK):  # returns what has arrived, so the deadline is seen
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise ListingsError(url, f"download did not finish within the timeout of {timeout:g} s")
    except HTTPError as error:
        raise ListingsError(url, f"cannot download listings (HTTP {error.code} {error.reason})") from error
    except (URLError, OSError, http.client.HTTPException, ValueError) as error:
        reason = getattr(error, "reason", None) or str(error) or type(error).__name__
        raise ListingsError(url, f"cannot download listings ({reason}); one attempt, timeout {timeout:g} s") from error
    return b"".join(chunks)


def parse_listings(data: bytes, source: str) -> pd.DataFrame:
    """Parse CSV bytes into the typed listings table, or say exactly what is wrong with them.

    Well-formed files go through pandas' default parser untouched (so numbers parse exactly as in
    the reference); only a column that does not come out with its expected type is examined row
    by row, to name the rows that broke it.
    """
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (spreadsheet exports) is not part of the header
    except UnicodeDecodeError as error:
        raise _not_utf8(data, error, source) from error
    if not text.strip():
        raise ListingsError(source, "file is empty: expected a header with the 16 listing columns")
    _check_records(text, source)
    try:
        frame = pd.read_csv(io.StringIO(text))
    except pd.errors.ParserError as error:
        raise ListingsError(source, f"is not a well-formed CSV ({error})") from error
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


def _not_utf8(data: bytes, error: UnicodeDecodeError, source: str) -> ListingsError:
    """Name the cells holding undecodable bytes, so the person can find them in a spreadsheet."""
    line = data[: error.start].count(b"\n") + 1
    problem = (
        f"is not UTF-8 text: byte 0x{data[error.start]:02x} at offset {error.start} (line {line}) cannot be "
        "decoded; save the file as UTF-8"
    )
    text = data.decode("utf-8", errors="surrogateescape")
    records = csv.reader(io.StringIO(text))
    try:
        header = next(records, [])
        bad_rows, column = [], None
        for row, record in enumerate(_data_records(records), start=1):
            for position, value in enumerate(record):
                if any("\udc80" <= char <= "\udcff" for char in value):
                    bad_rows.append(row)
                    if column is None and position < len(header):
                        column = header[position]
                    break
    except csv.Error:
        return ListingsError(source, problem)
    return ListingsError(source, problem, column=column, rows=bad_rows)


def _data_records(records: Iterable[list[str]]) -> Iterator[list[str]]:
    """Records as pandas counts rows: blank and whitespace-only lines are skipped."""
    for record in records:
        if record and not (len(record) == 1 and not record[0].strip()):
            yield record


def _check_records(text: str, source: str) -> None:
    """Refuse a wrong header, and rows with the wrong number of fields, before pandas parses.

    pandas fills a short row with missing values, so a file cut off in its last line would
    otherwise be reported as a missing price; saying the row is short points at the real cause.
    """
    records = csv.reader(io.StringIO(text))
    try:
        header = next(records)
        _check_columns(header, source)
        short: list[tuple[int, int]] = []
        long: list[int] = []
        row = 0
        for row, record in enumerate(_data_records(records), start=1):
            if len(record) < len(COLUMNS):
                short.append((row, len(record)))
            elif len(record) > len(COLUMNS):
                long.append(row)
    except csv.Error as error:
        raise ListingsError(source, f"is not a well-formed CSV ({error})") from error
    if short:
        fields = short[0][1]
        if [r for r, _ in short] == [row]:
            problem = (
                f"the last row has {fields} of {len(COLUMNS)} fields: the file looks cut off; download or copy it again"
            )
        else:
            problem = f"row has {fields} of {len(COLUMNS)} fields (a line break inside an unquoted text field?)"
        raise ListingsError(source, problem, column=COLUMNS[fields], rows=[r for r, _ in short])
    if long:
        raise ListingsError(
            source,
            f"row has more than {len(COLUMNS)} fields (a comma inside an unquoted text field?)",
            rows=long,
        )


def _check_columns(header: Sequence[str], source: str) -> None:
    found = [str(c) for c in header]
    missing = [c for c in COLUMNS if c not in found]
    extra = [c for c in found if c not in COLUMNS]
    repeated = sorted({c for c in found if found.count(c) > 1})
    if repeated:
        raise ListingsError(source, f"column(s) {repeated} appear more than once in the header", column=repeated[0])
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if extra:
            parts.append(f"unexpected column(s) {extra}")
        if len(found) == len(COLUMNS):
            renamed = [f"{f!r} where {c!r} belongs" for f, c in zip(found, COLUMNS) if f in extra and c in missing]
            if renamed:
                parts.append(f"renamed? {', '.join(renamed)}")
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
