"""`clean_sample`: listings with plausible prices inside New York."""

from dataclasses import asdict
from typing import Any

import dagster as dg

from rental_pipeline.assets.metadata import CHARTS_NOTE
from rental_pipeline.assets.params import config_of
from rental_pipeline.cleaning import CleaningRules, clean_listings
from rental_pipeline.code_version import code_version
from rental_pipeline.records import CONFIG_USED_KEY
from rental_pipeline.reuse import reusable
from rental_pipeline.settings import Settings


class CleaningConfig(config_of(CleaningRules, name="CleaningConfig")):
    """The reference cleaning rules; both ends of every range are kept."""

    def rules(self) -> CleaningRules:
        return CleaningRules(**self.model_dump())


@dg.asset(
    group_name="listings",
    kinds={"pandas"},
    metadata={"artifact_type": "clean_sample"},
    code_version=code_version(__name__),
    description=f"Listings with {CleaningRules.min_price:g} <= price <= {CleaningRules.max_price:g} inside the NYC "
    "box, review date parsed; nothing imputed." + CHARTS_NOTE,
)
@reusable
def clean_sample(
    context: dg.AssetExecutionContext, config: CleaningConfig, raw_data: Any, settings: Settings
) -> dg.Output:
    return clean_drop(context, config, raw_data, settings)


def clean_drop(
    context: dg.AssetExecutionContext, config: CleaningConfig, raw_data: Any, settings: Settings
) -> dg.Output:
    """A drop's clean listings as an output, with what cleaning dropped and the rules it applied."""
    from rental_pipeline.assets.metadata import frame_metadata

    rules = config.rules()
    clean, report = clean_listings(raw_data, rules)
    context.log.info(
        f"Kept {report.rows_out:,} of {report.rows_in:,} listings: dropped {report.price_outliers:,} "
        f"price outliers and {report.outside_box:,} outside the NYC box"
    )
    return dg.Output(
        clean,
        metadata={
            "rows_in": report.rows_in,
            "dropped_price_outliers": report.price_outliers,
            "dropped_outside_box": report.outside_box,
            # the rules this version was cleaned with, kept as its config: its checks judge it by them
            CONFIG_USED_KEY: dg.MetadataValue.json(asdict(rules)),
            **frame_metadata(
                clean,
                price_plot="clean_sample",
                compare_prices={"raw_data": raw_data["price"]} if "price" in raw_data.columns else None,
                price_bounds=(rules.min_price, rules.max_price),
                plots=settings.plots,
            ),
        },
    )
