"""`sweep_leaderboard`: the reference's Hydra multirun as one asset, each trial a W&B run.

The trials reach W&B through the IO manager, with its mirror settings (mode, project), as runs
beside the leaderboard's own; an unchanged re-run reuses the leaderboard and makes no new runs.
"""

from typing import Any

import dagster as dg
from pydantic import Field, ValidationError, model_validator

from rental_pipeline.assets.training import TrainingConfig
from rental_pipeline.code_version import code_version
from rental_pipeline.reuse import reusable
from rental_pipeline.settings import Settings
from rental_pipeline.sweep import BOOSTED_GRID, REFERENCE_GRID, GridError, resolve_grid
from rental_pipeline.tracking.wandb_view import TRIALS_KEY

# Runs after the training graph's steps when both are ready: "Materialize all" shows the test MAE
# and the promotion decision first, then spends its time on the sweep.
SWEEP_PRIORITY = "-1"


def _describe(grid: dict[str, list[Any]]) -> str:
    return " x ".join(f"{key} {values}" for key, values in grid.items())


class SweepConfig(dg.Config):
    """The grid: every combination of the listed values is trained on one train/validation split."""

    training: TrainingConfig = Field(
        default_factory=TrainingConfig,
        description="Everything the grid leaves fixed, including the model the sweep trains (boosted by default).",
    )
    grid: dict[str, list[Any]] | None = Field(
        default=None,
        description="Parameter -> values to try, keyed like the leaderboard's columns: boosting.learning_rate, "
        "boosting.max_leaf_nodes, ... for the boosted model; max_tfidf_features, random_forest.max_features, ... "
        "for model: random_forest. A key the chosen model ignores is refused. Empty: the model's default grid "
        f"(boosted: {_describe(BOOSTED_GRID)}; random_forest, the reference grid: {_describe(REFERENCE_GRID)}).",
    )
    workers: int = Field(default=2, ge=1, description="Trials trained at once, one core each.")

    @model_validator(mode="after")
    def _grid_fits_the_model(self) -> "SweepConfig":
        """Refuse, before anything is trained, a key the model ignores or a value its config would refuse."""
        try:
            grid = resolve_grid(self.training.model, self.grid)
        except GridError as error:
            raise ValueError(str(error)) from error
        base = self.training.model_dump()
        for key, values in grid.items():
            section, _, field = key.rpartition(".")
            for value in values:
                trial = {**base, section: {**base[section], field: value}} if section else {**base, field: value}
                try:
                    TrainingConfig.model_validate(trial)
                except ValidationError as refused:
                    reasons = "; ".join(error["msg"] for error in refused.errors())
                    raise ValueError(f"grid key {key!r}: value {value!r} is not allowed ({reasons})") from None
        return self

    def resolved_grid(self) -> dict[str, list[Any]]:
        return resolve_grid(self.training.model, self.grid)


@dg.asset(
    group_name="sweep",
    kinds={"scikitlearn", "wandb"},
    op_tags={"dagster/priority": SWEEP_PRIORITY},
    metadata={"artifact_type": "sweep"},
    code_version=code_version(__name__),
    description="Validation MAE and R² of every configuration in the grid, best first.",
)
@reusable
def sweep_leaderboard(
    context: dg.AssetExecutionContext,
    config: SweepConfig,
    trainval_data: Any,
    settings: Settings,
) -> dg.Output:
    from rental_pipeline.assets.metadata import table
    from rental_pipeline.sweep import best_training_config, run_sweep

    base = config.training.arguments()

    fit_seconds: dict[str, float] = {}
    trials: list[dict] = []

    def record(number: int, trial: dict, result) -> None:
        metrics = {k: result.metrics[k] for k in ("val_mae", "val_r2", "fit_seconds", "train_rows", "val_rows")}
        fit_seconds[str(number)] = round(metrics["fit_seconds"], 3)
        trials.append(
            {
                "name": f"trial-{number}",
                "config": {"trial": number, "model": base["model"], **trial},
                "summary": metrics,
            }
        )
        context.log.info(f"Trial {number} {trial}: validation MAE {metrics['val_mae']:.2f}")

    grid = config.resolved_grid()
    context.log.info(f"Sweeping the {config.training.model} model over {_describe(grid)}, {config.workers} at a time")
    leaderboard = run_sweep(trainval_data, grid, base, on_trial=record, workers=config.workers)
    best = best_training_config(leaderboard, config.training.used())
    return dg.Output(
        leaderboard,
        metadata={
            "best_val_mae": float(leaderboard["val_mae"].iloc[0]),
            "trials": len(leaderboard),
            "model": config.training.model,
            "grid": dg.MetadataValue.json(grid),
            "best_config": dg.MetadataValue.json(best),
            **({"leaderboard_plot": _leaderboard_plot(leaderboard)} if settings.plots else {}),
            "leaderboard": table(
                leaderboard.assign(fit_seconds=leaderboard["trial"].astype(str).map(fit_seconds)).round(4)
            ),
            "fit_seconds_by_trial": dg.MetadataValue.json(fit_seconds),
            TRIALS_KEY: dg.MetadataValue.json(trials),
            "next_step": "rental-pipeline sweep best -o best.yaml, then "
            "dagster job execute -m rental_pipeline.definitions -j training_job -c best.yaml",
        },
    )


def _leaderboard_plot(leaderboard: Any) -> Any:
    from rental_pipeline.assets.metadata import image
    from rental_pipeline.plots import leaderboard as leaderboard_plot
    from rental_pipeline.sweep import swept_parameters

    return image(leaderboard_plot(leaderboard, swept_parameters(leaderboard)), "sweep leaderboard")
