"""The W&B mirror, against the real wandb library in offline mode (no network anywhere).

Calls that need a W&B server (uploads, ``use_artifact``, alias updates, registry links,
``wandb.Api().artifact``) cannot be exercised here: those tests stand in for the server at the
mirror's adapter (``StandInWandb``) or at ``wandb.Api``, and say so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rental_pipeline.store import ArtifactStore
from rental_pipeline.tracking import (
    MirrorError,
    MirrorQueue,
    WandbMirror,
    collect_garbage,
    resolve_mode,
    verify_store,
)
from rental_pipeline_tests.tracking.wandb_standin import StandInWandb, offline_run, whole_records


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wandb_home = tmp_path / "wandb_home"
    wandb_home.mkdir()
    for var in (
        "WANDB_DIR",
        "WANDB_CACHE_DIR",
        "WANDB_CONFIG_DIR",
        "WANDB_DATA_DIR",
        "WANDB_ARTIFACT_DIR",
    ):
        monkeypatch.setenv(var, str(wandb_home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return wandb_home


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "home" / "artifacts")


@pytest.fixture
def any_store(store_root: str, tmp_path: Path) -> ArtifactStore:
    """A store on each backend (a folder; S3 when a test server is running)."""
    return ArtifactStore(store_root, local_dir=tmp_path / "home" / "s3-cache")


FILES = {
    "data.parquet": b"PAR1 not really parquet" * 100,
    "plots/price.png": b"\x89PNG fake",
    "README.md": b"# clean sample\n",
}


def test_store_digest_is_wandb_digest(store: ArtifactStore, tmp_path: Path) -> None:
    import wandb

    version = store.write("clean_sample.csv", FILES, type="clean_sample").version
    artifact = wandb.Artifact("clean_sample.csv", type="clean_sample")
    for path, data in FILES.items():  # from separate copies: W&B hashes the bytes, not our blobs
        copy = tmp_path / "copies" / path
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(data)
        artifact.add_file(str(copy), name=path)
    assert artifact.digest == version.digest
    assert {p: e.digest for p, e in artifact.manifest.entries.items()} == {
        f.path: f.digest for f in version.files
    }


def test_offline_mirror_writes_the_store_digest_into_the_run(
    store: ArtifactStore, offline_wandb: Path
) -> None:
    raw = store.write("sample.csv", {"sample.csv": b"id,price\n1,100\n"}, type="raw_data").version
    clean = store.write(
        "clean_sample.csv", FILES, type="clean_sample", inputs=[raw.ref], metadata={"rows": 1}
    ).version
    store.set_alias(clean.ref, "reference", reason="first week")
    mirror = WandbMirror(store)
    assert mirror.mode == "offline" and mirror.wandb_dir == offline_wandb

    result = mirror.mirror(
        store.get(clean.ref),
        job_type="basic_cleaning",
        group="week-47",
        config={"min_price": 10},
        run_name=clean.ref,
        tags=["clean_sample.csv", "dagster-run-week-47"],
        summary={"row_count": 19001, "price_quantiles": {"p50": 105.0}},
        tables={"dropped": {"columns": ["reason", "rows"], "data": [["price", 999], ["box", None]]}},
    )
    print(f"one offline mirror run took {result.seconds:.2f}s")
    assert result.mode == "offline" and result.url is None
    assert result.run_dir is not None and result.run_dir.parent == offline_wandb / "wandb"

    records = whole_records(result.run_dir / f"run-{result.run_id}.wandb")
    artifacts = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    (record,) = [a for a in artifacts if a.type != "run_table"]  # W&B logs each table as one too
    assert record.digest == clean.digest
    assert (record.name, record.type, record.project) == (
        "clean_sample.csv",
        "clean_sample",
        "nyc_airbnb",
    )
    assert sorted(record.aliases) == ["latest", "reference"]
    blob_paths = store.paths(clean.ref)
    assert {e.path: (e.digest, e.local_path) for e in record.manifest.contents} == {
        f.path: (f.digest, str(blob_paths[f.path])) for f in clean.files
    }  # the run points at the store's blobs: no second copy

    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["artifact_store"]["inputs"] == ["sample.csv:v0"]
    assert config["artifact_store"]["output"] == clean.ref
    assert (
        config["min_price"] == 10
        and run.job_type == "basic_cleaning"
        and run.run_group == "week-47"
    )
    seen = offline_run(result.run_dir)
    assert seen.name == "clean_sample.csv:v0" and seen.tags == ["clean_sample.csv", "dagster-run-week-47"]
    assert seen.summary["row_count"] == 19001 and seen.summary["price_quantiles"] == {"p50": 105.0}
    assert seen.tables["dropped"]["columns"] == ["reason", "rows"]
    assert seen.tables["dropped"]["data"] == [["price", 999], ["box", None]]

    pending = mirror.pending.all()
    assert [(p.run_id, p.artifact, p.inputs, p.digest) for p in pending] == [
        (result.run_id, clean.ref, (raw.ref,), clean.digest)
    ]
    assert set(pending[0].blobs) == {f.sha256 for f in clean.files}


def test_trials_are_runs_of_their_own_beside_the_version(store: ArtifactStore, offline_wandb: Path) -> None:
    trainval = store.write("trainval_data", {"d.csv": b"id\n1\n"}, type="split").version
    board = store.write("sweep_leaderboard", {"b.csv": b"trial\n0\n"}, type="sweep", inputs=[trainval.ref]).version
    trials = [
        {"name": f"trial-{n}", "config": {"max_features": m}, "summary": {"val_mae": mae}}
        for n, (m, mae) in enumerate([(0.5, 31.5), (1.0, 33.0)])
    ]
    result = WandbMirror(store).mirror(board, job_type="sweep_leaderboard", group="run-1", tags=["sweep_leaderboard"],
                                       trials=trials)
    assert len(result.trial_runs) == 2
    runs = {r.run_id: r for r in map(offline_run, (offline_wandb / "wandb").glob("offline-run-*"))}
    assert set(runs) == {result.run_id, *result.trial_runs}
    for number, run_id in enumerate(result.trial_runs):
        trial = runs[run_id]
        assert trial.job_type == "sweep_leaderboard_trial" and trial.group == "run-1"
        assert trial.name == f"sweep_leaderboard:v0 trial-{number}"
        assert "sweep-trial" in trial.tags and trial.artifacts == []
        assert trial.summary["val_mae"] == trials[number]["summary"]["val_mae"]
        assert trial.config["max_features"] == trials[number]["config"]["max_features"]
        assert trial.config["artifact_store"] == {"parent": board.ref, "inputs": [trainval.ref]}
    ledger = {r.run_id: r for r in WandbMirror(store).pending.all()}
    assert [ledger[i].kind for i in result.trial_runs] == ["trial", "trial"]
    assert all(ledger[i].inputs == (trainval.ref,) for i in result.trial_runs)


def test_gc_keeps_blobs_of_runs_until_they_are_uploaded(store: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads go to ``StandInWandb`` (no W&B server here); it reads the blobs as `wandb sync` would."""
    old = store.write("model", {"model.skops": b"old weights"}, type="model_export").version
    mirror = WandbMirror(store)
    mirror.mirror(old, job_type="train")
    store.write("model", {"model.skops": b"new weights"}, type="model_export")
    old_blob = store.blobs.path(old.files[0].sha256)

    report = collect_garbage(store, keep=1)
    assert report.removed_versions == ["model:v0"] and report.kept_pending_blobs == 1
    assert old_blob.exists()  # an unsynced offline run still points at it
    assert verify_store(store).ok

    without_key = mirror.sync()
    assert without_key.skipped_reason and "WANDB_API_KEY" in without_key.skipped_reason
    assert len(mirror.pending.all()) == 1

    server = StandInWandb()
    synced = mirror.sync(force=True, server=server)
    assert synced.ok, synced.lines()
    assert [r.artifact for r in synced.synced] == ["model:v0"]
    assert server.holder("team/nyc_airbnb/model", "latest") == "team/nyc_airbnb/model:v0"
    assert mirror.pending.all() == []
    assert collect_garbage(store).removed_blobs == 1 and not old_blob.exists()


def test_disabled_mode_does_nothing(store: ArtifactStore, offline_wandb: Path) -> None:
    version = store.write("a", {"f": b"1"}, type="t").version
    result = WandbMirror(store, mode="disabled").mirror(version, job_type="x")
    assert result.mode == "disabled" and result.run_id is None
    assert not (offline_wandb / "wandb").exists()


def test_mode_resolution() -> None:
    assert resolve_mode(None, {}) == "offline"
    assert resolve_mode(None, {"WANDB_API_KEY": "k"}) == "online"
    assert resolve_mode(None, {"WANDB_API_KEY": "k", "WANDB_MODE": "offline"}) == "offline"
    assert resolve_mode("disabled", {"WANDB_API_KEY": "k"}) == "disabled"
    assert resolve_mode(None, {"WANDB_MODE": "dryrun"}) == "offline"
    with pytest.raises(MirrorError):
        resolve_mode("sometimes", {})


def test_online_runs_declare_their_exact_inputs_with_use_artifact(
    any_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = any_store
    """Online, the run is written to disk, then uploaded and linked by the sync; the server is
    ``StandInWandb`` (none is reachable here)."""
    raw = store.write("sample.csv", {"sample.csv": b"raw"}, type="raw_data").version
    store.write("sample.csv", {"sample.csv": b"raw, week 2"}, type="raw_data")
    clean = store.write("clean_sample.csv", FILES, type="clean_sample", inputs=[raw.ref]).version
    server = StandInWandb()
    monkeypatch.setenv("WANDB_BASE_URL", server.base_url)  # read by the mirror's settings as it is made
    mirror = WandbMirror(store, mode="online")
    assert mirror.run_url("nyc_airbnb", "abc") is None  # no entity known before the first sync
    first = mirror.mirror(raw, job_type="download")
    assert first.url is None and first.run_dir is not None  # on disk first, whatever the mode
    mirror.mirror(store.get("sample.csv:v1"), job_type="download")
    result = mirror.mirror(clean, job_type="basic_cleaning")
    report = mirror.sync(force=True, server=server)
    assert report.ok, report.lines()

    run_path = f"team/nyc_airbnb/{result.run_id}"
    assert server.used[run_path] == {"team/nyc_airbnb/sample.csv:v0"}  # v0 exactly, not latest (v1)
    assert ("use_artifact", run_path, "team/nyc_airbnb/sample.csv:v0") in server.calls
    assert server.producer("team/nyc_airbnb/clean_sample.csv:v0") == run_path
    assert mirror.pending.all() == [] and len(mirror.pending.synced()) == 3
    assert mirror.run_url("nyc_airbnb", "abc") == "https://wandb.stand-in/team/nyc_airbnb/runs/abc"


@pytest.mark.slow
def test_queued_mirrors_run_in_order_under_the_ids_they_were_given(any_store: ArtifactStore) -> None:
    store = any_store
    versions = [
        store.write("clean_sample.csv", {"data.csv": f"id,price\n1,{price}\n".encode()}, type="clean_sample").version
        for price in (100, 120, 140)
    ]
    queue = MirrorQueue(WandbMirror(store))
    run_ids = [queue.submit(version, job_type="basic_cleaning", group="week-48") for version in versions]
    assert len(set(run_ids)) == 3 and all(len(i) == 8 and i.isalnum() and i.islower() for i in run_ids)

    outcomes = queue.wait()
    assert [o.artifact for o in outcomes] == [v.ref for v in versions]
    assert [o.run_id for o in outcomes] == run_ids
    assert all(o.error is None and o.result is not None for o in outcomes)
    for outcome, version in zip(outcomes, versions):
        assert outcome.result.run_id == outcome.run_id
        assert offline_run(outcome.result.run_dir).output.digest == version.digest
    # The runs were made one after the other, in the order the versions were stored.
    assert [p.run_id for p in queue.mirror.pending.all()] == run_ids
    assert queue.wait() == []  # nothing left; the worker process is gone


def test_a_failed_queued_mirror_is_an_outcome_not_an_exception(store: ArtifactStore) -> None:
    version = store.write("clean_sample.csv", FILES, type="clean_sample").version
    queue = MirrorQueue(WandbMirror(store))
    run_id = queue.submit(version, job_type="basic_cleaning", project="no/slashes")
    (outcome,) = queue.wait()
    assert outcome.run_id == run_id and outcome.result is None
    assert "Invalid project name" in str(outcome.error)
    assert store.get(version.ref).digest == version.digest


def test_a_worker_that_overruns_its_time_is_stopped(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The pipeline never waits forever on W&B. The worker's `import wandb` finds a stand-in that
    opens a FIFO nobody ever writes to, so the worker cannot finish, whatever its limit and however
    fast the machine: only being stopped ends it."""
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    stand_in = tmp_path / "held" / "wandb"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text(f"open({str(fifo)!r}).read()\n", encoding="utf-8")
    search_path = filter(None, (str(stand_in.parent), os.environ.get("PYTHONPATH")))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(search_path))
    version = store.write("clean_sample.csv", FILES, type="clean_sample").version
    queue = MirrorQueue(WandbMirror(store))
    monkeypatch.setattr(queue, "time_limit", lambda: 0.2)
    run_id = queue.submit(version, job_type="basic_cleaning")
    worker = queue._worker
    assert worker is not None
    (outcome,) = queue.wait()
    assert outcome.run_id == run_id and outcome.result is None
    assert "did not finish within 0 s and was stopped" in str(outcome.error)
    assert worker.returncode is not None and worker.returncode < 0  # ended by a signal, not by itself
    assert store.get(version.ref).digest == version.digest


def test_the_week_by_week_view_reaches_wandb_as_a_table_and_a_line_plot(store: ArtifactStore) -> None:
    """What week_by_week reports (its table, and the line plot it asks for) becomes, through the
    run tracker's view of the metadata, a wandb.Table and a line plot of prod's MAE per week."""
    import dagster as dg
    import pandas as pd

    from rental_pipeline.assets.metadata import table
    from rental_pipeline.assets.week_view import PROD_MAE_PLOT
    from rental_pipeline.tracking import wandb_view

    view = pd.DataFrame({
        "week": ["2024-03-04", "2024-03-11", "2024-03-18"],
        "rows": [1448, 1183, 1450],
        "prod_mae_new": [None, 41.5, 38.25],  # no new listings the first week: no point
        "failed_checks": ["", "borough_drift", ""],
    })
    metadata = {
        "weeks": dg.MetadataValue.int(3),
        "week_by_week": table(view),
        wandb_view.LINE_PLOTS_KEY: dg.MetadataValue.json({"week_by_week_prod_mae": PROD_MAE_PLOT}),
    }
    version = store.write("week_by_week", FILES, type="week_view").version
    options = wandb_view.run_options(store, version, "dagster-run", metadata, {})
    assert options["line_plots"] == {"week_by_week_prod_mae": PROD_MAE_PLOT}

    result = WandbMirror(store).mirror(version.ref, job_type="week_by_week", **options)
    seen = offline_run(result.run_dir)
    assert seen.tables["week_by_week"]["columns"] == ["week", "rows", "prod_mae_new", "failed_checks"]
    assert [row[0] for row in seen.tables["week_by_week"]["data"]] == list(view["week"])
    plotted = seen.tables["week_by_week_prod_mae_table"]  # the line plot's own table
    assert plotted["columns"] == ["week", "prod_mae_new"]
    assert plotted["data"] == [["2024-03-11", 41.5], ["2024-03-18", 38.25]]
    charts = {  # a chart is a config record of its own, under _wandb.visualize.<key>
        tuple(item.nested_key): json.loads(item.value_json)
        for record in whole_records(result.run_dir / f"run-{result.run_id}.wandb")
        if record.WhichOneof("record_type") == "config"
        for item in record.config.update
    }
    chart = charts[("_wandb", "visualize", "week_by_week_prod_mae")]
    assert chart["panel_config"]["panelDefId"] == "wandb/line/v0"
    assert {k: chart["panel_config"]["fieldSettings"][k] for k in ("x", "y")} == {"x": "week", "y": "prod_mae_new"}
    assert chart["panel_config"]["stringSettings"]["title"] == PROD_MAE_PLOT["title"]


def test_a_line_plot_of_a_column_the_table_lacks_is_left_out() -> None:
    import dagster as dg

    from rental_pipeline.tracking.wandb_view import LINE_PLOTS_KEY, line_plots

    found = {"week_by_week": {"columns": ["week", "rows"], "data": [["2024-03-04", 3]]}}
    asked = {
        "ok": {"table": "week_by_week", "x": "week", "y": "rows"},
        "no_column": {"table": "week_by_week", "x": "week", "y": "prod_mae_new"},
        "no_table": {"table": "other", "x": "week", "y": "rows"},
    }
    assert line_plots({LINE_PLOTS_KEY: dg.MetadataValue.json(asked)}, found) == {
        "ok": {"table": "week_by_week", "x": "week", "y": "rows", "title": "ok"}
    }
