"""What the asset pages show: plots that are real pictures, numbers rounded for reading while the
store keeps every digit, and only the config and facts that apply."""

import io
import math
import subprocess
import sys

import pandas as pd
import pytest
from PIL import Image

from rental_pipeline import plots
from rental_pipeline.assets.metadata import PLOTS_ENV, round_for_display
from rental_pipeline.home import open_store
from rental_pipeline.predict import PREDICTION
from rental_pipeline.synthetic import generate_listings
from rental_pipeline_tests.conftest import PROJECT_ROOT, materialize, materialized, picture, run_config

# One worker runs this module, so the whole-graph run below is built once, not once per worker.
pytestmark = pytest.mark.xdist_group("metadata_graph")

# The pictures each asset page carries (by metadata key).
PLOTS = {
    "raw_data": {"price_distribution_plot"},
    "clean_sample": {"price_distribution_plot"},
    "inference_pipeline": {
        "validation_predicted_vs_actual_plot", "validation_errors_by_group_plot", "feature_importance_plot"
    },
    "model_evaluation": {"test_predicted_vs_actual_plot", "test_errors_by_group_plot"},
    "batch_predictions": {"predicted_price_plot"},
    "sweep_leaderboard": {"leaderboard_plot"},
}


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    """One whole-graph run shared by the tests below (its own state folders, W&B offline)."""
    import dagster as dg

    root = tmp_path_factory.mktemp("metadata-state")
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "RENTAL_PIPELINE_HOME": root / "home",
            "DAGSTER_HOME": root / "dagster",
            "WANDB_DIR": root / "wandb",
            "WANDB_MODE": "offline",
            PLOTS_ENV: "on",
        }.items():
            env.setenv(name, str(value))
        with dg.DagsterInstance.ephemeral() as instance:
            result = materialize(instance)
            yield materialized(result), open_store()


@pytest.mark.slow
def test_every_asset_page_carries_its_plots_as_small_pngs(graph):
    metadata, _ = graph
    for asset, keys in PLOTS.items():
        for key in keys:
            image = picture(metadata[asset][key])
            assert image.format == "PNG"
            assert 200 <= image.width <= 900 and 200 <= image.height <= 900, (asset, key, image.size)
            # a chart, not a blank canvas: more than a handful of colours are used
            assert len(image.convert("RGB").getcolors(maxcolors=4096) or []) > 5, (asset, key)


@pytest.mark.slow
def test_plots_off_draws_nothing_and_changes_no_artifact_or_number(graph, monkeypatch):
    metadata, store = graph
    monkeypatch.setenv(PLOTS_ENV, "off")
    import dagster as dg

    with dg.DagsterInstance.ephemeral() as instance:
        headless = materialized(materialize(instance))
    fresh = open_store()
    assert fresh.root != store.root
    for asset, keys in PLOTS.items():
        assert set(headless[asset]) == set(metadata[asset]) - keys, asset
    for asset in ("raw_data", "clean_sample", "trainval_data", "test_data", "batch_predictions"):
        assert fresh.get(f"{asset}:latest").digest == store.get(f"{asset}:latest").digest, asset
    for asset, key in (("inference_pipeline", "val_mae"), ("model_evaluation", "test_mae")):
        assert headless[asset][key] == metadata[asset][key]


@pytest.mark.slow
def test_plots_stay_out_of_the_store_and_numbers_keep_their_digits(graph):
    metadata, store = graph
    for asset in PLOTS:
        facts = store.get(f"{asset}:latest").metadata["facts"]
        assert not any(isinstance(v, str) and "data:image" in v for v in facts.values()), asset
    facts = store.get("inference_pipeline:latest").metadata["facts"]
    shown = metadata["inference_pipeline"]["val_mae"]
    assert shown == round_for_display(facts["val_mae"])
    assert len(repr(shown).replace(".", "").lstrip("0")) <= 4 < len(repr(facts["val_mae"]))
    evaluation = store.load("model_evaluation:latest")
    assert store.get("model_evaluation:latest").metadata["facts"]["test_mae"] == evaluation["test_mae"]
    for asset, values in metadata.items():
        for key, value in values.items():
            if isinstance(value, float) and math.isfinite(value):
                assert value == round_for_display(value), (asset, key, value)


@pytest.mark.slow
def test_importances_say_what_they_measure(graph):
    metadata, _ = graph
    model = metadata["inference_pipeline"]
    assert model["model"] == "random_forest"
    assert "impurity" in model["importance_unit"]
    columns = [column.name for column in model["feature_importances"].schema.columns]
    assert columns == ["feature", "importance", "spread"]


@pytest.mark.slow
def test_batch_prediction_quantiles_are_of_the_predictions(graph):
    metadata, store = graph
    scored = store.load("batch_predictions:latest")
    [quantiles] = [record.data for record in metadata["batch_predictions"]["predicted_price_quantiles"].records]
    assert quantiles["p50"] == pytest.approx(scored[PREDICTION].median(), abs=0.01)
    assert "price_quantiles" not in metadata["batch_predictions"]  # the input's prices say nothing of the model


@pytest.mark.slow
def test_the_config_recorded_is_the_config_that_applied(graph, instance, tmp_path):
    _, store = graph
    synthetic = store.get("raw_data:latest").metadata["config"]
    assert synthetic == {"rows": 1_500, "seed": 7}
    model = store.get("inference_pipeline:latest").metadata["config"]
    assert model["model"] == "random_forest" and "boosting" not in model and model["max_tfidf_features"] == 5

    path = tmp_path / "drop.csv"
    generate_listings(rows=300, seed=3).to_csv(path, index=False)
    materialize(instance, run_config(raw={"source": str(path)}), selection=["raw_data"])
    from_file = open_store().get("raw_data:latest")
    assert from_file.metadata["config"] == {"source": str(path)}  # no synthetic rows or seed, no URL timeout


def test_round_for_display_keeps_four_significant_digits_and_the_whole_part():
    assert round_for_display(34.70498532590965) == 34.7
    assert round_for_display(0.564312) == 0.5643
    assert round_for_display(19_001.4) == 19_001
    assert round_for_display(0.000123456) == 0.0001235
    assert round_for_display(-2.71828) == -2.718
    assert round_for_display(0.0) == 0.0 and math.isnan(round_for_display(float("nan")))


def test_prices_are_drawn_on_a_log_axis_so_outliers_do_not_flatten_them():
    raw = generate_listings(rows=2_000, seed=5)
    png = plots.price_distribution({"raw": raw["price"]}, title="prices")
    image = Image.open(io.BytesIO(png))
    assert image.size == (plots.WIDTH, plots.HEIGHT)
    # empty input still gives a picture, not an exception
    Image.open(io.BytesIO(plots.price_distribution({"none": pd.Series([], dtype=float)}, title="empty"))).load()


@pytest.mark.slow
def test_loading_the_code_location_does_not_import_matplotlib():
    code = "import sys, rental_pipeline.definitions; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_page_lists_the_datas_numbers_then_the_pictures_then_the_artifacts_own_facts():
    import dagster as dg

    from rental_pipeline.assets.metadata import page_order

    picture_entry = dg.MetadataValue.md("![prices](data:image/png;base64,iVBORw0KGgo=)")
    reused = {  # a reused materialization: the earlier run's entries, the IO manager's among them
        "description": "Reused clean_sample:v0 from run 1a2b3c4d: ...",
        "rows_in": 20_000,
        "artifact": "clean_sample:v0",
        "wandb_run": "unchanged",
        "price_distribution_plot": picture_entry,
        "price_quantiles": dg.MetadataValue.table([dg.TableRecord({"p50": 103.0})]),
        "config_used": dg.MetadataValue.json({"max_price": 350}),
        "notes": dg.MetadataValue.md("plain markdown, not a picture"),
    }
    assert list(page_order(reused)) == [
        "description", "rows_in", "price_quantiles", "notes", "price_distribution_plot", "artifact", "wandb_run",
        "config_used",
    ]
