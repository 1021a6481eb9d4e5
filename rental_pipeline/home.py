"""Where local state lives: one folder, so a user can see, back up or delete it all at once; and the
artifact store the pipeline opens there.

The store itself decides none of this: it is given its root, the folder of this machine's cache
for a root on object storage, and the aliases it keeps off versions that failed checks. The
defaults the pipeline gives it are here (:func:`open_store`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rental_pipeline.store import ArtifactStore

HOME_VARIABLE = "RENTAL_PIPELINE_HOME"
DEFAULT_HOME = ".rental_pipeline"
DAGSTER_HOME_VARIABLE = "DAGSTER_HOME"
STORE_VARIABLE = "RENTAL_PIPELINE_STORE"
# Naming a file, each process appends its S3 traffic to it at exit (one JSON line; the benchmark's).
S3_STATS_VARIABLE = "RENTAL_PIPELINE_S3_STATS"
S3_SCHEME = "s3://"
# Aliases a version whose checks failed may not get (unless forced): the drift reference and the
# model that serves.
PROTECTED_ALIASES: tuple[str, ...] = ("reference", "prod")


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


def default_root() -> Path | str:
    """``$RENTAL_PIPELINE_STORE`` (a folder or ``s3://bucket/prefix``), else ``artifacts`` under the
    project home (``$RENTAL_PIPELINE_HOME``, else ``.rental_pipeline``)."""
    configured = os.environ.get(STORE_VARIABLE, "").strip()
    if configured:
        return configured if configured.startswith(S3_SCHEME) else Path(configured).resolve()
    return project_home() / "artifacts"


def store_local_dir(root: Path | str) -> Path | None:
    """This machine's folder for a store on object storage (its cache of blobs, the W&B records):
    ``s3/<bucket>/<prefix>`` under the project home; None for a folder, which is its own."""
    if not str(root).startswith(S3_SCHEME):
        return None
    from rental_pipeline.store.s3_backend import parse_s3_url

    bucket, prefix, _ = parse_s3_url(str(root))
    return project_home() / "s3" / bucket / (prefix or "_")


def open_store(
    root: Path | str | None = None, *, local_dir: Path | str | None = None, listeners: Iterable[object] = ()
) -> ArtifactStore:
    """The artifact store as the pipeline uses it: at ``root`` (default :func:`default_root`), this
    machine's folder for it from :func:`store_local_dir` unless given, :data:`PROTECTED_ALIASES`
    kept off versions that failed checks, the model codec registered with the pipeline's model types
    trusted, and ``listeners`` told of what it commits (see :class:`rental_pipeline.store.StoreListener`)."""
    # registers the model codec (rental_pipeline.model_files) and the pipeline's own model types
    import rental_pipeline.model_types  # noqa: F401
    from rental_pipeline.store import ArtifactStore

    root = root or default_root()
    if str(root).startswith(S3_SCHEME) and os.environ.get(S3_STATS_VARIABLE):
        from rental_pipeline.store.s3_backend import record_traffic_at_exit

        record_traffic_at_exit(os.environ[S3_STATS_VARIABLE])
    return ArtifactStore(
        root,
        local_dir=local_dir or store_local_dir(root),
        protected_aliases=PROTECTED_ALIASES,
        listeners=listeners,
    )
