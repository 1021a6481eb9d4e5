"""What a sync reports, and the settings it is given: where the prod model is linked, and whether
W&B credentials are there to try at all.

Apart from the sync itself (:mod:`.wandb_sync`) because the mirror, its worker and the CLI need
these without the sync's machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rental_pipeline.settings import WANDB_REGISTRY_VARIABLE, Settings

from .pending import PendingRun
from .wandb_server import ServerInfo

REGISTRY_VARIABLE = WANDB_REGISTRY_VARIABLE
DEFAULT_REGISTRY = "wandb-registry-model/nyc-rental-price"
DEFAULT_TIMEOUT = 600.0
_OFF = ("", "none", "off", "false", "0")


@dataclass(frozen=True)
class RegistryLink:
    """Where the model holding ``alias`` is linked: a W&B registry collection, as the reference's
    release step did by hand. Only versions of ``types`` are linked."""

    target: str
    alias: str = "prod"
    types: tuple[str, ...] = ("model_export",)


def settings_from(environ: Mapping[str, str] | None, settings: Settings | None) -> Settings:
    """The settings ``environ`` gives when given, else ``settings``, else this process's now."""
    if environ is not None:
        return Settings.from_environment(environ)
    return settings if settings is not None else Settings.from_environment()


def registry_link(
    value: str | None = None, environ: Mapping[str, str] | None = None, *, settings: Settings | None = None
) -> RegistryLink | None:
    """The registry collection: as given, else ``$RENTAL_PIPELINE_WANDB_REGISTRY``, else the default
    (of ``environ`` when given, else of ``settings``).

    A bare name is a collection of the ``model`` registry; ``none`` turns linking off.
    """
    configured = settings_from(environ, settings).wandb_registry
    chosen = value if value is not None else (DEFAULT_REGISTRY if configured is None else configured)
    if chosen.strip().lower() in _OFF:
        return None
    chosen = chosen.strip()
    return RegistryLink(chosen if "/" in chosen else f"wandb-registry-model/{chosen}")


def has_credentials(environ: Mapping[str, str] | None = None, *, settings: Settings | None = None) -> bool:
    """Whether ``wandb sync`` can authenticate without asking: an API key in the environment."""
    return settings_from(environ, settings).wandb_api_key


@dataclass
class SyncReport:
    """What a sync did and what it could not do, and why."""

    pending: list[PendingRun] = field(default_factory=list)  # runs waiting when it started
    queued_moves: int = 0  # alias moves W&B had not seen when it started
    uploaded: list[PendingRun] = field(default_factory=list)
    synced: list[PendingRun] = field(default_factory=list)  # runs now complete on W&B
    links: list[str] = field(default_factory=list)  # "run (artifact) <- input"
    aliases: list[str] = field(default_factory=list)
    registry: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    skipped_reason: str | None = None
    server: ServerInfo | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def nothing_to_do(self) -> bool:
        return not self.pending and not self.queued_moves and not self.checks and not self.failed

    def lines(self) -> list[str]:
        """The report for a person, one fact a line."""
        if self.skipped_reason:
            return [f"not synced: {self.skipped_reason}"]
        out = [
            f"uploaded {len(self.uploaded)} run(s); {len(self.synced)} run(s) now complete on W&B, "
            f"{len(self.links)} lineage link(s) added, {len(self.aliases)} alias move(s) applied "
            f"({self.seconds:.1f} s)"
        ]
        out += [f"  link    {line}" for line in self.links]
        out += [f"  alias   {line}" for line in self.aliases]
        out += [f"  registry {line}" for line in self.registry]
        out += [f"  checks  {line}" for line in self.checks]
        out += [f"  warning {line}" for line in self.warnings]
        out += [f"  failed  {what}: {why}" for what, why in self.failed]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "skipped_reason": self.skipped_reason,
            "pending": [r.run_id for r in self.pending],
            "queued_alias_moves": self.queued_moves,
            "uploaded": [r.run_id for r in self.uploaded],
            "synced": [r.run_id for r in self.synced],
            "links": self.links,
            "aliases": self.aliases,
            "registry": self.registry,
            "checks": self.checks,
            "warnings": self.warnings,
            "failed": [{"what": what, "why": why} for what, why in self.failed],
            "seconds": round(self.seconds, 3),
        }
