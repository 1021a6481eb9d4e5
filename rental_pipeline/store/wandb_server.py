"""The one place the mirror talks to a W&B server.

The mirror writes every W&B run to disk first (an offline run) and keeps its own ledger, so all
of it works with no network. What needs a server is uploading those runs and changing what W&B
shows afterwards: input links, aliases, failed-check marks, the model registry. Those calls are
the methods of :class:`WandbServer`, implemented with the wandb SDK by :class:`WandbApi` and
kept thin, with no decisions in them. The tests run the rest of the mirror against a stand-in
with this interface, because no W&B server is reachable where they run; the SDK calls made here
are therefore not exercised against a live server (the README lists them).

Artifacts are named as W&B does: ``entity/project/name:vK`` for a version, ``entity/project/name``
for a collection, ``wandb-registry-REGISTRY/COLLECTION`` for a registry collection.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import MirrorError

FAILED_CHECKS_TAG = "failed-checks"
FAILED_CHECKS_KEY = "failed_checks"
DEFAULT_BASE_URL = "https://api.wandb.ai"


class SyncTimeoutError(MirrorError):
    """A call to W&B did not finish within the time it was given."""


@dataclass(frozen=True)
class ServerInfo:
    base_url: str
    entity: str  # the API key's default entity
    app_url: str  # where the W&B UI is, for run and artifact links

    def run_url(self, run_path: str) -> str:
        entity, project, run_id = run_path.split("/")
        return f"{self.app_url}/{entity}/{project}/runs/{run_id}"


class WandbServer(Protocol):
    """The calls of the mirror that need a W&B server; nothing else in the mirror does."""

    base_url: str

    def upload(self, run_files: Sequence[Path], *, timeout: float) -> dict[Path, str | None]:
        """Upload offline runs (their ``run-<id>.wandb`` files); per file ``None`` once W&B has
        it, else why not."""

    def describe(self) -> ServerInfo:
        """The key's default entity and the UI's address."""

    def logged_artifact(self, run_path: str, name: str, digest: str) -> str:
        """The W&B version (``entity/project/name:vK``) that run ``run_path`` logged with ``digest``."""

    def use_artifact(self, run_path: str, artifact: str) -> None:
        """Declare ``artifact`` an input of the run (a lineage edge); idempotent."""

    def add_alias(self, artifact: str, alias: str) -> None:
        """Put ``alias`` on ``artifact``; W&B takes it off any other version of the collection."""

    def remove_alias(self, collection: str, alias: str) -> bool:
        """Take ``alias`` off whichever version of ``collection`` holds it; False if none did."""

    def mark_failed_checks(self, artifact: str, failed: Mapping[str, Any] | None) -> None:
        """Record failed checks in the version's metadata and tag it, or clear both (``None``)."""

    def link(self, artifact: str, target: str, aliases: Sequence[str]) -> None:
        """Link ``artifact`` into a registry collection with ``aliases``; idempotent."""


class WandbApi:
    """:class:`WandbServer` on the wandb SDK: ``wandb sync`` for uploads, ``wandb.Api`` for the rest.

    Every HTTP request of ``wandb.Api`` is bounded by ``http_timeout``; an upload is given the time
    left of the caller's budget and its whole process group is killed when it runs out.
    """

    def __init__(self, *, http_timeout: float = 30.0, base_url: str | None = None) -> None:
        self.http_timeout = http_timeout
        self.base_url = (base_url or os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._client: Any = None

    def _api(self) -> Any:
        if self._client is None:
            import wandb

            self._client = wandb.Api(
                overrides={"base_url": self.base_url}, timeout=max(1, int(self.http_timeout))
            )
        return self._client

    def upload(self, run_files: Sequence[Path], *, timeout: float) -> dict[Path, str | None]:
        if not run_files:
            return {}
        # Files, not folders: `wandb sync` given a folder uploads every run it finds below it.
        command = [sys.executable, "-m", "wandb", "sync", "--yes", *(str(f) for f in run_files)]
        with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as output:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so a timeout can stop it and everything it started
                env={**os.environ, "WANDB_BASE_URL": self.base_url},
            )
            try:
                process.wait(timeout=max(timeout, 0.1))
            except subprocess.TimeoutExpired:
                stop_process_group(process)
                raise SyncTimeoutError(
                    f"`wandb sync` of {len(run_files)} run(s) did not finish within {timeout:.0f} s "
                    f"(is {self.base_url} reachable?); it was stopped, the runs stay pending"
                ) from None
            output.seek(0)
            lines = [line.strip() for line in output.read().splitlines() if line.strip()]
        said = lines[-1] if lines else f"`wandb sync` exited with code {process.returncode}"
        return {
            run_file: None if _uploaded(run_file) else f"not uploaded; `wandb sync` said: {said}"
            for run_file in run_files
        }

    def describe(self) -> ServerInfo:
        from wandb.util import api_to_app_url

        entity = self._api().default_entity
        if not entity:
            raise MirrorError(f"{self.base_url} did not say which entity the API key belongs to")
        return ServerInfo(self.base_url, entity, api_to_app_url(self.base_url))

    def logged_artifact(self, run_path: str, name: str, digest: str) -> str:
        for artifact in self._api().run(run_path).logged_artifacts():
            if artifact.name.split(":")[0] == name and artifact.digest == digest:
                return str(artifact.qualified_name)
        raise MirrorError(f"W&B run {run_path} logged no artifact {name} with digest {digest}")

    def use_artifact(self, run_path: str, artifact: str) -> None:
        api = self._api()
        api.run(run_path).use_artifact(api.artifact(artifact))

    def add_alias(self, artifact: str, alias: str) -> None:
        found = self._api().artifact(artifact)
        if alias not in found.aliases:
            found.aliases = [*found.aliases, alias]
            found.save()

    def remove_alias(self, collection: str, alias: str) -> bool:
        try:
            holder = self._api().artifact(f"{collection}:{alias}")
        except Exception:  # noqa: BLE001 - the SDK raises CommError or ValueError for "no such alias"
            return False
        holder.aliases = [a for a in holder.aliases if a != alias]
        holder.save()
        return True

    def mark_failed_checks(self, artifact: str, failed: Mapping[str, Any] | None) -> None:
        found = self._api().artifact(artifact)
        metadata = dict(found.metadata or {})
        tags = [t for t in found.tags if t != FAILED_CHECKS_TAG]
        if failed:
            metadata[FAILED_CHECKS_KEY] = dict(failed)
            tags.append(FAILED_CHECKS_TAG)
        else:
            metadata.pop(FAILED_CHECKS_KEY, None)
        found.metadata = metadata
        found.tags = tags
        found.save()

    def link(self, artifact: str, target: str, aliases: Sequence[str]) -> None:
        self._api().artifact(artifact).link(target, list(aliases))


def _uploaded(run_file: Path) -> bool:
    """``wandb sync`` marks each run file it uploaded with a ``.wandb.synced`` file beside it."""
    return run_file.with_suffix(".wandb.synced").exists()


def stop_process_group(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group, then SIGKILL whatever of it is left after a few seconds.

    (``wandb sync`` starts ``wandb-core`` in a session of its own; it exits when its parent does.)
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5.0)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
