"""What a W&B run shows of an asset's output, and what the asset page shows of its W&B run.

The IO manager hands the mirror, with each new version, what the asset reported: numbers, short
texts and dicts of numbers become the run summary (so the W&B runs table can chart validation and
test MAE week after week; ``dagster/row_count`` becomes ``row_count``), table metadata becomes a
``wandb.Table`` (feature importances, worst errors, errors by borough, the sweep leaderboard, the
week-by-week view), a table's line plot named in metadata ``wandb_line_plots`` becomes a W&B line
plot of two of its columns (prod's MAE week by week), and the sweep's trials (metadata
``wandb_trials``) become runs of their own under the same settings.
Each run is named after its version and tagged with the asset, the Dagster run and the model kind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import dagster as dg

from rental_pipeline.store import ArtifactStore, StoreError, VersionManifest

from .wandb_mirror import WandbMirror

TRIALS_KEY = "wandb_trials"  # output metadata: [{name, config, summary}, ...], one W&B run each
# output metadata: {plot key: {table, x, y, title}}, a line plot of columns x and y of a table reported beside
LINE_PLOTS_KEY = "wandb_line_plots"
_MAX_TEXT = 200
_MAX_TAG = 64  # W&B's limit


def run_options(
    store: ArtifactStore,
    version: VersionManifest,
    dagster_run_id: str,
    metadata: Mapping[str, Any],
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """Keyword arguments of ``WandbMirror.mirror`` beyond the run's place (JSON, for the worker)."""
    kind = model_kind(store, version, config)
    tags = [version.name, f"dagster-run-{dagster_run_id}", *([f"model-{kind}"] if kind else [])]
    trials = _plain(metadata.get(TRIALS_KEY))
    trials = [t for t in trials if _is_trial(t)] if isinstance(trials, list) else []  # else not trials
    found = tables(metadata)
    return {
        "run_name": version.ref,
        "tags": [tag[:_MAX_TAG] for tag in tags],
        "summary": summary(metadata),
        "tables": found,
        "line_plots": line_plots(metadata, found),
        "trials": trials,
    }


def summary(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics worth charting: numbers, booleans, one-line texts and dicts of numbers."""
    found: dict[str, Any] = {}
    for key, value in metadata.items():
        raw = _plain(value)
        name = key.removeprefix("dagster/")
        if isinstance(raw, bool) or (isinstance(raw, int | float) and math.isfinite(raw)):
            found[name] = raw
        elif isinstance(raw, str) and len(raw) <= _MAX_TEXT and "\n" not in raw:
            found[name] = raw
        elif isinstance(raw, dict) and raw and all(_is_number(v) for v in raw.values()):
            found[name] = raw
    return found


def tables(metadata: Mapping[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """Every table the asset reported, as ``{"columns": [...], "data": [[...], ...]}``."""
    found = {}
    for key, value in metadata.items():
        if not isinstance(value, dg.TableMetadataValue):
            continue
        records = [dict(record.data) for record in value.records]
        if value.schema is not None and value.schema.columns:
            columns = [column.name for column in value.schema.columns]
        else:
            columns = list(dict.fromkeys(k for record in records for k in record))
        found[key] = {"columns": columns, "data": [[record.get(c) for c in columns] for record in records]}
    return found


def line_plots(metadata: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The line plots metadata ``wandb_line_plots`` asks for, each of a table in ``found`` that holds
    both its columns (any other is left out): ``{key: {"table", "x", "y", "title"}}``."""
    asked = _plain(metadata.get(LINE_PLOTS_KEY))
    plots = {}
    for key, plot in (asked.items() if isinstance(asked, Mapping) else ()):
        if not isinstance(plot, Mapping):
            continue
        table = found.get(plot.get("table"))
        if table is not None and {plot.get("x"), plot.get("y")} <= set(table["columns"]):
            plots[str(key)] = {
                "table": str(plot["table"]), "x": str(plot["x"]), "y": str(plot["y"]),
                "title": str(plot.get("title") or key),
            }
    return plots


def model_kind(store: ArtifactStore, version: VersionManifest, config: Mapping[str, Any]) -> str | None:
    """``boosted`` or ``random_forest``: what the version says, else the model it was made from,
    else its step's config (the sweep's ``training.model``)."""
    for candidate in (version, *version.inputs):
        try:
            found = candidate if isinstance(candidate, VersionManifest) else store.get(candidate)
            facts = found.metadata.get("facts")
        except StoreError:  # a tag is not worth failing a step for
            continue
        kind = facts.get("model") if isinstance(facts, Mapping) else None
        if isinstance(kind, str):
            return kind
    training = config.get("training")
    kind = config.get("model") or (training.get("model") if isinstance(training, Mapping) else None)
    return kind if isinstance(kind, str) else None


def run_link(mirror: WandbMirror, project: str, run_id: str) -> dg.MetadataValue:
    """The asset page's ``wandb_run``: a link online, where the run waits for sync offline."""
    url = mirror.run_url(project, run_id)
    if url:
        return dg.MetadataValue.url(url)
    if mirror.mode == "online":
        return dg.MetadataValue.text(
            f"{run_id} (online, project {project}): uploaded by the W&B worker at the end of this run; "
            "its page is in the run's log (set WANDB_ENTITY, or sync once, to link it here)"
        )
    folder = mirror.wandb_dir / "wandb" / f"offline-run-*-{run_id}"
    return dg.MetadataValue.text(
        f"{run_id} (offline, project {project}): waits for `rental-pipeline artifacts sync`, in {folder}"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, dg.JsonMetadataValue):
        return value.data
    if isinstance(value, dg.MetadataValue):
        return value.value
    return value


def _is_trial(value: Any) -> bool:
    """A trial as the sweep reports one: a name, and its config and summary as mappings if given."""
    return (
        isinstance(value, Mapping)
        and "name" in value
        and all(isinstance(value.get(key) or {}, Mapping) for key in ("config", "summary"))
    )


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
