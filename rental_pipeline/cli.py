"""The `rental-pipeline` console script: what a person asks of the pipeline outside the web UI."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from rental_pipeline.store.cli import artifacts

PIPELINE_ASSETS = ("raw_data", "clean_sample", "trainval_data", "test_data", "inference_pipeline", "model_evaluation")
SHOWN_METADATA = ("artifact", "dagster/row_count", "val_mae", "val_r2", "test_mae", "test_r2", "fit_seconds")


@click.group()
@click.version_option(package_name="rental_pipeline")
def main() -> None:
    """Versioned NYC rental price models built by Dagster assets."""


main.add_command(artifacts)


def latest_materializations() -> dict[str, tuple[float, str, dict[str, Any]] | None]:
    """Per asset: (timestamp, run id, metadata values) of its latest materialization, or None."""
    import dagster as dg  # imported here so `--help` stays fast

    latest: dict[str, tuple[float, str, dict[str, Any]] | None] = {}
    with dg.DagsterInstance.get() as instance:
        for name in PIPELINE_ASSETS:
            event = instance.get_latest_materialization_event(dg.AssetKey(name))
            if event is None or event.asset_materialization is None:
                latest[name] = None
                continue
            metadata = {key: entry.value for key, entry in event.asset_materialization.metadata.items()}
            latest[name] = (event.timestamp, event.run_id, metadata)
    return latest


@main.command()
def summary() -> None:
    """The latest materialization of every asset in the Dagster instance ($DAGSTER_HOME)."""
    latest = latest_materializations()
    rows = []
    for name, found in latest.items():
        if found is None:
            rows.append((name, "never materialized", "", ""))
            continue
        timestamp, run_id, metadata = found
        when = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        shown = ", ".join(
            f"{key.removeprefix('dagster/')}={_format(metadata[key])}" for key in SHOWN_METADATA if key in metadata
        )
        rows.append((name, when, run_id[:8], shown))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    evaluation = latest.get("model_evaluation")
    if evaluation is not None:
        metrics = evaluation[2]
        click.echo(f"\nTest MAE {metrics['test_mae']:.2f}, R² {metrics['test_r2']:.3f} on {metrics['test_rows']:,} listings")


@main.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the chain as JSON.")
def lineage(ref: str, as_json: bool) -> None:
    """The chain from REF (e.g. inference_pipeline:prod) back to the raw listings file."""
    import json

    from rental_pipeline.store import ArtifactStore, StoreError, default_root
    from rental_pipeline.store.lineage import lineage as walk

    try:
        chain = list(walk(ArtifactStore(default_root()), ref))
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        records = [
            {"depth": depth, "artifact": v.ref, "type": v.type, "digest": v.digest, "code_version": v.code_version,
             "created_at": v.created_at, "run_id": v.run_id, "aliases": list(v.aliases), "inputs": list(v.inputs),
             "config": v.metadata.get("config", {}), "facts": v.metadata.get("facts", {}),
             "git": v.metadata.get("git")}
            for depth, v in chain
        ]
        click.echo(json.dumps(records, indent=2, sort_keys=True))
        return
    for depth, version in chain:
        pad = "    " * depth
        aliases = f" [{', '.join(version.aliases)}]" if version.aliases else ""
        click.echo(f"{pad}{version.ref}{aliases}  ({version.type})")
        click.echo(f"{pad}    digest {version.digest}  code {version.code_version}  created {version.created_at}")
        click.echo(f"{pad}    dagster run {version.run_id}")
        git = version.metadata.get("git")
        if git:
            click.echo(f"{pad}    git commit {git['commit']}{' with uncommitted changes' if git['dirty'] else ''}")
        config = version.metadata.get("config") or {}
        if config:
            click.echo(f"{pad}    config {json.dumps(config, sort_keys=True)}")
        facts = version.metadata.get("facts") or {}
        source = {k: facts[k] for k in ("source", "source_sha256") if k in facts}
        if source:
            click.echo(f"{pad}    {'  '.join(f'{k} {v}' for k, v in source.items())}")


@main.command()
@click.option("--model", "model_ref", default="inference_pipeline:prod", show_default=True,
              help="Stored inference pipeline: NAME:vN or NAME:ALIAS.")
@click.option("--chunk-rows", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="Rows scored at a time; bounds memory whatever the file size.")
@click.argument("input_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("output_csv", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def predict(model_ref: str, chunk_rows: int, input_csv: Path, output_csv: Path) -> None:
    """Score INPUT_CSV (listings columns) into OUTPUT_CSV with predicted_price and prediction_error."""
    from rental_pipeline.predict import predict_csv

    version, model = _load(model_ref)
    click.echo(f"Scoring {input_csv} with {version.ref}", err=True)
    with click.progressbar(length=input_csv.stat().st_size, label="listings", file=click.get_text_stream("stderr")) as bar:
        done = 0

        def advance(bytes_read: int, rows: int) -> None:
            nonlocal done
            bar.update(bytes_read - done)
            done = bytes_read

        try:
            summary = predict_csv(model, input_csv, output_csv, chunk_rows=chunk_rows, on_progress=advance)
        except ValueError as error:
            raise click.ClickException(f"{input_csv}: {error}") from error
    click.echo(
        f"{summary.rows:,} rows: {summary.predicted:,} predicted, {summary.failed:,} with an error "
        f"(see the prediction_error column) in {summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s) "
        f"-> {output_csv}"
    )


@main.group()
def sweep() -> None:
    """The hyperparameter sweep's leaderboard (made by `dagster job execute -j sweep_job`)."""


def _load(ref: str) -> tuple[Any, Any]:
    """(version manifest, stored object) of a reference, or a one-line error naming it."""
    from rental_pipeline.store import ArtifactStore, StoreError, default_root

    try:
        store = ArtifactStore(default_root())
        version = store.get(ref)
        return version, store.load(version)
    except StoreError as error:
        raise click.ClickException(str(error)) from error


@sweep.command("show")
@click.argument("ref", default="sweep_leaderboard:latest")
def sweep_show(ref: str) -> None:
    """Print the leaderboard, best configuration first."""
    version, board = _load(ref)
    fit_seconds = version.metadata.get("facts", {}).get("fit_seconds_by_trial", {})
    board = board.assign(fit_seconds=board["trial"].astype(str).map(fit_seconds))
    click.echo(f"{version.ref} ({len(board)} trials, made by run {version.run_id})")
    click.echo(board.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


@sweep.command("best")
@click.argument("ref", default="sweep_leaderboard:latest")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the run config here (default: print it).")
@click.option("--train", "train", is_flag=True,
              help="Then run training_job with it (through `dagster job execute`).")
@click.option("-c", "--config", "extra_configs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="With --train: more run config files for the other ops (e.g. raw_data's source).")
def sweep_best(ref: str, output: Path | None, train: bool, extra_configs: tuple[str, ...]) -> None:
    """Run config that trains the winning configuration: pass it to training_job with -c, or --train."""
    import yaml

    from rental_pipeline.sweep import best_training_config

    version, board = _load(ref)
    base = dict(version.metadata.get("config", {}).get("training", {}))
    run_config = {"ops": {"inference_pipeline": {"config": best_training_config(board, base)}}}
    text = f"# best of {version.ref}: validation MAE {board['val_mae'].iloc[0]:.3f}\n" + yaml.safe_dump(run_config)
    if output is None and not train:
        click.echo(text, nl=False)
        return
    if output is None:
        output = _scratch_config()
    output.write_text(text, encoding="utf-8")
    command = [sys.executable, "-m", "dagster", "job", "execute", "-m", "rental_pipeline.definitions",
               "-j", "training_job", "-c", str(output)]
    for extra in extra_configs:
        command += ["-c", extra]
    if not train:
        click.echo(f"wrote {output}; train it with: {' '.join(command[2:])}")
        return
    click.echo(f"training the best of {version.ref}: {' '.join(command[2:])}", err=True)
    raise SystemExit(subprocess.run(command, check=False).returncode)


def _scratch_config() -> Path:
    import tempfile

    handle, name = tempfile.mkstemp(prefix="sweep-best-", suffix=".yaml")
    os.close(handle)
    return Path(name)


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
