"""Code versions come from source: a change to one plain module changes the code version of the
assets that use it and of nothing else, on any machine."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rental_pipeline.code_version import PACKAGE_ROOT, code_version, git_revision, module_closure, source_hash
from rental_pipeline.definitions import all_assets

ASSET_MODULES = {
    "raw_data": "rental_pipeline.assets.ingest",
    "clean_sample": "rental_pipeline.assets.cleaning",
    "trainval_data": "rental_pipeline.assets.split",
    "test_data": "rental_pipeline.assets.split",
    "inference_pipeline": "rental_pipeline.assets.training",
    "model_evaluation": "rental_pipeline.assets.evaluation",
    "batch_predictions": "rental_pipeline.assets.prediction",
    "sweep_leaderboard": "rental_pipeline.assets.sweep",
}
BUILD_DEFINITIONS = (
    "import json, rental_pipeline, rental_pipeline.definitions as d; "
    "print(json.dumps({'file': rental_pipeline.__file__, 'versions': "
    "{k.to_user_string(): a.code_versions_by_key[k] for a in d.all_assets for k in a.keys}}))"
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package, to edit."""
    shutil.copytree(PACKAGE_ROOT, tmp_path / "rental_pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def versions(tree: Path) -> dict[str, str]:
    root = tree / "rental_pipeline"
    return {asset: source_hash(module_closure(module, root), root) for asset, module in ASSET_MODULES.items()}


def changed_by(tree: Path, module: str, edit: str = "\n\ndef _added_by_test() -> None:\n    pass\n") -> set[str]:
    before = versions(tree)
    path = tree / "rental_pipeline" / module
    original = path.read_text()
    path.write_text(original + edit)
    try:
        after = versions(tree)
    finally:
        path.write_text(original)
    return {asset for asset in before if before[asset] != after[asset]}


@pytest.mark.slow
def test_definitions_built_from_a_copied_tree_carry_the_same_code_versions(tree):
    result = subprocess.run(
        [sys.executable, "-c", BUILD_DEFINITIONS],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2_000:]
    built = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(built["file"]).resolve().parent == (tree / "rental_pipeline").resolve()
    here = {k.to_user_string(): a.code_versions_by_key[k] for a in all_assets for k in a.keys}
    assert built["versions"] == here == versions(tree)
    assert here["raw_data"] == code_version("rental_pipeline.assets.ingest")


def test_a_plain_module_changes_exactly_the_assets_that_use_it(tree):
    # Synthetic listings are placed around the cleaning box, and batch predictions type their
    # columns as the inference pipelines read them.
    assert changed_by(tree, "cleaning.py") == {"clean_sample", "raw_data", "batch_predictions"}
    assert changed_by(tree, "features.py") == {
        "inference_pipeline", "model_evaluation", "sweep_leaderboard", "batch_predictions"
    }
    assert changed_by(tree, "boosting.py") == {"inference_pipeline", "sweep_leaderboard"}
    assert changed_by(tree, "synthetic.py") == {"raw_data", "batch_predictions"}
    assert changed_by(tree, "assets/evaluation.py") == {"model_evaluation"}
    assert changed_by(tree, "split.py") == {"trainval_data", "test_data", "inference_pipeline", "sweep_leaderboard"}
    # The models' parameters live apart from the estimators so the training config is built
    # without scikit-learn; model_evaluation depends on them through features.py, as it did when
    # the forest's parameters were defined there.
    assert changed_by(tree, "model_params.py") == {
        "inference_pipeline", "model_evaluation", "sweep_leaderboard", "batch_predictions"
    }


def test_storing_and_showing_values_is_not_part_of_any_code_version(tree):
    assert changed_by(tree, "store/codecs.py") == set()
    assert changed_by(tree, "io_manager.py") == set()
    assert changed_by(tree, "assets/metadata.py") == set()


def test_line_endings_do_not_change_a_code_version(tree):
    before = versions(tree)
    path = tree / "rental_pipeline" / "cleaning.py"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert versions(tree) == before


def test_a_lazy_import_inside_a_function_counts(tree):
    edit = "\n\ndef _later() -> None:\n    from rental_pipeline import name_tokens  # noqa: F401\n"
    assert changed_by(tree, "assets/cleaning.py", edit) == {"clean_sample"}
    assert "rental_pipeline.name_tokens" in module_closure("rental_pipeline.assets.training")


def test_git_revision_outside_a_checkout_is_none(tmp_path):
    git_revision.cache_clear()
    try:
        assert git_revision(tmp_path) is None
    finally:
        git_revision.cache_clear()
