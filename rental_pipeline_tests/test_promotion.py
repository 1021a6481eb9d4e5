"""The promotion gate: a new model gets `prod` only when there is none or it scores better."""

import pytest

from rental_pipeline.cleaning import clean_listings
from rental_pipeline.features import FEATURE_COLUMNS, TARGET, ForestParams, build_forest_pipeline
from rental_pipeline.home import open_store
from rental_pipeline.promotion import PROD, HeadToHead, decide_promotion, promote
from rental_pipeline.store import FAILED_CHECKS_FLAG
from rental_pipeline.synthetic import generate_listings
from rental_pipeline.versions import VersionResolver
from rental_pipeline_tests.conftest import materialize, materialized, run_config


def test_no_champion_means_promotion():
    decision = decide_promotion("m:v0", 30.0, None, None)
    assert decision.promote and "no prod model yet" in decision.reason


def match(challenger_mae: float, champion_mae: float = 30.0, rows: int = 500) -> HeadToHead:
    return HeadToHead(
        test_rows=800,
        champion_trained_on=800 - rows,
        challenger_trained_on=0,
        rows=rows,
        challenger_mae=challenger_mae,
        champion_mae=champion_mae,
    )


@pytest.mark.parametrize(
    ("challenger_mae", "min_improvement", "promote"),
    [(29.0, 0.0, True), (31.0, 0.0, False), (30.0, 0.0, False), (29.5, 1.0, False), (30.4, -0.5, True)],
)
def test_challenger_must_beat_champion_by_the_margin(challenger_mae, min_improvement, promote):
    decision = decide_promotion("m:v1", 99.0, "m:v0", match(challenger_mae), min_improvement=min_improvement)
    assert decision.promote is promote
    assert ("prod stays" in decision.reason) is not promote
    # the decision says what it was judged on
    assert "trained on 300 of the 800 test listings; 500 were unseen by both" in decision.reason


def test_the_champion_is_not_promoted_over_itself():
    assert not decide_promotion("m:v0", 30.0, "m:v0", None).promote


@pytest.mark.parametrize("rows", [0, 199])
def test_too_few_unseen_listings_keep_prod_and_say_so(rows):
    """A far better score on a handful of listings is noise, not a reason to move prod."""
    decision = decide_promotion("m:v1", 10.0, "m:v0", match(10.0, rows=rows) if rows else match(10.0, rows=0))
    assert not decision.promote
    assert "fewer than min_unseen_rows (200)" in decision.reason and "prod stays" in decision.reason
    assert decide_promotion("m:v1", 10.0, "m:v0", match(10.0, rows=200)).promote


@pytest.mark.parametrize(
    ("challenger_week", "champion_week", "promote"),
    [
        ("2024-01-01", "2024-06-03", False),
        ("2024-06-03", "2024-06-03", True),
        ("2024-06-10", "2024-06-03", True),
        (None, "2024-06-03", True),
        ("2024-01-01", None, True),
    ],
)
def test_a_model_of_an_older_week_never_takes_prod_back_in_time(challenger_week, champion_week, promote):
    """However much better it scores, a model whose newest week is older than prod's stays out;
    the same week, a newer one, or a model of the plain graph (no week) is judged on its score."""
    decision = decide_promotion(
        "m:v1", 20.0, "m:v0", match(20.0), challenger_week=challenger_week, champion_week=champion_week
    )
    assert decision.promote is promote
    if not promote:
        assert "trained on weeks up to 2024-01-01, older than prod m:v0's 2024-06-03" in decision.reason


def test_unknown_training_data_keeps_prod_and_says_so():
    decision = decide_promotion("m:v1", 10.0, "m:v0", None, unknown_training="m:v0")
    assert not decision.promote and "cannot tell which test listings m:v0 trained on" in decision.reason


def test_promote_is_a_plain_function_over_the_store(tmp_path):
    """Finding the champion, re-scoring both models, moving `prod` and flagging the challenger need
    no Dagster; a model's training listings are those of the data recorded as its input."""
    store = open_store(tmp_path / "artifacts")
    listings, _ = clean_listings(generate_listings(rows=600, seed=3))
    train, test = listings.iloc[:450], listings.iloc[450:].reset_index(drop=True)
    trained_on = store.save("trainval_data", train, type="segregated_data").version.ref
    reads = []

    def test_split():
        reads.append(1)
        return test

    def stored_model(depth):
        model = build_forest_pipeline(5, ForestParams(n_estimators=5, max_depth=depth, n_jobs=1, oob_score=False))
        model.fit(train[FEATURE_COLUMNS], train[TARGET])
        ref = store.save("inference_pipeline", model, type="model_export", inputs=[trained_on]).version.ref
        return ref, float((test[TARGET] - model.predict(test[FEATURE_COLUMNS])).abs().mean())

    def run():
        """A resolver as a new run has it: no records, aliases read once."""
        return VersionResolver(store, {}, lambda name: None, lambda name: None)

    def gate(challenger, mae, resolver=None, **options):
        return promote(store, resolver or run(), challenger, mae, test_split, min_unseen_rows=50, **options)

    first, first_mae = stored_model(1)
    promotion = gate(first, first_mae, actor="test")
    assert promotion.promoted and "no prod model yet" in promotion.outcome and reads == []
    assert store.get(f"inference_pipeline:{PROD}").ref == first
    assert promotion.metadata() == {
        "evaluated_model": first,
        "prod_model": first,
        "promoted": True,
        "promotion": promotion.outcome,
    }

    better, better_mae = stored_model(8)
    assert better_mae < first_mae
    held_back = gate(better, better_mae, min_improvement=1e6)
    assert not held_back.promoted and reads == [1]  # both were scored on the same split
    facts = held_back.metadata()
    assert facts["compared_with"] == first and facts["compared_rows"] == len(test)
    assert facts["prod_trained_on_test_rows"] == 0
    assert facts["prod_mae_on_compared"] == pytest.approx(first_mae)
    assert facts["evaluated_mae_on_compared"] == pytest.approx(better_mae)
    assert store.get(f"inference_pipeline:{PROD}").ref == first
    assert store.flags(better)["promotion"]["promoted"] is False
    assert store.flags(better)["promotion"]["head_to_head"]["rows"] == len(test)

    switched_off = gate(better, better_mae, apply=False)
    assert not switched_off.promoted and switched_off.outcome.endswith("(not applied: promote is off)")

    store.mark(better, FAILED_CHECKS_FLAG, {"schema": "broken"})
    refused = gate(better, better_mae)
    assert not refused.promoted and "refused by the store" in refused.outcome
    store.mark(better, FAILED_CHECKS_FLAG, None)
    resolver = run()
    promoted = gate(better, better_mae, resolver)
    assert promoted.promoted and promoted.metadata()["prod_model"] == better
    assert store.get(f"inference_pipeline:{PROD}").ref == resolver.alias("inference_pipeline", PROD) == better
    assert gate(better, better_mae, resolver).outcome == f"{better} is already {PROD}"

    # A model whose training data is not recorded cannot be compared fairly: prod stays.
    model = build_forest_pipeline(5, ForestParams(n_estimators=7, max_depth=4, n_jobs=1, oob_score=False))
    model.fit(train[FEATURE_COLUMNS], train[TARGET])
    orphan = store.save("inference_pipeline", model, type="model_export").version.ref
    blind = gate(orphan, 0.0)
    assert not blind.promoted and f"cannot tell which test listings {orphan} trained on" in blind.outcome


def test_a_decision_is_made_again_when_prod_moved_under_it(tmp_path):
    """Two evaluations at once: the second read prod before the first moved it. Its move is
    conditional on the prod it decided against, so it decides again against the new prod rather
    than replacing a better model it never compared with."""
    store = open_store(tmp_path / "artifacts")
    listings, _ = clean_listings(generate_listings(rows=900, seed=5))
    train, test = listings.iloc[:600], listings.iloc[600:].reset_index(drop=True)
    trained_on = store.save("trainval_data", train, type="segregated_data").version.ref

    def stored_model(depth, trees=5):
        model = build_forest_pipeline(5, ForestParams(n_estimators=trees, max_depth=depth, n_jobs=1, oob_score=False))
        model.fit(train[FEATURE_COLUMNS], train[TARGET])
        ref = store.save("inference_pipeline", model, type="model_export", inputs=[trained_on]).version.ref
        return ref, float((test[TARGET] - model.predict(test[FEATURE_COLUMNS])).abs().mean())

    weak, weak_mae = stored_model(1)
    store.set_alias(weak, PROD)
    middle, middle_mae = stored_model(3)
    strong, strong_mae = stored_model(10, trees=20)
    assert strong_mae < middle_mae < weak_mae

    late = VersionResolver(store, {}, lambda name: None, lambda name: None)
    assert late.alias("inference_pipeline", PROD) == weak  # the late run read prod first
    early = promote(
        store,
        VersionResolver(store, {}, lambda n: None, lambda n: None),
        strong,
        strong_mae,
        lambda: test,
        min_unseen_rows=50,
    )
    assert early.promoted and store.get("inference_pipeline:prod").ref == strong

    again = promote(store, late, middle, middle_mae, lambda: test, min_unseen_rows=50)
    assert not again.promoted and store.get("inference_pipeline:prod").ref == strong
    assert again.decision.champion == strong
    moves = [m for m in store.alias_log("inference_pipeline") if m.alias == PROD]
    assert [m.to_version for m in moves] == [0, 2]


WEAK = {"random_forest": {"n_estimators": 2, "max_depth": 2, "n_jobs": 1, "oob_score": False}}
STRONG = {"random_forest": {"n_estimators": 30, "max_depth": 12, "n_jobs": 1, "oob_score": False}}


def train(instance, training):
    return materialized(
        materialize(instance, run_config(training=training), selection=["inference_pipeline", "model_evaluation"])
    )["model_evaluation"]


@pytest.mark.slow
def test_gate_through_the_graph_first_worse_then_better(instance):
    store = open_store()
    materialize(instance, run_config(), selection=["raw_data", "clean_sample", "trainval_data", "test_data"])

    first = train(instance, WEAK)
    assert first["promoted"] is True and first["prod_model"] == "inference_pipeline:v0"
    assert store.get("inference_pipeline:prod").ref == "inference_pipeline:v0"

    # A worse model is evaluated, scored against prod on the same test split, and refused.
    worse = train(instance, {"random_forest": {**WEAK["random_forest"], "max_depth": 1}})
    assert worse["evaluated_model"] == "inference_pipeline:v1"
    assert worse["promoted"] is False
    assert worse["prod_mae_on_compared"] == pytest.approx(first["test_mae"])
    assert worse["compared_rows"] == worse["test_rows"] and worse["prod_trained_on_test_rows"] == 0
    assert worse["test_mae"] > first["test_mae"]
    assert store.get("inference_pipeline:prod").ref == "inference_pipeline:v0"
    assert store.flags("inference_pipeline:v1")["promotion"]["promoted"] is False

    better = train(instance, STRONG)
    assert better["promoted"] is True and better["test_mae"] < first["test_mae"]
    assert store.get("inference_pipeline:prod").ref == "inference_pipeline:v2"
    moves = [m for m in store.alias_log("inference_pipeline") if m.alias == "prod"]
    assert len(moves) == 2
    assert "no prod model yet" in moves[0].reason
    assert "vs prod inference_pipeline:v0" in moves[1].reason and "better by" in moves[1].reason
    assert store.flags("inference_pipeline:v2")["promotion"]["champion"] == "inference_pipeline:v0"


@pytest.mark.slow
def test_promotion_can_be_switched_off(instance):
    store = open_store()
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
