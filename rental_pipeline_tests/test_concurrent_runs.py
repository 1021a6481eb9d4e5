"""Two training runs at once on one Dagster home and one store, in real processes: each run's
versions trace back, through the manifests' recorded inputs, to its own raw_data, and each run's
promotion decision is made on its own model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from rental_pipeline.io_manager import ArtifactStoreResource
from rental_pipeline.synthetic import generate_listings
from rental_pipeline_tests.concurrent_training import training_config

TRIALS = 20
RUNNER = Path(__file__).with_name("concurrent_training.py")
BIN = Path(sys.executable).parent
CHAIN = {
    "clean_sample": ("raw_data",),
    "trainval_data": ("clean_sample",),
    "test_data": ("clean_sample",),
    "inference_pipeline": ("trainval_data",),
    "model_evaluation": ("inference_pipeline", "test_data"),
}


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """What is under test is the store and the Dagster records; W&B mirroring would only add minutes."""
    monkeypatch.setenv("WANDB_MODE", "disabled")


def create_instance() -> None:
    """Create the home's SQLite storage before two processes open it at once: two processes
    creating it together can stamp its schema twice (a SQLite first-use race, not a run race)."""
    with dg.DagsterInstance.get():
        pass


def write_sources(folder: Path, trials: int) -> None:
    for trial in range(trials):
        for side in (0, 1):
            listings = generate_listings(rows=1_200, seed=1_000 + 2 * trial + side)
            listings.to_csv(folder / f"source-{trial}-{side}.csv", index=False)


def assert_run_used_only_its_own_inputs(instance: dg.DagsterInstance, run_id: str, source: Path) -> None:
    store = ArtifactStoreResource().store()
    recorded = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.step_materialization_data.materialization
        recorded[materialization.asset_key.to_user_string()] = materialization.metadata
    refs = {name: str(metadata["artifact"].value) for name, metadata in recorded.items()}
    assert set(refs) == {"raw_data", *CHAIN}, run_id

    raw = store.get(refs["raw_data"])
    assert raw.run_id == run_id and Path(raw.metadata["facts"]["source"]).name == source.name
    for name, upstream in CHAIN.items():
        version = store.get(refs[name])
        expected = {refs[u] for u in upstream}
        assert set(version.inputs) == expected, f"run {run_id}: {version.ref} was made from {version.inputs}"
        assert set(str(recorded[name]["artifact_inputs"].value).split(", ")) == expected

    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        checked = evaluation.metadata.get("checked_version")
        if checked is not None:
            assert checked.value == refs[evaluation.asset_key.to_user_string()]

    model = refs["inference_pipeline"]
    assert recorded["model_evaluation"]["evaluated_model"].value == model
    decision = store.flags(model)["promotion"]
    assert decision["challenger"] == model
    if recorded["model_evaluation"]["promoted"].value:
        moves = [m for m in store.alias_log("inference_pipeline") if m.alias == "prod" and run_id in (m.actor or "")]
        assert [m.to_version for m in moves] == [store.get(model).version]


@pytest.mark.slow
def test_concurrent_training_runs_never_mix_their_inputs(tmp_path):
    folder = tmp_path / "trials"
    folder.mkdir()
    write_sources(folder, TRIALS)
    create_instance()
    # Output goes to files: a pipe nobody reads while waiting on the other side would fill up
    # with Dagster's log and stall the writer.
    logs = [(folder / f"side-{side}.out", folder / f"side-{side}.err") for side in (0, 1)]
    sides = []
    for side, (out, err) in enumerate(logs):
        with out.open("w") as stdout, err.open("w") as stderr:
            sides.append(subprocess.Popen(
                [sys.executable, str(RUNNER), str(side), str(TRIALS), str(folder)],
                env=os.environ.copy(), stdout=stdout, stderr=stderr, text=True,
            ))
    for side in sides:
        side.wait(timeout=1_200)
    outputs = [(out.read_text(), err.read_text()) for out, err in logs]
    failed = [err[-3_000:] for side, (_, err) in zip(sides, outputs) if side.returncode != 0]
    assert not failed, "\n----\n".join(failed)
    runs = [json.loads(line) for out, _ in outputs for line in out.splitlines() if line.startswith("{")]
    assert len(runs) == 2 * TRIALS and all(run["success"] for run in runs)

    with dg.DagsterInstance.get() as instance:
        for run in runs:
            source = folder / f"source-{run['trial']}-{run['side']}.csv"
            assert_run_used_only_its_own_inputs(instance, run["run_id"], source)


@pytest.mark.slow
def test_two_dagster_job_execute_at_once_keep_their_own_inputs(tmp_path):
    write_sources(tmp_path, 1)
    create_instance()
    commands = []
    for side in (0, 1):
        config = tmp_path / f"week-{side}.yaml"
        config.write_text(yaml.safe_dump(training_config(tmp_path / f"source-0-{side}.csv")))
        commands.append([
            str(BIN / "dagster"), "job", "execute", "-m", "rental_pipeline.definitions", "-j", "training_job",
            "-c", str(config),
        ])
    logs = [tmp_path / f"side-{side}.log" for side in (0, 1)]
    processes = []
    for command, log in zip(commands, logs):
        with log.open("w") as output:
            processes.append(subprocess.Popen(command, env=os.environ.copy(), stdout=output,
                                              stderr=subprocess.STDOUT, text=True))
    for process, log in zip(processes, logs):
        process.wait(timeout=600)
        assert process.returncode == 0, log.read_text()[-3_000:]

    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records()
        assert len(records) == 2
        for record in records:
            source = Path(record.dagster_run.run_config["ops"]["raw_data"]["config"]["source"])
            assert_run_used_only_its_own_inputs(instance, record.dagster_run.run_id, source)
