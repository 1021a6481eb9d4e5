"""Decoded versions kept in memory for the rest of a run (`run_state`), handed out as
independent copies.

One pipeline run reads the same version several times: each asset check loads its asset, then
the downstream asset loads it again. Every load re-reads the files, re-checks their sha256 and
decodes them (parquet, or skops for a model, the slowest). Versions never change once committed,
so a decoded value can be reused; a deep copy per load keeps one reader's changes from reaching
the next, exactly as separate loads would.

Only values decoded from the store are kept, never objects handed to ``save``: a frame that went
through parquet is what every later process will see, the object before it may differ (dtypes,
index), and a run must not behave differently depending on which step ran in which process.
"""

from __future__ import annotations

import copy
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from rental_pipeline.store import VersionManifest

DEFAULT_BUDGET_BYTES = 512 * 1024 * 1024


def _in_memory_bytes(value: Any, stored_bytes: int) -> int:
    pandas = sys.modules.get("pandas")  # a frame can only exist once pandas is imported
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return int(value.memory_usage(deep=True).sum())
    return stored_bytes


class ValueCache:
    """Least recently used decoded versions, up to a memory budget."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self._values: OrderedDict[tuple[str, str], tuple[Any, int]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self._values.values())

    def get(self, version: VersionManifest, decode: Callable[[], Any]) -> Any:
        """A copy of ``version``'s value, decoding it with ``decode()`` only the first time."""
        key = (version.ref, version.digest)
        entry = self._values.get(key)
        if entry is None:
            self.misses += 1
            value = decode()
            size = _in_memory_bytes(value, version.size)
            if size <= self.budget_bytes:
                self._values[key] = (value, size)
                self._evict()
            return copy.deepcopy(value)  # the kept value is never handed out
        self.hits += 1
        self._values.move_to_end(key)
        return copy.deepcopy(entry[0])

    def keep(self, version: VersionManifest, value: Any) -> None:
        """Hold ``value`` as ``version``'s decoded value. Only for a value the caller hands over
        (nobody else keeps using it) and that equals what decoding the version gives: the object
        a round-tripping codec has just encoded."""
        size = _in_memory_bytes(value, version.size)
        if size <= self.budget_bytes:
            self._values[(version.ref, version.digest)] = (value, size)
            self._values.move_to_end((version.ref, version.digest))
            self._evict()

    def clear(self) -> None:
        self._values.clear()

    def _evict(self) -> None:
        while self.bytes > self.budget_bytes:
            self._values.popitem(last=False)
