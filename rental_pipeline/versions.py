"""One answer per run to "which version of this artifact?", for every reader of the store.

Two runs may write the same artifact at once, and aliases move while a run goes on, so "the
latest" is a different version from one moment to the next. A run therefore resolves each name
once, in this order, and then sticks to its answer:

1. a pin in config (a version or an alias such as `prod`), so a version can be chosen on purpose;
2. the version this run itself recorded, when the upstream was materialized earlier in the run
   (or another step of the run already read it), read from the run's own records and never from
   the instance-wide latest;
3. the version recorded by the upstream's latest materialization (a downstream-only run);
4. with no record at all (a new Dagster instance on an existing store), the `latest` alias.

Aliases read by assets (`prod` for the champion, `reference` for drift) are resolved once per run
too. The IO manager, the asset checks and the assets that read the store all ask the same
resolver, so a check judges, and flags, exactly the version the asset next to it used.

Nothing here knows Dagster: the IO manager passes in how to read the run's records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rental_pipeline.store import ArtifactStore, parse_ref

RecordLookup = Callable[[str], "str | None"]

PINNED = "pinned in config"
THIS_RUN = "materialized earlier in this run"
LAST_RECORDED = "recorded by its latest materialization"
LATEST_ALIAS = "the latest alias (no materialization recorded)"


@dataclass(frozen=True)
class Resolution:
    ref: str  # exact name:vN
    how: str  # one of the constants above, or "alias <name>"


@dataclass
class VersionResolver:
    """Resolves names and aliases for one run; every answer is remembered for the run's life."""

    store: ArtifactStore
    pins: Mapping[str, str]
    recorded_in_run: RecordLookup
    recorded_last: RecordLookup
    _answers: dict[str, Resolution] = field(default_factory=dict)

    def input(self, name: str) -> Resolution:
        """The exact version of ``name`` this run reads as an input."""
        known = self._answers.get(name)
        if known is None:
            known = self._answers[name] = self._resolve_input(name)
        return known

    def _resolve_input(self, name: str) -> Resolution:
        pin = self.pins.get(name)
        if pin:
            return Resolution(self.store.get(pin if ":" in pin else f"{name}:{pin}").ref, PINNED)
        own = self.recorded_in_run(name)
        if own:
            return Resolution(str(parse_ref(own)), THIS_RUN)
        last = self.recorded_last(name)
        if last:
            return Resolution(str(parse_ref(last)), LAST_RECORDED)
        return Resolution(self.store.get(f"{name}:latest").ref, LATEST_ALIAS)

    def alias(self, name: str, alias: str) -> str | None:
        """``name:alias`` as an exact version, the same for the whole run; None if unset."""
        key = f"{name}:{alias}"
        known = self._answers.get(key)
        if known is None:
            if not self.store.exists(key):
                return None
            known = self._answers[key] = Resolution(self.store.get(key).ref, f"alias {alias}")
        return known.ref

    def alias_moved(self, name: str, alias: str, ref: str) -> None:
        """This run moved ``name:alias`` to ``ref``: its later steps see the move."""
        self._answers[f"{name}:{alias}"] = Resolution(ref, f"alias {alias}")

    def stored(self, name: str, ref: str) -> None:
        """This run stored (or reused) ``ref`` for ``name``: later readers in the run get it."""
        self._answers[name] = Resolution(ref, THIS_RUN)
