"""Shared fixtures: isolated local state for every test, and the reference sample when present."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

# The store's backends (a folder, a real S3 server) as fixtures: store_root, s3_credentials.
pytest_plugins = ["rental_pipeline_tests.store_backends"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE1 = PROJECT_ROOT.parent / "shared" / "data" / "sample1.csv"

# A forest small enough that a whole-graph test takes about a second (tests choose the forest over
# the boosted default for speed; the boosted model has tests of its own).
FAST_FOREST = {"n_estimators": 10, "max_depth": 8, "n_jobs": 1, "oob_score": False}


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
    return root


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
    """The run config of just these ops."""
    return {"ops": {op: value for op, value in config["ops"].items() if op in ops}}


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
