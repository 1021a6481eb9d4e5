"""A versioned, content-addressed artifact store: a library that knows neither W&B nor Dagster.

Its caller gives it what it must not decide itself: where it is, this machine's folder for a root
on object storage, the aliases kept off versions that failed checks, the codecs of objects beyond
plain data (:func:`.codecs.register`; models: ``rental_pipeline.model_files``). Others follow what
it commits through listeners (:class:`.StoreListener`); the W&B mirror is one (``rental_pipeline.tracking``).

    store = ArtifactStore("artifacts", protected_aliases=("reference", "prod"))
    result = store.save("clean_sample.csv", frame, type="clean_sample", inputs=["sample.csv"])
    store.set_alias(result.version.ref, "reference", reason="first vetted week")
    model = store.load("random_forest_export:prod")
"""

from .aliases import (
    ANY_TARGET,
    FAILED_CHECKS_FLAG,
    AliasMove,
    AnyTarget,
    refuse_failed_checks,
)
from .blobs import artifact_digest, entry_digest
from .changes import StoreListener, WriteResult
from .codecs import Codec, codec_for, codec_named, register
from .errors import (
    AliasConflictError,
    AliasRefusedError,
    ArtifactNotFoundError,
    ArtifactTypeError,
    CodecError,
    IntegrityError,
    InvalidNameError,
    StoreError,
)
from .maintenance import GcReport, Problem, VerifyReport, collect_garbage, verify_store
from .manifest import FileEntry, RefLike, VersionManifest
from .names import LATEST, Ref, parse_ref
from .store import ArtifactStore, ArtifactSummary

__all__ = [
    "ANY_TARGET",
    "FAILED_CHECKS_FLAG",
    "LATEST",
    "AliasConflictError",
    "AliasMove",
    "AliasRefusedError",
    "AnyTarget",
    "ArtifactNotFoundError",
    "ArtifactStore",
    "ArtifactSummary",
    "ArtifactTypeError",
    "Codec",
    "CodecError",
    "FileEntry",
    "GcReport",
    "IntegrityError",
    "InvalidNameError",
    "Problem",
    "Ref",
    "RefLike",
    "StoreError",
    "StoreListener",
    "VerifyReport",
    "VersionManifest",
    "WriteResult",
    "artifact_digest",
    "codec_for",
    "collect_garbage",
    "codec_named",
    "entry_digest",
    "parse_ref",
    "refuse_failed_checks",
    "register",
    "verify_store",
]
