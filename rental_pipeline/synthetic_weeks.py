"""A plausible sequence of weekly synthetic drops, so a newcomer can backfill weeks with no data.

Real weekly drops are mostly the same listings again: some arrive, some leave, prices move a
little. So every week is drawn from one pool of listings (`generate_listings` with twice the rows)
in which each listing is on the market for stretches of weeks and off for others, on its own
rhythm; a week holds the listings on the market then, about ``rows`` of them, and about one in
twenty changes between two weeks. Each listing's price moves a few percent from week to week.

A week is computed from its index alone (no chain through earlier weeks), so any week, and any
range of weeks, costs the same, and the same (rows, seed, week) gives the same frame.

``drift`` asks one week to drift, as a real market change would: most Manhattan listings leave,
as many new ones as there were open in the outer boroughs, and prices rise: enough for the
borough-drift check to stop that week.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from rental_pipeline.synthetic import generate_listings
from rental_pipeline.weeks import week_index

POOL_FACTOR = 2  # the pool holds twice a week's rows; each listing is on the market half the time
MIN_STRETCH_WEEKS = 12  # a listing's on and off stretches last 12 to 40 weeks
MAX_STRETCH_WEEKS = 40
WEEKLY_PRICE_SD = 0.03  # a listing's price moves about 3% from one week to the next
DRIFT_MANHATTAN_KEPT = 0.25
DRIFT_PRICE_FACTOR = 1.3
DRIFT_GROWING = ("Queens", "Bronx", "Staten Island")
DRIFT_ID_OFFSET = 100_000_000


@lru_cache(maxsize=4)
def _pool(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The listings every week draws from, and each one's rhythm (period and phase, in weeks)."""
    pool = generate_listings(rows=rows * POOL_FACTOR, seed=seed)
    rng = np.random.default_rng([seed, 1])
    stretch = rng.integers(MIN_STRETCH_WEEKS, MAX_STRETCH_WEEKS + 1, len(pool))
    phase = rng.integers(0, 2 * stretch)
    return pool, 2 * stretch, phase


def generate_week(week: str, rows: int = 20_000, seed: int = 42, *, drift: bool = False) -> pd.DataFrame:
    """The synthetic drop of ``week`` (a Monday, `YYYY-MM-DD`): about ``rows`` listings."""
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    index = week_index(week)
    pool, period, phase = _pool(rows, seed)
    on_market = (index + phase) % period < period // 2
    frame = pool.loc[on_market].reset_index(drop=True)
    rng = np.random.default_rng([seed, 2, index])
    priced = frame["price"].between(1, 9_999)  # the $0 and $10,000 outliers stay what they are
    # A walk that returns: each listing's price is its pool price times a small factor of the
    # week, so two neighbouring weeks differ by a few percent and no week wanders off.
    moved = frame.loc[priced, "price"].to_numpy() * np.exp(rng.normal(0.0, WEEKLY_PRICE_SD, int(priced.sum())))
    if drift:
        moved = moved * DRIFT_PRICE_FACTOR
    frame.loc[priced, "price"] = np.clip(np.rint(moved), 10, 9_999).astype(frame["price"].dtype)
    if drift:
        manhattan = frame["neighbourhood_group"].eq("Manhattan").to_numpy()
        leaving = manhattan & (rng.random(len(frame)) > DRIFT_MANHATTAN_KEPT)
        outer = frame.loc[frame["neighbourhood_group"].isin(DRIFT_GROWING)].copy()
        outer["id"] = outer["id"] + DRIFT_ID_OFFSET  # new listings, as many again as were there
        frame = pd.concat([frame.loc[~leaving], outer], ignore_index=True)
    return frame
