"""Lineage: from any version back to the raw file it was made from, through recorded inputs."""

from __future__ import annotations

from collections.abc import Iterator

from .manifest import VersionManifest
from .store import ArtifactStore, RefLike


def lineage(store: ArtifactStore, ref: RefLike) -> Iterator[tuple[int, VersionManifest]]:
    """(depth, version) pairs, depth first, each version once even where branches meet again."""
    seen: set[str] = set()

    def walk(current: RefLike, depth: int) -> Iterator[tuple[int, VersionManifest]]:
        version = store.get(current)
        first = version.ref not in seen
        seen.add(version.ref)
        yield depth, version
        if first:
            for parent in version.inputs:
                yield from walk(parent, depth + 1)

    yield from walk(ref, 0)
