"""What a W&B user sees of the pipeline: runs, metrics, tables, lineage, aliases, the registry.

The runs themselves are real wandb offline runs, read back from their ``.wandb`` files. No W&B
server is reachable here, so everything past the upload goes to ``StandInWandb`` at the mirror's
server adapter (see ``wandb_standin.py``), except the tests of timeouts and unreachable servers:
those run the real adapter (``wandb sync``, ``wandb.Api``) against a local port that accepts
connections and never answers.
"""

from __future__ import annotations

import fnmatch
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from rental_pipeline.cli import main
from rental_pipeline.evaluation import WORST_ERROR_COLUMNS
from rental_pipeline.home import default_root, open_store
from rental_pipeline.io_manager import ArtifactIOManager, ArtifactStoreResource
from rental_pipeline.store import FAILED_CHECKS_FLAG, ArtifactStore
from rental_pipeline.tracking import RegistryLink, WandbApi, WandbMirror, WandbSync, collect_garbage
from rental_pipeline.tracking.mirror_state import MirrorState
from rental_pipeline.tracking.pending import PendingRuns
from rental_pipeline.tracking.wandb_server import SyncTimeoutError
from rental_pipeline_tests.conftest import materialize, materialized, only, run_config
from rental_pipeline_tests.tracking.wandb_standin import OfflineRun, StandInWandb, offline_runs

REGISTRY = RegistryLink("wandb-registry-model/nyc-rental-price")
COLLECTION = "team/nyc_airbnb/{}"
FAKE_KEY = "k" * 40  # wandb checks the length of an API key before using it


def runs_by_version(wandb_dir: Path) -> dict[str, OfflineRun]:
    return {
        run.config["artifact_store"]["output"]: run
        for run in offline_runs(wandb_dir).values()
        if "output" in run.config.get("artifact_store", {})
    }


def _running(command: str) -> str:
    """The processes whose command line holds ``command`` (``pgrep -f``), one a line."""
    return subprocess.run(["pgrep", "-af", command], capture_output=True, text=True).stdout


def sync(store: ArtifactStore, server: StandInWandb, **options: object):
    report = WandbSync(store, server, registry=REGISTRY, **options).run(force=True)  # type: ignore[arg-type]
    return report


@pytest.mark.slow
def test_a_training_run_as_a_wandb_user_will_see_it(instance, isolated_state):
    result = materialize(instance)
    metadata = materialized(result)
    store = open_store()
    runs = runs_by_version(isolated_state / "wandb")

    assert set(runs) == {m["artifact"] for m in metadata.values()}  # one W&B run per new version
    for name, shown in metadata.items():
        ref = shown["artifact"]
        run, version = runs[ref], store.get(ref)
        assert (run.name, run.job_type, run.group) == (ref, name, result.run_id)
        assert run.tags[:2] == [name, f"dagster-run-{result.run_id}"]
        assert run.output.digest == version.digest and run.output.name == name
        # Offline runs cannot use_artifact: the links are recorded with the run, and in the ledger.
        assert run.config["artifact_store"]["inputs"] == list(version.inputs)
        # Dagster says where the run waits for sync.
        wandb_run = shown["wandb_run"]
        assert wandb_run.startswith(f"{run.run_id} (offline, project nyc_airbnb): waits for")
        assert fnmatch.fnmatch(str(run.run_dir), wandb_run.rsplit(" in ", 1)[1])
    ledger = {r.artifact: r for r in PendingRuns(store.root).all() if r.kind == "version"}
    assert {ref: r.inputs for ref, r in ledger.items()} == {ref: store.get(ref).inputs for ref in runs}

    model = runs[metadata["inference_pipeline"]["artifact"]]
    assert "model-random_forest" in model.tags
    for key in ("val_mae", "val_r2", "fit_seconds", "train_rows", "val_rows"):
        # Full precision, as the store keeps it (the asset page shows it rounded).
        facts = store.get(metadata["inference_pipeline"]["artifact"]).metadata["facts"]
        assert model.summary[key] == pytest.approx(facts[key]), key
    importances = metadata["inference_pipeline"]["feature_importances"]
    columns = [column.name for column in importances.schema.columns]
    assert columns[:2] == ["feature", "importance"]
    assert model.tables["feature_importances"] == {
        "columns": columns,
        "data": [[r.data[c] for c in columns] for r in importances.records],
    }

    evaluation = runs[metadata["model_evaluation"]["artifact"]]
    assert "model-random_forest" in evaluation.tags  # the kind of the model it evaluated
    for key in ("test_mae", "test_r2", "test_rows"):
        facts = store.get(metadata["model_evaluation"]["artifact"]).metadata["facts"]
        assert evaluation.summary[key] == pytest.approx(facts[key]), key
    assert evaluation.summary["promoted"] is True
    worst = evaluation.tables["worst_errors"]
    assert worst["columns"] == WORST_ERROR_COLUMNS and len(worst["data"]) == 10
    by_borough = evaluation.tables["errors_by_borough"]
    rows = [dict(zip(by_borough["columns"], row)) for row in by_borough["data"]]
    assert {r["neighbourhood_group"] for r in rows} == {"Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island"}
    assert sum(r["listings"] for r in rows) == evaluation.summary["test_rows"]
    weighted = sum(r["mae"] * r["listings"] for r in rows) / evaluation.summary["test_rows"]
    assert weighted == pytest.approx(evaluation.summary["test_mae"], abs=0.01)

    clean = runs[metadata["clean_sample"]["artifact"]]
    assert clean.summary["row_count"] == metadata["clean_sample"]["dagster/row_count"]
    per_borough = clean.tables["listings_per_borough"]  # a table on the asset page, so a W&B table
    assert {row[0] for row in per_borough["data"]} == {r["neighbourhood_group"] for r in rows}

    board = runs[metadata["sweep_leaderboard"]["artifact"]]
    leaderboard = board.tables["leaderboard"]
    assert len(leaderboard["data"]) == metadata["sweep_leaderboard"]["trials"] == 2
    trials = [r for r in offline_runs(isolated_state / "wandb").values() if r.job_type == "sweep_leaderboard_trial"]
    assert len(trials) == 2
    val_mae = dict(zip((row[0] for row in leaderboard["data"]), (row[leaderboard["columns"].index("val_mae")]
                                                                   for row in leaderboard["data"])))
    for trial in trials:
        number = trial.config["trial"]
        assert trial.name == f"{board.name} trial-{number}" and trial.group == result.run_id
        assert trial.summary["val_mae"] == pytest.approx(val_mae[number], abs=1e-4)
        assert "model-random_forest" in trial.tags and "sweep-trial" in trial.tags
        assert trial.project == board.project == "nyc_airbnb"

    again = materialized(materialize(instance))
    assert all(m["wandb_run"].startswith("unchanged") for m in again.values())
    assert len(offline_runs(isolated_state / "wandb")) == len(runs) + 2  # no new runs, no new trials


def two_weeks(instance) -> ArtifactStore:
    """Week 1, then week 2 with another forest: a new model and evaluation, test_data reused."""
    materialize(instance)
    forest = {"n_estimators": 12, "max_depth": 6, "n_jobs": 1, "oob_score": False}
    week2 = run_config(training={"random_forest": forest})
    materialize(instance, week2, selection=["inference_pipeline", "model_evaluation", "batch_predictions"])
    return open_store()


@pytest.mark.slow
def test_sync_gives_wandb_the_lineage_edge_for_edge(instance, isolated_state):
    store = two_weeks(instance)
    server = StandInWandb()
    report = sync(store, server)
    assert report.ok, report.lines()
    assert len(report.uploaded) == len(offline_runs(isolated_state / "wandb"))
    assert PendingRuns(store.root).all() == [] and collect_garbage(store).kept_pending_blobs == 0

    on_wandb = {r.artifact: r.wandb_artifact for r in PendingRuns(store.root).synced() if r.kind == "version"}
    assert set(on_wandb) == {v.ref for name in store.names() for v in store.history(name)}
    for ref, holder in on_wandb.items():
        producer = server.producer(holder)
        assert server.runs[producer].run_id in {r.run_id for r in PendingRuns(store.root).synced()}
        assert server.used.get(producer, set()) == {on_wandb[i] for i in store.get(ref).inputs}, ref

    # Edge for edge with `rental-pipeline lineage`, from the evaluation and the predictions back.
    for leaf in ("model_evaluation:latest", "batch_predictions:latest", "sweep_leaderboard:latest"):
        shown = CliRunner().invoke(main, ["lineage", leaf, "--json"])
        assert shown.exit_code == 0, shown.output
        chain = json.loads(shown.output)
        store_edges = {(i, r["artifact"]) for r in chain for i in r["inputs"]}
        wandb_edges = {
            (ref, r["artifact"])
            for r in chain
            for ref, holder in on_wandb.items()
            if holder in server.used.get(server.producer(on_wandb[r["artifact"]]), set())
        }
        assert wandb_edges == store_edges and store_edges, leaf
    evaluation_v1 = store.get("model_evaluation:v1")
    assert "test_data:v0" in evaluation_v1.inputs  # week 2 reused week 1's split, and W&B knows
    trials = [r for r in PendingRuns(store.root).synced() if r.kind == "trial"]
    assert trials and all(server.used[r.run_path] == {on_wandb["trainval_data:v0"]} for r in trials)

    calls = list(server.calls)
    again = sync(store, server)
    assert again.ok and again.nothing_to_do and server.calls == calls  # idempotent: nothing asked twice


@pytest.mark.slow
def test_alias_moves_rollbacks_and_failed_checks_reach_wandb(instance, isolated_state):
    store = two_weeks(instance)
    server = StandInWandb()
    assert sync(store, server).ok
    model = COLLECTION.format("inference_pipeline")
    prod = store.get("inference_pipeline:prod")
    holder = server.holder(model, "prod")
    assert holder is not None and server.version(holder).digest == prod.digest
    assert server.registry[REGISTRY.target] == {holder: {"prod"}}
    assert server.holder(COLLECTION.format("clean_sample"), "reference") is not None

    # A rollback by hand, offline: queued, then applied by the next sync (collection and registry).
    other = next(v for v in store.history("inference_pipeline") if v.ref != prod.ref)
    moved = CliRunner().invoke(main, ["artifacts", "alias", other.ref, "prod", "--reason", "rollback"])
    assert moved.exit_code == 0 and "W&B: queued" in moved.output, moved.output
    report = sync(store, server)
    assert report.ok
    assert report.aliases == [f"inference_pipeline:prod -> v{other.version} ({server.holder(model, 'prod')})"]
    assert server.version(server.holder(model, "prod")).digest == other.digest
    assert {a for aliases in server.registry[REGISTRY.target].values() for a in aliases} == {"prod"}
    (linked,) = [v for v, aliases in server.registry[REGISTRY.target].items() if aliases]
    assert server.version(linked).digest == other.digest

    # Checks fail on a version after it was mirrored: W&B marks it, and clears the mark later.
    clean = store.get("clean_sample:latest")
    store.mark_entries(clean.ref, FAILED_CHECKS_FLAG, {"row_count": "1,500 rows, not more than 15,000"})
    report = sync(store, server)
    assert report.checks == [f"{clean.ref} marked as failing row_count"]
    marked = server.version(server.holder(COLLECTION.format("clean_sample"), "latest"))
    assert marked.tags == {"failed-checks"} and "row_count" in marked.metadata["failed_checks"]
    store.mark_entries(clean.ref, FAILED_CHECKS_FLAG, {"row_count": None})
    assert sync(store, server).checks == [f"{clean.ref} failed-checks mark cleared"]
    assert marked.tags == set() and "failed_checks" not in marked.metadata

    store.remove_alias("inference_pipeline", "prod", reason="no model is good enough")
    report = sync(store, server)
    assert report.ok and server.holder(model, "prod") is None
    assert not any(server.registry[REGISTRY.target].values())


@pytest.mark.slow
def test_a_version_that_failed_its_checks_is_marked_in_wandb(instance, isolated_state):
    config = run_config(clean_sample_checks={"min_rows": 100_000})  # 1,500 synthetic rows: row_count fails
    result = materialize(instance, config, selection=["raw_data", "clean_sample"], raise_on_error=False)
    assert not result.success
    store = open_store()
    assert "row_count" in store.get("clean_sample:latest").flags[FAILED_CHECKS_FLAG]
    server = StandInWandb()
    assert sync(store, server).ok
    marked = server.version(COLLECTION.format("clean_sample") + ":v0")
    assert "failed-checks" in marked.tags and "row_count" in marked.metadata["failed_checks"]


@pytest.mark.slow
def test_a_failed_step_is_reported_and_the_next_sync_finishes_it(instance, isolated_state):
    materialize(instance, selection=["raw_data", "clean_sample"])
    store = open_store()
    server = StandInWandb()
    server.failing["use_artifact"] = 1
    report = sync(store, server)
    assert not report.ok
    ((what, why),) = report.failed
    assert "clean_sample:v0" in what and "declaring raw_data:v0 an input" in why and "refused" in why
    assert len(report.uploaded) == 2 and [r.artifact for r in PendingRuns(store.root).all()] == ["clean_sample:v0"]

    calls = len(server.calls)
    report = sync(store, server)
    assert report.ok and not report.uploaded and len(report.links) == 1  # only what was left
    assert [c[0] for c in server.calls[calls:]] == ["describe", "use_artifact"]
    run = next(r for r in PendingRuns(store.root).synced() if r.artifact == "clean_sample:v0")
    assert server.used[run.run_path] == {COLLECTION.format("raw_data") + ":v0"}


@pytest.mark.slow
def test_an_alias_on_a_version_wandb_does_not_have_yet_waits(instance, isolated_state):
    materialize(instance, selection=["raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline"])
    store = open_store()
    server = StandInWandb()
    assert sync(store, server).ok
    store.write("inference_pipeline", {"model.skops": b"made while W&B was disabled"}, type="model_export")
    store.set_alias("inference_pipeline:v1", "prod", reason="by hand")
    report = sync(store, server)
    assert report.ok and report.warnings == [
        "inference_pipeline:prod points at inference_pipeline:v1, which was never mirrored to W&B; "
        "the alias was taken off W&B's versions instead"
    ]
    assert server.holder(COLLECTION.format("inference_pipeline"), "prod") is None


@pytest.mark.slow
def test_sync_without_credentials_touches_nothing_and_says_what_waits(instance, isolated_state):
    materialize(instance, selection=["raw_data"])
    result = CliRunner().invoke(main, ["artifacts", "sync"])
    assert result.exit_code == 0
    assert "1 W&B run(s) pending and 0 alias move(s) queued, not synced" in result.output
    assert "WANDB_API_KEY" in result.output
    assert len(PendingRuns(default_root()).all()) == 1


@pytest.fixture
def silent_wandb(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A W&B address that accepts connections and never answers (the server stands in for one
    that hangs); with a well-formed key so wandb tries."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv("WANDB_BASE_URL", url)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    yield url
    listener.close()


@pytest.mark.slow
def test_sync_gives_up_at_its_timeout_and_says_what_it_waited_for(instance, isolated_state, silent_wandb):
    materialize(instance, selection=["raw_data"])
    result = CliRunner().invoke(main, ["artifacts", "sync", "--timeout", "3"])
    assert result.exit_code == 1
    assert f"asking {silent_wandb} who the API key belongs to" in result.stderr
    # Either the budget ran out first (our message) or wandb's own request timed out inside it
    # (a loaded machine): both are reported as a failure naming the server, within the budget.
    failure = next(line for line in result.stdout.splitlines() if line.strip().startswith("failed"))
    assert silent_wandb in failure and ("gave up after 3 s" in failure or "did not respond" in failure), failure
    assert len(PendingRuns(default_root()).all()) == 1  # nothing lost, nothing marked


@pytest.mark.slow
def test_a_hanging_wandb_sync_is_stopped_with_everything_it_started(tmp_path, silent_wandb):
    store = ArtifactStore(tmp_path / "artifacts")
    version = store.write("raw_data", {"d.csv": b"id\n1\n"}, type="raw_data").version
    mirror = WandbMirror(store, mode="offline")
    result = mirror.mirror(version, job_type="raw_data")
    mirror.flush()
    with pytest.raises(SyncTimeoutError, match=r"`wandb sync` of 1 run\(s\) did not finish within 4 s"):
        WandbApi().upload([result.run_dir / f"run-{result.run_id}.wandb"], timeout=4)
    # Stopped means gone: wait for the processes to disappear (a SIGKILL is delivered a moment
    # later), failing only if they are still there long after any stop would have ended them.
    command = f"wandb sync --yes {result.run_dir}/"
    deadline = time.monotonic() + 120
    while _running(command) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(command), f"still running: {_running(command)}"
    assert not list(result.run_dir.glob("*.wandb.synced"))


@pytest.mark.slow
def test_online_the_worker_syncs_at_the_end_of_the_run(instance, isolated_state, silent_wandb):
    """Online with W&B unreachable: the run still succeeds, says what the upload could not do,
    and the W&B run waits for `artifacts sync`. The asset page links the run once the entity is
    known (here from an earlier sync)."""
    store = open_store()
    MirrorState(store.root).set_server(silent_wandb, {"entity": "team", "app_url": "https://wandb.stand-in"})
    artifact_store = ArtifactStoreResource()
    result = dg.materialize(
        [*__import__("rental_pipeline.definitions", fromlist=["all_assets"]).all_assets],
        instance=instance,
        selection=["raw_data"],
        run_config=only(run_config(), "raw_data"),
        resources={
            "artifact_store": artifact_store,
            "io_manager": ArtifactIOManager(artifact_store=artifact_store, wandb_mode="online", wandb_sync_timeout=3),
        },
    )
    assert result.success
    shown = materialized(result)["raw_data"]["wandb_run"]
    (pending,) = PendingRuns(store.root).all()
    assert shown == f"https://wandb.stand-in/team/nyc_airbnb/runs/{pending.run_id}"
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message.startswith("W&B sync:")]
    assert len(warnings) == 1 and "who the API key belongs to" in warnings[0], warnings
    assert not pending.uploaded


def test_registry_collection_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    from rental_pipeline.tracking import registry_link

    assert registry_link(None, {}) == REGISTRY
    assert registry_link(None, {"RENTAL_PIPELINE_WANDB_REGISTRY": "price-models"}).target == (
        "wandb-registry-model/price-models"
    )
    assert registry_link("wandb-registry-prod/nyc", {}).target == "wandb-registry-prod/nyc"
    assert registry_link("none", {}) is None
    assert os.environ.get("RENTAL_PIPELINE_WANDB_REGISTRY") is None


LEGACY_FIELDS = ("run_id", "run_dir", "project", "artifact", "blobs", "created_at")


def test_runs_recorded_before_the_ledger_kept_lineage_still_connect(tmp_path):
    """Records written by the earlier mirror (six fields, synced or not) are completed from the store."""
    store = ArtifactStore(tmp_path / "artifacts")
    raw = store.write("raw_data", {"d.csv": b"id\n1\n"}, type="raw_data").version
    mirror = WandbMirror(store)
    mirror.mirror(raw, job_type="raw_data")
    server = StandInWandb()
    assert sync(store, server).ok
    ledger = PendingRuns(store.root)
    (old,) = ledger.synced()
    legacy = {k: v for k, v in old.to_json().items() if k in LEGACY_FIELDS}
    (ledger.synced_dir / f"{old.run_id}.json").write_text(json.dumps(legacy))

    clean = store.write("clean_sample", {"d.csv": b"id\n1\n2\n"}, type="clean_sample", inputs=[raw.ref]).version
    result = mirror.mirror(clean, job_type="clean_sample")
    pending = ledger.pending_dir / f"{result.run_id}.json"
    pending.write_text(json.dumps({k: v for k, v in json.loads(pending.read_text()).items() if k in LEGACY_FIELDS}))

    report = sync(store, server)
    assert report.ok, report.lines()
    assert server.used[f"team/nyc_airbnb/{result.run_id}"] == {COLLECTION.format("raw_data") + ":v0"}
    assert {r.artifact: r.wandb_artifact for r in ledger.synced()} == {
        raw.ref: COLLECTION.format("raw_data") + ":v0",
        clean.ref: COLLECTION.format("clean_sample") + ":v0",
    }


@pytest.mark.slow
def test_online_an_alias_set_by_hand_is_applied_at_once_or_stays_queued(tmp_path, silent_wandb, monkeypatch):
    from rental_pipeline.tracking import cli as tracking_cli

    monkeypatch.setattr(tracking_cli, "ALIAS_SYNC_TIMEOUT", 3.0)
    monkeypatch.setenv("WANDB_MODE", "online")
    store = ArtifactStore(tmp_path / "artifacts")
    store.write("inference_pipeline", {"m": b"1"}, type="model_export")
    moved = CliRunner().invoke(main, ["artifacts", "--root", str(store.root), "alias", "inference_pipeline:v0", "prod"])
    assert moved.exit_code == 0, moved.output
    assert "moved prod: nowhere -> inference_pipeline:v0" in moved.output
    assert "W&B: not applied yet, it stays queued for `rental-pipeline artifacts sync`" in moved.output
    assert WandbSync(store).queued_moves() == 1


def test_an_input_wandb_will_never_have_is_a_warning_not_a_failure_forever(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    raw = store.write("raw_data", {"d.csv": b"id\n1\n"}, type="raw_data").version  # made while W&B was off
    clean = store.write("clean_sample", {"d.csv": b"id\n1\n2\n"}, type="clean_sample", inputs=[raw.ref]).version
    WandbMirror(store).mirror(clean, job_type="clean_sample")
    server = StandInWandb()
    report = sync(store, server)
    assert report.ok and report.warnings == [
        f"run {PendingRuns(store.root).synced()[0].run_id} (clean_sample:v0): its input raw_data:v0 was never "
        "mirrored to W&B, so W&B's lineage lacks that edge"
    ]
    assert PendingRuns(store.root).all() == [] and server.used == {}
    assert sync(store, server).nothing_to_do


@pytest.mark.slow
def test_wandb_api_calls_go_through_one_helper_process_and_come_back_as_errors(monkeypatch):
    """The real adapter against a port where nothing listens: the SDK's own error comes back from
    the helper process, which serves the next call too and is gone after close()."""
    from rental_pipeline.tracking.wandb_server import ServerCallError

    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    api = WandbApi(base_url="http://127.0.0.1:1", http_timeout=1)
    with pytest.raises(ServerCallError, match=r"^AuthenticationError: .*127\.0\.0\.1:1"):
        api.remove_alias("team/nyc_airbnb/inference_pipeline", "prod", timeout=60)
    helper = api._helper
    assert helper is not None and helper.poll() is None
    with pytest.raises(ServerCallError, match="AuthenticationError"):
        api.use_artifact("team/nyc_airbnb/abc", "team/nyc_airbnb/raw_data:v0", timeout=60)
    assert api._helper is helper  # one process for every call of a sync
    api.close()
    assert helper.poll() is not None
