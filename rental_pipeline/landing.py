"""The landing folder: where weekly listings drops arrive, and which of them are ready to train on.

Plain functions, no Dagster: `rental_pipeline.automation` turns what they find into runs.

A drop is a `*.csv` file directly in the folder. It is ready once two looks in a row (sensor
ticks) see the same size and modification time, so a file still being copied in is left alone
until it stops growing. Writers that can should still copy to a name the folder ignores (for
example `week.csv.part` or `.week.csv`) and rename it to `week.csv` when done: a rename is atomic.

What has been started is remembered by file name with its modification time and size, so the
same file is never trained on twice, a corrected file dropped under the same name is trained on
again, and files that leave the folder are forgotten (the cursor stays as small as the folder).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from rental_pipeline.home import project_home

LANDING_VARIABLE = "RENTAL_PIPELINE_LANDING"
DROP_SUFFIX = ".csv"


def landing_folder() -> Path:
    """`$RENTAL_PIPELINE_LANDING`, else `landing/` under the project home, made absolute."""
    configured = os.environ.get(LANDING_VARIABLE)
    return Path(configured).resolve() if configured else project_home() / "landing"


@dataclass(frozen=True)
class Drop:
    """One CSV file in the landing folder, as seen at one moment."""

    path: Path
    mtime_ns: int
    size: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def signature(self) -> list[int]:
        return [self.mtime_ns, self.size]

    @property
    def run_key(self) -> str:
        """Unique per file version: the same bytes at the same place never start two runs."""
        return f"{self.path}:{self.mtime_ns}:{self.size}"


def list_drops(folder: Path) -> list[Drop]:
    """Non-empty `*.csv` files directly in `folder`, oldest first; hidden files are ignored."""
    drops = []
    for entry in os.scandir(folder):
        if entry.name.startswith(".") or not entry.name.endswith(DROP_SUFFIX):
            continue
        if not entry.is_file():
            continue
        stat = entry.stat()
        if stat.st_size == 0:
            continue
        drops.append(Drop(Path(entry.path).resolve(), stat.st_mtime_ns, stat.st_size))
    return sorted(drops, key=lambda drop: (drop.mtime_ns, drop.name))


@dataclass
class LandingCursor:
    """What the sensor remembers between ticks, by file name: `[mtime_ns, size]`."""

    started: dict[str, list[int]] = field(default_factory=dict)
    pending: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"started": self.started, "pending": self.pending}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> LandingCursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                started={str(k): [int(v[0]), int(v[1])] for k, v in data.get("started", {}).items()},
                pending={str(k): [int(v[0]), int(v[1])] for k, v in data.get("pending", {}).items()},
            )
        except (ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
            raise ValueError(f"landing sensor cursor is not valid: {text[:200]!r} ({error})") from error


@dataclass(frozen=True)
class Scan:
    ready: list[Drop]
    waiting: list[Drop]
    cursor: LandingCursor


def scan(folder: Path, cursor: LandingCursor) -> Scan:
    """The drops that became ready since the last look, those still settling, and the next cursor."""
    drops = list_drops(folder)
    present = {drop.name for drop in drops}
    started = {name: signature for name, signature in cursor.started.items() if name in present}
    pending: dict[str, list[int]] = {}
    ready: list[Drop] = []
    waiting: list[Drop] = []
    for drop in drops:
        if started.get(drop.name) == drop.signature:
            continue
        if cursor.pending.get(drop.name) == drop.signature:
            ready.append(drop)
            started[drop.name] = drop.signature
        else:
            waiting.append(drop)
            pending[drop.name] = drop.signature
    return Scan(ready=ready, waiting=waiting, cursor=LandingCursor(started=started, pending=pending))
