"""Where a listings file may come from, how it is read, and how it may be written down.

A source (`raw_data`'s and `batch_predictions`' `source`) is run config: whoever can launch a run
chooses it, and the run reads it with the code server's rights. So a source is read under a
policy instead of trusted:

* regular files only: a directory, a named pipe (which would block the run forever) or a device
  (`/dev/zero` would fill memory) is refused before anything is read;
* a size cap, counted while reading or downloading and after decompressing (`.csv.gz`), so no
  source can exhaust memory whatever it claims about its size;
* URL schemes `http`, `https` and `file` only, and `s3` for drops in the object storage a
  deployment keeps its store in; for downloads one attempt, a total time limit that covers name
  lookup, connection, redirects and the whole body, and a bounded number of redirects, each
  checked against the policy again;
* allow-lists of folders (or `s3://bucket/prefix/` prefixes) and URL hosts, from the environment of
  the code server (a deployment's setting, see `deploy/`); unset, everything is allowed (a
  laptop). Config can only narrow them.

Credentials never travel in a source: a URL with user info is refused (it would be written into
the run's config). A download authenticates with the `netrc` entry of its host or with a header
read from an environment variable whose name the config gives (only `RENTAL_PIPELINE_AUTH_*`
variables, so a run cannot send another secret of the deployment to a server of its choosing);
credentials are sent to the source's own host only, never after a redirect elsewhere. And every
copy of a source this project writes down (metadata, manifests, logs, W&B config, error messages)
goes through :func:`describe`, which drops user info, query string and fragment.

Nothing here knows Dagster.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import netrc
import os
import queue
import re
import stat
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.error import HTTPError, URLError
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from rental_pipeline.settings import Settings

SCHEMES = ("http", "https", "file", "s3")
FOLDERS_VARIABLE = "RENTAL_PIPELINE_SOURCE_FOLDERS"  # comma-separated folders and s3:// prefixes
HOSTS_VARIABLE = "RENTAL_PIPELINE_SOURCE_HOSTS"  # comma-separated host names
MAX_BYTES_VARIABLE = "RENTAL_PIPELINE_SOURCE_MAX_BYTES"
AUTH_VARIABLE_PREFIX = "RENTAL_PIPELINE_AUTH_"
DEFAULT_MAX_BYTES = 4 << 30  # 4 GiB: about 25 times the whole NYC listings history as CSV
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_REDIRECTS = 5
CHUNK_BYTES = 1 << 16
REDACTED = "<redacted>"
# The options an s3:// source may carry (those the store's S3 client accepts): an endpoint (whose
# credentials the client refuses), a region, an addressing style. Kept when a source is recorded.
_S3_OPTIONS = frozenset({"endpoint_url", "region", "addressing_style"})
_GZIP_MAGIC = b"\x1f\x8b"
# A URL inside text, up to a space, quote or bracket; an already redacted query stays part of it,
# so redacting twice changes nothing.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://(?:<redacted>|[^\s'\"<>\\])+")
_HEADER_LINE = re.compile(r"^([A-Za-z0-9-]+):\s+(.*)$", re.DOTALL)  # "X-Api-Key: value"


class SourceError(ValueError):
    """A source that may not or cannot be read; `source` is already safe to show."""

    def __init__(self, source: str, problem: str):
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


# --- what may be written down ----------------------------------------------------------------


def describe(source: str) -> str:
    """The source as it may be recorded: a URL without user info, query string or fragment
    (a removed query shows as `?<redacted>`); a plain path as given."""
    if "://" not in source:
        return source
    try:
        parts = urlsplit(source)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # e.g. a port that is not a number: keep only what cannot hold a secret
        return f"{source.split('://', 1)[0]}://{REDACTED}"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    query = REDACTED if parts.query else ""
    if parts.scheme == "s3" and parts.query:
        options = parse_qsl(parts.query, keep_blank_values=True)
        if all(key in _S3_OPTIONS for key, _ in options):  # where the object is, never a secret
            query = urlencode([(key, describe(value)) for key, value in options], safe=":/")
    return urlunsplit((parts.scheme, host + port, parts.path, query, ""))


def redact_text(text: str) -> str:
    """`text` with every URL in it :func:`describe`-d (for messages from other libraries)."""
    return _URL.sub(lambda match: describe(match.group(0)), text)


def redact(value: Any) -> Any:
    """A JSON-like value with every string in it :func:`redact_text`-ed (e.g. a step's config)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def compression_of(head: bytes) -> str | None:
    """The compression a file's first bytes announce (gzip, zip, bzip2, xz, zstd), or None."""
    for magic, name in ((_GZIP_MAGIC, "gzip"), (b"PK\x03\x04", "zip"), (b"BZh", "bzip2"),
                        (b"\xfd7zXZ\x00", "xz"), (b"(\xb5/\xfd", "zstd")):
        if head.startswith(magic):
            return name
    return None


def snippet(text: str, limit: int = 40) -> str:
    """At most `limit` characters of text read from a file, escaped, for an error message."""
    escaped = text.encode("unicode_escape").decode("ascii").replace("'", "\\'")
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


# --- the policy --------------------------------------------------------------------------------


def _settings() -> Settings:
    from rental_pipeline.settings import Settings

    return Settings.from_environment()


@dataclass(frozen=True)
class SourcePolicy:
    """What may be read. `folders` / `hosts` None: anywhere (the laptop default)."""

    folders: tuple[Path | str, ...] | None = None  # local folders, and s3://bucket/prefix/ strings
    hosts: tuple[str, ...] | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    # The environment the credentials a source config names by variable are taken from (default:
    # the one this process's settings read now).
    environ: Mapping[str, str] = field(default_factory=lambda: _settings().environ, repr=False, compare=False)
    # The region and endpoint an s3:// source uses when its URL names none (the settings').
    s3_region: str | None = None
    s3_endpoint_url: str | None = None

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        s3_region: str | None = None,
        s3_endpoint_url: str | None = None,
    ) -> SourcePolicy:
        """The deployment's policy: `RENTAL_PIPELINE_SOURCE_FOLDERS`, `..._HOSTS`, `..._MAX_BYTES`.
        A variable that is set but empty allows nothing of its kind (e.g. no URL at all).
        ``environ`` default: this process's settings (:meth:`.Settings.source_policy`)."""
        if environ is None:
            return _settings().source_policy()
        folders = environ.get(FOLDERS_VARIABLE)
        hosts = environ.get(HOSTS_VARIABLE)
        max_bytes = environ.get(MAX_BYTES_VARIABLE, "").strip()
        try:
            cap = int(max_bytes) if max_bytes else DEFAULT_MAX_BYTES
        except ValueError:
            raise SourceError(MAX_BYTES_VARIABLE, f"is not a whole number of bytes: {snippet(max_bytes)!r}") from None
        return cls(
            folders=None if folders is None else tuple(_folder(f) for f in folders.split(",") if f.strip()),
            hosts=None if hosts is None else tuple(h.strip().lower() for h in hosts.split(",") if h.strip()),
            max_bytes=cap,
            environ=environ,
            s3_region=s3_region,
            s3_endpoint_url=s3_endpoint_url,
        )

    def narrowed(
        self,
        *,
        folders: list[str] | None = None,
        hosts: list[str] | None = None,
        max_bytes: int | None = None,
        max_redirects: int | None = None,
    ) -> SourcePolicy:
        """This policy further restricted by config; config can never widen it."""
        policy = self
        if folders is not None:
            wanted = tuple(_folder(f) for f in folders)
            outside = [str(f) for f in wanted if not self.allows_path(f)]
            if outside:
                raise SourceError(", ".join(outside), f"folder(s) outside those allowed by {FOLDERS_VARIABLE}")
            policy = replace(policy, folders=wanted)
        if hosts is not None:
            wanted_hosts = tuple(h.strip().lower() for h in hosts)
            outside = [h for h in wanted_hosts if not self.allows_host(h)]
            if outside:
                raise SourceError(", ".join(outside), f"host(s) outside those allowed by {HOSTS_VARIABLE}")
            policy = replace(policy, hosts=wanted_hosts)
        if max_bytes is not None:
            policy = replace(policy, max_bytes=min(self.max_bytes, max_bytes))
        if max_redirects is not None:
            policy = replace(policy, max_redirects=min(self.max_redirects, max_redirects))
        return policy

    def allows_path(self, resolved: Path | str) -> bool:
        """A resolved local path below an allowed folder, or an s3:// object (or prefix, ending in
        "/") below an allowed s3:// prefix."""
        if self.folders is None:
            return True
        if isinstance(resolved, str):
            return any(isinstance(f, str) and resolved.startswith(f) for f in self.folders)
        return any(isinstance(f, Path) and (resolved == f or f in resolved.parents) for f in self.folders)

    def allows_host(self, host: str) -> bool:
        return self.hosts is None or host.lower() in self.hosts


def _folder(text: str) -> Path | str:
    text = text.strip()
    if text.startswith("s3://"):  # compared as a prefix of bucket/key: "s3://b/landing/"
        base = text.partition("?")[0]
        return base if base.endswith("/") else base + "/"
    return Path(text).expanduser().resolve()


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceBytes:
    """A source's content (decompressed), and the facts that trace it back to what was read."""

    data: bytes
    source: str  # described: safe to record
    sha256: str  # of the bytes as read (compressed, for a .gz file)
    size_bytes: int
    compressed: bool


def read_source(
    source: str,
    policy: SourcePolicy | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    auth_variable: str | None = None,
) -> SourceBytes:
    """The whole content of a path, `file://` or `http(s)://` source, gunzipped if it is gzip."""
    chunks: list[bytes] = []
    read = _read(source, policy or SourcePolicy.from_environment(), timeout, auth_variable, chunks.append)
    return SourceBytes(b"".join(chunks), describe(source), read.sha256, read.size, read.compressed)


def copy_source(
    source: str,
    destination: Path,
    policy: SourcePolicy | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    auth_variable: str | None = None,
) -> SourceBytes:
    """Stream a source into `destination` (gunzipped), holding only a chunk in memory."""
    with open(destination, "wb") as out:
        read = _read(source, policy or SourcePolicy.from_environment(), timeout, auth_variable, out.write)
    return SourceBytes(b"", describe(source), read.sha256, read.size, read.compressed)


def open_regular_file(path: Path | str, shown: str | None = None) -> IO[bytes]:
    """A local file opened for reading, refused unless it is a regular file (checked on the open
    file itself, so a pipe cannot block the open and a swap after a check changes nothing)."""
    shown = shown or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SourceError(shown, "file does not exist") from None
    except OSError as error:  # a socket cannot even be opened: say what it is when that is why
        with contextlib.suppress(OSError):
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                raise SourceError(shown, f"is {_kind(mode)}, not a regular file; only regular files are read") from None
        raise SourceError(shown, f"cannot read file ({error.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SourceError(shown, f"is {_kind(mode)}, not a regular file; only regular files are read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def local_path(source: str) -> Path | None:
    """The path a plain path or `file://` source names, or None for a URL of another scheme."""
    parts = urlsplit(source)
    if parts.scheme == "" or (len(parts.scheme) == 1 and source[1:2] == ":"):  # a plain path (or C:\...)
        return Path(source)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise SourceError(describe(source), "file:// URLs name files on this machine only (no host)")
        return Path(urllib.request.url2pathname(unquote(parts.path)))
    return None


@dataclass
class _Read:
    sha256: str = ""
    size: int = 0
    compressed: bool = False


def _read(
    source: str, policy: SourcePolicy, timeout: float, auth_variable: str | None, sink: Callable[[bytes], Any]
) -> _Read:
    shown = describe(source)
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if parts.username is not None or parts.password is not None:
        raise SourceError(
            shown,
            "credentials in a URL are not accepted (they would be stored with the run's config); "
            f"put them in a netrc entry for the host, or in an environment variable named "
            f"{AUTH_VARIABLE_PREFIX}... given as auth_header_variable",
        )
    if scheme in ("http", "https"):
        if not policy.allows_host(parts.hostname or ""):
            raise SourceError(shown, f"host {parts.hostname!r} is not allowed here ({_allowed_hosts(policy)})")
        raw = _download(source, shown, policy, timeout, auth_variable)
    elif scheme == "s3":
        raw = _object_chunks(source, shown, policy)
    else:
        path = local_path(source)
        if path is None:
            raise SourceError(
                shown, f"unsupported source scheme {snippet(scheme, 20)!r}; use a path, file://, http(s):// or s3://"
            )
        raw = _file_chunks(path, shown, policy)
    return _consume(raw, shown, policy.max_bytes, sink)


def _consume(raw: Iterator[bytes], shown: str, max_bytes: int, sink: Callable[[bytes], Any]) -> _Read:
    """Hash and count what was read, gunzip it when it is gzip, and pass it on, within the cap."""
    digest = hashlib.sha256()
    read = _Read()
    inflater: Any = None
    written = 0

    def out(data: bytes) -> None:
        nonlocal written
        written += len(data)
        if written > max_bytes:
            raise SourceError(shown, f"holds more than {max_bytes:,} bytes once decompressed (the limit)")
        sink(data)

    for chunk in raw:
        if not read.size and chunk.startswith(_GZIP_MAGIC):
            read.compressed = True
            inflater = _Gunzip(shown, out)
        read.size += len(chunk)
        if read.size > max_bytes:
            raise SourceError(shown, _too_large(max_bytes))
        digest.update(chunk)
        if inflater is not None:
            inflater.feed(chunk)
        else:
            out(chunk)
    if inflater is not None:
        inflater.finish()
    read.sha256 = digest.hexdigest()
    return read


class _Gunzip:
    """Streaming gzip (several members, as `cat a.gz b.gz` makes), inflating at most a chunk per
    call, so a small bomb cannot expand past the cap before it is counted."""

    def __init__(self, shown: str, out: Callable[[bytes], None]):
        self.shown = shown
        self.out = out
        self.inflater: Any = None

    def feed(self, data: bytes) -> None:
        while True:
            if self.inflater is None:
                if not data.strip(b"\x00"):  # gzip ignores zero padding after the last member
                    return
                self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                inflated = self.inflater.decompress(data, CHUNK_BYTES)
            except zlib.error as error:
                raise SourceError(self.shown, f"is gzip-compressed but damaged ({error})") from None
            self.out(inflated)
            data = self.inflater.unconsumed_tail
            if self.inflater.eof:
                data, self.inflater = self.inflater.unused_data, None
            elif not data and len(inflated) < CHUNK_BYTES:
                return  # all input used and nothing more pending: wait for the next chunk

    def finish(self) -> None:
        if self.inflater is not None:
            raise SourceError(self.shown, "is gzip-compressed but cut off: download or copy it again")


def _file_chunks(path: Path, shown: str, policy: SourcePolicy) -> Iterator[bytes]:
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError:
        raise SourceError(shown, "file does not exist") from None
    except (OSError, RuntimeError) as error:  # a symlink loop, a permission on a parent folder
        raise SourceError(shown, f"cannot read file ({getattr(error, 'strerror', None) or error})") from None
    if not policy.allows_path(resolved):
        raise SourceError(shown, f"is outside the folders sources may be read from ({_allowed_folders(policy)})")
    handle = open_regular_file(resolved, shown)
    with handle:
        opened = Path(f"/proc/self/fd/{handle.fileno()}")
        if opened.is_symlink() and not policy.allows_path(Path(os.readlink(opened))):  # a link swapped in meanwhile
            raise SourceError(shown, f"is outside the folders sources may be read from ({_allowed_folders(policy)})")
        size = os.fstat(handle.fileno()).st_size
        if size > policy.max_bytes:
            raise SourceError(shown, _too_large(policy.max_bytes, size))
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def _object_chunks(url: str, shown: str, policy: SourcePolicy) -> Iterator[bytes]:
    """An object of S3-compatible storage (a drop under the landing prefix), with the store's
    client settings: endpoint and region from the URL, else the settings' (the AWS_* variables),
    credentials from boto3's chain, never from the URL. Its size is checked before it is read."""
    from rental_pipeline.store.s3_backend import ObjectStorageError, S3Backend, S3ConfigError, parse_s3_url

    try:
        bucket, key, options = parse_s3_url(url)
        if not key:
            raise SourceError(shown, "names a bucket, not an object")
        if not policy.allows_path(f"s3://{bucket}/{key}"):
            raise SourceError(shown, f"is outside the folders sources may be read from ({_allowed_folders(policy)})")
        backend = S3Backend(
            bucket, "", **options, default_region=policy.s3_region, default_endpoint_url=policy.s3_endpoint_url
        )
        info = backend.info(key)
        if info is None:
            raise SourceError(shown, "object does not exist")
        if info.size > policy.max_bytes:
            raise SourceError(shown, _too_large(policy.max_bytes, info.size))
        data = backend.read(key).data
    except FileNotFoundError:
        raise SourceError(shown, "object does not exist") from None
    except (ObjectStorageError, S3ConfigError) as error:
        raise SourceError(shown, f"cannot read object ({snippet(redact_text(str(error)), 200)})") from None
    yield data


def _too_large(max_bytes: int, size: int | None = None) -> str:
    actual = f" ({size:,} bytes)" if size is not None else ""
    return (
        f"is larger than the limit of {max_bytes:,} bytes{actual}; raise max_bytes in the source policy "
        f"(or {MAX_BYTES_VARIABLE}) if it really is a listings file"
    )


def _allowed_folders(policy: SourcePolicy) -> str:
    listed = ", ".join(str(f) for f in policy.folders or ()) or "none"
    return f"allowed by {FOLDERS_VARIABLE} or allowed_folders: {listed}"


def _allowed_hosts(policy: SourcePolicy) -> str:
    return f"allowed by {HOSTS_VARIABLE} or allowed_hosts: {', '.join(policy.hosts or ()) or 'none'}"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


# --- downloading -------------------------------------------------------------------------------

_DONE = object()


def _download(url: str, shown: str, policy: SourcePolicy, timeout: float, auth_variable: str | None) -> Iterator[bytes]:
    """The body in chunks. A worker thread does the blocking network calls (including the name
    lookup, which no socket timeout bounds) and hands chunks over; this side waits at most until
    the deadline, so `timeout` bounds the whole download, however the server behaves."""
    credentials = _credentials(urlsplit(url), policy.environ, auth_variable)
    deadline = time.monotonic() + timeout
    handover: queue.Queue[Any] = queue.Queue(maxsize=8)
    stop = threading.Event()
    answered = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                handover.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def work() -> None:
        try:
            opener = urllib.request.build_opener(_Redirects(policy, url, credentials))
            request = urllib.request.Request(url, headers={"User-Agent": "rental-pipeline"})
            for name, value in credentials.items():
                request.add_unredirected_header(name, value)  # never copied to a redirect by urllib
            with opener.open(request, timeout=max(0.01, deadline - time.monotonic())) as response:
                answered.set()
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > policy.max_bytes:
                    raise SourceError(shown, _too_large(policy.max_bytes, int(length)))
                while not stop.is_set() and (chunk := response.read1(CHUNK_BYTES)):
                    put(chunk)
            put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the reading side, which raises it
            put(error)

    worker = threading.Thread(target=work, name="rental-pipeline-download", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = handover.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                if answered.is_set():
                    raise SourceError(shown, f"download did not finish within the timeout of {timeout:g} s") from None
                raise SourceError(
                    shown, f"timed out: no answer within {timeout:g} s (one attempt, timeout_seconds)"
                ) from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise _download_error(item, shown, timeout, policy) from None
            yield item
            if time.monotonic() > deadline:
                raise SourceError(shown, f"download did not finish within the timeout of {timeout:g} s")
    finally:
        stop.set()


def _download_error(error: BaseException, shown: str, timeout: float, policy: SourcePolicy) -> BaseException:
    if isinstance(error, SourceError):
        return error
    if isinstance(error, HTTPError):
        if 300 <= error.code < 400 and "Redirection to url" in str(error.msg):  # urllib's own scheme check
            return SourceError(
                describe(error.filename or ""), "a redirect to a scheme other than http(s) is not followed"
            )
        if 300 <= error.code < 400:
            return SourceError(shown, f"too many redirects (more than {policy.max_redirects}) or a redirect loop")
        return SourceError(shown, f"cannot download listings (HTTP {error.code} {snippet(str(error.reason), 60)})")
    if isinstance(error, URLError | OSError | ValueError) or type(error).__module__ == "http.client":
        reason = getattr(error, "reason", None) or str(error) or type(error).__name__
        reason = snippet(redact_text(str(reason)), 120)
        return SourceError(shown, f"cannot download listings ({reason}); one attempt, timeout {timeout:g} s")
    return error


class _Redirects(urllib.request.HTTPRedirectHandler):
    """At most `max_redirects` hops, each to an allowed http(s) host; credentials follow only to
    the same scheme, host and port as the source."""

    def __init__(self, policy: SourcePolicy, url: str, credentials: Mapping[str, str]):
        self.policy = policy
        self.origin = _origin(urlsplit(url))
        self.credentials = dict(credentials)
        self.max_redirections = policy.max_redirects
        self.max_repeats = min(self.max_repeats, policy.max_redirects)

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        target = urlsplit(newurl)
        if target.scheme.lower() not in ("http", "https"):
            raise SourceError(describe(newurl), f"a redirect to {target.scheme or 'no'}:// is not followed")
        if not self.policy.allows_host(target.hostname or ""):
            raise SourceError(
                describe(newurl),
                f"a redirect to host {target.hostname!r} is not followed ({_allowed_hosts(self.policy)})",
            )
        if target.username is not None or target.password is not None:
            raise SourceError(describe(newurl), "a redirect to a URL with credentials is not followed")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(target) == self.origin:
            for name, value in self.credentials.items():
                new.add_unredirected_header(name, value)
        return new


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def _credentials(parts: SplitResult, environ: Mapping[str, str], auth_variable: str | None) -> dict[str, str]:
    """Headers that authenticate to the source's host: from a named variable, else netrc. Never
    over plain http to another machine, where anyone on the way could read them."""
    headers = _named_or_netrc(parts, environ, auth_variable)
    host = (parts.hostname or "").lower()
    if headers and parts.scheme.lower() != "https" and host not in ("localhost", "127.0.0.1", "::1"):
        raise SourceError(
            describe(urlunsplit(parts)), "credentials are sent over https only; use the https:// URL of the source"
        )
    return headers


def _named_or_netrc(parts: SplitResult, environ: Mapping[str, str], auth_variable: str | None) -> dict[str, str]:
    if auth_variable:
        if not auth_variable.startswith(AUTH_VARIABLE_PREFIX) or len(auth_variable) == len(AUTH_VARIABLE_PREFIX):
            raise SourceError(
                auth_variable,
                f"only environment variables named {AUTH_VARIABLE_PREFIX}... may hold source credentials",
            )
        value = environ.get(auth_variable)
        if not value:
            raise SourceError(auth_variable, "is not set in the environment of the code that runs the step")
        header = _HEADER_LINE.match(value)
        if header:
            return {header.group(1): header.group(2).strip()}
        return {"Authorization": value.strip()}
    host = parts.hostname or ""
    path = environ.get("NETRC") or str(Path(environ.get("HOME") or Path.home()) / ".netrc")
    if not Path(path).is_file():
        return {}
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (netrc.NetrcParseError, OSError) as error:
        line = getattr(error, "lineno", None)
        raise SourceError(path, f"netrc file is malformed{f' (line {line})' if line else ''}") from None
    if entry is None:
        return {}
    login, _, password = entry
    token = base64.b64encode(f"{login}:{password or ''}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}
