"""Where local state lives: one folder, so a user can see, back up or delete it all at once."""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "RENTAL_PIPELINE_HOME"
DEFAULT_HOME = ".rental_pipeline"
DAGSTER_HOME_VARIABLE = "DAGSTER_HOME"


def project_home() -> Path:
    """`$RENTAL_PIPELINE_HOME`, else `.rental_pipeline` under the working directory, made absolute.

    Made absolute once, so a run worker started in another directory still writes to the same
    place as the process that launched it.
    """
    return Path(os.environ.get(HOME_VARIABLE) or DEFAULT_HOME).resolve()


def dagster_home() -> Path:
    """`$DAGSTER_HOME`, else `dagster` under the project home: where `make` puts the Dagster instance,
    so a command run without the variable reads the same run history as `make run` and `make dev`."""
    configured = os.environ.get(DAGSTER_HOME_VARIABLE)
    return Path(configured).resolve() if configured else project_home() / "dagster"
