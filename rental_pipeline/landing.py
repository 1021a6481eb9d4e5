"""The landing folder: where weekly listings drops arrive, and which of them are ready to train on.

Plain functions, no Dagster: `rental_pipeline.automation` turns what they find into runs.

A drop is a `*.csv` file directly in the folder. It is ready once two looks in a row (sensor
ticks) see the same size and modification time, so a file still being copied in is left alone
until it stops growing. Writers that can should still copy to a name the folder ignores (for
example `week.csv.part` or `.week.csv`) and rename it to `week.csv` when done: a rename is atomic.

Its week is that of an ISO date in its name (`listings_2024-03-06.csv`, for a late or corrected
drop of a past week: `weeks.week_in_file_name`), else the week the sensor first saw the file, never
its modification time (a copy that keeps the original's time, `cp -p`, `rsync -a`, an unzipped
archive, landed now). A name that holds something date-like but no usable date (`2024-02-30`, a
day before the first week, `06-03-2024`) is refused: never started, reported once, and looked at
again under a new name. A drop whose week has not begun yet (`listings_2099-01-01.csv`) waits,
not started, until it has.

What has been started is remembered by file name with its modification time and size, so the
same file is never trained on twice, a corrected file dropped under the same name is trained on
again (a corrected file with the same size and modification time is not noticed: the content is
not compared), and files that leave the folder are forgotten (the cursor stays as small as the
folder).

The folder can also be a prefix of S3-compatible object storage (`s3://bucket/landing/`), for a
deployment whose machines share no disk: the drops are the `*.csv` objects directly under it,
and a run reads its drop from there. An upload is all or nothing, but the same rules apply.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
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
    """One CSV file in the landing folder, as seen at one moment; its week once `scan` found it."""

    path: Path | str  # a local path, or the object's s3:// URL
    mtime_ns: int
    size: int
    week: str | None = None  # the week it is for (`scan`): a date in its name, else when first seen

    @property
    def name(self) -> str:
        if isinstance(self.path, str):
            return self.path.partition("?")[0].rsplit("/", 1)[-1]
        return self.path.name

    @property
    def signature(self) -> list[int]:
        return [self.mtime_ns, self.size]

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
    """What the sensor remembers between ticks, by file name: what it started (`[mtime_ns, size]`),
    what it is waiting on (`[mtime_ns, size, first_seen_ns]`: when it first saw the file, the week
    of a drop with no date in its name), and the names it already reported as refused or as not
    due yet, so a tick says so once. A cursor from before first-seen times (a waiting entry of two
    numbers) still loads: such a file takes the time of the tick that finds it ready."""

    started: dict[str, list[int]] = field(default_factory=dict)
    pending: dict[str, list[int]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        data: dict[str, object] = {"started": self.started, "pending": self.pending}
        if self.refused:
            data["refused"] = sorted(self.refused)
        if self.deferred:
            data["deferred"] = sorted(self.deferred)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> LandingCursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                started={str(k): [int(v[0]), int(v[1])] for k, v in data.get("started", {}).items()},
                pending={str(k): [int(n) for n in v[:3]] for k, v in data.get("pending", {}).items() if len(v) >= 2},
                refused=[str(name) for name in data.get("refused", [])],
                deferred=[str(name) for name in data.get("deferred", [])],
            )
        except (ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
            raise ValueError(f"landing sensor cursor is not valid: {text[:200]!r} ({error})") from error


@dataclass(frozen=True)
class Refused:
    """A drop whose name holds something date-like but no usable date, and why."""

    drop: Drop
    reason: str
    new: bool  # first reported by this look (the sensor warns once)


@dataclass(frozen=True)
class Scan:
    ready: list[Drop]  # each with its week
    waiting: list[Drop]
    cursor: LandingCursor
    refused: list[Refused] = field(default_factory=list)
    not_due: list[Drop] = field(default_factory=list)  # ready, but for a week that has not begun
    newly_not_due: list[str] = field(default_factory=list)  # their names, first seen so this look


def scan(
    folder: Path | str,
    cursor: LandingCursor,
    settings: Settings | None = None,
    *,
    last_week: str | None = None,
    now_ns: int | None = None,
) -> Scan:
    """The drops that became ready since the last look, those still settling, those refused, those
    for a week after ``last_week`` (the week under way: not started, still waiting), and the next
    cursor. ``now_ns`` is the time of this look (default: now)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    drops = list_drops(folder, settings)
    present = {drop.name for drop in drops}
    started = {name: signature for name, signature in cursor.started.items() if name in present}
    pending: dict[str, list[int]] = {}
    ready: list[Drop] = []
    waiting: list[Drop] = []
    refused: list[Refused] = []
    not_due: list[Drop] = []
    for drop in drops:
        if started.get(drop.name) == drop.signature:
            continue
        try:
            named = week_in_file_name(drop.name)
        except ValueError as error:
            refused.append(Refused(drop, str(error), new=drop.name not in cursor.refused))
            continue
        before = cursor.pending.get(drop.name)
        # When the sensor first saw the file: kept while it settles, unknown (None) for a file an
        # old cursor was waiting on, now for a file seen for the first time.
        first_seen = (before[2] if len(before) > 2 else None) if before else now_ns
        if before is None or before[:2] != drop.signature:
            waiting.append(drop)
            pending[drop.name] = [*drop.signature, first_seen if first_seen is not None else now_ns]
            continue
        landed = datetime.fromtimestamp((first_seen or now_ns) / 1e9, tz=timezone.utc)
        drop = replace(drop, week=named or week_of(landed))
        if last_week is not None and drop.week > last_week:
            not_due.append(drop)  # its week has not begun: it stays waiting, ready when it has
            pending[drop.name] = [*drop.signature, first_seen or now_ns]
            continue
        ready.append(drop)
        started[drop.name] = drop.signature
    next_cursor = LandingCursor(
        started=started,
        pending=pending,
        refused=[r.drop.name for r in refused],
        deferred=[drop.name for drop in not_due],
    )
    newly_not_due = [drop.name for drop in not_due if drop.name not in cursor.deferred]
    return Scan(ready, waiting, next_cursor, refused, not_due, newly_not_due)
