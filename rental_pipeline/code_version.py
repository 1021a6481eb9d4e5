"""Which code made an artifact: per-asset code versions from source, and the git revision.

Dagster marks an asset "code version changed" when its `code_version` differs from the one its
latest materialization recorded, and the run cache reuses a stored version only when the code is
the same. A hand-written version string would be forgotten; the package version never changes
between releases. So an asset's code version is a hash of the source of its module and of every
module of this package it imports, directly or not, found by reading the import statements
(nothing is imported, so lazy imports inside functions count too). The hash covers module names
and source text with line endings normalised, so it is the same on every machine and
interpreter and changes exactly when that code does.

An asset that loads a stored model (``code_version(__name__, loads_models=True)``) runs code it
does not import: a skops archive holds only the state of this package's classes, and the loaded
model predicts with their source as it is now. So its version also covers every package module
the model codec lets an archive name (``TRUSTED_MODEL_NODES``), with what they import; editing
``boosting.py`` re-scores a stored model instead of reusing its old scores. The code that fits
models (the split, the training loop) is not included: a change there makes a new model, which
is a new input.

Modules that move or display values but do not compute them (the artifact store and its model
files, the IO manager and the run cache around it, the metadata shown in the UI, the settings)
are left out: a change there must not mark every asset stale. Third-party library versions are
left out too, as DVC leaves them out of its stage hashes.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

PACKAGE = "rental_pipeline"
PACKAGE_ROOT = Path(__file__).resolve().parent

# How values are stored, loaded and shown; none of them changes what an asset computes.
NOT_COMPUTING = (
    f"{PACKAGE}.store",
    f"{PACKAGE}.model_files",
    f"{PACKAGE}.tracking",
    f"{PACKAGE}.io_manager",
    f"{PACKAGE}.records",
    f"{PACKAGE}.reuse",
    f"{PACKAGE}.run_state",
    f"{PACKAGE}.run_cache",
    f"{PACKAGE}.versions",
    f"{PACKAGE}.code_version",
    f"{PACKAGE}.home",
    f"{PACKAGE}.settings",
    f"{PACKAGE}.assets.metadata",
    f"{PACKAGE}.plots",
)


def _excluded(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in NOT_COMPUTING)


def _module_file(module: str, root: Path) -> Path | None:
    """The source file of a module of the package under ``root``, or None for anything else."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str, path: Path, root: Path) -> set[str]:
    """Package modules named by the import statements of one source file, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = _named_imports(package, path.read_bytes(), str(path))
    return {name for name in names if _module_file(name, root) is not None}


@functools.lru_cache(maxsize=512)
def _named_imports(package: str, source: bytes, filename: str) -> frozenset[str]:
    """Every module name the import statements of ``source`` name. Cached by content: the code
    location computes one closure per asset module, and most of them share modules."""
    found: set[str] = set()
    for node in _statements(ast.parse(source, filename=filename).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            # `from rental_pipeline.assets import training` names a module, not an attribute.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _statements(nodes: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones included (function and class bodies, branches, handlers);
    an import is a statement, so expressions need not be walked."""
    for node in nodes:
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                yield from _statements(children)


def module_closure(module: str, root: Path = PACKAGE_ROOT) -> list[str]:
    """``module`` and the package modules it imports, transitively, minus the non-computing ones."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen or (name != module and _excluded(name)):
            continue
        path = _module_file(name, root)
        if path is None:
            continue
        seen.add(name)
        pending.extend(_imports(name, path, root) - seen)
    return sorted(seen)


def _defining_module(name: str, root: Path) -> str | None:
    """The package module that defines ``name`` (``rental_pipeline.boosting.AveragedRegressor``)."""
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:end])
        if _module_file(module, root) is not None:
            return module
    return None


def model_modules(root: Path = PACKAGE_ROOT) -> list[str]:
    """The package modules a loaded model runs: those defining the classes and functions the model
    codec lets a stored model hold, and the package modules they import."""
    from rental_pipeline.model_types import TRUSTED_MODEL_NODES

    named = {name for names in TRUSTED_MODEL_NODES.values() for name in names if name.startswith(f"{PACKAGE}.")}
    found: set[str] = set()
    for module in {_defining_module(name, root) for name in named}:
        if module is not None:
            found.update(module_closure(module, root))
    return sorted(found)


def code_modules(module: str, root: Path = PACKAGE_ROOT, *, loads_models: bool = False) -> list[str]:
    """What the code version of the assets in ``module`` covers."""
    modules = set(module_closure(module, root))
    if loads_models:
        modules.update(model_modules(root))
    return sorted(modules)


def source_hash(modules: Iterable[str], root: Path = PACKAGE_ROOT) -> str:
    digest = hashlib.sha256()
    for name in sorted(modules):
        path = _module_file(name, root)
        if path is None:
            continue
        text = path.read_bytes().replace(b"\r\n", b"\n")
        digest.update(f"{name}\n{len(text)}\n".encode())
        digest.update(text)
    return digest.hexdigest()[:16]


@functools.cache
def code_version(module: str, *, loads_models: bool = False) -> str:
    """The code version of the assets defined in ``module`` (pass ``__name__``); ``loads_models``
    for assets that load a stored model."""
    return source_hash(code_modules(module, loads_models=loads_models))


@functools.cache
def git_revision(start: Path = PACKAGE_ROOT) -> dict[str, Any] | None:
    """The commit of the checkout the code runs from and whether tracked files differ from it.

    None when the package is not in a git checkout (an installed wheel, a container image) or
    git is missing: the per-asset code versions still say which code ran.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=start, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=start,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if not commit:
        return None
    return {"commit": commit, "dirty": bool(status.strip())}
