"""Where the mirror keeps its records: on each machine, in the store's local folder.

    <store root, or its local_dir for s3://...>/mirror/
      pending/<run_id>.json             W&B offline runs not yet synced (and their blobs)
      synced/<run_id>.json              the same records once ``wandb sync`` succeeded
      state/<name>.json                 alias moves and failed checks W&B already has
      server.json                       the W&B entity and address the last sync learnt
      sync.lock                         one ``sync`` at a time

These are files on this machine, not store keys: the offline runs they describe are folders here.
"""

from __future__ import annotations

from pathlib import Path

PENDING_RUNS = "pending"
SYNCED_RUNS = "synced"
MIRROR_STATE = "state"
WANDB_SERVER = "server.json"
SYNC_LOCK = "sync.lock"


def mirror_path(local_dir: Path, entry: str) -> Path:
    """Where a W&B record of this machine lives: ``entry`` is one of the names above."""
    return local_dir / "mirror" / entry
