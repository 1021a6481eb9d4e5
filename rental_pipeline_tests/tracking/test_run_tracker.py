"""Tracking follows the run's store: whatever a Dagster run commits reaches W&B, whoever wrote it,
and the IO manager knows nothing of W&B."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

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


def test_the_io_manager_does_not_import_tracking_or_wandb():
    """Loaded alone, the IO manager brings in neither `rental_pipeline.tracking` nor wandb, directly
    or through anything it imports: the code location attaches tracking to the run's store."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, rental_pipeline.io_manager; print(*sorted(sys.modules), sep='\\n')"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert "rental_pipeline.io_manager" in loaded
    assert [m for m in loaded if m.startswith("rental_pipeline.tracking") or m.split(".")[0] == "wandb"] == []
