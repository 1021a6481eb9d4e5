"""The Weights & Biases mirror of the artifact store: W&B is the team's window on runs, the store
is the record.

The store knows nothing of W&B. The mirror reads it, keeps its own records on each machine in the
store's local folder (:mod:`.layout`), and follows it:

- in a Dagster run, a :class:`~.run_tracker.WandbRunTracker` listens to the run's store (the
  code location names it in ``ArtifactIOManager.trackers``; the IO manager subscribes one per run
  and imports nothing from here). Every version the run saves, by whichever writer, goes to a
  :class:`MirrorQueue`, and a worker process writes its W&B run (:mod:`.wandb_mirror`,
  :mod:`.mirror_worker`). What only Dagster knows (the asset's metrics, tables and trials, the run
  id) reaches the tracker through the IO manager's ``RunTracker`` calls (``describe`` before the
  write, ``shown`` for the asset page's ``wandb_run``, ``finish`` at teardown), turned into what
  the W&B run shows by :mod:`.wandb_view`; a version another writer stored is shown from its
  manifest's facts and config;
- ``sync`` (:mod:`.wandb_sync`, :mod:`.wandb_replay`) uploads those runs and replays what the
  store's logs say W&B has not seen yet (alias moves, failed-check flags), through one adapter to
  the server (:mod:`.wandb_server`);
- a store listener applies alias moves made by hand at once (:mod:`.cli`), and ``gc``/``verify``
  keep and check the blobs unsynced runs point at (:mod:`.maintenance`).

Nothing here imports wandb or Dagster until it is used (``wandb_view`` and ``run_tracker`` need
Dagster: import them by name).
"""

from .errors import MirrorError
from .maintenance import MirrorGcReport, collect_garbage, verify_store
from .mirror_queue import MirrorOutcome, MirrorQueue, new_run_id
from .mirror_state import MirrorState
from .pending import PendingRun, PendingRuns
from .sync_report import RegistryLink, SyncReport, registry_link
from .wandb_mirror import MirrorResult, Trial, WandbMirror, project_name, resolve_mode
from .wandb_server import ServerInfo, WandbApi, WandbServer
from .wandb_sync import WandbSync

__all__ = [
    "MirrorError",
    "MirrorGcReport",
    "MirrorOutcome",
    "MirrorQueue",
    "MirrorResult",
    "MirrorState",
    "PendingRun",
    "PendingRuns",
    "RegistryLink",
    "ServerInfo",
    "SyncReport",
    "Trial",
    "WandbApi",
    "WandbMirror",
    "WandbServer",
    "WandbSync",
    "collect_garbage",
    "new_run_id",
    "project_name",
    "registry_link",
    "resolve_mode",
    "verify_store",
]
