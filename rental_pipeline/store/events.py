"""Telling others what a store committed: a small listener interface, like Kedro's dataset hooks.

A listener is any object with some of the methods of :class:`StoreListener` (subclass it to
leave the others out). The store calls them after the change is committed and its locks are
released, so a listener may read the store or take its time without holding up other writers;
listeners are called in the order they were subscribed. A listener that raises reaches the caller
with its exception, but what was committed stays committed. ::

    class Printer(StoreListener):
        def alias_moved(self, name, move):
            print(f"{move.alias} of {name} -> {move.to_version}")

    store = ArtifactStore(root, listeners=[Printer()])  # or store.subscribe(Printer())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .aliases import AliasMove
    from .manifest import VersionManifest


class StoreListener:
    """What a store tells its listeners; each method here does nothing."""

    def version_saved(self, version: VersionManifest, created: bool) -> None:
        """A write committed ``version`` (``created`` False: equal bytes reused an existing
        version). ``latest`` has moved to it already (see :meth:`alias_moved`)."""

    def alias_moved(self, name: str, move: AliasMove) -> None:
        """An alias of artifact ``name`` moved (``move.to_version`` None: it was removed); writes
        moving ``latest`` included."""

    def version_flagged(self, ref: str, key: str, value: Any) -> None:
        """Flag ``key`` of version ``ref`` (``name:vN``) is now ``value`` (None: removed)."""


class Listeners(list[object]):
    """A store's listeners, told of each event in subscription order."""

    def tell(self, event: str, *args: Any) -> None:
        """Call ``event`` on every listener that has it."""
        for listener in list(self):
            method = getattr(listener, event, None)
            if method is not None:
                method(*args)
