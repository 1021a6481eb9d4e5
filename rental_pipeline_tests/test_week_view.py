"""The week-by-week view: plain functions on weeks, and the asset through the real graph."""

import pandas as pd
import pytest

from rental_pipeline.week_view import Week, new_listings, week_plot, week_rows


def _week(week: str, ids: list[int], boroughs: list[str], **options) -> Week:
    clean = pd.DataFrame({"id": ids, "neighbourhood_group": boroughs, "price": [100] * len(ids)})
    return Week(week=week, version=f"clean_sample.{week}:v0", clean=clean, rows_in=len(ids) + 2, **options)


def test_each_week_says_its_rows_what_cleaning_dropped_its_drift_and_its_new_listings():
    reference = pd.DataFrame({"neighbourhood_group": ["Brooklyn", "Manhattan"] * 5})
    weeks = [
        _week("2024-03-04", [1, 2, 3, 4], ["Brooklyn", "Manhattan"] * 2, reference=reference, prod_changed=True),
        _week("2024-03-11", [2, 3, 4, 5], ["Brooklyn", "Manhattan", "Brooklyn", "Brooklyn"], reference=reference,
              prod_changed=False, failed_checks="borough_drift"),
        _week("2024-03-25", [5, 6], ["Brooklyn", "Manhattan"], reference=None, prod_changed=False),  # a week missing
    ]
    assert set(new_listings(weeks)) == {"2024-03-11"}
    assert list(new_listings(weeks)["2024-03-11"]["id"]) == [5]
    table = week_rows(weeks, {"2024-03-11": 12.5})
    assert list(table["week"]) == ["2024-03-04", "2024-03-11", "2024-03-25"]
    assert list(table["rows"]) == [4, 4, 2] and list(table["dropped"]) == [2, 2, 2]
    assert table["drift_bits"][0] == 0 and table["drift_bits"][1] > 0.1 and pd.isna(table["drift_bits"][2])
    assert pd.isna(table["new_listings"][0]) and table["new_listings"][1] == 1 and pd.isna(table["new_listings"][2])
    assert table["prod_mae_new"][1] == 12.5 and list(table["prod_changed"]) == [True, False, False]
    assert table["failed_checks"][1] == "borough_drift"
    assert week_plot(table)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.usefixtures("no_mirror")
def test_the_view_shows_every_week_and_the_bad_one_stands_out(instance):
    from rental_pipeline.definitions import defs
    from rental_pipeline_tests.conftest import FAST_FOREST, artifact_store

    job = defs.resolve_job_def("weekly_training_job")
    weeks = ["2024-03-04", "2024-03-11", "2024-03-18"]
    for week in weeks:
        config = {
            "ops": {
                "weekly_raw_data": {"config": {"rows": 1_500, "seed": 7, "drift": week == weeks[1]}},
                "weekly_clean_sample_checks": {"config": {"min_rows": 100}},
                "inference_pipeline": {"config": {"model": "random_forest", "random_forest": FAST_FOREST}},
            }
        }
        job.execute_in_process(instance=instance, partition_key=week, run_config=config, raise_on_error=False)
    store = artifact_store()
    view = store.load("week_by_week:latest")
    assert list(view["week"]) == weeks
    assert view["drift_bits"][1] > 0.2 > view["drift_bits"][2]  # the drifting week stands out
    assert "borough_drift" in view["failed_checks"][1] and not view["failed_checks"][2]
    assert bool(view["prod_changed"][0])  # the first model became prod in the first week
    assert view["prod_mae_new"][2] > 0 and view["new_listings"][2] > 0
    assert set(store.get("week_by_week:latest").inputs) >= {f"clean_sample.{week}:v0" for week in weeks}
