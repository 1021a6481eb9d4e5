"""Batch predictions: score a listings file of any size with a stored inference pipeline.

The file is read in chunks so memory stays flat however many rows it has, and a row the model
cannot use (a price model fed "abc" as latitude) gets a message in its own error column instead of
failing the whole batch: one bad row in a million should cost one prediction, not the run.

Reading (`csv_chunks`), typing and writing run on Arrow's columnar CSV reader and writer, so
that on a large file the time goes to the model rather than to text handling. When Arrow's reader
would read a malformed file differently from pandas', the file is scored again from the start
with pandas' reader, which decides as it always did.
"""

from __future__ import annotations

import contextlib
import gzip
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from rental_pipeline.csv_chunks import ArrowRefused, arrow_chunks, pandas_chunks
from rental_pipeline.features import DATE_COLUMN, ZERO_IMPUTED
from rental_pipeline.sources import SourceError, compression_of, open_regular_file

PREDICTION = "predicted_price"
ERROR = "prediction_error"
DEFAULT_CHUNK_ROWS = 100_000
# Typed as the inference pipelines read them: numbers (zero-imputed by the reference preprocessing)
# and the review date; every other feature column is text.
NUMERIC_FEATURES = frozenset(ZERO_IMPUTED)
DATE_FEATURES = frozenset({DATE_COLUMN})
# Decimals Arrow and pandas are known to parse to the same double: at most 15 characters (so at
# most 15 digits, exact in binary before one correctly rounded division) and no exponent.
_MAX_PLAIN_NUMBER_BYTES = 15
_PLAIN_NUMBER = r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)$"
_EXPONENTS = np.frombuffer(b"eE", dtype=np.uint8)


@dataclass(frozen=True)
class PredictionSummary:
    rows: int
    predicted: int
    failed: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


class PredictionError(ValueError):
    """A batch that cannot be scored at all (as opposed to a row, which gets its own error)."""


def required_columns(model: Pipeline) -> list[str]:
    """The columns the fitted pipeline was trained on; anything else in the file is passed through."""
    return [str(c) for c in model.feature_names_in_]


def check_model(model: Any, ref: str) -> None:
    """Refuse anything but a fitted pipeline that knows its input columns, naming what it is."""
    if not (hasattr(model, "predict") and hasattr(model, "feature_names_in_")):
        kind = f"{type(model).__module__}.{type(model).__qualname__}"
        raise PredictionError(
            f"{ref} is a {kind}, not a fitted model: pass an inference_pipeline version, "
            "e.g. inference_pipeline:prod"
        )


@dataclass(frozen=True)
class CategoryDomain:
    """The values of a categorical column the fitted pipeline saw in training."""

    known: frozenset[str]
    missing_ok: bool  # imputed before encoding, or seen missing in training


def category_domains(model: Any) -> dict[str, CategoryDomain]:
    """Per categorical input column, what its encoder learnt. Both models' encoders would turn an
    unseen value into something (an error for the forest's, a missing code the boosted trees
    route somewhere for the boosted model's): a price for a category the model never saw is a
    guess, so such rows get an error instead."""
    preprocessor = model[0] if isinstance(model, Pipeline) and len(model) > 1 else None
    if not isinstance(preprocessor, ColumnTransformer):
        return {}
    domains = {}
    for _, transformer, columns in preprocessor.transformers_:
        steps = [step for _, step in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
        imputed = False
        for step in steps:
            if isinstance(step, SimpleImputer):
                imputed = True
            elif isinstance(step, OrdinalEncoder | OneHotEncoder):
                if isinstance(columns, list | tuple) and all(isinstance(c, str) for c in columns):
                    for column, categories in zip(columns, step.categories_):
                        seen = [c for c in categories if not pd.isna(c)]
                        domains[column] = CategoryDomain(
                            frozenset(str(c) for c in seen), imputed or len(seen) < len(categories)
                        )
                break
    return domains


# --- typing ----------------------------------------------------------------------------------


def _buffers(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a string array: value i is `bytes[offsets[i]:offsets[i + 1]]`."""
    _, offsets_buffer, data_buffer = text.buffers()
    offset_type = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def _arrow_strings(values: pd.Series) -> pa.Array | None:
    """The Arrow array behind a column of strings as pandas reads CSV text, else None."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        array = pa.array(values.array)
        return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    return None


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(`pd.to_numeric(values, errors="coerce")` as floats, rows whose text is not a number)."""
    text = _arrow_strings(values)
    if text is None:
        typed = pd.to_numeric(values, errors="coerce")
        return typed.to_numpy(dtype=float, na_value=np.nan), (typed.isna() & values.notna()).to_numpy()
    present = text.is_valid().to_numpy(zero_copy_only=False)
    offsets, data = _buffers(text)
    lengths = np.diff(offsets)
    try:
        parsed = pc.cast(text, pa.float64())
        exponents = np.isin(data, _EXPONENTS)
        if lengths.max(initial=0) <= _MAX_PLAIN_NUMBER_BYTES and not exponents.any():
            plain = present  # the usual column: every value is a short plain decimal
        else:
            starts = np.minimum(offsets[:-1], max(data.size - 1, 0))
            has_exponent = (np.add.reduceat(exponents, starts, dtype=np.int32) > 0) & (lengths > 0)
            plain = present & (lengths <= _MAX_PLAIN_NUMBER_BYTES) & ~has_exponent
    except pa.ArrowInvalid:  # some text is no number at all: parse only the plain decimals
        short = pc.less_equal(pc.binary_length(text), _MAX_PLAIN_NUMBER_BYTES)
        matches = pc.and_(short, pc.match_substring_regex(text, _PLAIN_NUMBER))
        parsed = pc.cast(pc.if_else(matches, text, pa.scalar(None, text.type)), pa.float64())
        plain = pc.fill_null(matches, False).to_numpy(zero_copy_only=False)
    numbers = parsed.to_numpy(zero_copy_only=False).astype(float, copy=True)
    left = np.flatnonzero(present & ~plain)
    if left.size:  # anything else is judged by pandas itself, with the column as its context
        numbers[left] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)[left]
    return numbers, present & np.isnan(numbers)


def _dates(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(`pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")`, rows that are no such date).

    Text of exactly the form YYYY-MM-DD with a year in 1900-2099 is read from its bytes and checked
    against the calendar here; anything else goes to pandas.
    """
    text = _arrow_strings(values)
    if text is None:
        typed = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
        return typed.to_numpy(dtype="datetime64[us]"), (typed.isna() & values.notna()).to_numpy()
    present = text.is_valid().to_numpy(zero_copy_only=False)
    dates = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
    offsets, data = _buffers(text)
    lengths = np.diff(offsets)
    candidates = np.flatnonzero(lengths == 10)
    if candidates.size == data.size // 10 and candidates.size * 10 == data.size:
        chars = data.reshape(-1, 10)  # the usual column: only dates (or empty fields), all of ten bytes
    else:
        chars = data[offsets[candidates, np.newaxis] + np.arange(10)]
    digits = chars.astype(np.int16) - ord("0")
    shaped = (chars[:, 4] == ord("-")) & (chars[:, 7] == ord("-"))
    for position in (0, 1, 2, 3, 5, 6, 8, 9):
        shaped &= (digits[:, position] >= 0) & (digits[:, position] <= 9)
    century = digits[:, 0] * 10 + digits[:, 1]
    shaped &= (century == 19) | (century == 20)
    year = century * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 5] * 10 + digits[:, 6]
    day = digits[:, 8] * 10 + digits[:, 9]
    first_of_month = ((year.astype(np.int64) - 1970) * 12 + month - 1).astype("datetime64[M]")
    date = first_of_month.astype("datetime64[D]") + (day - 1)
    real = shaped & (month >= 1) & (month <= 12) & (day >= 1) & (date.astype("datetime64[M]") == first_of_month)
    dates[candidates[real]] = date[real]
    judged = np.zeros(len(text), dtype=bool)
    judged[candidates[shaped]] = True
    left = np.flatnonzero(present & ~judged)
    if left.size:  # anything else is judged by pandas itself
        subset = pd.Series(values.to_numpy(dtype=object)[left], dtype=object)
        dates[left] = pd.to_datetime(subset, format="%Y-%m-%d", errors="coerce").to_numpy(dtype="datetime64[us]")
    return dates, present & np.isnat(dates)


def _typed_features(
    chunk: pd.DataFrame, columns: list[str], domains: dict[str, CategoryDomain] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Features typed as in training, and a per-row message for every value that cannot be."""
    errors = np.full(len(chunk), "", dtype=object)
    domains = domains or {}
    features = {}
    for column in columns:
        values = chunk[column]
        if column in NUMERIC_FEATURES:
            typed, bad = _numbers(values)
            what = "not a number"
        elif column in DATE_FEATURES:
            typed, bad = _dates(values)
            what = "not a YYYY-MM-DD date"
        else:
            typed, bad = values.astype("str"), None
        if bad is not None and bad.any():
            rows = np.flatnonzero(bad)
            errors[rows] += np.array(
                [f"{column}: {value!r} is {what}; " for value in values.iloc[rows]], dtype=object
            )
        if column in domains:
            rows, messages = _unseen(column, values, domains[column])
            errors[rows] += messages
        features[column] = typed
    return pd.DataFrame(features, index=chunk.index), errors


def _unseen(column: str, values: pd.Series, domain: CategoryDomain) -> tuple[np.ndarray, np.ndarray]:
    """(rows, messages) for the rows whose category cannot be priced: one the model never saw, or
    a missing one it cannot impute."""
    present = values.notna().to_numpy()
    unseen = np.flatnonzero(present & ~values.isin(domain.known).to_numpy())
    known = ", ".join(sorted(domain.known)[:8])
    messages = [
        f"{column}: {_short(value)} was not seen in training (known: {known}); " for value in values.iloc[unseen]
    ]
    if not domain.missing_ok:
        missing = np.flatnonzero(~present)
        unseen = np.concatenate([unseen, missing])
        messages += [f"{column}: missing, and the model saw no listing without one in training; "] * missing.size
    return unseen, np.array(messages, dtype=object)


def _short(value: Any, limit: int = 60) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


# --- scoring ---------------------------------------------------------------------------------


def predict_frame(model: Pipeline, chunk: pd.DataFrame) -> pd.DataFrame:
    """The chunk with a predicted price and an error message per row (empty when it was scored)."""
    return _finish(model, _prepare(model, chunk))


@dataclass
class _Prepared:
    """A chunk typed and, where the model is a pipeline, run through all of it but the regressor."""

    chunk: pd.DataFrame
    features: pd.DataFrame
    errors: np.ndarray  # per row: "" or what is wrong with it
    rows: np.ndarray  # the rows without a typing error, to be scored
    transformed: Any = None  # those rows through `model[:-1]`; None: score with the whole model


def _prepare(model: Pipeline, chunk: pd.DataFrame, domains: dict[str, CategoryDomain] | None = None) -> _Prepared:
    columns = required_columns(model)
    missing = [c for c in columns if c not in chunk.columns]
    if missing:
        raise PredictionError(f"input has no column(s) {missing}; the model needs {columns}")
    features, errors = _typed_features(chunk, columns, category_domains(model) if domains is None else domains)
    prepared = _Prepared(chunk, features, errors, np.flatnonzero(errors == ""))
    if isinstance(model, Pipeline) and len(model) > 1 and prepared.rows.size:
        try:
            prepared.transformed = model[:-1].transform(_take(features, prepared.rows))
        except ValueError:
            pass  # a row the preprocessing refuses: `_finish` finds it
    return prepared


def _finish(model: Pipeline, prepared: _Prepared) -> pd.DataFrame:
    """Predictions for the prepared rows (the same numbers as `model.predict`, which is what runs
    when the rows were not transformed or the regressor refuses them), errors for the others."""
    predictions = np.full(len(prepared.chunk), np.nan)
    errors = prepared.errors
    scored = False
    if prepared.transformed is not None:
        try:
            predictions[prepared.rows] = model[-1].predict(prepared.transformed)
            scored = True
        except ValueError:
            pass  # a row the regressor refuses: the bisection finds it
    if not scored:
        _predict_or_blame(model, prepared.features, prepared.rows, predictions, errors)
    failed = np.flatnonzero(errors != "")
    errors[failed] = [message.rstrip("; ") for message in errors[failed]]
    return prepared.chunk.assign(**{PREDICTION: np.round(predictions, 2), ERROR: errors})


def _take(features: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    return features if rows.size == len(features) else features.iloc[rows]


def _predict_or_blame(
    model: Pipeline, features: pd.DataFrame, rows: np.ndarray, predictions: np.ndarray, errors: np.ndarray
) -> None:
    """Predict all rows at once; if the model refuses (e.g. an unknown room type, which only the
    fitted encoder knows), halve the rows until the refused ones are found: a few bad rows cost a
    few dozen extra calls, not one call per row."""
    if not rows.size:
        return
    try:
        predictions[rows] = model.predict(_take(features, rows))
    except ValueError as error:
        if rows.size == 1:
            errors[rows] = f"the model refused this row ({str(error).splitlines()[0]}); "
            return
        middle = rows.size // 2
        _predict_or_blame(model, features, rows[:middle], predictions, errors)
        _predict_or_blame(model, features, rows[middle:], predictions, errors)


def _output_table(scored: pd.DataFrame) -> pa.Table:
    """The scored chunk as CSV columns: text as read, prices as pandas prints floats, and empty
    fields for a missing price or no error."""
    columns = {}
    for name in scored.columns:
        values = scored[name]
        if name == PREDICTION:
            price = pa.array(values.to_numpy(), from_pandas=True)  # NaN: no price
            whole = pc.and_(pc.equal(pc.floor(price), price), pc.less(pc.abs(price), 1e15))
            printed = pc.cast(price, pa.string())
            columns[name] = pc.if_else(whole, pc.binary_join_element_wise(printed, ".0", ""), printed)
        elif name == ERROR:
            messages = values.to_numpy(dtype=object)
            failed = messages != ""
            columns[name] = (
                pa.array(np.where(failed, messages, None), type=pa.string())
                if failed.any()
                else pa.nulls(len(messages), pa.string())
            )
        else:
            text = _arrow_strings(values)
            text = text if text is not None else pa.array(values.astype("str"), from_pandas=True)
            columns[name] = text.cast(pa.large_string())
    return pa.table(columns)


# --- the file --------------------------------------------------------------------------------


@dataclass
class _Progress:
    """Progress as reported so far; a file read again after Arrow refused it is not reported twice."""

    report: Callable[[int, int], None] | None
    rows: int = 0

    def __call__(self, bytes_read: int, rows: int) -> None:
        if self.report is not None and rows > self.rows:
            self.rows = rows
            self.report(bytes_read, rows)


@contextlib.contextmanager
def _open_listings(source: Path) -> Iterator[tuple[IO[bytes], Callable[[], int]]]:
    """The file as text bytes (a .csv.gz is decompressed as it is read) and how far into the file
    on disk reading has got, for progress. Only a regular file is opened."""
    try:
        raw = open_regular_file(source)
    except SourceError as error:
        raise PredictionError(str(error)) from None
    with raw:
        kind = compression_of(raw.read(8))
        raw.seek(0)
        if kind is None:
            yield raw, raw.tell
        elif kind == "gzip":
            with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
                yield unpacked, raw.tell  # type: ignore[misc]
        else:
            raise PredictionError(f"{source}: is {kind}-compressed; only .csv and .csv.gz files are read")


def _score_file(
    model: Pipeline,
    source: Path,
    partial: Path,
    chunks: Callable[[IO[bytes], int], Iterator[pd.DataFrame]],
    chunk_rows: int,
    progress: _Progress,
) -> tuple[int, int]:
    """Score the file into `partial`, reading and preparing the next chunk on a second thread
    while the regressor scores the current one. The regressor's numeric work and most of the
    reading and text handling run outside the interpreter lock, so the two overlap on the cores
    instead of taking turns; output order and every number are as if run one after the other."""
    rows = failed = 0
    domains = category_domains(model)
    with _open_listings(source) as (handle, position), open(partial, "wb") as out, \
            ThreadPoolExecutor(max_workers=1) as worker:
        reading = chunks(handle, chunk_rows)

        def prepare_next() -> tuple[_Prepared, int] | None:
            chunk = next(reading, None)
            return None if chunk is None else (_prepare(model, chunk, domains), position())

        upcoming = worker.submit(prepare_next)
        writer: pa_csv.CSVWriter | None = None
        while (ready := upcoming.result()) is not None:
            prepared, bytes_read = ready
            upcoming = worker.submit(prepare_next)
            scored = _finish(model, prepared)
            table = _output_table(scored)
            if writer is None:
                writer = pa_csv.CSVWriter(out, table.schema)
            writer.write_table(table)
            rows += len(scored)
            failed += int((scored[ERROR] != "").sum())
            progress(bytes_read, rows)
        if writer is not None:
            writer.close()
    return rows, failed


_DAMAGED_GZIP = (EOFError, gzip.BadGzipFile, zlib.error)


def _check_paths(source: Path, destination: Path, partial: Path) -> None:
    """Refuse, before anything is written, what would fail late or destroy the input."""
    if not destination.parent.is_dir():
        raise PredictionError(f"{destination}: output folder {destination.parent} does not exist")
    if destination.is_dir():
        raise PredictionError(f"{destination}: is a folder; give the output file's name")
    for written in (destination, partial):
        if written.resolve() == source.resolve() or (written.exists() and source.exists() and written.samefile(source)):
            raise PredictionError(
                f"{destination}: writing it would overwrite the input file {source}; choose another output file"
            )
    try:
        with _open_listings(source) as (handle, _):
            while block := handle.read(1 << 16):
                if block.strip():
                    return
    except _DAMAGED_GZIP as error:
        raise PredictionError(f"{source}: is gzip-compressed but damaged or cut off ({error})") from None
    raise PredictionError(f"{source}: file is empty: expected a header with the listing columns")


def predict_csv(
    model: Pipeline,
    source: Path | str,
    destination: Path | str,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[int, int], None] | None = None,
) -> PredictionSummary:
    """Score `source` (a .csv, or a .csv.gz) chunk by chunk into `destination` (input columns +
    prediction + error).

    `on_progress(bytes_read, rows_done)` is called after each chunk, for a progress bar. Memory
    holds two chunks (one being scored, the next being prepared) and a block of the file
    (`csv_chunks.BLOCK_BYTES`) at a time, however long the file. Whatever fails, no partial
    output is left behind, and the input is never written to.
    """
    started = time.perf_counter()
    source, destination = Path(source), Path(destination)
    check_model(model, "the model")
    partial = destination.with_name(destination.name + ".partial")
    _check_paths(source, destination, partial)
    progress = _Progress(on_progress)
    try:
        try:
            rows, failed = _score_file(model, source, partial, arrow_chunks, chunk_rows, progress)
        except ArrowRefused:
            rows, failed = _score_file(model, source, partial, pandas_chunks, chunk_rows, progress)
        partial.replace(destination)  # a half-written output never stands under the final name
    except _DAMAGED_GZIP as error:
        partial.unlink(missing_ok=True)
        raise PredictionError(f"{source}: is gzip-compressed but damaged or cut off ({error})") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return PredictionSummary(rows=rows, predicted=rows - failed, failed=failed, seconds=time.perf_counter() - started)
