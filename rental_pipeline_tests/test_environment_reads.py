"""The environment is read in one place (`settings.py`), and each variable it reads still takes
effect through the entry points that use it: a run's store, the W&B mirror of a run, a store on S3."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import dagster as dg
import pytest

import rental_pipeline
from rental_pipeline.definitions import default_resources
from rental_pipeline.home import open_store
from rental_pipeline.io_manager import ArtifactStoreResource
from rental_pipeline.settings import Settings
from rental_pipeline_tests.store.backends import TEST_BUCKET
from rental_pipeline_tests.tracking.wandb_standin import offline_runs

PACKAGE = Path(rental_pipeline.__file__).parent
# Uses of the environment that are not reads of settings, each with its reason (module, function).
NOT_READS = {
    # sets WANDB_SILENT for wandb, which reads it
    ("tracking/mirror_worker.py", "<module>"),
    # hands the whole environment on to the `wandb sync` child and the SDK helper process
    ("tracking/wandb_server.py", "_environment"),
}


def environment_uses(path: Path) -> list[tuple[str, int]]:
    """(enclosing function or "<module>", line) of each `os.environ` / `os.getenv` / `os.putenv` /
    `from os import environ...` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else where
            if (
                isinstance(child, ast.Attribute)
                and isinstance(child.value, ast.Name)
                and child.value.id == "os"
                and child.attr in ("environ", "environb", "getenv", "getenvb", "putenv", "unsetenv")
            ) or (
                isinstance(child, ast.ImportFrom)
                and child.module == "os"
                and any(alias.name.startswith(("environ", "getenv")) for alias in child.names)
            ):
                found.append((where, child.lineno))
            visit(child, inner)

    visit(tree, "<module>")
    return found


def test_only_settings_reads_the_environment():
    reads = [
        f"{path.relative_to(PACKAGE)}:{line} (in {where})"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "settings.py" or path.parent != PACKAGE
        for where, line in environment_uses(path)
        if (str(path.relative_to(PACKAGE)), where) not in NOT_READS
    ]
    assert reads == [], "read the environment in settings.py (Settings) and pass the value down"
    assert environment_uses(PACKAGE / "settings.py")  # the scan does see a read


def test_the_moved_variables_are_read_as_before(tmp_path):
    given = Settings.from_environment(
        {
            "RENTAL_PIPELINE_HOME": str(tmp_path / "home"),
            "RENTAL_PIPELINE_STORE": str(tmp_path / "elsewhere"),
            "RENTAL_PIPELINE_S3_STATS": str(tmp_path / "traffic.jsonl"),
            "AWS_REGION": "eu-west-3",
            "AWS_DEFAULT_REGION": "us-east-2",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:2",
            "WANDB_ENTITY": "team-x",
            "WANDB_DIR": str(tmp_path / "wandb"),
            "WANDB_BASE_URL": "https://wandb.example.com",
            "WANDB_MODE": "online",
            "WANDB_PROJECT": "p",
            "RENTAL_PIPELINE_WANDB_REGISTRY": "",
            "WANDB_API_KEY": "k3y",
        }
    )
    assert given.store == tmp_path / "elsewhere" and given.s3_stats == str(tmp_path / "traffic.jsonl")
    assert (given.s3_region, given.s3_endpoint_url) == ("eu-west-3", "http://127.0.0.1:1")  # as boto3 orders them
    assert (given.wandb_entity, given.wandb_dir, given.wandb_base_url) == (
        "team-x",
        str(tmp_path / "wandb"),
        "https://wandb.example.com",
    )
    assert (given.wandb_mode, given.wandb_project, given.wandb_registry) == ("online", "p", "")
    assert given.wandb_api_key is True
    assert "k3y" not in repr(given)
    fallbacks = Settings.from_environment(
        {
            "RENTAL_PIPELINE_HOME": str(tmp_path / "home"),
            "RENTAL_PIPELINE_STORE": " s3://bucket/prefix ",
            "AWS_DEFAULT_REGION": "us-east-2",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:2",
        }
    )
    assert fallbacks.store == "s3://bucket/prefix"
    assert (fallbacks.s3_region, fallbacks.s3_endpoint_url) == ("us-east-2", "http://127.0.0.1:2")
    empty = Settings.from_environment({"RENTAL_PIPELINE_HOME": str(tmp_path / "home")})
    assert empty.store == tmp_path / "home" / "artifacts"
    assert (empty.s3_stats, empty.s3_region, empty.s3_endpoint_url, empty.wandb_entity, empty.wandb_dir) == (None,) * 5
    assert (empty.wandb_base_url, empty.wandb_mode, empty.wandb_project, empty.wandb_registry) == (None,) * 4
    assert empty.wandb_api_key is False


@dg.asset
def probe_notes(artifact_store: ArtifactStoreResource) -> dg.MaterializeResult:
    version = artifact_store.store().write("probe_notes", {"notes.txt": b"seen\n"}, type="notes").version
    return dg.MaterializeResult(metadata={"artifact": version.ref})


def test_the_store_and_wandb_variables_reach_a_run(instance, isolated_state, monkeypatch):
    """RENTAL_PIPELINE_STORE picks the run's store, WANDB_DIR where its W&B runs are written and
    WANDB_ENTITY the entity they name, all read as the run starts."""
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", str(isolated_state / "chosen"))
    monkeypatch.setenv("WANDB_DIR", str(isolated_state / "chosen-wandb"))
    monkeypatch.setenv("WANDB_ENTITY", "team-x")
    result = dg.materialize([probe_notes], instance=instance, resources=default_resources())
    assert result.success
    assert open_store(isolated_state / "chosen").get("probe_notes:v0")
    assert not (isolated_state / "home" / "artifacts").exists()
    (run,) = offline_runs(isolated_state / "chosen-wandb").values()
    assert (run.name, run.entity) == ("probe_notes:v0", "team-x")
    assert offline_runs(isolated_state / "wandb") == {}


@pytest.fixture
def s3_from_environment(s3_credentials: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test server, named only by AWS_ENDPOINT_URL_S3 and AWS_REGION (which boto3 alone would
    not read), with its throwaway key pair; a fresh store URL that names no endpoint."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_credentials)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return f"s3://{TEST_BUCKET}/from-env-{uuid.uuid4().hex[:12]}"


def test_an_s3_endpoint_from_the_environment_reaches_the_store(s3_from_environment, monkeypatch):
    monkeypatch.setenv("RENTAL_PIPELINE_STORE", s3_from_environment)
    store = ArtifactStoreResource().store()  # what a run's steps open
    assert store.location == s3_from_environment  # each machine's endpoint is not part of the location
    ref = store.write("probe", {"a.txt": b"1"}, type="t").version.ref
    assert open_store().get(ref).digest == store.get(ref).digest  # what a command opens
    client = store.backend.client
    assert client.meta.endpoint_url == Settings.from_environment().s3_endpoint_url
    assert client.meta.region_name == "us-east-1"
    assert client.meta.config.s3["addressing_style"] == "path"  # a private server's
