"""W&B mirroring in a worker process: a pipeline stores a version and moves on.

The first W&B run of a process costs most of a second (importing wandb, its launch package and
starting the wandb service); later runs a few hundredths each. That work is Python, so a thread
would only take turns with the pipeline for the interpreter lock; a worker process runs it on
another core while the pipeline goes on.

Runs go one at a time, in submission order, so W&B sees versions in the order they were stored.
The run id is chosen here when a version is submitted, so the caller can name the W&B run at once.
Online, the worker then syncs (uploads the runs, links their inputs, applies alias moves) within
the mirror's sync timeout; whatever it could not do stays queued for `artifacts sync`.
`wait()` collects every outcome; a mirror that fails loses nothing, since the store is the record.
Requests go to the worker's stdin as JSON lines and outcomes come back through a file, so neither
side can block on a full pipe; if the caller dies, the worker finishes what it was given and exits.
"""

from __future__ import annotations

import json
import secrets
import string
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rental_pipeline.processes import OWN_GROUP, stop_process_group
from rental_pipeline.store import RefLike

from .errors import MirrorError
from .wandb_mirror import MirrorResult, WandbMirror
from .wandb_sync import WandbSync

_RUN_ID_ALPHABET = string.ascii_lowercase + string.digits
WORKER_START_SECONDS = 120.0  # importing wandb and starting its service, on a busy machine
RUN_SECONDS = 30.0  # one W&B run written to disk takes well under a second


def new_run_id() -> str:
    """An id in W&B's own format (8 lowercase letters and digits), without importing wandb."""
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(8))


@dataclass(frozen=True)
class MirrorOutcome:
    artifact: str
    run_id: str
    result: MirrorResult | None = None
    error: Exception | None = None


class MirrorQueue:
    """Mirror calls of one :class:`WandbMirror`, run in order by one worker process."""

    def __init__(self, mirror: WandbMirror) -> None:
        self.mirror = mirror
        self._worker: subprocess.Popen[str] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._submitted: list[tuple[str, str]] = []
        self.sync_report: dict[str, Any] | None = None  # what the worker's sync did (online)

    @property
    def mode(self) -> str:
        return self.mirror.mode

    def submit(self, version: RefLike, **options: Any) -> str:
        """Queue ``WandbMirror.mirror(version, **options)``; returns the W&B run id it will use.

        ``options`` travel as JSON (job_type, project, group, config, inputs, aliases, run_name,
        summary, tables, line_plots, tags, trials).
        """
        artifact = str(getattr(version, "ref", version))
        run_id = new_run_id()
        request = json.dumps({"artifact": artifact, "run_id": run_id, "options": options}, default=str)
        stdin = self._start().stdin
        assert stdin is not None
        stdin.write(request + "\n")
        stdin.flush()
        self._submitted.append((artifact, run_id))
        return run_id

    def wait(self) -> list[MirrorOutcome]:
        """Block until every submitted run has finished; their outcomes, in submission order.

        Online, a worker is started even with nothing submitted when alias moves or check marks
        wait for W&B (e.g. this run moved ``prod`` but stored nothing new).
        """
        self.sync_report = None
        if self._worker is None and self.mode == "online" and WandbSync(self.mirror.store).needed():
            self._start()
        if self._worker is None or self._folder is None:
            return []
        worker, folder = self._worker, Path(self._folder.name)
        assert worker.stdin is not None
        worker.stdin.close()  # end of requests: the worker exits once they are done
        limit = self.time_limit()
        try:
            worker.wait(timeout=limit)
            how = f"exited ({worker.returncode}) first"
        except subprocess.TimeoutExpired:  # wandb stuck somewhere: the pipeline must not wait forever
            stop_process_group(worker)
            how = f"did not finish within {limit:.0f} s and was stopped; what it made stays pending"
        done, self.sync_report = _read_outcomes(folder / "outcomes.jsonl")
        problem = (folder / "stderr.txt").read_text(encoding="utf-8", errors="replace").strip()
        outcomes = [
            done.get(run_id)
            or MirrorOutcome(artifact, run_id, error=MirrorError(f"the W&B worker {how}: {problem[-2000:]}"))
            for artifact, run_id in self._submitted
        ]
        if self.sync_report is None and self.mode == "online":
            self.sync_report = {"ok": False, "lines": [f"the W&B worker {how}; `rental-pipeline artifacts sync` "
                                                       "finishes the upload"]}
        self._submitted.clear()
        self._folder.cleanup()
        self._worker = self._folder = None
        return outcomes

    def time_limit(self) -> float:
        """How long ``wait`` gives the worker: its start, each run, and online its sync."""
        sync = self.mirror.sync_timeout if self.mode == "online" else 0.0
        return WORKER_START_SECONDS + RUN_SECONDS * len(self._submitted) + sync

    def _start(self) -> subprocess.Popen[str]:
        if self._worker is None:
            self._folder = tempfile.TemporaryDirectory(prefix="wandb-mirror-")
            folder = Path(self._folder.name)
            registry = self.mirror.registry
            settings = {
                "root": self.mirror.store.location,  # a folder, or s3://...
                "local_dir": str(self.mirror.store.root),  # where this machine keeps its W&B records
                "mode": self.mirror.mode,
                "wandb_dir": str(self.mirror.wandb_dir),
                "entity": self.mirror.entity,
                "registry": None if registry is None else {
                    "target": registry.target, "alias": registry.alias, "types": list(registry.types)
                },
                "sync_timeout": self.mirror.sync_timeout,
                "outcomes": str(folder / "outcomes.jsonl"),
            }
            with open(folder / "stderr.txt", "w", encoding="utf-8") as stderr:
                self._worker = subprocess.Popen(
                    [sys.executable, "-m", "rental_pipeline.tracking.mirror_worker", json.dumps(settings)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    text=True,
                    encoding="utf-8",
                    **OWN_GROUP,  # so a stuck worker can be stopped with all it started
                )
        return self._worker


def _read_outcomes(path: Path) -> tuple[dict[str, MirrorOutcome], dict[str, Any] | None]:
    """Outcomes by run id (a later line about a run replaces an earlier one), and the sync's report."""
    outcomes, sync = {}, None
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "sync" in record:
                sync = record["sync"]
            else:
                outcomes[record["run_id"]] = _outcome(record)
    return outcomes, sync


def result_record(result: MirrorResult) -> dict[str, Any]:
    """A result as the worker writes it: JSON, read back by :func:`_outcome`."""
    return {
        "mode": result.mode,
        "artifact": result.artifact,
        "run_id": result.run_id,
        "run_dir": str(result.run_dir) if result.run_dir else None,
        "url": result.url,
        "seconds": result.seconds,
        "trial_runs": list(result.trial_runs),
    }


def _outcome(record: Mapping[str, Any]) -> MirrorOutcome:
    if "error" in record:
        return MirrorOutcome(record["artifact"], record["run_id"], error=MirrorError(record["error"]))
    result = record["result"]
    return MirrorOutcome(
        record["artifact"],
        record["run_id"],
        result=MirrorResult(
            mode=result["mode"],
            artifact=result["artifact"],
            run_id=result["run_id"],
            run_dir=Path(result["run_dir"]) if result["run_dir"] else None,
            url=result["url"],
            seconds=result["seconds"],
            trial_runs=tuple(result.get("trial_runs") or ()),
        ),
    )
