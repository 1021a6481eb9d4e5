"""`rental-pipeline sweep`: the hyperparameter sweep's leaderboard, and its winner as run config.

The web UI's way to the same next step is `train_best_job` (`rental_pipeline.assets.sweep`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click


def _store() -> Any:
    """The artifact store the pipeline uses (see `rental_pipeline.home.open_store`)."""
    from rental_pipeline.home import open_store

    return open_store()


@click.group()
def sweep() -> None:
    """The hyperparameter sweep's leaderboard (made by sweep_job or Materialize all)."""


def load_ref(ref: str) -> tuple[Any, Any]:
    """(version manifest, stored object) of a reference, or a one-line error naming it."""
    from rental_pipeline.store import StoreError

    try:
        store = _store()
        version = store.get(ref)
        return version, store.load(version)
    except StoreError as error:
        raise click.ClickException(str(error)) from error


@sweep.command("show")
@click.argument("ref", default="sweep_leaderboard:latest")
def sweep_show(ref: str) -> None:
    """Print the leaderboard, best configuration first."""
    version, board = load_ref(ref)
    fit_seconds = version.metadata.get("facts", {}).get("fit_seconds_by_trial", {})
    board = board.assign(fit_seconds=board["trial"].astype(str).map(fit_seconds))
    click.echo(f"{version.ref} ({len(board)} trials, made by run {version.run_id})")
    click.echo(board.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


@sweep.command("best")
@click.argument("ref", default="sweep_leaderboard:latest")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the run config here (default: print it).")
@click.option("--train", "train", is_flag=True,
              help="Then run training_job with it (dagster job execute).")
@click.option("-c", "--config", "extra_configs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="With --train: more run config files for the other ops (e.g. raw_data's source).")
def sweep_best(ref: str, output: Path | None, train: bool, extra_configs: tuple[str, ...]) -> None:
    """Run config that trains the winning configuration: pass it to training_job with -c, or --train."""
    import yaml

    from rental_pipeline.sweep import best_training_config

    version, board = load_ref(ref)
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
    from rental_pipeline.home import DAGSTER_HOME_VARIABLE
    from rental_pipeline.settings import Settings

    # the run is recorded where `summary` and `make dev` look, not in a throwaway instance
    settings = Settings.from_environment()
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    environment = {**settings.environ, DAGSTER_HOME_VARIABLE: str(settings.dagster_home)}
    raise SystemExit(subprocess.run(command, check=False, env=environment).returncode)


def _scratch_config() -> Path:
    import tempfile

    handle, name = tempfile.mkstemp(prefix="sweep-best-", suffix=".yaml")
    os.close(handle)
    return Path(name)
