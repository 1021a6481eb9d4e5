"""Drift beyond the borough mix: room types and the price, minimum-nights and reviews-per-month
distributions, as plain PSI rules and as asset checks that warn (or block, when configured)."""

import numpy as np
import pandas as pd
import pytest

from rental_pipeline.cleaning import clean_listings
from rental_pipeline.drift import DRIFT_RULES, bin_edges, binned_table, category_table, judge_column_drift, psi
from rental_pipeline.home import open_store
from rental_pipeline.store import FAILED_CHECKS_FLAG
from rental_pipeline.synthetic import generate_listings
from rental_pipeline.validation import ReferenceListings
from rental_pipeline_tests.conftest import executed_steps, materialize, picture, run_config

DRIFT_CHECKS = {"borough_drift", *DRIFT_RULES}


@pytest.fixture(scope="module")
def weeks() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two weeks of clean listings from the same market (different seeds)."""
    return tuple(clean_listings(generate_listings(rows=3_000, seed=seed))[0] for seed in (1, 2))


def judge(frame, reference, name, threshold=0.1, **options):
    return judge_column_drift(
        frame, ReferenceListings(reference, "clean_sample:v0"), DRIFT_RULES[name], threshold, "this week", **options
    )


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    assert psi(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == 0
    small = psi(np.array([0.2, 0.3, 0.5]), np.array([0.22, 0.3, 0.48]))
    large = psi(np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.3, 0.3]))
    assert 0 < small < 0.01 < 0.1 < large
    # (0.4 - 0.2) ln 2 + (0.3 - 0.5) ln 0.6, by hand
    assert large == pytest.approx(0.2 * np.log(2) - 0.2 * np.log(0.6))
    assert np.isfinite(psi(np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2])))  # an empty bin is floored


def test_numbers_are_binned_at_the_reference_deciles_with_a_bin_for_missing_values():
    reference = pd.Series([1, 1, 1, 2, 2, 3, 5, 30, 30, 60, np.nan])
    edges = bin_edges(reference)
    assert list(edges) == sorted(set(edges))  # repeated deciles collapse
    table = binned_table(reference, pd.Series([1, 100, np.nan, np.nan]), edges)
    assert table["bin"].iloc[0] == f"< {edges[0]:g}" and table["bin"].iloc[-2] == f">= {edges[-1]:g}"
    assert table["bin"].iloc[-1] == "missing"
    assert table["listings"].sum() == 4 and table.loc[table["bin"] == "missing", "listings"].item() == 2
    assert table["reference_listings"].sum() == len(reference)
    assert table["share"].sum() == pytest.approx(1) and table["reference_share"].sum() == pytest.approx(1, abs=1e-3)


def test_the_same_market_passes_every_column(weeks):
    this_week, reference = weeks
    for name in DRIFT_RULES:
        outcome = judge(this_week, reference, name)
        assert outcome.passed, outcome.message
        assert 0 <= outcome.facts["psi"] < 0.05, (name, outcome.facts["psi"])


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("price_drift", lambda f: f.assign(price=(f["price"] * 1.6).round().astype("int64"))),
        ("room_type_drift", lambda f: f.assign(room_type="Entire home/apt")),
        ("minimum_nights_drift", lambda f: f.assign(minimum_nights=f["minimum_nights"] + 29)),
        # a week where most listings report no reviews: only the share of missing values moves
        ("reviews_per_month_drift", lambda f: f.assign(
            reviews_per_month=f["reviews_per_month"].where(f.index % 4 == 0))),
    ],
)
def test_a_shifted_column_fails_as_a_warning_naming_the_bins_that_moved(weeks, name, change):
    this_week, reference = weeks
    outcome = judge(change(this_week), reference, name)
    assert not outcome.passed and outcome.warning
    assert outcome.facts["psi"] >= 0.1
    assert "moved" in outcome.message and "downstream assets still run" in outcome.message
    assert "accept_as_reference: true" in outcome.message
    shares = outcome.tables["shares"]
    assert set(shares.columns) == {"bin", "reference_listings", "listings", "reference_share", "share"}
    # the other columns of the same week still pass
    for other in set(DRIFT_RULES) - {name}:
        assert judge(change(this_week), reference, other).passed, other


def test_severity_error_makes_a_drift_a_failure_and_no_reference_means_nothing_to_compare(weeks):
    this_week, reference = weeks
    shifted = this_week.assign(price=this_week["price"] * 2)
    blocking = judge(shifted, reference, "price_drift", warn_only=False)
    assert not blocking.passed and not blocking.warning and "will not run" in blocking.message
    accepted = judge(shifted, reference, "price_drift", became_reference=True)
    assert accepted.passed and "on request" in accepted.message and accepted.facts["psi"] >= 0.1
    first = judge_column_drift(this_week, None, DRIFT_RULES["price_drift"], 0.1, "this week")
    assert first.passed and "No reference version existed" in first.message
    shares = category_table(reference["room_type"], this_week["room_type"])
    assert list(shares["bin"]) == sorted(shares["bin"])


def drift_evaluations(result):
    return {
        e.check_name: e for e in result.get_asset_check_evaluations()
        if e.asset_key.to_user_string() == "clean_sample" and e.check_name in DRIFT_CHECKS
    }


@pytest.mark.slow
def test_drift_checks_warn_with_a_plot_and_block_only_when_told(instance, tmp_path, plots_on):
    small = {"min_rows": 100}
    data = ["raw_data", "clean_sample", "trainval_data", "test_data"]
    assert materialize(instance, run_config(clean_sample_checks=small), selection=data).success
    listings = generate_listings(rows=1_500, seed=7)
    path = tmp_path / "pricier.csv"
    listings.assign(price=(listings["price"] * 1.5).round().astype("int64")).to_csv(path, index=False)

    # price moved, boroughs did not: a warning, and the model is still trained and evaluated
    warned = materialize(instance, run_config(raw={"source": str(path)}, clean_sample_checks=small))
    assert warned.success
    results = drift_evaluations(warned)
    assert set(results) == DRIFT_CHECKS
    price = results["price_drift"]
    assert not price.passed and price.severity.value == "WARN" and "pricier.csv" in price.description
    assert price.metadata["psi"].value >= 0.1 and price.metadata["reference"].value == "clean_sample:v0"
    assert picture(price.metadata["psi_plot"].value).size[0] > 0
    assert picture(results["borough_drift"].metadata["kl_divergence_plot"].value).size[0] > 0
    assert results["borough_drift"].passed and results["room_type_drift"].passed
    assert {"inference_pipeline", "model_evaluation"} <= executed_steps(warned)
    version = open_store().get("clean_sample:latest")
    assert "price_drift" not in (version.flags.get(FAILED_CHECKS_FLAG) or {})

    # drift_severity: error: the same drift stops everything downstream and is flagged on the version
    strict = {**small, "drift_severity": "error"}
    blocked = materialize(instance, run_config(raw={"source": str(path)}, clean_sample_checks=strict),
                          raise_on_error=False)
    assert not blocked.success
    price = drift_evaluations(blocked)["price_drift"]
    assert not price.passed and price.severity.value == "ERROR"
    assert {"inference_pipeline", "model_evaluation"}.isdisjoint(executed_steps(blocked))
    assert "price_drift" in open_store().get("clean_sample:latest").flags[FAILED_CHECKS_FLAG]

    # a person accepts the new prices: the version becomes the reference and every drift check passes
    accepted = materialize(
        instance, run_config(raw={"source": str(path)}, clean_sample_checks={**strict, "accept_as_reference": True}),
        selection=data,
    )
    assert accepted.success
    results = drift_evaluations(accepted)
    assert all(e.passed for e in results.values()), {k: e.description for k, e in results.items()}
    assert "on request" in results["price_drift"].description
