"""Each parameter is defined once, as a dataclass field; the launchpad config is built from it."""

from dataclasses import dataclass, field, fields

import pydantic
import pytest

from rental_pipeline.assets.cleaning import CleaningConfig
from rental_pipeline.assets.params import config_of
from rental_pipeline.assets.training import BoostingConfig, RandomForestConfig
from rental_pipeline.checks import CleanSampleChecksConfig
from rental_pipeline.cleaning import CleaningRules
from rental_pipeline.model_params import BoostingParams, ForestParams


@dataclass(frozen=True)
class Knobs:
    depth: int = field(default=3, metadata={"ge": 1, "description": "How deep."})
    share: float | None = 0.5


def test_a_config_takes_type_default_limits_and_description_from_the_dataclass():
    config = config_of(Knobs, name="KnobsConfig")
    assert config().model_dump() == {"depth": 3, "share": 0.5}
    assert config.model_fields["depth"].description == "How deep."
    assert config(share=None).share is None
    with pytest.raises(pydantic.ValidationError, match="depth"):
        config(depth=0)


def test_a_field_without_a_plain_default_is_refused_by_name():
    @dataclass(frozen=True)
    class Listy:
        values: list = field(default_factory=list)

    with pytest.raises(TypeError, match=r"Listy fields \['values'\]"):
        config_of(Listy, name="ListyConfig")


def test_the_pipeline_configs_default_to_the_dataclasses_and_keep_their_limits():
    assert RandomForestConfig().params() == ForestParams()
    assert BoostingConfig().params() == BoostingParams()
    assert CleaningConfig().rules() == CleaningRules()
    for config, bad in (
        (RandomForestConfig, {"max_features": 1.5}),
        (BoostingConfig, {"max_bins": 256}),
        (BoostingConfig, {"catboost_depth": 11}),  # beyond what a stored CatBoost model may hold
    ):
        with pytest.raises(pydantic.ValidationError):
            config(**bad)
    with pytest.raises(pydantic.ValidationError, match="averages no models"):
        BoostingConfig(absolute_error_models=0, catboost_models=0)
    assert BoostingConfig(absolute_error_models=0).params().catboost_models == 2  # CatBoost alone is a model


def test_the_clean_sample_checks_offer_every_cleaning_rule_as_an_empty_override():
    rules = [f.name for f in fields(CleaningRules)]
    assert list(CleanSampleChecksConfig.model_fields)[-len(rules):] == rules
    assert all(getattr(CleanSampleChecksConfig(), name) is None for name in rules)
    assert CleanSampleChecksConfig(max_price=500).max_price == 500.0
