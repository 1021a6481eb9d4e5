"""`trainval_data` and `test_data`: one seeded, stratified split, materializable one side at a time.

A run that names a week splits that week's clean listings (`clean_sample.<week>`) instead of
`clean_sample`, and with `weeks: K` trains on the last K weeks (`rental_pipeline.weeks`): the newest
week is split as a single week is, so its test side is the score, and the older weeks add one row
per listing the newest week does not hold. An older week that failed its checks is left out.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import Field

from rental_pipeline.code_version import code_version
from rental_pipeline.io_manager import refuse_failed_checks
from rental_pipeline.partitions import run_week
from rental_pipeline.reuse import reusable
from rental_pipeline.run_state import run_state
from rental_pipeline.store import FAILED_CHECKS_FLAG
from rental_pipeline.versions import PINNED
from rental_pipeline.weeks import store_name, trainable, weeks_before


class SplitConfig(dg.Config):
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Share of listings held out for the test.")
    random_seed: int = 42
    stratify_by: str = Field(
        default="neighbourhood_group", description="Column whose shares both sides keep, or 'none'."
    )
    weeks: int = Field(
        default=1,
        ge=1,
        le=520,  # ten years of weekly drops
        description="A run that names a week: train on its last this many weeks (one row per listing, the "
        "newest week's wins), at most 520 (ten years); the test side is always the named "
        "week's own.",
    )


@dg.multi_asset(
    name="split_listings",
    group_name="listings",
    outs={
        "trainval_data": dg.AssetOut(
            is_required=False,
            kinds={"pandas"},
            metadata={"artifact_type": "segregated_data"},
            description="Listings to train and validate on.",
        ),
        "test_data": dg.AssetOut(
            is_required=False,
            kinds={"pandas"},
            metadata={"artifact_type": "segregated_data"},
            description="Held-out listings, used only for the final score.",
        ),
    },
    can_subset=True,
    code_version=code_version(__name__),
    # A run that names a week reads its weeks from the store (`_window`); the dependency orders the
    # steps of a run that makes the week, and shows the weekly path in the graph.
    deps=["weekly_clean_sample"],
)
@reusable(extra_inputs=lambda context, config: _window(context, config))
def split_listings(context: dg.AssetExecutionContext, config: SplitConfig, clean_sample: Any) -> Iterator[dg.Output]:
    """Both sides come from the same split; asking for one only skips storing the other."""
    from rental_pipeline.assets.metadata import frame_metadata
    from rental_pipeline.split import split_listings as seeded_split
    from rental_pipeline.weeks import window_summary, window_trainval

    window = _window(context, config)
    if window:
        run = run_state(context)
        step = context.op_execution_context.get_step_execution_context().step.key
        run.loaded.setdefault(step, {}).update(window)  # the new versions' lineage names each week's version
        frames = {name: run.stored_value(ref) for name, ref in window.items()}
        *older, newest = sorted(frames)  # store names of one asset sort by week
        clean_sample = frames[newest]
    trainval, test = seeded_split(
        clean_sample, test_size=config.test_size, random_seed=config.random_seed, stratify_by=config.stratify_by
    )
    facts: dict[str, Any] = {}
    if window and older:
        newest_trainval = trainval
        trainval = window_trainval(newest_trainval, clean_sample, {name: frames[name] for name in older})
        facts = window_summary(sorted(frames), trainval, newest_trainval)
    for name, frame in (("trainval_data", trainval), ("test_data", test)):
        if name in context.op_execution_context.selected_output_names:
            extra = facts if name == "trainval_data" else {}
            yield dg.Output(frame, output_name=name, metadata={**frame_metadata(frame), **extra})


def _window(context: dg.AssetExecutionContext, config: SplitConfig) -> dict[str, str]:
    """Store name -> exact version of each week the split reads, oldest first; empty for a run that
    names no week (it reads `clean_sample`). The named week must be there and pass its checks;
    an older week that is missing or failed its checks is left out, saying so."""
    week = run_week(context)
    if week is None:
        if config.weeks > 1:
            raise dg.Failure(f"weeks: {config.weeks} trains on a window of weeks: name the newest (a partition)")
        return {}
    run = run_state(context)
    stored = set(run.store.names())
    window: dict[str, str] = {}
    missing: list[str] = []
    for day in weeks_before(week, config.weeks):
        name = store_name("clean_sample", day)
        if day != week and name not in stored:
            missing.append(day)
            continue
        resolution = run.input(name)
        version = run.store.get(resolution.ref)
        if day == week:
            refuse_failed_checks(version, resolution, materializes=True)
            if not trainable(version) and resolution.how != PINNED:
                raise dg.Failure(
                    f"{version.ref}'s checks have not been judged (its run is still going, or was stopped "
                    f"before them): run the week's checks first (weekly_job --partition {week}), or pin it"
                )
        elif not trainable(version):
            why = "failed its checks" if version.flags.get(FAILED_CHECKS_FLAG) else "has no verdict of its checks yet"
            context.log.warning(f"{version.ref} {why}: the window goes on without that week")
            continue
        window[name] = version.ref
    if missing:  # one line however many: a long window over a short history misses most of its weeks
        weeks = ", ".join(missing) if len(missing) <= 3 else f"{missing[0]} to {missing[-1]}"
        context.log.info(
            f"{len(missing)} weeks of the window have no clean_sample in the store "
            f"({weeks}): the window goes on without them"
        )
    return window
