"""The artifact store as a system of record: versions, reuse, aliases, flags, integrity, gc.

Every test that does not look at a folder's own files runs on both backends: a local folder and
a real S3 server (skipped, saying why, when none is running; see store_backends.py).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from rental_pipeline.home import default_root, open_store
from rental_pipeline.store import (
    FAILED_CHECKS_FLAG,
    AliasConflictError,
    AliasRefusedError,
    ArtifactNotFoundError,
    ArtifactStore,
    ArtifactTypeError,
    IntegrityError,
    StoreError,
    StoreListener,
    VersionManifest,
    artifact_digest,
    collect_garbage,
    entry_digest,
    verify_store,
)
from rental_pipeline.store.aliases import AliasLog, AliasMove
from rental_pipeline.store.blobs import BlobStore
from rental_pipeline_tests.store.backends import is_s3_store, overwrite, remove
from rental_pipeline_tests.store.imports import store_imports


@pytest.fixture
def store(store_root: str) -> ArtifactStore:
    return open_store(store_root)


@pytest.fixture
def local_store(tmp_path: Path) -> ArtifactStore:
    """For what only a folder has: file modes, temporary files, torn appends."""
    return ArtifactStore(tmp_path / "artifacts")


def blob_key(store: ArtifactStore, ref: str, path: str) -> str:
    return BlobStore.key(store.get(ref).file(path).sha256)


def test_round_trip_and_manifest(store: ArtifactStore) -> None:
    files = {"data.csv": b"id,price\n1,100\n", "notes/readme.txt": b"weekly drop"}
    result = store.write(
        "sample.csv",
        files,
        type="raw_data",
        description="week 47",
        metadata={"rows": 1},
        run_id="run-1",
        code_version="abc123",
    )
    version = result.version
    assert result.created
    assert (version.name, version.version, version.ref) == ("sample.csv", 0, "sample.csv:v0")
    assert version.aliases == ("latest",)
    assert version.digest == artifact_digest((p, entry_digest(b)) for p, b in files.items())
    assert [f.path for f in version.files] == ["data.csv", "notes/readme.txt"]
    for path, data in files.items():
        assert store.read_bytes("sample.csv:v0", path) == data
        assert store.paths("sample.csv:latest")[path].read_bytes() == data

    again = store.get("sample.csv:v0")
    assert again.to_json() == version.to_json()
    assert (again.description, dict(again.metadata), again.run_id, again.code_version) == (
        "week 47",
        {"rows": 1},
        "run-1",
        "abc123",
    )
    assert again.created_at.endswith("+00:00")


def test_identical_content_reuses_the_version(store: ArtifactStore) -> None:
    first = store.write("clean", {"data.parquet": b"A"}, type="clean_sample")
    second = store.write("clean", {"data.parquet": b"B"}, type="clean_sample")
    third = store.write("clean", {"data.parquet": b"A"}, type="clean_sample", metadata={"ignored": True})

    assert (first.created, second.created, third.created) == (True, True, False)
    assert third.version.ref == "clean:v0"
    assert store.versions("clean") == [0, 1]
    assert store.get("clean").ref == "clean:v0"  # latest moved back to the reused version
    assert dict(store.get("clean:v0").metadata) == {}  # the committed record is unchanged
    moves = [(m.alias, m.from_version, m.to_version) for m in store.alias_log("clean")]
    assert moves == [("latest", None, 0), ("latest", 0, 1), ("latest", 1, 0)]

    # Writing what latest already is moves nothing and logs nothing.
    assert store.write("clean", {"data.parquet": b"A"}, type="clean_sample").created is False
    assert len(store.alias_log("clean")) == 3


def test_type_of_an_artifact_is_fixed(store: ArtifactStore) -> None:
    store.write("model", {"m": b"1"}, type="model_export")
    with pytest.raises(ArtifactTypeError, match="model_export"):
        store.write("model", {"m": b"2"}, type="clean_sample")


def test_lineage_records_exact_versions(store: ArtifactStore) -> None:
    raw = store.write("sample.csv", {"d": b"raw"}, type="raw_data").version
    clean = store.write("clean", {"d": b"clean"}, type="clean_sample", inputs=["sample.csv:latest"]).version
    assert clean.inputs == ("sample.csv:v0",)
    store.write("sample.csv", {"d": b"raw2"}, type="raw_data")
    assert store.get("clean").inputs == ("sample.csv:v0",)  # not re-pointed by later writes
    assert store.used_by(raw.ref) == ["clean:v0"]
    with pytest.raises(ArtifactNotFoundError, match="no artifact named 'nothing'"):
        store.write("x", {"d": b"1"}, type="t", inputs=["nothing:v0"])


def test_aliases_move_and_every_move_is_logged(store: ArtifactStore) -> None:
    for content in (b"0", b"1", b"2"):
        store.write("model", {"m": content}, type="model_export")
    move = store.set_alias("model:v1", "prod", reason="best validation MAE", actor="ana")
    assert (move.alias, move.from_version, move.to_version, move.actor) == ("prod", None, 1, "ana")
    assert store.get("model:prod").ref == "model:v1"
    assert store.set_alias("model:v1", "prod") is None  # already there: no log entry

    store.set_alias("model:v2", "prod", reason="retrained", actor="ben")
    assert store.get("model:v2").aliases == ("latest", "prod")
    store.remove_alias("model", "prod", reason="incident 12", actor="ana")
    with pytest.raises(ArtifactNotFoundError, match="no alias 'prod'"):
        store.get("model:prod")
    with pytest.raises(ArtifactNotFoundError):
        store.remove_alias("model", "prod")

    prod_moves = [m for m in store.alias_log("model") if m.alias == "prod"]
    assert [(m.from_version, m.to_version, m.actor, m.reason) for m in prod_moves] == [
        (None, 1, "ana", "best validation MAE"),
        (1, 2, "ben", "retrained"),
        (2, None, "ana", "incident 12"),
    ]
    assert all(m.at.endswith("+00:00") for m in prod_moves)
    log_lines = store.backend.read(store.layout.alias_log("model")).data.decode().splitlines()
    assert len(log_lines) == 6 and all(json.loads(line) for line in log_lines)


def test_an_alias_moves_only_from_the_version_the_mover_decided_against(store: ArtifactStore) -> None:
    """A promotion compares a candidate with the current prod; if prod moved since, that
    comparison says nothing, so the move is refused and nothing is logged."""
    for content in (b"0", b"1", b"2"):
        store.write("model", {"m": content}, type="model_export")
    assert store.set_alias("model:v0", "prod", expected=None).to_version == 0  # none yet, as expected
    move = store.set_alias("model:v1", "prod", expected=0, reason="beats v0")
    assert (move.from_version, move.to_version) == (0, 1)
    log_key = store.layout.alias_log("model")
    before = store.backend.read(log_key).data

    with pytest.raises(AliasConflictError, match=r"prod of model is now v1, not v0 as expected") as stale:
        store.set_alias("model:v2", "prod", expected=0)
    assert (stale.value.current, stale.value.expected) == (1, 0)
    with pytest.raises(AliasConflictError, match=r"prod of model is now v1, not unset as expected") as fresh:
        store.set_alias("model:v2", "prod", expected=None)
    assert (fresh.value.current, fresh.value.expected) == (1, None)
    with pytest.raises(AliasConflictError):  # already where the caller wants it, but decided on v0
        store.set_alias("model:v1", "prod", expected=0)
    with pytest.raises(AliasConflictError, match=r"reference of model is now unset, not v1 as expected"):
        store.set_alias("model:v2", "reference", expected=1)
    with pytest.raises(TypeError, match="version number"):
        store.set_alias("model:v2", "prod", expected="v1")  # type: ignore[arg-type]
    assert store.backend.read(log_key).data == before
    assert store.get("model:prod").ref == "model:v1"

    assert store.set_alias("model:v1", "prod", expected=1) is None  # already there: nothing logged
    store.remove_alias("model", "prod")
    assert store.set_alias("model:v2", "prod", expected=None).from_version is None


def test_a_move_that_loses_the_append_to_another_mover_is_not_retried_blindly(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mover read prod=v0, then another mover's append landed before its own: the retry reads
    the log again and must refuse, not move prod from v1 it never compared with."""
    for content in (b"0", b"1", b"2"):
        store.write("model", {"m": content}, type="model_export")
    store.set_alias("model:v0", "prod")
    other = open_store(store.location)
    real_append = store.backend.append_line
    raced = []

    def append_after_the_other_mover(key: str, line: bytes, *, after: object, keep_tail: bool = False) -> None:
        if not raced:  # between this mover's read and its append (no lock: on a folder the
            raced.append(True)  # artifact lock would keep the other mover out until then)
            log = AliasLog(other.backend, key).read()
            log.append(AliasMove("prod", 0, 1, at="2024-01-01T00:00:00+00:00", actor="other"))
        real_append(key, line, after=after, keep_tail=keep_tail)  # type: ignore[arg-type]

    monkeypatch.setattr(store.backend, "append_line", append_after_the_other_mover)
    with pytest.raises(AliasConflictError, match="now v1, not v0") as conflict:
        store.set_alias("model:v2", "prod", expected=0)
    assert raced and conflict.value.current == 1
    prod_moves = [(m.from_version, m.to_version) for m in store.alias_log("model") if m.alias == "prod"]
    assert prod_moves == [(None, 0), (0, 1)]


def test_racing_moves_decided_against_the_same_prod_let_exactly_one_through(store_root: str) -> None:
    """Several evaluations, each with its own store object, all saw prod on v0 and all beat it: one
    move lands, the others are told where prod is now, and the log has one move away from v0."""
    setup = open_store(store_root)
    racers = 5
    for k in range(racers + 1):
        setup.write("model", {"m": str(k).encode()}, type="model_export")
    setup.set_alias("model:v0", "prod")
    start = threading.Barrier(racers)
    outcomes: dict[int, object] = {}

    def evaluate(k: int) -> None:
        store = open_store(store_root)
        seen = store.aliases("model")["prod"]
        start.wait(timeout=60)
        try:
            outcomes[k] = store.set_alias(f"model:v{k}", "prod", expected=seen, reason=f"racer {k}")
        except AliasConflictError as conflict:
            outcomes[k] = conflict
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            outcomes[k] = repr(error)

    threads = [threading.Thread(target=evaluate, args=(k,)) for k in range(1, racers + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    winners = [k for k, outcome in outcomes.items() if isinstance(outcome, AliasMove)]
    losers = [outcome for outcome in outcomes.values() if isinstance(outcome, AliasConflictError)]
    assert len(winners) == 1 and len(losers) == racers - 1, outcomes
    assert all((loser.expected, loser.current) == (0, winners[0]) for loser in losers)
    prod_moves = [(m.from_version, m.to_version) for m in setup.alias_log("model") if m.alias == "prod"]
    assert prod_moves == [(None, 0), (0, winners[0])]
    assert setup.get("model:prod").version == winners[0]


def test_flagged_versions_cannot_become_reference_or_prod(store: ArtifactStore) -> None:
    store.write("clean", {"d": b"good"}, type="clean_sample")
    store.write("clean", {"d": b"bad"}, type="clean_sample")
    flags = store.mark("clean:v1", "failed_checks", ["row_count", "neighbourhood_kl"])
    assert flags == {"failed_checks": ["row_count", "neighbourhood_kl"]}
    assert store.get("clean:v1").flags["failed_checks"] == ["row_count", "neighbourhood_kl"]

    for alias in ("reference", "prod"):
        with pytest.raises(AliasRefusedError, match="row_count, neighbourhood_kl"):
            store.set_alias("clean:v1", alias)
    store.set_alias("clean:v1", "candidate")  # other aliases are allowed
    store.set_alias("clean:v0", "reference")  # unflagged versions are fine

    forced = store.set_alias("clean:v1", "reference", reason="known outage week", force=True)
    assert forced.forced and store.alias_log("clean")[-1].forced
    store.mark("clean:v1", "failed_checks", None)
    assert store.flags("clean:v1") == {}


def test_tampered_blob_is_refused_naming_version_and_file(store: ArtifactStore) -> None:
    store.write("test_data.csv", {"data.parquet": b"original bytes"}, type="test_data")
    overwrite(store, blob_key(store, "test_data.csv:v0", "data.parquet"), b"evil bytes")
    for read in (
        lambda: store.read_bytes("test_data.csv:v0", "data.parquet"),
        lambda: store.paths("test_data.csv:latest"),
    ):
        with pytest.raises(IntegrityError, match=r"test_data\.csv:v0 file 'data\.parquet'.*altered"):
            read()
    report = verify_store(store)
    assert not report.ok
    assert "test_data.csv:v0 'data.parquet'" in str(report)

    # Writing the same content again heals the blob.
    store.write("test_data.csv", {"data.parquet": b"original bytes"}, type="test_data")
    assert store.read_bytes("test_data.csv:v0", "data.parquet") == b"original bytes"
    assert verify_store(store).ok


def test_missing_blob_is_refused_naming_version_and_file(store: ArtifactStore) -> None:
    store.write("model", {"model.skops": b"weights"}, type="model_export")
    remove(store, blob_key(store, "model:v0", "model.skops"))
    with pytest.raises(IntegrityError, match=r"model:v0 file 'model\.skops'.*missing"):
        store.read_bytes("model:v0", "model.skops")
    assert "missing" in str(verify_store(store))


def test_unknown_refs_are_explained(store: ArtifactStore) -> None:
    store.write("a", {"f": b"1"}, type="t")
    with pytest.raises(ArtifactNotFoundError, match=r"a:v5 does not exist \(versions: v0\)"):
        store.get("a:v5")
    with pytest.raises(ArtifactNotFoundError, match=r"aliases: latest"):
        store.get("a:prod")
    with pytest.raises(ArtifactNotFoundError, match="no file 'nope'"):
        store.read_bytes("a", "nope")


def test_damaged_manifest_is_reported(store: ArtifactStore) -> None:
    store.write("a", {"f": b"1"}, type="t")
    key = store.layout.manifest("a", 0)
    text = store.backend.read(key).data.decode()
    overwrite(store, key, text.replace('"t"', '"u"').replace('"digest": "', '"digest": "0').encode())
    with pytest.raises(IntegrityError, match="a:v0"):
        store.get("a:v0")
    assert not verify_store(store).ok


def test_gc_keeps_aliased_versions_and_their_inputs(store: ArtifactStore) -> None:
    for i in range(4):
        store.write("raw", {"d": f"raw{i}".encode()}, type="raw_data")
    store.write("clean", {"d": b"c0"}, type="clean_sample", inputs=["raw:v1"])
    for i in range(1, 4):
        store.write("clean", {"d": f"c{i}".encode()}, type="clean_sample")
    store.set_alias("clean:v0", "reference")
    orphan = store.blobs.put(b"nobody refers to me")
    if not is_s3_store(store):  # object storage has no temporary files
        (store.blobs.root / orphan[:2] / ".tmp-killed-writer").write_bytes(b"half")

    assert collect_garbage(store, keep=1, dry_run=True, grace_seconds=0).removed_versions == [
        "clean:v1",
        "clean:v2",
        "raw:v0",
        "raw:v2",
    ]
    assert store.versions("clean") == [0, 1, 2, 3]  # dry run removed nothing

    report = collect_garbage(store, keep=1, grace_seconds=0)  # nothing else writes: no grace needed
    assert report.removed_versions == ["clean:v1", "clean:v2", "raw:v0", "raw:v2"]
    assert report.removed_blobs == 5 and report.removed_temp_files == (0 if is_s3_store(store) else 1)
    assert store.versions("clean") == [0, 3]  # reference and latest
    assert store.versions("raw") == [1, 3]  # input of the reference version, and latest
    assert store.backend.info(BlobStore.key(orphan)) is None
    assert verify_store(store).ok
    assert store.get("clean:reference").inputs == ("raw:v1",)
    with pytest.raises(ValueError):
        collect_garbage(store, keep=0)


def test_gc_without_keep_removes_no_version(store: ArtifactStore) -> None:
    for i in range(3):
        store.write("a", {"f": str(i).encode()}, type="t")
    assert collect_garbage(store).removed_versions == []
    assert store.versions("a") == [0, 1, 2]


def test_version_numbers_are_never_reused_after_gc(store: ArtifactStore) -> None:
    for i in range(3):
        store.write("a", {"f": str(i).encode()}, type="t")
    collect_garbage(store, keep=1, grace_seconds=0)
    assert store.write("a", {"f": b"new"}, type="t").version.version == 3


def test_list_and_history(store: ArtifactStore) -> None:
    assert store.list() == []
    store.write("b", {"f": b"1"}, type="tb")
    store.write("a", {"f": b"1"}, type="ta")
    store.write("a", {"f": b"2"}, type="ta")
    summaries = store.list()
    assert [(s.name, s.type, s.versions, s.latest) for s in summaries] == [
        ("a", "ta", (0, 1), 1),
        ("b", "tb", (0,), 0),
    ]
    assert [v.ref for v in store.history("a")] == ["a:v0", "a:v1"]


def test_files_are_read_only_and_metadata_must_be_json(store: ArtifactStore) -> None:
    version = store.write("a", {"f": b"1"}, type="t").version
    blob = store.paths(version.ref)["f"]  # on object storage, this machine's cached copy
    assert not os.stat(blob).st_mode & 0o222
    with pytest.raises(ValueError, match="plain JSON"):
        store.write("a", {"f": b"2"}, type="t", metadata={"mae": float("nan")})
    with pytest.raises(TypeError, match="expected bytes"):
        store.write("a", {"f": "text"}, type="t")  # type: ignore[dict-item]


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RENTAL_PIPELINE_HOME", str(tmp_path))
    assert default_root() == tmp_path / "artifacts"
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", "s3://team-artifacts/rental")
    assert default_root() == "s3://team-artifacts/rental"
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", str(tmp_path / "elsewhere"))
    assert default_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("RENTAL_PIPELINE_STORE")
    monkeypatch.delenv("RENTAL_PIPELINE_HOME")
    assert default_root() == Path(".rental_pipeline").resolve() / "artifacts"  # same folder, made absolute


def test_store_package_does_not_import_dagster() -> None:
    """The store must stay usable without Dagster: check the source, not what got loaded."""
    for source, module, level in store_imports():
        assert level or not module.split(".")[0].startswith("dagster"), source


def test_the_store_is_a_library_of_its_own() -> None:
    """No store module imports the rest of the package (it is given its root, its local folder, the
    aliases it protects and the model types it trusts) or W&B (the mirror listens to it from
    ``rental_pipeline.tracking``): absolute imports name only other libraries, relative ones stay
    inside the store."""
    for source, module, level in store_imports():
        assert level in (0, 1), f"{source}: `from {'.' * level}{module}` leaves the store"
        if level == 0:
            assert module.split(".")[0] not in ("rental_pipeline", "wandb", "dagster"), f"{source} imports {module}"


def test_no_two_store_modules_import_each_other() -> None:
    """The store's modules form a chain that can be read from the bottom up (errors, names,
    backends, blobs... store, maintenance, cli): no cycle of relative imports, at any length."""
    import ast

    import rental_pipeline.store as package

    folder = Path(package.__file__).parent
    imports: dict[str, set[str]] = {}
    for source in sorted(folder.glob("*.py")):
        found = set()
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        imports[source.stem] = found - {"__init__"}

    def cycle_from(module: str, path: list[str]) -> list[str] | None:
        for imported in sorted(imports.get(module, ())):
            if imported in path:
                return [*path[path.index(imported) :], imported]
            if (cycle := cycle_from(imported, [*path, imported])) is not None:
                return cycle
        return None

    for module in sorted(set(imports) - {"__init__"}):
        cycle = cycle_from(module, [module])
        assert cycle is None, " -> ".join(cycle or ())


def test_listeners_hear_of_each_change_once_it_is_committed(store: ArtifactStore) -> None:
    heard: list[tuple[object, ...]] = []

    class Recorder(StoreListener):
        def version_saved(self, version: VersionManifest, created: bool) -> None:
            assert store.get(version.ref).digest == version.digest  # committed before it is told
            heard.append(("saved", version.ref, created))

        def alias_moved(self, name: str, move: AliasMove) -> None:
            assert store.aliases(name).get(move.alias) == move.to_version
            heard.append(("moved", name, move.alias, move.from_version, move.to_version))

    class FlagsOnly:  # any object with some of the methods will do
        def version_flagged(self, ref: str, key: str, value: object) -> None:
            heard.append(("flagged", ref, key, value))

    store.subscribe(Recorder())
    store.subscribe(FlagsOnly())
    store.write("model", {"m": b"0"}, type="model_export")
    store.write("model", {"m": b"1"}, type="model_export")
    store.write("model", {"m": b"0"}, type="model_export")  # equal bytes: v0 again, latest moves back
    store.set_alias("model:v1", "prod")
    assert store.set_alias("model:v1", "prod") is None  # already there: nothing committed, nothing told
    store.move_latest("model:v1")
    store.remove_alias("model", "prod")
    store.mark("model:v0", "reviewed", True)
    store.mark_entries("model:v0", "failed_checks", {"row_count": "too few"})
    store.mark_entries("model:v0", "failed_checks", {"row_count": None})
    assert heard == [
        ("saved", "model:v0", True),
        ("moved", "model", "latest", None, 0),
        ("saved", "model:v1", True),
        ("moved", "model", "latest", 0, 1),
        ("saved", "model:v0", False),
        ("moved", "model", "latest", 1, 0),
        ("moved", "model", "prod", None, 1),
        ("moved", "model", "latest", 0, 1),
        ("moved", "model", "prod", 1, None),
        ("flagged", "model:v0", "reviewed", True),
        ("flagged", "model:v0", "failed_checks", {"row_count": "too few"}),
        ("flagged", "model:v0", "failed_checks", None),
    ]


def test_an_s3_store_needs_a_local_folder_from_its_caller() -> None:
    with pytest.raises(StoreError, match="needs local_dir"):
        ArtifactStore("s3://team-bucket/rental?endpoint_url=http://127.0.0.1:9")


def test_protected_aliases_are_the_callers(tmp_path: Path) -> None:
    """A bare store protects no alias; the pipeline's (open_store) protects reference and prod."""
    bare = ArtifactStore(tmp_path / "artifacts")
    bare.write("clean", {"d": b"bad"}, type="clean_sample")
    bare.mark("clean:v0", FAILED_CHECKS_FLAG, ["row_count"])
    assert bare.set_alias("clean:v0", "prod") is not None
    with pytest.raises(AliasRefusedError, match="row_count"):
        open_store(tmp_path / "artifacts").set_alias("clean:v0", "reference")


def test_a_last_alias_move_that_lost_its_newline_still_counts(store: ArtifactStore) -> None:
    """One byte cut off the log (``truncate -s -1``): the last move is whole, only its newline is
    gone. A torn append never leaves a whole record without its newline (both go in one write),
    so the move counts: prod stays where it was moved, a move decided against the older target is
    refused, and the next move ends the line instead of cutting the record off."""
    for content in (b"0", b"1", b"2"):
        store.write("model", {"m": content}, type="model_export")
    store.set_alias("model:v0", "prod")
    store.set_alias("model:v2", "prod", expected=0, reason="beats v0")
    key = store.layout.alias_log("model")
    logged = store.backend.read(key).data
    overwrite(store, key, logged[:-1])

    assert store.aliases("model") == {"latest": 2, "prod": 2}
    assert store.get("model:prod").ref == "model:v2"
    assert [(m.alias, m.from_version, m.to_version) for m in store.alias_log("model")][-1] == ("prod", 0, 2)
    report = verify_store(store)
    assert "model: aliases.jsonl line 5 has no final newline" in str(report), report
    with pytest.raises(AliasConflictError, match="prod of model is now v2, not v0"):
        store.set_alias("model:v1", "prod", expected=0)

    store.set_alias("model:v1", "prod", expected=2, reason="roll back")
    after = store.backend.read(key).data
    assert after.startswith(logged) and after.count(b"\n") == 6 and after.endswith(b"\n")
    assert [(m.from_version, m.to_version) for m in store.alias_log("model") if m.alias == "prod"] == [
        (None, 0),
        (0, 2),
        (2, 1),
    ]
    assert store.aliases("model") == {"latest": 2, "prod": 1}
    assert verify_store(store).ok


def test_a_torn_alias_log_tail_is_ignored_reported_and_replaced(store: ArtifactStore) -> None:
    """A writer that died mid-append leaves part of a line: never committed, so not a move; verify
    says so (it could also be a last move cut short), and the next move replaces it."""
    store.write("a", {"f": b"1"}, type="t")
    key = store.layout.alias_log("a")
    logged = store.backend.read(key).data
    torn = b'{"alias": "prod", "from": null, "to"'
    overwrite(store, key, logged + torn)
    assert store.aliases("a") == {"latest": 0}
    assert [m.to_version for m in store.alias_log("a")] == [0]
    assert "a: aliases.jsonl line 2: an incomplete last line (a crash during a move?) is ignored" in str(
        verify_store(store)
    )
    store.write("a", {"f": b"2"}, type="t")
    after = store.backend.read(key).data
    assert after.startswith(logged) and torn not in after
    assert after.count(b"\n") == 2 and after.endswith(b"\n")
    assert store.aliases("a") == {"latest": 1}
    assert verify_store(store).ok


def test_a_torn_append_on_a_folder_is_cut_off_before_the_next(local_store: ArtifactStore) -> None:
    """The same on a folder's own file, grown in place as a killed appender leaves it."""
    store = local_store
    store.write("a", {"f": b"1"}, type="t")
    log = store.root / "collections" / "a" / "aliases.jsonl"
    with open(log, "ab") as handle:
        handle.write(b'{"alias": "prod", "from": null, "to"')  # a writer died mid-append
    assert store.aliases("a") == {"latest": 0}
    assert not verify_store(store).ok
    store.write("a", {"f": b"2"}, type="t")
    assert log.read_bytes().count(b"\n") == 2 and log.read_bytes().endswith(b"\n")
    assert store.aliases("a") == {"latest": 1} and verify_store(store).ok


def test_leftovers_of_a_first_write_killed_before_commit(local_store: ArtifactStore) -> None:
    store = local_store
    store.write("kept", {"f": b"1"}, type="t")
    versions = store.root / "collections" / "never" / "versions"
    versions.mkdir(parents=True)
    (versions / ".tmp-abc").write_bytes(b'{"half": ')
    (store.root / "collections" / "never" / ".lock").touch()
    orphan = store.blobs.put(b"blob written before the manifest")
    assert store.names() == ["kept"] and verify_store(store).ok
    with pytest.raises(ArtifactNotFoundError):
        store.get("never")
    report = collect_garbage(store)
    assert report.removed_empty_artifacts == ["never"] and report.removed_blobs == 1
    assert not (store.root / "collections" / "never").exists()
    assert not store.blobs.path(orphan).exists()
    assert store.write("never", {"f": b"now"}, type="t").version.ref == "never:v0"


def test_a_damaged_alias_log_line_is_an_integrity_error(store: ArtifactStore) -> None:
    store.write("a", {"f": b"1"}, type="t")
    store.write("a", {"f": b"2"}, type="t")
    key = store.layout.alias_log("a")
    lines = store.backend.read(key).data.split(b"\n")
    overwrite(store, key, b"\n".join([b"{not json", *lines[1:]]))
    with pytest.raises(IntegrityError, match=r"aliases\.jsonl line 1"):
        store.get("a")
    assert "aliases.jsonl line 1 is unreadable" in str(verify_store(store))


def test_latest_survives_a_crash_between_commit_and_alias_log(store: ArtifactStore) -> None:
    """The state a writer killed right after publishing its manifest leaves: no `latest` move logged."""
    store.write("crashy", {"data.bin": b"first"}, type="test")
    overwrite(store, store.layout.alias_log("crashy"), b"")  # the move was never appended
    assert store.get("crashy:latest").ref == "crashy:v0"
    assert verify_store(store).ok
    again = store.write("crashy", {"data.bin": b"first"}, type="test")
    assert (again.created, again.version.ref) == (False, "crashy:v0")
    assert store.write("crashy", {"data.bin": b"second"}, type="test").version.ref == "crashy:v1"
    assert store.get("crashy:latest").ref == "crashy:v1"


def test_flag_entries_merge_so_separate_writers_keep_each_others(store: ArtifactStore) -> None:
    ref = store.write("raw_data", {"a.csv": b"x"}, type="raw_data").version.ref
    store.mark_entries(ref, "failed_checks", {"columns": "2 columns missing"})
    store.mark_entries(ref, "failed_checks", {"schema": "3 rows: latitude"})
    assert store.flags(ref)["failed_checks"] == {"columns": "2 columns missing", "schema": "3 rows: latitude"}
    store.mark_entries(ref, "failed_checks", {"columns": None})
    assert store.flags(ref)["failed_checks"] == {"schema": "3 rows: latitude"}
    store.mark_entries(ref, "failed_checks", {"schema": None})
    assert "failed_checks" not in store.flags(ref)  # the last entry takes the flag with it
    store.mark(ref, "failed_checks", ["row_count"])  # a list of names, as older callers wrote
    store.mark_entries(ref, "failed_checks", {"schema": "x"})
    assert store.flags(ref)["failed_checks"] == {"row_count": True, "schema": "x"}


# -- object storage only ------------------------------------------------------------------------


@pytest.fixture
def s3_store(s3_credentials: str) -> ArtifactStore:
    from rental_pipeline_tests.store.backends import s3_root

    return open_store(s3_root(s3_credentials, "only-s3"))


def test_gc_on_object_storage_keeps_young_orphans_for_concurrent_writers(s3_store: ArtifactStore) -> None:
    store = s3_store
    store.write("a", {"f": b"kept"}, type="t")
    orphan = store.blobs.put(b"a writer on another machine is about to commit a version with me")
    report = collect_garbage(store)  # the default grace period: an hour
    assert (report.removed_blobs, report.kept_recent_blobs, report.grace_seconds) == (0, 1, 3600.0)
    assert "younger than the 3600 s grace period" in str(report)
    assert store.backend.info(BlobStore.key(orphan)) is not None
    assert collect_garbage(store, grace_seconds=0).removed_blobs == 1
    assert store.backend.info(BlobStore.key(orphan)) is None and verify_store(store).ok


def test_reusing_an_old_blob_refreshes_it_so_gc_leaves_it(
    s3_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob no version uses (its version was collected) and old enough for gc: a writer that
    reuses it instead of uploading it again refreshes its time, without moving its bytes."""
    store = s3_store
    monkeypatch.setattr(store.backend, "default_grace_seconds", 4.0)  # refreshed when older than 1 s
    sha = store.blobs.put(b"weights of last month's model")
    before = store.backend.info(BlobStore.key(sha))
    time.sleep(1.2)
    sent = store.backend.bytes_sent
    store.write("model", {"model.skops": b"weights of last month's model"}, type="model_export")
    after = store.backend.info(BlobStore.key(sha))
    assert after.modified > before.modified and after.etag == before.etag
    assert store.backend.bytes_sent - sent < 2_000  # the manifest and the alias log, not the blob again


def test_objects_whose_etag_is_not_their_md5_are_still_checked(s3_store: ArtifactStore, tmp_path: Path) -> None:
    """With SSE-KMS or a multipart upload the ETag is not the MD5 of the bytes. A multipart upload
    stands in for that here: nothing may rely on ETag == MD5 for correctness."""
    store = s3_store
    data = b"weights uploaded by another tool, in parts" * 1000
    version = store.write("model", {"model.skops": data}, type="model_export").version
    key = BlobStore.key(version.files[0].sha256)
    client, bucket, full = store.backend.client, store.backend.bucket, store.backend._key(key)
    upload = client.create_multipart_upload(Bucket=bucket, Key=full)["UploadId"]
    part = client.upload_part(Bucket=bucket, Key=full, UploadId=upload, PartNumber=1, Body=data)
    client.complete_multipart_upload(
        Bucket=bucket, Key=full, UploadId=upload, MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]}
    )
    assert store.backend.info(key).etag.strip('"').endswith("-1")

    elsewhere = ArtifactStore(store.location, local_dir=tmp_path / "another-machine")
    assert elsewhere.read_bytes("model:v0", "model.skops") == data  # downloaded and verified
    assert elsewhere.read_bytes("model:v0", "model.skops") == data  # then from its cache
    overwrite(store, key, b"tampered")
    with pytest.raises(IntegrityError, match="altered"):
        elsewhere.read_bytes("model:v0", "model.skops")
    assert elsewhere.write("model", {"model.skops": data}, type="model_export").created is False  # healed
    assert store.read_bytes("model:v0", "model.skops") == data and verify_store(store).ok


def test_credentials_never_go_into_the_root() -> None:
    from rental_pipeline.store.s3_backend import S3ConfigError

    with pytest.raises(S3ConfigError, match="credentials do not belong"):
        ArtifactStore("s3://AKIAKEY:secret@bucket/prefix")
    with pytest.raises(S3ConfigError, match="unknown option 'aws_secret_access_key'"):
        ArtifactStore("s3://bucket/prefix?aws_secret_access_key=x")
    with pytest.raises(S3ConfigError, match="credentials do not belong in the endpoint"):
        ArtifactStore("s3://bucket/prefix?endpoint_url=http://key:secret@127.0.0.1:9000")
    with pytest.raises(S3ConfigError, match="at least 3 characters"):
        ArtifactStore("s3://ab/prefix")
    store = open_store("s3://team-bucket/rental/?endpoint_url=http://127.0.0.1:9&region=eu-west-1")
    assert store.location == "s3://team-bucket/rental?endpoint_url=http%3A%2F%2F127.0.0.1%3A9&region=eu-west-1"
    assert open_store(store.location).location == store.location  # what a worker process reopens


def test_a_missing_bucket_or_an_unreachable_server_is_named(s3_credentials: str) -> None:
    from rental_pipeline.store.s3_backend import ObjectStorageError

    store = open_store(f"s3://no-such-bucket-here/x?endpoint_url={s3_credentials}&region=us-east-1")
    with pytest.raises(ObjectStorageError, match="bucket 'no-such-bucket-here'"):
        store.write("a", {"f": b"1"}, type="t")
    with pytest.raises(ObjectStorageError, match="bucket 'no-such-bucket-here'"):
        store.names()  # not mistaken for an empty store
    gone = open_store("s3://team-bucket/x?endpoint_url=http://127.0.0.1:9&region=us-east-1")
    with pytest.raises(ObjectStorageError, match="127.0.0.1:9"):
        gone.get("model:prod")
