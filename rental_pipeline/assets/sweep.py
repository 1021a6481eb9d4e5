"""`sweep_leaderboard`: the reference's Hydra multirun as one asset, each trial a W&B run.

The trials reach W&B through the IO manager, with its mirror settings (mode, project), as runs
beside the leaderboard's own; an unchanged re-run reuses the leaderboard and makes no new runs.
"""

from typing import Any

import dagster as dg
from pydantic import Field, ValidationError, model_validator

from rental_pipeline.assets.metadata import CHARTS_NOTE
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
    description="Validation MAE and R² of every configuration in the grid, best first." + CHARTS_NOTE,
)
@reusable
def sweep_leaderboard(
    context: dg.AssetExecutionContext,
    config: SweepConfig,
    trainval_data: Any,
    settings: Settings,
) -> dg.Output:
    from rental_pipeline.assets.metadata import table
    from rental_pipeline.sweep import best_training_config, run_sweep, swept_parameters

    base = config.training.arguments()

    from rental_pipeline.sweep_report import absolute_errors, judge, trained_trial

    fit_seconds: dict[str, float] = {}
    trials: list[dict] = []
    errors: dict[int, Any] = {}  # trial -> absolute validation errors, for the noise estimate

    def record(number: int, trial: dict, result) -> None:
        metrics = {k: result.metrics[k] for k in ("val_mae", "val_r2", "fit_seconds", "train_rows", "val_rows")}
        fit_seconds[str(number)] = round(metrics["fit_seconds"], 3)
        if (absolute := absolute_errors(result.validation)) is not None:
            errors[number] = absolute
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
    verdict = judge(leaderboard, errors, trained_trial(leaderboard, swept_parameters(leaderboard),
                                                       config.training.model_dump()))
    return dg.Output(
        leaderboard,
        metadata={
            "best_val_mae": float(leaderboard["val_mae"].iloc[0]),
            "trials": len(leaderboard),
            "model": config.training.model,
            "gain_over_trained": verdict.text(),
            **({"gain_over_trained_dollars": verdict.improvement} if verdict.improvement is not None else {}),
            **({"gain_beyond_noise": verdict.beyond_noise} if verdict.beyond_noise is not None else {}),
            **({"trained_trial": verdict.trained_trial} if verdict.trained_trial is not None else {}),
            "next_step": _next_step(verdict),
            "grid": dg.MetadataValue.json(grid),
            "best_config": dg.MetadataValue.json(best),
            **({"leaderboard_plot": _leaderboard_plot(leaderboard, verdict)} if settings.plots else {}),
            "leaderboard": table(
                leaderboard.assign(fit_seconds=leaderboard["trial"].astype(str).map(fit_seconds)).round(4)
            ),
            "fit_seconds_by_trial": dg.MetadataValue.json(fit_seconds),
            TRIALS_KEY: dg.MetadataValue.json(trials),
        },
    )


def _next_step(verdict: Any) -> str:
    if verdict.trained_trial == verdict.best_trial:
        return "None needed: the trained configuration is the best trial."
    return (
        f"Train the best trial (trial {verdict.best_trial}): launch {TRAIN_BEST_JOB} (Jobs, {TRAIN_BEST_JOB}, "
        "Launchpad, Launch run). It trains that configuration as inference_pipeline and evaluates it; prod "
        "moves only if it beats prod. From a shell: rental-pipeline sweep best --train."
    )


def _leaderboard_plot(leaderboard: Any, verdict: Any) -> Any:
    from rental_pipeline.assets.metadata import image
    from rental_pipeline.plots import leaderboard as leaderboard_plot
    from rental_pipeline.sweep import swept_parameters

    png = leaderboard_plot(leaderboard, swept_parameters(leaderboard), trained=verdict.trained_trial,
                           noise=verdict.noise())
    return image(png, "sweep leaderboard")


# -- the next step, launchable ------------------------------------------------------------------

TRAIN_BEST_JOB = "train_best_job"


def best_run_config(config: dict[str, Any]) -> dict[str, Any]:
    """Run config training the best trial of the sweep version `config["sweep"]` names, read from
    the store when the run is launched (so the launchpad needs nothing but that name)."""
    from rental_pipeline.home import open_store
    from rental_pipeline.store import StoreError
    from rental_pipeline.sweep import best_training_config

    root = ((config.get("resources") or {}).get("artifact_store") or {}).get("config", {}).get("root")
    store = open_store(root)
    try:
        version = store.get(config["sweep"])
        if version.name != "sweep_leaderboard":
            # Any other artifact would be read as a leaderboard, its first row taken for a training config.
            raise dg.DagsterInvalidConfigError(
                f"{TRAIN_BEST_JOB}: {version.ref} is not a version of sweep_leaderboard: name one "
                "(sweep_leaderboard:latest, sweep_leaderboard:v3).", [], config
            )
        board = store.load(version)
    except StoreError as error:
        raise dg.DagsterInvalidConfigError(
            f"{TRAIN_BEST_JOB}: {error}. Materialize sweep_leaderboard (sweep_job) first.", [], config
        ) from None
    base = dict(version.metadata.get("config", {}).get("training", {}))
    passed = {key: config[key] for key in PASSED_THROUGH if config.get(key)}
    return {"ops": {"inference_pipeline": {"config": best_training_config(board, base)}}, **passed}


# Run config sections the job takes as any job does (the store's root, the console's log level).
PASSED_THROUGH = ("resources", "loggers")


train_best_job = dg.define_asset_job(
    TRAIN_BEST_JOB,
    selection=dg.AssetSelection.assets("inference_pipeline", "model_evaluation"),
    config=dg.ConfigMapping(
        config_fn=best_run_config,
        config_schema={
            "sweep": dg.Field(
                str,
                default_value="sweep_leaderboard:latest",
                description="The sweep version whose best trial is trained (a version or alias of sweep_leaderboard).",
            ),
            **{
                key: dg.Field(dg.Permissive(), is_required=False, description=f"{key}, as in any job's run config.")
                for key in PASSED_THROUGH
            },
        },
    ),
    description="Train the best configuration of the latest sweep as inference_pipeline (on the stored "
    "trainval_data) and evaluate it; prod moves only if it beats prod. Launch it as it is: the launchpad "
    "needs no config.",
)
