"""The dagster and rental-pipeline command lines, as CI and a user run them, in real subprocesses."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml

from rental_pipeline_tests.conftest import PROJECT_ROOT, only, run_config

BIN = Path(sys.executable).parent
DEFS = ["-m", "rental_pipeline.definitions"]



def run(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def materialization_counts(names: list[str]) -> dict[str, int]:
    with dg.DagsterInstance.get() as instance:
        return {
            name: len(
                instance.fetch_materializations(dg.AssetKey(name), limit=100).records
            )
            for name in names
        }


def test_workspace_and_pyproject_name_the_same_code_location():
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    location = workspace["load_from"][0]["python_module"]
    assert pyproject["tool"]["dagster"] == {
        "module_name": location["module_name"],
        "code_location_name": location["location_name"],
    }
    dg_project = pyproject["tool"]["dg"]["project"]
    assert dg_project["code_location_target_module"] == location["module_name"]
    assert dg_project["code_location_name"] == location["location_name"]


@pytest.mark.slow
def test_validate_job_execute_then_partial_materialize(tmp_path):
    config = tmp_path / "small.yaml"
    # The CLI runs training_job: its config must name only that job's ops.
    config.write_text(yaml.safe_dump(only(run_config(), "raw_data", "clean_sample_checks", "inference_pipeline")))

    validated = run(str(BIN / "dagster"), "definitions", "validate", *DEFS)
    assert "Validation successful" in validated.stdout + validated.stderr

    run(str(BIN / "dagster"), "job", "execute", *DEFS, "-j", "training_job", "-c", str(config))
    everything = ["raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation"]
    assert materialization_counts(everything) == dict.fromkeys(everything, 1)

    run(str(BIN / "dagster"), "asset", "materialize", *DEFS, "--select", 'key:"clean_sample"+', "-c", str(config))
    counts = materialization_counts(everything)
    assert counts.pop("raw_data") == 1
    assert counts == dict.fromkeys(counts, 2)

    summary = run(str(BIN / "rental-pipeline"), "summary").stdout
    assert "Test MAE" in summary
    assert "never materialized" not in summary


@pytest.mark.slow
def test_a_failing_run_exits_non_zero(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"ops": {"raw_data": {"config": {"source": str(tmp_path / "missing.csv")}}}}))
    result = subprocess.run(
        [str(BIN / "dagster"), "job", "execute", *DEFS, "-j", "training_job", "-c", str(bad)],
        cwd=PROJECT_ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "missing.csv: file does not exist" in result.stdout + result.stderr


@pytest.mark.slow
def test_make_run_prints_info_and_a_summary_of_what_it_built():
    """`make run` as a new user runs it (the venv already set up): INFO and up, no Dagster or build
    warnings, and a summary that says what the run built and which assets its job does not build."""
    venv = Path(sys.executable).parent.parent
    result = subprocess.run(
        ["make", "-o", "setup", "run", f"VENV={venv}"],
        cwd=PROJECT_ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " - DEBUG - " not in output
    assert "Warning" not in output, output  # SupersessionWarning, BuildBackendWarning
    assert " - INFO - " in output and "Stored new artifact model_evaluation:v0" in output
    summary = output[output.index("new / reused"):]
    training = ["raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation"]
    for asset in training:
        line = next(line for line in summary.splitlines() if line.startswith(asset + " "))
        assert f"{asset}:v0" in line and " new " in line, line
    for asset in ("batch_predictions", "sweep_leaderboard"):
        line = next(line for line in summary.splitlines() if line.startswith(asset + " "))
        assert "not part of training_job" in line and "never materialized" not in line, line
    built = next(line for line in summary.splitlines() if line.startswith("Run "))
    assert "built 6 new (" in built and all(asset in built for asset in training), built
    assert "not part of training_job:" in built and "sweep_leaderboard" in built
    assert "Test MAE" in summary
