"""``artifacts``: look after an artifact store from a shell.

:func:`artifacts_group` makes a click group to mount under a console script (``rental-pipeline
artifacts list``). Its caller says how a store is opened from ``--root`` (None when it is not
given), and may add to it: its help texts, what ``verify`` and ``gc`` also look after (with more
``gc`` options, passed on to its ``collect_garbage``), and commands of its own, which find the
store with :func:`current_store`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
import yaml

from .errors import StoreError
from .maintenance import GcReport, VerifyReport, collect_garbage, verify_store
from .manifest import VersionManifest
from .store import ArtifactStore

_META_KEY = "artifact_store"
F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class _Opened:
    store: ArtifactStore
    verify: Callable[[ArtifactStore], VerifyReport]
    collect_garbage: Callable[..., GcReport]


def _opened() -> _Opened:
    opened: _Opened = click.get_current_context().meta[_META_KEY]
    return opened


def current_store() -> ArtifactStore:
    """The store the running ``artifacts`` command works on."""
    return _opened().store


def _root_required(root: str | None) -> ArtifactStore:
    if root is None:
        raise click.UsageError("--root is required")
    return ArtifactStore(root)


def artifacts_group(
    open_store: Callable[[str | None], ArtifactStore] = _root_required,
    *,
    help: str = "Versioned artifacts: list, inspect, alias, verify and clean up.",  # noqa: A002 - click's name
    root_help: str = "Store folder or s3://bucket/prefix.",
    verify: Callable[[ArtifactStore], VerifyReport] = verify_store,
    collect_garbage: Callable[..., GcReport] = collect_garbage,
    gc_options: Sequence[click.Option] = (),
    commands: Sequence[click.Command] = (),
) -> click.Group:
    """The ``artifacts`` group on the stores ``open_store`` opens (see the module)."""

    @click.group("artifacts", help=help)
    @click.option("--root", default=None, help=root_help)
    @click.pass_context
    def artifacts(ctx: click.Context, root: str | None) -> None:
        ctx.meta[_META_KEY] = _Opened(open_store(root), verify, collect_garbage)

    for command in (list_command, show_command, alias_command, log_command, verify_command, *commands):
        artifacts.add_command(command)
    artifacts.add_command(_gc_command(gc_options))
    return artifacts


def reporting_errors(command: F) -> F:
    """Store errors become a one-line ``Error: ...`` and exit code 1, not a traceback (for the
    caller's commands too)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.command("list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reporting_errors
def list_command(name: str | None, as_json: bool) -> None:
    """List artifacts, or the versions of NAME."""
    store = current_store()
    if name:
        versions = store.history(name)
        if as_json:
            click.echo(json.dumps([_version_json(store, v, paths=False) for v in versions], indent=2))
            return
        for v in versions:
            flags = f"  flags: {json.dumps(dict(v.flags), sort_keys=True)}" if v.flags else ""
            aliases = f"  [{', '.join(v.aliases)}]" if v.aliases else ""
            click.echo(f"{v.ref:<40} {v.digest}  {v.created_at}  {v.size:>10} B{aliases}{flags}")
        return
    summaries = store.list()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(s) for s in summaries], indent=2))
        return
    if not summaries:
        click.echo(f"no artifacts in {store.location}")
        return
    width = max(len(s.name) for s in summaries)
    for s in summaries:
        aliases = " ".join(f"{a}=v{v}" for a, v in sorted(s.aliases.items()))
        click.echo(f"{s.name:<{width}}  {s.type:<16} {len(s.versions):>3} version(s)  {aliases}")


@click.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reporting_errors
def show_command(ref: str, as_json: bool) -> None:
    """Show one version (NAME, NAME:vN or NAME:ALIAS): manifest, aliases, lineage, local files."""
    store = current_store()
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


@click.command("alias")
@click.argument("ref")
@click.argument("alias")
@click.option("--reason", default="", help="Why; recorded in the alias log.")
@click.option("--actor", default=None, help="Who; defaults to user@host.")
@click.option("--remove", is_flag=True, help="Remove ALIAS from the artifact instead of moving it.")
@click.option(
    "--force", is_flag=True, help="Override a refusal (e.g. prod on a version that failed checks)."
)
@reporting_errors
def alias_command(
    ref: str, alias: str, reason: str, actor: str | None, remove: bool, force: bool
) -> None:
    """Point ALIAS at REF (NAME:vN), or with --remove take it off NAME."""
    store = current_store()
    if remove:
        name, _, selector = ref.partition(":")
        if selector and store.get(ref).version != store.aliases(name).get(alias):
            raise click.ClickException(f"{alias} is not on {store.get(ref).ref}; nothing removed")
        move = store.remove_alias(name, alias, reason=reason, actor=actor)
        click.echo(f"removed {alias} from {name}:v{move.from_version}")
        return
    result = store.set_alias(ref, alias, reason=reason, actor=actor, force=force)
    target = store.get(ref)
    if result is None:
        click.echo(f"{alias} already points at {target.ref}")
    else:
        origin = f"v{result.from_version}" if result.from_version is not None else "nowhere"
        click.echo(f"moved {alias}: {origin} -> {target.ref}{' (forced)' if force else ''}")


@click.command("log")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reporting_errors
def log_command(name: str, as_json: bool) -> None:
    """The alias history of NAME: every move, who made it, when and why."""
    moves = current_store().alias_log(name)
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


@click.command("verify")
@reporting_errors
def verify_command() -> None:
    """Check every version, blob and alias; exit code 1 if anything is wrong."""
    opened = _opened()
    report = opened.verify(opened.store)
    click.echo(str(report))
    if not report.ok:
        raise SystemExit(1)


def _gc_command(extra_options: Sequence[click.Option]) -> click.Command:
    @click.command("gc")
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
    @reporting_errors
    def gc_command(keep: int | None, dry_run: bool, grace_seconds: float | None, **more: Any) -> None:
        """Remove leftovers of interrupted writes and blobs nothing refers to."""
        opened = _opened()
        report = opened.collect_garbage(opened.store, keep, dry_run=dry_run, grace_seconds=grace_seconds, **more)
        click.echo(str(report))

    gc_command.params.extend(extra_options)
    return gc_command


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
