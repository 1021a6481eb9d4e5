"""The data checks: plain rules on small frames, then the Dagster asset checks on a real instance."""


import dagster as dg
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from rental_pipeline.checks import WARN_ONLY_CHECKS, all_checks, clean_sample_checks
from rental_pipeline.cleaning import CleaningRules, clean_listings
from rental_pipeline.definitions import all_assets
from rental_pipeline.home import open_store
from rental_pipeline.io_manager import ArtifactIOManager, ArtifactStoreResource
from rental_pipeline.schemas import RawListings
from rental_pipeline.store import FAILED_CHECKS_FLAG, AliasRefusedError
from rental_pipeline.synthetic import generate_listings
from rental_pipeline.validation import (
    MAX_FAILURE_CASES,
    ReferenceListings,
    StoreReferences,
    check_borough_set,
    check_columns,
    check_inside_box,
    check_no_shared_ids,
    check_price_range,
    check_row_count,
    judge_borough_drift,
    kl_divergence_bits,
)
from rental_pipeline_tests.conftest import (
    DATA_ASSETS,
    SMALL_BOUNDS,
    artifact_store,
    assert_nothing_lost,
    current_versions,
    data_config,
    evaluations,
    executed_steps,
    failed_checks,
    failure_records,
    graph_config,
    materialize,
    materialize_checked,
    materialized,
    run_config,
    stored_versions,
)

ALL_CHECKS = {
    ("raw_data", "columns"), ("raw_data", "schema"),
    *(("clean_sample", name) for name in (
        "columns", "schema", "borough_set", "inside_nyc_box", "price_range", "row_count", "borough_drift",
        "room_type_drift", "price_drift", "minimum_nights_drift", "reviews_per_month_drift")),
    ("trainval_data", "schema"), ("test_data", "schema"), ("test_data", "no_shared_ids"),
}


# Mirroring to W&B is the store's concern and is tested there; here it would only add seconds.
pytestmark = pytest.mark.usefixtures("no_mirror")


def checks_job_result(instance: dg.DagsterInstance, config: dict | None = None) -> dg.ExecuteInProcessResult:
    from rental_pipeline.definitions import all_assets, checks_job, default_resources

    defs = dg.Definitions(assets=all_assets, asset_checks=all_checks, jobs=[checks_job], resources=default_resources())
    return defs.resolve_job_def("checks_job").execute_in_process(
        instance=instance, run_config=config, raise_on_error=False
    )


# -- plain rules ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return clean_listings(generate_listings(rows=1_500, seed=3))[0]


def test_kl_divergence_is_scipys_entropy_in_bits_on_counts_aligned_by_borough():
    current = pd.Series({"Bronx": 30, "Brooklyn": 400, "Manhattan": 420, "Queens": 140, "Staten Island": 10})
    reference = pd.Series({"Queens": 120, "Manhattan": 440, "Staten Island": 8, "Brooklyn": 410, "Bronx": 22})
    expected = scipy.stats.entropy(current.sort_index(), reference.sort_index(), base=2)
    assert kl_divergence_bits(current, reference) == pytest.approx(expected)
    assert kl_divergence_bits(current, current) == 0
    # A borough the reference never had is an infinite divergence, not a silently misaligned pair.
    assert kl_divergence_bits(current, reference.drop("Bronx")) == np.inf


def test_columns_rule_lists_each_wrong_position(clean):
    frame = clean.rename(columns={"price": "nightly_price"}).drop(columns="room_type")
    outcome = check_columns(frame, RawListings, "drop.csv", "fix the header.")
    assert not outcome.passed
    assert outcome.facts == {"missing_columns": ["room_type", "price"], "unexpected_columns": ["nightly_price"]}
    assert "missing ['room_type', 'price']" in outcome.message and outcome.message.endswith("fix the header.")
    first = outcome.failure_cases.iloc[0].to_dict()
    assert first == {"position": 9, "expected": "room_type", "found": "nightly_price", "problem": "missing"}
    swapped = clean[["name", "id", *clean.columns[2:]]]
    assert check_columns(swapped, RawListings, "x", "").failure_cases["problem"].tolist() == ["out of order"] * 2


def test_borough_set_must_be_exactly_the_five(clean):
    assert check_borough_set(clean, "clean_sample").passed
    frame = clean[clean["neighbourhood_group"] != "Staten Island"].copy()
    frame.loc[frame.index[:3], "neighbourhood_group"] = "Long Island"
    outcome = check_borough_set(frame, "clean_sample")
    assert not outcome.passed and outcome.failing_rows == 3
    assert outcome.failure_cases.to_dict("records") == [
        {"neighbourhood_group": "Long Island", "listings": 3, "problem": "not a NYC borough"},
        {"neighbourhood_group": "Staten Island", "listings": 0, "problem": "no listings"},
    ]
    assert "['Long Island']" in outcome.message and "no listings in ['Staten Island']" in outcome.message


def test_row_rules_count_every_failing_row_and_show_at_most_twenty(clean):
    frame = clean.copy()
    frame.loc[frame.index[:25], "price"] = 999
    frame.loc[frame.index[-2:], "latitude"] = 42.0
    prices = check_price_range(frame, 10, 350, "clean_sample")
    assert (prices.passed, prices.failing_rows, len(prices.failure_cases)) == (False, 25, MAX_FAILURE_CASES)
    assert prices.failure_cases["id"].tolist() == frame["id"].head(MAX_FAILURE_CASES).tolist()
    assert set(prices.failure_cases["price"]) == {999}
    box = check_inside_box(frame, CleaningRules(), "clean_sample")
    assert (box.passed, box.failing_rows) == (False, 2)
    assert box.failure_cases["latitude"].tolist() == [42.0, 42.0]
    assert check_price_range(clean, 10, 350, "clean_sample").passed
    assert check_inside_box(clean, CleaningRules(), "clean_sample").passed


def test_row_count_bounds_are_exclusive_and_the_failure_explains_the_cleaning(clean):
    n = len(clean)
    assert check_row_count(clean, n - 1, n + 1, "c").passed
    assert not check_row_count(clean, n, n + 1, "c").passed
    assert not check_row_count(clean, 0, n, "c").passed
    cleaning = {"rows_in": 1_500, "dropped_price_outliers": 1_400, "dropped_outside_box": 100}
    outcome = check_row_count(clean.iloc[:0], 15_000, 1_000_000, "clean_sample", cleaning)
    assert "cleaning kept 0 of 1,500 raw listings (1,400 price outliers, 100 outside the NYC box)" in outcome.message
    assert "lower min_rows" in outcome.message
    assert outcome.failure_cases.to_dict("records") == [{**cleaning, "rows_out": 0}]


def test_drift_policy_first_passing_version_becomes_the_reference(clean):
    made = []

    def judge(frame, reference, subject, failures=(), **options):
        """The verdict, and the reference moves it decided (the caller applies them)."""
        outcome, move = judge_borough_drift(
            frame, reference, 0.2, subject, checked="clean_sample.csv:v0", other_failures=list(failures), **options
        )
        if move is not None:
            assert move.version == "clean_sample.csv:v0"
            made.append(move.reason)
        return outcome

    first = judge(clean, None, "clean_sample")
    assert first.passed and first.facts["reference_set"] and len(made) == 1
    assert "No reference existed" in first.message and "clean_sample.csv:v0" in first.message

    failing = judge(clean, None, "clean_sample", ["row_count"])
    assert (failing.passed, failing.warning, len(made)) == (False, True, 1)
    assert "not made the reference because it failed row_count" in failing.message

    reference = ReferenceListings(clean, "clean_sample.csv:v0")
    drifted = clean.copy()
    drifted.loc[drifted.index[: len(clean) // 3], "neighbourhood_group"] = "Staten Island"
    outcome = judge(drifted, reference, "clean_sample")
    assert not outcome.passed and not outcome.warning
    assert outcome.facts["kl_divergence_bits"] > 0.2
    assert "Staten Island" in outcome.message and "accept_as_reference" in outcome.message
    assert judge(clean, reference, "c").passed

    accepted = judge(drifted, reference, "c", accept_as_reference=True)
    assert accepted.passed and len(made) == 2 and "on request" in made[-1]
    assert accepted.facts["kl_divergence_bits"] > 0.2


def test_no_shared_ids_between_split_sides(clean):
    trainval, test = clean.iloc[:1000], clean.iloc[1000:]
    assert check_no_shared_ids(trainval, test).passed
    outcome = check_no_shared_ids(trainval, pd.concat([test, trainval.iloc[:3]]))
    assert (outcome.passed, outcome.failing_rows) == (False, 3)
    assert outcome.failure_cases["id"].tolist() == trainval["id"].iloc[:3].tolist()


def test_references_live_in_the_artifact_store_and_failed_versions_cannot_become_one(clean, tmp_path):
    store = open_store(tmp_path / "artifacts")
    references = StoreReferences(store)
    assert references.load_reference("clean_sample") is None
    good = store.save("clean_sample", clean, type="clean_sample").version.ref
    assert good == "clean_sample:v0"
    assert store.save("clean_sample", clean.copy(), type="clean_sample").version.ref == good  # same bytes, same version
    references.record_check_failures(good, {})
    references.set_reference(good, reason="first vetted week")
    loaded = references.load_reference("clean_sample")
    assert loaded.label == good
    pd.testing.assert_frame_equal(loaded.listings, clean)
    assert store.alias_log("clean_sample")[-1].reason == "first vetted week"

    bad = store.save("clean_sample", clean.iloc[:10], type="clean_sample").version.ref
    references.record_check_failures(bad, {"row_count": "10 listings"})
    assert store.flags(bad)[FAILED_CHECKS_FLAG] == {"row_count": "10 listings"}
    with pytest.raises(AliasRefusedError, match="row_count"):
        references.set_reference(bad, reason="by mistake")
    assert references.load_reference("clean_sample").label == good
    references.record_check_failures(bad, {})
    assert FAILED_CHECKS_FLAG not in store.flags(bad)


# -- through Dagster ------------------------------------------------------------------------


def test_code_location_registers_every_check_blocking_and_the_checks_job():
    from rental_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    # the same rules guard each week of the weekly assets
    weekly = {(f"weekly_{asset}", name) for asset, name in ALL_CHECKS if asset in ("raw_data", "clean_sample")}
    assert keys == ALL_CHECKS | weekly
    # every check blocks but the drift checks that only warn by default, which the UI must not call blocking
    blocking = {key.name for key in graph.asset_check_keys if graph.get(key).blocking}
    assert {key.name for key in graph.asset_check_keys} - blocking == WARN_ONLY_CHECKS
    assert defs.resolve_job_def("checks_job") is not None
    assert {spec.name for spec in clean_sample_checks.check_specs} >= {"row_count", "borough_drift"}


@pytest.mark.slow
def test_whole_graph_passes_every_check_and_the_first_version_becomes_the_reference(instance):
    first = materialize_checked(instance, graph_config())
    assert first.success
    results = evaluations(first)
    assert set(results) == ALL_CHECKS and all(e.passed for e in results.values())
    drift = results[("clean_sample", "borough_drift")]
    assert "No reference existed" in drift.description and "is now the reference" in drift.description
    assert drift.metadata["reference_set"].value is True
    assert drift.metadata["reference"].value == drift.metadata["checked_version"].value == "clean_sample:v0"
    assert results[("clean_sample", "price_range")].metadata["rule"].value == "every price within [10, 350]"

    second = materialize_checked(instance, data_config(raw={"seed": 8}), selection=list(DATA_ASSETS))
    drift = evaluations(second)[("clean_sample", "borough_drift")]
    assert drift.passed and "from clean_sample:v0" in drift.description
    assert 0 < drift.metadata["kl_divergence_bits"].value < 0.2
    assert drift.metadata["checked_version"].value == "clean_sample:v1"


def test_checks_take_the_price_range_clean_sample_was_cleaned_with(instance):
    config = data_config()
    config["ops"]["clean_sample"] = {"config": {"max_price": 500}}
    result = materialize_checked(instance, config, selection=list(DATA_ASSETS))
    assert result.success
    prices = evaluations(result)[("clean_sample", "price_range")]
    assert prices.metadata["rule"].value == "every price within [10, 500]"
    assert prices.metadata["bounds_from"].value == "clean_sample config recorded with clean_sample:v0"


@pytest.mark.slow
def test_a_failed_blocking_check_stops_everything_downstream_and_keeps_stored_values(instance):
    first = materialize_checked(instance, graph_config())
    assert first.success
    earlier = {name: v for name, v in stored_versions(first).items() if name in DATA_ASSETS}

    result = materialize_checked(instance, graph_config(raw={"seed": 9}, min_rows=5_000))
    assert not result.success
    assert executed_steps(result) == {
        "raw_data", "raw_data_checks", "clean_sample", "clean_sample_checks"
    }
    assert set(failed_checks(result)) == {("clean_sample", "row_count")}
    failure = failed_checks(result)[("clean_sample", "row_count")]
    assert failure.metadata["rule"].value == "5,000 < listings < 1,000,000"
    assert "expected more than 5,000" in failure.description and "lower min_rows" in failure.description
    assert failure_records(failure)[0]["rows_in"] == 1_500

    assert_nothing_lost(earlier)
    now = current_versions(instance, ("trainval_data", "test_data", "model_evaluation"))
    assert now == {name: f"{name}:v0" for name in ("trainval_data", "test_data", "model_evaluation")}
    store = artifact_store()
    assert store.get("model_evaluation:latest").version == 0
    assert store.flags("clean_sample:v1")[FAILED_CHECKS_FLAG].keys() == {"row_count"}
    assert store.get("clean_sample:reference").version == 0  # the failing version did not replace it


@pytest.mark.slow
def test_a_later_run_of_downstream_assets_refuses_a_version_that_failed_its_checks(instance):
    assert materialize_checked(instance, graph_config()).success
    assert not materialize_checked(instance, graph_config(raw={"seed": 9}, min_rows=5_000)).success
    split = ["trainval_data", "test_data"]

    later = materialize_checked(instance, graph_config(), selection=split)
    assert not later.success
    (failure,) = later.get_step_failure_events()
    assert failure.step_key == "split_listings"
    message = failure.step_failure_data.user_failure_data.description
    assert "clean_sample:v1 failed its checks (row_count)" in message and "stays stored" in message
    assert artifact_store().get("trainval_data:latest").inputs == ("clean_sample:v0",)

    # Pinned on purpose, the version is used; check steps always read what they check.
    store_resource = ArtifactStoreResource()
    pinned = dg.materialize(
        [*all_assets, *all_checks],
        instance=instance,
        selection=split,
        resources={
            "artifact_store": store_resource,
            "io_manager": ArtifactIOManager(artifact_store=store_resource, pins={"clean_sample": "v1"}),
        },
    )
    assert pinned.success
    assert artifact_store().get("trainval_data:latest").inputs == ("clean_sample:v1",)

    # Once its checks pass (here: bounds that suit a small sample), the flag goes and so does the refusal.
    assert checks_job_result(instance, {"ops": {"clean_sample_checks": {"config": SMALL_BOUNDS}}}).success
    assert FAILED_CHECKS_FLAG not in artifact_store().flags("clean_sample:v1")
    assert materialize_checked(instance, graph_config(), selection=split).success


@pytest.mark.slow
def test_every_check_keeps_its_failure_on_the_version_it_checked(instance, tmp_path):
    listings = generate_listings(rows=1_500, seed=7)
    listings.loc[listings.index[:3], "latitude"] = 99.0  # not on this planet's New York
    path = tmp_path / "week.csv"
    listings.to_csv(path, index=False)
    bad = materialize_checked(instance, data_config(raw={"source": str(path)}), selection=["raw_data"])
    assert set(failed_checks(bad)) == {("raw_data", "schema")}
    flags = artifact_store().flags("raw_data:v0")[FAILED_CHECKS_FLAG]
    assert set(flags) == {"schema"} and "latitude" in flags["schema"]

    later = materialize_checked(instance, data_config(), selection=["clean_sample"])
    assert not later.success
    (failure,) = later.get_step_failure_events()
    assert "raw_data:v0 failed its checks (schema)" in failure.step_failure_data.user_failure_data.description
    assert "clean_sample" not in artifact_store().names()

    fixed = materialize_checked(instance, data_config(), selection=["raw_data", "clean_sample"])
    assert fixed.success
    assert FAILED_CHECKS_FLAG not in artifact_store().flags("raw_data:v1")
    assert FAILED_CHECKS_FLAG in artifact_store().flags("raw_data:v0")  # what failed stays marked


@pytest.mark.slow
def test_drift_fails_against_the_reference_until_a_person_accepts_the_new_mix(instance, tmp_path):
    assert materialize_checked(instance, data_config(), selection=list(DATA_ASSETS)).success
    drifted = generate_listings(rows=1_500, seed=7)
    drifted.loc[drifted.index[:500], "neighbourhood_group"] = "Staten Island"
    path = tmp_path / "drifted.csv"
    drifted.to_csv(path, index=False)

    result = materialize_checked(instance, graph_config(raw={"source": str(path)}))
    assert not result.success
    assert set(failed_checks(result)) == {("clean_sample", "borough_drift")}
    assert {"split_listings", "inference_pipeline", "model_evaluation"}.isdisjoint(executed_steps(result))
    drift = failed_checks(result)[("clean_sample", "borough_drift")]
    assert drift.metadata["kl_divergence_bits"].value > 0.2
    assert "drifted.csv" in drift.description and "Staten Island" in drift.description
    assert {r["neighbourhood_group"] for r in failure_records(drift)} == {
        "Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island"
    }

    accept = {**SMALL_BOUNDS, "accept_as_reference": True}
    accepted = checks_job_result(instance, {"ops": {"clean_sample_checks": {"config": accept}}})
    assert accepted.success
    drift = evaluations(accepted)[("clean_sample", "borough_drift")]
    assert drift.passed and "on request" in drift.description
    assert drift.metadata["reference"].value == "clean_sample:v1"
    again = checks_job_result(instance, {"ops": {"clean_sample_checks": {"config": SMALL_BOUNDS}}})
    assert evaluations(again)[("clean_sample", "borough_drift")].metadata["kl_divergence_bits"].value == 0


@pytest.mark.slow
def test_checks_job_rechecks_stored_values_without_materializing(instance):
    assert materialize_checked(instance, graph_config()).success
    materializations = len(instance.fetch_materializations(dg.AssetKey("raw_data"), limit=10).records)

    result = checks_job_result(instance, {"ops": {"clean_sample_checks": {"config": SMALL_BOUNDS}}})
    assert result.success
    assert executed_steps(result) == {
        "raw_data_checks", "clean_sample_checks", "trainval_data_schema", "test_data_checks",
    }
    assert not result.get_asset_materialization_events()
    assert set(evaluations(result)) == ALL_CHECKS
    assert len(instance.fetch_materializations(dg.AssetKey("raw_data"), limit=10).records) == materializations

    stricter = checks_job_result(instance, {"ops": {"clean_sample_checks": {"config": {"min_rows": 1_450}}}})
    assert not stricter.success
    assert set(failed_checks(stricter)) == {("clean_sample", "row_count")}
    assert not stricter.get_asset_materialization_events()


@pytest.mark.slow
def test_the_checks_of_an_asset_share_one_step_and_each_can_still_run_alone(instance):
    """One step per checked asset (a step costs events and a load whatever its rules cost), each
    rule still its own result, and a single check chosen in the UI runs only its own rule."""
    result = materialize_checked(instance, graph_config())
    assert result.success
    check_steps = {e.step_key for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert check_steps == {"raw_data_checks", "clean_sample_checks", "trainval_data_schema", "test_data_checks"}
    assert set(evaluations(result)) == ALL_CHECKS

    from rental_pipeline.definitions import default_resources

    for asset, check in [("test_data", "no_shared_ids"), ("raw_data", "columns")]:
        key = dg.AssetCheckKey(dg.AssetKey(asset), check)
        job = dg.define_asset_job("one_check", selection=dg.AssetSelection.checks(key))
        defs = dg.Definitions(assets=all_assets, asset_checks=all_checks, jobs=[job], resources=default_resources())
        alone = defs.resolve_job_def("one_check").execute_in_process(instance=instance, raise_on_error=False)
        assert alone.success
        assert executed_steps(alone) == {f"{asset}_checks"}
        assert set(evaluations(alone)) == {(asset, check)}


def test_shared_ids_between_split_sides_block_evaluation(instance):
    frame = clean_listings(generate_listings(rows=300, seed=5))[0]

    @dg.asset(name="trainval_data")
    def leaky_trainval() -> pd.DataFrame:
        return frame.iloc[:250].reset_index(drop=True)

    @dg.asset(name="test_data")
    def leaky_test() -> pd.DataFrame:
        return frame.iloc[240:].reset_index(drop=True)

    @dg.asset
    def model_evaluation(test_data: pd.DataFrame) -> int:
        return len(test_data)

    split_sides = {dg.AssetKey("trainval_data"), dg.AssetKey("test_data")}
    split_checks = [c for c in all_checks if {key.asset_key for key in c.check_keys} <= split_sides]
    from rental_pipeline.definitions import default_resources

    result = dg.materialize(
        [leaky_trainval, leaky_test, model_evaluation, *split_checks],
        instance=instance,
        resources=default_resources(),
        raise_on_error=False,
    )
    assert not result.success
    assert set(failed_checks(result)) == {("test_data", "no_shared_ids")}
    assert "model_evaluation" not in executed_steps(result)
    failure = failed_checks(result)[("test_data", "no_shared_ids")]
    assert failure.metadata["failing_rows"].value == 10
    assert [r["id"] for r in failure_records(failure)] == frame["id"].iloc[240:250].tolist()


@pytest.mark.slow
def test_checks_pass_on_the_reference_sample_with_reference_bounds(instance, sample1):
    config = {"ops": {"raw_data": {"config": {"source": str(sample1)}}}}
    result = materialize_checked(instance, config, selection=["raw_data", "clean_sample"])
    assert result.success
    results = evaluations(result)
    assert all(e.passed for e in results.values()), {k: e.description for k, e in results.items() if not e.passed}
    assert results[("clean_sample", "row_count")].metadata["rows"].value == 19_001
    assert results[("clean_sample", "row_count")].metadata["rule"].value == "15,000 < listings < 1,000,000"


@pytest.mark.slow
def test_no_shared_ids_compares_with_the_split_this_run_used(instance):
    """A one-off split with another seed is the newest trainval_data from the same clean_sample;
    the next default run's test_data must still be compared with its own split's other side, or a
    sound test_data is flagged and every later run refuses it."""
    store = artifact_store()
    first = materialized(materialize(instance, run_config()))
    resplit = run_config()
    resplit["ops"]["split_listings"] = {"config": {"random_seed": 7}}
    materialize(instance, resplit)
    for _ in range(2):  # the default run, and the one after it
        again = materialize(instance, run_config(), raise_on_error=False)
        assert again.success
        results = evaluations(again)
        assert results[("test_data", "no_shared_ids")].passed
        checked = results[("test_data", "no_shared_ids")].metadata
        assert checked["compared_with"].value == first["trainval_data"]["artifact"]
        assert checked["checked_version"].value == first["test_data"]["artifact"]
    assert not store.flags(first["test_data"]["artifact"]).get("failed_checks")
