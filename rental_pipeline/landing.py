"""The landing folder: where weekly listings drops arrive, and which of them are ready to train on.

Plain functions, no Dagster: `rental_pipeline.automation` turns what they find into runs.

A drop is a `*.csv` file directly in the folder, for the week a date in its name falls in
(`listings_2024-03-06.csv`), else the week it landed in. It is ready once two looks in a row (sensor
ticks) see the same size and modification time, so a file still being copied in is left alone
until it stops growing. Writers that can should still copy to a name the folder ignores (for
example `week.csv.part` or `.week.csv`) and rename it to `week.csv` when done: a rename is atomic.

What has been started is remembered by file name with its modification time and size, so the
same file is never trained on twice, a corrected file dropped under the same name is trained on
again, and files that leave the folder are forgotten (the cursor stays as small as the folder).

The folder can also be a prefix of S3-compatible object storage (`s3://bucket/landing/`), for a
deployment whose machines share no disk: the drops are the `*.csv` objects directly under it,
and a run reads its drop from there. An upload is all or nothing, but the same rules apply.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rental_pipeline.settings import LANDING_VARIABLE as LANDING_VARIABLE
from rental_pipeline.settings import Settings
from rental_pipeline.store.backend import S3_SCHEME
from rental_pipeline.weeks import week_in_file_name, week_of

DROP_SUFFIX = ".csv"


def landing_folder(settings: Settings | None = None) -> Path | str:
    """`$RENTAL_PIPELINE_LANDING` (a folder, made absolute, or an `s3://bucket/prefix/`), else
    `landing/` under the project home; read now when no settings are given."""
    settings = settings or Settings.from_environment()
    configured = settings.landing
    if configured and configured.startswith(S3_SCHEME):
        base, sep, query = configured.partition("?")
        return base.rstrip("/") + "/" + sep + query
    return Path(configured).resolve() if configured else settings.home / "landing"


def folder_exists(folder: Path | str) -> bool:
    """A local folder must exist; an object-storage prefix always does (it may hold nothing)."""
    return isinstance(folder, str) or folder.is_dir()


@dataclass(frozen=True)
class Drop:
    """One CSV file in the landing folder, as seen at one moment."""

    path: Path | str  # a local path, or the object's s3:// URL
    mtime_ns: int
    size: int

    @property
    def name(self) -> str:
        if isinstance(self.path, str):
            return self.path.partition("?")[0].rsplit("/", 1)[-1]
        return self.path.name

    @property
    def signature(self) -> list[int]:
        return [self.mtime_ns, self.size]

    @property
    def week(self) -> str:
        """The week the drop is for: a date in its name (`listings_2024-03-06.csv`, for a late or
        corrected drop of a past week), else the week it landed in."""
        landed = datetime.fromtimestamp(self.mtime_ns / 1e9, tz=timezone.utc)
        return week_in_file_name(self.name) or week_of(landed)

    @property
    def run_key(self) -> str:
        """Unique per file version: the same bytes at the same place never start two runs."""
        return f"{self.path}:{self.mtime_ns}:{self.size}"


def list_drops(folder: Path | str, settings: Settings | None = None) -> list[Drop]:
    """Non-empty `*.csv` files directly in `folder`, oldest first; hidden files are ignored. A prefix
    on object storage is listed with the S3 region and endpoint of ``settings`` (default: read now)
    where it names none."""
    if isinstance(folder, str):
        return _list_object_drops(folder, settings or Settings.from_environment())
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


def _list_object_drops(prefix: str, settings: Settings) -> list[Drop]:
    from rental_pipeline.store.s3_backend import list_objects

    base, _, query = prefix.partition("?")
    options = f"?{query}" if query else ""  # an endpoint given in the prefix is needed to read the drop too
    drops = [
        Drop(f"{base}{info.key}{options}", int(info.modified * 1e9), info.size)
        for info in list_objects(prefix, region=settings.s3_region, endpoint_url=settings.s3_endpoint_url)
        if not info.key.startswith(".") and info.key.endswith(DROP_SUFFIX) and info.size > 0
    ]
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


def scan(folder: Path | str, cursor: LandingCursor, settings: Settings | None = None) -> Scan:
    """The drops that became ready since the last look, those still settling, and the next cursor."""
    drops = list_drops(folder, settings)
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
