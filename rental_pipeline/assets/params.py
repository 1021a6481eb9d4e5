"""Dagster config built from the parameter dataclasses, so each parameter is defined once.

The plain modules define their parameters as frozen dataclasses (`model_params.ForestParams`,
`cleaning.CleaningRules`): the default, and in the field's metadata the limits a config value
must respect (pydantic's `ge`, `gt`, `le`, `lt`) and the `description` the launchpad shows. The
config classes here are made from those fields, so changing a default or a limit in the dataclass
changes what the launchpad offers and accepts too. The dataclasses import nothing heavy, so this
runs when the code location loads.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import dagster as dg
from pydantic import Field, create_model


def _fields(params: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(params)
    fields = dataclasses.fields(params)
    if missing := [field.name for field in fields if field.default is dataclasses.MISSING]:
        raise TypeError(f"{params.__name__} fields {missing} need a plain default to be shown as config")
    return [(field, hints[field.name]) for field in fields]


def config_of(params: type, *, name: str) -> type[dg.Config]:
    """A config class with one field per dataclass field: its type, default, limits and description."""
    fields: dict[str, Any] = {
        field.name: (annotation, Field(default=field.default, **field.metadata))
        for field, annotation in _fields(params)
    }
    return create_model(name, __base__=dg.Config, __module__=params.__module__, **fields)


def with_overrides(base: type[dg.Config], params: type, *, description: str) -> type[dg.Config]:
    """``base`` plus one optional field per dataclass field, empty by default: a value set there
    replaces the one recorded elsewhere (see `checks.cleaning_rules_in_force`)."""
    fields: dict[str, Any] = {
        field.name: (annotation | None, Field(default=None, description=description))
        for field, annotation in _fields(params)
    }
    return create_model(f"{base.__name__}WithOverrides", __base__=base, __module__=base.__module__, **fields)
