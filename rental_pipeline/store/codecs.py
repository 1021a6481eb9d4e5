"""Codecs: how pipeline objects become the bytes of an artifact version, and back.

Digests decide whether a write makes a new version, so every codec must be deterministic: the
same object gives the same bytes, and decoding then encoding again gives the same bytes too.
Each codec names the file it writes (``data.parquet``, ``value.json``) and a ``format`` that
:meth:`ArtifactStore.save` records in the version's metadata, so :meth:`ArtifactStore.load` knows
how to decode without guessing. The store holds the codecs of plain data; others are registered
by their own libraries (models: ``rental_pipeline.model_files``), and an object no codec accepts
is refused, never pickled.

Heavy libraries (pandas, pyarrow) are imported only when a codec runs, so the store and its CLI
stay quick to start.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import CodecError

FORMAT_KEY = "format"


@dataclass(frozen=True)
class Codec:
    format: str
    filename: str
    accepts: Callable[[Any], bool]
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    # True when decoding the bytes always gives an object equal to the one encoded (same type,
    # same state), so a process that just stored an object may keep using it instead of reading
    # the file back. Not so for frames (parquet settles some dtypes) or JSON (tuples, keys).
    round_trips: bool = False


_REGISTRY: dict[str, Codec] = {}


def register(codec: Codec) -> Codec:
    """Add a codec; later registrations are tried first, so a project can override a default."""
    _REGISTRY[codec.format] = codec
    return codec


def codec_named(fmt: str) -> Codec:
    try:
        return _REGISTRY[fmt]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise CodecError(f"no codec for format {fmt!r} (known: {known})") from None


def codec_for(obj: Any) -> Codec:
    for codec in reversed(list(_REGISTRY.values())):
        if codec.accepts(obj):
            return codec
    known = ", ".join(sorted(_REGISTRY))
    raise CodecError(
        f"no codec stores a {type(obj).__module__}.{type(obj).__qualname__} (formats: {known}); "
        "the library that stores such objects registers its codec when imported"
    )


# -- JSON: metrics and other small dicts --------------------------------------------------


def _json_default(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_json(value: Any) -> bytes:
    """Sorted, indented, strict JSON: stable bytes, and NaN is refused rather than smuggled in."""
    try:
        text = json.dumps(value, sort_keys=True, indent=2, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"cannot store value as JSON: {exc}") from exc
    return (text + "\n").encode("utf-8")


def decode_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise CodecError(f"stored JSON is unreadable: {exc}") from exc


# -- pandas DataFrame <-> parquet ---------------------------------------------------------


def _is_dataframe(obj: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(obj, pandas.DataFrame)


def encode_dataframe(frame: Any) -> bytes:
    """Parquet with pandas metadata, so dtypes and the index come back as they went in.

    The bytes depend only on the frame (and the library versions): parquet written by pyarrow
    carries no timestamps, the pandas metadata records dtypes and the index (a RangeIndex as
    metadata only, any other index as columns), and zstd output is deterministic. Text held in
    ``object`` columns comes back as pandas 3 ``str``, so such a frame settles after one round
    trip; frames built with ``str`` columns (as the pipeline's are) are stable from the start.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    non_text = [c for c in frame.columns if not isinstance(c, str)]
    if non_text:
        raise CodecError(f"parquet needs text column names; got {non_text[:5]!r}")
    try:
        table = pa.Table.from_pandas(frame, preserve_index=None)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise CodecError(f"cannot store frame as parquet: {exc}") from exc
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", compression_level=3, write_statistics=True)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def decode_dataframe(data: bytes) -> Any:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise CodecError(f"stored parquet is unreadable: {exc}") from exc
    frame = table.to_pandas()
    return _restore_datetime_units(frame, table.schema.pandas_metadata or {})


def _restore_datetime_units(frame: Any, pandas_metadata: dict[str, Any]) -> Any:
    """Parquet has no seconds unit: ``datetime64[s]`` comes back as ms unless cast back."""
    wanted = {
        c["name"]: c["numpy_type"]
        for c in pandas_metadata.get("columns", [])
        if str(c.get("numpy_type", "")).startswith("datetime64[")
        and not (c.get("metadata") or {}).get("timezone")
    }
    for column, numpy_type in wanted.items():
        if column in frame.columns and str(frame[column].dtype) != numpy_type:
            frame[column] = frame[column].astype(numpy_type)
    return frame


JSON = register(
    Codec("json", "value.json", lambda obj: isinstance(obj, dict | list), encode_json, decode_json)
)
DATAFRAME = register(
    Codec("parquet", "data.parquet", _is_dataframe, encode_dataframe, decode_dataframe)
)
