"""Child process for the concurrent-runs test (run as a script, not collected).

python concurrent_training.py SIDE TRIALS FOLDER
    for each trial, writes FOLDER/ready-TRIAL-SIDE, waits for the other side's file, then runs
    training_job on FOLDER/source-TRIAL-SIDE.csv against the Dagster instance of DAGSTER_HOME and
    the store of RENTAL_PIPELINE_HOME, as `dagster job execute` would, and prints
    ``{"trial": T, "side": S, "run_id": ..., "success": ...}``. Both sides share the instance and
    the store, and start each trial together, so their runs overlap step for step.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import dagster as dg

from rental_pipeline.definitions import defs


def training_config(source: Path) -> dict:
    return {
        "ops": {
            "raw_data": {"config": {"source": str(source)}},
            "clean_sample_checks": {"config": {"min_rows": 100}},
            "inference_pipeline": {
                "config": {
                    "model": "random_forest",
                    "random_forest": {"n_estimators": 10, "max_depth": 8, "n_jobs": 1, "oob_score": False},
                }
            },
        }
    }


def wait_for(path: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the other side never reached {path.name}")
        time.sleep(0.005)


def main(side: int, trials: int, folder: Path) -> None:
    job = defs.resolve_job_def("training_job")
    with dg.DagsterInstance.get() as instance:
        for trial in range(trials):
            (folder / f"ready-{trial}-{side}").touch()
            wait_for(folder / f"ready-{trial}-{1 - side}")
            started = time.monotonic()
            result = job.execute_in_process(
                instance=instance,
                run_config=training_config(folder / f"source-{trial}-{side}.csv"),
                raise_on_error=False,
            )
            print(json.dumps({"trial": trial, "side": side, "run_id": result.run_id, "success": result.success,
                              "seconds": round(time.monotonic() - started, 2)}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
