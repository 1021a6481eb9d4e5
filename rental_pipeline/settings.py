"""What the pipeline takes from its environment, read in one place.

A deployment configures the code location through environment variables (where local state lives,
whether steps draw charts, what sources may be read, the automation switch), and a test sets them
for one run. Reading them all here, into one frozen object, at the edges only, gives each run one
consistent answer and lets everything below take the answer as an argument: a run's IO manager
builds it when the run starts, a schedule or sensor on each tick, a CLI command when it starts,
and the code location once as it loads (the automation switch sets its schedules' default status).

No other module of the package reads the environment (a test scans the sources for it): the
artifact store's root (`rental_pipeline.home` opens the store from these settings), the S3 region
and endpoint the store is given, and the W&B mirror's entity, folder, server, mode and project are
all here. Two uses of the environment are not reads of settings and stay where they are: handing a
whole environment to a child process, and setting a variable for a library (`WANDB_SILENT`).
AWS credentials are never read here: boto3 finds them itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rental_pipeline.sources import SourcePolicy

HOME_VARIABLE = "RENTAL_PIPELINE_HOME"
DEFAULT_HOME = ".rental_pipeline"
DAGSTER_HOME_VARIABLE = "DAGSTER_HOME"
STORE_VARIABLE = "RENTAL_PIPELINE_STORE"
# Naming a file, each process appends its S3 traffic to it at exit (one JSON line; the benchmark's).
S3_STATS_VARIABLE = "RENTAL_PIPELINE_S3_STATS"
S3_SCHEME = "s3://"
LANDING_VARIABLE = "RENTAL_PIPELINE_LANDING"
PLOTS_VARIABLE = "RENTAL_PIPELINE_PLOTS"
AUTOMATION_VARIABLE = "RENTAL_PIPELINE_AUTOMATION"
RETRAIN_VARIABLE = "RENTAL_PIPELINE_RETRAIN_ON_NEW_WEEK"
WEEKLY_SOURCE_VARIABLE = "RENTAL_PIPELINE_WEEKLY_SOURCE"
WANDB_REGISTRY_VARIABLE = "RENTAL_PIPELINE_WANDB_REGISTRY"

_OFF = {"off", "0", "false", "no"}
_ON = {"1", "on", "true", "yes"}


@dataclass(frozen=True)
class Settings:
    # `$RENTAL_PIPELINE_HOME`, else `.rental_pipeline` under the working directory, made absolute
    # once, so a run worker started in another directory writes to the same place.
    home: Path
    # `$DAGSTER_HOME`, else `dagster` under the home: where `make` puts the Dagster instance, so a
    # command run without the variable reads the same run history as `make run` and `make dev`.
    dagster_home: Path
    # `$RENTAL_PIPELINE_LANDING` as given (a folder or an s3:// prefix; see `landing.landing_folder`).
    landing: str | None = None
    # Whether steps draw their charts: about 2 s of a small run that change no stored artifact, so a
    # run nobody looks at in the UI (CI, a test of something else) sets `RENTAL_PIPELINE_PLOTS=off`.
    plots: bool = True
    # Schedules and sensors start running by themselves: off unless `RENTAL_PIPELINE_AUTOMATION` is
    # on, so a laptop does not start training by itself.
    automation: bool = False
    # The `retrain_on_new_week` sensor retrains when a week lands untrained: off unless
    # `RENTAL_PIPELINE_RETRAIN_ON_NEW_WEEK` is on (read as the code location loads, like `automation`).
    retrain_on_new_week: bool = False
    # What the weekly schedule trains on (`RENTAL_PIPELINE_WEEKLY_SOURCE`); empty: nothing.
    weekly_source: str = ""
    # `$RENTAL_PIPELINE_STORE` (a folder, made absolute, or an s3:// URL), else `artifacts` under the
    # home: the artifact store the pipeline opens (`rental_pipeline.home.open_store`).
    store: Path | str = Path(DEFAULT_HOME, "artifacts")
    # `$RENTAL_PIPELINE_S3_STATS`: a file each process appends its S3 traffic to at exit.
    s3_stats: str | None = None
    # The region and endpoint a store on S3 uses when its URL names none: `AWS_REGION`, else
    # `AWS_DEFAULT_REGION` (boto3 alone reads only the latter); `AWS_ENDPOINT_URL_S3`, else
    # `AWS_ENDPOINT_URL` (the order boto3 gives them). A given endpoint also means path-style
    # addressing, which a private server needs.
    s3_region: str | None = None
    s3_endpoint_url: str | None = None
    # The W&B mirror's: `WANDB_ENTITY`; `WANDB_DIR` (else the folder above the store); the server
    # `WANDB_BASE_URL` (None: W&B's own); `WANDB_MODE` (None: online with `WANDB_API_KEY`, else
    # offline); `WANDB_PROJECT` (None: `nyc_airbnb`); `RENTAL_PIPELINE_WANDB_REGISTRY` (None: the
    # default collection).
    wandb_entity: str | None = None
    wandb_dir: str | None = None
    wandb_base_url: str | None = None
    wandb_mode: str | None = None
    wandb_project: str | None = None
    wandb_registry: str | None = None
    # Whether `WANDB_API_KEY` is set (the key itself is left to wandb, which reads it).
    wandb_api_key: bool = field(default=False, repr=False)
    # The whole environment as it was read: the source policy's variables, and the credentials a
    # source config names by variable (never shown, never compared).
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default: this process's environment) gives."""
        environ = dict(os.environ if environ is None else environ)
        home = Path(environ.get(HOME_VARIABLE) or DEFAULT_HOME).resolve()
        dagster_home = environ.get(DAGSTER_HOME_VARIABLE)
        store = environ.get(STORE_VARIABLE, "").strip()
        return cls(
            home=home,
            dagster_home=Path(dagster_home).resolve() if dagster_home else home / "dagster",
            landing=environ.get(LANDING_VARIABLE) or None,
            plots=environ.get(PLOTS_VARIABLE, "on").strip().lower() not in _OFF,
            automation=environ.get(AUTOMATION_VARIABLE, "").strip().lower() in _ON,
            retrain_on_new_week=environ.get(RETRAIN_VARIABLE, "").strip().lower() in _ON,
            weekly_source=environ.get(WEEKLY_SOURCE_VARIABLE, "").strip(),
            store=(store if store.startswith(S3_SCHEME) else Path(store).resolve()) if store else home / "artifacts",
            s3_stats=environ.get(S3_STATS_VARIABLE) or None,
            s3_region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
            s3_endpoint_url=environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None,
            wandb_entity=environ.get("WANDB_ENTITY") or None,
            wandb_dir=environ.get("WANDB_DIR") or None,
            wandb_base_url=environ.get("WANDB_BASE_URL") or None,
            wandb_mode=environ.get("WANDB_MODE") or None,
            wandb_project=environ.get("WANDB_PROJECT") or None,
            wandb_registry=environ.get(WANDB_REGISTRY_VARIABLE),
            wandb_api_key=bool(environ.get("WANDB_API_KEY")),
            environ=environ,
        )

    def source_policy(self) -> SourcePolicy:
        """The deployment's source policy (`RENTAL_PIPELINE_SOURCE_*`); refused, naming the
        variable, when one is malformed."""
        from rental_pipeline.sources import SourcePolicy

        return SourcePolicy.from_environment(
            self.environ, s3_region=self.s3_region, s3_endpoint_url=self.s3_endpoint_url
        )
