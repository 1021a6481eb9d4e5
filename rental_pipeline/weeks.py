"""Weeks: how a weekly drop is named, stored and combined into a training window.

The listings arrive as one bulk drop a week. Each week is a partition of `raw_data` and
`clean_sample`, keyed by the date of the Monday that starts it (`2024-03-04`). In the store a
week is an artifact of its own, `<asset>.<week>` (`raw_data.2024-03-04:v0`, then `:v1` when a
corrected drop for that week arrives), the convention dagster-wandb uses for partitioned assets,
so a week's history and its W&B artifact are found by its name. A run that names no week keeps
the plain names (`raw_data:vN`), as before weeks existed.

Training on a window of K weeks keeps one row per listing (the most recent week's row wins) and
is scored on the newest week's listings it did not train on: the newest week is split exactly as
a single week is (so K = 1 is the single-week protocol, figure for figure), and older weeks add
training rows only for listings the newest week does not hold.

Nothing here knows Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where frames are combined: loading the code location reads names only
    import pandas as pd

    from rental_pipeline.store import ArtifactStore, VersionManifest

# Mondays from here on are partitions: before the public 2019 sample's last reviews, so a real
# drop of that era has its week, and few enough weeks for the UI to list them all.
FIRST_WEEK = "2019-01-07"
WEEK_FORMAT = "%Y-%m-%d"
# Separates an asset from its week in a store name; never part of an asset name (identifiers).
PARTITION_SEPARATOR = "."
# The manifest metadata entry naming the week a version holds.
PARTITION_KEY = "partition"
# A date in a drop's file name is a whole token (no digit right before or after it), tried at every
# place it could start: an ISO date, `2024-03-06` or `20240306` (a `Y` group, `M`, `D`).
_DATE_IN_NAME = re.compile(r"(?=(?<!\d)(?P<Y>\d{4})(?P<sep>-?)(?P<M>\d\d)(?P=sep)(?P<D>\d\d)(?!\d))")
# Something that looks like a date but is not written as one a drop may use: day or month first
# (`06-03-2024`, `6.3.2024`: ambiguous), an unpadded or otherwise separated year first
# (`2024-3-6`, `2024_03_06`). A name holding one of these and no usable ISO date is refused.
_DATE_LIKE_IN_NAME = re.compile(
    r"(?=(?<!\d)(?P<date>\d{1,2}(?P<a>[-_.])\d{1,2}(?P=a)(?:19|20)\d\d|(?:19|20)\d\d(?P<b>[-_.])\d{1,2}(?P=b)\d{1,2})(?!\d))"
)


# The flag the clean checks put on a version once their whole verdict is recorded on it (check ->
# the run that judged it): without it, no `failed_checks` flag means "not judged yet", not "passed".
JUDGED_FLAG = "judged_checks"
VERDICT_CHECK = "borough_drift"


# The weekly asset of an artifact in Dagster: `weekly_raw_data` partitioned by week, beside the
# plain, unpartitioned `raw_data`; its week is stored as `raw_data.<week>`.
WEEKLY_PREFIX = "weekly_"


def store_name(asset: str, week: str | None) -> str:
    """The store's name for ``asset`` (plain or weekly) in ``week``; the plain name with no week."""
    return f"{asset.removeprefix(WEEKLY_PREFIX)}{PARTITION_SEPARATOR}{week}" if week else asset


def dagster_asset(name: str) -> str:
    """The Dagster asset a store name belongs to: `weekly_raw_data` for `raw_data.<week>`."""
    asset, week = split_name(name)
    return f"{WEEKLY_PREFIX}{asset}" if week else asset


def split_name(name: str) -> tuple[str, str | None]:
    """(asset, week or None) of a store name made by `store_name`."""
    asset, sep, week = name.partition(PARTITION_SEPARATOR)
    return (asset, week) if sep else (name, None)


def week_of(day: date | datetime) -> str:
    """The week holding ``day``: the date of its Monday."""
    if isinstance(day, datetime):
        day = day.date()
    return (day - timedelta(days=day.weekday())).strftime(WEEK_FORMAT)


def parse_week(text: str) -> date:
    """A week key as a date; a clear error for anything that is not a Monday at or after FIRST_WEEK."""
    try:
        day = datetime.strptime(text, WEEK_FORMAT).date()
    except ValueError:
        raise ValueError(f"week {text!r} is not a date like 2024-03-04 (the Monday that starts it)") from None
    if day.weekday() != 0:
        raise ValueError(f"week {text!r} is a {day:%A}: a week is named by its Monday, here {week_of(day)}")
    if day < date.fromisoformat(FIRST_WEEK):
        raise ValueError(f"week {text!r} is before the first week, {FIRST_WEEK}")
    return day


def week_in_file_name(file_name: str) -> str | None:
    """The week of a date written in a drop's file name (`listings_2024-03-06.csv`), or None for a
    name with no date in it.

    A date is a whole token (`id_1202403061.csv` holds none) written as ISO does, `2024-03-06` or
    `20240306`; every candidate is tried, left to right, and the first real day on or after
    FIRST_WEEK wins (`nyc_2023-2024_2024-03-06.csv` is the week of 2024-03-04). A name that holds
    something date-like but no usable date raises ValueError saying why: a day that does not exist
    (`2024-02-30`), a day before FIRST_WEEK, or a form that is not ISO (`06-03-2024` could be March
    or June; `2024-3-6`). Guessing, or falling back on the file's time, would put the drop in the
    wrong week without anyone noticing."""
    problems: list[str] = []
    tried: set[int] = set()
    for match in _DATE_IN_NAME.finditer(file_name):
        tried.add(match.start())
        text = f"{match['Y']}{match['sep']}{match['M']}{match['sep']}{match['D']}"
        if not match["sep"] and match["Y"][:2] not in ("19", "20"):
            continue  # eight digits that do not start like a year: an id, not a date
        try:
            day = date(int(match["Y"]), int(match["M"]), int(match["D"]))
        except ValueError:
            problems.append(f"{text} is not a day of the calendar")
            continue
        if day < date.fromisoformat(FIRST_WEEK):  # dates, not strings: "999-06-10" sorts after "2019"
            problems.append(f"{text} is before the first week, {FIRST_WEEK}")
            continue
        return week_of(day)
    for match in _DATE_LIKE_IN_NAME.finditer(file_name):
        if match.start() in tried:
            continue  # an ISO date, judged above
        problems.append(f"{match['date']} is not an ISO date (write YYYY-MM-DD, e.g. 2024-03-06)")
    if problems:
        raise ValueError(f"{file_name}: {'; '.join(dict.fromkeys(problems))}")
    return None


def weeks_before(week: str, count: int) -> list[str]:
    """``count`` weeks ending with ``week``, oldest first (never before FIRST_WEEK, however large
    ``count`` is)."""
    newest = parse_week(week)
    count = min(count, (newest - parse_week(FIRST_WEEK)).days // 7 + 1)
    return [(newest - timedelta(weeks=back)).strftime(WEEK_FORMAT) for back in range(count - 1, -1, -1)]


def week_index(week: str) -> int:
    """Weeks since FIRST_WEEK (0 for the first)."""
    return (parse_week(week) - parse_week(FIRST_WEEK)).days // 7


def dedupe_latest(frames: Mapping[str, pd.DataFrame], key: str = "id") -> pd.DataFrame:
    """One row per listing from several weeks' frames (week -> frame): the newest week's row wins.
    Rows keep their week's order, newest week first."""
    import pandas as pd

    ordered = [frames[week] for week in sorted(frames, reverse=True)]
    if not ordered:
        raise ValueError("no weeks to combine")
    combined = pd.concat(ordered, ignore_index=True)
    return combined.drop_duplicates(subset=[key], keep="first").reset_index(drop=True)


def window_trainval(
    newest_trainval: pd.DataFrame,
    newest: pd.DataFrame,
    older: Mapping[str, pd.DataFrame],
    key: str = "id",
) -> pd.DataFrame:
    """The training side of a window: the newest week's training rows, then one row per listing
    from the older weeks (``older``: week -> clean frame) for listings the newest week does not
    hold, so no listing of the newest week's test side is trained on, and none counts twice."""
    import pandas as pd

    if not older:
        return newest_trainval
    earlier = dedupe_latest(older, key)
    earlier = earlier[~earlier[key].isin(newest[key])]
    return pd.concat([newest_trainval, earlier], ignore_index=True)


def window_summary(names: Sequence[str], trainval: pd.DataFrame, newest_trainval: pd.DataFrame) -> dict[str, object]:
    """What a window of weeks (their store names) was made of, for the asset page and the manifest."""
    return {
        "window_weeks": ", ".join(str(split_name(name)[1] or name) for name in names),
        "window_rows_from_older_weeks": int(len(trainval) - len(newest_trainval)),
    }


def reference_holder(store: ArtifactStore, name: str, alias: str = "reference") -> str:
    """The store name whose ``alias`` (`reference`) store name ``name`` is compared with: for a
    week, the newest week up to it holding one (`reference_week`), else the plain asset's."""
    asset, week = split_name(name)
    if week is not None:
        held = reference_week([n for n in store.names() if store.exists(f"{n}:{alias}")], asset, week)
        if held is not None:
            return held
    return asset


def reference_week(names: Sequence[str], asset: str, week: str) -> str | None:
    """Of the store names holding a reference (``names``), the newest week of ``asset`` up to
    ``week``: the reference a week's drift is measured against, so a reference accepted in week N
    applies from week N on and an earlier week is still judged as it was."""
    held = [w for name in names for a, w in [split_name(name)] if a == asset and w is not None and w <= week]
    return store_name(asset, max(held)) if held else None


def trainable(version: VersionManifest) -> bool:
    """Whether a week's clean listings may be trained on: their verdict is in (`borough_drift`, the
    check that weighs every other rule's outcome, is in `JUDGED_FLAG`) and no check's latest
    verdict failed. A version whose checks are still running, never ran (its run was killed), or
    are being judged again has no such entry, and is not trusted for lacking a failure flag."""
    from rental_pipeline.store import FAILED_CHECKS_FLAG

    judged = version.flags.get(JUDGED_FLAG) or {}
    return VERDICT_CHECK in judged and not version.flags.get(FAILED_CHECKS_FLAG)


def newest_trainable_week(store: ArtifactStore, asset: str = "clean_sample") -> str | None:
    """The newest week of ``asset`` in ``store`` whose latest version is `trainable`: the week a
    retraining names, so a week whose checks failed, or have not been judged, never becomes what a
    model is trained and scored on (an older week is)."""
    weeks = sorted((w for n in store.names() for a, w in [split_name(n)] if a == asset and w), reverse=True)
    for week in weeks:
        if trainable(store.get(f"{store_name(asset, week)}:latest")):
            return week
    return None
