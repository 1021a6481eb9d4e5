"""train_best_job's run config: the best trial of a sweep version, or a refusal naming what to do."""

import dagster as dg
import pandas as pd
import pytest

from rental_pipeline.assets.sweep import best_run_config
from rental_pipeline.home import open_store


def test_no_sweep_yet_is_refused_naming_the_job_to_run_first():
    with pytest.raises(dg.DagsterInvalidConfigError, match="Materialize sweep_leaderboard"):
        best_run_config({"sweep": "sweep_leaderboard:latest"})


def test_a_version_that_is_not_a_sweep_is_refused_rather_than_read_as_a_leaderboard():
    listings = open_store().save("trainval_data", pd.DataFrame({"id": [1, 2], "price": [3.0, 4.0]}),
                                 type="segregated_data").version.ref
    with pytest.raises(dg.DagsterInvalidConfigError, match=f"{listings} is not a version of sweep_leaderboard"):
        best_run_config({"sweep": listings})
