"""`rental-pipeline lineage`: from the prod model back to the raw file, in one command."""

import json

import dagster as dg
import pytest
from click.testing import CliRunner

from rental_pipeline.cli import main
from rental_pipeline_tests.conftest import materialize, run_config


@pytest.mark.slow
def test_lineage_of_prod_reaches_the_raw_file(instance, tmp_path):
    from rental_pipeline.synthetic import generate_listings

    source = tmp_path / "week.csv"
    generate_listings(rows=1_500, seed=5).to_csv(source, index=False)
    materialize(instance, run_config(raw={"source": str(source)}))

    result = CliRunner().invoke(main, ["lineage", "inference_pipeline:prod", "--json"])
    assert result.exit_code == 0, result.output
    chain = json.loads(result.output)
    assert [(c["depth"], c["artifact"]) for c in chain] == [
        (0, "inference_pipeline:v0"),
        (1, "trainval_data:v0"),
        (2, "clean_sample:v0"),
        (3, "raw_data:v0"),
    ]
    assert "prod" in chain[0]["aliases"]
    assert chain[0]["config"]["random_forest"]["n_estimators"] == 10
    assert chain[2]["config"]["max_price"] == 350
    raw = chain[3]
    assert raw["config"]["source"] == str(source)
    assert len(raw["facts"]["source_sha256"]) == 64
    assert all(len(c["digest"]) == 32 and c["code_version"] for c in chain)
    # Each artifact names the code version of the asset that made it, not the package version.
    from rental_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    for c in chain:
        name = c["artifact"].split(":")[0]
        assert c["code_version"] == graph.get(dg.AssetKey(name)).code_version
    assert len({c["code_version"] for c in chain}) == len(chain)
    # This test runs from the project's git checkout: the commit is recorded and shown.
    if chain[0]["git"] is not None:
        assert len(chain[0]["git"]["commit"]) == 40

    text = CliRunner().invoke(main, ["lineage", "model_evaluation:latest"]).output
    assert "model_evaluation:v0" in text and "test_data:v0" in text and f"source {source}" in text
    if chain[0]["git"] is not None:
        assert f"git commit {chain[0]['git']['commit']}" in text


def test_lineage_of_an_unknown_reference_is_a_clear_error(instance):
    result = CliRunner().invoke(main, ["lineage", "inference_pipeline:prod"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "inference_pipeline" in result.output
