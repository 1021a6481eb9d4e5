"""Start-up stays cheap: loading the code location (what `dagster dev`, its code server and every
`dagster` command do first) imports none of the heavy libraries, and neither does the CLI before
it knows what it is asked to do. Each is checked in a fresh interpreter, where nothing has been
imported yet; the figures themselves are the benchmark's (`python -m benchmarks --only startup`).
"""

import json
import subprocess
import sys

import pytest

from rental_pipeline_tests.conftest import PROJECT_ROOT

HEAVY = ("sklearn", "pandera", "skops", "wandb", "pyarrow", "pandas", "numpy", "scipy", "matplotlib", "PIL")

# Imports `module` in this interpreter and prints, as JSON, which heavy packages ended up loaded
# and, for each, the project frames that first imported it (so a failure says where to look).
PROBE = """
import json, sys, traceback
heavy = set(sys.argv[2].split(","))
first = {}

class Watch:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in heavy and top not in first:
            first[top] = [
                f"{frame.filename.rpartition('rental_pipeline')[2] or frame.filename}:{frame.lineno}"
                for frame in traceback.extract_stack()
                if "rental_pipeline" in frame.filename
            ][-3:]
        return None

sys.meta_path.insert(0, Watch())
__import__(sys.argv[1])
print(json.dumps({top: first.get(top, []) for top in sorted(heavy) if top in sys.modules}))
"""


def imported_by(module: str, heavy: tuple[str, ...] = HEAVY) -> dict[str, list[str]]:
    """Heavy packages a fresh interpreter holds after importing ``module``, with who imported them."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, ",".join(heavy)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3_000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_loading_the_code_location_imports_no_heavy_library():
    assert imported_by("rental_pipeline.definitions") == {}


def test_the_code_location_still_defines_every_asset_check_and_job():
    from rental_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {
        "raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation",
        "batch_predictions", "sweep_leaderboard", "weekly_raw_data", "weekly_clean_sample", "week_by_week",
    }
    assert len(graph.asset_check_keys) == 16 + 13  # the weekly assets have the raw_data and clean_sample checks
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert jobs >= {"training_job", "checks_job", "sweep_job", "predict_job", "weekly_job"}


def test_the_cli_imports_neither_dagster_nor_a_heavy_library_before_a_command_runs():
    assert imported_by("rental_pipeline.cli", (*HEAVY, "dagster")) == {}


def test_the_store_imports_neither_dagster_nor_a_heavy_library():
    """The store's codecs import pandas, skops and wandb only when a frame, a model or a mirror
    needs them; the per-run value cache, which knows frames, lives beside the IO manager."""
    assert imported_by("rental_pipeline.store", (*HEAVY, "dagster", "boto3")) == {}


@pytest.mark.slow
def test_the_probe_does_see_a_heavy_import():
    """The probe itself works: a module that needs pandas at import is reported, with its frames."""
    found = imported_by("rental_pipeline.split")
    assert "pandas" in found and "sklearn" in found
    assert any("split.py" in frame for frame in found["pandas"])
