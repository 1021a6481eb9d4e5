"""Store commands that refuse leave no trace, and `gc` can free the blobs of W&B offline runs that
will never be synced, when asked to and saying so (real W&B offline runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rental_pipeline.cli import artifacts
from rental_pipeline.store import ArtifactNotFoundError, ArtifactStore, InvalidNameError
from rental_pipeline.tracking import WandbMirror, verify_store
from rental_pipeline.tracking.pending import PendingRuns


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def run(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(artifacts, ["--root", str(root), *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["alias", "x", "nosuch:v0"],  # the arguments swapped: an alias cannot hold ':'
        ["alias", "nosuch:v0", "prod"],
        ["alias", "nosuch:latest", "prod", "--force"],
        ["alias", "nosuch", "prod", "--remove"],
    ],
)
def test_a_refused_alias_leaves_no_trace(tmp_path, args):
    root = tmp_path / "artifacts"
    code, out = run(root, *args)
    assert code == 1 and out.startswith("Error: ") and "Traceback" not in out
    assert files_under(tmp_path) == []  # not even the store folder

    store = ArtifactStore(root)
    store.write("raw_data", {"a": b"1"}, type="raw_data")
    before = files_under(root)
    code, out = run(root, *args)
    assert code == 1
    assert files_under(root) == before  # an existing store gains nothing either


def test_refusals_from_python_leave_no_trace_either(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    with pytest.raises(ArtifactNotFoundError, match="no artifact named 'nosuch'"):
        store.set_alias("nosuch:v0", "prod")
    with pytest.raises(ArtifactNotFoundError):
        store.mark("nosuch:v0", "promotion", {"promoted": False})
    with pytest.raises(ArtifactNotFoundError):
        store.remove_alias("nosuch", "prod")
    with pytest.raises(InvalidNameError):
        store.set_alias("../escape:v0", "prod")
    assert files_under(tmp_path) == []


@pytest.mark.slow
def test_gc_frees_blobs_of_offline_runs_only_when_asked(tmp_path, monkeypatch):
    wandb_dir = tmp_path / "wandb"
    for variable in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    root = tmp_path / "artifacts"
    store = ArtifactStore(root)
    old = store.write("raw_data", {"data.csv": b"old bytes\n" * 1000}, type="raw_data").version
    store.write("raw_data", {"data.csv": b"new bytes\n" * 10}, type="raw_data")
    result = WandbMirror(store, mode="offline", wandb_dir=wandb_dir).mirror(old, job_type="raw_data")
    assert result.run_dir is not None and result.run_dir.is_dir()

    code, out = run(root, "gc", "--keep", "1")
    assert code == 0 and "removed 1 version(s), 0 orphan blob(s)" in out
    assert "kept 1 blob(s) that unsynced W&B offline runs point at (--drop-unsynced-runs frees them" in out
    blob = store.blobs.path(old.files[0].sha256)
    assert blob.exists()

    code, out = run(root, "gc", "--drop-unsynced-runs", "--dry-run")
    assert code == 0 and f"would drop 1 unsynced W&B offline run(s) and their folders: {result.run_id}" in out
    assert "would remove 0 version(s), 1 orphan blob(s) (10000 bytes)" in out
    assert blob.exists() and result.run_dir.is_dir() and PendingRuns(root).all()

    code, out = run(root, "gc", "--drop-unsynced-runs")
    assert code == 0 and f"dropped 1 unsynced W&B offline run(s) and their folders: {result.run_id}" in out
    assert "removed 0 version(s), 1 orphan blob(s) (10000 bytes)" in out
    assert not blob.exists() and not result.run_dir.exists() and not PendingRuns(root).all()
    assert verify_store(store).ok
    assert store.read_bytes("raw_data:latest", "data.csv") == b"new bytes\n" * 10
