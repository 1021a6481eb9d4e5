"""What the asset pages show: row counts, column schema, price distribution, tables.

Kept in one place so every asset describes its frames the same way in the UI.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pandera.pandas as pa

from rental_pipeline.schemas import column_docs, model_for

PRICE_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _column_type(dtype: Any) -> str:
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    return "string"


def column_schema(frame: pd.DataFrame) -> dg.TableSchema:
    """Listings frames are described by their pandera model, the same one the checks enforce;
    any other table (metrics, feature importances) by its dtypes."""
    model = model_for(frame)
    if model is not None:
        return listings_column_schema(model, frame)
    columns = []
    for name, dtype in frame.dtypes.items():
        missing = int(frame[name].isna().sum())
        columns.append(
            dg.TableColumn(
                name=str(name),
                type=_column_type(dtype),
                description=f"{missing} missing" if missing else None,
                constraints=dg.TableColumnConstraints(nullable=missing > 0),
            )
        )
    return dg.TableSchema(columns=columns)


def listings_column_schema(model: type[pa.DataFrameModel], frame: pd.DataFrame | None = None) -> dg.TableSchema:
    """The model's columns with descriptions and constraints, and how many values this version lacks."""
    columns = []
    for doc in column_docs(model):
        description = doc.description
        if frame is not None and doc.name in frame.columns:
            missing = int(frame[doc.name].isna().sum())
            if missing:
                description += f" Missing in {missing:,} listings of this version."
        columns.append(
            dg.TableColumn(
                name=doc.name,
                type=doc.type,
                description=description,
                constraints=dg.TableColumnConstraints(
                    nullable=doc.nullable, unique=doc.unique, other=list(doc.constraints)
                ),
            )
        )
    return dg.TableSchema(columns=columns)


def table(frame: pd.DataFrame) -> dg.TableMetadataValue:
    """A small frame as a UI table; missing values become empty cells instead of NaN floats."""
    records = []
    for row in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
        records.append(dg.TableRecord({str(k): _plain(v) for k, v in row.items()}))
    return dg.MetadataValue.table(records=records, schema=column_schema(frame))


def _plain(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return str(value)


def price_histogram(prices: pd.Series, bins: int = 12) -> str:
    """A text histogram: good enough to spot a shifted or clipped price distribution at a glance."""
    counts, edges = np.histogram(prices.dropna(), bins=bins)
    widest = max(int(counts.max()), 1)
    lines = ["| price | listings | |", "|---:|---:|:---|"]
    for count, low, high in zip(counts, edges[:-1], edges[1:]):
        bar = "█" * max(int(round(30 * count / widest)), 1 if count else 0)
        lines.append(f"| {low:,.0f} – {high:,.0f} | {count:,} | {bar} |")
    return "\n".join(lines)


def frame_metadata(frame: pd.DataFrame) -> dict[str, Any]:
    """Row and column counts, schema, and the price distribution when the frame has prices."""
    metadata: dict[str, Any] = {
        "dagster/row_count": len(frame),
        "columns": len(frame.columns),
        "dagster/column_schema": column_schema(frame),
    }
    if "price" in frame.columns and len(frame):
        quantiles = frame["price"].quantile(list(PRICE_QUANTILES))
        metadata["price_quantiles"] = dg.MetadataValue.json(
            {f"p{int(q * 100):02d}": float(v) for q, v in quantiles.items()}
        )
        metadata["price_histogram"] = dg.MetadataValue.md(price_histogram(frame["price"]))
    if "neighbourhood_group" in frame.columns:
        counts = frame["neighbourhood_group"].value_counts().sort_index()
        metadata["listings_per_borough"] = dg.MetadataValue.json({str(k): int(v) for k, v in counts.items()})
    return metadata
