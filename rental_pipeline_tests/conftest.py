"""Shared fixtures and helpers: isolated local state for every test, the reference sample when
present, runs of the asset graph and what they stored, a PostgreSQL database of a test's own.

Test modules import helpers from here (or from the helper modules beside it), never from each
other. Every fixture is safe under pytest-xdist: state lives in per-test temporary folders, and
what is shared (a server) gets a name of its own per test.
"""

from __future__ import annotations

import base64
import io
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import dagster as dg
import pytest

# The store's backends (a folder, a real S3 server) as fixtures: store_root, s3_credentials.
pytest_plugins = ["rental_pipeline_tests.store.backends"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE1 = PROJECT_ROOT.parent / "shared" / "data" / "sample1.csv"

# A forest small enough that a whole-graph test takes about a second (tests choose the forest over
# the boosted default for speed; the boosted model has tests of its own).
FAST_FOREST = {"n_estimators": 10, "max_depth": 8, "n_jobs": 1, "oob_score": False}


# -- the two tiers --------------------------------------------------------------------------
# `make test-fast` runs what is not marked slow. A test is marked slow, one by one, when it takes
# more than a few seconds on a 2-core machine (whole runs through subprocesses, a browser, many
# trainings); the summary names any unmarked test that took longer than this, so the tier stays true.
FAST_TIER_SECONDS = 5.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first (the order is otherwise kept): with several workers, the longest tests
    start at once instead of leaving one worker busy alone at the end."""
    if getattr(config.option, "numprocesses", None) or hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    overdue = [
        report
        for report in terminalreporter.getreports("passed")
        if report.when == "call" and report.duration > FAST_TIER_SECONDS and "slow" not in report.keywords
    ]
    if overdue:
        terminalreporter.section(f"unmarked tests over {FAST_TIER_SECONDS:.0f} s (mark them slow)")
        for report in sorted(overdue, key=lambda r: -r.duration):
            terminalreporter.write_line(f"{report.duration:6.1f}s {report.nodeid}")


@pytest.fixture(autouse=True)
def isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every piece of local state at a temporary folder and keep W&B offline."""
    root = tmp_path_factory.mktemp("state")
    for variable, folder in {
        "RENTAL_PIPELINE_HOME": "home",
        "DAGSTER_HOME": "dagster",
        "WANDB_DIR": "wandb",
        "WANDB_DATA_DIR": "wandb-data",
        "WANDB_CACHE_DIR": "wandb-cache",
        "WANDB_CONFIG_DIR": "wandb-config",
    }.items():
        (root / folder).mkdir()
        monkeypatch.setenv(variable, str(root / folder))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    # Charts are about 2 s of every small run and change no artifact: drawn only in the tests that
    # look at them (the `plots_on` fixture, the browser test, test_metadata's whole-graph run).
    monkeypatch.setenv("RENTAL_PIPELINE_PLOTS", "off")
    return root


@pytest.fixture
def plots_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps draw their charts, as they do by default outside the tests."""
    monkeypatch.setenv("RENTAL_PIPELINE_PLOTS", "on")


@pytest.fixture
def no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B mirroring off, for tests of what is not the mirror (it would only add seconds):
    `pytestmark = pytest.mark.usefixtures("no_mirror")`."""
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture
def sample1() -> Path:
    if not SAMPLE1.exists():
        pytest.skip(f"reference sample not found at ../shared/data/sample1.csv (looked in {SAMPLE1.parent})")
    return SAMPLE1


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def run_config(raw: dict[str, Any] | None = None, training: dict[str, Any] | None = None, **ops: Any) -> dict:
    """Run config for the asset graph: small synthetic listings, a fast forest and row-count bounds
    that fit them, unless told otherwise. `materialize` drops the ops a selection leaves out."""
    config: dict[str, Any] = {
        "raw_data": {"config": {"rows": 1_500, "seed": 7, **(raw or {})}},
        "clean_sample_checks": {"config": {"min_rows": 100}},
        "inference_pipeline": {
            "config": {"model": "random_forest", "random_forest": {**FAST_FOREST}, **(training or {})}
        },
        "sweep_leaderboard": {
            "config": {
                "grid": {"max_tfidf_features": [5], "random_forest.max_features": [0.5, 1.0]},
                "training": {"model": "random_forest", "random_forest": FAST_FOREST},
            }
        },
    }
    for op, op_config in ops.items():
        config[op] = {"config": op_config}
    return {"ops": config}


def only(config: dict, *ops: str) -> dict:
    """The run config of just these ops (and any resource config)."""
    return {**config, "ops": {op: value for op, value in config["ops"].items() if op in ops}}


def selected_ops(selection: Any) -> set[str]:
    """Ops (assets and check ops) a selection runs: Dagster refuses config for any other op."""
    from rental_pipeline.checks import all_checks
    from rental_pipeline.definitions import all_assets, defs

    graph = defs.resolve_asset_graph()
    chosen = dg.AssetSelection.from_coercible(selection)
    keys, check_keys = chosen.resolve(graph), chosen.resolve_checks(graph)
    ops = {a.node_def.name for a in all_assets if set(a.keys) & keys}
    return ops | {c.node_def.name for c in all_checks if set(c.check_keys) & check_keys}


def materialize(
    instance: dg.DagsterInstance, config: dict | None = None, selection: Any = None, *, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Materialize (part of) the graph with its asset checks and the resources the code location
    uses, in this test's state."""
    from rental_pipeline.checks import all_checks
    from rental_pipeline.definitions import all_assets, default_resources

    config = config if config is not None else run_config()
    if selection is not None and "ops" in config:
        config = only(config, *selected_ops(selection))
    return dg.materialize(
        [*all_assets, *all_checks],
        instance=instance,
        selection=selection,
        run_config=config,
        resources=default_resources(),
        raise_on_error=raise_on_error,
    )


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """Asset name -> metadata values of the materializations in a run."""
    return {
        event.asset_key.to_user_string(): {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }


def executed_steps(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.step_key for event in result.all_events if event.event_type_value == "STEP_START"}


# -- runs that stop at the split, and what their checks said ----------------------------------

DATA_ASSETS = ("raw_data", "clean_sample", "trainval_data", "test_data")
SMALL_BOUNDS = {"min_rows": 100}


def materialize_checked(
    instance: dg.DagsterInstance, config: dict, selection: Any = None
) -> dg.ExecuteInProcessResult:
    """Materialize with the asset checks and the resources of the code location; failures are results."""
    return materialize(instance, config, selection, raise_on_error=False)


def artifact_store() -> Any:
    """The store the code location's resource opens in this test's state."""
    from rental_pipeline.io_manager import ArtifactStoreResource

    return ArtifactStoreResource().store()


def data_config(raw: dict | None = None, **check_config: Any) -> dict:
    """Config for runs that stop at the split (a run rejects config for ops it does not run)."""
    return {
        "ops": {
            "raw_data": {"config": {"rows": 1_500, "seed": 7, **(raw or {})}},
            "clean_sample_checks": {"config": {**SMALL_BOUNDS, **check_config}},
        }
    }


def graph_config(raw: dict | None = None, **check_config: Any) -> dict:
    return run_config(raw=raw, clean_sample_checks={**SMALL_BOUNDS, **check_config})


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {key: e for key, e in evaluations(result).items() if not e.passed}


def failure_records(evaluation: Any) -> list[dict[str, Any]]:
    return [record.data for record in evaluation.metadata["failure_cases"].records]


def stored_versions(result: dg.ExecuteInProcessResult) -> dict[str, tuple[str, Any]]:
    """Asset name -> (artifact version, its value) of everything a run stored."""
    store = artifact_store()
    refs = {
        event.asset_key.to_user_string(): str(event.materialization.metadata["artifact"].value)
        for event in result.get_asset_materialization_events()
    }
    return {name: (ref, store.load(ref)) for name, ref in refs.items()}


def good_run(instance: dg.DagsterInstance) -> dict[str, tuple[str, Any]]:
    """An earlier week that passed every check, up to clean_sample (the rest only adds seconds)."""
    result = materialize_checked(instance, data_config(), selection=["raw_data", "clean_sample"])
    assert result.success
    return stored_versions(result)


def assert_nothing_lost(earlier: dict[str, tuple[str, Any]]) -> None:
    """Every version stored earlier still loads from the store with the same content."""
    import pandas as pd

    store = artifact_store()
    for ref, value in earlier.values():
        pd.testing.assert_frame_equal(store.load(ref), value)


def current_versions(instance: dg.DagsterInstance, names: tuple[str, ...] = ("raw_data", "clean_sample")) -> dict:
    """The version the IO manager loads for each asset: the one its latest materialization recorded."""
    versions = {}
    for name in names:
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        versions[name] = str(event.asset_materialization.metadata["artifact"].value)
    return versions


# -- pictures on the asset pages ----------------------------------------------------------------

INLINE_PNG = re.compile(r"^!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)$")


def picture(markdown: str) -> Any:
    """The PIL image of a metadata value that is an inline PNG in markdown (fails if it is not)."""
    from PIL import Image

    found = INLINE_PNG.match(markdown)
    assert found, f"not an inline PNG: {markdown[:80]}"
    image = Image.open(io.BytesIO(base64.b64decode(found.group(1))))
    image.load()
    return image


# -- a PostgreSQL database of the test's own ------------------------------------------------

POSTGRES_URL_VARIABLE = "RENTAL_PIPELINE_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The DAGSTER_PG_* variables of deploy/dagster-postgres.yaml, naming a fresh database created
    for this test on the server of RENTAL_PIPELINE_TEST_POSTGRES_URL (dropped afterwards), so tests
    running at once never read each other's runs. A user that may not create databases gets the
    URL's own database instead. Skips, saying why, without a server or dagster-postgres."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(
            f"no PostgreSQL server: set {POSTGRES_URL_VARIABLE}=postgresql://user:password@127.0.0.1:PORT/DB "
            "(.ci/run starts one when Debian's postgresql package is installed)"
        )
    pytest.importorskip("dagster_postgres", reason="dagster-postgres is not installed (pip install -e '.[postgres]')")
    import psycopg2
    import psycopg2.errors

    parsed = urlparse(url)
    server = {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": unquote(parsed.username or ""),
        "password": unquote(parsed.password or ""),
    }
    database = f"rental_pipeline_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(dbname=parsed.path.lstrip("/"), **server)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{database}"')
    except psycopg2.errors.InsufficientPrivilege:
        database = parsed.path.lstrip("/")
    env = {
        "DAGSTER_PG_HOST": server["host"],
        "DAGSTER_PG_PORT": str(server["port"]),
        "DAGSTER_PG_DB": database,
        "DAGSTER_PG_USERNAME": server["user"],
        "DAGSTER_PG_PASSWORD": server["password"],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        yield env
    finally:
        try:
            if database != parsed.path.lstrip("/"):
                with admin.cursor() as cursor:
                    try:  # FORCE (PostgreSQL 13+) also ends connections a test left open
                        cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                    except psycopg2.errors.SyntaxError:
                        cursor.execute(f'DROP DATABASE IF EXISTS "{database}"')
        finally:
            admin.close()
