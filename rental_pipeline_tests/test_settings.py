"""The environment, read in one place: what each variable means, and that a run reads it as it starts."""

import dataclasses
from pathlib import Path

import pytest

from rental_pipeline.settings import Settings
from rental_pipeline.sources import SourceError


def test_an_empty_environment_gives_the_laptop_defaults():
    settings = Settings.from_environment({})
    assert settings.home == Path(".rental_pipeline").resolve()
    assert settings.dagster_home == settings.home / "dagster"
    assert (settings.landing, settings.plots, settings.automation, settings.weekly_source) == (None, True, False, "")


def test_each_variable_is_read_as_documented(tmp_path):
    settings = Settings.from_environment({
        "RENTAL_PIPELINE_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "instance"),
        "RENTAL_PIPELINE_LANDING": "s3://bucket/drops",
        "RENTAL_PIPELINE_PLOTS": " Off ",
        "RENTAL_PIPELINE_AUTOMATION": "yes",
        "RENTAL_PIPELINE_WEEKLY_SOURCE": " https://example.com/week.csv ",
    })
    assert settings.home == tmp_path / "home" and settings.dagster_home == tmp_path / "instance"
    assert settings.landing == "s3://bucket/drops"
    assert settings.plots is False and settings.automation is True
    assert settings.weekly_source == "https://example.com/week.csv"
    assert Settings.from_environment({"RENTAL_PIPELINE_LANDING": ""}).landing is None


def test_settings_are_frozen_and_never_show_the_environment():
    settings = Settings.from_environment({"RENTAL_PIPELINE_AUTH_TOKEN": "Bearer s3cr3t"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.plots = False  # type: ignore[misc]
    assert "s3cr3t" not in repr(settings)
    assert settings == Settings.from_environment({})  # the environment itself is not compared


def test_the_source_policy_comes_from_the_settings_not_the_process(tmp_path, monkeypatch):
    monkeypatch.setenv("RENTAL_PIPELINE_SOURCE_HOSTS", "example.com")
    settings = Settings.from_environment({"RENTAL_PIPELINE_SOURCE_FOLDERS": str(tmp_path)})
    policy = settings.source_policy()
    assert policy.folders == (tmp_path.resolve(),) and policy.hosts is None
    with pytest.raises(SourceError, match="RENTAL_PIPELINE_SOURCE_MAX_BYTES"):
        Settings.from_environment({"RENTAL_PIPELINE_SOURCE_MAX_BYTES": "lots"}).source_policy()


def test_a_snapshot_does_not_follow_later_changes(monkeypatch):
    monkeypatch.setenv("RENTAL_PIPELINE_PLOTS", "on")
    settings = Settings.from_environment()
    monkeypatch.setenv("RENTAL_PIPELINE_PLOTS", "off")
    assert settings.plots is True and Settings.from_environment().plots is False
