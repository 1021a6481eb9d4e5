"""The process behind :class:`~rental_pipeline.store.mirror_queue.MirrorQueue`.

    python -m rental_pipeline.store.mirror_worker STORE_ROOT MODE WANDB_DIR ENTITY OUTCOMES_FILE

Reads one JSON request per line on stdin, makes one W&B run for each, in order, and appends each
outcome to OUTCOMES_FILE as soon as it is known; exits at the end of stdin.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Any

from .mirror_queue import result_record
from .store import ArtifactStore
from .wandb_mirror import WandbMirror


def _serve(requests: IO[str], mirror: WandbMirror, outcomes: Path) -> None:
    """The worker: one W&B run per request line, each outcome appended as soon as it is known."""
    with open(outcomes, "a", encoding="utf-8") as out:
        for line in requests:
            request = json.loads(line)
            record: dict[str, Any] = {"artifact": request["artifact"], "run_id": request["run_id"]}
            try:
                result = mirror.mirror(request["artifact"], run_id=request["run_id"], **request["options"])
                record["result"] = result_record(result)
            except Exception as error:  # noqa: BLE001 - reported to the caller, who decides how loud
                record["error"] = f"{type(error).__name__}: {error}"
            out.write(json.dumps(record) + "\n")
            out.flush()


def main(argv: list[str]) -> int:
    root, mode, wandb_dir, entity, outcomes = argv
    mirror = WandbMirror(ArtifactStore(root), mode=mode, wandb_dir=wandb_dir, entity=entity or None)
    _serve(sys.stdin, mirror, Path(outcomes))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("WANDB_SILENT", "true")
    sys.exit(main(sys.argv[1:]))
