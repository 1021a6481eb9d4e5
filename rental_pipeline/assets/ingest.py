"""`raw_data`: this week's listings drop, from a CSV or, by default, the built-in generator."""

from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field

from rental_pipeline.assets.metadata import CHARTS_NOTE
from rental_pipeline.code_version import code_version
from rental_pipeline.records import CONFIG_USED_KEY
from rental_pipeline.reuse import reusable
from rental_pipeline.settings import Settings
from rental_pipeline.sources import AUTH_VARIABLE_PREFIX, SourcePolicy, describe


class SourceConfig(dg.Config):
    """Where a listings file comes from and how it is fetched (shared by raw_data and
    batch_predictions). The limits here can only narrow the code server's source policy
    (`RENTAL_PIPELINE_SOURCE_FOLDERS`, `_HOSTS`, `_MAX_BYTES`), so whoever launches a run cannot
    lift a deployment's limits through run config."""

    source: str | None = Field(
        default=None,
        description="Local path, file:// URL or http(s):// URL of a listings CSV (or .csv.gz) with the 16 "
        "standard columns. A URL holding a secret belongs in an environment variable: {env: VARIABLE}.",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Time limit of a whole download (URLs).")
    auth_header_variable: str | None = Field(
        default=None,
        description=f"Name of an environment variable ({AUTH_VARIABLE_PREFIX}...) holding the Authorization "
        "header value for the source's host (or 'Header-Name: value'). Without it, a netrc entry is used.",
    )
    max_bytes: int | None = Field(
        default=None, gt=0, description="Largest source in bytes, after decompression. Empty: the policy's (4 GiB)."
    )
    allowed_folders: list[str] | None = Field(default=None, description="Read local files only below these folders.")
    allowed_hosts: list[str] | None = Field(default=None, description="Download only from these hosts.")

    def policy(self, settings: Settings) -> SourcePolicy:
        return settings.source_policy().narrowed(
            folders=self.allowed_folders, hosts=self.allowed_hosts, max_bytes=self.max_bytes
        )


class RawDataConfig(SourceConfig):
    """Where the listings come from. No source means synthetic listings, so a fresh clone runs."""

    rows: int = Field(default=20_000, ge=1, description="Synthetic listings to generate (no source).")
    seed: int = Field(default=42, description="Seed of the synthetic generator (no source).")

    def used(self) -> dict:
        """The fields that applied: rows and seed for synthetic listings, the source (without
        anything secret in it) and the timeout, for a URL, otherwise. A file's version must not
        claim a seed it never used."""
        if not self.source:
            return {"rows": self.rows, "seed": self.seed}
        if urlsplit(self.source).scheme in ("http", "https"):
            return {"source": describe(self.source), "timeout_seconds": self.timeout_seconds}
        return {"source": describe(self.source)}


def warn_if_kept_by_dagster(context: dg.AssetExecutionContext, source: str) -> None:
    """Nothing this project writes keeps a URL's query string, but Dagster keeps the run config as
    it was launched; say so when a query came in literally rather than from `{env: ...}`."""
    ops = context.run.run_config.get("ops", {}) if isinstance(context.run.run_config, dict) else {}
    launched = ops.get(context.op_def.name, {}).get("config", {}).get("source")
    if isinstance(launched, str) and urlsplit(launched).query:
        context.log.warning(
            f"The query string of {describe(source)} is not recorded by the pipeline, but Dagster's run history "
            "keeps the run config as launched: pass a URL holding a secret as {env: VARIABLE} instead."
        )


def fixed_by_config(config: SourceConfig) -> bool:
    """Whether the run cache may answer: a file or URL may change under the same name, so it is
    always read (the store then finds the existing version when the bytes are the same), while
    synthetic listings are fixed by config."""
    return not config.source


@dg.asset(
    group_name="listings",
    kinds={"pandas"},
    metadata={"artifact_type": "raw_data"},
    code_version=code_version(__name__),
    description="The raw listings drop, exactly as received (typed, nothing dropped)." + CHARTS_NOTE,
)
@reusable(cacheable=fixed_by_config)
def raw_data(context: dg.AssetExecutionContext, config: RawDataConfig, settings: Settings) -> dg.Output:
    return read_drop(context, config, settings)


def read_drop(
    context: dg.AssetExecutionContext, config: RawDataConfig, settings: Settings, week: str | None = None
) -> dg.Output:
    """A drop as an output: the file or URL of the config, else synthetic listings (of ``week``,
    one of a plausible sequence, when a week is named; the single synthetic drop otherwise)."""
    from rental_pipeline.assets.metadata import frame_metadata

    if config.source:
        from rental_pipeline.listings import read_listings

        warn_if_kept_by_dagster(context, config.source)
        drop = read_listings(
            config.source,
            timeout=config.timeout_seconds,
            policy=config.policy(settings),
            auth_variable=config.auth_header_variable,
        )
        listings = drop.listings
        origin = {"source": drop.source, "source_sha256": drop.sha256, "source_bytes": drop.size_bytes}
    elif week is not None:
        from rental_pipeline.synthetic_weeks import generate_week

        drift = bool(getattr(config, "drift", False))
        listings = generate_week(week, rows=config.rows, seed=config.seed, drift=drift)
        drifted = ", drifted" if drift else ""
        origin = {"source": f"synthetic week {week} (rows={config.rows}, seed={config.seed}{drifted})"}
    else:
        from rental_pipeline.synthetic import generate_listings

        listings = generate_listings(rows=config.rows, seed=config.seed)
        origin = {"source": f"synthetic (rows={config.rows}, seed={config.seed})"}
    context.log.info(f"Read {len(listings):,} listings from {origin['source']}")
    return dg.Output(
        listings,
        metadata={
            **origin,
            **frame_metadata(listings, price_plot="raw_data", plots=settings.plots),
            CONFIG_USED_KEY: dg.MetadataValue.json(config.used()),
        },
    )
