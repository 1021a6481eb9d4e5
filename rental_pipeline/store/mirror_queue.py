"""W&B mirroring in a worker process: a pipeline stores a version and moves on.

The first W&B run of a process costs most of a second (importing wandb, its launch package and
starting the wandb service); later runs a few hundredths each. That work is Python, so a thread
would only take turns with the pipeline for the interpreter lock; a worker process runs it on
another core while the pipeline goes on.

Runs go one at a time, in submission order, so W&B sees versions in the order they were stored.
The run id is chosen here when a version is submitted, so the caller can name the W&B run at once.
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

from .errors import MirrorError
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
    error: Exception | None = None


class MirrorQueue:
    """Mirror calls of one :class:`WandbMirror`, run in order by one worker process."""

    def __init__(self, mirror: WandbMirror) -> None:
        self.mirror = mirror
        self._worker: subprocess.Popen[str] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._submitted: list[tuple[str, str]] = []

    @property
    def mode(self) -> str:
        return self.mirror.mode

    def submit(self, version: RefLike, **options: Any) -> str:
        """Queue ``WandbMirror.mirror(version, **options)``; returns the W&B run id it will use.

        ``options`` travel as JSON (job_type, project, group, config, inputs, aliases, run_name).
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
        """Block until every submitted run has finished; their outcomes, in submission order."""
        if self._worker is None or self._folder is None:
            return []
        worker, folder = self._worker, Path(self._folder.name)
        assert worker.stdin is not None
        worker.stdin.close()  # end of requests: the worker exits once they are done
        worker.wait()
        done = _read_outcomes(folder / "outcomes.jsonl")
        problem = (folder / "stderr.txt").read_text(encoding="utf-8", errors="replace").strip()
        outcomes = [
            done.get(run_id)
            or MirrorOutcome(
                artifact, run_id,
                error=MirrorError(f"the W&B worker exited ({worker.returncode}) first: {problem[-2000:]}"),
            )
            for artifact, run_id in self._submitted
        ]
        self._submitted.clear()
        self._folder.cleanup()
        self._worker = self._folder = None
        return outcomes

    def _start(self) -> subprocess.Popen[str]:
        if self._worker is None:
            self._folder = tempfile.TemporaryDirectory(prefix="wandb-mirror-")
            folder = Path(self._folder.name)
            with open(folder / "stderr.txt", "w", encoding="utf-8") as stderr:
                self._worker = subprocess.Popen(
                    [
                        sys.executable, "-m", "rental_pipeline.store.mirror_worker",
                        self.mirror.store.location, self.mirror.mode,
                        str(self.mirror.wandb_dir), self.mirror.entity or "", str(folder / "outcomes.jsonl"),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    text=True,
                    encoding="utf-8",
                )
        return self._worker


def _read_outcomes(path: Path) -> dict[str, MirrorOutcome]:
    outcomes = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            outcomes[record["run_id"]] = _outcome(record)
    return outcomes


def result_record(result: MirrorResult) -> dict[str, Any]:
    """A result as the worker writes it: JSON, read back by :func:`_outcome`."""
    return {
        "mode": result.mode,
        "artifact": result.artifact,
        "run_id": result.run_id,
        "run_dir": str(result.run_dir) if result.run_dir else None,
        "url": result.url,
        "seconds": result.seconds,
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
        ),
    )
