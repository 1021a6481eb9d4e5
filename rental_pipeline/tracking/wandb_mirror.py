"""Mirroring store versions to Weights & Biases, which is the team's window on runs, not the record.

One mirror call is one W&B run that logs one artifact version, built from the store's own blob
files (``policy="immutable"``: W&B reads them where they are, with no staging copy). The
artifact's W&B digest equals the store's because both use W&B's algorithm on the same bytes. The
run is named after the version and tagged, carries the step's config, the asset's metrics in its
summary and its tables as ``wandb.Table``; a sweep's trials become runs of their own beside it.

Every run is written to disk first, as an offline run, and recorded in the ledger
(:mod:`.pending`): ``wandb sync`` uploads it later and :mod:`.wandb_sync` then adds what an offline
run cannot say (its inputs, via ``use_artifact``; alias moves; failed-check marks). Modes:
``offline`` (the default without ``WANDB_API_KEY``) leaves that to ``rental-pipeline artifacts
sync``; ``online`` (an API key, or asked for) has the mirror's worker sync right after, so a run
whose upload fails simply stays pending instead of being lost; ``disabled`` does nothing.
``WANDB_MODE`` is honoured when set.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rental_pipeline.settings import Settings
from rental_pipeline.sources import redact
from rental_pipeline.store import ArtifactStore, IntegrityError, RefLike, VersionManifest
from rental_pipeline.store.aliases import utc_now

from .errors import MirrorError
from .mirror_state import MirrorState
from .pending import TRIAL_RUN, VERSION_RUN, PendingRun, PendingRuns
from .sync_report import DEFAULT_TIMEOUT, RegistryLink, SyncReport, registry_link, settings_from
from .wandb_server import DEFAULT_BASE_URL
from .wandb_sync import WandbSync

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
Table = Mapping[str, Any]  # {"columns": [...], "data": [[...], ...]}


def resolve_mode(
    mode: str | None = None, environ: Mapping[str, str] | None = None, *, settings: Settings | None = None
) -> Mode:
    """Explicit mode, else ``WANDB_MODE``, else online with an API key, else offline (of ``environ``
    when given, else of ``settings``)."""
    given = settings_from(environ, settings)
    chosen = mode or given.wandb_mode or ("online" if given.wandb_api_key else "offline")
    try:
        return _MODE_ALIASES[chosen.strip().lower()]
    except KeyError:
        raise MirrorError(f"unknown W&B mode {chosen!r}: use offline, online or disabled") from None


def project_name(
    project: str | None = None, environ: Mapping[str, str] | None = None, *, settings: Settings | None = None
) -> str:
    """The W&B project: as given, else ``WANDB_PROJECT``, else the reference's ``nyc_airbnb``."""
    return project or settings_from(environ, settings).wandb_project or DEFAULT_PROJECT


@dataclass(frozen=True)
class MirrorResult:
    mode: Mode
    artifact: str  # the store reference that was mirrored
    run_id: str | None = None
    run_dir: Path | None = None  # the folder ``wandb sync`` uploads
    url: str | None = None  # the run's page, once uploaded
    seconds: float = 0.0
    trial_runs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trial:
    """A run with metrics only, made beside a version's run (one configuration of a sweep)."""

    name: str
    config: Mapping[str, Any]
    summary: Mapping[str, Any]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Trial:
        return cls(str(raw["name"]), dict(raw.get("config") or {}), dict(raw.get("summary") or {}))


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
    folder above the store (``$RENTAL_PIPELINE_HOME``). ``registry`` is the model registry
    collection the ``prod`` model is linked into (see :func:`.wandb_sync.registry_link`).
    """

    def __init__(
        self,
        store: ArtifactStore,
        *,
        mode: str | None = None,
        entity: str | None = None,
        wandb_dir: Path | str | None = None,
        registry: RegistryLink | str | None = None,
        sync_timeout: float = DEFAULT_TIMEOUT,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        # What is not given comes from the caller's settings (default: this process's, read now).
        self.settings = settings if settings is not None else Settings.from_environment()
        self.mode: Mode = resolve_mode(mode, settings=self.settings)
        self.entity = entity or self.settings.wandb_entity or None
        self.wandb_dir = Path(wandb_dir or self.settings.wandb_dir or store.root.resolve().parent)
        self.registry = (
            registry if isinstance(registry, RegistryLink) else registry_link(registry, settings=self.settings)
        )
        self.sync_timeout = sync_timeout
        self.pending = PendingRuns(store.root)
        self._made_runs = False

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
        summary: Mapping[str, Any] | None = None,
        tables: Mapping[str, Table] | None = None,
        line_plots: Mapping[str, Mapping[str, str]] | None = None,
        tags: Sequence[str] | None = None,
        trials: Sequence[Trial | Mapping[str, Any]] = (),
    ) -> MirrorResult:
        """Log ``version`` as an artifact of a new W&B run; ``inputs`` default to its lineage.

        ``run_id`` names the W&B run (``new_run_id()``), so a caller can say which run will hold
        the version before it exists; W&B picks one when it is empty. ``summary`` goes to the
        run summary, ``tables`` are logged as ``wandb.Table``, ``line_plots`` (``{key: {table, x, y,
        title}}``) as ``wandb.plot.line`` of two columns of one of the tables, and each of ``trials`` becomes a
        run of its own (same group and inputs, ``job_type`` suffixed ``_trial``).
        """
        started = time.perf_counter()
        manifest = self.store.get(version)
        if self.mode == "disabled":
            return MirrorResult("disabled", manifest.ref)
        import wandb

        project = project_name(project, settings=self.settings)
        input_versions = [
            self.store.get(i) for i in (manifest.inputs if inputs is None else inputs)
        ]
        input_refs = tuple(v.ref for v in input_versions)
        lineage = {
            "output": manifest.ref,
            "digest": manifest.digest,
            "inputs": list(input_refs),
            "code_version": manifest.code_version,
            "store_run_id": manifest.run_id,
        }
        aliases = list(manifest.aliases if aliases is None else aliases)
        with self.store.pinned():  # no gc between checking the blobs and recording the run
            paths = self.store.paths(manifest)
            with self._run(
                wandb, project=project, job_type=job_type, group=group, run_name=run_name,
                config={**dict(config or {}), CONFIG_KEY: lineage}, run_id=run_id, tags=tags,
            ) as run:
                self._record(
                    run, project, manifest.ref, VERSION_RUN, input_refs,
                    blobs=tuple(sorted({e.sha256 for e in manifest.files})), digest=manifest.digest,
                )
                _log_results(wandb, run, summary, tables, line_plots)
                run.log_artifact(self._draft(wandb, manifest, paths), aliases=aliases)
                result = self._result(run, manifest.ref, started)
        trial_runs = []
        for trial in trials:
            trial = trial if isinstance(trial, Trial) else Trial.from_json(trial)
            with self._run(
                wandb, project=project, job_type=f"{job_type}_trial", group=group,
                run_name=f"{manifest.ref} {trial.name}",
                config={**dict(trial.config), CONFIG_KEY: {"parent": manifest.ref, "inputs": list(input_refs)}},
                tags=[*(tags or ()), "sweep-trial"],
            ) as run:
                self._record(run, project, manifest.ref, TRIAL_RUN, input_refs)
                _log_results(wandb, run, trial.summary, None)
                trial_runs.append(run.id)
        return MirrorResult(
            result.mode, result.artifact, result.run_id, result.run_dir, result.url,
            time.perf_counter() - started, tuple(trial_runs),
        )

    def _record(
        self, run: Any, project: str, artifact: str, kind: str, inputs: tuple[str, ...], *,
        blobs: tuple[str, ...] = (), digest: str | None = None,
    ) -> None:
        """Write down a W&B run before anything is logged to it: `sync` uploads what is written
        down, and `gc` keeps the blobs it points at until then."""
        self.pending.add(
            PendingRun(
                run_id=run.id, run_dir=str(Path(run.settings.sync_dir).resolve()), project=project,
                artifact=artifact, blobs=blobs, created_at=utc_now(), kind=kind, entity=self.entity,
                digest=digest, inputs=inputs,
            )
        )

    def sync(
        self,
        *,
        force: bool = False,
        upload: bool = True,
        server: Any = None,
        timeout: float | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> SyncReport:
        """Bring W&B up to date with this store (see :mod:`.wandb_sync`)."""
        self.flush()
        return WandbSync(
            self.store, server, registry=self.registry, timeout=timeout or self.sync_timeout,
            on_progress=on_progress, settings=self.settings,
        ).run(force=force, upload=upload)

    def flush(self) -> None:
        """Make sure every run this process made is whole on disk.

        ``run.finish()`` returns before wandb's core has written the run's last records (it does
        a few milliseconds later); ``wandb.teardown()`` waits for it. Needed before uploading runs
        made by this same process; it also finishes any other W&B run this process has open.
        """
        if self._made_runs:
            import wandb

            wandb.teardown()
            self._made_runs = False

    def run_url(self, project: str, run_id: str) -> str | None:
        """The page a run will have once uploaded, when the entity and the UI address are known
        (from ``WANDB_ENTITY`` or an earlier sync); None offline or when they are not."""
        if self.mode != "online":
            return None
        base_url = (self.settings.wandb_base_url or DEFAULT_BASE_URL).rstrip("/")
        known = MirrorState(self.store.root).server(base_url)
        entity = self.entity or known.get("entity")
        app_url = known.get("app_url")
        if not (entity and app_url):
            return None
        return f"{app_url}/{entity}/{project}/runs/{run_id}"

    def _result(self, run: Any, artifact: str, started: float) -> MirrorResult:
        """Where the run can be found: its folder, until ``sync`` uploads it."""
        return MirrorResult(
            self.mode,
            artifact,
            run_id=run.id,
            run_dir=Path(run.settings.sync_dir),
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
        tags: Sequence[str] | None = None,
    ) -> Iterator[Any]:
        """A started W&B run, written offline and finished on the way out whatever happens inside."""
        self.wandb_dir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            id=run_id,
            project=project,
            entity=self.entity,
            job_type=job_type,
            group=group,
            name=run_name,
            tags=list(tags) if tags else None,
            config=dict(config),
            dir=str(self.wandb_dir),
            mode="offline",
            settings=_settings(wandb),
        )
        self._made_runs = True
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
                **redact(dict(manifest.metadata)),  # a URL a writer recorded may carry a token
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


def _log_results(
    wandb: Any,
    run: Any,
    summary: Mapping[str, Any] | None,
    tables: Mapping[str, Table] | None,
    line_plots: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Metrics into the run summary (the runs table charts them), tables as ``wandb.Table``, and
    line plots of two columns of a table as ``wandb.plot.line`` (rows missing either value left out)."""
    if summary:
        run.summary.update(dict(summary))
    for key, table in (tables or {}).items():
        run.log(
            {key: wandb.Table(columns=list(table["columns"]), data=[list(row) for row in table["data"]],
                              allow_mixed_types=True)}
        )
    for key, plot in (line_plots or {}).items():
        table = (tables or {}).get(plot["table"])
        if table is None:
            continue
        columns = list(table["columns"])
        x, y = columns.index(plot["x"]), columns.index(plot["y"])
        points = [[row[x], row[y]] for row in table["data"] if row[x] is not None and _is_value(row[y])]
        line = wandb.Table(columns=[plot["x"], plot["y"]], data=points, allow_mixed_types=True)
        run.log({key: wandb.plot.line(line, plot["x"], plot["y"], title=plot["title"])})


def _is_value(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and value != value)  # NaN is no point
