"""The promotion gate: a new model gets `prod` only when there is none or it scores better."""

import pytest

from rental_pipeline.cleaning import clean_listings
from rental_pipeline.features import FEATURE_COLUMNS, TARGET, ForestParams, build_forest_pipeline
from rental_pipeline.promotion import PROD, decide_promotion, promote
from rental_pipeline.store import FAILED_CHECKS_FLAG, ArtifactStore, default_root
from rental_pipeline.synthetic import generate_listings
from rental_pipeline.versions import VersionResolver
from rental_pipeline_tests.conftest import materialize, materialized, run_config


def test_no_champion_means_promotion():
    decision = decide_promotion("m:v0", 30.0, None, None)
    assert decision.promote and "no prod model yet" in decision.reason


@pytest.mark.parametrize(
    ("challenger_mae", "min_improvement", "promote"),
    [(29.0, 0.0, True), (31.0, 0.0, False), (30.0, 0.0, False), (29.5, 1.0, False), (30.4, -0.5, True)],
)
def test_challenger_must_beat_champion_by_the_margin(challenger_mae, min_improvement, promote):
    decision = decide_promotion("m:v1", challenger_mae, "m:v0", 30.0, min_improvement=min_improvement)
    assert decision.promote is promote
    assert ("beats" in decision.reason) is promote


def test_the_champion_is_not_promoted_over_itself():
    assert not decide_promotion("m:v0", 30.0, "m:v0", 30.0).promote


def test_promote_is_a_plain_function_over_the_store(tmp_path):
    """Finding the champion, re-scoring it, moving `prod` and flagging the challenger need no Dagster."""
    store = ArtifactStore(tmp_path / "artifacts")
    listings, _ = clean_listings(generate_listings(rows=600, seed=3))
    train, test = listings.iloc[:450], listings.iloc[450:].reset_index(drop=True)
    reads = []

    def test_split():
        reads.append(1)
        return test

    def stored_model(depth):
        model = build_forest_pipeline(5, ForestParams(n_estimators=5, max_depth=depth, n_jobs=1, oob_score=False))
        model.fit(train[FEATURE_COLUMNS], train[TARGET])
        ref = store.save("inference_pipeline", model, type="model_export").version.ref
        return ref, float((test[TARGET] - model.predict(test[FEATURE_COLUMNS])).abs().mean())

    def run():
        """A resolver as a new run has it: no records, aliases read once."""
        return VersionResolver(store, {}, lambda name: None, lambda name: None)

    first, first_mae = stored_model(1)
    promotion = promote(store, run(), first, first_mae, test_split, actor="test")
    assert promotion.promoted and "no prod model yet" in promotion.outcome and reads == []
    assert store.get(f"inference_pipeline:{PROD}").ref == first
    assert promotion.metadata() == {
        "evaluated_model": first, "prod_model": first, "promoted": True, "promotion": promotion.outcome
    }

    better, better_mae = stored_model(8)
    assert better_mae < first_mae
    held_back = promote(store, run(), better, better_mae, test_split, min_improvement=1e6)
    assert not held_back.promoted and reads == [1]  # the champion was scored on the same split
    assert held_back.metadata()["previous_prod_test_mae"] == pytest.approx(first_mae)
    assert store.get(f"inference_pipeline:{PROD}").ref == first
    assert store.flags(better)["promotion"]["promoted"] is False

    switched_off = promote(store, run(), better, better_mae, test_split, apply=False)
    assert not switched_off.promoted and switched_off.outcome.endswith("(not applied: promote is off)")

    store.mark(better, FAILED_CHECKS_FLAG, {"schema": "broken"})
    refused = promote(store, run(), better, better_mae, test_split)
    assert not refused.promoted and "refused by the store" in refused.outcome
    store.mark(better, FAILED_CHECKS_FLAG, None)
    resolver = run()
    promoted = promote(store, resolver, better, better_mae, test_split)
    assert promoted.promoted and promoted.metadata()["prod_model"] == better
    assert store.get(f"inference_pipeline:{PROD}").ref == resolver.alias("inference_pipeline", PROD) == better
    assert promote(store, resolver, better, better_mae, test_split).outcome == f"{better} is already {PROD}"


WEAK = {"random_forest": {"n_estimators": 2, "max_depth": 2, "n_jobs": 1, "oob_score": False}}
STRONG = {"random_forest": {"n_estimators": 30, "max_depth": 12, "n_jobs": 1, "oob_score": False}}


def train(instance, training):
    return materialized(
        materialize(
            instance, run_config(training=training), selection=["inference_pipeline", "model_evaluation"]
        )
    )["model_evaluation"]


@pytest.mark.slow
def test_gate_through_the_graph_first_worse_then_better(instance):
    store = ArtifactStore(default_root())
    materialize(instance, run_config(), selection=["raw_data", "clean_sample", "trainval_data", "test_data"])

    first = train(instance, WEAK)
    assert first["promoted"] is True and first["prod_model"] == "inference_pipeline:v0"
    assert store.get("inference_pipeline:prod").ref == "inference_pipeline:v0"

    # A worse model is evaluated, scored against prod on the same test split, and refused.
    worse = train(instance, {"random_forest": {**WEAK["random_forest"], "max_depth": 1}})
    assert worse["evaluated_model"] == "inference_pipeline:v1"
    assert worse["promoted"] is False
    assert worse["previous_prod_test_mae"] == pytest.approx(first["test_mae"])
    assert worse["test_mae"] > first["test_mae"]
    assert store.get("inference_pipeline:prod").ref == "inference_pipeline:v0"
    assert store.flags("inference_pipeline:v1")["promotion"]["promoted"] is False

    better = train(instance, STRONG)
    assert better["promoted"] is True and better["test_mae"] < first["test_mae"]
    assert store.get("inference_pipeline:prod").ref == "inference_pipeline:v2"
    moves = [m for m in store.alias_log("inference_pipeline") if m.alias == "prod"]
    assert len(moves) == 2
    assert "no prod model yet" in moves[0].reason
    assert "beats prod inference_pipeline:v0" in moves[1].reason
    assert store.flags("inference_pipeline:v2")["promotion"]["champion"] == "inference_pipeline:v0"


@pytest.mark.slow
def test_promotion_can_be_switched_off(instance):
    store = ArtifactStore(default_root())
    config = run_config()
    config["ops"]["model_evaluation"] = {"config": {"promote": False}}
    result = materialize(instance, config, raise_on_error=False)
    metadata = materialized(result)["model_evaluation"]
    assert metadata["promoted"] is False and "not applied" in metadata["promotion"]
    assert not store.exists("inference_pipeline:prod")
    # With no prod model, batch predictions fail with a message that says what to do.
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "batch_predictions"
    assert "No model inference_pipeline:prod" in str(failure.event_specific_data.error)
