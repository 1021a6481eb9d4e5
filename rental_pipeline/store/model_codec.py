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

:func:`encode_model` gives the same bytes without the first zip: it takes skops' state tree and
array files in memory, normalises and audits them there, and writes the archive once.

Loading. A skops file is a tree of nodes, each naming a loader and a type (``module.name``);
loading imports that type and, depending on the loader, calls it: a ``FunctionNode`` hands back
any function, a ``ConstructorFromReduceNode`` calls one with arguments read from the file, an
``NdArrayNode`` of another class than ``ndarray`` calls that class on the array. Trusting whole
package prefixes therefore trusted every function in them (``numpy.testing`` has one that calls
``exec``). :func:`audit_model` reads ``schema.json`` itself before skops sees it and accepts a
node only if its (loader, type) pair is trusted (:func:`trusted_model_nodes`): the reviewed
scikit-learn and numpy nodes of :data:`TRUSTED_MODEL_NODES`, plus the types a caller registered
for its own estimators with :func:`trust_model_nodes`. Anything else is refused, naming it,
before any module is imported or anything is called; array files must hold plain numbers (no
pickled objects), and only the current skops protocol is read. skops' own default list (every
scikit-learn estimator, numpy ufuncs...) is therefore narrowed too: a type it trusts but no
reviewed model contains is refused.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import IO, Any

from .errors import CodecError, UntrustedTypesError

# The reviewed (loader, type) pairs of scikit-learn and numpy: containers and plain values;
# estimators rebuilt from their attributes (``ObjectNode``: ``__new__`` and ``__setstate__``, no
# constructor call); the only constructors called with arguments from the file (the tree structure,
# two loss objects: numbers only); the only functions (a target transform's log/exp).
TRUSTED_MODEL_NODES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "DictNode": frozenset({"builtins.dict"}),
        "ListNode": frozenset({"builtins.list"}),
        "TupleNode": frozenset({"builtins.tuple"}),
        "JsonNode": frozenset({"builtins.str"}),  # every JSON scalar is written as "str"
        "SliceNode": frozenset({"builtins.slice"}),
        "TypeNode": frozenset({"builtins.str", "numpy.float64"}),
        "DTypeNode": frozenset({"numpy.dtype"}),
        "NdArrayNode": frozenset({"numpy.ndarray", "numpy.float64", "numpy.int64", "numpy.uint64"}),
        "RandomGeneratorNode": frozenset({"numpy.random._generator.Generator"}),
        "ObjectNode": frozenset(
            {
                "sklearn._loss.link.IdentityLink",
                "sklearn._loss.link.Interval",
                "sklearn._loss.loss.AbsoluteError",
                "sklearn._loss.loss.HalfSquaredError",
                "sklearn.compose._column_transformer.ColumnTransformer",
                "sklearn.compose._target.TransformedTargetRegressor",
                "sklearn.ensemble._forest.RandomForestRegressor",
                "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
                "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
                "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
                "sklearn.feature_extraction.text.TfidfTransformer",
                "sklearn.feature_extraction.text.TfidfVectorizer",
                "sklearn.impute._base.SimpleImputer",
                "sklearn.linear_model._ridge.Ridge",
                "sklearn.pipeline.Pipeline",
                "sklearn.preprocessing._encoders.OneHotEncoder",
                "sklearn.preprocessing._encoders.OrdinalEncoder",
                "sklearn.preprocessing._function_transformer.FunctionTransformer",
                "sklearn.tree._classes.DecisionTreeRegressor",
            }
        ),
        "TreeNode": frozenset({"sklearn.tree._tree.Tree"}),
        "LossNode": frozenset({"sklearn._loss._loss.CyAbsoluteError", "sklearn._loss._loss.CyHalfSquaredError"}),
        "FunctionNode": frozenset({"numpy.expm1", "numpy.log1p"}),
    }
)
_registered: dict[str, frozenset[str]] = {}  # what callers added with trust_model_nodes
# A numpy Generator names its bit generator as a string inside its state, called on load.
TRUSTED_BIT_GENERATORS = frozenset({"PCG64"})
# A node that only points back at an object loaded earlier in the same file.
_CACHED = "CachedNode"
SKOPS_PROTOCOL = 2  # the protocol skops 0.16 writes; older ones load through other node classes
SCHEMA = "schema.json"
MAX_SCHEMA_BYTES = 256 << 20  # the real models' schemas are a few MB: their arrays are separate files
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


def trust_model_nodes(nodes: Mapping[str, Iterable[str]]) -> None:
    """Let stored models also hold these (loader, type) pairs, e.g. ``{"ObjectNode":
    {"mypackage.MyEstimator"}}``: the reviewed classes and functions of the caller's own estimators.
    For the whole process, like :func:`.codecs.register`; registering twice changes nothing."""
    for loader, names in nodes.items():
        _registered[loader] = _registered.get(loader, frozenset()) | frozenset(names)


def trusted_model_nodes() -> Mapping[str, frozenset[str]]:
    """Every (loader, type) pair a stored model may hold now: :data:`TRUSTED_MODEL_NODES` and
    what callers registered with :func:`trust_model_nodes`."""
    merged = dict(TRUSTED_MODEL_NODES)
    for loader, names in _registered.items():
        merged[loader] = merged.get(loader, frozenset()) | names
    return MappingProxyType(merged)


def encode_model(model: Any, *, trusted: Mapping[str, frozenset[str]] | None = None) -> bytes:
    """skops bytes, identical for identical models; refused now if they could not be loaded.

    In one pass: skops builds the model's state tree and array files as it would for
    ``skops.io.dumps``, but into memory instead of a zip; they are normalised and audited there
    and written once, as the canonical archive. The bytes are exactly
    ``normalise_skops(skops.io.dumps(model))``, without zipping, unzipping and zipping again, and
    without reading back the archive just written to audit it.
    """
    schema, members = _skops_state(model)
    schema, files = _canonical(schema, members)
    _audit(schema, lambda name: io.BytesIO(files[name]), trusted or trusted_model_nodes())  # fail now, not later
    return _archive(schema, files)


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


def decode_model(data: bytes, *, trusted: Mapping[str, frozenset[str]] | None = None) -> Any:
    """The model, once every node of the file has passed :func:`audit_model`."""
    import skops.io

    trusted = trusted or trusted_model_nodes()
    audit_model(data, trusted)
    allowed = set().union(*trusted.values())
    try:
        untrusted: list[str] = skops.io.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises several types for malformed trees
        raise CodecError(f"stored skops model is unreadable: {exc}") from exc
    beyond = sorted(set(untrusted) - allowed)
    if beyond:  # a type skops declares that the schema walk did not see: refuse rather than guess
        raise UntrustedTypesError(f"refusing to load a model that needs unaudited types: {', '.join(beyond)}", beyond)
    return skops.io.loads(data, trusted=untrusted)


def model_inventory(data: bytes) -> dict[str, set[str]]:
    """Loader -> the types a skops file holds under it (what the trusted nodes are derived from).
    Reads the schema only: nothing is imported or called."""
    schema, _ = _read_archive(data)
    found: dict[str, set[str]] = {}
    for node in _nodes(schema):
        found.setdefault(str(node.get("__loader__")), set()).add(_type_name(node))
    return found


def audit_model(data: bytes, trusted: Mapping[str, frozenset[str]] | None = None) -> None:
    """Refuse a skops file holding any node outside ``trusted`` (default: :func:`trusted_model_nodes`),
    naming each; read-only.

    Also refused: another skops protocol, a bit generator other than the audited ones, and array
    files whose dtype holds Python objects (numpy would need pickle to read them).
    """
    schema, archive = _read_archive(data)
    _audit(schema, archive.open, trusted or trusted_model_nodes())


def _audit(
    schema: dict[str, Any], open_member: Callable[[str], IO[bytes]], trusted: Mapping[str, frozenset[str]]
) -> None:
    """:func:`audit_model` on a schema already read; array files are opened with ``open_member``."""
    if schema.get("protocol") != SKOPS_PROTOCOL:
        raise CodecError(
            f"stored skops model uses protocol {schema.get('protocol')!r}; only protocol {SKOPS_PROTOCOL} is read"
        )
    allowed = set().union(*trusted.values())
    refused: dict[str, str] = {}  # type -> how the file uses it
    for node in _nodes(schema):
        loader, name = node.get("__loader__"), _type_name(node)
        ok = (loader == _CACHED and name in allowed) or (
            isinstance(loader, str) and name in trusted.get(loader, frozenset())
        )
        if not ok:
            refused.setdefault(_shown(name), f"as {_shown(str(loader), 40)}")
            continue
        if loader == "RandomGeneratorNode":
            generator = _bit_generator(node)
            if generator not in TRUSTED_BIT_GENERATORS:
                refused.setdefault(_shown(f"numpy.random.{generator}"), "as the bit generator of a Generator")
        if loader == "NdArrayNode" and node.get("type") == "numpy":
            problem = _array_problem(open_member, node.get("file"))
            if problem:
                refused.setdefault(_shown(name), problem)
    if refused:
        shown = "; ".join(f"{name} ({how})" for name, how in refused.items())
        raise UntrustedTypesError(
            "refusing to load a model that holds types outside the audited list of trusted model types "
            f"(nothing was imported or run): {shown}",
            list(refused),
        )


def _read_archive(data: bytes) -> tuple[dict[str, Any], zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        if archive.getinfo(SCHEMA).file_size > MAX_SCHEMA_BYTES:  # a zip bomb would fill memory first
            raise CodecError(f"stored skops model has a schema over {MAX_SCHEMA_BYTES:,} bytes; refusing it")
        schema = json.loads(archive.read(SCHEMA))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RecursionError) as exc:
        raise CodecError(f"stored skops model is unreadable: {_shown(str(exc), 200)}") from None
    if not isinstance(schema, dict):
        raise CodecError("stored skops model is unreadable: its schema is not an object")
    return schema, archive


def _nodes(value: Any) -> list[dict[str, Any]]:
    """Every node state in the schema, wherever it sits (iteratively: a crafted file may nest deep)."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__loader__" in item:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _type_name(node: dict[str, Any]) -> str:
    return f"{node.get('__module__')}.{node.get('__class__')}"


def _shown(text: str, limit: int = 120) -> str:
    """A name read from the file, as it may appear in a message: escaped and cut short."""
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


def _bit_generator(node: dict[str, Any]) -> str:
    try:
        name = json.loads(node["content"]["bit_generator"]["content"]["bit_generator"]["content"])
    except (KeyError, TypeError, ValueError):
        return "<missing>"
    return name if isinstance(name, str) else repr(name)


def _array_problem(open_member: Callable[[str], IO[bytes]], name: Any) -> str | None:
    """Why an array file is not plain numbers, or None when it is."""
    import numpy.lib.format as npy

    if not isinstance(name, str):
        return "array without a file"
    try:
        with open_member(name) as handle:
            version = npy.read_magic(handle)
            if version == (1, 0):
                _, _, dtype = npy.read_array_header_1_0(handle)
            elif version == (2, 0):
                _, _, dtype = npy.read_array_header_2_0(handle)
            else:
                return (
                    f"array file {_shown(name, 40)!r} uses numpy format {version}, "
                    "which numpy.save never writes for numbers"
                )
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        return f"array file {_shown(name, 40)!r} is not a numpy array: {_shown(str(exc), 80)}"
    if dtype.hasobject:
        return f"array file {_shown(name, 40)!r} holds Python objects (dtype {dtype}), which only pickle can read"
    return None


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
