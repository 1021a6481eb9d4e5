"""The W&B mirror, against the real wandb library in offline mode (no network anywhere).

Online-only calls (``run.use_artifact``, ``wandb.Api().artifact``) cannot be exercised without a
server, so those tests stand a stub in at the wandb API boundary and say so.
"""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rental_pipeline.store import (
    ArtifactStore,
    IntegrityError,
    MirrorError,
    MirrorQueue,
    WandbMirror,
    resolve_mode,
)


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wandb_home = tmp_path / "wandb_home"
    wandb_home.mkdir()
    for var in (
        "WANDB_DIR",
        "WANDB_CACHE_DIR",
        "WANDB_CONFIG_DIR",
        "WANDB_DATA_DIR",
        "WANDB_ARTIFACT_DIR",
    ):
        monkeypatch.setenv(var, str(wandb_home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return wandb_home


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "home" / "artifacts")


FILES = {
    "data.parquet": b"PAR1 not really parquet" * 100,
    "plots/price.png": b"\x89PNG fake",
    "README.md": b"# clean sample\n",
}


def test_store_digest_is_wandb_digest(store: ArtifactStore, tmp_path: Path) -> None:
    import wandb

    version = store.write("clean_sample.csv", FILES, type="clean_sample").version
    artifact = wandb.Artifact("clean_sample.csv", type="clean_sample")
    for path, data in FILES.items():  # from separate copies: W&B hashes the bytes, not our blobs
        copy = tmp_path / "copies" / path
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(data)
        artifact.add_file(str(copy), name=path)
    assert artifact.digest == version.digest
    assert {p: e.digest for p, e in artifact.manifest.entries.items()} == {
        f.path: f.digest for f in version.files
    }


def wandb_records(path: Path) -> Iterator[Any]:
    """Records of a ``.wandb`` file, decoded with wandb's own protobuf classes.

    wandb 0.31 writes the file from its Go core and ships no Python reader (the old
    ``wandb/sdk/internal/datastore.py`` is gone), so this follows that reader's format: a 7-byte
    header (``:W&B``, magic, version), then LevelDB-log records in 32 KiB blocks, each with a
    crc32, a length and a FULL/FIRST/MIDDLE/LAST type.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0)
    offset, pending = 7, b""
    while offset < len(data):
        if 32768 - offset % 32768 < 7:  # block trailer padding
            offset += 32768 - offset % 32768
            continue
        checksum, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == 0 and length == 0:
            continue
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == checksum
        pending += chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_offline_mirror_writes_the_store_digest_into_the_run(
    store: ArtifactStore, offline_wandb: Path
) -> None:
    raw = store.write("sample.csv", {"sample.csv": b"id,price\n1,100\n"}, type="raw_data").version
    clean = store.write(
        "clean_sample.csv", FILES, type="clean_sample", inputs=[raw.ref], metadata={"rows": 1}
    ).version
    store.set_alias(clean.ref, "reference", reason="first week")
    mirror = WandbMirror(store)
    assert mirror.mode == "offline" and mirror.wandb_dir == offline_wandb

    result = mirror.mirror(
        store.get(clean.ref), job_type="basic_cleaning", group="week-47", config={"min_price": 10}
    )
    print(f"one offline mirror run took {result.seconds:.2f}s")
    assert result.mode == "offline" and result.url is None
    assert result.run_dir is not None and result.run_dir.parent == offline_wandb / "wandb"

    records = list(wandb_records(result.run_dir / f"run-{result.run_id}.wandb"))
    artifacts = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    assert len(artifacts) == 1
    record = artifacts[0]
    assert record.digest == clean.digest
    assert (record.name, record.type, record.project) == (
        "clean_sample.csv",
        "clean_sample",
        "nyc_airbnb",
    )
    assert sorted(record.aliases) == ["latest", "reference"]
    blob_paths = store.paths(clean.ref)
    assert {e.path: (e.digest, e.local_path) for e in record.manifest.contents} == {
        f.path: (f.digest, str(blob_paths[f.path])) for f in clean.files
    }  # the run points at the store's blobs: no second copy

    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["artifact_store"]["inputs"] == ["sample.csv:v0"]
    assert config["artifact_store"]["output"] == clean.ref
    assert (
        config["min_price"] == 10
        and run.job_type == "basic_cleaning"
        and run.run_group == "week-47"
    )

    pending = mirror.pending.all()
    assert [(p.run_id, p.artifact) for p in pending] == [(result.run_id, clean.ref)]
    assert set(pending[0].blobs) == {f.sha256 for f in clean.files}


def test_gc_keeps_blobs_of_unsynced_runs_until_synced(store: ArtifactStore) -> None:
    old = store.write("model", {"model.skops": b"old weights"}, type="model_export").version
    mirror = WandbMirror(store)
    mirror.mirror(old, job_type="train")
    store.write("model", {"model.skops": b"new weights"}, type="model_export")
    old_blob = store.blobs.path(old.files[0].sha256)

    report = store.gc(keep=1)
    assert report.removed_versions == ["model:v0"] and report.kept_pending_blobs == 1
    assert old_blob.exists()  # an unsynced offline run still points at it
    assert store.verify().ok

    without_key = mirror.sync()
    assert without_key.skipped_reason and "WANDB_API_KEY" in without_key.skipped_reason
    assert len(mirror.pending.all()) == 1

    calls: list[list[str]] = []

    def wandb_sync_stub(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        """Stands in for ``wandb sync``, which would need the W&B server."""
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    synced = mirror.sync(force=True, runner=wandb_sync_stub)
    assert [r.artifact for r in synced.synced] == ["model:v0"] and synced.ok
    assert calls[0][-3:-1] == ["wandb", "sync"] and Path(calls[0][-1]).is_dir()
    assert mirror.pending.all() == []
    assert store.gc().removed_blobs == 1 and not old_blob.exists()


def test_disabled_mode_does_nothing(store: ArtifactStore, offline_wandb: Path) -> None:
    version = store.write("a", {"f": b"1"}, type="t").version
    result = WandbMirror(store, mode="disabled").mirror(version, job_type="x")
    assert result.mode == "disabled" and result.run_id is None
    assert not (offline_wandb / "wandb").exists()


def test_mode_resolution() -> None:
    assert resolve_mode(None, {}) == "offline"
    assert resolve_mode(None, {"WANDB_API_KEY": "k"}) == "online"
    assert resolve_mode(None, {"WANDB_API_KEY": "k", "WANDB_MODE": "offline"}) == "offline"
    assert resolve_mode("disabled", {"WANDB_API_KEY": "k"}) == "disabled"
    assert resolve_mode(None, {"WANDB_MODE": "dryrun"}) == "offline"
    with pytest.raises(MirrorError):
        resolve_mode("sometimes", {})


class FakeRemoteArtifact:
    """Stub of ``wandb.Api().artifact(...)``'s result: what a W&B server would hand back."""

    def __init__(self, files: dict[str, bytes], *, corrupt: str | None = None) -> None:
        from rental_pipeline.store import artifact_digest, entry_digest

        self.files = files
        self.corrupt = corrupt
        self.type = "clean_sample"
        self.description = "from the team project"
        self.metadata = {
            "rows": 3,
            "artifact_store": {"ref": "clean_sample.csv:v7", "inputs": ["sample.csv:v2"]},
        }
        self.qualified_name = "team/nyc_airbnb/clean_sample.csv:v7"
        entries = {p: SimpleNamespace(digest=entry_digest(b)) for p, b in files.items()}
        self.manifest = SimpleNamespace(entries=entries)
        self.digest = artifact_digest((p, e.digest) for p, e in entries.items())

    def download(self, root: str) -> str:
        for path, data in self.files.items():
            target = Path(root) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"flipped" if path == self.corrupt else data)
        return root


class FakeApi:
    """Stub of ``wandb.Api`` (online only; there is no server to reach)."""

    def __init__(self, artifact: FakeRemoteArtifact) -> None:
        self.remote = artifact
        self.requested: list[str] = []

    def artifact(self, name: str, type: str | None = None) -> FakeRemoteArtifact:  # noqa: A002
        self.requested.append(name)
        return self.remote


def test_online_fetch_verifies_and_imports_a_missing_version(store: ArtifactStore) -> None:
    """Online only: ``wandb.Api().artifact`` is stubbed at the API boundary (no network here)."""
    api = FakeApi(FakeRemoteArtifact(FILES))
    mirror = WandbMirror(store, mode="online", entity="team", api_factory=lambda: api)
    version = mirror.ensure_local("clean_sample.csv:v7")
    assert api.requested == ["team/nyc_airbnb/clean_sample.csv:v7"]
    assert version.ref == "clean_sample.csv:v0"  # local numbering; the source is recorded
    assert version.digest == api.remote.digest
    assert version.metadata["imported_from"]["wandb"] == "team/nyc_airbnb/clean_sample.csv:v7"
    assert version.metadata["imported_from"]["lineage"]["inputs"] == ["sample.csv:v2"]
    assert store.read_bytes(version.ref, "plots/price.png") == FILES["plots/price.png"]
    assert (
        mirror.ensure_local("clean_sample.csv:v0").ref == "clean_sample.csv:v0"
    )  # local: no fetch
    assert len(api.requested) == 1


def test_online_fetch_refuses_bytes_that_do_not_match(store: ArtifactStore) -> None:
    """Online only: stubbed ``wandb.Api``; a corrupted download must not enter the store."""
    api = FakeApi(FakeRemoteArtifact(FILES, corrupt="README.md"))
    mirror = WandbMirror(store, mode="online", api_factory=lambda: api)
    with pytest.raises(IntegrityError, match=r"README\.md"):
        mirror.fetch("clean_sample.csv:latest")
    assert store.names() == []


def test_fetch_is_refused_offline(store: ArtifactStore) -> None:
    with pytest.raises(MirrorError, match="offline mode cannot read artifacts back"):
        WandbMirror(store).fetch("clean_sample.csv:v1")


def test_online_mirror_declares_inputs_with_use_artifact(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online only: ``wandb.init`` is stubbed at the API boundary; online runs need a server."""
    import wandb

    calls: dict[str, Any] = {"used": []}

    class FakeRun:
        id = "online123"
        url = "https://wandb.example/run/online123"
        settings = SimpleNamespace(sync_dir="/nonexistent")

        def use_artifact(self, artifact: Any) -> Any:
            calls["used"].append((artifact.name, artifact.digest))
            return artifact

        def log_artifact(self, artifact: Any, aliases: list[str]) -> None:
            calls["logged"] = (artifact.name, artifact.digest, aliases)
            artifact.wait = lambda: None

        def finish(self) -> None:
            calls["finished"] = True

    def fake_init(**kwargs: Any) -> FakeRun:
        calls["init"] = kwargs
        return FakeRun()

    monkeypatch.setattr(wandb, "init", fake_init)
    raw = store.write("sample.csv", {"sample.csv": b"raw"}, type="raw_data").version
    clean = store.write("clean_sample.csv", FILES, type="clean_sample", inputs=[raw.ref]).version
    result = WandbMirror(store, mode="online").mirror(clean, job_type="basic_cleaning")

    assert result.url == FakeRun.url and result.run_dir is None
    assert calls["init"]["mode"] == "online"
    assert calls["used"] == [("sample.csv", raw.digest)]
    assert calls["logged"] == ("clean_sample.csv", clean.digest, ["latest"])
    assert calls["finished"] and WandbMirror(store).pending.all() == []


def test_queued_mirrors_run_in_order_under_the_ids_they_were_given(store: ArtifactStore) -> None:
    versions = [
        store.write("clean_sample.csv", {"data.csv": f"id,price\n1,{price}\n".encode()}, type="clean_sample").version
        for price in (100, 120, 140)
    ]
    queue = MirrorQueue(WandbMirror(store))
    run_ids = [queue.submit(version, job_type="basic_cleaning", group="week-48") for version in versions]
    assert len(set(run_ids)) == 3 and all(len(i) == 8 and i.isalnum() and i.islower() for i in run_ids)

    outcomes = queue.wait()
    assert [o.artifact for o in outcomes] == [v.ref for v in versions]
    assert [o.run_id for o in outcomes] == run_ids
    assert all(o.error is None and o.result is not None for o in outcomes)
    for outcome, version in zip(outcomes, versions):
        assert outcome.result.run_id == outcome.run_id
        records = list(wandb_records(outcome.result.run_dir / f"run-{outcome.run_id}.wandb"))
        (artifact,) = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
        assert artifact.digest == version.digest
    # The runs were made one after the other, in the order the versions were stored.
    assert [p.run_id for p in queue.mirror.pending.all()] == run_ids
    assert queue.wait() == []  # nothing left; the worker thread is gone


def test_a_failed_queued_mirror_is_an_outcome_not_an_exception(store: ArtifactStore) -> None:
    version = store.write("clean_sample.csv", FILES, type="clean_sample").version
    queue = MirrorQueue(WandbMirror(store))
    run_id = queue.submit(version, job_type="basic_cleaning", project="no/slashes")
    (outcome,) = queue.wait()
    assert outcome.run_id == run_id and outcome.result is None
    assert "Invalid project name" in str(outcome.error)
    assert store.get(version.ref).digest == version.digest
