"""The train/validation/test split, seeded and stratified like the reference.

The same function serves both splits (trainval/test here, train/validation inside training), so
both honour `stratify_by: none`, which crashes the reference.
"""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

NO_STRATIFICATION = "none"


def split_listings(
    listings: pd.DataFrame,
    *,
    test_size: float = 0.2,
    random_seed: int = 42,
    stratify_by: str = "neighbourhood_group",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split listings in two, keeping each borough's share the same on both sides.

    Rows are split by position, so the result depends only on the input's row order and the seed;
    both parts get a fresh 0..n-1 index because they are stored and read back as separate tables.
    """
    stratify = None
    if stratify_by.lower() != NO_STRATIFICATION:
        if stratify_by not in listings.columns:
            raise ValueError(
                f"stratify_by={stratify_by!r} is not a column of the listings; "
                f"use one of {list(listings.columns)} or 'none'"
            )
        stratify = listings[stratify_by]
    first, second = train_test_split(
        listings, test_size=test_size, random_state=random_seed, stratify=stratify
    )
    return first.reset_index(drop=True), second.reset_index(drop=True)
