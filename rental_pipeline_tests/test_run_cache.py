"""The run cache hands out only versions whose bytes are all still stored, and recomputing heals
one whose bytes are not.

On both backends: a folder, and a real S3 server (skipped, saying why, when none is running).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rental_pipeline.home import open_store
from rental_pipeline.run_cache import cache_key, find_cached, remember
from rental_pipeline.store import ArtifactStore, IntegrityError
from rental_pipeline.store.blobs import BlobStore
from rental_pipeline_tests.store.backends import is_s3_store, overwrite, remove

ASSET = "inference_pipeline"
VALUE = {"weights": [0.25, 0.5, 0.75], "intercept": 3.0}


@pytest.fixture
def store(store_root: str) -> ArtifactStore:
    return open_store(store_root)


def cached_version(store: ArtifactStore) -> tuple[str, str, str]:
    """A stored value and the run-cache key that made it: (ref, key, blob key)."""
    version = store.save(ASSET, VALUE, type="model_export", run_id="run-1").version
    key = cache_key(ASSET, "code-1", {"n_estimators": 10}, {"train_data": "train_data:v0"})
    remember(store, version.ref, key, "run-1")
    hit = find_cached(store, ASSET, key)
    assert hit is not None and (hit.version.ref, hit.run_id) == (version.ref, "run-1")
    return version.ref, key, BlobStore.key(version.files[0].sha256)


def assert_healed_by_saving_again(store: ArtifactStore, ref: str, key: str, blob: str) -> None:
    again = store.save(ASSET, VALUE, type="model_export", run_id="run-2")
    assert (again.created, again.version.ref) == (False, ref)
    assert store.backend.info(blob).size == again.version.files[0].size
    assert store.intact(ref) and store.load(ref) == VALUE
    hit = find_cached(store, ASSET, key)
    assert hit is not None and (hit.version.ref, hit.run_id) == (ref, "run-1")


def test_a_version_whose_blob_is_gone_is_not_reused_and_recomputing_heals_it(store: ArtifactStore) -> None:
    """Reusing it would report success and fail later, where the model is read."""
    ref, key, blob = cached_version(store)
    remove(store, blob)
    assert not store.intact(ref)
    assert store.blob_problems(ref) == [f"{ref} file 'value.json': its stored bytes are missing"]
    assert find_cached(store, ASSET, key) is None
    assert_healed_by_saving_again(store, ref, key, blob)


def test_a_version_whose_blob_was_cut_short_is_not_reused_and_recomputing_heals_it(store: ArtifactStore) -> None:
    """A truncated upload or a full disk: the blob exists but is not the size the manifest says."""
    ref, key, blob = cached_version(store)
    overwrite(store, blob, store.backend.read(blob).data[:-5])
    assert not store.intact(ref)
    assert "bytes long, the manifest says" in store.blob_problems(store.get(ref))[0]
    assert find_cached(store, ASSET, key) is None
    assert_healed_by_saving_again(store, ref, key, blob)


def flip_one_byte(store: ArtifactStore, blob: str) -> bytes:
    """Alter a stored blob behind the store's back, keeping its size; returns the original bytes."""
    original = store.backend.read(blob).data
    overwrite(store, blob, original[:7] + bytes([original[7] ^ 0x01]) + original[8:])
    assert store.backend.info(blob).size == len(original)
    return original


def test_a_version_whose_blob_was_altered_at_the_same_size_is_not_reused_and_recomputing_heals_it(
    store: ArtifactStore,
) -> None:
    """One byte flipped: reusing it would succeed here and fail wherever the value is loaded, on
    every later run. On a folder the check hashes the blob; on object storage it sees the ETag
    changed since this machine wrote the bytes."""
    ref, key, blob = cached_version(store)
    original = flip_one_byte(store, blob)
    assert not store.intact(ref)
    (problem,) = store.blob_problems(ref, deep=True)
    assert problem.startswith(f"{ref} file 'value.json': its stored bytes ")
    assert ("altered" if not is_s3_store(store) else "changed since this machine verified them") in problem
    assert store.blob_problems(ref) == []  # without deep: existence and size only
    assert find_cached(store, ASSET, key) is None
    assert_healed_by_saving_again(store, ref, key, blob)
    assert store.backend.read(blob).data == original


def test_a_machine_that_never_verified_a_blob_checks_only_its_size(s3_credentials: str, tmp_path: Path) -> None:
    """On object storage the ETag is compared with the one this machine verified the bytes under;
    another machine has no such record, so there only the size is checked (a read still refuses
    the bytes), until it has read them once."""
    from rental_pipeline_tests.store.backends import s3_root

    store = open_store(s3_root(s3_credentials, "intact"))
    ref, _key, blob = cached_version(store)
    elsewhere = ArtifactStore(store.location, local_dir=tmp_path / "another-machine")
    elsewhere.load(ref)  # verified there: its ETag is recorded
    flip_one_byte(store, blob)
    assert not store.intact(ref) and not elsewhere.intact(ref)
    never_read = ArtifactStore(store.location, local_dir=tmp_path / "a-third-machine")
    assert never_read.intact(ref)
    with pytest.raises(IntegrityError, match="altered"):
        never_read.load(ref)


def test_checking_a_version_downloads_nothing(s3_credentials: str) -> None:
    """The run cache checks every hit, so the check must cost a request per file, not the bytes."""
    from rental_pipeline_tests.store.backends import s3_root

    store = open_store(s3_root(s3_credentials, "intact"))
    version = store.write(ASSET, {"model.skops": b"w" * 200_000}, type="model_export").version
    received = store.backend.bytes_received
    assert store.intact(version)
    assert store.backend.bytes_received == received


@pytest.mark.slow
def test_a_run_with_nothing_changed_remakes_a_model_whose_bytes_are_gone(instance) -> None:
    """As observed: the model's blob deleted, nothing else changed. The run must not report the
    model reused (prediction would then fail on the missing bytes) but train it again, which
    writes the same version's blob back; what it feeds is unchanged, so it is still reused."""
    from rental_pipeline.io_manager import REUSED_FROM_KEY
    from rental_pipeline_tests.conftest import artifact_store, materialize, materialized

    first = materialize(instance)
    store = artifact_store()
    model = store.get(f"{ASSET}:latest")
    remove(store, BlobStore.key(model.files[0].sha256))

    again = materialized(materialize(instance))
    assert again[ASSET].get(REUSED_FROM_KEY) is None
    assert again["model_evaluation"].get(REUSED_FROM_KEY) == first.run_id
    assert store.get(f"{ASSET}:latest").ref == model.ref and store.intact(model.ref)
    store.load(model.ref)
