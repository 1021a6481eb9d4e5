"""The run cache: an asset whose code, config and exact inputs made a stored version before is
not computed again; that version is reported again instead.

Versions are immutable and identified by content, so "the same code on the same input versions
with the same config" is a complete description of a deterministic step, as a DVC stage hash is.
The key lives with the version it led to, as an entry of the version's `run_cache` flag, not in
its manifest: a version reused by digest (two configs that happen to give the same bytes) gains
one key per way of making it, and the immutable manifest never changes.

The store knows nothing of Dagster, and neither does this module: `rental_pipeline.reuse` gives
it the facts of a step and reports the hit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rental_pipeline.store import ArtifactStore, VersionManifest

RUN_CACHE_FLAG = "run_cache"


# How many runs besides the first a key remembers as having made its version again.
MADE_AGAIN_KEPT = 10


@dataclass(frozen=True)
class CacheHit:
    version: VersionManifest
    run_id: str | None  # the run that first recorded this key (None: unknown); reuse may name another of `runs`
    runs: tuple[str, ...] = ()  # every run known to have made this version with this key, oldest first


def cache_key(
    asset: str, code_version: str, config: Mapping[str, Any], inputs: Mapping[str, str], *, charts: bool = True
) -> str:
    """What a step's result depends on: asset, code version, full step config (defaults included,
    so changing a default changes the key) and the exact version of every input, by input name.

    A reused version shows the metadata of the run that made it, so one made without charts is
    keyed apart (`charts=False`) and never hands a chart-less page to a run that draws them; keys
    of runs with charts are what they always were."""
    payload = {
        "asset": asset,
        "code_version": code_version,
        "config": config,
        "inputs": dict(sorted(inputs.items())),
        **({} if charts else {"charts": False}),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def find_cached(store: ArtifactStore, asset: str, key: str) -> CacheHit | None:
    """The newest stored version of ``asset`` made by exactly this key, if any, and if its bytes
    are all still stored.

    A version whose blob is gone (deleted, or cut short) is not a hit: reusing it would succeed
    here and fail wherever it is read. The step runs again instead, and writing what it makes
    stores the missing blob again (the same bytes reuse the same version). An older version made
    by the same key is not offered in its place: the damaged one would stay damaged.
    """
    if asset not in store.names():
        return None
    for version in reversed(store.history(asset)):
        entry = (version.flags.get(RUN_CACHE_FLAG) or {}).get(key)
        if entry is not None:
            if not store.intact(version):
                return None
            entry = entry or {}
            runs = tuple(dict.fromkeys(r for r in [entry.get("run_id"), *entry.get("made_again_by", ())] if r))
            return CacheHit(version=version, run_id=entry.get("run_id"), runs=runs)
    return None


def remember(store: ArtifactStore, ref: str, key: str, run_id: str | None) -> None:
    """Record that ``key`` made ``ref``; the first run to record a key keeps it, and a later run
    that made it again (forced, or computing because the first run is not in its Dagster
    instance) is remembered beside it (the newest few), so a run of that instance can reuse the
    version and show that run's page rather than compute it every time."""
    current = (store.flags(ref).get(RUN_CACHE_FLAG) or {}).get(key)
    if current is None:
        store.mark_entries(ref, RUN_CACHE_FLAG, {key: {"run_id": run_id}})
        return
    again = list((current or {}).get("made_again_by") or ())
    if run_id and run_id != (current or {}).get("run_id") and run_id not in again:
        again = [*again, run_id][-MADE_AGAIN_KEPT:]
        store.mark_entries(ref, RUN_CACHE_FLAG, {key: {**(current or {}), "made_again_by": again}})
