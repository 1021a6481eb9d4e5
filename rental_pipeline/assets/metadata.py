"""What the asset pages show: row counts, column schema, numbers rounded for reading, plots, tables.

Kept in one place so every asset describes its frames the same way in the UI. Pages follow one
order (`page_order`, applied to every asset body's output by `rental_pipeline.reuse`): the data's
numbers and tables first, then the pictures, then the artifact's own facts, which the IO manager
adds. Plots are drawn by `rental_pipeline.plots` (imported when a plot is drawn, so loading the
code location does not import matplotlib).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg

from rental_pipeline.settings import PLOTS_VARIABLE, Settings

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

# pandas, numpy and the pandera schemas are imported by the functions that describe a frame: the IO
# manager reads `displayed` when the code location loads, which must not import them.

PRICE_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
# Every picture's metadata key ends in "_plot", so a person scanning the page knows which rows are
# charts; each asset with pictures ends its description with this note.
CHARTS_NOTE = " Charts: the metadata rows ending in _plot (click Show Markdown in the row to open one)."
PLOTS_ENV = PLOTS_VARIABLE


def plots_wanted() -> bool:
    """Whether charts are drawn (`Settings.plots`), for a step that holds no run settings (the
    checks); asset steps are handed theirs, and pass `plots` to the functions below."""
    return Settings.from_environment().plots


def _column_type(dtype: Any) -> str:
    import pandas as pd

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
    from rental_pipeline.schemas import model_for

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
    from rental_pipeline.schemas import column_docs

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
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return str(value)


def image(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG as markdown metadata: the UI shows it from the metadata row's "Show Markdown" link."""
    from rental_pipeline.plots import markdown_image

    return dg.MetadataValue.md(markdown_image(png, alt))


def frame_metadata(
    frame: pd.DataFrame,
    *,
    price_plot: str | None = None,
    compare_prices: Mapping[str, pd.Series] | None = None,
    price_bounds: tuple[float, float] | None = None,
    plots: bool = False,
) -> dict[str, Any]:
    """Row and column counts, schema, price quantiles, listings per borough, and with ``plots`` a
    plot of the price distribution labelled `price_plot` (beside `compare_prices`, e.g. the raw
    prices cleaning started from)."""
    metadata: dict[str, Any] = {
        "dagster/row_count": len(frame),
        "columns": len(frame.columns),
    }
    if "price" in frame.columns and len(frame):
        metadata["price_quantiles"] = quantile_table(frame["price"])
        if price_plot and plots:
            from rental_pipeline.plots import price_distribution

            series = {**(compare_prices or {}), price_plot: frame["price"]}
            title = "Nightly prices" + (" before and after cleaning" if compare_prices else "")
            metadata["price_distribution_plot"] = image(
                price_distribution(series, title=title, bounds=price_bounds), "price distribution"
            )
    metadata["dagster/column_schema"] = column_schema(frame)
    if "neighbourhood_group" in frame.columns:
        metadata["listings_per_borough"] = borough_table(frame["neighbourhood_group"])
    return page_order(metadata)


def price_quantiles(prices: pd.Series) -> dict[str, float]:
    """p01 ... p99 of a price column, to the cent."""
    quantiles = prices.quantile(list(PRICE_QUANTILES))
    return {f"p{int(round(q * 100)):02d}": round(float(v), 2) for q, v in quantiles.items()}


def quantile_table(prices: pd.Series) -> dg.TableMetadataValue:
    """p01 ... p99 of a price column as a one-row table: one column per quantile, read left to right."""
    import pandas as pd

    return table(pd.DataFrame([price_quantiles(prices)]))


def borough_table(boroughs: pd.Series) -> dg.TableMetadataValue:
    """Listings per borough, and their share, as a table."""
    import pandas as pd

    counts = boroughs.value_counts().sort_index()
    return table(
        pd.DataFrame(
            {
                "neighbourhood_group": counts.index.astype(str),
                "listings": counts.to_numpy(),
                "share": (counts / max(counts.sum(), 1)).round(4).to_numpy(),
            }
        )
    )


def is_picture(value: Any) -> bool:
    """A chart drawn by `rental_pipeline.plots` (markdown holding an inline PNG)."""
    return isinstance(value, dg.MarkdownMetadataValue) and "data:image/" in (value.value or "")


# What a materialization says of the artifact itself rather than of its data: the version, digest,
# size, path and code version the IO manager records (`rental_pipeline.records`, which imports this
# module), the W&B run, the run it was reused from, and the config it was made with.
ARTIFACT_FACTS = frozenset({
    "artifact", "artifact_digest", "aliases_at_materialization", "artifact_version_new", "artifact_size_bytes",
    "artifact_inputs", "artifact_path", "code_version", "wandb_run", "reused_from_run", "config_used",
    "uses_artifacts",
})


def page_order(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """An asset's entries as its page lists them: the data's numbers and tables first, then the
    pictures, then the artifact's own facts (`ARTIFACT_FACTS`); each group keeps its order. A fresh
    materialization gets those facts from the IO manager after the body's entries; a reused one
    carries them among the earlier run's entries, so they are moved here."""

    def group(key: str, value: Any) -> int:
        return 2 if key in ARTIFACT_FACTS else 1 if is_picture(value) else 0

    return dict(sorted(metadata.items(), key=lambda item: group(*item)))


def model_quality_metadata(scored: pd.DataFrame, split: str, *, plots: bool) -> dict[str, Any]:
    """Predicted against actual prices, and the residuals per borough and per room type, of one split
    (charts only: nothing without ``plots``).

    `scored` has the listings' price, `predicted`, and their neighbourhood_group and room_type.
    """
    if not plots:
        return {}
    from rental_pipeline.plots import errors_by_group, predicted_vs_actual

    groups = {
        label: scored[column]
        for column, label in (("neighbourhood_group", "borough"), ("room_type", "room type"))
        if column in scored.columns
    }
    return {
        f"{split}_predicted_vs_actual_plot": image(
            predicted_vs_actual(scored["price"], scored["predicted"], title=f"{split.capitalize()} listings"),
            f"{split}: predicted vs actual price",
        ),
        f"{split}_errors_by_group_plot": image(
            errors_by_group(groups, scored["price"], scored["predicted"], title=f"{split.capitalize()} residuals"),
            f"{split}: residuals by borough and room type",
        ),
    }


def importance_metadata(importances: pd.DataFrame, unit: str, *, plots: bool) -> dict[str, Any]:
    """What an importance means, the top features as labelled bars (with ``plots``), then the whole table."""
    if importances.empty:
        return {}
    metadata: dict[str, Any] = {"importance_unit": unit}
    if plots:
        from rental_pipeline.plots import feature_importances

        metadata["feature_importance_plot"] = image(
            feature_importances(importances, unit=unit, title="Feature importance"), "feature importance"
        )
    metadata["feature_importances"] = table(importances.round({"importance": 4, "spread": 4}))
    return metadata


def share_plot(shares: pd.DataFrame, label_column: str, *, title: str, xlabel: str) -> dg.MarkdownMetadataValue:
    """Reference against current shares of a drift table (`reference_share`, `share` per `label_column`)."""
    from rental_pipeline.plots import share_comparison

    png = share_comparison(
        shares[label_column].astype(str).tolist(),
        shares["reference_share"],
        shares["share"],
        title=title,
        xlabel=xlabel,
    )
    return image(png, title)


# -- numbers as a person reads them ---------------------------------------------------------

DISPLAY_DIGITS = 4


def round_for_display(value: float, digits: int = DISPLAY_DIGITS) -> float:
    """`digits` significant digits, but never fewer than the whole part: 34.70498 -> 34.7,
    0.564312 -> 0.5643, 19001.4 -> 19001. Enough to compare runs, short enough to read."""
    if not math.isfinite(value) or value == 0:
        return value
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return round(value, decimals)


def displayed(metadata: Mapping[str, Any]) -> dict[str, dg.FloatMetadataValue]:
    """The float entries of output metadata, rounded for the UI.

    An IO manager adds these over the asset's own entries once it has stored the full-precision
    values, so the artifact store keeps every digit and the page shows four.
    """
    rounded = {}
    for key, value in metadata.items():
        raw = value.value if isinstance(value, dg.FloatMetadataValue) else value
        if isinstance(raw, float) and not isinstance(raw, bool) and math.isfinite(raw):
            shown = round_for_display(raw)
            if shown != raw:
                rounded[key] = dg.MetadataValue.float(shown)
    return rounded
