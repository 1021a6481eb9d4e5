"""Mirroring store versions to Weights & Biases, which is the team's window on runs, not the record.

One mirror call is one W&B run that logs one artifact version, built from the store's own blob
files (``policy="immutable"``: W&B reads them where they are, with no staging copy). The
artifact's W&B digest equals the store's because both use W&B's algorithm on the same bytes.

Modes: ``offline`` (the default without ``WANDB_API_KEY``) writes ``offline-run-*`` folders for
``wandb sync`` and records each as pending (so ``gc`` keeps the blobs it points at); ``online``
(an API key, or asked for) uploads at once and declares inputs with ``run.use_artifact``, which
offline mode cannot do, so offline the lineage lives in the run config; ``disabled`` does nothing.
``WANDB_MODE`` is honoured when set.

Only online, a version missing locally can be fetched from W&B, checked against the digests W&B
reports, and imported into the store.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .aliases import utc_now
from .digest import artifact_digest, hash_file
from .errors import ArtifactNotFoundError, IntegrityError, MirrorError
from .manifest import VersionManifest
from .names import parse_ref
from .pending import PendingRun, PendingRuns
from .store import ArtifactStore, RefLike, WriteResult

Mode = Literal["offline", "online", "disabled"]
DEFAULT_PROJECT = "nyc_airbnb"
CONFIG_KEY = "artifact_store"  # run config section holding the lineage
_MODE_ALIASES: dict[str, Mode] = {
    "offline": "offline",
    "dryrun": "offline",
    "online": "online",
    "run": "online",
    "disabled": "disabled",
}


def resolve_mode(mode: str | None = None, environ: Mapping[str, str] | None = None) -> Mode:
    """Explicit mode, else ``WANDB_MODE``, else online with an API key, else offline."""
    environ = os.environ if environ is None else environ
    chosen = (
        mode
        or environ.get("WANDB_MODE")
        or ("online" if environ.get("WANDB_API_KEY") else "offline")
    )
    try:
        return _MODE_ALIASES[chosen.strip().lower()]
    except KeyError:
        raise MirrorError(f"unknown W&B mode {chosen!r}: use offline, online or disabled") from None


def project_name(project: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The W&B project: as given, else ``WANDB_PROJECT``, else the reference's ``nyc_airbnb``."""
    environ = os.environ if environ is None else environ
    return project or environ.get("WANDB_PROJECT") or DEFAULT_PROJECT


def has_credentials(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``wandb sync`` can authenticate without asking: an API key in the environment."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("WANDB_API_KEY"))


@dataclass(frozen=True)
class MirrorResult:
    mode: Mode
    artifact: str  # the store reference that was mirrored
    run_id: str | None = None
    run_dir: Path | None = None  # offline: the folder ``wandb sync`` uploads
    url: str | None = None  # online: the run's page
    seconds: float = 0.0


@dataclass
class SyncReport:
    pending: list[PendingRun] = field(default_factory=list)
    synced: list[PendingRun] = field(default_factory=list)
    failed: list[tuple[PendingRun, str]] = field(default_factory=list)
    skipped_reason: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def _settings(wandb: Any) -> Any:
    """Quiet, quick runs: no console capture, system metrics, git or code snapshots."""
    return wandb.Settings(
        silent=True,
        console="off",
        x_disable_stats=True,
        x_disable_meta=True,
        x_disable_machine_info=True,
        disable_git=True,
        save_code=False,
        disable_job_creation=True,
        x_save_requirements=False,
        reinit="create_new",  # never touch a run the caller may have open
    )


class WandbMirror:
    """Mirrors versions of one :class:`ArtifactStore` to W&B.

    ``wandb_dir`` is where ``wandb/offline-run-*`` folders go: ``WANDB_DIR`` if set, else the
    folder above the store (``$RENTAL_PIPELINE_HOME``). ``api_factory`` builds the public API
    client for online fetches; it exists so tests can stand in for the unreachable server.
    """

    def __init__(
        self,
        store: ArtifactStore,
        *,
        mode: str | None = None,
        entity: str | None = None,
        wandb_dir: Path | str | None = None,
        api_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.store = store
        self.mode: Mode = resolve_mode(mode)
        self.entity = entity or os.environ.get("WANDB_ENTITY") or None
        self.wandb_dir = Path(
            wandb_dir or os.environ.get("WANDB_DIR") or store.root.resolve().parent
        )
        self._api_factory = api_factory
        self.pending = PendingRuns(store.root)

    def mirror(
        self,
        version: RefLike,
        *,
        job_type: str,
        project: str | None = None,
        group: str | None = None,
        inputs: Iterable[RefLike] | None = None,
        config: Mapping[str, Any] | None = None,
        aliases: Sequence[str] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> MirrorResult:
        """Log ``version`` as an artifact of a new W&B run; ``inputs`` default to its lineage.

        ``run_id`` names the W&B run (``new_run_id()``), so a caller can say which run will hold
        the version before it exists; W&B picks one when it is empty.
        """
        started = time.perf_counter()
        manifest = self.store.get(version)
        if self.mode == "disabled":
            return MirrorResult("disabled", manifest.ref)
        import wandb

        project = project_name(project)
        input_versions = [
            self.store.get(i) for i in (manifest.inputs if inputs is None else inputs)
        ]
        run_config = {
            **dict(config or {}),
            CONFIG_KEY: {
                "output": manifest.ref,
                "digest": manifest.digest,
                "inputs": [v.ref for v in input_versions],
                "code_version": manifest.code_version,
                "store_run_id": manifest.run_id,
            },
        }
        aliases = list(manifest.aliases if aliases is None else aliases)
        with self.store.pinned():  # no gc between checking the blobs and recording the run
            paths = self.store.paths(manifest)
            with self._run(
                wandb, project=project, job_type=job_type, group=group, run_name=run_name, config=run_config,
                run_id=run_id,
            ) as run:
                run_dir = Path(run.settings.sync_dir)
                if self.mode == "offline":
                    self.pending.add(
                        PendingRun(
                            run_id=run.id,
                            run_dir=str(run_dir.resolve()),
                            project=project,
                            artifact=manifest.ref,
                            blobs=tuple(sorted({e.sha256 for e in manifest.files})),
                            created_at=utc_now(),
                        )
                    )
                else:
                    for used in input_versions:
                        run.use_artifact(self._draft(wandb, used, self.store.paths(used)))
                artifact = self._draft(wandb, manifest, paths)
                run.log_artifact(artifact, aliases=aliases)
                if self.mode == "online":
                    artifact.wait()
                result = self._result(run, manifest.ref, started)
        return result

    def record_run(
        self,
        *,
        job_type: str,
        config: Mapping[str, Any],
        summary: Mapping[str, float],
        project: str | None = None,
        group: str | None = None,
        run_name: str | None = None,
    ) -> MirrorResult:
        """One W&B run carrying only config and summary metrics (e.g. one trial of a sweep)."""
        started = time.perf_counter()
        if self.mode == "disabled":
            return MirrorResult("disabled", "")
        import wandb

        with self._run(
            wandb,
            project=project_name(project),
            job_type=job_type,
            group=group,
            run_name=run_name,
            config=dict(config),
        ) as run:
            run.summary.update(dict(summary))
            result = self._result(run, "", started)
        return result

    def _result(self, run: Any, artifact: str, started: float) -> MirrorResult:
        """Where the run can be found: its folder offline (for `wandb sync`), its page online."""
        offline = self.mode == "offline"
        return MirrorResult(
            self.mode,
            artifact,
            run_id=run.id,
            run_dir=Path(run.settings.sync_dir) if offline else None,
            url=None if offline else run.url,
            seconds=time.perf_counter() - started,
        )

    @contextlib.contextmanager
    def _run(
        self,
        wandb: Any,
        *,
        project: str,
        job_type: str,
        group: str | None,
        run_name: str | None,
        config: Mapping[str, Any],
        run_id: str | None = None,
    ) -> Iterator[Any]:
        """A started W&B run, finished on the way out whatever happens inside."""
        self.wandb_dir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            id=run_id,
            project=project,
            entity=self.entity,
            job_type=job_type,
            group=group,
            name=run_name,
            config=dict(config),
            dir=str(self.wandb_dir),
            mode=self.mode,
            settings=_settings(wandb),
        )
        try:
            yield run
        finally:
            run.finish()

    @staticmethod
    def _draft(wandb: Any, manifest: VersionManifest, paths: Mapping[str, Path]) -> Any:
        artifact = wandb.Artifact(
            manifest.name,
            type=manifest.type,
            description=manifest.description or None,
            metadata={
                **dict(manifest.metadata),
                CONFIG_KEY: {
                    "ref": manifest.ref,
                    "created_at": manifest.created_at,
                    "inputs": list(manifest.inputs),
                    "code_version": manifest.code_version,
                },
            },
        )
        for entry in manifest.files:
            artifact.add_file(str(paths[entry.path]), name=entry.path, policy="immutable")
        if artifact.digest != manifest.digest:  # same bytes, same algorithm: cannot differ
            raise IntegrityError(
                f"{manifest.ref}: W&B computed digest {artifact.digest}, "
                f"the store has {manifest.digest}"
            )
        return artifact

    # -- online only -----------------------------------------------------------------------

    def ensure_local(self, ref: str, *, project: str | None = None) -> VersionManifest:
        """The local version for ``ref``; online, fetch it from W&B first if the store lacks it."""
        try:
            return self.store.get(ref)
        except ArtifactNotFoundError:
            if self.mode != "online":
                raise
        return self.fetch(ref, project=project).version

    def fetch(self, ref: str, *, project: str | None = None) -> WriteResult:
        """Download a W&B artifact version, check every file and the digest, import it.

        The imported version gets the next local version number (W&B's number may differ); its
        metadata records the W&B name it came from and the lineage W&B had for it.
        """
        if self.mode != "online":
            raise MirrorError(
                f"cannot fetch {ref} from W&B in {self.mode} mode: W&B offline mode cannot read "
                "artifacts back; set WANDB_API_KEY (online mode) or restore the store"
            )
        parsed = parse_ref(ref)
        selector = f"v{parsed.version}" if parsed.version is not None else parsed.alias
        project = project_name(project)
        qualified = "/".join(p for p in (self.entity, project, f"{parsed.name}:{selector}") if p)
        api = self._api_factory() if self._api_factory else _public_api()
        try:
            remote = api.artifact(qualified)
        except Exception as exc:  # the client raises various errors for missing artifacts
            raise ArtifactNotFoundError(f"W&B has no artifact {qualified}: {exc}") from exc

        files: dict[str, bytes] = {}
        with tempfile.TemporaryDirectory(prefix="rental-pipeline-fetch-") as tmp:
            root = Path(remote.download(root=tmp))
            for path, entry in remote.manifest.entries.items():
                local = root / path
                if not local.is_file():
                    raise IntegrityError(
                        f"W&B artifact {qualified}: file {path!r} was not downloaded"
                    )
                if hash_file(local).entry_digest != entry.digest:
                    raise IntegrityError(
                        f"W&B artifact {qualified}: file {path!r} does not match its digest"
                    )
                files[path] = local.read_bytes()
        computed = artifact_digest(
            (path, entry.digest) for path, entry in remote.manifest.entries.items()
        )
        if computed != remote.digest:
            raise IntegrityError(
                f"W&B artifact {qualified}: files give digest {computed}, W&B says {remote.digest}"
            )

        metadata = dict(remote.metadata or {})
        lineage = metadata.pop(CONFIG_KEY, None)
        metadata["imported_from"] = {
            "wandb": getattr(remote, "qualified_name", qualified),
            "lineage": lineage,
        }
        return self.store.write(
            parsed.name,
            files,
            type=remote.type,
            description=remote.description or "",
            metadata=metadata,
        )

    # -- syncing offline runs --------------------------------------------------------------

    def sync(
        self,
        *,
        force: bool = False,
        runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    ) -> SyncReport:
        """Upload pending offline runs with ``wandb sync`` when credentials exist.

        Without ``WANDB_API_KEY`` nothing is attempted (``wandb sync`` would stop to ask for a
        login); the report says what is pending and why. ``force`` tries anyway, e.g. after
        ``wandb login`` stored a key elsewhere.
        """
        report = SyncReport(pending=self.pending.all())
        if not report.pending:
            return report
        if not (force or has_credentials()):
            report.skipped_reason = (
                "no W&B credentials (WANDB_API_KEY is not set); the runs stay pending and their "
                "blobs are kept. Set WANDB_API_KEY, or log in and pass --force"
            )
            return report
        for run in report.pending:
            if not Path(run.run_dir).is_dir():
                report.failed.append((run, f"run folder {run.run_dir} no longer exists"))
                continue
            done = runner(
                [sys.executable, "-m", "wandb", "sync", run.run_dir],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode == 0:
                self.pending.mark_synced(run.run_id)
                report.synced.append(run)
            else:
                detail = (done.stderr or done.stdout or "").strip().splitlines()
                report.failed.append(
                    (run, detail[-1] if detail else f"exit code {done.returncode}")
                )
        return report


def _public_api() -> Any:
    import wandb

    return wandb.Api()
