"""Two machines, one team: two Dagster instances sharing PostgreSQL run storage and an S3 store.

Each "machine" is its own DAGSTER_HOME (the shared-instance config, deploy/dagster-postgres.yaml)
and its own RENTAL_PIPELINE_HOME (its local cache), and runs the real `dagster` command line in
its own processes; all they share is the PostgreSQL database and the store at
`s3://.../prefix` on a real S3 server. Needs both servers (`.ci/run` starts them); skips,
saying why, without either. W&B is disabled: it is not what is tested here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from rental_pipeline.processes import OWN_GROUP, stop_process_group
from rental_pipeline.store import ArtifactStore, verify_store
from rental_pipeline_tests.conftest import PROJECT_ROOT, only, run_config, selected_ops
from rental_pipeline_tests.store.backends import s3_root

DAGSTER = Path(sys.executable).parent / "dagster"
TRAINING = dg.AssetSelection.all() - dg.AssetSelection.assets("batch_predictions", "sweep_leaderboard")


class Machine:
    """One machine of the team: its own Dagster home and local folder, the team's database and store."""

    def __init__(self, name: str, tmp_path: Path, store: str) -> None:
        self.name = name
        self.dagster_home = tmp_path / name / "dagster"
        self.home = tmp_path / name / "home"
        self.dagster_home.mkdir(parents=True)
        self.home.mkdir()
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster-postgres.yaml", self.dagster_home / "dagster.yaml")
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.dagster_home),
            "RENTAL_PIPELINE_HOME": str(self.home),
            "RENTAL_PIPELINE_STORE": store,
            "WANDB_MODE": "disabled",
        }
        self.config_files = 0

    def start(self, *args: str, config: dict) -> subprocess.Popen[str]:
        self.config_files += 1
        path = self.home / f"run-{self.config_files}.yaml"
        path.write_text(yaml.safe_dump(config))
        return subprocess.Popen(
            [str(DAGSTER), *args, "-m", "rental_pipeline.definitions", "-c", str(path)],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **OWN_GROUP,
        )

    def instance(self) -> dg.DagsterInstance:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("DAGSTER_HOME", str(self.dagster_home))
            return dg.DagsterInstance.get()


def finish(process: subprocess.Popen[str]) -> str:
    try:
        # Only a hang should meet this: a run on a busy shared machine can take minutes.
        output, _ = process.communicate(timeout=1800)
    except subprocess.TimeoutExpired:
        stop_process_group(process)  # with the code server and anything else the command started
        raise
    assert process.returncode == 0, output[-4000:]
    return output


def run_id_of(output: str, instance: dg.DagsterInstance, job: str) -> str:
    """The run a `dagster` command just made: the newest run of ``job`` whose id its output names."""
    for record in instance.get_run_records(dg.RunsFilter(job_name=job), limit=20):
        if record.dagster_run.run_id in output:
            return record.dagster_run.run_id
    raise AssertionError(f"no run of {job} named in the command's output: {output[-2000:]}")


def materialized_in(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Asset name -> the exact version a run recorded for it (read from the shared database)."""
    found = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.step_materialization_data.materialization
        found[materialization.asset_key.to_user_string()] = str(materialization.metadata["artifact"].value)
    return found


def inputs_in(instance: dg.DagsterInstance, run_id: str) -> dict[str, set[str]]:
    """Asset name -> every version of it the run's steps read, as their events record it: the
    inputs the IO manager wrote on each materialization (``artifact_inputs``) and the versions the
    checks name (``checked_version``, ``compared_with``)."""
    refs: list[str] = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        metadata = entry.dagster_event.step_materialization_data.materialization.metadata
        if "artifact_inputs" in metadata:
            refs += [ref for ref in str(metadata["artifact_inputs"].value).split(", ") if ref != "none"]
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        metadata = entry.dagster_event.event_specific_data.metadata
        refs += [str(metadata[key].value) for key in ("checked_version", "compared_with") if key in metadata]
    found: dict[str, set[str]] = {}
    for ref in refs:
        found.setdefault(ref.split(":")[0], set()).add(ref)
    return found


@pytest.fixture
def team(
    tmp_path: Path, postgres_env: dict[str, str], s3_credentials: str  # noqa: F811 - the imported fixture
) -> tuple[Machine, Machine, str]:
    store = s3_root(s3_credentials, "two-machines")
    return Machine("machine-a", tmp_path, store), Machine("machine-b", tmp_path, store), store


@pytest.mark.slow
def test_a_downstream_run_on_another_machine_loads_the_versions_the_first_recorded(team) -> None:
    a, b, root = team
    config = only(run_config(raw={"seed": 21}), *selected_ops(TRAINING))
    output = finish(a.start("job", "execute", "-j", "training_job", config=config))
    with a.instance() as instance:
        run_a = run_id_of(output, instance, "training_job")
        recorded = materialized_in(instance, run_a)
    assert {"raw_data", "clean_sample", "test_data", "inference_pipeline", "model_evaluation"} <= set(recorded)

    # Someone else writes a newer test_data meanwhile: `latest` moves, the recorded version stays.
    store = ArtifactStore(root, local_dir=a.home / "third-party")
    current = store.get(recorded["test_data"])
    newer = store.write(
        "test_data",
        {"data.parquet": b"not what machine-a recorded"},
        type=current.type,
        metadata=dict(current.metadata),
    ).version
    assert store.get("test_data:latest").ref == newer.ref != recorded["test_data"]

    # Machine B (its own Dagster home and cache, nothing local from A) re-evaluates the model alone,
    # forced to compute rather than reuse A's evaluation.
    downstream = dg.AssetSelection.assets("model_evaluation")
    config = {
        **only(run_config(), *selected_ops(downstream)),
        "resources": {"io_manager": {"config": {"force": True}}},
    }
    output = finish(b.start("asset", "materialize", "--select", "model_evaluation", config=config))
    with b.instance() as instance:
        run_b = run_id_of(output, instance, "__ASSET_JOB")
        assert instance.get_run_by_id(run_a) is not None  # one database: B sees A's run
        read = inputs_in(instance, run_b)
        evaluation = materialized_in(instance, run_b)["model_evaluation"]

    # The versions A's run recorded, not the newer test_data that `latest` names now.
    assert read["test_data"] == {recorded["test_data"]}
    assert read["inference_pipeline"] == {recorded["inference_pipeline"]}
    made = store.get(evaluation)
    assert set(made.inputs) >= {recorded["test_data"], recorded["inference_pipeline"]}
    assert not list(a.dagster_home.rglob("*.db")) and not list(b.dagster_home.rglob("*.db"))  # all in PostgreSQL
    assert verify_store(store).ok


@pytest.mark.slow
def test_two_runs_at_once_on_two_machines_keep_their_own_inputs(team) -> None:
    a, b, root = team
    runs = {}
    processes = {
        machine.name: (machine, machine.start(
            "job", "execute", "-j", "training_job",
            config=only(run_config(raw={"seed": seed}), *selected_ops(TRAINING)),
        ))
        for machine, seed in ((a, 31), (b, 32))
    }
    for name, (machine, process) in processes.items():
        output = finish(process)
        with machine.instance() as instance:
            run_id = run_id_of(output, instance, "training_job")
            runs[name] = (materialized_in(instance, run_id), inputs_in(instance, run_id))

    store = ArtifactStore(root, local_dir=a.home / "third-party")
    (made_a, read_a), (made_b, read_b) = runs["machine-a"], runs["machine-b"]
    assert made_a["raw_data"] != made_b["raw_data"]  # different listings, different versions
    for made, read in ((made_a, read_a), (made_b, read_b)):
        # Every input of every step is the version this same run made, never the other run's
        # (whichever of the two moved `latest` last).
        for name, versions in read.items():
            assert versions <= {made[name]}, (name, versions, made)
        # ...and so is every input recorded in the store for what the run made.
        for name, ref in made.items():
            for parent in store.get(ref).inputs:
                assert parent == made[parent.split(":")[0]], (ref, parent)
        assert {"clean_sample", "test_data", "inference_pipeline"} <= set(read)
    assert verify_store(store).ok
