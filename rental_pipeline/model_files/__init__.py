"""Fitted scikit-learn models as skops files: byte-stable when saved, allow-listed when loaded.

A library beside the store, registering the ``skops`` codec (``model.skops``) with the store's
codec registry when imported, so a store saves and loads estimators; without it a store refuses
them (no codec), never falling back to pickle, and the store itself never imports skops.
``rental_pipeline.model_types`` imports this package and ``rental_pipeline.home.open_store``
imports that, so every store the pipeline opens has it. How the bytes are made stable is told in
:mod:`.archive`.

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
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import IO, Any

from rental_pipeline.store import Codec, CodecError, register

from .archive import SCHEMA, _archive, _canonical, _skops_state, normalise_skops

__all__ = [
    "TRUSTED_MODEL_NODES",
    "UntrustedTypesError",
    "audit_model",
    "decode_model",
    "encode_model",
    "model_inventory",
    "normalise_skops",
    "trust_model_nodes",
    "trusted_model_nodes",
]


class UntrustedTypesError(CodecError):
    """A serialised model names types outside the allow-list; loading it could run their code."""

    def __init__(self, message: str, types: list[str]) -> None:
        super().__init__(message)
        self.types = types


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
MAX_SCHEMA_BYTES = 256 << 20  # the real models' schemas are a few MB: their arrays are separate files


def trust_model_nodes(nodes: Mapping[str, Iterable[str]]) -> None:
    """Let stored models also hold these (loader, type) pairs, e.g. ``{"ObjectNode":
    {"mypackage.MyEstimator"}}``: the reviewed classes and functions of the caller's own estimators.
    For the whole process, like the store's ``register``; registering twice changes nothing."""
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
    data = _archive(schema, files)
    size = zipfile.ZipFile(io.BytesIO(data)).getinfo(SCHEMA).file_size
    if size > MAX_SCHEMA_BYTES:  # loading would refuse it: refuse to store it
        raise CodecError(f"model's skops schema is {size:,} bytes, over the {MAX_SCHEMA_BYTES:,} a load reads")
    return data


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


def _is_estimator(obj: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(obj, base.BaseEstimator)


# skops stores an estimator's whole state (arrays bit for bit); the only thing normalisation drops
# is an id() cache valid in the fitting process alone, so a model round-trips.
MODEL = register(Codec("skops", "model.skops", _is_estimator, encode_model, decode_model, round_trips=True))
