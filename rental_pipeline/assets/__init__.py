"""One module per pipeline stage; each asset is a thin call into the plain functions beside it."""

# No `from __future__ import annotations` in asset modules: Dagster reads the config and context
# annotations at definition time and cannot resolve them from strings.
