"""`raw_data`: this week's listings drop, from a CSV or, by default, the built-in generator."""

import dagster as dg
from pydantic import Field

from rental_pipeline.code_version import code_version
from rental_pipeline.io_manager import reused_output, reused_outputs


class RawDataConfig(dg.Config):
    """Where the listings come from. No source means synthetic listings, so a fresh clone runs."""

    source: str | None = Field(
        default=None,
        description="Local path, file:// URL or http(s):// URL of a listings CSV with the 16 "
        "standard columns. Leave empty to use the built-in synthetic NYC listings.",
    )
    rows: int = Field(default=20_000, ge=1, description="Synthetic listings to generate (no source).")
    seed: int = Field(default=42, description="Seed of the synthetic generator (no source).")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Download time limit for URLs.")


@dg.asset(
    group_name="listings",
    kinds={"pandas"},
    metadata={"artifact_type": "raw_data"},
    code_version=code_version(__name__),
    description="The raw listings drop, exactly as received (typed, nothing dropped).",
)
def raw_data(context: dg.AssetExecutionContext, config: RawDataConfig) -> dg.Output:
    # A file or URL may change under the same name, so it is always read; the store then finds
    # the existing version when the bytes are the same. Synthetic listings are fixed by config.
    if not config.source and (hits := reused_outputs(context)):
        return reused_output(context, hits["raw_data"])
    from rental_pipeline.assets.metadata import frame_metadata

    if config.source:
        from rental_pipeline.listings import read_listings

        drop = read_listings(config.source, timeout=config.timeout_seconds)
        listings = drop.listings
        origin = {"source": drop.source, "source_sha256": drop.sha256, "source_bytes": drop.size_bytes}
    else:
        from rental_pipeline.synthetic import generate_listings

        listings = generate_listings(rows=config.rows, seed=config.seed)
        origin = {"source": f"synthetic (rows={config.rows}, seed={config.seed})"}
    context.log.info(f"Read {len(listings):,} listings from {origin['source']}")
    return dg.Output(listings, metadata={**origin, **frame_metadata(listings)})
