"""Section 8: the fixed cost of a run. The reference forest through `dagster job execute` against
the floor script doing the same work, in interleaved pairs on synthetic NYC-size listings, the
same run without charts beside them, and where the Dagster run's extra time goes (its wall time
cut into parts that add up to it, from its own events: benchmarks/run_profile.py)."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import (
    Bench,
    dagster_job,
    floor_run,
    fmt_s,
    log,
    median,
    run_profile,
    summary,
    training_ops,
    versus_floor,
)
from benchmarks.measure import Measurement
from benchmarks.sections.overhead import OVERHEAD_GOAL

LABEL = "8 fixed cost"
FIXED_COST_MODEL = "random_forest"  # the fixed-cost comparison trains the reference forest


def run(bench: Bench) -> None:
    from rental_pipeline.assets.metadata import PLOTS_ENV

    sizes = bench.sizes
    label = f"reference forest, synthetic {sizes.nyc_rows:,} rows"
    ops = training_ops(sizes, rows=sizes.nyc_rows)
    ops["inference_pipeline"] = {**ops.get("inference_pipeline", {}), "model": FIXED_COST_MODEL}
    pairs = []
    for rep in range(sizes.repeats):
        log(f"fixed cost: dagster {rep + 1}/{sizes.repeats}")
        with bench.workspace("fixed") as ws:
            measured = dagster_job(ws, ops)
            measured.extra["test_mae"] = ws.artifact_facts("model_evaluation:latest").get("test_mae")
            profile = run_profile(ws, measured)
        log(f"  {measured.seconds:.1f} s; floor {rep + 1}/{sizes.repeats}")
        with bench.workspace("floor") as ws:
            floor = floor_run(ws, sizes, rows=sizes.nyc_rows, model=FIXED_COST_MODEL)
        log(f"  {floor.seconds:.1f} s; dagster without charts {rep + 1}/{sizes.repeats}")
        # The same run with RENTAL_PIPELINE_PLOTS=off: what drawing the asset pages' charts costs.
        with bench.workspace("fixed-headless") as ws:
            ws.env[PLOTS_ENV] = "off"
            headless = dagster_job(ws, ops)
        log(f"  {headless.seconds:.1f} s")
        pairs.append({"dagster": summary(measured), "floor": summary(floor), "profile": profile.as_dict(),
                      "floor_parts": floor_parts(floor), "headless_seconds": headless.seconds})
    bench.report.results["fixed"] = _rows(bench, label, pairs, PLOTS_ENV)


def _rows(bench: Bench, label: str, pairs: list[dict[str, Any]], plots_env: str) -> dict[str, Any]:
    dagster, floor, ratios, ratio, same_mae = versus_floor(pairs)
    n = len(pairs)
    add = bench.report.add
    add(LABEL, f"{label}: `dagster job execute` training_job", fmt_s(median(dagster)),
        note=f"median of {n}; {median([p['profile']['events'] for p in pairs]):.0f} events, "
        f"{len(pairs[0]['profile']['steps'])} steps")
    add(LABEL, f"{label}: plain floor script", fmt_s(median(floor)), note=f"median of {n}")
    add(LABEL, f"{label}: dagster / floor", f"{ratio:.2f}x", f"<= {OVERHEAD_GOAL}x",
        ratio <= OVERHEAD_GOAL,
        note=f"median of {n} interleaved pairs; same test MAE: {'yes' if same_mae else 'NO'}")
    headless = [p["headless_seconds"] / p["floor"]["seconds"] for p in pairs]
    add(LABEL, f"{label}: dagster with `{plots_env}=off` / floor", f"{median(headless):.2f}x",
        note=f"median of {n}; {fmt_s(median([p['headless_seconds'] for p in pairs]))}, no charts drawn")
    parts = {key: median([p["profile"]["parts"][key] for p in pairs]) for key in pairs[0]["profile"]["parts"]}
    floors = {key: median([p["floor_parts"][key] for p in pairs]) for key in pairs[0]["floor_parts"]}
    model_store = median([p["profile"]["steps"].get("inference_pipeline", {}).get("storing", 0.0) for p in pairs])
    checks = sum(1 for step in pairs[0]["profile"]["steps"].values() if step["check"])
    # The Dagster run's wall time in parts that add up to it, each the median over the runs, next
    # to the floor's time for the same part where it has one.
    described = {
        "startup": ("start-up: process start to the first step", "floor: interpreter and imports"),
        "fit": ("inference_pipeline's own work: fit and validation", "floor"),
        "other_asset_steps": ("the other asset steps' own work (data, split, evaluation)", "floor"),
        "check_steps": (f"{checks} check steps", ""),
        "storing": ("storing outputs", f"the model {fmt_s(model_store)}"),
        "loading": ("loading inputs", ""),
        "between_steps": ("between steps", ""),
        "after_last_step": ("after the last step: W&B runs, run end, exit", "floor: exit"),
    }
    for key, (what, versus) in described.items():
        note = f"{versus} {fmt_s(floors[key])}" if key in floors else versus
        add(LABEL, f"where the time goes: {what}", fmt_s(parts[key]), note=note)
    return {"pairs": pairs, "dagster_seconds": median(dagster), "floor_seconds": median(floor),
            "ratio": ratio, "ratios": ratios, "same_test_mae": same_mae, "parts": parts, "floor_parts": floors}


def floor_parts(m: Measurement) -> dict[str, float]:
    """The floor's wall time in the same parts as a Dagster run's (where they exist)."""
    extra, stages = m.extra, m.extra["stages"]
    startup = extra["wall_started"] - m.started_at + stages["import"]
    fit = stages["inference_pipeline"]
    other = sum(stages[k] for k in ("raw_data", "clean_sample", "split_listings", "model_evaluation"))
    return {"startup": startup, "fit": fit, "other_asset_steps": other,
            "after_last_step": max(0.0, m.started_at + m.seconds - extra["wall_done"])}
