"""What a store root names: a folder, or ``s3://bucket/prefix`` on object storage.

Apart from :mod:`.backend` and :mod:`.s3_backend` so that neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

from .backend import S3_SCHEME, Backend, LocalBackend
from .errors import StoreError
from .s3_backend import S3Backend


def is_s3(root: object) -> bool:
    return isinstance(root, str) and root.startswith(S3_SCHEME)


def open_backend(root: Path | str, *, local_dir: Path | str | None = None) -> Backend:
    """The backend ``root`` names: ``s3://bucket/prefix[?endpoint_url=...&region=...]``, else a folder.

    A store on object storage keeps a cache of blobs on each machine, in ``local_dir``, which the
    caller chooses (a folder of its own per bucket and prefix); a folder is its own local folder.
    """
    if not is_s3(root):
        return LocalBackend(Path(root))
    backend = S3Backend.from_url(str(root), local_dir=Path(local_dir) if local_dir else None)
    if local_dir is None:
        raise StoreError(
            f"store {backend.location}: a store on object storage needs local_dir, a folder on this machine "
            "for its cache of blobs"
        )
    return backend
