"""Reading W&B offline runs back, and a stand-in for the W&B server at the mirror's adapter.

``offline_run`` decodes what an offline run really recorded (its ``.wandb`` file and media), the
way ``wandb sync`` would replay it. ``StandInWandb`` implements the mirror's ``WandbServer``
interface in memory: no W&B server is reachable where the tests run. It is an object, not a local
HTTP fake, because the boundary the project owns is that interface: the wandb SDK speaks GraphQL
and a private protocol to its Go core, and faking those would test a copy of W&B's server rather
than the mirror. The stand-in keeps the server's rules that the mirror relies on: an upload makes
a version per new digest in each collection, an alias is held by one version of a collection at
a time, ``use_artifact`` and ``link`` are idempotent, and uploads read the blobs the run points
at (so a blob removed too early fails the upload, as it would for real).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rental_pipeline.tracking import MirrorError, ServerInfo


def wandb_records(path: Path) -> Iterator[Any]:
    """Records of a ``.wandb`` file, decoded with wandb's own protobuf classes.

    wandb 0.31 writes the file from its Go core and ships no Python reader (the old
    ``wandb/sdk/internal/datastore.py`` is gone), so this follows that reader's format: a 7-byte
    header (``:W&B``, magic, version), then LevelDB-log records in 32 KiB blocks, each with a
    crc32, a length and a FULL/FIRST/MIDDLE/LAST type.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0)
    offset, pending = 7, b""
    while offset < len(data):
        if 32768 - offset % 32768 < 7:  # block trailer padding
            offset += 32768 - offset % 32768
            continue
        checksum, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == 0 and length == 0:
            continue
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == checksum
        pending += chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


@dataclass
class LoggedArtifact:
    name: str
    type: str
    digest: str
    aliases: list[str]
    files: dict[str, tuple[str, str]]  # path -> (entry digest, local path)
    metadata: dict[str, Any]


@dataclass
class OfflineRun:
    """What one offline run recorded: what a W&B user sees of it once it is uploaded."""

    run_id: str
    run_dir: Path
    project: str
    entity: str
    job_type: str
    name: str
    group: str
    tags: list[str]
    config: dict[str, Any]
    summary: dict[str, Any]
    artifacts: list[LoggedArtifact]
    tables: dict[str, dict[str, Any]]  # summary key -> {"columns": [...], "data": [[...]]}

    @property
    def output(self) -> LoggedArtifact:
        """The pipeline artifact the run logged (W&B's own run tables left out)."""
        (found,) = [a for a in self.artifacts if a.type != "run_table"]
        return found


def whole_records(path: Path, timeout: float = 300.0) -> list[Any]:
    """The records once the run's ``exit`` record is written: wandb's core writes a run's last
    records a few milliseconds after ``run.finish()`` returns (longer on a loaded machine).

    Waits for that record itself; a file read while a record is half written is read again.
    ``timeout`` only bounds a run that never ends, which is a failure, never a partial answer.
    """
    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + timeout
    while True:
        try:
            records = list(wandb_records(path))
        except (AssertionError, struct.error, DecodeError):  # the core is still writing the last record
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: the run never wrote its exit record ({len(records)} records read)")
        time.sleep(0.01)


def offline_run(run_dir: Path) -> OfflineRun:
    (wandb_file,) = run_dir.glob("run-*.wandb")
    run: Any = None
    summary: dict[str, Any] = {}
    artifacts: list[LoggedArtifact] = []
    for record in whole_records(wandb_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
        elif kind == "summary":
            for item in record.summary.update:
                keys = list(item.nested_key) or [item.key]
                target = summary
                for key in keys[:-1]:
                    target = target.setdefault(key, {})
                target[keys[-1]] = json.loads(item.value_json)
        elif kind == "artifact":
            a = record.artifact
            artifacts.append(
                LoggedArtifact(
                    a.name, a.type, a.digest, list(a.aliases),
                    {e.path: (e.digest, e.local_path) for e in a.manifest.contents},
                    json.loads(a.metadata) if a.metadata else {},
                )
            )
    assert run is not None, f"{wandb_file} has no run record"
    tables = {
        key: json.loads((run_dir / "files" / value["path"]).read_text())
        for key, value in summary.items()
        if isinstance(value, dict) and value.get("_type") == "table-file"
    }
    return OfflineRun(
        run_id=run.run_id,
        run_dir=run_dir,
        project=run.project,
        entity=run.entity,
        job_type=run.job_type,
        name=run.display_name,
        group=run.run_group,
        tags=list(run.tags),
        config={item.key: json.loads(item.value_json) for item in run.config.update},
        summary=summary,
        artifacts=artifacts,
        tables=tables,
    )


def offline_runs(wandb_dir: Path) -> dict[str, OfflineRun]:
    """Every offline run under a ``WANDB_DIR``, by run id."""
    return {run.run_id: run for run in map(offline_run, sorted(wandb_dir.rglob("offline-run-*")))}


@dataclass
class Version:
    collection: str  # entity/project/name
    number: int
    type: str
    digest: str
    logged_by: str  # run path
    aliases: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.collection}:v{self.number}"


class StandInWandb:
    """An in-memory W&B server behind the ``WandbServer`` interface (see the module docstring)."""

    base_url = "https://api.wandb.stand-in"

    def __init__(self, entity: str = "team") -> None:
        self.entity = entity
        self.runs: dict[str, OfflineRun] = {}  # run path -> what was uploaded
        self.versions: dict[str, list[Version]] = {}  # collection -> versions
        self.used: dict[str, set[str]] = {}  # run path -> qualified names it declared as inputs
        self.registry: dict[str, dict[str, set[str]]] = {}  # target -> linked version -> aliases
        self.calls: list[tuple[str, ...]] = []
        self.failing: dict[str, int] = {}  # method -> how many more calls fail
        self.reachable = True

    # -- the WandbServer interface --------------------------------------------------------------

    def upload(self, run_files: Sequence[Path], *, timeout: float) -> dict[Path, str | None]:
        self._enter("upload", *map(str, run_files))
        results: dict[Path, str | None] = {}
        for run_file in run_files:
            run = offline_run(run_file.parent)
            problem = self._missing_bytes(run)
            if problem:
                results[run_file] = problem
                continue
            path = f"{run.entity or self.entity}/{run.project}/{run.run_id}"
            self.runs[path] = run
            for artifact in run.artifacts:
                if artifact.type == "run_table":
                    continue
                version = self._version(f"{run.entity or self.entity}/{run.project}/{artifact.name}", artifact, path)
                for alias in artifact.aliases:
                    self._put_alias(version, alias)
            run_file.with_suffix(".wandb.synced").touch()  # as `wandb sync` marks it
            results[run_file] = None
        return results

    def describe(self, *, timeout: float) -> ServerInfo:
        self._enter("describe")
        return ServerInfo(self.base_url, self.entity, "https://wandb.stand-in")

    def logged_artifact(self, run_path: str, name: str, digest: str, *, timeout: float) -> str:
        self._enter("logged_artifact", run_path, name)
        for versions in self.versions.values():
            for version in versions:
                mine = version.logged_by == run_path and version.collection.endswith(f"/{name}")
                if mine and version.digest == digest:
                    return version.qualified_name
        raise MirrorError(f"run {run_path} logged no {name} with digest {digest}")

    def use_artifact(self, run_path: str, artifact: str, *, timeout: float) -> None:
        self._enter("use_artifact", run_path, artifact)
        if run_path not in self.runs:
            raise MirrorError(f"no run {run_path}")
        self.used.setdefault(run_path, set()).add(self.version(artifact).qualified_name)

    def add_alias(self, artifact: str, alias: str, *, timeout: float) -> None:
        self._enter("add_alias", artifact, alias)
        self._put_alias(self.version(artifact), alias)

    def remove_alias(self, collection: str, alias: str, *, timeout: float) -> bool:
        self._enter("remove_alias", collection, alias)
        if collection in self.registry:
            holders = [v for v, aliases in self.registry[collection].items() if alias in aliases]
            for holder in holders:
                self.registry[collection][holder].discard(alias)
            return bool(holders)
        holders = [v for v in self.versions.get(collection, []) if alias in v.aliases]
        for holder in holders:
            holder.aliases.discard(alias)
        return bool(holders)

    def mark_failed_checks(self, artifact: str, failed: Mapping[str, Any] | None, *, timeout: float) -> None:
        self._enter("mark_failed_checks", artifact)
        version = self.version(artifact)
        if failed:
            version.metadata["failed_checks"] = dict(failed)
            version.tags.add("failed-checks")
        else:
            version.metadata.pop("failed_checks", None)
            version.tags.discard("failed-checks")

    def link(self, artifact: str, target: str, aliases: Sequence[str], *, timeout: float) -> None:
        self._enter("link", artifact, target, *aliases)
        linked = self.registry.setdefault(target, {})
        name = self.version(artifact).qualified_name
        for alias in aliases:  # an alias names one member of a registry collection too
            for others in linked.values():
                others.discard(alias)
        linked.setdefault(name, set()).update(aliases)

    def close(self) -> None:
        """Nothing to release."""

    # -- what a W&B user would see --------------------------------------------------------------

    def version(self, qualified: str) -> Version:
        collection, _, selector = qualified.rpartition(":")
        for version in self.versions.get(collection, []):
            if selector == f"v{version.number}" or selector in version.aliases:
                return version
        raise MirrorError(f"no artifact {qualified}")

    def holder(self, collection: str, alias: str) -> str | None:
        found = [v.qualified_name for v in self.versions.get(collection, []) if alias in v.aliases]
        assert len(found) <= 1, f"{alias} on several versions of {collection}: {found}"
        return found[0] if found else None

    def producer(self, qualified: str) -> str:
        return self.version(qualified).logged_by

    # -- internals -------------------------------------------------------------------------------

    def _enter(self, method: str, *args: str) -> None:
        self.calls.append((method, *args))
        if not self.reachable:
            raise ConnectionError(f"{self.base_url} is unreachable")
        if self.failing.get(method):
            self.failing[method] -= 1
            raise MirrorError(f"the stand-in refused {method} on purpose")

    def _missing_bytes(self, run: OfflineRun) -> str | None:
        """What `wandb sync` would hit: a file the run points at that is gone or changed."""
        for artifact in run.artifacts:
            for path, (digest, local) in artifact.files.items():
                try:
                    data = Path(local).read_bytes()
                except FileNotFoundError:
                    return f"{artifact.name}: {path} is gone from {local}"
                if base64.b64encode(hashlib.md5(data).digest()).decode() != digest:
                    return f"{artifact.name}: {path} does not match its digest"
        return None

    def _version(self, collection: str, artifact: LoggedArtifact, run_path: str) -> Version:
        versions = self.versions.setdefault(collection, [])
        for version in versions:
            if version.digest == artifact.digest:
                return version
        version = Version(collection, len(versions), artifact.type, artifact.digest, run_path,
                          metadata=dict(artifact.metadata))
        versions.append(version)
        return version

    def _put_alias(self, version: Version, alias: str) -> None:
        for other in self.versions[version.collection]:
            other.aliases.discard(alias)
        version.aliases.add(alias)
