"""Decoded versions reused within a process: decoded once, handed out as independent copies."""

from __future__ import annotations

import pandas as pd
import pytest

from rental_pipeline.home import open_store
from rental_pipeline.store import ArtifactStore
from rental_pipeline.value_cache import ValueCache


@pytest.fixture
def store(store_root: str) -> ArtifactStore:
    return open_store(store_root)


def frame(rows: int, price: float = 100.0) -> pd.DataFrame:
    return pd.DataFrame({"id": range(rows), "price": [price] * rows, "name": ["Sunny loft"] * rows})


def test_a_version_is_decoded_once_and_each_reader_gets_its_own_copy(store: ArtifactStore) -> None:
    version = store.save("clean_sample", frame(50), type="clean_sample").version
    cache = ValueCache()
    decodes: list[str] = []

    def decode() -> pd.DataFrame:
        decodes.append(version.ref)
        return store.load(version.ref)

    first = cache.get(version, decode)
    first["price"] = 0.0  # one reader changing its copy in place...
    first.loc[0, "name"] = "changed"
    second = cache.get(version, decode)
    pd.testing.assert_frame_equal(second, store.load(version.ref))  # ...is invisible to the next
    assert decodes == [version.ref]
    assert (cache.hits, cache.misses) == (1, 1)


def test_versions_are_told_apart_by_reference_and_digest(store: ArtifactStore) -> None:
    cheap = store.save("clean_sample", frame(10, 50.0), type="clean_sample").version
    dear = store.save("clean_sample", frame(10, 500.0), type="clean_sample").version
    cache = ValueCache()
    assert cache.get(cheap, lambda: store.load(cheap.ref))["price"].eq(50.0).all()
    assert cache.get(dear, lambda: store.load(dear.ref))["price"].eq(500.0).all()
    assert cache.misses == 2


def test_the_memory_budget_evicts_the_least_recently_used(store: ArtifactStore) -> None:
    versions = [store.save(f"part_{i}", frame(2_000, float(i)), type="part").version for i in range(3)]
    one = int(store.load(versions[0].ref).memory_usage(deep=True).sum())
    cache = ValueCache(budget_bytes=2 * one + one // 2)  # room for two
    for version in versions:
        cache.get(version, lambda v=version: store.load(v.ref))
    assert cache.bytes <= cache.budget_bytes
    cache.get(versions[2], lambda: store.load(versions[2].ref))
    cache.get(versions[1], lambda: store.load(versions[1].ref))
    assert cache.hits == 2
    cache.get(versions[0], lambda: store.load(versions[0].ref))  # evicted first, decoded again
    assert cache.misses == 4

    too_big = ValueCache(budget_bytes=one // 2)
    too_big.get(versions[0], lambda: store.load(versions[0].ref))
    assert too_big.bytes == 0  # larger than the whole budget: handed out, not kept


def test_a_kept_value_is_handed_out_as_copies_without_decoding(store: ArtifactStore) -> None:
    original = frame(20)
    version = store.save("clean_sample", original, type="clean_sample").version
    cache = ValueCache()
    cache.keep(version, original)

    def decode() -> pd.DataFrame:
        raise AssertionError("a kept value is not decoded")

    first = cache.get(version, decode)
    first.loc[0, "name"] = "changed"
    pd.testing.assert_frame_equal(cache.get(version, decode), original)
    assert first is not original and (cache.hits, cache.misses) == (2, 0)

    small = ValueCache(budget_bytes=10)
    small.keep(version, original)  # larger than the whole budget: not kept
    assert small.bytes == 0 and small.get(version, lambda: store.load(version.ref)) is not None


def test_clear_forgets_everything(store: ArtifactStore) -> None:
    version = store.save("clean_sample", frame(5), type="clean_sample").version
    cache = ValueCache()
    cache.get(version, lambda: store.load(version.ref))
    cache.clear()
    cache.get(version, lambda: store.load(version.ref))
    assert (cache.hits, cache.misses, cache.bytes > 0) == (0, 2, True)
