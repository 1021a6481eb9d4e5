"""Tracking follows the run's store: whatever a Dagster run commits reaches W&B, whoever wrote it,
and the IO manager knows nothing of W&B."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg

import rental_pipeline
from rental_pipeline.definitions import default_resources
from rental_pipeline.home import open_store
from rental_pipeline.io_manager import ArtifactStoreResource
from rental_pipeline.tracking.pending import PendingRuns
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
