"""The listings table: the 16 columns every weekly drop must carry, and how to read one.

Everything downstream (cleaning, checks, features, the synthetic generator) agrees on the column
names and dtypes through this module, so a drop that deviates fails here, with the file, the
column and the rows named, instead of deep inside a model fit.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rental_pipeline.sources import (
    DEFAULT_TIMEOUT,
    SourceError,
    SourcePolicy,
    compression_of,
    describe,
    read_source,
    snippet,
)

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
VALUES_SHOWN = 3
# Python's csv module refuses longer fields (its default field_size_limit); a listing's longest
# field, its name, is a few dozen characters.
MAX_FIELD_CHARS = 131_072
_INT64 = np.iinfo(np.int64)


class ListingsError(ValueError):
    """A listings drop that cannot be used, with where the problem is.

    `source`, `column` and `rows` (1-based data rows, header excluded) are kept as attributes so
    callers can show them as structured metadata as well as in the message.
    """

    def __init__(self, source: str, problem: str, column: str | None = None, rows: Sequence[int] = ()):
        source = describe(source)
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


def parse_listings(data: bytes, source: str) -> pd.DataFrame:
    """Parse CSV bytes into the typed listings table, or say exactly what is wrong with them.

    Well-formed files go through pandas' default parser untouched (so numbers parse exactly as in
    the reference); only a column that does not come out with its expected type is examined row
    by row, to name the rows that broke it.
    """
    _refuse_binary(data, source)
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (spreadsheet exports) is not part of the header
    except UnicodeDecodeError as error:
        raise _not_utf8(data, error, source) from error
    if not text.strip():
        raise ListingsError(source, "file is empty: expected a header with the 16 listing columns")
    # Windows line ends, also inside quoted fields (a name saved with a line break in it), so the
    # same listings give the same table whichever system saved them.
    text = text.replace("\r\n", "\n")
    _check_records(text, source)
    try:
        frame = pd.read_csv(io.StringIO(text))
    except pd.errors.ParserError as error:
        raise ListingsError(source, f"is not a well-formed CSV ({snippet(str(error), 80)})") from None
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


def read_listings(
    source: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    policy: SourcePolicy | None = None,
    auth_variable: str | None = None,
) -> ListingsDrop:
    """Read and parse a drop; `source` in the result (and in every error) is safe to record."""
    try:
        read = read_source(source, policy, timeout=timeout, auth_variable=auth_variable)
    except SourceError as error:
        raise ListingsError(error.source, error.problem) from None
    return ListingsDrop(
        listings=parse_listings(read.data, read.source),
        source=read.source,
        sha256=read.sha256,
        size_bytes=read.size_bytes,
    )


def _refuse_binary(data: bytes, source: str) -> None:
    """Say what a file is when it is plainly no text, rather than that it is not UTF-8."""
    head = data[:4096]
    kind = compression_of(head)
    if kind == "zip":
        raise ListingsError(
            source, "is a ZIP archive, not a CSV file: extract the CSV and use that (.csv.gz is read as it is)"
        )
    if kind is not None:
        raise ListingsError(source, f"is {kind}-compressed (inside the file as read): only .csv and .csv.gz are read")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ListingsError(source, "is UTF-16 text (a spreadsheet's \"Unicode text\"): save it as CSV in UTF-8")
    if b"\x00" in head:
        raise ListingsError(source, "holds NUL bytes: it is a binary file (a spreadsheet?), not CSV text")


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
        if "field larger than field limit" in str(error):
            raise _too_long_fields(text, source) from None
        raise ListingsError(source, f"is not a well-formed CSV ({snippet(str(error), 80)})") from None
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


def _too_long_fields(text: str, source: str) -> ListingsError:
    """Name the rows and the column of fields over the csv module's limit (pandas' reader has
    none, so it finds them)."""
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for column in frame.columns:
        lengths = frame[column].str.len()
        too_long = lengths > MAX_FIELD_CHARS
        if too_long.any():
            return ListingsError(
                source,
                f"field of {int(lengths.max()):,} characters, over the limit of {MAX_FIELD_CHARS:,} "
                "(a listing's longest field, its name, is a few dozen): is this a listings file?",
                column=snippet(str(column), 40),
                rows=_data_rows(too_long),
            )
    return ListingsError(source, f"has a field over {MAX_FIELD_CHARS:,} characters")


def _check_columns(header: Sequence[str], source: str) -> None:
    found = [str(c) for c in header]
    if not set(found) & set(COLUMNS):
        first = ",".join(found)
        raise ListingsError(
            source,
            f"is not a listings CSV: its first line has none of the 16 listing columns "
            f"(it starts with '{snippet(first, 12)}')",
        )
    missing = [c for c in COLUMNS if c not in found]
    extra = [c for c in found if c not in COLUMNS]
    repeated = sorted({c for c in found if found.count(c) > 1})
    if repeated:
        raise ListingsError(
            source, f"column(s) {_names(repeated)} appear more than once in the header", column=snippet(repeated[0])
        )
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if extra:
            parts.append(f"unexpected column(s) {_names(extra)}")
        if len(found) == len(COLUMNS):
            renamed = [
                f"'{snippet(f, 30)}' where {c!r} belongs" for f, c in zip(found, COLUMNS) if f in extra and c in missing
            ]
            if renamed:
                parts.append(f"renamed? {', '.join(renamed[:VALUES_SHOWN])}")
        raise ListingsError(
            source,
            "; ".join(parts) + f". Expected exactly these 16 columns in order: {list(COLUMNS)}",
            column=snippet((missing or extra)[0]),
        )
    if found != list(COLUMNS):
        first = next(i for i, (a, b) in enumerate(zip(found, COLUMNS)) if a != b)
        raise ListingsError(
            source,
            f"columns are out of order: position {first + 1} holds {found[first]!r}, expected {COLUMNS[first]!r}",
            column=found[first],
        )


def _names(names: Sequence[str]) -> str:
    """Column names read from a file, as a short escaped list (a few, each cut short)."""
    shown = ", ".join(f"'{snippet(n, 30)}'" for n in names[:5])
    more = f", and {len(names) - 5} more" if len(names) > 5 else ""
    return f"[{shown}{more}]"


def _values(values: pd.Series) -> str:
    """A few values read from a file, escaped and cut short, as a list."""
    return "[" + ", ".join(f"'{snippet(str(v), 30)}'" for v in values.head(VALUES_SHOWN)) + "]"


def _data_rows(mask: pd.Series) -> list[int]:
    return [int(i) + 1 for i in np.flatnonzero(mask.to_numpy())]


def _as_numbers(values: pd.Series, source: str, *, integer: bool, required: bool) -> pd.Series:
    expected = "whole number" if integer else "number"
    column = str(values.name)
    if integer and pd.api.types.is_signed_integer_dtype(values.dtype):
        return values.astype("int64")
    if not integer and pd.api.types.is_float_dtype(values.dtype) and not required:
        return values
    if integer and pd.api.types.is_unsigned_integer_dtype(values.dtype):  # pandas' reader past int64
        beyond = values > _INT64.max
        raise ListingsError(source, f"whole number does not fit in 64 bits, found {_values(values[beyond])}",
                            column=column, rows=_data_rows(beyond))
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    unparsable = numbers.isna() & values.notna()
    if unparsable.any():
        raise ListingsError(
            source, f"expected a {expected}, found {_values(values[unparsable])}", column=column,
            rows=_data_rows(unparsable),
        )
    if required and numbers.isna().any():
        raise ListingsError(source, f"value is missing; every listing needs a {expected} here",
                            column=column, rows=_data_rows(numbers.isna()))
    if integer:
        fractional = numbers % 1 != 0
        if fractional.any():
            raise ListingsError(source, f"expected a whole number, found {numbers[fractional].head(3).tolist()}",
                                column=column, rows=_data_rows(fractional))
        # A float holds every whole number exactly up to 2**53; past that the text may not be what
        # the float says, and past 2**63 no int64 holds it: refuse rather than wrap or round.
        inexact = numbers.abs() > 2.0**53
        if inexact.any():
            beyond = (numbers.abs() >= 2.0**63)[inexact].any()
            problem = "does not fit in 64 bits" if beyond else "is too large to read exactly beside decimals"
            raise ListingsError(source, f"whole number {problem}, found {_values(values[inexact])}",
                                column=column, rows=_data_rows(inexact))
        return numbers.astype("int64")
    return numbers


def _as_dates(values: pd.Series, source: str) -> pd.Series:
    text = values.astype("str")
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        raise ListingsError(source, f"expected a YYYY-MM-DD date or nothing, found {_values(values[bad])}",
                            column=str(values.name), rows=_data_rows(bad))
    return text
