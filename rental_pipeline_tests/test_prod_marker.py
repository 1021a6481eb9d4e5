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
