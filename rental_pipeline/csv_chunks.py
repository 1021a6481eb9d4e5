"""A listings CSV in chunks of text columns, read by Arrow, or by pandas where Arrow would differ.

Predictions must not depend on which reader ran, so every column is read as text (typing is the
caller's business) and Arrow's reader is used only where it reads a file exactly as
``pd.read_csv(dtype=str, keep_default_na=False, na_values=[""])`` would; it is several times
faster on large files. Where it would not (see :class:`ArrowRefused`), the caller reads the file
again with :func:`pandas_chunks`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

BLOCK_BYTES = 1 << 20  # Arrow parses the file this many bytes at a time, whatever the chunk size
_TEXT = pd.StringDtype(storage="pyarrow", na_value=np.nan)  # what read_csv(dtype=str) gives
_CR, _LF, _QUOTE = np.uint8(ord("\r")), np.uint8(ord("\n")), np.uint8(ord('"'))


class ArrowRefused(Exception):
    """Arrow's reader cannot read this file as pandas would; pandas' reader must."""


class _WatchedFile:
    """The input file as Arrow reads it, watched for what Arrow would read differently from pandas.

    A carriage return not followed by a newline ends a line for both but not the same way, and a
    file ending inside a quoted field (an odd number of quote characters) is an error to pandas
    but not to Arrow. Both are cheap to spot in the raw bytes.
    """

    def __init__(self, handle: IO[bytes]):
        self.handle = handle
        self.quotes = 0
        self.ends_with_cr = False
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def read(self, size: int = -1) -> bytes:
        block = self.handle.read(size)
        if block:
            raw = np.frombuffer(block, dtype=np.uint8)
            returns = np.flatnonzero(raw == _CR)
            if self.ends_with_cr and raw[0] != _LF:
                raise ArrowRefused("a carriage return without a newline")
            self.ends_with_cr = bool(returns.size) and returns[-1] == raw.size - 1
            if not (raw[returns[returns < raw.size - 1] + 1] == _LF).all():
                raise ArrowRefused("a carriage return without a newline")
            self.quotes += int(np.count_nonzero(raw == _QUOTE))
        elif self.quotes % 2 or self.ends_with_cr:
            raise ArrowRefused("the file ends inside a quoted field or with a carriage return")
        return block


def _header(handle: IO[bytes]) -> list[str] | None:
    """The column names, if Arrow would name the columns as pandas does (unique, none empty)."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    try:
        names = next(csv.reader(text))
    except (StopIteration, UnicodeDecodeError, csv.Error):
        names = None
    finally:
        text.detach()
        handle.seek(0)
    if not names or "" in names or len(set(names)) != len(names):
        return None
    return names


def arrow_chunks(handle: IO[bytes], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of exactly `chunk_rows` rows (the last one shorter), every column as text."""
    names = _header(handle)
    if names is None:
        raise ArrowRefused("column names pandas would rename")
    options = {
        "read_options": pa_csv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
        "parse_options": pa_csv.ParseOptions(newlines_in_values=True),
        "convert_options": pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    }
    try:
        reader = pa_csv.open_csv(_WatchedFile(handle), **options)
        if reader.schema.names != names:
            raise ArrowRefused("column names read differently")
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        yielded = False
        for batch in reader:
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= chunk_rows:
                table = pa.Table.from_batches(pending, schema=reader.schema)
                yield _frame(table.slice(0, chunk_rows).combine_chunks())
                yielded = True
                rest = table.slice(chunk_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
        if pending_rows or not yielded:  # a file of only a header still makes one (empty) chunk
            yield _frame(pa.Table.from_batches(pending, schema=reader.schema).combine_chunks())
    except pa.ArrowInvalid as error:
        raise ArrowRefused(str(error)) from error


def _frame(table: pa.Table) -> pd.DataFrame:
    """A chunk as pandas' reader gives it: string columns with NaN for empty fields."""
    return table.to_pandas(types_mapper={pa.string(): _TEXT, pa.large_string(): _TEXT}.get)


def pandas_chunks(handle: IO[bytes], chunk_rows: int) -> Iterator[pd.DataFrame]:
    yield from pd.read_csv(handle, chunksize=chunk_rows, dtype=str, keep_default_na=False, na_values=[""])
