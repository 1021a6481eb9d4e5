"""The store's two backends for parametrized tests: a temporary folder, and a real S3 server.

The S3 side needs a running S3-compatible server named by ``RENTAL_PIPELINE_TEST_S3_ENDPOINT``
(``.ci/s3-server start DIR`` starts SeaweedFS on loopback and prints it; ``.ci/run`` does so);
without one those tests skip and say why. Each test gets its own prefix in one test bucket.

``conftest.py`` loads this module as a plugin, so every test module can ask for ``store_root``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from rental_pipeline.store import ArtifactStore

ENDPOINT_VARIABLE = "RENTAL_PIPELINE_TEST_S3_ENDPOINT"
TEST_BUCKET = "rental-pipeline-test"
BACKENDS = ("local", "s3")


def s3_endpoint() -> str:
    endpoint = os.environ.get(ENDPOINT_VARIABLE)
    if not endpoint:
        pytest.skip(
            f"no S3 server: set {ENDPOINT_VARIABLE}=http://127.0.0.1:PORT "
            '(eval "$(.ci/s3-server start /tmp/s3)" starts SeaweedFS on loopback; .ci/run does)'
        )
    return endpoint


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> str:
    """The test server's endpoint, with its throwaway key pair in the standard AWS variables (so
    child processes inherit them), and nothing of the developer's own AWS setup."""
    endpoint = s3_endpoint()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("RENTAL_PIPELINE_TEST_S3_KEY_ID", "test-key"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("RENTAL_PIPELINE_TEST_S3_SECRET", "test-secret"))
    for variable in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask a cloud's metadata address
    from rental_pipeline.store.s3_backend import S3Backend

    S3Backend(TEST_BUCKET, endpoint_url=endpoint, region="us-east-1").create_bucket()
    return endpoint


def s3_root(endpoint: str, label: str = "t") -> str:
    """A fresh, empty store root in the test bucket."""
    return f"s3://{TEST_BUCKET}/{label}-{uuid.uuid4().hex[:12]}?endpoint_url={endpoint}&region=us-east-1"


@pytest.fixture(params=BACKENDS)
def store_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A root for a new, empty store on each backend: a folder, or ``s3://...`` on the test server."""
    if request.param == "local":  # (tests may parametrize it indirectly to mark one side slow)
        return str(tmp_path / "artifacts")
    endpoint = request.getfixturevalue("s3_credentials")
    return s3_root(endpoint, request.node.name.split("[")[0][:40].replace("_", "-"))


def is_s3_store(store: ArtifactStore) -> bool:
    return store.location.startswith("s3://")


def overwrite(store: ArtifactStore, key: str, data: bytes) -> None:
    """Replace a stored object behind the store's back, as a tamperer (or a bad disk) would."""
    store.backend.write(key, data)


def remove(store: ArtifactStore, key: str) -> None:
    assert store.backend.delete(key) > 0 or store.backend.info(key) is None
