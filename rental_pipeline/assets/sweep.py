"""`sweep_leaderboard`: the reference's Hydra multirun as one asset, each trial a W&B run."""

from typing import Any

import dagster as dg
from pydantic import Field

from rental_pipeline.assets.training import TrainingConfig
from rental_pipeline.code_version import code_version
from rental_pipeline.io_manager import ArtifactStoreResource, reused_output, reused_outputs
from rental_pipeline.store import WandbMirror


class SweepConfig(dg.Config):
    """The grid: every combination of the listed values is trained; an empty list keeps the base value."""

    max_tfidf_features: list[int] = Field(default=[10, 15, 30])
    max_features: list[float] = Field(default=[0.1, 0.33, 0.5, 0.75, 1.0], description="random_forest.max_features")
    n_estimators: list[int] = Field(default=[], description="random_forest.n_estimators")
    max_depth: list[int] = Field(default=[], description="random_forest.max_depth")
    min_samples_leaf: list[int] = Field(default=[], description="random_forest.min_samples_leaf")
    training: TrainingConfig = Field(
        default_factory=lambda: TrainingConfig(model="random_forest"),
        description="Everything the grid leaves fixed. The grid's random_forest values need model: random_forest.",
    )

    def grid(self) -> dict[str, list]:
        forest = {"max_features", "n_estimators", "max_depth", "min_samples_leaf"}
        return {
            (f"random_forest.{name}" if name in forest else name): list(getattr(self, name))
            for name in ("max_tfidf_features", *sorted(forest))
        }


@dg.asset(
    group_name="sweep",
    kinds={"scikitlearn", "wandb"},
    metadata={"artifact_type": "sweep"},
    code_version=code_version(__name__),
    description="Validation MAE and R² of every configuration in the grid, best first.",
)
def sweep_leaderboard(
    context: dg.AssetExecutionContext,
    config: SweepConfig,
    artifact_store: ArtifactStoreResource,
    trainval_data: Any,
) -> dg.Output:
    if hits := reused_outputs(context):
        return reused_output(context, hits["sweep_leaderboard"])
    from rental_pipeline.assets.metadata import table
    from rental_pipeline.sweep import best_training_config, run_sweep

    mirror = WandbMirror(artifact_store.store())
    base = config.training.arguments()

    fit_seconds: dict[str, float] = {}

    def record(number: int, trial: dict, result) -> None:
        metrics = {k: result.metrics[k] for k in ("val_mae", "val_r2", "fit_seconds")}
        fit_seconds[str(number)] = round(metrics["fit_seconds"], 3)
        run = mirror.record_run(
            job_type="sweep_trial", group=context.run.run_id, run_name=f"trial-{number}", config=trial, summary=metrics
        )
        context.log.info(f"Trial {number} {trial}: validation MAE {metrics['val_mae']:.2f} (W&B {run.mode})")

    leaderboard = run_sweep(trainval_data, config.grid(), base, on_trial=record)
    best = best_training_config(leaderboard, config.training.model_dump())
    return dg.Output(
        leaderboard,
        metadata={
            "trials": len(leaderboard),
            "best_val_mae": float(leaderboard["val_mae"].iloc[0]),
            "best_config": dg.MetadataValue.json(best),
            "leaderboard": table(leaderboard.assign(fit_seconds=leaderboard["trial"].astype(str).map(fit_seconds)).round(4)),
            "fit_seconds_by_trial": dg.MetadataValue.json(fit_seconds),
            "next_step": "rental-pipeline sweep best -o best.yaml, then "
            "dagster job execute -m rental_pipeline.definitions -j training_job -c best.yaml",
        },
    )
