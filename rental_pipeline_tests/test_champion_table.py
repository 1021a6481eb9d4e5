"""What model_evaluation's champion_vs_challenger table says when there was a prod it could not
be compared with: that prod, still holding the alias, is on the table, not "no prod before"."""

import pytest

from rental_pipeline.assets.evaluation import _head_to_head_table
from rental_pipeline.promotion import Promotion, decide_promotion


def _rows(promotion: Promotion, test_mae: float) -> list[dict]:
    return [record.data for record in _head_to_head_table(promotion, test_mae)["champion_vs_challenger"].records]


def test_a_prod_whose_training_data_is_unreadable_stays_on_the_table_as_prod():
    decision = decide_promotion(
        "inference_pipeline:v3", 31.5, "inference_pipeline:v1", None, unknown_training="inference_pipeline:v1"
    )
    promotion = Promotion(decision, promoted=False, outcome=decision.reason)
    rows = _rows(promotion, 31.5)
    assert [row["model"] for row in rows] == ["inference_pipeline:v3", "inference_pipeline:v1"]
    challenger, champion = rows
    assert "no prod before" not in challenger["role"] and challenger["prod now"] == ""
    assert champion["role"].startswith("champion (prod before this run)") and champion["prod now"] == "★ prod"
    assert "not readable" in champion["role"]


def test_no_prod_before_and_already_prod_keep_their_one_row():
    first = decide_promotion("inference_pipeline:v0", 30.0, None, None)
    [row] = _rows(Promotion(first, promoted=True, outcome=first.reason), 30.0)
    assert row["role"] == "challenger (evaluated), no prod before" and row["prod now"] == "★ prod"
    same = decide_promotion("inference_pipeline:v0", 30.0, "inference_pipeline:v0", None)
    [row] = _rows(Promotion(same, promoted=False, outcome=same.reason), 30.0)
    assert row["role"] == "challenger (evaluated), already prod" and row["prod now"] == "★ prod"


@pytest.mark.slow
@pytest.mark.usefixtures("no_mirror")
def test_a_reused_evaluation_says_its_comparison_and_decision_are_this_runs(instance):
    from rental_pipeline_tests.conftest import materialize, materialized
    from rental_pipeline_tests.test_fair_promotion import SOUND, config

    selection = ["raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation"]
    materialize(instance, config(SOUND), selection=selection)
    again = materialized(materialize(instance, config(SOUND), selection=selection))["model_evaluation"]
    described = again["description"]
    assert described.startswith(f"Reused {again['artifact']} from run ")
    assert "nothing was computed" not in described  # the decision against today's prod was
    assert "comparison with prod and the decision are this run's" in described
