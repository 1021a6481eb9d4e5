"""The `rental-pipeline` console script: what a person asks of the pipeline outside the web UI."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rental_pipeline.backfill_cli import backfill_command
from rental_pipeline.store.cli import artifacts_group
from rental_pipeline.sweep_cli import load_ref
from rental_pipeline.sweep_cli import sweep as sweep_group
from rental_pipeline.tracking import cli as tracking_cli
from rental_pipeline.tracking import maintenance as tracking_maintenance

if TYPE_CHECKING:
    from rental_pipeline.store import ArtifactStore, VersionManifest

MODEL_ASSET = "inference_pipeline"
PROD_ALIAS = "prod"


@click.group()
@click.version_option(package_name="rental_pipeline")
def main() -> None:
    """Versioned NYC rental price models built by Dagster assets."""


def _tracked_store(root: str | None) -> ArtifactStore:
    """The store `artifacts` works on: the pipeline's (`rental_pipeline.home.open_store`), with W&B
    following the alias moves made on it."""
    from rental_pipeline.home import open_store

    store = tracking_cli.follow_aliases(open_store(root))
    marker = ProdMarker(store)
    store.subscribe(marker)
    click.get_current_context().call_on_close(marker.finish)
    return store


class ProdMarker:
    """Hears a move of `prod` on the model made by hand (`artifacts alias`) and, once the command
    is done, tells the Dagster instance, as the observation model_evaluation logs after its own
    decision: otherwise the model's page would go on naming the version that held prod before."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.move: Any = None

    def alias_moved(self, name: str, move: Any) -> None:
        if name == MODEL_ASSET and move.alias == PROD_ALIAS:
            self.move = move

    def finish(self) -> None:
        move, self.move = self.move, None
        if move is None:
            return
        from rental_pipeline.settings import Settings

        home = Settings.from_environment().dagster_home
        if not home.is_dir():
            return  # no instance, so no page naming a holder
        import dagster as dg

        from rental_pipeline.assets.evaluation import prod_observation

        prod = None if move.to_version is None else f"{MODEL_ASSET}:v{move.to_version}"
        change = "removed by hand" if prod is None else "moved by hand" + (" (forced)" if move.forced else "")
        why = f"{move.actor} with `rental-pipeline artifacts alias` on store {self.store.root}"
        why += f": {move.reason}" if move.reason else ""
        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.report_runless_asset_event(prod_observation(prod, change, why))
        click.echo(f"Dagster: the model's page now says {'no version' if prod is None else prod} holds prod")


artifacts = artifacts_group(
    _tracked_store,
    help="Versioned artifacts: list, inspect, alias, verify, clean up and sync to W&B.",
    root_help="Store folder or s3://bucket/prefix [default: $RENTAL_PIPELINE_STORE, else "
    "$RENTAL_PIPELINE_HOME/artifacts or .rental_pipeline/artifacts]",
    verify=tracking_maintenance.verify_store,
    collect_garbage=tracking_maintenance.collect_garbage,
    gc_options=[tracking_cli.DROP_UNSYNCED_RUNS],
    commands=[tracking_cli.sync_command],
)
main.add_command(artifacts)
main.add_command(sweep_group)
main.add_command(backfill_command)


@dataclass(frozen=True)
class AssetStatus:
    """What the Dagster instance knows of one asset: its latest materialization and checks."""

    name: str
    timestamp: float | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)  # check name -> passed, failed, warned, not run
    checks_older: bool = False  # some check's latest result predates the latest materialization

    @property
    def version(self) -> str | None:
        value = self.metadata.get("artifact")
        return str(value) if value is not None else None


def pipeline_status(dagster_home: Path) -> list[AssetStatus]:
    """Every asset of the code location, group by group in graph order, as the instance at
    `dagster_home` last saw it."""
    import dagster as dg  # imported here so `--help` stays fast

    from rental_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    ordered = list(graph.toposorted_asset_keys)
    groups = list(dict.fromkeys(graph.get(key).group_name for key in ordered))
    ordered.sort(key=lambda key: groups.index(graph.get(key).group_name))
    statuses = []
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for key in ordered:
            latest = instance.fetch_materializations(key, limit=1).records
            if not latest and graph.get(key).partitions_def is not None:
                continue  # a weekly asset no week of which was made: not part of this instance's work
            event = latest[0].event_log_entry if latest else None
            materialization = event.asset_materialization if event is not None else None
            checks, older = {}, False
            for check_key in sorted(graph.get(key).check_keys, key=lambda k: k.name):
                record = _latest_result(instance, check_key)
                checks[check_key.name] = _check_state(record)
                older = older or (bool(latest) and not _checked(record, latest[0]))
            statuses.append(
                AssetStatus(
                    name=key.to_user_string(),
                    timestamp=event.timestamp if materialization is not None else None,
                    run_id=event.run_id if materialization is not None else None,
                    metadata={k: v.value for k, v in materialization.metadata.items()} if materialization else {},
                    checks=checks,
                    checks_older=older,
                )
            )
    return statuses


def _latest_result(instance: Any, check_key: Any) -> Any:
    """The check's latest record with a result. A run that planned the check and then skipped it
    (its asset reused or not produced, an upstream failure) says nothing of the version, so the
    result before it stands, shown as older than the latest materialization."""
    from dagster._core.storage.asset_check_execution_record import (
        COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
    )

    record = instance.get_latest_asset_check_evaluation_record(check_key)
    if record is None or _check_state(record) != "not run":
        return record
    completed = instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=1, status=set(COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES)
    )
    return completed[0] if completed else record


def _checked(record: Any, materialization: Any) -> bool:
    """Whether the check's latest result is about this materialization (an event log record)."""
    if record is None:
        return True  # never ran: shown as "not run", not as out of date
    data = getattr(getattr(record.event, "dagster_event", None), "event_specific_data", None)
    target = getattr(data, "target_materialization_data", None)
    if target is not None:
        return target.storage_id == materialization.storage_id
    return record.run_id == materialization.run_id


def _check_state(record: Any) -> str:
    if record is None or record.event is None or record.event.dagster_event is None:
        return "not run"
    evaluation = record.event.dagster_event.event_specific_data
    if not hasattr(evaluation, "passed"):  # planned, never evaluated (e.g. its asset failed first)
        return "not run"
    if evaluation.passed:
        return "passed"
    return "warned" if evaluation.severity.value == "WARN" else "failed"


def _checks_text(status: AssetStatus) -> str:
    if not status.checks:
        return "-"
    states = list(status.checks.values())
    text = f"{states.count('passed')}/{len(states)} passed"
    for state in ("failed", "warned", "not run"):
        names = [name for name, found in status.checks.items() if found == state]
        if names:
            text += f"; {state}: {', '.join(names)}"
    return text + (" (some ran before this version)" if status.checks_older else "")


def _numbers_text(status: AssetStatus, prod: str | None) -> str:
    m = status.metadata
    parts = []
    if status.name == MODEL_ASSET and status.version:
        kind = m.get("model", "model")
        parts.append(f"{kind}, {'prod' if status.version == prod else 'not prod'}")
    if "dagster/row_count" in m and status.name != "batch_predictions":
        parts.append(f"{m['dagster/row_count']:,} rows")
    if "val_mae" in m:
        parts.append(f"validation MAE {m['val_mae']:.2f}, R² {m['val_r2']:.3f}")
    if "test_mae" in m:
        parts.append(f"test MAE {m['test_mae']:.2f}, R² {m['test_r2']:.3f}")
    if "predicted" in m:
        parts.append(f"{m['predicted']:,} priced, {m.get('failed', 0):,} failed, by {m.get('model', '?')}")
    if "best_val_mae" in m:
        parts.append(
            f"{m.get('trials', '?')} trials of {m.get('model', '?')}, best validation MAE {m['best_val_mae']:.2f}"
        )
    return "; ".join(parts)


@main.command()
@click.option("--job", default=None, help="A job of the code location (e.g. training_job): the assets it does not "
              "build are shown as not part of it rather than as never materialized.")
def summary(job: str | None) -> None:
    """Every asset: its latest version, whether it was computed or reused, checks, key numbers; then
    what the last run built and the test MAE of the newest model.

    Reads the Dagster instance in $DAGSTER_HOME (default: dagster in the project folder,
    $RENTAL_PIPELINE_HOME or .rental_pipeline, where make puts it) and the artifact store.
    """
    from rental_pipeline.settings import Settings
    from rental_pipeline.summary_report import last_run, provenance

    home = Settings.from_environment().dagster_home
    if not home.is_dir():
        raise click.ClickException(
            f"no Dagster instance at {home}, so nothing has been materialized there yet: run `make run` (or "
            "`dagster job execute -m rental_pipeline.definitions -j training_job` with DAGSTER_HOME set), or set "
            "DAGSTER_HOME to the instance to read."
        )
    statuses = pipeline_status(home)
    job_assets = _job_assets(job) if job else None
    store = _store()
    prod = _alias_ref(store, MODEL_ASSET, PROD_ALIAS)
    click.echo(f"Dagster instance {home}; artifact store {store.root}")
    elsewhere = _stored_elsewhere(store, statuses)
    if elsewhere:
        click.echo(
            f"warning: {', '.join(elsewhere)} were last stored in another store than this one (a store given as "
            "run config?), so their aliases and `prod` below are read from this store, not that one: set "
            "RENTAL_PIPELINE_STORE to it."
        )
    header = ("asset", "version", "new / reused", "materialized (UTC)", "run", "checks")
    rows = [header]
    for status in statuses:
        made = provenance(status, job, job_assets)
        when = (
            dt.datetime.fromtimestamp(status.timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            if status.timestamp is not None else "-" if made.startswith("not part") else "never materialized"
        )
        rows.append(
            (status.name, status.version or "-", made, when, (status.run_id or "-")[:8], _checks_text(status))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    click.echo("")
    for row, status in zip(rows, [None, *statuses]):
        numbers = "" if status is None else _numbers_text(status, prod)
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths))
        click.echo(cells + ("  " + numbers if numbers else ""))
    click.echo("\n" + last_run(statuses, job, job_assets))
    evaluation = next((s for s in statuses if s.name == "model_evaluation" and s.version), None)
    if evaluation is not None:
        m = evaluation.metadata
        evaluated = str(m.get("evaluated_model", "?"))
        kind = next(
            (s.metadata.get("model") for s in statuses if s.name == MODEL_ASSET and s.version == evaluated), None
        )
        if kind is None:
            kind = _stored_model_kind(store, evaluated)
        standing = "prod" if evaluated == prod else f"not prod (prod is {prod or 'unset'})"
        click.echo(
            f"\nTest MAE {m['test_mae']:.2f}, R² {m['test_r2']:.3f} on {m['test_rows']:,} listings: "
            f"{evaluated} ({kind or 'unknown model'}), {standing}"
        )
        if m.get("promotion"):
            click.echo(f"Promotion: {m['promotion']}")


def _job_assets(job: str) -> set[str]:
    """The assets `job` builds, or a one-line error naming the jobs there are."""
    from rental_pipeline.definitions import defs

    jobs = sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))
    if job not in jobs:
        raise click.ClickException(f"no job {job!r} in the code location; its jobs: {', '.join(jobs)}")
    return {key.to_user_string() for key in defs.resolve_job_def(job).asset_layer.selected_asset_keys}


def _store() -> ArtifactStore:
    """The artifact store the pipeline uses (see `rental_pipeline.home.open_store`)."""
    from rental_pipeline.home import open_store

    return open_store()


def _stored_elsewhere(store: Any, statuses: list[AssetStatus]) -> list[str]:
    """Assets whose latest materialization recorded another store's folder than ``store``'s."""
    return [
        status.name
        for status in statuses
        if status.metadata.get("artifact_path") is not None
        and str(status.metadata["artifact_path"]) != str(store.layout.collection(_stored_name(status)))
    ]


def _stored_name(status: AssetStatus) -> str:
    """The store name of an asset's latest version: a weekly asset's is its week's (`raw_data.<week>`)."""
    artifact = status.metadata.get("artifact")
    return str(artifact).partition(":")[0] if artifact else status.name


def _alias_ref(store: Any, name: str, alias: str) -> str | None:
    from rental_pipeline.store import StoreError

    try:
        return store.get(f"{name}:{alias}").ref
    except StoreError:
        return None


def _stored_model_kind(store: Any, ref: str) -> str | None:
    """The model kind recorded with a stored model version (its config), when the instance has no record of it."""
    from rental_pipeline.store import StoreError

    try:
        config = store.get(ref).metadata.get("config") or {}
    except StoreError:
        return None
    return config.get("model")


def _yaml_lines(data: Any) -> list[str]:
    from rental_pipeline.store.cli import yaml_lines

    return yaml_lines(data)


@main.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the chain as JSON.")
def lineage(ref: str, as_json: bool) -> None:
    """The chain from REF (e.g. inference_pipeline:prod) back to the raw listings file."""
    import json

    from rental_pipeline.store import StoreError

    try:
        chain = _lineage(_store(), ref)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        records = [
            {"depth": depth, "artifact": v.ref, "type": v.type, "digest": v.digest, "code_version": v.code_version,
             "created_at": v.created_at, "run_id": v.run_id, "aliases": list(v.aliases), "inputs": list(v.inputs),
             "config": v.metadata.get("config", {}), "facts": v.metadata.get("facts", {}),
             "git": v.metadata.get("git"), "week": v.metadata.get("partition")}
            for depth, v in chain
        ]
        click.echo(json.dumps(records, indent=2, sort_keys=True))
        return
    for depth, version in chain:
        pad = "    " * depth
        aliases = f" [{', '.join(version.aliases)}]" if version.aliases else ""
        week = version.metadata.get("partition")
        click.echo(f"{pad}{version.ref}{aliases}  ({version.type}{f', week {week}' if week else ''})")
        click.echo(f"{pad}    digest {version.digest}  code {version.code_version}  created {version.created_at}")
        click.echo(f"{pad}    dagster run {version.run_id}")
        git = version.metadata.get("git")
        if git:
            click.echo(f"{pad}    git commit {git['commit']}{' with uncommitted changes' if git['dirty'] else ''}")
        config = version.metadata.get("config") or {}
        if config:
            click.echo(f"{pad}    config:")
            for line in _yaml_lines(config):
                click.echo(f"{pad}      {line}")
        facts = version.metadata.get("facts") or {}
        source = {k: facts[k] for k in ("source", "source_sha256") if k in facts}
        if source:
            click.echo(f"{pad}    {'  '.join(f'{k} {v}' for k, v in source.items())}")


def _lineage(store: ArtifactStore, ref: str) -> list[tuple[int, VersionManifest]]:
    """(depth, version) pairs, depth first through the recorded inputs, each version once even where
    branches meet again."""
    seen: set[str] = set()
    chain: list[tuple[int, VersionManifest]] = []

    def walk(current: str, depth: int) -> None:
        version = store.get(current)
        chain.append((depth, version))
        if version.ref not in seen:
            seen.add(version.ref)
            for parent in version.inputs:
                walk(parent, depth + 1)

    walk(ref, 0)
    return chain


@main.command()
@click.option("--model", "model_ref", default="inference_pipeline:prod", show_default=True,
              help="Stored inference pipeline: NAME:vN or NAME:ALIAS.")
@click.option("--chunk-rows", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="Rows scored at a time; bounds memory whatever the file size.")
@click.argument("input_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("output_csv", type=click.Path(path_type=Path))
def predict(model_ref: str, chunk_rows: int, input_csv: Path, output_csv: Path) -> None:
    """Score INPUT_CSV (listings columns; .csv or .csv.gz) into OUTPUT_CSV with predicted_price
    and prediction_error."""
    from rental_pipeline.predict import PredictionError, check_model, predict_csv

    version, model = load_ref(model_ref)
    try:
        check_model(model, f"{version.ref} (type {version.type})")
    except PredictionError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Scoring {input_csv} with {version.ref}", err=True)
    progress = click.progressbar(
        length=input_csv.stat().st_size, label="listings", file=click.get_text_stream("stderr")
    )
    with progress as bar:
        done = 0

        def advance(bytes_read: int, rows: int) -> None:
            nonlocal done
            bar.update(bytes_read - done)
            done = bytes_read

        try:
            summary = predict_csv(model, input_csv, output_csv, chunk_rows=chunk_rows, on_progress=advance)
        except PredictionError as error:
            raise click.ClickException(str(error)) from None
        except (ValueError, OSError) as error:  # a malformed file, as pandas or Arrow words it
            first_line = str(error).splitlines()[0] if str(error) else repr(error)
            raise click.ClickException(f"{input_csv}: {first_line}") from None
    click.echo(
        f"{summary.rows:,} rows: {summary.predicted:,} predicted, {summary.failed:,} with an error "
        f"(see the prediction_error column) in {summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s) "
        f"-> {output_csv}"
    )


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
