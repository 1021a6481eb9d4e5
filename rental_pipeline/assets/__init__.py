"""One module per pipeline stage; each asset is a thin call into the plain functions beside it."""

# The plain modules (pandas, scikit-learn, pandera underneath) are imported inside the asset
# functions, so loading the code location imports none of them; `rental_pipeline.code_version`
# reads those imports as well, so an asset's code version still covers them.
#
# No `from __future__ import annotations` in asset modules: Dagster reads the config and context
# annotations at definition time and cannot resolve them from strings.
