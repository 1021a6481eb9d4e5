"""Promotion through the graph is judged on listings neither model trained on.

The cases where a gate scoring both models on the challenger's whole test split decides wrongly:
a re-split with another seed (most of its test listings are prod's training listings), and a
weekly drop that is mostly last week's listings. A prod model that memorised its training rows
then looks far better than it is.
"""

import dagster as dg
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error

from rental_pipeline.features import FEATURE_COLUMNS, TARGET
from rental_pipeline.home import open_store
from rental_pipeline.synthetic import generate_listings
from rental_pipeline_tests.conftest import materialize, materialized, run_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_mirror")]

# Three fully grown trees: near-perfect on the listings they trained on, poor on others.
MEMORISING = {
    "random_forest": {
        "n_estimators": 3, "max_depth": None, "min_samples_split": 2, "min_samples_leaf": 1,
        "max_features": 1.0, "n_jobs": 1, "oob_score": False,
    }
}
SOUND = {"random_forest": {"n_estimators": 30, "max_depth": 12, "n_jobs": 1, "oob_score": False}}


def refs(result) -> dict[str, str]:
    return {name: str(meta["artifact"]) for name, meta in materialized(result).items()}


def mae(model, listings: pd.DataFrame) -> float:
    return float(mean_absolute_error(listings[TARGET], model.predict(listings[FEATURE_COLUMNS])))


def config(training: dict, *, rows: int = 4_000, seed: int = 42, min_unseen_rows: int = 100, **raw) -> dict:
    built = run_config(raw={"rows": rows, **raw}, training=training)
    built["ops"]["split_listings"] = {"config": {"random_seed": seed}}
    built["ops"]["model_evaluation"] = {"config": {"min_unseen_rows": min_unseen_rows}}
    return built


def test_a_resplit_is_judged_on_listings_neither_model_trained_on(instance):
    store = open_store()
    selection = ["raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation"]
    first = refs(materialize(instance, config(MEMORISING), selection=selection))
    assert store.get("inference_pipeline:prod").ref == first["inference_pipeline"]

    second_run = materialize(instance, config(SOUND, seed=7), selection=selection)
    second, evaluation = refs(second_run), materialized(second_run)["model_evaluation"]
    test = store.load(second["test_data"])
    prod_trained = store.load(first["trainval_data"])["id"]
    own_trained = store.load(second["trainval_data"])["id"]
    unseen = test[~test["id"].isin(prod_trained) & ~test["id"].isin(own_trained)]
    champion, challenger = store.load(first["inference_pipeline"]), store.load(second["inference_pipeline"])

    # On the whole split prod looks far better: it trained on most of those listings.
    assert mae(champion, test) < mae(challenger, test) - 5
    assert evaluation["prod_trained_on_test_rows"] == int(test["id"].isin(prod_trained).sum()) > len(test) / 2
    # On the listings neither saw, the new model is better, and that is what the gate judged.
    assert evaluation["compared_rows"] == len(unseen) >= 100
    assert evaluation["prod_mae_on_compared"] == pytest.approx(mae(champion, unseen), abs=0.01)  # shown rounded
    assert evaluation["evaluated_mae_on_compared"] == pytest.approx(mae(challenger, unseen), abs=0.01)
    assert mae(challenger, unseen) < mae(champion, unseen)
    assert evaluation["promoted"] is True
    assert store.get("inference_pipeline:prod").ref == second["inference_pipeline"]
    # The record of the decision says what it was judged on, at full precision.
    record = store.flags(second["inference_pipeline"])["promotion"]["head_to_head"]
    assert record["rows"] == len(unseen) and record["champion_mae"] == pytest.approx(mae(champion, unseen))
    move = [m for m in store.alias_log("inference_pipeline") if m.alias == "prod"][-1]
    assert f"{len(unseen):,} were unseen by both" in move.reason
    # The asset page leads with the head-to-head table.
    table = materialized(second_run)["model_evaluation"]["champion_vs_challenger"]
    assert [r.data["model"] for r in table.records][0].startswith(second["inference_pipeline"])


def test_too_few_unseen_listings_keep_prod_and_say_so(instance):
    store = open_store()
    first = refs(materialize(instance, config(MEMORISING)))
    again = materialize(instance, config(SOUND, seed=7, min_unseen_rows=1_000))
    evaluation = materialized(again)["model_evaluation"]
    assert evaluation["promoted"] is False
    assert "fewer than min_unseen_rows (1,000)" in evaluation["promotion"]
    assert store.get("inference_pipeline:prod").ref == first["inference_pipeline"]
    assert store.flags(evaluation["evaluated_model"])["promotion"]["promoted"] is False


def test_a_drop_of_mostly_last_weeks_listings_is_judged_on_the_new_ones(instance, tmp_path):
    """Week two keeps 80% of week one's listings: its test split is mostly prod's training data."""
    week_one = generate_listings(rows=4_000, seed=11)
    fresh = generate_listings(rows=1_000, seed=12)
    week_two = pd.concat([week_one.sample(frac=0.8, random_state=3), fresh], ignore_index=True)
    week_two = week_two.drop_duplicates("id")
    paths = []
    for number, frame in enumerate((week_one, week_two), start=1):
        paths.append(tmp_path / f"week-{number}.csv")
        frame.to_csv(paths[-1], index=False)

    store = open_store()
    first = refs(materialize(instance, config(MEMORISING, source=str(paths[0]))))
    second_run = materialize(instance, config(SOUND, source=str(paths[1]), min_unseen_rows=50))
    second, evaluation = refs(second_run), materialized(second_run)["model_evaluation"]
    test = store.load(second["test_data"])
    prod_trained = store.load(first["trainval_data"])["id"]
    overlap = int(test["id"].isin(prod_trained).sum())
    assert overlap > len(test) / 2
    assert evaluation["prod_trained_on_test_rows"] == overlap
    assert evaluation["compared_rows"] == len(test) - overlap
    champion, challenger = store.load(first["inference_pipeline"]), store.load(second["inference_pipeline"])
    unseen = test[~test["id"].isin(prod_trained)]
    assert evaluation["promoted"] is (mae(challenger, unseen) < mae(champion, unseen))


def test_a_model_is_never_scored_on_listings_it_trained_on(instance):
    """test_data re-split alone with another seed shares most listings with the trainval_data the
    model trained on: its check fails, and scoring the model on it anyway (pinned) is refused."""
    import dagster as dg

    from rental_pipeline.definitions import all_assets
    from rental_pipeline.io_manager import ArtifactStoreResource, artifact_io_manager

    store = open_store()
    first = refs(materialize(instance, config(SOUND)))
    resplit = materialize(
        instance, config(SOUND, seed=7), selection=["test_data"], raise_on_error=False
    )
    check = next(e for e in resplit.get_asset_check_evaluations() if e.check_name == "no_shared_ids")
    assert not check.passed and check.metadata["compared_with"].value == first["trainval_data"]
    leaky = str(materialized(resplit)["test_data"]["artifact"])
    assert "no_shared_ids" in store.flags(leaky)["failed_checks"]

    pinned = dg.materialize(
        all_assets,
        instance=instance,
        selection=["model_evaluation"],
        resources={
            "artifact_store": ArtifactStoreResource(),
            "io_manager": artifact_io_manager.configured({"pins": {"test_data": leaky.split(":")[1]}}),
        },
        raise_on_error=False,
    )
    assert not pinned.success
    failure = next(e for e in pinned.all_events if e.event_type_value == "STEP_FAILURE")
    assert f"{first['inference_pipeline']} trained on" in str(failure.event_specific_data.error)
    assert not store.exists("model_evaluation:v1")


def test_a_reused_evaluation_shows_only_this_runs_comparison(instance):
    selection = ["raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation"]
    materialize(instance, config(MEMORISING), selection=selection)
    compared = materialized(materialize(instance, config(SOUND, seed=7), selection=selection))["model_evaluation"]
    assert compared["promoted"] is True and "compared_rows" in compared
    again = materialized(materialize(instance, config(SOUND, seed=7), selection=selection))["model_evaluation"]
    assert again["reused_from_run"] != "unknown" and again["promotion"].endswith("is already prod")
    assert not {"compared_with", "compared_rows"} & set(again)
    # the table still leads the page, with this run's one model: the evaluated one, already prod
    [row] = [record.data for record in again["champion_vs_challenger"].records]
    assert row["model"] == again["evaluated_model"] and row["prod now"] == "★ prod" and "already prod" in row["role"]
    assert list(again)[:2] == ["description", "champion_vs_challenger"]  # after the line saying it was reused
    assert again["description"].startswith(f"Reused {again['artifact']} from run ")


def test_the_model_holding_prod_says_so_without_making_anything_unsynced(instance):
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.loader import LoadingContextForTest

    from rental_pipeline.definitions import defs

    selection = ["raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation"]
    first = refs(materialize(instance, config(MEMORISING), selection=selection))
    kept = materialize(instance, config(SOUND, seed=7, min_unseen_rows=1_000_000), selection=selection)
    [observation] = instance.fetch_observations(dg.AssetKey("inference_pipeline"), limit=1).records
    said = observation.event_log_entry.asset_observation
    assert said.tags["rental_pipeline/prod"] == "v0" and first["inference_pipeline"] == "inference_pipeline:v0"
    assert said.metadata["prod"].value.startswith(f"★ prod: {first['inference_pipeline']} (stays prod")
    assert observation.run_id == kept.run_id
    # what the lineage graph's "Unsynced" marks come from
    stale = CachingStaleStatusResolver(instance, defs.resolve_asset_graph(), LoadingContextForTest(instance))
    for name in ("inference_pipeline", "model_evaluation"):
        assert stale.get_status(dg.AssetKey(name)) == StaleStatus.FRESH, name
