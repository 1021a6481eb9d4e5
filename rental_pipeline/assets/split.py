"""`trainval_data` and `test_data`: one seeded, stratified split, materializable one side at a time."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import Field

from rental_pipeline.code_version import code_version
from rental_pipeline.reuse import reusable


class SplitConfig(dg.Config):
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Share of listings held out for the test.")
    random_seed: int = 42
    stratify_by: str = Field(
        default="neighbourhood_group", description="Column whose shares both sides keep, or 'none'."
    )


@dg.multi_asset(
    name="split_listings",
    group_name="listings",
    outs={
        "trainval_data": dg.AssetOut(
            is_required=False,
            kinds={"pandas"},
            metadata={"artifact_type": "segregated_data"},
            description="Listings to train and validate on.",
        ),
        "test_data": dg.AssetOut(
            is_required=False,
            kinds={"pandas"},
            metadata={"artifact_type": "segregated_data"},
            description="Held-out listings, used only for the final score.",
        ),
    },
    can_subset=True,
    code_version=code_version(__name__),
)
@reusable
def split_listings(
    context: dg.AssetExecutionContext, config: SplitConfig, clean_sample: Any
) -> Iterator[dg.Output]:
    """Both sides come from the same split; asking for one only skips storing the other."""
    from rental_pipeline.assets.metadata import frame_metadata
    from rental_pipeline.split import split_listings as seeded_split

    trainval, test = seeded_split(
        clean_sample, test_size=config.test_size, random_seed=config.random_seed, stratify_by=config.stratify_by
    )
    for name, frame in (("trainval_data", trainval), ("test_data", test)):
        if name in context.op_execution_context.selected_output_names:
            yield dg.Output(frame, output_name=name, metadata=frame_metadata(frame))
