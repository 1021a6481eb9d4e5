"""Names, aliases, file paths and references are checked before they touch the filesystem."""

from __future__ import annotations

import pytest

from rental_pipeline.store import ArtifactStore, InvalidNameError, parse_ref
from rental_pipeline.store.names import Ref, validate_alias, validate_file_path, validate_name


@pytest.mark.parametrize(
    "name", ["sample.csv", "clean_sample.csv", "random_forest_export", "a", "A-1.b_c"]
)
def test_accepts_wandb_style_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "..",
        ".",
        "../etc",
        "a/b",
        "a\\b",
        ".hidden",
        "-flag",
        "a b",
        "a:b",
        "x" * 129,
        "café",
        "a\nb",
        None,
        3,
    ],
)
def test_refuses_unsafe_names(name: object) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(name)


@pytest.mark.parametrize("alias", ["v0", "v12", "v01", "v7"])
def test_version_shaped_aliases_are_reserved(alias: str) -> None:
    with pytest.raises(InvalidNameError, match="version number"):
        validate_alias(alias)


@pytest.mark.parametrize("alias", ["prod", "reference", "best-2026.11", "v", "version2", "v2b"])
def test_ordinary_aliases(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize(
    "path", ["../x", "/abs", "a//b", "a\\b", "a/../b", "./a", "", "a/", ".tmp-x"]
)
def test_refuses_unsafe_file_paths(path: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_file_path(path)


def test_nested_file_paths_are_fine() -> None:
    assert validate_file_path("plots/feature_importance.png") == "plots/feature_importance.png"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model", Ref("model", alias="latest")),
        ("model:v3", Ref("model", version=3)),
        ("model:prod", Ref("model", alias="prod")),
        ("model:v0", Ref("model", version=0)),
    ],
)
def test_parse_ref(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize("text", ["model:", "model:v01", "a:b:c", ":v1", "../m:v1", "m:pr od"])
def test_parse_ref_refuses(text: str) -> None:
    with pytest.raises(InvalidNameError):
        parse_ref(text)


def test_store_refuses_bad_names_before_writing(tmp_path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(InvalidNameError, match="not valid"):
        store.write("../escape", {"f": b"x"}, type="raw_data")
    with pytest.raises(InvalidNameError):
        store.write("ok", {"../f": b"x"}, type="raw_data")
    with pytest.raises(InvalidNameError):
        store.write("ok", {"f": b"x"}, type="raw data")
    assert not (tmp_path / "escape").exists()
    assert store.names() == []


def test_latest_is_not_set_by_hand(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    store.write("a", {"f": b"1"}, type="t")
    with pytest.raises(InvalidNameError, match="latest"):
        store.set_alias("a:v0", "latest")
    with pytest.raises(InvalidNameError, match="version number"):
        store.set_alias("a:v0", "v1")
