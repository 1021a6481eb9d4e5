"""The store on S3-compatible object storage (AWS S3, MinIO, Ceph RGW, SeaweedFS...), through boto3.

    s3://bucket/prefix
    s3://bucket/prefix?endpoint_url=http://127.0.0.1:8333&region=us-east-1

The endpoint and region come from the URL's query, else from the caller (``default_endpoint_url``,
``default_region``: the pipeline gives the ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` and
``AWS_REGION`` / ``AWS_DEFAULT_REGION`` its settings read), else from boto3's own resolution (its
environment variables and AWS config files). The store reads no environment variable itself.
Credentials come only from boto3's usual chain (environment, ``~/.aws``, a pod's web identity or
instance role): the store never reads them itself, never puts them in a URL and never records them.

No locks: concurrent writers on different machines are kept apart by conditional writes alone.
A version number is claimed with a create-only ``PutObject`` (``If-None-Match: *``); the alias
log and flags are replaced only if their ETag is still the one read (``If-Match``). The service
must therefore offer strong read-after-write consistency for puts, overwrites, deletes and
listings, and honour both conditional headers on ``PutObject`` (see docs/artifacts.md for which do).

A version's blobs are uploaded before its manifest is created, so a reader that sees the
manifest finds every blob. How blobs are reused, kept from ``gc`` and read through a cache on each
machine is :class:`.CachedBlobStore`'s; the ETag is never assumed to be the MD5 of the bytes for
correctness (SSE-KMS and multipart uploads have other ETags), only used as a shortcut where it is.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .backend import S3_SCHEME, Backend, ObjectInfo, PreconditionFailed, Stored
from .blobs import entry_digest
from .errors import StoreError

DEFAULT_GRACE_SECONDS = 3600.0
_QUERY_KEYS = ("endpoint_url", "region", "addressing_style")
_NO_CREDENTIALS_IN = (
    "store root: credentials do not belong in {where}; use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, "
    "an AWS profile or the pod's role"
)
# This process's S3 traffic, over every backend (see record_traffic_at_exit).
_totals = {"requests": 0, "bytes_sent": 0, "bytes_received": 0}
_recorded_to: set[str] = set()


def record_traffic_at_exit(path: str | Path) -> None:
    """Append this process's S3 totals (requests, bytes sent and received) to ``path`` as one JSON
    line when it exits, if it made any requests: e.g. a benchmark's bytes moved. Once per path."""
    path = str(path)
    if path in _recorded_to:
        return
    _recorded_to.add(path)

    def write() -> None:
        if _totals["requests"]:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"pid": os.getpid(), **_totals}) + "\n")

    atexit.register(write)


class S3ConfigError(StoreError, ValueError):
    """An ``s3://`` root that cannot be used (no bucket, an unknown option, credentials in it)."""


class ObjectStorageError(StoreError):
    """The object storage cannot be used: unreachable, no credentials, access refused, no bucket."""


def parse_s3_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``s3://bucket/prefix?options`` -> bucket, prefix (no slashes at either end), options."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise S3ConfigError(f"store root {url!r}: expected s3://bucket/prefix")
    if "@" in parts.netloc or parts.username or parts.password:
        raise S3ConfigError(_NO_CREDENTIALS_IN.format(where="the URL"))
    bucket = parts.netloc
    if len(bucket) < 3:
        raise S3ConfigError(f"store root {url!r}: bucket names have at least 3 characters")
    options: dict[str, str] = {}
    for key, values in parse_qs(parts.query, keep_blank_values=False, strict_parsing=False).items():
        if key not in _QUERY_KEYS:
            raise S3ConfigError(
                f"store root {url!r}: unknown option {key!r} (known: {', '.join(_QUERY_KEYS)})"
            )
        options[key] = values[-1]
    endpoint = urlsplit(options.get("endpoint_url", ""))
    if endpoint.username or endpoint.password:
        raise S3ConfigError(_NO_CREDENTIALS_IN.format(where="the endpoint URL"))
    prefix = parts.path.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise S3ConfigError(f"store root {url!r}: the prefix has an empty, '.' or '..' part")
    return bucket, prefix, options


class S3Backend(Backend):
    default_grace_seconds = DEFAULT_GRACE_SECONDS

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing_style: str | None = None,
        local_dir: Path | None = None,
        client: Any = None,
        default_region: str | None = None,
        default_endpoint_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        # The caller's, for a URL that names none; not part of ``location`` (each machine's own).
        self.default_region = default_region
        self.default_endpoint_url = default_endpoint_url
        self.addressing_style = addressing_style
        # The URL's options, in the order a URL names them (what ``location`` gives back).
        self.options = {
            key: value
            for key, value in zip(_QUERY_KEYS, (endpoint_url, region, addressing_style), strict=True)
            if value
        }
        self._local_dir = local_dir
        self._client = client
        self._lock = threading.Lock()
        self.bytes_sent = 0
        self.bytes_received = 0
        self.requests = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        local_dir: Path | None = None,
        default_region: str | None = None,
        default_endpoint_url: str | None = None,
    ) -> S3Backend:
        bucket, prefix, options = parse_s3_url(url)
        return cls(
            bucket,
            prefix,
            **options,
            local_dir=local_dir,
            default_region=default_region,
            default_endpoint_url=default_endpoint_url,
        )

    @property
    def location(self) -> str:
        base = f"{S3_SCHEME}{self.bucket}/{self.prefix}".rstrip("/")
        return f"{base}?{urlencode(self.options)}" if self.options else base

    def url(self, key: str) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self._key(key)}"

    @property
    def local_dir(self) -> Path:
        if self._local_dir is None:
            raise StoreError(f"{self.location}: no folder on this machine was given for it (local_dir)")
        return self._local_dir

    def __repr__(self) -> str:
        return f"S3Backend({self.location!r})"

    # -- the client --------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                style = self.addressing_style or ("path" if self._configured_endpoint() else "auto")
                config = Config(
                    s3={"addressing_style": style},
                    retries={"mode": "standard", "max_attempts": 5},
                    connect_timeout=10,
                    read_timeout=60,
                    # Conditional PutObject needs a body hash the service checks, not a trailer.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                # None: boto3 resolves them itself (AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3, ~/.aws/config).
                region = self.region or self.default_region
                session = boto3.session.Session()
                self._client = session.client(
                    "s3", endpoint_url=self._configured_endpoint(), region_name=region or None, config=config
                )
            return self._client

    def _configured_endpoint(self) -> str | None:
        return self.endpoint_url or self.default_endpoint_url or None

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        self._count("requests", 1)
        where = self.url(self._relative(kwargs.get("Key", "")))
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
                raise PreconditionFailed(f"{where}: {code}") from None
            if code == "NoSuchBucket":
                raise ObjectStorageError(
                    f"bucket {self.bucket!r} does not exist at {self._configured_endpoint() or 'AWS'}: create it "
                    "first (the store never creates buckets)"
                ) from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status == 403:
                raise ObjectStorageError(
                    f"{operation} on {where} refused ({code}): check the credentials, and that bucket "
                    f"{self.bucket!r} exists at {self._configured_endpoint() or 'AWS'} (some servers answer "
                    "so for a missing bucket)"
                ) from None
            if code in ("NoSuchKey", "404", "NotFound") or status == 404:
                raise FileNotFoundError(where) from None
            raise
        except NoCredentialsError as error:
            raise ObjectStorageError(
                f"no AWS credentials for {self.location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, or give the pod a role"
            ) from error
        except BotoCoreError as error:  # unreachable endpoint, timeouts after retries, bad region...
            raise ObjectStorageError(f"{operation} on {where} failed: {error}") from error

    def _count(self, what: str, amount: int) -> None:
        """Count traffic on this backend and in this process's totals (:func:`record_traffic_at_exit`)."""
        setattr(self, what, getattr(self, what) + amount)
        _totals[what] += amount

    # -- objects -----------------------------------------------------------------------------

    def read(self, key: str) -> Stored:
        response = self._call("get_object", Key=self._key(key))
        data = response["Body"].read()
        self._count("bytes_received", len(data))
        return Stored(data, response["ETag"])

    def write(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> str:
        conditions: dict[str, str] = {}
        if if_absent:
            conditions["IfNoneMatch"] = "*"
        elif if_match is not None:
            conditions["IfMatch"] = if_match
        # Content-MD5 (base64 of the md5, as W&B's entry digest is) lets the service refuse a
        # body damaged in transit.
        response = self._call("put_object", Key=self._key(key), Body=data, ContentMD5=entry_digest(data), **conditions)
        self._count("bytes_sent", len(data))
        return str(response["ETag"])

    def delete(self, key: str) -> int:
        found = self.info(key)
        if found is None:
            return 0
        self._call("delete_object", Key=self._key(key))
        return found.size

    def info(self, key: str) -> ObjectInfo | None:
        try:
            response = self._call("head_object", Key=self._key(key))
        except FileNotFoundError:
            return None
        return ObjectInfo(key, int(response["ContentLength"]), response["LastModified"].timestamp(), response["ETag"])

    def _pages(self, prefix: str, **options: str) -> Iterator[dict[str, Any]]:
        """Every page of a listing of ``prefix``."""
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            response = self._call("list_objects_v2", Prefix=self._key(prefix), **options, **extra)
            yield response
            if not response.get("IsTruncated"):
                return
            token = response["NextContinuationToken"]

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for page in self._pages(prefix):
            for item in page.get("Contents", ()):
                yield ObjectInfo(
                    self._relative(item["Key"]), int(item["Size"]), item["LastModified"].timestamp(), item["ETag"]
                )

    def children(self, prefix: str) -> list[str]:
        base = self._key(prefix)
        found: list[str] = []
        for page in self._pages(prefix, Delimiter="/"):
            found += [item["Prefix"][len(base) :].strip("/") for item in page.get("CommonPrefixes", ())]
        return sorted(found)

    def holds(self, found: ObjectInfo, data: bytes) -> bool:
        """A single-part upload's ETag is the MD5 of its bytes (multipart ETags end in ``-N``, and
        SSE-KMS ETags are something else)."""
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        return found.size == len(data) and found.etag.strip('"') == md5

    def touch(self, key: str) -> str | None:
        """A server-side copy of the object onto itself: new modification time, no bytes moved."""
        full = self._key(key)
        try:
            response = self._call(
                "copy_object",
                Key=full,
                CopySource={"Bucket": self.bucket, "Key": full},
                MetadataDirective="REPLACE",
                Metadata={"touched": str(int(time.time()))},
            )
        except FileNotFoundError:
            return None
        return str(response.get("CopyObjectResult", {}).get("ETag") or "") or None

    def create_bucket(self) -> None:
        """For tests and first-time setup on a private server; a store never calls it."""
        try:
            self._call("create_bucket")
        except Exception as error:  # noqa: BLE001 - an existing bucket of ours is fine
            code = getattr(error, "response", {}).get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


def list_objects(url: str, *, region: str | None = None, endpoint_url: str | None = None) -> list[ObjectInfo]:
    """Objects directly under the prefix ``s3://bucket/prefix/`` (not in sub-folders), keys
    relative to it; ``region`` and ``endpoint_url`` where the URL names none (see :class:`S3Backend`)."""
    bucket, prefix, options = parse_s3_url(url)
    backend = S3Backend(bucket, prefix, **options, default_region=region, default_endpoint_url=endpoint_url)
    return [info for info in backend.list("") if "/" not in info.key]
