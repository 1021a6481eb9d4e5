"""W&B mirroring off the caller's thread: a pipeline stores a version and moves on.

The first W&B run of a process costs most of a second (importing wandb, its launch package and
starting the wandb service); later runs cost a few hundredths. Done inline, that second is added
to the first step that makes a new version. On a worker thread it overlaps the steps that follow,
which mostly wait on files, SQLite and numerical code that releases the interpreter lock.

Runs go one at a time, in submission order, so W&B sees versions in the order they were stored.
The run id is chosen here when a version is submitted, so the caller can name the W&B run at once.
`wait()` collects every outcome; a mirror that fails loses nothing, since the store is the record.
"""

from __future__ import annotations

import secrets
import string
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .store import RefLike
from .wandb_mirror import MirrorResult, WandbMirror

_RUN_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_run_id() -> str:
    """An id in W&B's own format (8 lowercase letters and digits), without importing wandb."""
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(8))


@dataclass(frozen=True)
class MirrorOutcome:
    artifact: str
    run_id: str
    result: MirrorResult | None = None
    error: BaseException | None = None


class MirrorQueue:
    """Mirror calls of one :class:`WandbMirror`, run in order on a single worker thread."""

    def __init__(self, mirror: WandbMirror) -> None:
        self.mirror = mirror
        self._pool: ThreadPoolExecutor | None = None
        self._submitted: list[tuple[str, str, Future[MirrorResult]]] = []

    @property
    def mode(self) -> str:
        return self.mirror.mode

    def submit(self, version: RefLike, **options: Any) -> str:
        """Queue ``WandbMirror.mirror(version, **options)``; returns the W&B run id it will use."""
        run_id = new_run_id()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wandb-mirror")
        future = self._pool.submit(self.mirror.mirror, version, run_id=run_id, **options)
        self._submitted.append((str(getattr(version, "ref", version)), run_id, future))
        return run_id

    def wait(self) -> list[MirrorOutcome]:
        """Block until every submitted run has finished; their outcomes, in submission order."""
        outcomes = [_outcome(artifact, run_id, future) for artifact, run_id, future in self._submitted]
        self._submitted.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        return outcomes


def _outcome(artifact: str, run_id: str, future: Future[MirrorResult]) -> MirrorOutcome:
    try:
        return MirrorOutcome(artifact, run_id, result=future.result())
    except Exception as error:  # noqa: BLE001 - reported to the caller, who decides how loud
        return MirrorOutcome(artifact, run_id, error=error)
