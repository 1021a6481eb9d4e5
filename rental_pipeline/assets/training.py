"""`inference_pipeline`: preprocessing plus regressor, validated on a fit to the train part of
trainval; the boosted default is then stored as fitted again on train + validation."""

from typing import Any

import dagster as dg
from pydantic import Field, field_validator, model_validator

from rental_pipeline.assets.metadata import CHARTS_NOTE
from rental_pipeline.assets.params import config_of
from rental_pipeline.code_version import code_version
from rental_pipeline.model_params import BOOSTED, MODELS, RANDOM_FOREST, BoostingParams, ForestParams
from rental_pipeline.records import CONFIG_USED_KEY
from rental_pipeline.reuse import reusable
from rental_pipeline.settings import Settings


class RandomForestConfig(config_of(ForestParams, name="RandomForestConfig")):
    """scikit-learn's RandomForestRegressor parameters, defaulting to the reference's."""

    def params(self) -> ForestParams:
        return ForestParams(**self.model_dump())


class BoostingConfig(config_of(BoostingParams, name="BoostingConfig")):
    """The boosted default model (see rental_pipeline/boosting.py); values chosen on validation only."""

    def params(self) -> BoostingParams:
        return BoostingParams(**self.model_dump())

    @model_validator(mode="after")
    def _averages_some_model(self) -> "BoostingConfig":
        self.params()  # refused as the config is read, before anything is fitted: BoostingParams checks the counts
        return self


class TrainingConfig(dg.Config):
    model: str = Field(
        default=BOOSTED,
        description=f"'{BOOSTED}' (default: gradient boosting on richer features) or "
        f"'{RANDOM_FOREST}' (the reference pipeline, parameter for parameter).",
    )
    val_size: float = Field(default=0.2, gt=0, lt=1, description="Share of trainval held out for validation.")
    random_seed: int = 42
    stratify_by: str = Field(default="neighbourhood_group", description="Column to stratify on, or 'none'.")
    max_tfidf_features: int = Field(default=5, ge=1, description="Words kept from listing names (random_forest).")
    random_forest: RandomForestConfig = Field(default_factory=RandomForestConfig)
    boosting: BoostingConfig = Field(default_factory=BoostingConfig)

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}: use one of {MODELS}")
        return model

    def used(self) -> dict:
        """This config as run config, less what the chosen model ignores (the other model's section;
        max_tfidf_features, which only the reference preprocessing reads)."""
        ignored = {"boosting"} if self.model == RANDOM_FOREST else {"random_forest", "max_tfidf_features"}
        return self.model_dump(exclude=ignored)

    def arguments(self) -> dict:
        """Keyword arguments of `train_inference_pipeline`."""
        return {
            "val_size": self.val_size,
            "random_seed": self.random_seed,
            "stratify_by": self.stratify_by,
            "model": self.model,
            "max_tfidf_features": self.max_tfidf_features,
            "forest": self.random_forest.params(),
            "boosting": self.boosting.params(),
        }


@dg.asset(
    group_name="model",
    kinds={"scikitlearn"},
    metadata={"artifact_type": "model_export"},
    code_version=code_version(__name__),
    description="Fitted scikit-learn Pipeline (preprocessing + regressor: boosted by default, or the reference "
    "random forest); validation MAE and R²." + CHARTS_NOTE,
)
@reusable
def inference_pipeline(
    context: dg.AssetExecutionContext, config: TrainingConfig, trainval_data: Any, settings: Settings
) -> dg.Output:
    from rental_pipeline.assets.metadata import importance_metadata, model_quality_metadata
    from rental_pipeline.training import train_inference_pipeline

    result = train_inference_pipeline(trainval_data, **config.arguments())
    metrics = result.metrics
    context.log.info(f"{config.model}: validation MAE {metrics['val_mae']:.2f}, R² {metrics['val_r2']:.3f}")
    return dg.Output(
        result.pipeline,
        metadata={
            "val_mae": metrics["val_mae"],
            "val_r2": metrics["val_r2"],
            **({"oob_r2": metrics["oob_r2"]} if "oob_r2" in metrics else {}),
            "model": config.model,
            "fit_seconds": metrics["fit_seconds"],
            "train_rows": int(metrics["train_rows"]),
            "val_rows": int(metrics["val_rows"]),
            "final_fit_rows": int(metrics["final_fit_rows"]),
            "fitted_on": fitted_on(metrics),
            **(
                model_quality_metadata(result.validation, "validation", plots=settings.plots)
                if result.validation is not None
                else {}
            ),
            **importance_metadata(result.importances, result.importance_unit, plots=settings.plots),
            # the run config that trains this model again, without the other model's settings
            CONFIG_USED_KEY: dg.MetadataValue.json(config.used()),
        },
    )


def fitted_on(metrics: dict) -> str:
    """What the stored model was fitted on, for its page: the validation figures always come from
    a fit on train only, which the stored model may not be."""
    train, final = int(metrics["train_rows"]), int(metrics["final_fit_rows"])
    if final == train:
        return f"train ({train:,} rows), as validated"
    return (
        f"train + validation ({final:,} rows), refitted once its settings were validated; "
        f"val_mae and val_r2 are from the fit on train only ({train:,} rows)"
    )
