"""The model's page says which version holds prod after a move made by hand, not only after a
run's promotion decision."""

import os

import dagster as dg
from click.testing import CliRunner

from rental_pipeline.cli import main
from rental_pipeline.home import open_store


def _latest_prod_observation(instance: dg.DagsterInstance):
    records = instance.fetch_observations(dg.AssetKey("inference_pipeline"), limit=1).records
    return records[0].event_log_entry.asset_observation if records else None


def test_a_prod_move_by_hand_is_what_the_models_page_says_next(no_mirror):
    store = open_store()
    store.save("inference_pipeline", {"model": "first"}, type="model")
    store.save("inference_pipeline", {"model": "second"}, type="model")
    with dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        # what model_evaluation logged when v0 was promoted by a run
        instance.report_runless_asset_event(
            dg.AssetObservation("inference_pipeline", tags={"rental_pipeline/prod": "v0"},
                                description="inference_pipeline:v0 holds prod")
        )
        store.set_alias("inference_pipeline:v0", "prod")

        moved = CliRunner().invoke(main, ["artifacts", "alias", "inference_pipeline:v1", "prod", "--reason", "hotfix"])
        assert moved.exit_code == 0, moved.output
        said = _latest_prod_observation(instance)
        assert said.tags["rental_pipeline/prod"] == "v1"
        assert said.description.startswith("inference_pipeline:v1 holds prod")
        assert "by hand" in said.description and "hotfix" in said.description

        removed = CliRunner().invoke(main, ["artifacts", "alias", "inference_pipeline:v1", "prod", "--remove"])
        assert removed.exit_code == 0, removed.output
        said = _latest_prod_observation(instance)
        assert said.tags["rental_pipeline/prod"] == "none" and "no version holds prod" in said.description

        # another artifact's alias, or another alias, says nothing about prod
        CliRunner().invoke(main, ["artifacts", "alias", "inference_pipeline:v0", "staging"])
        assert _latest_prod_observation(instance).tags["rental_pipeline/prod"] == "none"


def test_a_decision_to_keep_prod_names_the_prod_another_run_moved_in_meanwhile(tmp_path):
    """Two evaluations at once: the late one read prod before the early one moved it, and keeps
    prod (its model is worse). What it says holds prod is the store's prod now, not the one it read."""
    from rental_pipeline.cleaning import clean_listings
    from rental_pipeline.features import FEATURE_COLUMNS, TARGET, ForestParams, build_forest_pipeline
    from rental_pipeline.promotion import PROD, promote
    from rental_pipeline.synthetic import generate_listings
    from rental_pipeline.versions import VersionResolver

    store = open_store(tmp_path / "artifacts")
    listings, _ = clean_listings(generate_listings(rows=700, seed=5))
    train, test = listings.iloc[:500], listings.iloc[500:].reset_index(drop=True)
    trained_on = store.save("trainval_data", train, type="segregated_data").version.ref

    def stored_model(depth: int, trees: int) -> tuple[str, float]:
        model = build_forest_pipeline(5, ForestParams(n_estimators=trees, max_depth=depth, n_jobs=1, oob_score=False))
        model.fit(train[FEATURE_COLUMNS], train[TARGET])
        ref = store.save("inference_pipeline", model, type="model_export", inputs=[trained_on]).version.ref
        return ref, float((test[TARGET] - model.predict(test[FEATURE_COLUMNS])).abs().mean())

    middle, _ = stored_model(4, 5)
    store.set_alias(middle, PROD)
    worse, worse_mae = stored_model(1, 1)
    strong, strong_mae = stored_model(10, 10)

    def resolver() -> VersionResolver:
        return VersionResolver(store, {}, lambda name: None, lambda name: None)

    late = resolver()
    assert late.alias("inference_pipeline", PROD) == middle  # read before the early run moved prod
    early = promote(store, resolver(), strong, strong_mae, lambda: test, min_unseen_rows=50, min_improvement=-1e6)
    assert early.promoted
    kept = promote(store, late, worse, worse_mae, lambda: test, min_unseen_rows=50)
    assert not kept.promoted and kept.decision.champion == middle
    assert kept.metadata()["prod_model"] == strong == store.get("inference_pipeline:prod").ref
    assert kept.outcome.endswith(f"prod is {strong} now, moved by another writer while this run decided")
