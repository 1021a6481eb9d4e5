"""`week_by_week`: the weekly team's view, a row a week (`rental_pipeline.week_view`)."""

from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from pydantic import Field

from rental_pipeline.assets.weekly import WEEKS_GROUP
from rental_pipeline.code_version import code_version
from rental_pipeline.reuse import reusable
from rental_pipeline.run_state import RunState, run_state
from rental_pipeline.settings import Settings
from rental_pipeline.store import FAILED_CHECKS_FLAG
from rental_pipeline.tracking.wandb_view import LINE_PLOTS_KEY

PROD = "inference_pipeline:prod"
PROD_MAE_PLOT = {
    "table": "week_by_week",
    "x": "week",
    "y": "prod_mae_new",
    "title": "prod's MAE on each week's unseen new listings",
}
MODEL = "inference_pipeline"
CLEAN, RAW = "clean_sample", "raw_data"
# The run-cache input standing for what the view reads beside the versions it shows.
SOURCES_INPUT = "week_by_week.sources"


# What a week whose clean checks have not given their verdict shows as its failed checks: it is
# not counted as good (new listings are never counted against it) until they have.
NOT_JUDGED = "not judged yet"
BASELINE_LOOKBACK = 26  # weeks before those shown searched for one that passed its checks


class WeekViewConfig(dg.Config):
    weeks: int = Field(default=26, ge=1, description="How many of the newest weeks in the store the view shows.")


@dataclass(frozen=True)
class Sources:
    """What the view reads from the store. The versions alone do not say it all: a week judged
    again keeps its version but not its flags, accepting a reference moves an alias, and prod and
    the promotions move with training runs, so all of it is in the run-cache key."""

    clean: dict[str, str]  # clean_sample.<week> -> the run's version of it
    drops: dict[str, str]  # raw_data.<week> -> its version, for weeks with no clean week
    # raw_data.<week> -> a newer drop of a week with clean listings, which its raw checks stopped
    stopped: dict[str, str]
    failed: dict[str, list[str]]  # version -> the blocking checks it failed
    references: dict[str, str | None]  # week -> the reference version its drift is measured against
    prod: str | None
    promoted: list[str] = field(default_factory=list)  # weeks whose training moved prod
    # clean_sample.<week> -> version of the newest week before those shown that passed its checks:
    # what the oldest shown week's new listings are counted against
    baseline: dict[str, str] = field(default_factory=dict)

    def versions(self) -> dict[str, str]:
        """Store name -> version, for every version the view reads: its lineage."""
        prod = {MODEL: self.prod} if self.prod else {}
        return {**self.baseline, **self.clean, **self.drops, **self.stopped, **prod}

    def cache_inputs(self) -> dict[str, str]:
        from rental_pipeline.week_view import sources_digest

        state = {"failed": self.failed, "references": self.references, "promoted": self.promoted}
        return {**self.versions(), SOURCES_INPUT: sources_digest(state)}


def read_sources(run: RunState, weeks: int) -> Sources:
    """Everything the view is drawn from, read the same way for the run-cache key and for the view,
    so the key describes what the view shows. A week with a drop but no clean week is read too:
    its raw checks stopped it, and a view of clean weeks only would never show that."""
    from rental_pipeline.validation import REFERENCE_ALIAS
    from rental_pipeline.weeks import reference_week, split_name, store_name, trainable

    names = run.store.names()
    by_week: dict[str, set[str]] = {}
    for name in names:
        asset, week = split_name(name)
        if week is not None and asset in (CLEAN, RAW):
            by_week.setdefault(week, set()).add(asset)
    shown = sorted(by_week)[-weeks:]
    clean = {store_name(CLEAN, w): run.input(store_name(CLEAN, w)).ref for w in shown if CLEAN in by_week[w]}
    drops = {store_name(RAW, w): run.input(store_name(RAW, w)).ref for w in shown if CLEAN not in by_week[w]}
    stopped = {}
    for week in shown:
        raw, cleaned = store_name(RAW, week), clean.get(store_name(CLEAN, week))
        if cleaned and RAW in by_week[week]:
            newest = run.input(raw).ref
            if newest not in run.store.get(cleaned).inputs and run.store.get(newest).flags.get(FAILED_CHECKS_FLAG):
                stopped[raw] = newest
    manifests = {ref: run.store.get(ref) for ref in [*clean.values(), *drops.values(), *stopped.values()]}
    failed = {ref: sorted(manifest.flags.get(FAILED_CHECKS_FLAG) or {}) for ref, manifest in manifests.items()}
    for ref in clean.values():  # no failure flag is not a pass while its checks have not been judged
        if not failed[ref] and not trainable(manifests[ref]):
            failed[ref] = [NOT_JUDGED]
    baseline = {}
    for week in reversed(sorted(by_week)[:-weeks][-BASELINE_LOOKBACK:]):
        name = store_name(CLEAN, week)
        if CLEAN in by_week[week] and trainable(run.store.get(run.input(name).ref)):
            baseline[name] = run.input(name).ref
            break
    holders = [name for name in names if split_name(name)[0] == CLEAN and run.store.exists(f"{name}:{REFERENCE_ALIAS}")]
    references: dict[str, str | None] = {}
    for name in clean:
        week = split_name(name)[1] or ""
        holder = reference_week(holders, CLEAN, week) or CLEAN
        alias = f"{holder}:{REFERENCE_ALIAS}"
        references[week] = run.store.get(alias).ref if run.store.exists(alias) else None
    return Sources(
        clean=clean,
        drops=drops,
        stopped=stopped,
        failed=failed,
        references=references,
        prod=run.resolver.alias(MODEL, "prod"),
        promoted=sorted(_promoted_weeks(run.store)),
        baseline=baseline,
    )


def _cache_inputs(context: dg.AssetExecutionContext, config: WeekViewConfig) -> dict[str, str]:
    return read_sources(run_state(context), config.weeks).cache_inputs()


@dg.asset(
    group_name=WEEKS_GROUP,
    kinds={"pandas"},
    metadata={"artifact_type": "week_view"},
    code_version=code_version(__name__),
    # read from the store, newest weeks first; after a weekly run's training, so prod is current
    deps=["weekly_clean_sample", "model_evaluation"],
    description="Week by week: listings, what cleaning dropped, borough drift from the reference, prod's MAE on "
    "the week's new listings it did not train on, whether prod changed that week, and the checks a week failed "
    "(a drop its raw checks stopped too).",
)
@reusable(extra_inputs=_cache_inputs)
def week_by_week(context: dg.AssetExecutionContext, config: WeekViewConfig, settings: Settings) -> dg.Output:
    from rental_pipeline.assets.metadata import image, table
    from rental_pipeline.evaluation import model_columns
    from rental_pipeline.promotion import training_listings
    from rental_pipeline.week_view import Drop, Week, new_listings, prod_scores, week_plot, week_rows
    from rental_pipeline.weeks import split_name, store_name

    run = run_state(context)
    sources = read_sources(run, config.weeks)
    step = context.op_execution_context.get_step_execution_context().step.key
    run.loaded.setdefault(step, {}).update(sources.versions())  # the view's lineage names every week it shows
    weeks = []
    for name, ref in sources.clean.items():
        week = split_name(name)[1] or ""
        reference = sources.references.get(week)
        stopped = sources.stopped.get(store_name(RAW, week), "")
        weeks.append(
            Week(
                week=week,
                version=ref,
                clean=run.stored_value(ref),
                rows_in=_facts(run, ref).get("rows_in"),
                reference=run.stored_value(reference) if reference else None,
                prod_changed=week in sources.promoted,
                failed_checks=", ".join(sources.failed[ref]),
                stopped_drop=stopped,
                stopped_drop_failed=", ".join(sources.failed.get(stopped, [])),
            )
        )
    drops = [
        Drop(
            week=split_name(name)[1] or "",
            version=ref,
            rows_in=_facts(run, ref).get("dagster/row_count"),
            failed_checks=", ".join(sources.failed[ref]),
        )
        for name, ref in sources.drops.items()
    ]
    baseline = None
    for name, ref in sources.baseline.items():
        baseline = Week(split_name(name)[1] or "", ref, run.stored_value(ref), None, None, False)
    scores = {}
    if sources.prod:
        model = run.stored_value(sources.prod)
        trained_on = training_listings(run.store, sources.prod, run.stored_value)
        if trained_on is None:
            context.log.warning(f"Cannot tell which listings {sources.prod} trained on: its MAE is left out")
        new = new_listings(weeks, baseline)
        scores = prod_scores(new, trained_on, lambda frame: model.predict(frame[model_columns(model)]))
    view = week_rows(weeks, scores, drops, baseline)
    context.log.info(f"Week by week: {len(view)} weeks, prod {sources.prod or 'unset'}")
    metadata: dict[str, Any] = {"weeks": len(view), "prod_model": sources.prod or "unset"}
    if len(view):
        metadata["week_by_week"] = table(view)
        # in W&B, beside the table: a line plot of prod's MAE on each week's unseen new listings
        metadata[LINE_PLOTS_KEY] = dg.MetadataValue.json({"week_by_week_prod_mae": PROD_MAE_PLOT})
        if settings.plots:
            metadata["week_by_week_plot"] = image(week_plot(view), "Week by week")
    return dg.Output(view, metadata=metadata)


def _facts(run: RunState, ref: str) -> dict[str, Any]:
    return run.store.get(ref).metadata.get("facts") or {}


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
