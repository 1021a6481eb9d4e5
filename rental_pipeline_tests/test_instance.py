"""The Dagster instance configurations the project ships, loaded as Dagster loads them.

`dagster.yaml` (one machine, SQLite) is tested everywhere. `deploy/dagster-postgres.yaml` (a team's
shared PostgreSQL) is tested against a real server when `RENTAL_PIPELINE_TEST_POSTGRES_URL` names
one (`.ci/run` starts a throwaway cluster on loopback and sets it), and skipped otherwise.
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

from rental_pipeline_tests.conftest import PROJECT_ROOT, materialize, materialized, only, run_config


def install(config: Path) -> Path:
    """Copy an instance config into this test's DAGSTER_HOME, as `make` and CI do."""
    home = Path(os.environ["DAGSTER_HOME"])
    shutil.copy(config, home / "dagster.yaml")
    return home


@pytest.mark.slow
def test_local_instance_is_sqlite_under_dagster_home_with_a_one_run_queue():
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._core.storage.runs import SqliteRunStorage

    home = install(PROJECT_ROOT / "dagster.yaml")
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 1
        assert isinstance(instance.run_storage, SqliteRunStorage)
        assert not instance.telemetry_enabled

        result = materialize(instance, only(run_config(raw={"rows": 300}), "raw_data"), selection=["raw_data"])
        assert result.success
    assert (home / "history" / "runs.db").is_file()
    assert (home / "history" / "runs" / "index.db").is_file()


@pytest.mark.parametrize("config", [PROJECT_ROOT / "dagster.yaml", PROJECT_ROOT / "deploy" / "dagster-postgres.yaml"])
def test_the_run_queue_never_runs_two_runs_of_one_week_at_once(config):
    """Two drops of one week (two landing-sensor runs) must not interleave: the later would not be
    the version its model trained on. Judged by the queue daemon's own counter."""
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._utils.tags import TagConcurrencyLimitsCounter

    queue = yaml.safe_load(config.read_text())["run_queue"]
    assert queue["max_concurrent_runs"] >= 1

    def run(week: str) -> DagsterRun:
        return DagsterRun(job_name="weekly_training_job", tags={"dagster/partition": week})

    counter = TagConcurrencyLimitsCounter(queue["tag_concurrency_limits"], [run("2024-03-11")])
    assert counter.is_blocked(run("2024-03-11"))  # the same week waits
    assert not counter.is_blocked(run("2024-03-18"))  # another week may go (as far as the week goes)
    assert not counter.is_blocked(DagsterRun(job_name="training_job"))  # a run naming no week too


@pytest.mark.slow
def test_postgres_instance_stores_runs_and_materializations_in_postgres(postgres_env):
    import psycopg2
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    home = install(PROJECT_ROOT / "deploy" / "dagster-postgres.yaml")
    assert postgres_env["DAGSTER_PG_PASSWORD"] not in (home / "dagster.yaml").read_text()  # from the environment

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        result = materialize(instance, only(run_config(raw={"rows": 500}), "raw_data"), selection=["raw_data"])
        assert result.success
        run_id = result.run_id
        assert materialized(result)["raw_data"]["dagster/row_count"] == 500

    # A second instance (another process would do the same) reads the run and the materialization back.
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        records = instance.fetch_materializations(dg.AssetKey("raw_data"), limit=50).records
        mine = [record for record in records if record.run_id == run_id]
        assert len(mine) == 1
        metadata = mine[0].asset_materialization.metadata
        assert metadata["dagster/row_count"].value == 500
        assert metadata["source"].value == "synthetic (rows=500, seed=7)"

    # The rows are in PostgreSQL itself, and nothing fell back to SQLite files.
    connection = psycopg2.connect(
        host=postgres_env["DAGSTER_PG_HOST"],
        port=int(postgres_env["DAGSTER_PG_PORT"]),
        dbname=postgres_env["DAGSTER_PG_DB"],
        user=postgres_env["DAGSTER_PG_USERNAME"],
        password=postgres_env["DAGSTER_PG_PASSWORD"],
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
            assert cursor.fetchall() == [("SUCCESS",)]
            cursor.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                (run_id,),
            )
            assert cursor.fetchone() == (1,)
    finally:
        connection.close()
    assert not list(home.rglob("*.db"))


@pytest.mark.slow
def test_dagster_cli_materializes_through_the_postgres_instance(postgres_env, tmp_path):
    from rental_pipeline.definitions import defs

    raw_checks = [key for key in defs.resolve_asset_graph().asset_check_keys if key.asset_key.path == ["raw_data"]]
    install(PROJECT_ROOT / "deploy" / "dagster-postgres.yaml")
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(only(run_config(raw={"rows": 500, "seed": 11}), "raw_data")))
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "rental_pipeline.definitions", "--select", "raw_data"]
        + ["-c", str(config)],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    with dg.DagsterInstance.get() as instance:
        latest = instance.get_latest_materialization_event(dg.AssetKey("raw_data"))
        assert latest is not None
        assert latest.asset_materialization.metadata["source"].value == "synthetic (rows=500, seed=11)"
        run = instance.get_run_by_id(latest.run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        # raw_data's own checks ran in the same run and were stored in PostgreSQL too.
        for key in raw_checks:
            record = instance.get_latest_asset_check_evaluation_record(key)
            assert record is not None and record.run_id == latest.run_id, key.to_user_string()
            assert record.status.value == "SUCCEEDED", key.to_user_string()


# -- the Kubernetes files ---------------------------------------------------------------------
# Nothing of Kubernetes runs here (no cluster, no container runtime, no chart): these tests only
# check that the files in deploy/ agree with each other and with the project.

DEPLOY = PROJECT_ROOT / "deploy"


def dockerfile() -> dict[str, list[str]]:
    """Dockerfile instructions by keyword, continuation lines joined."""
    instructions: dict[str, list[str]] = {}
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.setdefault(keyword.upper(), []).append(rest.strip())
    return instructions


def test_deploy_files_agree_with_each_other_and_the_project():
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    image = dockerfile()
    [deployment] = values["dagster-user-deployments"]["deployments"]

    # The user deployment serves the Kubernetes code location from the image's working directory.
    args = deployment["dagsterApiGrpcArgs"]
    served = args[args.index("--python-file") + 1]
    workdir = args[args.index("--working-directory") + 1]
    assert image["WORKDIR"] == [workdir]
    assert (PROJECT_ROOT / served).is_file()
    assert any(copy.split()[0] == served for copy in image["COPY"])
    assert served in image["CMD"][0] and workdir in image["CMD"][0]

    # The store and the landing prefix are object storage: no shared volume anywhere. The pods'
    # own RENTAL_PIPELINE_HOME (scratch: cached blobs) is the image's folder, writable by its user.
    env = {item["name"]: item.get("value") for item in deployment["env"]}
    from rental_pipeline.store.s3_backend import parse_s3_url

    bucket, prefix, options = parse_s3_url(env["RENTAL_PIPELINE_STORE"])
    assert prefix and not options  # endpoint and region from AWS_* variables, no credentials
    assert env["RENTAL_PIPELINE_LANDING"].startswith(f"s3://{bucket}/") and env["AWS_REGION"]
    assert f"RENTAL_PIPELINE_HOME={env['RENTAL_PIPELINE_HOME']}" in image["ENV"]
    assert "volumes" not in deployment and "volumeMounts" not in deployment
    assert not (DEPLOY / "pvc.yaml").exists()
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert image["RUN"][0].startswith('pip install ".[k8s]"')

    # The image's user can write to the volume, in the code server and in run pods.
    [user] = image["USER"]
    assert deployment["podSecurityContext"]["fsGroup"] == int(user)
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    run_pod = launcher["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]
    assert run_pod["securityContext"]["fsGroup"] == int(user)

    # W&B and S3 credentials come from Secrets; nothing secret is written in the values.
    assert {"name": "rental-pipeline-wandb"} in deployment["envSecrets"]
    assert {"name": "rental-pipeline-s3"} in deployment["envSecrets"]
    assert not {"WANDB_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert values["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in values["postgresql"]

    # The same PostgreSQL driver as the tested instance config (dagster-postgres ships psycopg2).
    instance = yaml.safe_load((DEPLOY / "dagster-postgres.yaml").read_text())
    assert values["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    assert env["RENTAL_PIPELINE_AUTOMATION"] == "on"


def test_kubernetes_code_location_swaps_only_the_executor_and_the_store(monkeypatch):
    pytest.importorskip(
        "dagster_k8s", reason="dagster-k8s is not installed: pip install -e '.[dev,k8s]' (.ci/run does)"
    )
    import importlib.util

    from rental_pipeline.definitions import defs as local

    spec = importlib.util.spec_from_file_location("definitions_k8s", DEPLOY / "definitions_k8s.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", str(DEPLOY))  # a folder: pods share none
    with pytest.raises(RuntimeError, match="RENTAL_PIPELINE_STORE must name the team's object storage"):
        spec.loader.exec_module(module)
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", "s3://team-bucket/rental")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    repo, local_repo = module.defs.get_repository_def(), local.get_repository_def()
    assert {job.name for job in repo.get_all_jobs()} == {job.name for job in local_repo.get_all_jobs()}
    assert {job.executor_def.name for job in repo.get_all_jobs()} == {"k8s_job_executor"}
    assert {s.name for s in repo.schedule_defs} == {s.name for s in local_repo.schedule_defs}
    assert {s.name for s in repo.sensor_defs} == {s.name for s in local_repo.sensor_defs}
    store = module.defs.resources["artifact_store"]
    assert store.root == dg.EnvVar("RENTAL_PIPELINE_STORE")  # read in each pod, not at import
    # The IO manager takes the store from the `artifact_store` resource, whichever way it is set.
    assert module.defs.resources["io_manager"] is local.resources["io_manager"]
    assert module.defs.resources["io_manager"].required_resource_keys == {"artifact_store"}


@pytest.mark.slow
def test_kubernetes_code_location_validates_through_the_dagster_cli(tmp_path):
    pytest.importorskip(
        "dagster_k8s", reason="dagster-k8s is not installed: pip install -e '.[dev,k8s]' (.ci/run does)"
    )
    env = {**os.environ, "RENTAL_PIPELINE_STORE": "s3://team-bucket/rental", "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-f", "deploy/definitions_k8s.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Validation successful for code location definitions_k8s.py" in done.stdout + done.stderr
