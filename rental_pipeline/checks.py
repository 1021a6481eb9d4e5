"""Asset checks: the listings contracts and the reference project's data tests, run by Dagster.

The rules live in `rental_pipeline.validation` and `rental_pipeline.schemas`; this module only
decides which asset each rule guards, that a failure blocks everything downstream (bad listings
must never reach a model), and how a result reads in the UI.

The checks of one asset run in one op (`raw_data_checks`, `clean_sample_checks`,
`test_data_checks`): they judge the same version, so it is loaded and looked up once, and a step
costs what its rules cost rather than a step's fixed price per rule. Each rule is still its own
check in the UI, with its own result, and blocking unless it only warns. The `clean_sample` rules also share one config
(the bounds a run can lower), and the drift check must know whether every other rule passed
before it makes a version the reference.

The rules (pandas, pandera, scipy) are imported when a check runs, not when the code location
loads.
"""

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

from rental_pipeline.assets.params import with_overrides
from rental_pipeline.cleaning import CleaningRules
from rental_pipeline.io_manager import ArtifactStoreResource
from rental_pipeline.run_state import loaded_artifacts, run_resolver, stored_value
from rental_pipeline.store import FAILED_CHECKS_FLAG
from rental_pipeline.weeks import JUDGED_FLAG, reference_holder, split_name

if TYPE_CHECKING:
    from rental_pipeline.validation import CheckOutcome

CLEANING_FACTS = ("rows_in", "dropped_price_outliers", "dropped_outside_box")


def check_result(
    outcome: "CheckOutcome", plots: Mapping[str, dg.MarkdownMetadataValue] | None = None, **target: Any
) -> dg.AssetCheckResult:
    from rental_pipeline.assets.metadata import table

    metadata: dict[str, Any] = {"rule": outcome.rule, "failing_rows": outcome.failing_rows}
    metadata.update({key: _metadata_value(value) for key, value in outcome.facts.items()})
    metadata.update(plots or {})
    if not outcome.passed and not outcome.failure_cases.empty:
        metadata["failure_cases"] = table(outcome.failure_cases)
    metadata.update({name: table(frame) for name, frame in outcome.tables.items()})
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN if outcome.warning else dg.AssetCheckSeverity.ERROR,
        description=outcome.message,
        metadata=metadata,
        **target,
    )


def record_outcomes(
    context: dg.AssetCheckExecutionContext,
    artifact_store: ArtifactStoreResource,
    asset: str,
    outcomes: Mapping[str, "CheckOutcome"],
) -> None:
    """Keep the outcomes on the version this step loaded (a pinned one too), in one flag write: a
    failure adds an entry to its `failed_checks` flag, a pass removes that check's entry. The IO
    manager reads the flag to refuse the version to a later run of downstream assets."""
    ref = _loaded_ref(context, asset)
    if ref is not None and outcomes:
        changes = {
            check: outcome.message if not outcome.passed and not outcome.warning else None
            for check, outcome in outcomes.items()
        }
        artifact_store.store().mark_entries(str(ref), FAILED_CHECKS_FLAG, changes)


def recorded_result(
    context: dg.AssetCheckExecutionContext,
    artifact_store: ArtifactStoreResource,
    asset: str,
    check: str,
    outcome: "CheckOutcome",
) -> dg.AssetCheckResult:
    """The result of one check, recorded on the version this step loaded (`record_outcomes`)."""
    record_outcomes(context, artifact_store, asset, {check: outcome})
    return check_result(outcome)


def _selected(context: dg.AssetCheckExecutionContext) -> set[str]:
    return {key.name for key in context.selected_asset_check_keys}


def _metadata_value(value: Any) -> Any:
    return dg.MetadataValue.json(value) if isinstance(value, (list, dict)) else value


def _checked(context: dg.AssetCheckExecutionContext, artifact_store: ArtifactStoreResource, asset: str) -> Any:
    """The manifest of the exact version this step loaded: what is judged, flagged and named."""
    return artifact_store.store().get(_loaded_ref(context, asset))


def _loaded_ref(context: dg.AssetCheckExecutionContext, asset: str) -> str | None:
    """The exact version of ``asset`` this step loaded: plain, or the run's week of it
    (`raw_data.<week>`, for the weekly checks)."""
    loaded = loaded_artifacts(context)
    if asset in loaded:
        return loaded[asset]
    return next((ref for name, ref in loaded.items() if split_name(name)[0] == asset), None)


def _target(context: dg.AssetCheckExecutionContext) -> dg.AssetKey:
    """The asset this step's checks are declared on (`raw_data`, or the weekly one)."""
    return next(iter(context.check_specs)).asset_key


def _facts(version: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """Facts recorded with the checked version when it was stored (its source, what cleaning dropped)."""
    facts = version.metadata.get("facts") or {}
    return {key: facts[key] for key in keys if key in facts}


# -- raw_data -------------------------------------------------------------------------------

RAW_ADVICE_COLUMNS = "give the source file exactly the 16 listing columns in order, then re-materialize raw_data."
RAW_ADVICE_ROWS = "Correct or remove those rows in the source file, then re-materialize raw_data."


def _raw_subject(context: dg.AssetCheckExecutionContext, artifact_store: ArtifactStoreResource) -> str:
    source = _facts(_checked(context, artifact_store, "raw_data"), ("source",)).get("source")
    return f"raw_data ({source})" if source else "raw_data"


RAW_DATA_CHECKS: Mapping[str, str] = {
    "columns": "The drop has exactly the 16 listing columns, in order.",
    "schema": "Types, missing values, ranges, boroughs, room types, unique ids and review dates of every raw listing.",
}


def blocking_checks(
    asset: str,
    checks: Mapping[str, str],
    warn_only: frozenset[str] = frozenset(),
    *,
    partitions_def: dg.PartitionsDefinition | None = None,
    input_name: str | None = None,
) -> Any:
    """One blocking check per rule of an asset, run together in one step `<asset>_checks` that
    loads the asset as its input: bad listings never reach a model, and the version is loaded once
    for all of them. Any of the checks can run alone.

    The rules in `warn_only` are declared non-blocking: their severity is a warning unless a run's
    config says otherwise, and the UI labels a blocking check as one that stops downstream. A run
    that makes them errors fails the step itself (`_stop_on_strict_drift`), which stops downstream
    exactly as a failed blocking check does.

    The same rules guard a weekly asset, one result per week: ``partitions_def`` its weeks,
    ``input_name`` the argument the rules' function reads it as."""
    return dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                name, asset=asset, blocking=name not in warn_only, description=text, partitions_def=partitions_def
            )
            for name, text in checks.items()
        ],
        name=f"{asset}_checks",
        ins={input_name or asset: dg.AssetIn(asset)},
        can_subset=True,
    )


def judge_raw_data(
    context: dg.AssetCheckExecutionContext, artifact_store: ArtifactStoreResource, raw_data: Any
) -> Iterator[dg.AssetCheckResult]:
    from rental_pipeline.schemas import RawListings
    from rental_pipeline.validation import check_columns, check_schema

    selected = _selected(context)
    subject = _raw_subject(context, artifact_store)
    outcomes: dict[str, CheckOutcome] = {}
    if "columns" in selected:
        outcomes["columns"] = check_columns(raw_data, RawListings, subject, RAW_ADVICE_COLUMNS)
    if "schema" in selected:
        outcomes["schema"] = check_schema(raw_data, RawListings, subject, RAW_ADVICE_ROWS, file_rows=True)
    record_outcomes(context, artifact_store, "raw_data", outcomes)
    for name, outcome in outcomes.items():
        yield check_result(outcome, asset_key=_target(context), check_name=name)


raw_data_checks = blocking_checks("raw_data", RAW_DATA_CHECKS)(judge_raw_data)


# -- clean_sample ---------------------------------------------------------------------------

CLEAN_SAMPLE = "clean_sample"
CLEAN_ADVICE = "re-materialize clean_sample from a raw_data that passes its checks."
_FROM_CLEANING = "Override; empty: the value clean_sample was cleaned with."


class _CleanSampleBounds(dg.Config):
    """The clean_sample checks' own bounds (see CleanSampleChecksConfig)."""

    min_rows: int = Field(default=15_000, ge=0, description="The clean sample must have more listings than this.")
    max_rows: int = Field(default=1_000_000, ge=1, description="The clean sample must have fewer listings than this.")
    kl_threshold: float = Field(
        default=0.2, gt=0, description="Largest KL divergence (bits) of the borough mix from the reference version."
    )
    accept_as_reference: bool = Field(
        default=False,
        description="Make the checked clean_sample the reference if it passes every other check "
        "(for an expected change of borough mix, room types or distributions).",
    )
    room_type_psi_threshold: float = Field(
        default=0.1, gt=0, description="Largest PSI of the room-type mix from the reference version."
    )
    price_psi_threshold: float = Field(
        default=0.1, gt=0, description="Largest PSI of the price distribution from the reference version."
    )
    minimum_nights_psi_threshold: float = Field(
        default=0.1, gt=0, description="Largest PSI of the minimum_nights distribution from the reference version."
    )
    reviews_per_month_psi_threshold: float = Field(
        default=0.1,
        gt=0,
        description="Largest PSI of the reviews_per_month distribution (missing values included) from the reference.",
    )
    drift_severity: Literal["warn", "error"] = Field(
        default="warn",
        description="What a room-type, price, minimum_nights or reviews_per_month drift is: 'warn' (shown, "
        "downstream still runs) or 'error' (blocks downstream like borough_drift).",
    )


class CleanSampleChecksConfig(with_overrides(_CleanSampleBounds, CleaningRules, description=_FROM_CLEANING)):
    """Bounds of the clean_sample checks; the defaults are the reference project's."""


CLEAN_SAMPLE_CHECKS: Mapping[str, str] = {
    "columns": "Exactly the 16 listing columns, in order.",
    "schema": "Types, missing values, ranges, boroughs, room types and unique ids of every clean listing.",
    "borough_set": "The neighbourhood_group values are exactly the five boroughs.",
    "inside_nyc_box": "Every listing lies inside the NYC box clean_sample was cleaned with.",
    "price_range": "Every price lies within the range clean_sample was cleaned with.",
    "row_count": "min_rows < listings < max_rows (reference: 15,000 and 1,000,000).",
    "borough_drift": "KL divergence (bits) of the borough mix from the reference version is below kl_threshold; "
    "with no reference yet, the first version passing every other check becomes it.",
    "room_type_drift": "PSI of the room-type mix from the reference version is below room_type_psi_threshold "
    "(warns, so it is not blocking; drift_severity: error makes it stop downstream).",
    "price_drift": "PSI of the price distribution (reference deciles) from the reference version is below "
    "price_psi_threshold (warns, so it is not blocking; drift_severity: error makes it stop downstream).",
    "minimum_nights_drift": "PSI of the minimum_nights distribution from the reference version is below "
    "minimum_nights_psi_threshold (warns, so it is not blocking; drift_severity: error makes it stop "
    "downstream).",
    "reviews_per_month_drift": "PSI of the reviews_per_month distribution, missing values included, from the "
    "reference version is below reviews_per_month_psi_threshold (warns, so it is not blocking; "
    "drift_severity: error makes it stop downstream).",
}


def _clean_subject(store: Any, checked: Any) -> str:
    """Name the source file too: the one the raw_data version this clean_sample was cleaned from
    was read from."""
    for ref in checked.inputs:
        if split_name(ref.split(":")[0])[0] == "raw_data" and store.exists(ref):
            source = _facts(store.get(ref), ("source",)).get("source")
            if source:
                return f"{checked.ref} (cleaned from {source})"
    return checked.ref


def cleaning_rules_in_force(checked: Any, config: CleanSampleChecksConfig) -> tuple[CleaningRules, str]:
    """The rules the checked clean_sample was made with, so a run with other bounds is judged by them.

    The clean_sample asset records the rules it applied as that version's config (its manifest
    keeps them, whichever run made it or reuses it); fields set in this check's config win.
    """
    rules, origin = CleaningRules(), "cleaning defaults"
    recorded = checked.metadata.get("config")
    if recorded:
        rules = CleaningRules(**{k: v for k, v in recorded.items() if k in CleaningRules.__dataclass_fields__})
        origin = f"clean_sample config recorded with {checked.ref}"
    overrides = {
        name: value
        for name, value in config.model_dump().items()
        if name in CleaningRules.__dataclass_fields__ and value is not None
    }
    if overrides:
        rules = replace(rules, **overrides)
        origin += " with overrides from the check config"
    return rules, origin


# Warnings by default (drift_severity), so not declared blocking: see `blocking_checks`.
WARN_ONLY_CHECKS = frozenset({"room_type_drift", "price_drift", "minimum_nights_drift", "reviews_per_month_drift"})


def judge_clean_sample(
    context: dg.AssetCheckExecutionContext,
    config: CleanSampleChecksConfig,
    clean_sample: Any,
    artifact_store: ArtifactStoreResource,
) -> Iterator[dg.AssetCheckResult]:
    from rental_pipeline.drift import DRIFT_RULES, judge_column_drift
    from rental_pipeline.schemas import CleanListings
    from rental_pipeline.validation import (
        REFERENCE_ALIAS,
        StoreReferences,
        check_borough_set,
        check_columns,
        check_inside_box,
        check_price_range,
        check_row_count,
        check_schema,
        judge_borough_drift,
    )

    store = artifact_store.store()
    checked = _checked(context, artifact_store, CLEAN_SAMPLE)
    subject = _clean_subject(store, checked)
    rules, rules_origin = cleaning_rules_in_force(checked, config)
    outcomes: dict[str, CheckOutcome] = {
        "columns": check_columns(clean_sample, CleanListings, subject, CLEAN_ADVICE),
        "schema": check_schema(
            clean_sample, CleanListings, subject, f"Cleaning only drops rows and parses dates: {CLEAN_ADVICE}"
        ),
        "borough_set": check_borough_set(clean_sample, subject),
        "inside_nyc_box": check_inside_box(clean_sample, rules, subject),
        "price_range": check_price_range(clean_sample, rules.min_price, rules.max_price, subject),
        "row_count": check_row_count(
            clean_sample, config.min_rows, config.max_rows, subject, _facts(checked, CLEANING_FACTS)
        ),
    }
    failures = {name: o.message for name, o in outcomes.items() if not o.passed and not o.warning}
    references = StoreReferences(store)
    version = checked.ref
    selected = _selected(context)
    # A re-judge starts with these checks unjudged: a step killed before its verdict leaves the
    # version untrusted (`weeks.trainable`), never trusted on a cleared or half-written flag.
    store.mark_entries(version, JUDGED_FLAG, dict.fromkeys(selected))
    reference = None
    if selected & {"borough_drift", *DRIFT_RULES}:
        held = reference_holder(store, checked.name)  # a week's: the newest week's reference up to it
        reference = references.load_reference(CLEAN_SAMPLE, run_resolver(context).alias(held, REFERENCE_ALIAS))
    # The drift result is the one that knows every rule's verdict, so only a run that evaluates it
    # records the verdict on the version and may move the reference.
    if "borough_drift" in selected:
        # This step's checks start clean (a stale flag would keep the reference off the version);
        # a failure of a check it does not judge stays, so the reference stays off it.
        store.mark_entries(version, FAILED_CHECKS_FLAG, dict.fromkeys(selected))
        drift, new_reference = judge_borough_drift(
            clean_sample,
            reference,
            config.kl_threshold,
            subject,
            checked=version,
            other_failures=sorted(failures),
            accept_as_reference=config.accept_as_reference,
        )
        if new_reference is not None:
            run = f"Dagster run {context.run.run_id}"
            references.set_reference(new_reference.version, reason=f"{new_reference.reason}; {run}")
        outcomes["borough_drift"] = drift
        if not drift.passed and not drift.warning:
            failures["borough_drift"] = drift.message
    # The other columns are measured against the reference as it was before this step; a version
    # just made the reference passes them with the shift it had.
    borough = outcomes.get("borough_drift")
    made_reference = bool(borough is not None and borough.facts.get("reference_set"))
    for name in sorted(selected & set(DRIFT_RULES)):
        outcomes[name] = judge_column_drift(
            clean_sample,
            reference,
            DRIFT_RULES[name],
            getattr(config, f"{DRIFT_RULES[name].column}_psi_threshold"),
            subject,
            warn_only=config.drift_severity == "warn",
            became_reference=made_reference,
        )
        if not outcomes[name].passed and not outcomes[name].warning:
            failures[name] = outcomes[name].message
    # Every check this step judged, and only those, in one write: a failure adds its entry, a
    # pass removes it. Then they count as judged (failures first, so never judged and unflagged).
    store.mark_entries(version, FAILED_CHECKS_FLAG, {name: failures.get(name) for name in selected})
    store.mark_entries(version, JUDGED_FLAG, dict.fromkeys(selected, context.run.run_id))
    if failures:
        failed = ", ".join(sorted(failures))
        context.log.error(f"{CLEAN_SAMPLE} ({version}) failed {failed}; downstream assets will not run")

    for name, outcome in outcomes.items():
        if name in selected:
            facts = {**outcome.facts, "checked_version": version}
            if name in ("inside_nyc_box", "price_range"):
                facts["bounds_from"] = rules_origin
            yield check_result(
                replace(outcome, facts=facts),
                plots=_drift_plots(name, outcome),
                asset_key=_target(context),
                check_name=name,
            )
    _stop_on_strict_drift({name: failures[name] for name in failures.keys() & WARN_ONLY_CHECKS}, version)


clean_sample_checks = blocking_checks(CLEAN_SAMPLE, CLEAN_SAMPLE_CHECKS, warn_only=WARN_ONLY_CHECKS)(judge_clean_sample)


def _stop_on_strict_drift(failed: Mapping[str, str], version: str) -> None:
    """A drift check made an error by drift_severity failed: fail the step, so nothing downstream
    runs (Dagster stops downstream only for failed checks declared blocking)."""
    if failed:
        raise dg.Failure(
            description=f"{version} failed {', '.join(sorted(failed))} with drift_severity: error, so downstream "
            "assets do not run. Accept the new distribution (accept_as_reference: true) or correct the drop.",
            metadata={"checked_version": version, "failed_checks": dg.MetadataValue.json(dict(failed))},
        )


def _drift_plots(name: str, outcome: "CheckOutcome") -> dict[str, dg.MarkdownMetadataValue]:
    """Reference against current shares, for each drift check that measured something. Named to sort
    right after the number they explain (the UI lists check metadata alphabetically)."""
    from rental_pipeline.assets.metadata import plots_wanted, share_plot
    from rental_pipeline.drift import DRIFT_RULES

    if not plots_wanted():
        return {}
    mix = outcome.tables.get("borough_mix")
    if name == "borough_drift" and mix is not None and mix["reference_share"].sum() > 0:
        return {"kl_divergence_plot": share_plot(mix, "neighbourhood_group", title="Borough mix", xlabel="borough")}
    if name in DRIFT_RULES and "shares" in outcome.tables:
        rule = DRIFT_RULES[name]
        title = f"{rule.label.capitalize()}: PSI {outcome.facts.get('psi', float('nan')):.3f}"
        return {"psi_plot": share_plot(outcome.tables["shares"], "bin", title=title, xlabel=rule.column)}
    return {}


# -- trainval_data and test_data --------------------------------------------------------------

SPLIT_ADVICE = "Re-materialize split_listings (both sides) from a clean_sample that passes its checks."


@dg.asset_check(
    asset="trainval_data",
    name="schema",
    blocking=True,
    description="Clean listings with at least one row: what training expects.",
)
def trainval_schema(
    context: dg.AssetCheckExecutionContext, artifact_store: ArtifactStoreResource, trainval_data: Any
) -> dg.AssetCheckResult:
    from rental_pipeline.schemas import SplitListings
    from rental_pipeline.validation import check_schema

    outcome = check_schema(trainval_data, SplitListings, "trainval_data", SPLIT_ADVICE)
    return recorded_result(context, artifact_store, "trainval_data", "schema", outcome)


TEST_DATA_CHECKS: Mapping[str, str] = {
    "schema": "Clean listings with at least one row: what evaluation expects.",
    "no_shared_ids": "No listing id is in both trainval_data and test_data, so the test score is honest.",
}


@blocking_checks("test_data", TEST_DATA_CHECKS)
def held_out_checks(
    context: dg.AssetCheckExecutionContext, artifact_store: ArtifactStoreResource, test_data: Any
) -> Iterator[dg.AssetCheckResult]:
    """`no_shared_ids` compares with the trainval_data this run resolves, the version its training
    reads (like every reader of the run), so a test_data that would be scored by a model trained
    on its listings fails. Never simply the newest trainval_data: a one-off split with another
    seed is newer, and comparing with it would fail a sound test_data (and, flagged, every later
    run). Only with no trainval_data to resolve is the other side of the same split looked up."""
    from rental_pipeline.schemas import SplitListings
    from rental_pipeline.validation import CheckOutcome, check_no_shared_ids, check_schema

    selected = _selected(context)
    outcomes: dict[str, CheckOutcome] = {}
    if "schema" in selected:
        outcomes["schema"] = check_schema(test_data, SplitListings, "test_data", SPLIT_ADVICE)
    unrecorded: dict[str, CheckOutcome] = {}
    if "no_shared_ids" in selected:
        held_out = _checked(context, artifact_store, "test_data")
        sibling = _split_sibling(context, artifact_store.store(), held_out)
        if sibling is not None:
            outcome = check_no_shared_ids(stored_value(context, sibling.ref), test_data)
            outcomes["no_shared_ids"] = replace(
                outcome, facts={**outcome.facts, "checked_version": held_out.ref, "compared_with": sibling.ref}
            )
        else:
            unrecorded["no_shared_ids"] = CheckOutcome(
                rule="no_shared_ids",
                passed=True,
                warning=True,
                message=f"No trainval_data split from {', '.join(held_out.inputs) or 'the same input'} with the "
                "same split config is stored yet, so there is nothing to compare test_data with: materialize "
                "trainval_data too.",
            )
    record_outcomes(context, artifact_store, "test_data", outcomes)
    for name in TEST_DATA_CHECKS:
        outcome = outcomes.get(name) or unrecorded.get(name)
        if outcome is not None:
            yield check_result(outcome, asset_key="test_data", check_name=name)


def _split_sibling(context: dg.AssetCheckExecutionContext, store: Any, held_out: Any) -> Any:
    """The trainval_data the run resolves, else the one made by the same split as ``held_out``
    (same inputs, same split config)."""
    from rental_pipeline.store import StoreError

    def same_split(version: Any) -> bool:
        return version.inputs == held_out.inputs and version.metadata.get("config") == held_out.metadata.get("config")

    try:
        return store.get(run_resolver(context).input("trainval_data").ref)
    except StoreError:
        pass
    if "trainval_data" not in store.names():
        return None
    return next((v for v in reversed(store.history("trainval_data")) if same_split(v)), None)


all_checks = [
    raw_data_checks,
    clean_sample_checks,
    trainval_schema,
    held_out_checks,
]
