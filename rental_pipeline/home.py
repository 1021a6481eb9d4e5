"""Where local state lives: one folder, so a user can see, back up or delete it all at once; and the
artifact store the pipeline opens there.

The store itself decides none of this: it is given its root, the folder of this machine's cache
for a root on object storage, the S3 region and endpoint when its URL names none, and the aliases
it keeps off versions that failed checks. The defaults the pipeline gives it are here
(:func:`open_store`), taken from the caller's :class:`~rental_pipeline.settings.Settings`; a
caller that gives none (a test, a script) gets the settings this process's environment gives.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

# The variables' names, where they have always been importable from.
from rental_pipeline.settings import (  # noqa: F401
    DAGSTER_HOME_VARIABLE,
    DEFAULT_HOME,
    HOME_VARIABLE,
    S3_SCHEME,
    S3_STATS_VARIABLE,
    STORE_VARIABLE,
    Settings,
)

if TYPE_CHECKING:
    from rental_pipeline.store import ArtifactStore

# Aliases a version whose checks failed may not get (unless forced): the drift reference and the
# model that serves.
PROTECTED_ALIASES: tuple[str, ...] = ("reference", "prod")


def _given(settings: Settings | None) -> Settings:
    return settings if settings is not None else Settings.from_environment()


def project_home(settings: Settings | None = None) -> Path:
    """`$RENTAL_PIPELINE_HOME`, else `.rental_pipeline` under the working directory, made absolute
    (see :attr:`Settings.home`)."""
    return _given(settings).home


def dagster_home(settings: Settings | None = None) -> Path:
    """`$DAGSTER_HOME`, else `dagster` under the project home (see :attr:`Settings.dagster_home`)."""
    return _given(settings).dagster_home


def default_root(settings: Settings | None = None) -> Path | str:
    """``$RENTAL_PIPELINE_STORE`` (a folder or ``s3://bucket/prefix``), else ``artifacts`` under the
    project home (``$RENTAL_PIPELINE_HOME``, else ``.rental_pipeline``); see :attr:`Settings.store`."""
    return _given(settings).store


def store_local_dir(root: Path | str, settings: Settings | None = None) -> Path | None:
    """This machine's folder for a store on object storage (its cache of blobs, the W&B records):
    ``s3/<bucket>/<prefix>`` under the project home; None for a folder, which is its own."""
    if not str(root).startswith(S3_SCHEME):
        return None
    from rental_pipeline.store.s3_backend import parse_s3_url

    bucket, prefix, _ = parse_s3_url(str(root))
    return project_home(settings) / "s3" / bucket / (prefix or "_")


def open_store(
    root: Path | str | None = None,
    *,
    local_dir: Path | str | None = None,
    listeners: Iterable[object] = (),
    settings: Settings | None = None,
) -> ArtifactStore:
    """The artifact store as the pipeline uses it: at ``root`` (default :func:`default_root`), this
    machine's folder for it from :func:`store_local_dir` unless given, the S3 region and endpoint of
    ``settings`` for a URL that names none, :data:`PROTECTED_ALIASES` kept off versions that failed
    checks, the model codec registered with the pipeline's model types trusted, and ``listeners``
    told of what it commits (see :class:`rental_pipeline.store.StoreListener`). ``settings``
    default: the ones this process's environment gives now."""
    # registers the model codec (rental_pipeline.model_files) and the pipeline's own model types
    import rental_pipeline.model_types  # noqa: F401
    from rental_pipeline.store import ArtifactStore

    settings = _given(settings)
    root = root or settings.store
    if str(root).startswith(S3_SCHEME) and settings.s3_stats:
        from rental_pipeline.store.s3_backend import record_traffic_at_exit

        record_traffic_at_exit(settings.s3_stats)
    return ArtifactStore(
        root,
        local_dir=local_dir or store_local_dir(root, settings),
        protected_aliases=PROTECTED_ALIASES,
        listeners=listeners,
        s3_region=settings.s3_region,
        s3_endpoint_url=settings.s3_endpoint_url,
    )
