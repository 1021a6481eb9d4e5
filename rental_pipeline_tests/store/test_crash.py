"""Crash safety and concurrency with real processes: random SIGKILLs, four parallel writers.

Both run on a local folder (flock and atomic renames) and on a real S3 server (no locks, only
conditional writes); the S3 side skips, saying why, when no server is running.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest

from rental_pipeline.home import open_store
from rental_pipeline.store import ArtifactStore, collect_garbage, verify_store
from rental_pipeline.store.fsutil import TMP_PREFIX
from rental_pipeline_tests.store.backends import is_s3_store

WRITER = Path(__file__).with_name("writer.py")
# Each trial starts a writer process; on S3 one also pays boto3's import and a connection, so
# fewer trials keep the test's wall time near the local one's.
TRIALS = {"local": 32, "s3": 16}


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_every_version_whole(store: ArtifactStore) -> int:
    """Every visible version reads back completely and matches its own metadata."""
    versions = store.history("crashy")
    for version in versions:
        info = json.loads(store.read_bytes(version.ref, "meta/info.json"))
        assert info == dict(version.metadata), version.ref
        store.read_bytes(version.ref, "data.bin")
    assert store.get("crashy:latest").version in {v.version for v in versions}
    return len(versions)


def temp_files(store: ArtifactStore) -> list[Path]:
    """What a killed writer left half-written: temporary files on a folder; object storage has none
    (an upload is either whole or absent)."""
    if is_s3_store(store):
        return []
    return [p for p in store.root.rglob(f"{TMP_PREFIX}*") if p.is_file()]


@pytest.mark.slow
def test_sigkilled_writers_never_leave_a_half_version(store_root: str) -> None:
    rng = random.Random(20261127)
    store = open_store(store_root)
    trials = TRIALS["s3" if is_s3_store(store) else "local"]
    kills_mid_write = 0
    seen: set[Path] = set()
    started = time.monotonic()
    for trial in range(trials):
        child = spawn("until-killed", store.location, str(trial))
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", (
            child.stderr.read() if child.stderr else ""
        )
        time.sleep(rng.uniform(0.0, 0.12))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        if child.stderr:
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL, f"trial {trial}: writer ended by itself"

        fresh = set(temp_files(store)) - seen
        kills_mid_write += bool(fresh)
        seen |= fresh
        report = verify_store(store)
        assert report.ok, f"trial {trial}: {report}"
        before = assert_every_version_whole(store) if store.names() else 0
        after = store.write(
            "crashy", {"data.bin": f"parent {trial}".encode(), "meta/info.json": b"{}"}, type="test"
        )
        assert after.created and after.version.version == max(store.versions("crashy"))
        assert store.get("crashy:latest").ref == after.version.ref
        assert len(store.versions("crashy")) == before + 1

    gc = collect_garbage(store, grace_seconds=0)  # the writers are dead: nothing can be about to use a blob
    assert not temp_files(store)
    assert gc.removed_temp_files >= 0
    assert verify_store(store).ok
    elapsed = time.monotonic() - started
    print(
        f"{trials} kills, {len(store.versions('crashy'))} versions, "
        f"{kills_mid_write} kills left temp files, gc removed {gc.removed_blobs} orphan blobs, "
        f"{elapsed:.1f}s"
    )


@pytest.mark.slow
def test_four_processes_writing_one_artifact_get_distinct_consecutive_versions(
    store_root: str, tmp_path: Path
) -> None:
    store = open_store(store_root)
    go = tmp_path / "go"
    writes_each = 10
    children = [
        spawn("count", store.location, str(w), str(writes_each), str(go)) for w in range(4)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    go.touch()
    reported: dict[str, str] = {}
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        for line in out.splitlines():
            ref, digest = line.split()
            assert ref not in reported, f"{ref} handed out twice"
            reported[ref] = digest

    assert sorted(store.versions("shared")) == list(range(4 * writes_each))
    assert len(reported) == 4 * writes_each
    for ref, digest in reported.items():
        assert store.get(ref).digest == digest
        store.read_bytes(ref, "data.bin")
    moves = [m for m in store.alias_log("shared") if m.alias == "latest"]
    assert len(moves) == 4 * writes_each
    assert all(a.to_version == b.from_version for a, b in pairwise(moves))
    writers = {store.get(ref).run_id for ref in reported}
    assert writers == {f"writer-{w}" for w in range(4)}
    assert verify_store(store).ok
