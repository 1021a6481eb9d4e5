"""Tracking follows the run's store: whatever a Dagster run commits reaches W&B, whoever wrote it,
and the IO manager knows nothing of W&B."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg
import pytest

import rental_pipeline
from rental_pipeline.definitions import default_resources
from rental_pipeline.home import open_store
from rental_pipeline.io_manager import ArtifactStoreResource
from rental_pipeline.store import VersionManifest
from rental_pipeline.tracking.mirror_queue import MirrorQueue
from rental_pipeline.tracking.pending import PendingRuns
from rental_pipeline.tracking.run_tracker import WandbRunTracker
from rental_pipeline_tests.conftest import materialized
from rental_pipeline_tests.tracking.wandb_standin import offline_runs


@dg.asset
def field_notes(artifact_store: ArtifactStoreResource) -> dg.MaterializeResult:
    """An asset that writes to the store itself: no output reaches the IO manager."""
    store = artifact_store.store()
    version = store.write(
        "field_notes",
        {"notes.txt": b"three listings in Queens priced at zero\n"},
        type="notes",
        metadata={"facts": {"listings": 3}, "config": {"borough": "Queens"}},
    ).version
    store.set_alias(version.ref, "reviewed", reason="read by a person")
    return dg.MaterializeResult(metadata={"artifact": version.ref})


def test_a_version_any_writer_of_a_run_stores_is_mirrored(instance, isolated_state):
    result = dg.materialize([field_notes], instance=instance, resources=default_resources())
    assert result.success

    store = open_store()
    version = store.get("field_notes:v0")
    (run,) = [r for r in offline_runs(isolated_state / "wandb").values() if r.job_type == "field_notes"]
    assert run.name == "field_notes:v0" and run.group == result.run_id
    assert run.tags == ["field_notes", f"dagster-run-{result.run_id}"]
    assert run.output.digest == version.digest and sorted(run.output.aliases) == ["latest", "reviewed"]
    assert run.config["borough"] == "Queens"  # the config and facts the version records
    assert run.summary["listings"] == 3
    (pending,) = PendingRuns(store.root).all()
    assert (pending.artifact, pending.run_id) == ("field_notes:v0", run.run_id)
    # The end of the run waited for the worker and said where the W&B run landed.
    logged = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message.startswith("W&B run ")]
    assert logged == [f"W&B run {run.run_id} holds field_notes:v0: {run.run_dir}"]


TOKEN = "tk5FromAWritersUrl"


def crafted_notes(metadata: dict) -> dg.AssetsDefinition:
    """An asset that writes to the store itself, with whatever metadata it likes."""

    @dg.asset(name="crafted_notes")
    def asset(artifact_store: ArtifactStoreResource) -> dg.MaterializeResult:
        store = artifact_store.store()
        version = store.write("crafted_notes", {"notes.txt": b"as written\n"}, type="notes", metadata=metadata).version
        return dg.MaterializeResult(metadata={"artifact": version.ref})

    return asset


@dg.asset
def counted() -> dict:
    """An output the IO manager stores."""
    return {"listings": 3}


def warnings_of(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.level == 30]  # logging.WARNING


def test_a_url_another_writer_records_reaches_w_and_b_redacted(instance, isolated_state):
    """The IO manager redacts what it records; a manifest another writer made is mirrored from its
    own text, so the tracker redacts it: no token in the W&B run's config, summary or artifact."""
    source = f"https://listings.example/week.csv?token={TOKEN}"
    notes = crafted_notes({"facts": {"source": source}, "config": {"source": source}})
    result = dg.materialize([notes], instance=instance, resources=default_resources())
    assert result.success

    (run,) = offline_runs(isolated_state / "wandb").values()
    shown = "https://listings.example/week.csv?<redacted>"
    assert run.config["source"] == shown and run.summary["source"] == shown
    assert run.output.metadata["config"]["source"] == shown and run.output.metadata["facts"]["source"] == shown
    written = [p for p in (isolated_state / "wandb").rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert written == []
    assert open_store().get("crafted_notes:v0").metadata["config"]["source"] == source  # the writer's own record


@pytest.mark.parametrize("trials", [3, ["not a trial", {"name": "t1", "config": 5}]])
def test_trials_a_manifest_gets_wrong_are_no_trials(instance, isolated_state, trials):
    """``wandb_trials`` in another writer's facts that are not the sweep's named trials neither
    fail the write (its version is committed by then) nor leave a W&B run reported as failed."""
    result = dg.materialize(
        [crafted_notes({"facts": {"listings": 3, "wandb_trials": trials}})],
        instance=instance,
        resources=default_resources(),
    )
    assert result.success
    (run,) = offline_runs(isolated_state / "wandb").values()
    assert run.name == "crafted_notes:v0" and run.summary["listings"] == 3
    assert warnings_of(instance, result.run_id) == []


def test_a_version_the_tracker_cannot_queue_is_stored_and_said_not_mirrored(instance, isolated_state, monkeypatch):
    """The W&B worker cannot start (no process to spare): every write of the run still succeeds,
    the asset page says why its version is not on W&B, and the end of the run warns once each."""

    def no_worker(self: MirrorQueue) -> None:
        raise OSError("no process to spare")

    monkeypatch.setattr(MirrorQueue, "_start", no_worker)
    notes = crafted_notes({"facts": {"listings": 3}})
    result = dg.materialize([notes, counted], instance=instance, resources=default_resources())
    assert result.success

    latest = {name: open_store().get(f"{name}:latest").ref for name in ("crafted_notes", "counted")}
    assert latest == {"crafted_notes": "crafted_notes:v0", "counted": "counted:v0"}
    assert materialized(result)["counted"]["wandb_run"] == "not mirrored: OSError: no process to spare"
    assert sorted(warnings_of(instance, result.run_id)) == [
        f"W&B could not mirror {ref} (it stays stored): OSError: no process to spare"
        for ref in ("counted:v0", "crafted_notes:v0")
    ]
    assert list((isolated_state / "wandb").rglob("offline-run-*")) == []


def test_two_runs_on_one_store_object_each_mirror_only_their_own_writes(tmp_path, monkeypatch):
    """Dagster gives each run its own store object, but nothing stops a caller from sharing one:
    then each run's tracker hears every write, and queues only its own run's versions instead of
    mirroring the other run's a second time under its own."""
    submitted: list[tuple[str, str]] = []

    def submit(self: MirrorQueue, version: VersionManifest, **options: object) -> str:
        submitted.append((version.ref, str(options["group"])))
        return "run0000"

    monkeypatch.setattr(MirrorQueue, "submit", submit)
    store = open_store(tmp_path / "artifacts")
    for run_id in ("run-a", "run-b"):
        store.subscribe(WandbRunTracker(store, run_id, mode="offline"))
    store.write("notes", {"a.txt": b"a"}, type="notes", run_id="run-a")
    store.write("notes", {"b.txt": b"b"}, type="notes", run_id="run-b")
    assert submitted == [("notes:v0", "run-a"), ("notes:v1", "run-b")]


def package_imports(module: str) -> set[str]:
    """Every module ``module`` imports, directly or through the package's own modules, at the top
    or inside a function (read from the sources, so an import that only runs later counts too)."""
    root = Path(rental_pipeline.__file__).parent
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        relative = Path(*current.split(".")[1:])
        candidates = [root / relative / "__init__.py"] + ([root / f"{relative}.py"] if relative.parts else [])
        source = next((path for path in candidates if path.is_file()), None)
        if current in seen or source is None:
            seen.add(current)
            continue
        seen.add(current)
        package = current if source.name == "__init__.py" else current.rpartition(".")[0]
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                named = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for name in named:
                parts = name.split(".")
                todo += [".".join(parts[:k]) for k in range(1, len(parts) + 1)]
    return seen


def test_the_io_manager_does_not_import_tracking_or_wandb():
    """Neither the IO manager nor anything of the package it imports brings in
    `rental_pipeline.tracking` or wandb: the code location attaches tracking to the run's store."""
    imported = package_imports("rental_pipeline.io_manager")
    assert {"rental_pipeline.store", "rental_pipeline.records", "dagster"} <= imported  # the walk reads them
    assert sorted(m for m in imported if m.startswith("rental_pipeline.tracking") or m.split(".")[0] == "wandb") == []
    # and the code location does attach it
    assert "rental_pipeline.tracking.run_tracker" in package_imports("rental_pipeline.definitions")
