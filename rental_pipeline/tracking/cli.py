"""What the W&B mirror adds to ``rental-pipeline artifacts``: the ``sync`` command, ``gc
--drop-unsynced-runs``, and alias moves made by hand applied to W&B (see
:func:`follow_aliases`). ``rental_pipeline.cli`` mounts them on the store's own group.
"""

from __future__ import annotations

import json

import click

from rental_pipeline.store import LATEST, AliasMove, ArtifactStore, StoreListener
from rental_pipeline.store.cli import current_store, reporting_errors

from .sync_report import DEFAULT_REGISTRY, DEFAULT_TIMEOUT

ALIAS_SYNC_TIMEOUT = 60.0  # online, `artifacts alias` waits this long for W&B

DROP_UNSYNCED_RUNS = click.Option(
    ["--drop-unsynced-runs"],
    is_flag=True,
    help="Also drop W&B offline runs never synced (records and folders), freeing the blobs only "
    "they keep: for runs that will never be uploaded.",
)


class AliasFollower(StoreListener):
    """Hears the alias moves of a command, and once the command is done applies them to W&B
    (online) or says they wait for ``sync`` (offline); nothing when W&B is disabled."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.moved = False

    def alias_moved(self, name: str, move: AliasMove) -> None:
        if move.alias != LATEST:  # W&B manages its own `latest`
            self.moved = True

    def finish(self) -> None:
        if not self.moved:
            return
        self.moved = False
        from .wandb_mirror import WandbMirror

        mirror = WandbMirror(self.store)
        if mirror.mode == "disabled":
            return
        if mirror.mode == "offline":
            click.echo("W&B: queued; `rental-pipeline artifacts sync` applies it")
            return
        report = mirror.sync(upload=False, timeout=ALIAS_SYNC_TIMEOUT, on_progress=_progress)
        if report.ok:
            click.echo(f"W&B: applied ({'; '.join(report.aliases + report.registry) or 'nothing to change'})")
        else:
            why = "; ".join(f"{what}: {reason}" for what, reason in report.failed)
            click.echo(f"W&B: not applied yet, it stays queued for `rental-pipeline artifacts sync` ({why})")


def follow_aliases(store: ArtifactStore) -> ArtifactStore:
    """Subscribe an :class:`AliasFollower` to ``store``, told to finish when the running command's
    context closes (after the command has said what it moved)."""
    follower = AliasFollower(store)
    store.subscribe(follower)
    click.get_current_context().call_on_close(follower.finish)
    return store


@click.command("sync")
@click.option(
    "--force",
    is_flag=True,
    help="Try even without WANDB_API_KEY (e.g. after wandb login).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds for the whole sync; what is left when they run out stays queued.",
)
@click.option(
    "--registry",
    default=None,
    help="Registry collection the prod model is linked into [default: $RENTAL_PIPELINE_WANDB_REGISTRY "
    f"or {DEFAULT_REGISTRY}]; 'none' to skip.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@reporting_errors
def sync_command(force: bool, timeout: float, registry: str | None, as_json: bool) -> None:
    """Bring W&B up to date: upload waiting runs, add lineage links, apply alias moves and check marks.

    Safe to re-run: each step is recorded as it succeeds, so a second sync does only what is left.
    Exit code 1 when anything failed; the report says what and why.
    """
    from .wandb_mirror import WandbMirror

    mirror = WandbMirror(current_store(), registry=registry)
    report = mirror.sync(force=force, timeout=timeout, on_progress=None if as_json else _progress)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    elif report.skipped_reason:
        click.echo(
            f"{len(report.pending)} W&B run(s) pending and {report.queued_moves} alias move(s) queued, "
            f"not synced: {report.skipped_reason}"
        )
        for run in report.pending:
            click.echo(f"  {run.run_id}  {run.artifact}  {run.run_dir}")
    elif report.nothing_to_do:
        click.echo("W&B is up to date: no pending runs, alias moves or check marks")
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        raise SystemExit(1)


def _progress(message: str) -> None:
    click.echo(f"... {message}", err=True)
