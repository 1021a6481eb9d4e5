"""The ``artifacts`` click group, driven through click's CliRunner, on a folder and on S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rental_pipeline.cli import artifacts
from rental_pipeline.home import open_store
from rental_pipeline.store import ArtifactStore
from rental_pipeline.store.blobs import BlobStore
from rental_pipeline.store.cli import artifacts_group
from rental_pipeline.tracking.pending import PendingRun, PendingRuns
from rental_pipeline_tests.store.backends import is_s3_store, overwrite


@pytest.fixture(autouse=True)
def no_wandb_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("RENTAL_PIPELINE_HOME", raising=False)
    monkeypatch.delenv("RENTAL_PIPELINE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)  # defaults (.rental_pipeline/...) land in this test's folder


@pytest.fixture
def store(store_root: str, tmp_path: Path) -> ArtifactStore:
    if not store_root.startswith("s3://"):
        store_root = str(tmp_path / "home" / "artifacts")
    store = open_store(store_root)
    store.write("sample.csv", {"sample.csv": b"id,price\n1,100\n"}, type="raw_data")
    store.write(
        "clean_sample.csv", {"data.parquet": b"v0"}, type="clean_sample", inputs=["sample.csv"]
    )
    store.write(
        "clean_sample.csv",
        {"data.parquet": b"v1"},
        type="clean_sample",
        inputs=["sample.csv"],
        run_id="r-2",
    )
    return store


def run(store: ArtifactStore, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(artifacts, ["--root", store.location, *args])
    return result.exit_code, result.output


def test_list(store: ArtifactStore) -> None:
    code, out = run(store, "list")
    assert code == 0
    assert "clean_sample.csv" in out and "2 version(s)" in out and "latest=v1" in out
    code, out = run(store, "list", "--json")
    assert json.loads(out)[0] == {
        "name": "clean_sample.csv",
        "type": "clean_sample",
        "versions": [0, 1],
        "aliases": {"latest": 1},
    }
    code, out = run(store, "list", "clean_sample.csv")
    assert code == 0 and "clean_sample.csv:v0" in out and "[latest]" in out


def test_show(store: ArtifactStore) -> None:
    code, out = run(store, "show", "clean_sample.csv")
    assert code == 0
    assert out.startswith("clean_sample.csv:v1")
    assert "inputs       sample.csv:v0" in out and "run          r-2" in out
    blob = store.paths("clean_sample.csv:v1")["data.parquet"]
    assert str(blob.resolve()) in out

    code, out = run(store, "show", "sample.csv:v0", "--json")
    info = json.loads(out)
    assert info["ref"] == "sample.csv:v0" and info["used_by"] == [
        "clean_sample.csv:v0",
        "clean_sample.csv:v1",
    ]
    assert Path(info["files"][0]["local_path"]).read_bytes() == b"id,price\n1,100\n"

    code, out = run(store, "show", "clean_sample.csv:prod")
    assert code == 1 and "no alias 'prod'" in out


def test_alias_move_remove_and_log(store: ArtifactStore) -> None:
    code, out = run(
        store,
        "alias",
        "clean_sample.csv:v0",
        "reference",
        "--reason",
        "first vetted week",
        "--actor",
        "ana",
    )
    assert code == 0 and "moved reference: nowhere -> clean_sample.csv:v0" in out
    code, out = run(store, "alias", "clean_sample.csv:v0", "reference")
    assert "already points" in out
    store.mark("clean_sample.csv:v1", "failed_checks", {"row_count": "only 12 rows"})
    code, out = run(store, "alias", "clean_sample.csv:v1", "reference")
    assert code == 1 and "row_count: only 12 rows" in out
    code, out = run(
        store, "alias", "clean_sample.csv", "reference", "--remove", "--reason", "bad week"
    )
    assert code == 0 and "removed reference" in out

    code, out = run(store, "log", "clean_sample.csv")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4
    assert "reference" in lines[2] and "ana" in lines[2] and "first vetted week" in lines[2]
    assert "removed" in lines[3] and "bad week" in lines[3]
    assert [m["alias"] for m in json.loads(run(store, "log", "clean_sample.csv", "--json")[1])] == [
        "latest",
        "latest",
        "reference",
        "reference",
    ]


def test_verify_exit_code(store: ArtifactStore) -> None:
    code, out = run(store, "verify")
    assert code == 0 and "no problems" in out
    overwrite(store, BlobStore.key(store.get("sample.csv:v0").files[0].sha256), b"id,price\n1,1\n")
    code, out = run(store, "verify")
    assert code == 1 and "sample.csv:v0 'sample.csv'" in out and "altered" in out


def test_gc(store: ArtifactStore) -> None:
    code, out = run(store, "gc", "--keep", "1", "--dry-run")
    assert code == 0 and "would remove 1 version(s)" in out and "version clean_sample.csv:v0" in out
    assert store.versions("clean_sample.csv") == [0, 1]
    code, out = run(store, "gc", "--keep", "1", *(["--grace-seconds", "0"] if is_s3_store(store) else []))
    assert code == 0 and "removed 1 version(s), 1 orphan blob(s)" in out
    assert store.versions("clean_sample.csv") == [1]
    assert store.versions("sample.csv") == [0]  # an input of a kept version
    code, out = run(store, "gc", "--keep", "0")
    assert code == 2


def test_sync_without_credentials_says_what_is_pending(
    store: ArtifactStore, tmp_path: Path
) -> None:
    code, out = run(store, "sync")
    assert code == 0 and "no pending" in out
    run_dir = tmp_path / "wandb" / "offline-run-1"
    run_dir.mkdir(parents=True)
    version = store.get("clean_sample.csv")
    PendingRuns(store.root).add(
        PendingRun(
            "abc123",
            str(run_dir),
            "nyc_airbnb",
            version.ref,
            (version.files[0].sha256,),
            "2026-11-27",
        )
    )
    code, out = run(store, "sync")
    assert code == 0
    assert "1 W&B run(s) pending" in out and "WANDB_API_KEY" in out and "abc123" in out


def test_root_from_environment(store: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    if is_s3_store(store):
        monkeypatch.setenv("RENTAL_PIPELINE_STORE", store.location)
    else:
        monkeypatch.setenv("RENTAL_PIPELINE_HOME", str(store.root.parent))
    result = CliRunner().invoke(artifacts, ["list"])
    assert result.exit_code == 0 and "clean_sample.csv" in result.output


def test_default_root_is_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ArtifactStore(Path(".rental_pipeline") / "artifacts").write("a", {"f": b"1"}, type="t")
    result = CliRunner().invoke(artifacts, ["list"])
    assert result.exit_code == 0 and result.output.startswith("a ")


def test_the_store_library_has_the_group_without_w_and_b(tmp_path: Path) -> None:
    """The store's own group (as another project would mount it): a root must be given, and it has
    neither `sync` nor `gc --drop-unsynced-runs`, which the W&B mirror adds."""
    group = artifacts_group()
    assert sorted(group.commands) == ["alias", "gc", "list", "log", "show", "verify"]
    assert "--drop-unsynced-runs" not in CliRunner().invoke(group, ["--root", str(tmp_path), "gc", "--help"]).output
    assert CliRunner().invoke(group, ["list"]).exit_code == 2  # --root is required
    ArtifactStore(tmp_path / "artifacts").write("a", {"f": b"1"}, type="t")
    result = CliRunner().invoke(group, ["--root", str(tmp_path / "artifacts"), "list"])
    assert result.exit_code == 0 and result.output.startswith("a "), result.output


def test_alias_remove_checks_the_given_version(store: ArtifactStore) -> None:
    store.set_alias("clean_sample.csv:v1", "prod")
    code, out = run(store, "alias", "clean_sample.csv:v0", "prod", "--remove")
    assert code == 1 and "not on clean_sample.csv:v0" in out
    assert store.aliases("clean_sample.csv")["prod"] == 1
