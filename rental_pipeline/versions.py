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

A recorded version (2, 3) is a number in *some* store: the Dagster instance keeps one history,
however many stores its runs wrote to. So it is used only if this run's store holds that number
with the digest Dagster recorded with it (its data version); otherwise the run stops with
:class:`RecordedVersionError`, naming both, instead of loading another store's `v0` that merely
has the same number.

Aliases read by assets (`prod` for the champion, `reference` for drift) are resolved once per run
too. The IO manager, the asset checks and the assets that read the store all ask the same
resolver, so a check judges, and flags, exactly the version the asset next to it used.

Nothing here knows Dagster: `rental_pipeline.run_state` passes in how to read the run's records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rental_pipeline.store import ArtifactNotFoundError, ArtifactStore, StoreError, parse_ref

PINNED = "pinned in config"
THIS_RUN = "materialized earlier in this run"
LAST_RECORDED = "recorded by its latest materialization"
LATEST_ALIAS = "the latest alias (no materialization recorded)"


@dataclass(frozen=True)
class Recorded:
    """A version as a run's records name it: the exact ref and, when known, the digest recorded
    with it (Dagster's data version) and where the store that made it keeps the artifact."""

    ref: str
    digest: str | None = None
    where: str | None = None


# How to read the records: a name -> its recorded version (a bare ref when no digest is known).
RecordLookup = Callable[[str], "Recorded | str | None"]


class RecordedVersionError(StoreError):
    """The version the run's records name is not in this store, or is other bytes there.

    A :class:`StoreError`, like a missing version: a reader that already copes with a version its
    store lacks (a check looking for the split's other side) copes with this one the same way.
    """

    def __init__(self, name: str, recorded: Recorded, how: str, location: str, found_digest: str | None) -> None:
        self.name, self.recorded, self.how, self.location = name, recorded, how, location
        self.found_digest = found_digest
        digest = f" (digest {recorded.digest})" if recorded.digest else ""
        made = f", made in {recorded.where}" if recorded.where else ""
        if found_digest is None:
            problem = f"this run's store at {location} has no {recorded.ref}"
        else:
            problem = f"{recorded.ref} in this run's store at {location} holds other bytes (digest {found_digest})"
        super().__init__(
            f"{name}: the version {how} is {recorded.ref}{digest}{made}, but {problem}; the store was "
            f"probably switched since. Not loading it by number from the wrong store. Re-materialize "
            f"{name} into this store (select it with what is downstream of it), run on the store it was "
            f"made in, or pin the version to read: resources: {{io_manager: {{config: {{pins: {{{name}: vN}}}}}}}}."
        )


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
            return Resolution(self._in_this_store(name, own, THIS_RUN), THIS_RUN)
        last = self.recorded_last(name)
        if last:
            return Resolution(self._in_this_store(name, last, LAST_RECORDED), LAST_RECORDED)
        return Resolution(self.store.get(f"{name}:latest").ref, LATEST_ALIAS)

    def _in_this_store(self, name: str, found: Recorded | str, how: str) -> str:
        """The recorded ref, once this store is known to hold it with the recorded digest."""
        recorded = found if isinstance(found, Recorded) else Recorded(str(found))
        parsed = parse_ref(recorded.ref)
        try:
            if parsed.version is None:  # records hold exact versions; an alias is read as it is now
                version = self.store.get(recorded.ref)
            else:
                version = self.store.read_manifest(parsed.name, parsed.version)
        except ArtifactNotFoundError:
            raise RecordedVersionError(name, recorded, how, self.store.location, None) from None
        if recorded.digest and version.digest != recorded.digest:
            raise RecordedVersionError(name, recorded, how, self.store.location, version.digest)
        return version.ref

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
        """This run stored (or reused) ``ref`` for ``name``: later readers in the run get it,
        unless a pin names the version to read (a pin is chosen on purpose and comes first)."""
        if self.pins.get(name):
            return
        self._answers[name] = Resolution(ref, THIS_RUN)
