"""W&B tracking of one Dagster run: a listener on the run's store, like a Kedro dataset hook.

The IO manager makes one tracker per run and subscribes it to the run's store as the run starts
(``ArtifactIOManager.trackers``, chosen by the code location in ``definitions.py``). From then on
the store tells it of everything the run commits, whoever writes it:

- a **new version** (``version_saved``) is queued for its W&B run at once (:class:`.MirrorQueue`),
  while the run goes on;
- **alias moves** (``prod`` by the promotion, ``reference`` by the drift check) and **failed-check
  flags** are left in the store's logs, which the sync replays: online, the worker syncs them at
  the end of the run; offline, ``rental-pipeline artifacts sync`` does.

The store knows nothing of Dagster, so what only Dagster knows of an output comes through one small
channel: the IO manager calls :meth:`WandbRunTracker.describe` with the output's context just
before it stores the value (the asset's metrics and tables for the run summary, the step config),
and :meth:`WandbRunTracker.shown` after, for the ``wandb_run`` entry of the asset page. A version
written by any other writer of the run (an asset that writes to the store itself) is mirrored too,
from what its manifest records (its facts and config) and the run's id; a version whose manifest
names another Dagster run is that run's tracker's to mirror, should two runs share a store object.
:meth:`finish`, at the IO manager's teardown, waits for the W&B runs and logs where each landed.

What reaches W&B goes through :func:`rental_pipeline.sources.redact`, as the IO manager's own
records do: a manifest another writer made holds that writer's text, and a URL in it may carry a
token. The tracker never fails the write it hears of: the version is committed by then and the
store is the record, so a version it cannot queue is shown and logged as not mirrored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from rental_pipeline.sources import redact
from rental_pipeline.store import ArtifactStore, StoreListener, VersionManifest

from . import wandb_view
from .mirror_queue import MirrorQueue
from .sync_report import DEFAULT_TIMEOUT
from .wandb_mirror import WandbMirror, project_name

RUN_KEY = "wandb_run"  # the asset page's entry for the version's W&B run


class WandbRunTracker(StoreListener):
    """Mirrors what one Dagster run commits to its store; see the module's docstring."""

    def __init__(
        self,
        store: ArtifactStore,
        dagster_run_id: str,
        *,
        mode: str | None = None,
        project: str | None = None,
        registry: str | None = None,
        sync_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.store = store
        self.run_id = dagster_run_id
        self.project = project_name(project)
        self.queue = MirrorQueue(WandbMirror(store, mode=mode, registry=registry, sync_timeout=sync_timeout))
        # Outputs described and not yet stored, by artifact name: (Dagster metadata, step config).
        self._described: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
        self._links: dict[str, Any] = {}  # version ref -> what the asset page shows of its W&B run
        self._failed: dict[str, str] = {}  # version ref -> why it could not be queued for W&B

    @classmethod
    def start(cls, store: ArtifactStore, dagster_run_id: str, config: Mapping[str, Any]) -> WandbRunTracker:
        """The tracker of run ``dagster_run_id``, from the IO manager's config (its ``wandb_*`` fields)."""
        return cls(
            store,
            dagster_run_id,
            mode=config.get("wandb_mode"),
            project=config.get("wandb_project"),
            registry=config.get("wandb_registry"),
            sync_timeout=float(config.get("wandb_sync_timeout") or DEFAULT_TIMEOUT),
        )

    # -- what the IO manager tells it ---------------------------------------------------------

    def describe(self, name: str, context: dg.OutputContext, config: Mapping[str, Any]) -> None:
        """What Dagster knows of the output about to be stored as ``name``: its metadata and its
        step's config."""
        self._described[name] = (context.output_metadata, config)

    def shown(self, version: VersionManifest, created: bool) -> dict[str, Any]:
        """The asset page's ``wandb_run``: the run's link or folder, or why there is none."""
        self._described.pop(version.name, None)
        if version.ref in self._links:
            return {RUN_KEY: self._links[version.ref]}
        if not created:
            return {RUN_KEY: f"unchanged: {version.ref} was mirrored when first written"}
        if self.queue.mode == "disabled":
            return {RUN_KEY: "not mirrored (W&B disabled)"}
        return {RUN_KEY: "not mirrored: this run's tracker did not hear of the version"}

    def finish(self, log: Any) -> None:
        """Wait for the run's W&B runs (online, and for the sync); log where each landed."""
        for ref, problem in self._failed.items():
            log.warning(f"W&B could not mirror {ref} (it stays stored): {problem}")
        self._failed.clear()
        log_outcomes(self.queue, log)

    # -- what the store tells it --------------------------------------------------------------

    def version_saved(self, version: VersionManifest, created: bool) -> None:
        described = self._described.pop(version.name, None)
        if not created or self.queue.mode == "disabled":
            return
        if version.run_id not in (None, self.run_id):  # another run's write on a store object both use
            return
        if described is None:  # another writer of the run: what the version itself records
            facts, config = version.metadata.get("facts"), version.metadata.get("config")
            described = (facts if isinstance(facts, Mapping) else {}, config if isinstance(config, Mapping) else {})
        metadata, config = described
        try:
            view = redact(wandb_view.run_options(self.store, version, self.run_id, metadata, config))
            run_id = self.queue.submit(
                version, job_type=version.name, project=self.project, group=self.run_id, config=redact(config), **view
            )
        except Exception as error:  # noqa: BLE001 - the version is committed; W&B is only its mirror
            problem = redact(f"{type(error).__name__}: {error}")
            self._failed[version.ref] = problem
            self._links[version.ref] = f"not mirrored: {problem}"
            return
        self._links[version.ref] = wandb_view.run_link(self.queue.mirror, self.project, run_id)


def log_outcomes(queue: MirrorQueue, log: Any) -> None:
    """Wait for a queue's W&B runs; log where each landed and, online, what the upload did."""
    for outcome in queue.wait():
        if outcome.error is not None:
            log.warning(
                f"W&B run {outcome.run_id} could not mirror {outcome.artifact} (it stays stored): {outcome.error}"
            )
        elif outcome.result is not None:
            where = outcome.result.url or outcome.result.run_dir or outcome.result.mode
            log.info(f"W&B run {outcome.run_id} holds {outcome.artifact}: {where}")
    report = queue.sync_report
    if report is not None:
        (log.info if report.get("ok") else log.warning)("W&B sync: " + "\n".join(report.get("lines", [])))
