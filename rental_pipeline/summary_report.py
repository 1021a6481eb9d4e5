"""What `rental-pipeline summary` says of a run beyond each asset's version: whether the version was
computed or reused, and what the last run built.

A run whose steps the run cache answered is all green in Dagster like a full run; the summary
is where a person checks what it actually did. An asset a job does not build is shown as "not
part of" it, not as a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

# Metadata the IO manager records on a materialization (see `rental_pipeline.io_manager`).
REUSED_FROM_KEY = "reused_from_run"
NEW_VERSION_KEY = "artifact_version_new"


class Status(Protocol):
    name: str
    timestamp: float | None
    run_id: str | None
    metadata: Mapping[str, Any]


def provenance(status: Status, job: str | None = None, job_assets: Iterable[str] | None = None) -> str:
    """The "new / reused" cell of one asset: `new` (a new version computed), `recomputed, same
    bytes` (computed, equal to a stored version), `reused from <run>` (the run cache answered), or
    that the job asked about does not build it."""
    if job is not None and job_assets is not None and status.name not in set(job_assets):
        return f"not part of {job}"
    if status.timestamp is None:
        return "-"
    reused = status.metadata.get(REUSED_FROM_KEY)
    if reused is not None:
        return f"reused from {str(reused)[:8]}"
    new = status.metadata.get(NEW_VERSION_KEY)
    return "new" if new or new is None else "recomputed, same bytes"


def last_run(statuses: Sequence[Status], job: str | None = None, job_assets: Iterable[str] | None = None) -> str:
    """One line naming what the newest run built: which assets got a new version, which were
    reused, and (with `job`) which assets that job does not build."""
    dated = [s for s in statuses if s.timestamp is not None and s.run_id]
    if job is not None and job_assets is not None:
        dated = [s for s in dated if s.name in set(job_assets)]
    outside = (
        [s.name for s in statuses if s.name not in set(job_assets)] if job is not None and job_assets is not None
        else []
    )
    tail = f"; not part of {job}: {', '.join(outside)}" if outside else ""
    if not dated:
        return f"Nothing materialized yet{tail}."
    newest = max(dated, key=lambda s: s.timestamp or 0.0)
    built = [s for s in dated if s.run_id == newest.run_id]
    groups: dict[str, list[str]] = {}
    for status in built:
        kind = provenance(status)
        groups.setdefault("reused" if kind.startswith("reused") else kind, []).append(status.name)
    parts = [f"{len(names)} {kind} ({', '.join(names)})" for kind, names in groups.items()]
    return f"Run {str(newest.run_id)[:8]} built {', '.join(parts)}{tail}."
