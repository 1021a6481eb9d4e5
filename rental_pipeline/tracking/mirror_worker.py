"""The process behind :class:`~rental_pipeline.tracking.mirror_queue.MirrorQueue`.

    python -m rental_pipeline.tracking.mirror_worker SETTINGS_JSON

Reads one JSON request per line on stdin, makes one W&B run for each (plus one per sweep trial),
in order, and appends each outcome to the settings' ``outcomes`` file as soon as it is known. At
the end of stdin, online, it syncs with W&B within ``sync_timeout`` seconds, then appends each
uploaded run's outcome again with its page, and the sync's report; then it exits.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Any

from rental_pipeline.home import open_store

from .mirror_queue import result_record
from .sync_report import RegistryLink
from .wandb_mirror import MirrorResult, WandbMirror


def _serve(requests: IO[str], mirror: WandbMirror, outcomes: Path) -> None:
    """The worker: W&B runs for each request line, each outcome appended as soon as it is known."""
    made: dict[str, tuple[str, MirrorResult]] = {}
    with open(outcomes, "a", encoding="utf-8") as out:
        for line in requests:
            request = json.loads(line)
            record: dict[str, Any] = {"artifact": request["artifact"], "run_id": request["run_id"]}
            try:
                result = mirror.mirror(request["artifact"], run_id=request["run_id"], **request["options"])
                record["result"] = result_record(result)
                made[request["run_id"]] = (request["artifact"], result)
            except Exception as error:  # noqa: BLE001 - reported to the caller, who decides how loud
                record["error"] = f"{type(error).__name__}: {error}"
            out.write(json.dumps(record) + "\n")
            out.flush()
        if mirror.mode != "online":
            return
        try:
            report = mirror.sync(force=True)  # online was asked for: try even with a stored login
        except Exception as error:  # noqa: BLE001 - the runs stay pending; the caller logs why
            failed = {"ok": False, "lines": [f"W&B sync failed: {type(error).__name__}: {error}"]}
            out.write(json.dumps({"sync": failed}) + "\n")
            return
        if report.server is not None:
            for run in report.uploaded:
                if run.run_id in made and run.run_path:
                    artifact, result = made[run.run_id]
                    uploaded = MirrorResult(
                        result.mode, result.artifact, result.run_id, result.run_dir,
                        report.server.run_url(run.run_path), result.seconds, result.trial_runs,
                    )
                    out.write(json.dumps({"artifact": artifact, "run_id": run.run_id,
                                          "result": result_record(uploaded)}) + "\n")
        out.write(json.dumps({"sync": {**report.to_json(), "lines": report.lines()}}) + "\n")


def main(argv: list[str]) -> int:
    (raw,) = argv
    settings = json.loads(raw)
    registry = settings.get("registry")
    mirror = WandbMirror(
        open_store(settings["root"], local_dir=settings.get("local_dir")),
        mode=settings["mode"],
        wandb_dir=settings["wandb_dir"],
        entity=settings.get("entity") or None,
        registry=RegistryLink(registry["target"], registry["alias"], tuple(registry["types"])) if registry else "none",
        sync_timeout=float(settings["sync_timeout"]),
    )
    _serve(sys.stdin, mirror, Path(settings["outcomes"]))
    return 0


if __name__ == "__main__":
    # Not a read of settings: a variable set for wandb, which reads it.
    os.environ.setdefault("WANDB_SILENT", "true")
    sys.exit(main(sys.argv[1:]))
