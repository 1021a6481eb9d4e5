"""Fitted scikit-learn models as skops files: byte-stable when saved, allow-listed when loaded.

Byte stability. ``skops.io.dumps`` is a zip whose bytes change from one call to the next even for
the same model: entries carry the current time, numpy arrays are stored under ``id(obj)`` names,
``bytes`` values under random ``uuid4`` names, every node records ``id(obj)`` as its ``__id__``,
and sets are listed in hash order (which varies between processes). Without a fix, every
retraining would make a new artifact version. :func:`normalise_skops` rewrites the archive:

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

Loading. skops refuses types it does not trust unless told to; telling it to trust whatever the
file asks for would be unpickling by another name. :func:`decode_model` lists the file's
untrusted types and accepts them only if each lies under an allow-listed module prefix
(scikit-learn, numpy, scipy, and this project's own transformers), naming any it refuses.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from typing import Any

from .errors import CodecError, UntrustedTypesError

TRUSTED_MODULE_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.", "scipy.", "rental_pipeline.")
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


def encode_model(model: Any, *, trusted_prefixes: Iterable[str] = TRUSTED_MODULE_PREFIXES) -> bytes:
    """skops bytes, identical for identical models; refused now if they could not be loaded."""
    import skops.io

    try:
        raw = skops.io.dumps(model)
    except Exception as exc:  # skops raises TypeError and others for unsupported objects
        raise CodecError(f"cannot store {type(model).__name__} with skops: {exc}") from exc
    data = normalise_skops(raw)
    check_trusted(data, trusted_prefixes)  # fail at save time, not when the model is needed
    return data


def decode_model(data: bytes, *, trusted_prefixes: Iterable[str] = TRUSTED_MODULE_PREFIXES) -> Any:
    import skops.io

    untrusted = check_trusted(data, trusted_prefixes)
    return skops.io.loads(data, trusted=untrusted)


def check_trusted(
    data: bytes, trusted_prefixes: Iterable[str] = TRUSTED_MODULE_PREFIXES
) -> list[str]:
    """The file's non-default types if all are allow-listed; otherwise refuse, naming the rest."""
    import skops.io

    prefixes = tuple(trusted_prefixes)
    try:
        untrusted: list[str] = skops.io.get_untrusted_types(data=data)
    except Exception as exc:
        raise CodecError(f"stored skops model is unreadable: {exc}") from exc
    refused = [t for t in untrusted if not t.startswith(prefixes)]
    if refused:
        raise UntrustedTypesError(
            f"refusing to load a model that needs types outside the allow-list "
            f"({', '.join(p.rstrip('.') for p in prefixes)}): {', '.join(refused)}",
            refused,
        )
    return untrusted


def normalise_skops(raw: bytes) -> bytes:
    """Rewrite a skops archive canonically (see the module docstring); the model is unchanged."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            schema = json.loads(archive.read(SCHEMA))
            members = {name: archive.read(name) for name in archive.namelist() if name != SCHEMA}
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise CodecError(f"not a skops archive: {exc}") from exc

    _sort_sets(schema)
    _forget_process_local(schema)
    ids: dict[Any, int] = {}
    files: dict[str, str] = {}
    _renumber(schema, ids, files, members)

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        _add(archive, SCHEMA, json.dumps(schema, indent=2).encode("utf-8"))
        for old, new in files.items():
            _add(archive, new, members[old])
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


def _is_node(value: Any) -> bool:
    return isinstance(value, dict) and "__loader__" in value


def _sort_sets(node: Any) -> None:
    """Children first, so nested sets are canonical before their parents compare them."""
    if isinstance(node, dict):
        for value in node.values():
            _sort_sets(value)
        if node.get("__loader__") == "SetNode" and isinstance(node.get("content"), list):
            node["content"].sort(key=_identity_free_json)
    elif isinstance(node, list):
        for value in node:
            _sort_sets(value)


def _forget_process_local(node: Any) -> None:
    if isinstance(node, list):
        for value in node:
            _forget_process_local(value)
    elif isinstance(node, dict):
        if node.get("__loader__") == "ObjectNode":
            attributes = node.get("content")
            if isinstance(attributes, dict) and isinstance(attributes.get("content"), dict):
                for key in PROCESS_LOCAL_ATTRIBUTES & attributes["content"].keys():
                    attributes["content"][key] = dict(_NULL_STATE)
        for value in node.values():
            _forget_process_local(value)


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
    if _is_node(node):
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
