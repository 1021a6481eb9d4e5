"""A versioned, content-addressed artifact store with a Weights & Biases mirror.

The store is the system of record (W&B offline mode cannot read artifacts back); W&B mirrors it.
It knows nothing of Dagster: the IO manager is a thin layer on top.

    store = ArtifactStore("artifacts")
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
from .codecs import Codec, codec_for, codec_named, register
from .digest import artifact_digest, entry_digest
from .errors import (
    AliasConflictError,
    AliasRefusedError,
    ArtifactNotFoundError,
    ArtifactTypeError,
    CodecError,
    IntegrityError,
    InvalidNameError,
    MirrorError,
    StoreError,
    UntrustedTypesError,
)
from .events import StoreListener
from .maintenance import GcReport, Problem, VerifyReport, collect_garbage, verify_store
from .manifest import FileEntry, VersionManifest
from .mirror_queue import MirrorOutcome, MirrorQueue, new_run_id
from .names import LATEST, Ref, parse_ref
from .store import ArtifactStore, ArtifactSummary, WriteResult
from .wandb_mirror import MirrorResult, Trial, WandbMirror, project_name, resolve_mode
from .wandb_server import ServerInfo, WandbApi, WandbServer
from .wandb_sync import RegistryLink, SyncReport, WandbSync, registry_link

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
    "MirrorError",
    "MirrorOutcome",
    "MirrorQueue",
    "MirrorResult",
    "Problem",
    "Ref",
    "StoreError",
    "StoreListener",
    "RegistryLink",
    "ServerInfo",
    "SyncReport",
    "Trial",
    "UntrustedTypesError",
    "VerifyReport",
    "VersionManifest",
    "WandbApi",
    "WandbMirror",
    "WandbServer",
    "WandbSync",
    "WriteResult",
    "artifact_digest",
    "codec_for",
    "collect_garbage",
    "codec_named",
    "entry_digest",
    "new_run_id",
    "parse_ref",
    "project_name",
    "refuse_failed_checks",
    "register",
    "registry_link",
    "resolve_mode",
    "verify_store",
]
