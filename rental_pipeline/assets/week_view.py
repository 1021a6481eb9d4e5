"""`week_by_week`: the weekly team's view, a row a week (`rental_pipeline.week_view`)."""

from typing import Any

import dagster as dg
from pydantic import Field

from rental_pipeline.assets.weekly import WEEKS_GROUP
from rental_pipeline.code_version import code_version
from rental_pipeline.reuse import reusable
from rental_pipeline.run_state import run_state
from rental_pipeline.settings import Settings
from rental_pipeline.store import FAILED_CHECKS_FLAG
from rental_pipeline.tracking.wandb_view import LINE_PLOTS_KEY

PROD = "inference_pipeline:prod"
PROD_MAE_PLOT = {
    "table": "week_by_week", "x": "week", "y": "prod_mae_new", "title": "prod's MAE on each week's new listings"
}


class WeekViewConfig(dg.Config):
    weeks: int = Field(default=26, ge=1, description="How many of the newest weeks in the store the view shows.")


def _refs(context: dg.AssetExecutionContext, config: WeekViewConfig) -> dict[str, str]:
    """The exact versions the view reads: the newest weeks' clean listings and prod."""
    run = run_state(context)
    names = sorted(n for n in run.store.names() if n.startswith("clean_sample."))[-config.weeks:]
    refs = {name: run.input(name).ref for name in names}
    prod = run.resolver.alias("inference_pipeline", "prod")
    return {**refs, **({"inference_pipeline": prod} if prod else {})}


@dg.asset(
    group_name=WEEKS_GROUP,
    kinds={"pandas"},
    metadata={"artifact_type": "week_view"},
    code_version=code_version(__name__),
    # read from the store, newest weeks first; after a weekly run's training, so prod is current
    deps=["weekly_clean_sample", "model_evaluation"],
    description="Week by week: listings, what cleaning dropped, borough drift from the reference, prod's MAE on "
    "the week's new listings and whether prod changed that week.",
)
@reusable(extra_inputs=lambda context, config: _refs(context, config))
def week_by_week(context: dg.AssetExecutionContext, config: WeekViewConfig, settings: Settings) -> dg.Output:
    from rental_pipeline.assets.metadata import image, table
    from rental_pipeline.evaluation import model_columns
    from rental_pipeline.week_view import Week, mae, new_listings, week_plot, week_rows

    run = run_state(context)
    refs = _refs(context, config)
    step = context.op_execution_context.get_step_execution_context().step.key
    run.loaded.setdefault(step, {}).update(refs)  # the view's lineage names every week it shows
    promoted = _promoted_weeks(run.store)
    weeks = []
    for name, ref in refs.items():
        if name == "inference_pipeline":
            continue
        version, week = run.store.get(ref), name.partition(".")[2]
        weeks.append(
            Week(
                week=week,
                version=ref,
                clean=run.stored_value(ref),
                rows_in=(version.metadata.get("facts") or {}).get("rows_in"),
                reference=_reference(run, week),
                prod_changed=week in promoted,
                failed_checks=", ".join(sorted(version.flags.get(FAILED_CHECKS_FLAG) or {})),
            )
        )
    prod_mae: dict[str, float | None] = {}
    if "inference_pipeline" in refs:
        model = run.stored_value(refs["inference_pipeline"])
        for week, frame in new_listings(weeks).items():
            prod_mae[week] = mae(frame["price"], model.predict(frame[model_columns(model)])) if len(frame) else None
    view = week_rows(weeks, prod_mae)
    context.log.info(f"Week by week: {len(view)} weeks, prod {refs.get('inference_pipeline', 'unset')}")
    metadata: dict[str, Any] = {"weeks": len(view), "prod_model": refs.get("inference_pipeline", "unset")}
    if len(view):
        metadata["week_by_week"] = table(view)
        # in W&B, beside the table: a line plot of prod's MAE on each week's new listings
        metadata[LINE_PLOTS_KEY] = dg.MetadataValue.json({"week_by_week_prod_mae": PROD_MAE_PLOT})
        if settings.plots:
            metadata["week_by_week_plot"] = image(week_plot(view), "Week by week")
    return dg.Output(view, metadata=metadata)


def _reference(run: Any, week: str) -> Any:
    """The reference the week's drift is measured against (`checks.reference_of`), or None."""
    from rental_pipeline.validation import REFERENCE_ALIAS
    from rental_pipeline.weeks import reference_holder, store_name

    ref = f"{reference_holder(run.store, store_name('clean_sample', week), REFERENCE_ALIAS)}:{REFERENCE_ALIAS}"
    return run.stored_value(run.store.get(ref).ref) if run.store.exists(ref) else None


def _promoted_weeks(store: Any) -> set[str]:
    """Weeks whose training run moved prod: the newest week in the test split of each promoting evaluation."""
    from rental_pipeline.weeks import split_name

    if "model_evaluation" not in store.names():
        return set()
    weeks = set()
    for evaluation in store.history("model_evaluation"):
        if not (evaluation.metadata.get("facts") or {}).get("promoted"):
            continue
        for ref in evaluation.inputs:
            if ref.startswith("test_data:") and store.exists(ref):
                named = [split_name(parent.split(":")[0])[1] for parent in store.get(ref).inputs]
                weeks.update({max(w for w in named if w)} if any(named) else set())
    return weeks
