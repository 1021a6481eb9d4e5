"""``artifacts``: look after the artifact store from a shell.

A click group meant to be mounted under the project's console script
(``rental-pipeline artifacts list``). The store is ``--root``, else
``$RENTAL_PIPELINE_HOME/artifacts``, else ``.rental_pipeline/artifacts`` in the working directory.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
import yaml

from .errors import StoreError
from .maintenance import collect_garbage, verify_store
from .manifest import VersionManifest
from .store import ArtifactStore
from .wandb_sync import DEFAULT_REGISTRY, DEFAULT_TIMEOUT

_META_KEY = "rental_pipeline.store"
ALIAS_SYNC_TIMEOUT = 60.0  # online, `artifacts alias` waits this long for W&B
F = TypeVar("F", bound=Callable[..., Any])


def _store() -> ArtifactStore:
    store: ArtifactStore = click.get_current_context().meta[_META_KEY]
    return store


def _reporting_errors(command: F) -> F:
    """Store errors become a one-line ``Error: ...`` and exit code 1, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.group("artifacts")
@click.option(
    "--root",
    default=None,
    help="Store folder or s3://bucket/prefix [default: $RENTAL_PIPELINE_STORE, else "
    "$RENTAL_PIPELINE_HOME/artifacts or .rental_pipeline/artifacts]",
)
@click.pass_context
def artifacts(ctx: click.Context, root: str | None) -> None:
    """Versioned artifacts: list, inspect, alias, verify, clean up and sync to W&B."""
    from rental_pipeline.home import open_store

    ctx.meta[_META_KEY] = open_store(root)


@artifacts.command("list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_reporting_errors
def list_command(name: str | None, as_json: bool) -> None:
    """List artifacts, or the versions of NAME."""
    store = _store()
    if name:
        versions = store.history(name)
        if as_json:
            click.echo(
                json.dumps([_version_json(store, v, paths=False) for v in versions], indent=2)
            )
            return
        for v in versions:
            flags = f"  flags: {json.dumps(dict(v.flags), sort_keys=True)}" if v.flags else ""
            aliases = f"  [{', '.join(v.aliases)}]" if v.aliases else ""
            click.echo(f"{v.ref:<40} {v.digest}  {v.created_at}  {v.size:>10} B{aliases}{flags}")
        return
    summaries = store.list()
    if as_json:
        rows = [
            {
                "name": s.name,
                "type": s.type,
                "versions": list(s.versions),
                "aliases": dict(s.aliases),
            }
            for s in summaries
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    if not summaries:
        click.echo(f"no artifacts in {store.location}")
        return
    width = max(len(s.name) for s in summaries)
    for s in summaries:
        aliases = " ".join(f"{a}=v{v}" for a, v in sorted(s.aliases.items()))
        click.echo(f"{s.name:<{width}}  {s.type:<16} {len(s.versions):>3} version(s)  {aliases}")


@artifacts.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_reporting_errors
def show_command(ref: str, as_json: bool) -> None:
    """Show one version (NAME, NAME:vN or NAME:ALIAS): manifest, aliases, lineage, local files."""
    store = _store()
    version = store.get(ref)
    info = _version_json(store, version, paths=True)
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    rows = [
        ("type", version.type),
        ("digest", version.digest),
        ("created", version.created_at),
        ("run", version.run_id or "-"),
        ("code", version.code_version or "-"),
        ("aliases", ", ".join(version.aliases) or "-"),
        ("inputs", ", ".join(version.inputs) or "-"),
        ("used by", ", ".join(info["used_by"]) or "-"),
        ("description", version.description or "-"),
    ]
    click.echo(version.ref)
    for label, value in rows:
        click.echo(f"  {label:<12} {value}")
    for label, mapping in (("flags", version.flags), ("metadata", version.metadata)):
        if mapping:
            click.echo(f"  {label}")
            for line in yaml_lines(dict(mapping)):
                click.echo(f"    {line}")
        else:
            click.echo(f"  {label:<12} -")
    click.echo("  files")
    for entry in info["files"]:
        click.echo(
            f"    {entry['path']}  {entry['size']} B  sha256 {entry['sha256'][:16]}..."
            f"  {entry['local_path']}"
        )


@artifacts.command("alias")
@click.argument("ref")
@click.argument("alias")
@click.option("--reason", default="", help="Why; recorded in the alias log.")
@click.option("--actor", default=None, help="Who; defaults to user@host.")
@click.option("--remove", is_flag=True, help="Remove ALIAS from the artifact instead of moving it.")
@click.option(
    "--force", is_flag=True, help="Override a refusal (e.g. prod on a version that failed checks)."
)
@_reporting_errors
def alias_command(
    ref: str, alias: str, reason: str, actor: str | None, remove: bool, force: bool
) -> None:
    """Point ALIAS at REF (NAME:vN), or with --remove take it off NAME."""
    store = _store()
    if remove:
        name, _, selector = ref.partition(":")
        if selector and store.get(ref).version != store.aliases(name).get(alias):
            raise click.ClickException(f"{alias} is not on {store.get(ref).ref}; nothing removed")
        move = store.remove_alias(name, alias, reason=reason, actor=actor)
        click.echo(f"removed {alias} from {name}:v{move.from_version}")
        _alias_to_wandb(store)
        return
    result = store.set_alias(ref, alias, reason=reason, actor=actor, force=force)
    target = store.get(ref)
    if result is None:
        click.echo(f"{alias} already points at {target.ref}")
    else:
        origin = f"v{result.from_version}" if result.from_version is not None else "nowhere"
        click.echo(f"moved {alias}: {origin} -> {target.ref}{' (forced)' if force else ''}")
        _alias_to_wandb(store)


def _alias_to_wandb(store: ArtifactStore) -> None:
    """Online, apply the move to W&B at once; otherwise say that it waits for ``sync``."""
    from .wandb_mirror import WandbMirror

    mirror = WandbMirror(store)
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


@artifacts.command("log")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_reporting_errors
def log_command(name: str, as_json: bool) -> None:
    """The alias history of NAME: every move, who made it, when and why."""
    moves = _store().alias_log(name)
    if as_json:
        click.echo(json.dumps([m.to_json() for m in moves], indent=2))
        return
    for m in moves:
        origin = "-" if m.from_version is None else f"v{m.from_version}"
        target = "removed" if m.to_version is None else f"v{m.to_version}"
        forced = " (forced)" if m.forced else ""
        click.echo(
            f"{m.at}  {m.alias:<12} {origin:>5} -> {target:<7} {m.actor}{forced}  {m.reason}"
        )


@artifacts.command("verify")
@_reporting_errors
def verify_command() -> None:
    """Check every version, blob and alias; exit code 1 if anything is wrong."""
    report = verify_store(_store())
    click.echo(str(report))
    if not report.ok:
        raise SystemExit(1)


@artifacts.command("gc")
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    default=None,
    help="Also remove unaliased versions older than the newest N.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option(
    "--grace-seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="On object storage, leave unreferenced blobs changed within this many seconds "
    "[default: 3600]; 0 only while nothing else writes to the store.",
)
@click.option(
    "--drop-unsynced-runs",
    is_flag=True,
    help="Also drop W&B offline runs never synced (records and folders), freeing the blobs only "
    "they keep: for runs that will never be uploaded.",
)
@_reporting_errors
def gc_command(keep: int | None, dry_run: bool, grace_seconds: float | None, drop_unsynced_runs: bool) -> None:
    """Remove leftovers of interrupted writes and blobs nothing refers to."""
    report = collect_garbage(
        _store(), keep, dry_run=dry_run, grace_seconds=grace_seconds, drop_unsynced_runs=drop_unsynced_runs
    )
    click.echo(str(report))


@artifacts.command("sync")
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
@_reporting_errors
def sync_command(force: bool, timeout: float, registry: str | None, as_json: bool) -> None:
    """Bring W&B up to date: upload waiting runs, add lineage links, apply alias moves and check marks.

    Safe to re-run: each step is recorded as it succeeds, so a second sync does only what is left.
    Exit code 1 when anything failed; the report says what and why.
    """
    from .wandb_mirror import WandbMirror

    mirror = WandbMirror(_store(), registry=registry)
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


class _ReadableDumper(yaml.SafeDumper):
    """Mappings as blocks (one setting a line), lists of plain values on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flat = all(not isinstance(item, (dict, list, tuple)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_ReadableDumper.add_representer(list, _represent_list)
_ReadableDumper.add_representer(tuple, _represent_list)


def yaml_lines(data: Any) -> list[str]:
    """Config or facts as YAML for a person to read: nested settings indented, one per line."""
    text = yaml.dump(
        data, Dumper=_ReadableDumper, sort_keys=True, default_flow_style=False, width=100, allow_unicode=True
    )
    return text.splitlines()


def _version_json(store: ArtifactStore, version: VersionManifest, *, paths: bool) -> dict[str, Any]:
    info = version.to_json()
    info["ref"] = version.ref
    info["aliases"] = list(version.aliases)
    info["flags"] = dict(version.flags)
    if paths:
        local = store.paths(version)
        for entry in info["files"]:
            entry["local_path"] = str(local[entry["path"]].resolve())
        info["used_by"] = store.used_by(version)
    return info
