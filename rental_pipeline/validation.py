"""The data checks as plain functions: frames in, a `CheckOutcome` out, no Dagster.

The reference project ran these as pytest data tests between cleaning and splitting. Here they
are functions the Dagster asset checks call, so each rule can be tested on a small frame, and a
failure always comes back in the same shape: the rule, how many rows break it, the first
failure cases as a table, and one sentence saying what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pandera.pandas as pa
import scipy.stats

from rental_pipeline.cleaning import CleaningRules, inside_nyc_box
from rental_pipeline.listings import BOROUGHS

MAX_FAILURE_CASES = 20
ROWS_NAMED = 5


@dataclass(frozen=True)
class CheckOutcome:
    """One rule judged on one frame.

    `warning` marks a failure that must be seen but must not stop the pipeline (a drift that
    could not be measured because there is nothing to compare with yet).
    """

    rule: str
    passed: bool
    message: str
    failing_rows: int = 0
    failure_cases: pd.DataFrame = field(default_factory=pd.DataFrame)
    facts: Mapping[str, Any] = field(default_factory=dict)
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    warning: bool = False


def _passed(rule: str, message: str) -> CheckOutcome:
    return CheckOutcome(rule=rule, passed=True, message=message)


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _rows_text(rows: Sequence[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:ROWS_NAMED])
    return shown + (f" and {len(rows) - ROWS_NAMED:,} more" if len(rows) > ROWS_NAMED else "")


def _cannot_check(frame: pd.DataFrame, needed: Sequence[str], rule: str, subject: str) -> CheckOutcome | None:
    """A rule whose column is missing fails on its own instead of crashing the other checks."""
    missing = [c for c in needed if c not in frame.columns]
    if not missing:
        return None
    return CheckOutcome(
        rule=rule,
        passed=False,
        failing_rows=len(frame),
        message=f"{subject} has no column {missing}, so this rule cannot be checked: fix the columns first.",
    )


def _listing_cases(frame: pd.DataFrame, mask: pd.Series, columns: Sequence[str]) -> pd.DataFrame:
    """The first failing listings, by id (what a person looks a listing up by) and the values at fault."""
    picked = frame.loc[mask.to_numpy()].head(MAX_FAILURE_CASES)
    return picked[[c for c in ("id", *columns) if c in picked.columns]].reset_index(drop=True)


# -- structure ------------------------------------------------------------------------------


def check_columns(frame: pd.DataFrame, model: type[pa.DataFrameModel], subject: str, advice: str) -> CheckOutcome:
    """Exact names in exact order: a shifted column would silently feed prices into the wrong feature."""
    expected = [str(c) for c in model.to_schema().columns]
    found = [str(c) for c in frame.columns]
    rule = f"exactly these {len(expected)} columns in this order: {', '.join(expected)}"
    if found == expected:
        return _passed(rule, f"{subject} has the {len(expected)} listing columns in order.")
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    cases = []
    for position in range(max(len(expected), len(found))):
        want = expected[position] if position < len(expected) else None
        have = found[position] if position < len(found) else None
        if want != have:
            problem = "missing" if want in missing else "unexpected" if have in extra else "out of order"
            cases.append({"position": position + 1, "expected": want, "found": have, "problem": problem})
    parts = [f"missing {missing}"] if missing else []
    parts += [f"unexpected {extra}"] if extra else []
    parts += [] if parts else ["the right names in the wrong order"]
    return CheckOutcome(
        rule=rule,
        passed=False,
        failing_rows=len(frame),
        failure_cases=pd.DataFrame(cases).head(MAX_FAILURE_CASES),
        message=f"{subject} columns do not match the listings table ({'; '.join(parts)}): {advice}",
        facts={"missing_columns": missing, "unexpected_columns": extra},
    )


def check_schema(
    frame: pd.DataFrame, model: type[pa.DataFrameModel], subject: str, advice: str, *, file_rows: bool = False
) -> CheckOutcome:
    """Types, missing values, ranges and allowed values of every column, from the pandera model.

    `file_rows` numbers failing rows as data rows of the source file (raw listings keep the
    file's order and a 0-based index); later frames are identified by listing id only.
    """
    schema = model.to_schema()
    rule = f"every listing follows the {schema.name} schema (types, missing values, ranges, allowed values)"
    if not frame.index.equals(pd.RangeIndex(len(frame))):
        frame = frame.reset_index(drop=True)
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = errors.failure_cases
    else:
        return _passed(rule, f"All {len(frame):,} listings in {subject} follow the {schema.name} schema.")

    # The index is 0..n-1 here, so a failure's index is its position; column-level failures
    # (a wrong dtype, a missing column) have none and get -1.
    positions = pd.to_numeric(failures["index"], errors="coerce").fillna(-1).astype("int64")
    row_level = sorted(set(positions[positions >= 0]))
    failing_rows = len(row_level) if row_level else len(frame)
    ids = frame["id"].to_numpy() if "id" in frame.columns else None

    cases = pd.DataFrame(
        {
            "column": failures["column"].astype(str).to_numpy(),
            "check": failures["check"].astype(str).to_numpy(),
            "value": [None if v is None else str(v) for v in failures["failure_case"]],
            "_position": positions.to_numpy(),
        }
    ).sort_values("_position", kind="stable")
    cases.insert(0, "id", [_scalar(ids[p]) if ids is not None and p >= 0 else None for p in cases["_position"]])
    if file_rows:
        cases.insert(0, "row", [int(p) + 1 if p >= 0 else None for p in cases["_position"]])

    summary = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        rows = sorted({int(p) + 1 for p in group["_position"] if p >= 0})
        if not rows:
            where = "whole column"
        else:
            where = f"rows {_rows_text(rows)}" if file_rows else f"{len(rows):,} listings"
        values = [v for v in group["value"].head(3) if v is not None]
        summary.append(f"column {column!r} {check} fails ({where}; found {values})")
    message = (
        f"{failing_rows:,} of {len(frame):,} listings in {subject} break the {schema.name} schema: "
        f"{'; '.join(summary[:4])}{' and more' if len(summary) > 4 else ''}. {advice}"
    )
    return CheckOutcome(
        rule=rule,
        passed=False,
        failing_rows=failing_rows,
        failure_cases=cases.drop(columns="_position").head(MAX_FAILURE_CASES).reset_index(drop=True),
        message=message,
        facts={"failed_rules": len(summary)},
    )


# -- the reference project's data tests ---------------------------------------------------


def check_borough_set(frame: pd.DataFrame, subject: str) -> CheckOutcome:
    """The boroughs present must be exactly the five: an unknown one is a typo or a foreign
    drop, a missing one means the drop does not cover the city the model prices."""
    rule = f"the set of neighbourhood_group values is exactly {{{', '.join(BOROUGHS)}}}"
    if cannot := _cannot_check(frame, ["neighbourhood_group"], rule, subject):
        return cannot
    boroughs = frame["neighbourhood_group"]
    counts = boroughs.fillna("(missing)").value_counts()
    unknown = sorted(b for b in counts.index if b not in BOROUGHS)
    absent = [b for b in BOROUGHS if b not in counts.index]
    if not unknown and not absent:
        return _passed(rule, f"{subject} has listings in all five boroughs and nowhere else.")
    bad_rows = ~boroughs.isin(BOROUGHS)
    cases = [{"neighbourhood_group": b, "listings": int(counts[b]), "problem": "not a NYC borough"} for b in unknown]
    cases += [{"neighbourhood_group": b, "listings": 0, "problem": "no listings"} for b in absent]
    parts = [f"{int(bad_rows.sum()):,} listings have unknown boroughs {unknown}"] if unknown else []
    parts += [f"no listings in {absent}"] if absent else []
    return CheckOutcome(
        rule=rule,
        passed=False,
        failing_rows=int(bad_rows.sum()),
        failure_cases=pd.DataFrame(cases).head(MAX_FAILURE_CASES),
        message=f"{subject}: {' and '.join(parts)}. Fix the borough names in the source, or check that the "
        "drop covers the whole city, then re-materialize raw_data.",
    )


def check_inside_box(frame: pd.DataFrame, rules: CleaningRules, subject: str) -> CheckOutcome:
    rule = (
        f"every listing has {rules.min_latitude:g} <= latitude <= {rules.max_latitude:g} and "
        f"{rules.min_longitude:g} <= longitude <= {rules.max_longitude:g}"
    )
    if cannot := _cannot_check(frame, ["latitude", "longitude"], rule, subject):
        return cannot
    outside = ~inside_nyc_box(frame, rules)
    if not outside.any():
        return _passed(rule, f"All {len(frame):,} listings in {subject} are inside the NYC box.")
    return CheckOutcome(
        rule=rule,
        passed=False,
        failing_rows=int(outside.sum()),
        failure_cases=_listing_cases(frame, outside, ["latitude", "longitude", "neighbourhood_group"]),
        message=f"{int(outside.sum()):,} listings in {subject} lie outside the NYC box, which cleaning should have "
        "dropped: re-materialize clean_sample, and make sure its box and this check's box are the same.",
    )


def check_price_range(frame: pd.DataFrame, min_price: float, max_price: float, subject: str) -> CheckOutcome:
    rule = f"every price within [{min_price:g}, {max_price:g}]"
    if cannot := _cannot_check(frame, ["price"], rule, subject):
        return cannot
    outside = ~frame["price"].between(min_price, max_price)
    if not outside.any():
        return _passed(rule, f"All {len(frame):,} prices in {subject} are within [{min_price:g}, {max_price:g}].")
    return CheckOutcome(
        rule=rule,
        passed=False,
        failing_rows=int(outside.sum()),
        failure_cases=_listing_cases(frame, outside, ["price", "room_type", "neighbourhood_group"]),
        message=f"{int(outside.sum()):,} listings in {subject} have a price outside [{min_price:g}, {max_price:g}], "
        "which cleaning should have dropped: re-materialize clean_sample, and make sure its price range and this "
        "check's range are the same.",
    )


def check_row_count(
    frame: pd.DataFrame, min_rows: int, max_rows: int, subject: str, cleaning: Mapping[str, int] | None = None
) -> CheckOutcome:
    """A drop far smaller or larger than usual is more often a broken export than a real week.

    `cleaning` (rows in, price outliers, outside the box) explains where the listings went.
    """
    rows = len(frame)
    rule = f"{min_rows:,} < listings < {max_rows:,}"
    facts = {"rows": rows, "min_rows": min_rows, "max_rows": max_rows}
    if min_rows < rows < max_rows:
        return CheckOutcome(rule=rule, passed=True, message=f"{subject} has {rows:,} listings.", facts=facts)
    cases = pd.DataFrame([{**dict(cleaning or {}), "rows_out": rows}]) if cleaning else pd.DataFrame([{"rows": rows}])
    if rows <= min_rows:
        why = f"{subject} has {rows:,} listings, expected more than {min_rows:,}"
        if cleaning:
            why += (
                f": cleaning kept {rows:,} of {cleaning.get('rows_in', 0):,} raw listings "
                f"({cleaning.get('dropped_price_outliers', 0):,} price outliers, "
                f"{cleaning.get('dropped_outside_box', 0):,} outside the NYC box)"
            )
        action = (
            "Check that the source is the whole week's drop and that its prices and coordinates are in the "
            "expected units; for a deliberately small drop, lower min_rows in the clean_sample_checks config."
        )
    else:
        why = f"{subject} has {rows:,} listings, expected fewer than {max_rows:,}"
        action = "Check that the source is one week's drop and not several concatenated; raise max_rows if it is right."
    return CheckOutcome(rule=rule, passed=False, failure_cases=cases, message=f"{why}. {action}", facts=facts)


def borough_counts(frame: pd.DataFrame) -> pd.Series:
    return frame["neighbourhood_group"].value_counts().sort_index()


def kl_divergence_bits(current: pd.Series, reference: pd.Series) -> float:
    """`scipy.stats.entropy(current, reference, base=2)` on counts aligned by borough.

    The reference test compared two independently sorted `value_counts`, which pairs the wrong
    boroughs as soon as one side lacks a borough; aligning on the union keeps the pairs right
    (and gives infinity when the current week has a borough the reference never had).
    """
    boroughs = sorted(set(current.index) | set(reference.index))
    aligned_current = current.reindex(boroughs, fill_value=0).to_numpy(dtype=float)
    aligned_reference = reference.reindex(boroughs, fill_value=0).to_numpy(dtype=float)
    return float(scipy.stats.entropy(aligned_current, aligned_reference, base=2))


def _drift_table(current: pd.Series, reference: pd.Series) -> pd.DataFrame:
    boroughs = sorted(set(current.index) | set(reference.index))
    now = current.reindex(boroughs, fill_value=0)
    then = reference.reindex(boroughs, fill_value=0)
    return pd.DataFrame(
        {
            "neighbourhood_group": boroughs,
            "listings": now.to_numpy(),
            "reference_listings": then.to_numpy(),
            "share": (now / max(int(now.sum()), 1)).round(4).to_numpy(),
            "reference_share": (then / max(int(then.sum()), 1)).round(4).to_numpy(),
        }
    )


@dataclass(frozen=True)
class ReferenceListings:
    """The version drift is measured against, and a label a person can find it by."""

    listings: pd.DataFrame
    label: str


@dataclass(frozen=True)
class ReferenceMove:
    """A decision to make `version` the reference, with the reason the alias log keeps."""

    version: str
    reason: str


class BoroughDrift(NamedTuple):
    """The borough-drift verdict, and the reference move it decided (None: the reference stays)."""

    outcome: CheckOutcome
    new_reference: ReferenceMove | None = None


def judge_borough_drift(
    frame: pd.DataFrame,
    reference: ReferenceListings | None,
    threshold: float,
    subject: str,
    *,
    checked: str,
    other_failures: Sequence[str],
    accept_as_reference: bool = False,
) -> BoroughDrift:
    """Drift of the borough mix against the reference, and the policy for moving the reference.

    With no reference yet, the first version that passes every other check becomes it (a
    version that fails them would make a broken week the yardstick). `accept_as_reference`
    lets a person declare an expected change of mix: the version becomes the reference if it
    passes every other check, and the divergence it had is kept in the result. `checked` names
    the judged version; the caller moves the alias when the verdict says so (`new_reference`).
    """
    outcome = _borough_drift(frame, reference, threshold, subject, checked, other_failures, accept_as_reference)
    if not outcome.facts.get("reference_set"):
        return BoroughDrift(outcome)
    why = "first version to pass every check" if reference is None else "accepted as the new reference on request"
    return BoroughDrift(outcome, ReferenceMove(checked, f"{why} ({len(frame):,} listings)"))


def _borough_drift(
    frame: pd.DataFrame,
    reference: ReferenceListings | None,
    threshold: float,
    subject: str,
    label: str,
    other_failures: Sequence[str],
    accept_as_reference: bool,
) -> CheckOutcome:
    rule = f"KL divergence of the borough mix from the reference < {threshold:g} bits"
    if cannot := _cannot_check(frame, ["neighbourhood_group"], rule, subject):
        return cannot
    current = borough_counts(frame)
    expected = borough_counts(reference.listings) if reference is not None else pd.Series(dtype="int64")
    mix = _drift_table(current, expected)
    divergence = kl_divergence_bits(current, expected) if reference is not None and current.sum() else None
    facts: dict[str, Any] = {"kl_threshold": threshold, "reference": reference.label if reference else "none"}
    if divergence is not None:
        facts["kl_divergence_bits"] = round(divergence, 6) if np.isfinite(divergence) else "inf"
    tables = {"borough_mix": mix}

    if reference is None or accept_as_reference:
        if other_failures:
            failed = ", ".join(other_failures)
            message = f"{subject} was not made the reference because it failed {failed}; fix those first."
            if reference is None:
                message += " Drift was not measured: there is no reference yet."
            return CheckOutcome(
                rule=rule,
                passed=False,
                warning=reference is None,
                message=message,
                facts=facts,
                tables=tables,
            )
        facts.update(reference=label, reference_set=True)
        if reference is None:
            message = f"No reference existed: {subject} passed every other check and is now the reference ({label})."
        else:
            was = f"{divergence:.4f} bits" if divergence is not None else "not measurably far"
            message = f"{subject} is now the reference ({label}) on request; it was {was} from {reference.label}."
        return CheckOutcome(rule=rule, passed=True, message=message, facts=facts, tables=tables)

    if divergence is None:
        return CheckOutcome(
            rule=rule,
            passed=False,
            failure_cases=mix,
            message=f"{subject} has no listings, so its borough mix cannot be compared with {reference.label}: "
            "see the row_count check.",
            facts=facts,
            tables=tables,
        )
    if divergence < threshold:
        return CheckOutcome(
            rule=rule,
            passed=True,
            message=f"Borough mix of {subject} is {divergence:.4f} bits from {reference.label} "
            f"(threshold {threshold:g}).",
            facts=facts,
            tables=tables,
        )
    moved = mix.assign(change=(mix["share"] - mix["reference_share"]).abs()).sort_values("change", ascending=False)
    biggest = ", ".join(
        f"{r.neighbourhood_group} {r.share:.1%} vs {r.reference_share:.1%}" for r in moved.head(2).itertuples()
    )
    return CheckOutcome(
        rule=rule,
        passed=False,
        failure_cases=mix,
        message=f"Borough mix of {subject} drifted {divergence:.4f} bits from {reference.label} (threshold "
        f"{threshold:g}; {biggest}). If the source is wrong, fix it and re-materialize raw_data; if the new mix is "
        "expected, re-run the checks with accept_as_reference: true in the clean_sample_checks config.",
        facts=facts,
        tables=tables,
    )


# -- the split ------------------------------------------------------------------------------


def check_no_shared_ids(trainval: pd.DataFrame, test: pd.DataFrame) -> CheckOutcome:
    """A listing on both sides would let the test score reward memorising it."""
    rule = "no listing id is in both trainval_data and test_data"
    for side, name in ((trainval, "trainval_data"), (test, "test_data")):
        if cannot := _cannot_check(side, ["id"], rule, name):
            return cannot
    shared = test["id"].isin(trainval["id"])
    if not shared.any():
        return _passed(rule, f"trainval_data and test_data share no listing ({len(trainval):,} + {len(test):,}).")
    return CheckOutcome(
        rule=rule,
        passed=False,
        failing_rows=int(shared.sum()),
        failure_cases=_listing_cases(test, shared, ["name", "price"]),
        message=f"{int(shared.sum()):,} listings of test_data are also in trainval_data, so the test score would be "
        "measured on listings the model trained on: look for duplicated ids in raw_data, then re-materialize "
        "split_listings (both sides together).",
    )


# -- where the reference version lives ------------------------------------------------------


REFERENCE_ALIAS = "reference"


class StoreReferences:
    """The reference version on the versioned artifact store, where it is an alias.

    Failed checks are recorded as the version's `failed_checks` flag, which the store's alias
    guard reads to keep `reference` and `prod` off failing versions; every alias move is logged
    with its reason, so nobody has to remember why the reference is what it is.
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    def load_reference(self, asset: str, ref: str | None = None) -> ReferenceListings | None:
        """The reference version: ``ref`` when the caller resolved it already (once per run),
        else whatever the alias names now."""
        from rental_pipeline.store import ArtifactNotFoundError

        try:
            version = self.store.get(ref or f"{asset}:{REFERENCE_ALIAS}")
        except ArtifactNotFoundError:
            return None
        return ReferenceListings(listings=self.store.load(version.ref), label=version.ref)

    def set_reference(self, version: str, *, reason: str) -> None:
        self.store.set_alias(version, REFERENCE_ALIAS, reason=reason)

    def record_check_failures(self, version: str, failures: Mapping[str, str]) -> None:
        from rental_pipeline.store import FAILED_CHECKS_FLAG

        self.store.mark(version, FAILED_CHECKS_FLAG, dict(failures) or None)
