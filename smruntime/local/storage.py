"""Where async inference inputs and results live: ``s3://`` objects and ``file://`` paths.

``s3://`` (and S3's own ``https://`` URLs) go through botocore's S3 client, so any
S3-compatible server works through an endpoint URL; the client is created on first use
and closed with the :class:`JobStorage` that made it. ``file://`` paths are local files,
read only inside the folders the endpoint's configuration declares (see ``file_locations``)
and written atomically (a reader never sees half a result), readable by their owner only.
Every read stops at ``max_bytes``.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

import attrs

from smruntime.file_locations import MAX_ASYNC_PAYLOAD_BYTES, read_confined, read_stream_bounded
from smruntime.middleware.reprs import fields_repr

__all__ = [
    "JobStorage",
    "Location",
    "S3Client",
    "S3ClientFactory",
    "StorageError",
    "join_location",
    "parse_location",
]


_T = TypeVar("_T")


class StorageError(Exception):
    """A location could not be read or written; the message says which and why."""


@attrs.frozen
class Location:
    """A parsed location: an S3 bucket and key, or a local file path (in ``key``)."""

    __repr__ = fields_repr

    uri: str
    scheme: Literal["s3", "file"]
    key: str
    bucket: str = ""

    def __str__(self) -> str:
        return self.uri


# S3's own https URLs: virtual-hosted (bucket.s3.region.amazonaws.com) and path style.
_VIRTUAL_HOST = re.compile(r"(?P<bucket>.+)\.s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com(?:\.cn)?")
_PATH_STYLE_HOST = re.compile(r"s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com(?:\.cn)?|s3\.amazonaws\.com")


def parse_location(uri: str) -> Location:
    """``s3://bucket/key``, an S3 ``https://`` URL, or ``file:///absolute/path``; ValueError otherwise."""
    if uri.startswith("s3://"):
        # S3 URIs carry keys verbatim (as the AWS CLI prints them): no percent-decoding, and a
        # "?" or "#" is part of the key.
        bucket, _, key = uri[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"{uri!r} names no bucket")
        return Location(uri=uri, scheme="s3", bucket=bucket, key=key)
    parts = urlsplit(uri)
    if parts.scheme == "https":
        host = (parts.hostname or "").lower()
        path = unquote(parts.path).lstrip("/")
        virtual = _VIRTUAL_HOST.fullmatch(host)
        if virtual is not None:
            return Location(uri=uri, scheme="s3", bucket=virtual["bucket"], key=path)
        if _PATH_STYLE_HOST.fullmatch(host) and "/" in path:
            bucket, key = path.split("/", 1)
            return Location(uri=uri, scheme="s3", bucket=bucket, key=key)
        raise ValueError(f"{uri!r} is not an Amazon S3 URL; the local endpoint reads s3://, S3 https:// and file://")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"{uri!r}: file:// locations must be local (file:///path)")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"{uri!r}: file:// locations need an absolute path")
        return Location(uri=uri, scheme="file", key=path)
    raise ValueError(f"{uri!r}: use an s3:// or file:// location")


def join_location(base: str, *names: str) -> str:
    """``base`` with ``names`` appended as path segments (empty names are skipped)."""
    parts = [base.rstrip("/"), *(name.strip("/") for name in names if name.strip("/"))]
    return "/".join(parts)


class S3Client(Protocol):
    """The part of botocore's S3 client this module uses."""

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]: ...

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> object: ...

    def close(self) -> None: ...


class S3ClientFactory:
    """Makes botocore S3 clients for one endpoint URL and region; safe to share between threads.

    Credentials come from botocore's default chain (environment, profiles, ...). For a custom
    ``endpoint_url`` the client uses path-style addressing, which every S3-compatible server
    understands.
    """

    def __init__(self, endpoint_url: str | None, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._session: Any = None
        # botocore sessions are not thread-safe: jobs in several threads create clients.
        self._lock = threading.Lock()

    def __call__(self) -> S3Client:
        import botocore.config
        import botocore.session

        with self._lock:
            if self._session is None:
                self._session = botocore.session.Session()
            config = botocore.config.Config(
                s3={"addressing_style": "path"} if self.endpoint_url else {},
                retries={"mode": "standard", "max_attempts": 3},
            )
            client: S3Client = self._session.create_client(
                "s3", region_name=self.region, endpoint_url=self.endpoint_url, config=config
            )
        return client


class JobStorage:
    """Reads and writes locations for one job; its S3 client is created on first use, closed by ``close``.

    ``file://`` inputs are read only inside ``file_roots``; no read returns more than
    ``max_bytes``. ``close`` never waits: with a read or write in progress (a job given up
    on, a server stopping), that operation closes the client when it ends, so the client is
    never closed under a thread still using it.
    """

    def __init__(self, s3_factory: Callable[[], S3Client], *, file_roots: Sequence[str] = (),
                 max_bytes: int = MAX_ASYNC_PAYLOAD_BYTES) -> None:
        self._factory = s3_factory
        self.file_roots = tuple(file_roots)
        self.max_bytes = max_bytes
        self._s3: S3Client | None = None
        self._lock = threading.Lock()  # guards the three below
        self._busy = 0
        self._closed = False

    def __enter__(self) -> JobStorage:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _client(self) -> S3Client:
        with self._lock:
            if self._s3 is None:
                self._s3 = self._factory()
            return self._s3

    def read(self, location: Location) -> bytes:
        """The whole object or file (at most ``max_bytes``); StorageError if it cannot be read."""
        return self._one_operation(lambda: self._read(location))

    def _read(self, location: Location) -> bytes:
        try:
            if location.scheme == "file":
                return read_confined(location.key, self.file_roots, max_bytes=self.max_bytes)
            response = self._client().get_object(Bucket=location.bucket, Key=location.key)
            body = response["Body"]
            try:
                return read_stream_bounded(body, response.get("ContentLength"), self.max_bytes)
            finally:
                body.close()
        except Exception as error:  # botocore's and the OS's errors alike become one message
            raise StorageError(f"could not read {location}: {_describe(error)}") from error

    def write(self, location: Location, data: bytes, content_type: str) -> None:
        """Create or replace the object or file; StorageError if it cannot be written."""
        self._one_operation(lambda: self._write(location, data, content_type))

    def _one_operation(self, operation: Callable[[], _T]) -> _T:
        with self._lock:
            if self._closed:
                raise StorageError("the job's storage is closed")
            self._busy += 1
        try:
            return operation()
        finally:
            with self._lock:
                self._busy -= 1
                client = self._take_client_if_done()
            if client is not None:
                client.close()

    def _take_client_if_done(self) -> S3Client | None:
        if not self._closed or self._busy:
            return None
        client, self._s3 = self._s3, None
        return client

    def _write(self, location: Location, data: bytes, content_type: str) -> None:
        try:
            if location.scheme == "file":
                _write_file(Path(location.key), data)
            else:
                self._client().put_object(Bucket=location.bucket, Key=location.key, Body=data, ContentType=content_type)
        except Exception as error:
            raise StorageError(f"could not write {location}: {_describe(error)}") from error

    def close(self) -> None:
        """Close the S3 client's connections now, or when the operation in progress ends."""
        with self._lock:
            self._closed = True
            client = self._take_client_if_done()
        if client is not None:
            client.close()


def _write_file(path: Path, data: bytes) -> None:
    # Results may hold anything a model answers: only their owner may read them.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written beside the target and renamed: a poller sees the whole file or nothing.
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _describe(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror} ({type(error).__name__})"
    return str(error) or type(error).__name__
