"""`inference_pipeline`: preprocessing plus regressor, fitted on the train part of trainval."""

from dataclasses import asdict

import dagster as dg
import pandas as pd
from pydantic import Field
from sklearn.pipeline import Pipeline

from rental_pipeline.assets.metadata import table
from rental_pipeline.features import ForestParams, feature_importances
from rental_pipeline.training import train_inference_pipeline

_FOREST = ForestParams()


class RandomForestConfig(dg.Config):
    """scikit-learn's RandomForestRegressor parameters, defaulting to the reference's."""

    n_estimators: int = Field(default=_FOREST.n_estimators, ge=1)
    max_depth: int | None = _FOREST.max_depth
    min_samples_split: int = Field(default=_FOREST.min_samples_split, ge=2)
    min_samples_leaf: int = Field(default=_FOREST.min_samples_leaf, ge=1)
    criterion: str = _FOREST.criterion
    max_features: float = Field(default=_FOREST.max_features, gt=0, le=1)
    oob_score: bool = _FOREST.oob_score
    n_jobs: int = _FOREST.n_jobs
    random_state: int = _FOREST.random_state

    def params(self) -> ForestParams:
        return ForestParams(**self.model_dump())


class TrainingConfig(dg.Config):
    val_size: float = Field(default=0.2, gt=0, lt=1, description="Share of trainval held out for validation.")
    random_seed: int = 42
    stratify_by: str = Field(default="neighbourhood_group", description="Column to stratify on, or 'none'.")
    max_tfidf_features: int = Field(default=5, ge=1, description="Words kept from listing names.")
    random_forest: RandomForestConfig = Field(default_factory=RandomForestConfig)


@dg.asset(
    group_name="model",
    kinds={"scikitlearn"},
    metadata={"artifact_type": "model_export"},
    description="Fitted scikit-learn Pipeline (preprocessing + random forest); validation MAE and R².",
)
def inference_pipeline(
    context: dg.AssetExecutionContext, config: TrainingConfig, trainval_data: pd.DataFrame
) -> dg.Output[Pipeline]:
    result = train_inference_pipeline(
        trainval_data,
        val_size=config.val_size,
        random_seed=config.random_seed,
        stratify_by=config.stratify_by,
        max_tfidf_features=config.max_tfidf_features,
        forest=config.random_forest.params(),
    )
    metrics = result.metrics
    context.log.info(f"Validation MAE {metrics['val_mae']:.2f}, R² {metrics['val_r2']:.3f}")
    importances = feature_importances(result.pipeline).round({"importance": 4})
    return dg.Output(
        result.pipeline,
        metadata={
            "val_mae": metrics["val_mae"],
            "val_r2": metrics["val_r2"],
            **({"oob_r2": metrics["oob_r2"]} if "oob_r2" in metrics else {}),
            "fit_seconds": metrics["fit_seconds"],
            "train_rows": int(metrics["train_rows"]),
            "val_rows": int(metrics["val_rows"]),
            "feature_importances": table(importances),
            "params": dg.MetadataValue.json(
                {**config.model_dump(exclude={"random_forest"}), "random_forest": asdict(config.random_forest.params())}
            ),
        },
    )
