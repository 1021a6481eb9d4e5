"""What the pipeline takes from its environment, read in one place.

A deployment configures the code location through environment variables (where local state lives,
whether steps draw charts, what sources may be read, the automation switch), and a test sets them
for one run. Reading them all here, into one frozen object, at the edges only, gives each run one
consistent answer and lets everything below take the answer as an argument: a run's IO manager
builds it when the run starts, a schedule or sensor on each tick, a CLI command when it starts,
and the code location once as it loads (the automation switch sets its schedules' default status).

The artifact store's root is still found at the call by `rental_pipeline.home` (the store is
opened outside runs too), and the W&B mirror and the S3 client read their own variables
(`WANDB_*`, `AWS_*`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rental_pipeline.home import DAGSTER_HOME_VARIABLE, DEFAULT_HOME, HOME_VARIABLE

if TYPE_CHECKING:
    from rental_pipeline.sources import SourcePolicy

LANDING_VARIABLE = "RENTAL_PIPELINE_LANDING"
PLOTS_VARIABLE = "RENTAL_PIPELINE_PLOTS"
AUTOMATION_VARIABLE = "RENTAL_PIPELINE_AUTOMATION"
WEEKLY_SOURCE_VARIABLE = "RENTAL_PIPELINE_WEEKLY_SOURCE"

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
    # What the weekly schedule trains on (`RENTAL_PIPELINE_WEEKLY_SOURCE`); empty: nothing.
    weekly_source: str = ""
    # The whole environment as it was read: the source policy's variables, and the credentials a
    # source config names by variable (never shown, never compared).
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default: this process's environment) gives."""
        environ = dict(os.environ if environ is None else environ)
        home = Path(environ.get(HOME_VARIABLE) or DEFAULT_HOME).resolve()
        dagster_home = environ.get(DAGSTER_HOME_VARIABLE)
        return cls(
            home=home,
            dagster_home=Path(dagster_home).resolve() if dagster_home else home / "dagster",
            landing=environ.get(LANDING_VARIABLE) or None,
            plots=environ.get(PLOTS_VARIABLE, "on").strip().lower() not in _OFF,
            automation=environ.get(AUTOMATION_VARIABLE, "").strip().lower() in _ON,
            weekly_source=environ.get(WEEKLY_SOURCE_VARIABLE, "").strip(),
            environ=environ,
        )

    def source_policy(self) -> SourcePolicy:
        """The deployment's source policy (`RENTAL_PIPELINE_SOURCE_*`); refused, naming the
        variable, when one is malformed."""
        from rental_pipeline.sources import SourcePolicy

        return SourcePolicy.from_environment(self.environ)
