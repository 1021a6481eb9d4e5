"""The pipeline's own estimator classes and functions, trusted in stored models.

The model codec (:mod:`rental_pipeline.model_files`) loads only (loader, type) pairs it trusts: its
reviewed scikit-learn and numpy nodes, and what a caller registers for its own code. This module
registers this package's, once, when it is imported (``open_store`` in :mod:`rental_pipeline.home`
imports it, so every store the pipeline opens loads its models). The list is derived from the
fitted pipelines of both models (`model_inventory` on `features.build_forest_pipeline` and
`boosting.build_boosted_pipeline`; model_files/test_model_files.py re-derives it and compares) and
reviewed: estimators rebuilt from their attributes (``ObjectNode``: no constructor call; scikit-
learn's `TargetEncoder` state is arrays of numbers and category strings) and the reference
pipeline's text flattening. A new class in a pipeline makes saving it fail until it is reviewed and
added here.
"""

from __future__ import annotations

from collections.abc import Mapping

from rental_pipeline.model_files import trust_model_nodes, trusted_model_nodes

PIPELINE_MODEL_NODES: Mapping[str, frozenset[str]] = {
    "ObjectNode": frozenset(
        {
            "rental_pipeline.boosting.AveragedRegressor",
            "rental_pipeline.boosting.CrossFittedTextPrice",
            "rental_pipeline.boosting.ListingNameFeatures",
            "rental_pipeline.boosting.LocationFeatures",
            # its fitted state is CatBoost's JSON model text, checked before CatBoost reads it
            "rental_pipeline.catboost_trees.CatBoostTrees",
            "rental_pipeline.features.DaysBeforeReference",
            "rental_pipeline.target_encoding.HostRoomKey",
            "rental_pipeline.target_encoding.LogPriceTargetEncoder",
            # the target encoder's folds: three plain values (n_splits, shuffle, random_state)
            "sklearn.model_selection._split.KFold",
        }
    ),
    "FunctionNode": frozenset({"rental_pipeline.features.flatten_text"}),
}

trust_model_nodes(PIPELINE_MODEL_NODES)

#: Every (loader, type) pair a stored model of this pipeline may hold: the store's and the above.
TRUSTED_MODEL_NODES: Mapping[str, frozenset[str]] = trusted_model_nodes()
