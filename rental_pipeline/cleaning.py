"""Basic cleaning: the reference's price and location rules, and nothing more.

Cleaning deliberately imputes nothing. A missing review date or a missing reviews-per-month is a
legitimate fact about a listing (it has no reviews), and the inference pipeline, which also has to
cope with such rows at prediction time, is the one place that decides how to fill them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the rules are read when the code location loads; pandas only when rows are cleaned
    import pandas as pd


@dataclass(frozen=True)
class CleaningRules:
    """Which listings are plausible enough to learn from (the reference configuration).

    The clean_sample config (and the bounds its checks may override) are built from these fields.
    """

    min_price: float = field(default=10.0, metadata={"description": "Lowest nightly price kept."})
    max_price: float = field(default=350.0, metadata={"description": "Highest nightly price kept."})
    min_longitude: float = -74.25
    max_longitude: float = -73.50
    min_latitude: float = 40.5
    max_latitude: float = 41.2


@dataclass(frozen=True)
class CleaningReport:
    """How many listings each rule removed, so a drop in row count can be explained."""

    rows_in: int
    price_outliers: int
    outside_box: int
    rows_out: int


def inside_nyc_box(listings: pd.DataFrame, rules: CleaningRules) -> pd.Series:
    """Both ends included, as in the reference's `Series.between`."""
    return listings["longitude"].between(rules.min_longitude, rules.max_longitude) & listings[
        "latitude"
    ].between(rules.min_latitude, rules.max_latitude)


def clean_listings(
    listings: pd.DataFrame, rules: CleaningRules = CleaningRules()
) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop price outliers, then listings outside New York, and parse the review date.

    The order (price first, then the box) follows the reference, so the per-rule counts in the
    report are comparable with its logs. Rows keep their source order: the split that follows is
    seeded, and a different order would give a different split.
    """
    import pandas as pd

    in_price = listings["price"].between(rules.min_price, rules.max_price)
    priced = listings.loc[in_price]
    in_box = inside_nyc_box(priced, rules)
    clean = priced.loc[in_box].reset_index(drop=True)
    clean["last_review"] = pd.to_datetime(clean["last_review"], format="%Y-%m-%d")
    report = CleaningReport(
        rows_in=len(listings),
        price_outliers=int((~in_price).sum()),
        outside_box=int((~in_box).sum()),
        rows_out=len(clean),
    )
    return clean, report
