"""The `rental-pipeline` commands a person reads: summary, lineage, artifacts show, help texts."""

import re

import click
import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from rental_pipeline.cli import main
from rental_pipeline.definitions import defs
from rental_pipeline.home import open_store, project_home
from rental_pipeline_tests.conftest import materialize, run_config


@pytest.fixture
def project_instance(monkeypatch):
    """The Dagster instance where `make` puts it, with DAGSTER_HOME unset as in a fresh shell."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = project_home() / "dagster"
    home.mkdir(parents=True)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def summary() -> str:
    result = CliRunner().invoke(main, ["summary"])
    assert result.exit_code == 0, result.output
    return result.output


def line_of(output: str, asset: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(asset + " "))


@pytest.mark.slow
def test_summary_without_dagster_home_lists_every_asset_with_version_checks_and_model(project_instance):
    materialize(project_instance, run_config())
    output = summary()
    graph = defs.resolve_asset_graph()
    for key in defs.resolve_all_asset_keys():
        name = key.to_user_string()
        if graph.get(key).group_name != "weeks":
            assert name + ":v0" in line_of(output, name)
        elif graph.get(key).partitions_def is not None:  # no week of it was made: not listed as a failure
            assert not any(line.startswith(name + " ") for line in output.splitlines())
    assert "11/11 passed" in line_of(output, "clean_sample") and "2/2 passed" in line_of(output, "raw_data")
    assert "random_forest, prod" in line_of(output, "inference_pipeline")
    assert re.search(
        r"Test MAE \d+\.\d\d, R² 0\.\d+ on [\d,]+ listings: inference_pipeline:v0 \(random_forest\), prod$",
        output,
        re.MULTILINE,
    ), output

    # a better-looking model evaluated without promotion: the summary says it is not prod
    materialize(project_instance, run_config(training={"max_tfidf_features": 3}, model_evaluation={"promote": False}),
                selection=["inference_pipeline", "model_evaluation"])
    output = summary()
    assert "random_forest, not prod" in line_of(output, "inference_pipeline")
    assert "inference_pipeline:v1 (random_forest), not prod (prod is inference_pipeline:v0)" in output


def test_summary_says_when_there_is_no_instance_yet(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = CliRunner().invoke(main, ["summary"])
    assert result.exit_code == 1
    assert "no Dagster instance at" in result.output and str(project_home() / "dagster") in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


@pytest.mark.slow
def test_summary_shows_a_failed_check(project_instance):
    config = run_config()
    config["ops"]["clean_sample_checks"]["config"]["min_rows"] = 100_000  # more than the 1,500 synthetic rows
    materialize(project_instance, config, raise_on_error=False)
    assert "failed: row_count" in line_of(summary(), "clean_sample")


@pytest.mark.slow
def test_lineage_and_show_print_config_as_yaml_blocks(instance):
    materialize(instance, run_config(), selection=["raw_data", "clean_sample", "trainval_data", "inference_pipeline"])
    store = open_store()
    config = store.get("inference_pipeline:latest").metadata["config"]
    for command in (["lineage", "inference_pipeline:latest"], ["artifacts", "show", "inference_pipeline:latest"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        # the config block parses back to the stored config
        start = next(i for i, line in enumerate(lines) if line.strip() == "config:")
        indent = len(lines[start]) - len(lines[start].lstrip())
        block = []
        for line in lines[start + 1:]:
            if len(line) - len(line.lstrip()) <= indent:
                break
            block.append(line[indent + 2:])
        assert yaml.safe_load("\n".join(block)) == config, command
        assert "random_forest:" in block and not any(line.startswith("{") for line in block)
        assert max(len(line) for line in block) <= 100, command


def all_commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*path, name))


def test_every_help_text_renders_without_markup():
    for path, _ in [((), main), *all_commands(main)]:
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "`" not in result.output and "\\" not in result.output, (path, result.output)


@pytest.mark.slow
def test_summary_keeps_check_results_a_later_run_planned_but_skipped(project_instance):
    """A run whose clean_sample failed its checks planned the test_data checks and skipped them:
    that says nothing of the stored test_data, whose checks passed."""
    materialize(project_instance, run_config())
    config = run_config()
    config["ops"]["clean_sample_checks"]["config"]["min_rows"] = 100_000
    materialize(project_instance, config, raise_on_error=False)
    latest = project_instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey("test_data"), "schema")
    )
    assert not hasattr(latest.event.dagster_event.event_specific_data, "passed")  # planned, never evaluated
    line = line_of(summary(), "test_data")
    assert "2/2 passed" in line and "not run" not in line


@pytest.mark.slow
def test_summary_warns_when_the_runs_stored_elsewhere(project_instance, tmp_path):
    """Runs that named their store in run config: the versions the summary lists come from the
    instance, but aliases and prod from the store it opens, so it says they differ."""
    selection = ["raw_data", "clean_sample"]
    materialize(project_instance, run_config(), selection)
    assert "warning" not in summary()
    config = run_config()
    config["resources"] = {"artifact_store": {"config": {"root": str(tmp_path / "elsewhere")}}}
    materialize(project_instance, config, selection)
    output = summary()
    assert "warning: raw_data, clean_sample were last stored in another store" in output


@pytest.mark.slow
def test_summary_says_which_versions_were_reused_and_what_the_last_run_built(project_instance):
    first = materialize(project_instance, run_config())
    output = summary()
    assert "new / reused" in output.splitlines()[2]
    assert " new " in line_of(output, "clean_sample")
    again = materialize(project_instance, run_config())  # nothing changed: the run cache answers
    output = summary()
    for asset in ("raw_data", "clean_sample", "inference_pipeline", "model_evaluation"):
        assert f"reused from {first.run_id[:8]}" in line_of(output, asset), line_of(output, asset)
    built = next(line for line in output.splitlines() if line.startswith("Run "))
    assert built.startswith(f"Run {again.run_id[:8]} built ") and "reused (raw_data, clean_sample" in built
