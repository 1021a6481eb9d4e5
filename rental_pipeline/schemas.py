"""The listings contracts as pandera models: what raw, clean and split listings must look like.

One source for two readers. The asset checks validate frames against these models, and the asset
pages show each column's type, description and constraints from them, so what the UI promises is
exactly what the checks enforce.

Rules that depend on run config (the price range and the NYC box of the cleaning step, the row
count bounds, the borough drift) are not in the models: they are separate checks in
`rental_pipeline.validation`, so a run with other cleaning bounds is judged by its own bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from rental_pipeline.cleaning import CleaningRules
from rental_pipeline.listings import BOROUGHS, COLUMNS, ROOM_TYPES

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"

_RULES = CleaningRules()
_PRICE_RULE = f"clean listings keep {_RULES.min_price:g} <= price <= {_RULES.max_price:g} (clean_sample config)"
_BOX_RULE = (
    f"clean listings keep {_RULES.min_latitude:g} <= latitude <= {_RULES.max_latitude:g} and "
    f"{_RULES.min_longitude:g} <= longitude <= {_RULES.max_longitude:g} (clean_sample config)"
)


class RawListings(pa.DataFrameModel):
    """A weekly drop as received: the 16 columns in order, typed, nothing dropped yet.

    Prices and coordinates only have to be possible here; whether they are plausible is the
    cleaning step's decision, so a raw drop with outliers is valid and cleaning removes them.
    """

    id: Series[np.int64] = pa.Field(ge=1, unique=True, description="Listing id; one row per listing.")
    name: Series[str] = pa.Field(
        nullable=True, description="Listing title as the host wrote it; its words are model features."
    )
    host_id: Series[np.int64] = pa.Field(ge=1, description="Host id; a host can have many listings.")
    host_name: Series[str] = pa.Field(nullable=True, description="Host's first name; not used by the model.")
    neighbourhood_group: Series[str] = pa.Field(isin=list(BOROUGHS), description="Borough of the listing.")
    neighbourhood: Series[str] = pa.Field(description="Neighbourhood within the borough.")
    latitude: Series[np.float64] = pa.Field(ge=-90, le=90, description=f"Latitude in degrees; {_BOX_RULE}.")
    longitude: Series[np.float64] = pa.Field(
        ge=-180, le=180, description="Longitude in degrees; see latitude for the box."
    )
    room_type: Series[str] = pa.Field(isin=list(ROOM_TYPES), description="What is rented.")
    price: Series[np.int64] = pa.Field(
        ge=0, description=f"Nightly price in US dollars, the model's target; {_PRICE_RULE}."
    )
    minimum_nights: Series[np.int64] = pa.Field(ge=1, description="Shortest stay the host accepts, in nights.")
    number_of_reviews: Series[np.int64] = pa.Field(ge=0, description="Reviews received so far.")
    last_review: Series[str] = pa.Field(
        nullable=True,
        str_matches=DATE_PATTERN,
        description="Date of the latest review, YYYY-MM-DD; empty when never reviewed.",
    )
    reviews_per_month: Series[np.float64] = pa.Field(
        ge=0, nullable=True, description="Average reviews per month; empty when never reviewed."
    )
    calculated_host_listings_count: Series[np.int64] = pa.Field(ge=1, description="Listings the host has in this drop.")
    availability_365: Series[np.int64] = pa.Field(ge=0, le=365, description="Nights bookable in the coming year.")

    class Config:
        name = "raw listings"
        strict = True
        ordered = True


class CleanListings(RawListings):
    """Listings after cleaning: same columns, the review date parsed, nothing imputed."""

    last_review: Series[pa.DateTime] = pa.Field(
        nullable=True, description="Date of the latest review; missing when never reviewed (the model imputes it)."
    )

    class Config:
        name = "clean listings"
        strict = True
        ordered = True


class SplitListings(CleanListings):
    """One side of the train/test split: clean listings, and at least one of them.

    An empty side cannot train or score anything, and would otherwise surface as an obscure
    scikit-learn error two steps later.
    """

    class Config:
        name = "split listings"
        strict = True
        ordered = True

    @pa.dataframe_check(error="the split side holds no listings")
    @classmethod
    def has_listings(cls, frame: pd.DataFrame) -> bool:
        return len(frame) > 0


LISTINGS_MODELS: tuple[type[RawListings], ...] = (RawListings, CleanListings, SplitListings)


@dataclass(frozen=True)
class ColumnDoc:
    """What a person needs to know about one column, independent of any UI library."""

    name: str
    type: str  # int, float, string or date
    description: str
    nullable: bool
    unique: bool
    constraints: tuple[str, ...]


def column_docs(model: type[pa.DataFrameModel]) -> list[ColumnDoc]:
    """The model's columns in order, with their constraints written as a person would."""
    docs = []
    for name, column in model.to_schema().columns.items():
        docs.append(
            ColumnDoc(
                name=str(name),
                type=_type_name(column.dtype),
                description=column.description or "",
                nullable=bool(column.nullable),
                unique=bool(column.unique),
                constraints=tuple(describe_check(check) for check in column.checks),
            )
        )
    return docs


def model_for(frame: pd.DataFrame) -> type[RawListings] | None:
    """The model a listings frame is meant to follow: raw until its review date is parsed.

    Frames that are not listings (metric tables, feature importances) get None.
    """
    if [str(c) for c in frame.columns] != list(COLUMNS):
        return None
    if pd.api.types.is_datetime64_any_dtype(frame["last_review"].dtype):
        return CleanListings
    return RawListings


def describe_check(check: Any) -> str:
    """`greater_than_or_equal_to(0)` as `>= 0`: the form a reader of the asset page expects."""
    stats = dict(getattr(check, "statistics", None) or {})
    name = getattr(check, "name", "") or ""
    if name == "greater_than_or_equal_to":
        return f">= {stats['min_value']:g}"
    if name == "greater_than":
        return f"> {stats['min_value']:g}"
    if name == "less_than_or_equal_to":
        return f"<= {stats['max_value']:g}"
    if name == "less_than":
        return f"< {stats['max_value']:g}"
    if name == "in_range":
        return f"between {stats['min_value']:g} and {stats['max_value']:g}"
    if name == "isin":
        return "one of " + ", ".join(str(v) for v in stats["allowed_values"])
    if name == "str_matches":
        return f"matches {stats['pattern']}"
    return getattr(check, "error", None) or name


def _type_name(dtype: Any) -> str:
    text = str(dtype).lower()
    if "int" in text:
        return "int"
    if "float" in text:
        return "float"
    if "datetime" in text:
        return "date"
    if "bool" in text:
        return "bool"
    return "string"
