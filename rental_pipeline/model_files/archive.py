"""Byte-stable skops archives: the same model gives the same bytes, in any process.

``skops.io.dumps`` is a zip whose bytes change from one call to the next even for the same model:
entries carry the current time, numpy arrays are stored under ``id(obj)`` names, ``bytes`` values
under random ``uuid4`` names, every node records ``id(obj)`` as its ``__id__``, and sets are listed
in hash order (which varies between processes). Without a fix, every retraining would make a new
artifact version. :func:`normalise_skops` rewrites the archive:

* ``__id__`` values are renumbered 1, 2, 3... in order of first appearance in ``schema.json``
  (a bijection, so shared references stay shared when loaded); immutable JSON scalars lose their
  ``__id__`` altogether, since whether two equal strings were one object is an accident of
  interning and cannot change the loaded model;
* set contents are sorted by their canonical JSON;
* process-local caches holding an ``id()`` (``TfidfVectorizer._stop_words_id``, which only
  spares re-checking the stop words in the same process) are stored as ``None``;
* data files are renamed ``<n>.npy`` / ``<n>.npz`` / ``<n>.bin`` in order of first reference;
* the zip is rebuilt with ``schema.json`` first, files in that order, a fixed 1980-01-01
  timestamp, fixed permissions and no compression (zlib output can differ between builds).

``encode_model`` (in the package) gives the same bytes without the first zip: it takes skops'
state tree and array files in memory (:func:`_skops_state`), normalises them (:func:`_canonical`),
audits them, and writes the archive once (:func:`_archive`).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

from rental_pipeline.store import CodecError

SCHEMA = "schema.json"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Attributes whose value is an id() valid only in the process that fitted the model.
PROCESS_LOCAL_ATTRIBUTES = frozenset({"_stop_words_id"})
_NULL_STATE = {
    "__class__": "str",  # what skops writes for every JSON scalar
    "__module__": "builtins",
    "__loader__": "JsonNode",
    "content": "null",
    "is_json": True,
}


class _Members:
    """Stands in for the zip file skops writes array files into (it only calls these two), so
    they stay in memory, named as skops names them, in the order written."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def writestr(self, name: str, data: Any) -> None:
        self.files[name] = bytes(data)

    def namelist(self) -> list[str]:
        return list(self.files)


def _skops_state(model: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """What ``skops.io.dumps`` would write: the schema (as JSON would read it back) and the files.

    skops has no public call for this; ``SaveContext`` and ``get_state`` are what its own
    ``dumps`` uses (skops is pinned to one minor version, and a test compares the result with
    ``dumps`` itself).
    """
    import skops
    import skops.io  # registers skops' state functions for every type it knows
    from skops.io._utils import SaveContext, get_state

    members = _Members()
    context = SaveContext(zip_file=members)  # type: ignore[arg-type]
    try:
        state = get_state(model, context)
    except Exception as exc:  # skops raises TypeError and others for unsupported objects
        raise CodecError(f"cannot store {type(model).__name__} with skops: {exc}") from exc
    finally:
        context.clear_memo()
    state["protocol"] = context.protocol
    state["_skops_version"] = skops.__version__
    return _as_json(state), members.files


def _as_json(value: Any) -> Any:
    """The value as ``json.loads(json.dumps(value))`` gives it back: tuples become lists and keys
    text, so the normalisation below sees what it sees in a file."""
    if isinstance(value, dict):
        return {_json_key(key): _as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(item) for item in value]
    return value


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    raise CodecError(f"cannot store a model whose state has a {type(key).__name__} key ({key!r}) with skops")


def normalise_skops(raw: bytes) -> bytes:
    """Rewrite a skops archive canonically (see the module docstring); the model is unchanged."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            schema = json.loads(archive.read(SCHEMA))
            members = {name: archive.read(name) for name in archive.namelist() if name != SCHEMA}
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise CodecError(f"not a skops archive: {exc}") from exc
    return _archive(*_canonical(schema, members))


def _canonical(schema: dict[str, Any], members: Mapping[str, bytes]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The schema normalised in place, and its files under their canonical names, in order."""
    _settle(schema)
    ids: dict[Any, int] = {}
    names: dict[str, str] = {}
    _renumber(schema, ids, names, members)
    return schema, {new: members[old] for old, new in names.items()}


def _archive(schema: dict[str, Any], files: Mapping[str, bytes]) -> bytes:
    """The zip: ``schema.json`` first, then the files in order, fixed times, no compression."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        _add(archive, SCHEMA, json.dumps(schema, indent=2).encode("utf-8"))
        for name, data in files.items():
            _add(archive, name, data)
    return out.getvalue()


def _is_json_scalar(node: dict[str, Any]) -> bool:
    if node.get("__loader__") != "JsonNode" or not isinstance(node.get("content"), str):
        return False
    try:
        return not isinstance(json.loads(node["content"]), list | dict)
    except ValueError:
        return False


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def _settle(node: Any) -> None:
    """Sort set contents and forget process-local attributes; children first, so nested sets are
    canonical before their parents compare them."""
    if isinstance(node, list):
        for value in node:
            _settle(value)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _settle(value)
    loader, content = node.get("__loader__"), node.get("content")
    if loader == "SetNode" and isinstance(content, list):
        content.sort(key=_identity_free_json)
    if loader == "ObjectNode" and isinstance(content, dict) and isinstance(content.get("content"), dict):
        for key in PROCESS_LOCAL_ATTRIBUTES & content["content"].keys():
            content["content"][key] = dict(_NULL_STATE)


def _identity_free_json(node: Any) -> str:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("__id__", "file")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(node), sort_keys=True)


def _renumber(
    node: Any, ids: dict[Any, int], files: dict[str, str], members: dict[str, bytes]
) -> None:
    """Depth-first in document order, which is deterministic for a given model."""
    if isinstance(node, list):
        for value in node:
            _renumber(value, ids, files, members)
        return
    if not isinstance(node, dict):
        return
    if "__loader__" in node:
        if "__id__" in node:
            if _is_json_scalar(node):
                del node["__id__"]
            else:
                node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
        name = node.get("file")
        if isinstance(name, str) and name in members:
            if name not in files:
                suffix = name[name.rfind(".") :] if "." in name else ""
                files[name] = f"{len(files)}{suffix}"
            node["file"] = files[name]
    for value in node.values():
        _renumber(value, ids, files, members)
