"""Code versions come from source: a change to one plain module changes the code version of the
assets that use it and of nothing else, on any machine."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rental_pipeline.code_version import (
    PACKAGE_ROOT,
    code_modules,
    code_version,
    git_revision,
    model_modules,
    module_closure,
    source_hash,
)
from rental_pipeline.definitions import all_assets
from rental_pipeline.model_types import TRUSTED_MODEL_NODES

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

# The assets that load a stored model (the challenger and prod in `model_evaluation`, prod or a
# pinned version in `batch_predictions`), and the ones that fit the models' classes themselves.
LOADS_MODELS = {"model_evaluation", "batch_predictions"}
FITS_MODELS = {"inference_pipeline", "sweep_leaderboard"}
# Builds the definitions from the tree on PYTHONPATH as copied and after each edit (appended to one
# file, then undone), in one interpreter: the package is imported afresh each time, Dagster and the
# libraries once. Prints {file ("" as copied): {asset: code version}} as JSON.
BUILD_EDITED_DEFINITIONS = """
import json, sys
from pathlib import Path

package, edit, built = Path(sys.argv[1]), sys.argv[2], {}
for file in ["", *sys.argv[3:]]:
    for name in [name for name in sys.modules if name.partition(".")[0] == "rental_pipeline"]:
        del sys.modules[name]
    path = package / file
    original = path.read_text() if file else ""
    if file:
        path.write_text(original + edit)
    try:
        import rental_pipeline.definitions as d
        assert Path(d.__file__).resolve().parent == package.resolve(), d.__file__
        built[file] = {k.to_user_string(): a.code_versions_by_key[k] for a in d.all_assets for k in a.keys}
    finally:
        if file:
            path.write_text(original)
print(json.dumps(built))
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package, to edit."""
    shutil.copytree(PACKAGE_ROOT, tmp_path / "rental_pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def versions(tree: Path) -> dict[str, str]:
    root = tree / "rental_pipeline"
    return {
        asset: source_hash(code_modules(module, root, loads_models=asset in LOADS_MODELS), root)
        for asset, module in ASSET_MODULES.items()
    }


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


def model_code_files(package: Path) -> list[str]:
    """The package's files whose classes or functions a stored model may hold, read off the model
    codec's trusted type names (so a type added there is covered here without a change)."""
    files = set()
    for name in set().union(*TRUSTED_MODEL_NODES.values()):
        parts = name.split(".")
        if parts[0] != "rental_pipeline":
            continue
        # `rental_pipeline.boosting.AveragedRegressor`: the longest prefix that is a module
        for end in range(len(parts) - 1, 1, -1):
            base = Path(*parts[1:end])
            found = [path for path in (base.with_suffix(".py"), base / "__init__.py") if (package / path).is_file()]
            if found:
                files.add(found[0].as_posix())
                break
        else:
            raise AssertionError(f"the model codec trusts {name}, which no module of the package defines")
    return sorted(files)


def changed_in_built_definitions(
    tree: Path, files: list[str], edit: str = "\n\ndef _added_by_test() -> None:\n    pass\n"
) -> dict[str, set[str]]:
    """File -> the assets whose code version, in definitions built from ``tree``, that edit changes."""
    done = subprocess.run(
        [sys.executable, "-c", BUILD_EDITED_DEFINITIONS, str(tree / "rental_pipeline"), edit, *files],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2_000:]
    built = json.loads(done.stdout.strip().splitlines()[-1])
    before = built.pop("")
    return {file: {asset for asset in before if after[asset] != before[asset]} for file, after in built.items()}


@pytest.mark.slow
def test_an_asset_that_loads_a_model_covers_the_code_of_every_class_a_stored_model_may_hold(tree):
    # A stored model is the state of these classes; how it predicts is their code as it is now.
    # Changing it without retraining must not let the run cache reuse scores or predictions.
    files = model_code_files(tree / "rental_pipeline")
    assert {"boosting.py", "features.py"} <= set(files)
    changed = changed_in_built_definitions(tree, files)
    for file in files:
        assert changed[file] >= LOADS_MODELS | FITS_MODELS, file
        assert not changed[file] & {"raw_data", "clean_sample", "trainval_data", "test_data"}, file


@pytest.mark.slow
def test_code_no_model_runs_leaves_the_model_assets_alone(tree):
    changed = changed_in_built_definitions(tree, ["assets/cleaning.py", "assets/split.py", "split.py"])
    assert changed["assets/cleaning.py"] == {"clean_sample"}
    assert changed["assets/split.py"] == {"trainval_data", "test_data"}
    # How models are fitted is not how a stored one predicts: a new split makes a new model, and
    # that new input, not a new code version, is what re-scores it.
    assert changed["split.py"] == {"trainval_data", "test_data"} | FITS_MODELS


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
    # A stored model predicts with the code of its classes as it is now.
    assert changed_by(tree, "boosting.py") == LOADS_MODELS | FITS_MODELS
    assert changed_by(tree, "name_tokens.py") == LOADS_MODELS | FITS_MODELS
    assert changed_by(tree, "catboost_trees.py") == LOADS_MODELS | FITS_MODELS
    assert changed_by(tree, "synthetic.py") == {"raw_data", "batch_predictions"}
    assert changed_by(tree, "assets/evaluation.py") == {"model_evaluation"}
    assert changed_by(tree, "split.py") == {"trainval_data", "test_data"} | FITS_MODELS
    # The models' parameters live apart from the estimators so the training config is built
    # without scikit-learn; model_evaluation depends on them through features.py, as it did when
    # the forest's parameters were defined there.
    assert changed_by(tree, "model_params.py") == {
        "inference_pipeline", "model_evaluation", "sweep_leaderboard", "batch_predictions"
    }


def test_the_definitions_say_which_assets_load_a_model():
    here = {k.to_user_string(): a.code_versions_by_key[k] for a in all_assets for k in a.keys}
    assert here == versions(PACKAGE_ROOT.parent)
    assert here["model_evaluation"] == code_version("rental_pipeline.assets.evaluation", loads_models=True)
    assert here["model_evaluation"] != code_version("rental_pipeline.assets.evaluation")


def test_the_model_code_is_what_the_model_codec_trusts_and_what_it_imports():
    named = {
        f"rental_pipeline.{file.removesuffix('.py').removesuffix('/__init__').replace('/', '.')}"
        for file in model_code_files(PACKAGE_ROOT)
    }
    assert named >= {"rental_pipeline.boosting", "rental_pipeline.features"}
    assert set(model_modules()) == set().union(*(module_closure(module) for module in named))
    assert not any(module.startswith("rental_pipeline.store") for module in model_modules())


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
