"""Section 2: what the run cache saves. In each of section 1's workspaces, after the full run:
the same config again (it should fit nothing and make no version), then `key:"inference_pipeline"+`
after a change of the model's config (it should compute only the model and what reads it).

Which assets a run computed is read from its materializations' metadata (`reused_from_run` marks
a run-cache hit); which versions it made, from the store."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.harness import (
    Bench,
    Sizes,
    Workspace,
    dagster_job,
    dagster_materialize,
    fmt_s,
    log,
    median,
    summary,
    training_ops,
)

NAME = "incremental"
LABEL = "2 incremental"
UNCHANGED_RERUN_GOAL = 0.3  # re-run with nothing changed / full run, fitting nothing
MODEL_CHANGE_GOAL = 0.6  # `key:"inference_pipeline"+` after a model config change / full run


def runs(ws: Workspace, sizes: Sizes, data: dict[str, Any], rep: int) -> dict[str, Any]:
    """The two re-runs in a workspace that has just run the whole graph."""
    before = ws.versions()
    log("  incremental: same config again")
    same = dagster_job(ws, training_ops(sizes, **data), name="same.yaml")
    unchanged = {"run": summary(same), "new_versions": _new_versions(before, ws.versions())}
    change = model_config_change(rep)
    before = ws.versions()
    log(f"  incremental: inference_pipeline+ with {json.dumps(change)}")
    ops = training_ops(sizes)
    ops["inference_pipeline"] = {**ops.get("inference_pipeline", {}), **change}
    partial = dagster_materialize(ws, 'key:"inference_pipeline"+', ops, name=f"model-{rep}.yaml")
    changed = {"run": summary(partial), "change": change, "new_versions": _new_versions(before, ws.versions())}
    return {"unchanged_rerun": unchanged, "model_change": changed}


def rows(bench: Bench, label: str, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """The section's rows from section 1's pairs (each holding its re-runs); the summary figures."""
    dagster = [p["dagster"]["seconds"] for p in pairs]
    unchanged = [p["unchanged_rerun"] for p in pairs]
    changed = [p["model_change"] for p in pairs]
    n = len(pairs)
    add = bench.report.add
    new_versions = max(sum(u["new_versions"].values()) for u in unchanged)
    same_s = median([u["run"]["seconds"] for u in unchanged])
    change_s = median([c["run"]["seconds"] for c in changed])
    change_ratio = median([c["run"]["seconds"] / d for c, d in zip(changed, dagster)])
    same_ratio = median([u["run"]["seconds"] / d for u, d in zip(unchanged, dagster)])
    computed = sorted({name for u in unchanged for name in u["run"]["extra"].get("computed", [])})
    add(LABEL, f"{label}: re-run, nothing changed", f"{same_ratio:.2f}x",
        f"<= {UNCHANGED_RERUN_GOAL}x, fits nothing",
        same_ratio <= UNCHANGED_RERUN_GOAL and "inference_pipeline" not in computed,
        note=f"{fmt_s(same_s)}; computed: {', '.join(computed) or 'nothing'} (the rest reused)")
    add(LABEL, f"{label}: new versions made by that re-run", f"{new_versions}", "0",
        new_versions == 0, note=f"most over {n} re-runs")
    made = sorted({name for c in changed for name in c["new_versions"]})
    recomputed = sorted({name for c in changed for name in c["run"]["extra"].get("computed", [])})
    what = " or ".join(sorted({_flat_keys(c["change"]) for c in changed}))
    add(LABEL, f"{label}: `key:\"inference_pipeline\"+` after a model config change ({what})",
        f"{change_ratio:.2f}x", f"<= {MODEL_CHANGE_GOAL}x, only the model and its evaluation",
        # batch_predictions prices with prod: it is computed again only when the new model became prod.
        change_ratio <= MODEL_CHANGE_GOAL
        and set(recomputed) <= {"inference_pipeline", "model_evaluation", "batch_predictions"},
        note=f"{fmt_s(change_s)}; computed: {', '.join(recomputed) or 'nothing'}; "
        f"new versions of: {', '.join(made) or 'none'}")
    return {"unchanged_rerun_seconds": same_s, "unchanged_new_versions": new_versions,
            "model_change_seconds": change_s, "model_change_vs_full": change_ratio}


def default_model() -> str:
    """The model `inference_pipeline` trains when its config does not say (the reference forest
    before the boosted model existed)."""
    import inspect

    from rental_pipeline import training

    parameter = inspect.signature(training.train_inference_pipeline).parameters.get("model")
    return str(parameter.default) if parameter is not None else "random_forest"


def model_config_change(rep: int) -> dict[str, Any]:
    """A config change that really changes the default model, different at every repetition:
    `max_tfidf_features` for the reference forest (default 5); the boosted model does not read it,
    so for it the boosting seed moves instead (same work, different trees)."""
    if default_model() == "random_forest":
        return {"max_tfidf_features": 6 + rep}
    return {"boosting": {"random_state": 43 + rep}}


def _flat_keys(change: dict[str, Any], prefix: str = "") -> str:
    keys = []
    for key, value in change.items():
        keys.append(_flat_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else f"{prefix}{key}")
    return ", ".join(keys)


def _new_versions(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: count - before.get(name, 0) for name, count in after.items() if count > before.get(name, 0)}
