"""No secret is ever stored: a run reads a source whose URL carries a token and whose server wants a
bearer token from the environment; afterwards not one byte of either secret is anywhere in the
project home (artifact store), the Dagster instance (run history, event log, compute logs) or the
W&B folders (offline runs, which `artifacts sync` would upload), and the run did read the data.

A real Dagster instance on a temporary DAGSTER_HOME (the project's dagster.yaml), a real HTTP
server on loopback, W&B in offline mode; the IO manager's teardown waits for the W&B worker, so
every offline run is on disk when `materialize` returns.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from rental_pipeline.home import open_store
from rental_pipeline.synthetic import generate_listings
from rental_pipeline_tests.conftest import PROJECT_ROOT, data_config, materialize, materialized
from rental_pipeline_tests.http_source import LoopbackHTTP, Route

QUERY_SECRET = "qs7Tk3nFromTheUrl"
HEADER_SECRET = "hdr9Bearer4Env"
SECRETS = (QUERY_SECRET, HEADER_SECRET)
AUTH = "RENTAL_PIPELINE_AUTH_LISTINGS"


@pytest.fixture
def server() -> Iterator[LoopbackHTTP]:
    http = LoopbackHTTP()
    body = generate_listings(rows=1_500, seed=12).to_csv(index=False).encode()
    http.routes["/week.csv"] = Route(
        body=body, require={"Authorization": f"Bearer {HEADER_SECRET}"}, require_query=f"token={QUERY_SECRET}"
    )
    yield http
    http.close()


@pytest.fixture
def real_instance(isolated_state: Path) -> Iterator[dg.DagsterInstance]:
    home = isolated_state / "dagster"
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.get() as instance:
        assert Path(instance.root_directory) == home
        yield instance


def occurrences(root: Path, secrets: tuple[str, ...]) -> dict[str, list[str]]:
    """Every file under `root` holding one of the secrets (as text or URL-quoted), by secret."""
    found: dict[str, list[str]] = {secret: [] for secret in secrets}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            for secret in secrets:
                if secret.encode() in data:
                    found[secret].append(str(path.relative_to(root)))
    return found


def stored_everywhere(isolated_state: Path) -> list[str]:
    """The folders the run wrote to, each checked to be non-empty so the search means something."""
    folders = ["home", "dagster", "wandb"]
    for folder in folders:
        assert any(p.is_file() for p in (isolated_state / folder).rglob("*")), folder
    return folders


@pytest.mark.slow
def test_no_secret_from_the_url_or_the_environment_is_stored(real_instance, server, isolated_state, monkeypatch):
    monkeypatch.setenv("LISTINGS_URL", server.url(f"/week.csv?token={QUERY_SECRET}"))
    monkeypatch.setenv(AUTH, f"Bearer {HEADER_SECRET}")
    raw = {"source": {"env": "LISTINGS_URL"}, "auth_header_variable": AUTH}
    result = materialize(real_instance, data_config(raw=raw), selection=["raw_data", "clean_sample"])
    assert result.success
    recorded = server.url("/week.csv") + "?<redacted>"
    assert materialized(result)["raw_data"]["source"] == recorded
    manifest = open_store().get("raw_data:latest")
    assert manifest.metadata["facts"]["source"] == recorded and manifest.metadata["config"]["source"] == recorded
    assert "(offline, project nyc_airbnb)" in materialized(result)["raw_data"]["wandb_run"]
    assert list((isolated_state / "wandb").rglob("run-*.wandb"))  # the offline runs `sync` would upload

    # and a failing download of the same kind: its error is recorded too
    monkeypatch.setenv("LISTINGS_URL", server.url(f"/missing.csv?token={QUERY_SECRET}"))
    failed = materialize(real_instance, data_config(raw=raw), selection=["raw_data"], raise_on_error=False)
    assert not failed.success

    compute_logs = [p for p in (isolated_state / "dagster").rglob("*") if p.suffix in (".out", ".err", ".complete")]
    assert compute_logs  # compute logs were captured, so they were searched
    for folder in stored_everywhere(isolated_state):
        assert occurrences(isolated_state / folder, SECRETS) == {secret: [] for secret in SECRETS}, folder
    assert {path for _, path, _ in server.requests} == {"/week.csv", "/missing.csv"}  # it did read with them


@pytest.mark.slow
def test_a_token_given_literally_is_kept_only_by_dagster_s_run_record(
    real_instance, server, isolated_state, monkeypatch
):
    """Run config is stored by Dagster as launched; nothing of this project copies it further, and
    the run warns that the URL belongs in an environment variable."""
    monkeypatch.setenv(AUTH, f"Bearer {HEADER_SECRET}")
    raw = {"source": server.url(f"/week.csv?token={QUERY_SECRET}"), "auth_header_variable": AUTH}
    result = materialize(real_instance, data_config(raw=raw), selection=["raw_data"])
    assert result.success
    warnings = [e.user_message for e in real_instance.all_logs(result.run_id) if "{env: VARIABLE}" in e.user_message]
    assert len(warnings) == 1 and QUERY_SECRET not in warnings[0]
    found = occurrences(isolated_state, SECRETS)
    assert found[HEADER_SECRET] == []
    assert found[QUERY_SECRET] and all(path.startswith("dagster/history/runs") for path in found[QUERY_SECRET])
