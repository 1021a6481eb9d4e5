"""The one place the mirror talks to a W&B server.

The mirror writes every W&B run to disk first (an offline run) and keeps its own ledger, so all
of it works with no network. What needs a server is uploading those runs and changing what W&B
shows afterwards: input links, aliases, failed-check marks, the model registry. Those calls are
the methods of :class:`WandbServer`, implemented with the wandb SDK by :class:`WandbApi` and
kept thin, with no decisions in them. The tests run the rest of the mirror against a stand-in
with this interface, because no W&B server is reachable where they run; the SDK calls made here
are therefore not exercised against a live server (docs/testing.md lists them).

The SDK has hung here in ways no timeout of its own catches (a process stuck at exit after a
refused connection), so :class:`WandbApi` makes every call in a helper process of its own and
stops it when the caller's time is up; ``wandb sync`` runs in its own process too. The process
that syncs never imports wandb, so nothing of wandb is left in it to hang.

Artifacts are named as W&B does: ``entity/project/name:vK`` for a version, ``entity/project/name``
for a collection, ``wandb-registry-REGISTRY/COLLECTION`` for a registry collection.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rental_pipeline.processes import OWN_GROUP, stop_process_group
from rental_pipeline.settings import Settings

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

    def describe(self, *, timeout: float) -> ServerInfo:
        """The key's default entity and the UI's address."""

    def logged_artifact(self, run_path: str, name: str, digest: str, *, timeout: float) -> str:
        """The W&B version (``entity/project/name:vK``) that run ``run_path`` logged with ``digest``."""

    def use_artifact(self, run_path: str, artifact: str, *, timeout: float) -> None:
        """Declare ``artifact`` an input of the run (a lineage edge); idempotent."""

    def add_alias(self, artifact: str, alias: str, *, timeout: float) -> None:
        """Put ``alias`` on ``artifact``; W&B takes it off any other version of the collection."""

    def remove_alias(self, collection: str, alias: str, *, timeout: float) -> bool:
        """Take ``alias`` off whichever version of ``collection`` holds it; False if none did."""

    def mark_failed_checks(self, artifact: str, failed: Mapping[str, Any] | None, *, timeout: float) -> None:
        """Record failed checks in the version's metadata and tag it, or clear both (``None``)."""

    def link(self, artifact: str, target: str, aliases: Sequence[str], *, timeout: float) -> None:
        """Link ``artifact`` into a registry collection with ``aliases``; idempotent."""

    def close(self) -> None:
        """Release what the calls needed (connections, helper processes)."""


class WandbApi:
    """:class:`WandbServer` on the wandb SDK: ``wandb sync`` for uploads, ``wandb.Api`` for the rest,
    each in a process of its own that is stopped, with everything it started, when its time is up.

    ``http_timeout`` bounds each HTTP request ``wandb.Api`` makes; ``timeout`` bounds a whole call.
    """

    def __init__(self, *, http_timeout: float = 30.0, base_url: str | None = None) -> None:
        self.http_timeout = http_timeout
        # The caller's (from its settings, `WANDB_BASE_URL`); none: the settings of this process now.
        base_url = base_url or Settings.from_environment().wandb_base_url
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._helper: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._buffer = b""

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
                **OWN_GROUP,  # so a timeout can stop it and everything it started
                env=self._environment(),
            )
            try:
                process.wait(timeout=max(timeout, 0.1))
            except BaseException as stopped:  # a timeout, or Ctrl-C: it is in a session of its own
                stop_process_group(process)
                if not isinstance(stopped, subprocess.TimeoutExpired):
                    raise
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

    def describe(self, *, timeout: float) -> ServerInfo:
        return ServerInfo(**self._call("describe", [], timeout))

    def logged_artifact(self, run_path: str, name: str, digest: str, *, timeout: float) -> str:
        return str(self._call("logged_artifact", [run_path, name, digest], timeout))

    def use_artifact(self, run_path: str, artifact: str, *, timeout: float) -> None:
        self._call("use_artifact", [run_path, artifact], timeout)

    def add_alias(self, artifact: str, alias: str, *, timeout: float) -> None:
        self._call("add_alias", [artifact, alias], timeout)

    def remove_alias(self, collection: str, alias: str, *, timeout: float) -> bool:
        return bool(self._call("remove_alias", [collection, alias], timeout))

    def mark_failed_checks(self, artifact: str, failed: Mapping[str, Any] | None, *, timeout: float) -> None:
        self._call("mark_failed_checks", [artifact, dict(failed) if failed else None], timeout)

    def link(self, artifact: str, target: str, aliases: Sequence[str], *, timeout: float) -> None:
        self._call("link", [artifact, target, list(aliases)], timeout)

    def close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is None:
            return
        assert helper.stdin is not None
        with contextlib.suppress(OSError):
            helper.stdin.close()  # end of calls: the helper exits
        try:
            helper.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            stop_process_group(helper)
        self._stderr.close()

    # -- the helper process ------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        # Not a read of settings: the whole environment is handed on to the child (wandb reads its
        # API key and the rest from it), with the server this process chose and wandb kept quiet.
        return {**os.environ, "WANDB_BASE_URL": self.base_url, "WANDB_SILENT": "true"}

    def _call(self, method: str, args: list[Any], timeout: float) -> Any:
        helper = self._start()
        assert helper.stdin is not None
        request = {"method": method, "args": args, "http_timeout": max(1, int(min(self.http_timeout, timeout)))}
        try:
            helper.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            helper.stdin.flush()
            answer = json.loads(self._read_line(helper, timeout))
        except SyncTimeoutError:
            self._helper = None
            stop_process_group(helper)
            raise SyncTimeoutError(
                f"W&B ({self.base_url}) did not answer {method} within {timeout:.0f} s; the call was stopped"
            ) from None
        except (OSError, ValueError) as error:
            self._helper = None
            stop_process_group(helper)
            self._stderr.seek(0)
            said = self._stderr.read().decode("utf-8", "replace").strip().splitlines()[-1:] or ["nothing"]
            raise ServerCallError(f"the W&B helper process failed ({error}); it said: {said[0]}") from None
        if "error" in answer:
            raise ServerCallError(answer["error"])
        return answer["ok"]

    def _start(self) -> subprocess.Popen[bytes]:
        if self._helper is None or self._helper.poll() is not None:
            self._stderr = tempfile.TemporaryFile()
            self._buffer = b""
            self._helper = subprocess.Popen(
                [sys.executable, "-m", "rental_pipeline.tracking.wandb_server"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                **OWN_GROUP,
                env=self._environment(),
            )
        return self._helper

    def _read_line(self, helper: subprocess.Popen[bytes], timeout: float) -> bytes:
        assert helper.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SyncTimeoutError(f"no answer within {timeout:.0f} s")
            ready, _, _ = select.select([helper.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(helper.stdout.fileno(), 65536)
            if not chunk:
                raise OSError("it exited before answering")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


class ServerCallError(MirrorError):
    """W&B (or the SDK) refused a call; the message is the SDK's error, with its type."""


class _SdkCalls:
    """The calls themselves, made with ``wandb.Api`` inside the helper process."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url  # the one the parent chose and handed to wandb (WANDB_BASE_URL)
        self._client: Any = None
        self._timeout = 0

    def api(self, http_timeout: int) -> Any:
        if self._client is None or http_timeout != self._timeout:
            import wandb

            self._client = wandb.Api(timeout=http_timeout)
            self._timeout = http_timeout
        return self._client

    def describe(self, api: Any) -> dict[str, str]:
        from wandb.util import api_to_app_url

        base_url = self.base_url
        entity = api.default_entity
        if not entity:
            raise MirrorError(f"{base_url} did not say which entity the API key belongs to")
        return {"base_url": base_url, "entity": entity, "app_url": api_to_app_url(base_url)}

    def logged_artifact(self, api: Any, run_path: str, name: str, digest: str) -> str:
        for artifact in api.run(run_path).logged_artifacts():
            if artifact.name.split(":")[0] == name and artifact.digest == digest:
                return str(artifact.qualified_name)
        raise MirrorError(f"W&B run {run_path} logged no artifact {name} with digest {digest}")

    def use_artifact(self, api: Any, run_path: str, artifact: str) -> None:
        api.run(run_path).use_artifact(api.artifact(artifact))

    def add_alias(self, api: Any, artifact: str, alias: str) -> None:
        found = api.artifact(artifact)
        if alias not in found.aliases:
            found.aliases = [*found.aliases, alias]
            found.save()

    def remove_alias(self, api: Any, collection: str, alias: str) -> bool:
        try:
            holder = api.artifact(f"{collection}:{alias}")
        except Exception:  # noqa: BLE001 - the SDK raises CommError or ValueError for "no such alias"
            return False
        holder.aliases = [a for a in holder.aliases if a != alias]
        holder.save()
        return True

    def mark_failed_checks(self, api: Any, artifact: str, failed: Mapping[str, Any] | None) -> None:
        found = api.artifact(artifact)
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

    def link(self, api: Any, artifact: str, target: str, aliases: list[str]) -> None:
        api.artifact(artifact).link(target, aliases)


def _serve() -> None:
    """The helper: one JSON call per stdin line, one JSON answer per stdout line."""
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever wandb prints goes to stderr, never into the answers
    # The helper's edge: its settings, where the parent put the server it chose (WANDB_BASE_URL).
    calls = _SdkCalls(Settings.from_environment().wandb_base_url or DEFAULT_BASE_URL)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            method = getattr(calls, request["method"])
            result = method(calls.api(request["http_timeout"]), *request["args"])
            answer: dict[str, Any] = {"ok": result}
        except Exception as error:  # noqa: BLE001 - every failure goes back to the caller
            answer = {"error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def _uploaded(run_file: Path) -> bool:
    """``wandb sync`` marks each run file it uploaded with a ``.wandb.synced`` file beside it."""
    return run_file.with_suffix(".wandb.synced").exists()


if __name__ == "__main__":
    _serve()
