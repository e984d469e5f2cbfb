"""Files where they live: local paths, ``http(s)://`` URLs (read only) and ``s3://bucket/key`` objects.

Every function takes a local path or a URL and does the same thing on each:
local paths go through the file system exactly as before, ``s3://`` through
s3fs (the optional ``s3`` extra: ``pip install 'geosal[s3]'``) configured by
:func:`geosal.raster.credentials.current`, and ``http(s)://`` through the
standard library. An object store has no folders and no rename, so

- :func:`write_bytes` writes an object in one PUT (a reader sees the whole object or none),
  :func:`put_file` in one PUT or one multipart upload (likewise atomic);
- :func:`write_bytes` with ``exclusive=True`` creates only if absent (a conditional PUT,
  ``If-None-Match: *``; a hard link of a complete draft on a local disk);
- :func:`remove_tree` deletes every object under a prefix; a "folder" exists when an object is under it.

GDAL reads sources through its virtual file systems (:func:`gdal_path`:
``/vsis3/``, ``/vsicurl/``), with the same configuration.

Errors: a failure of the storage becomes a :class:`~geosal.raster.errors.StorageError`, one line naming
the URL and what went wrong (no such bucket, credentials refused, access denied, unreachable after the
retries), never a secret; transient errors (HTTP 429 and 5xx, timeouts, dropped connections) are retried
first by botocore or by :func:`_retrying` (bounded by :meth:`StorageAccess.max_wait_s`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import TypeVar
from urllib.parse import urljoin, urlparse, urlunparse

from geosal.raster.credentials import StorageConfigError, current, fsspec_options
from geosal.raster.errors import RasterInputError, StorageError

T = TypeVar("T")

HTTP_SCHEMES = ("http", "https")
OBJECT_SCHEMES = ("s3",)
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying."""
_SECRET_QUERY = ("signature", "credential", "security-token", "token", "sig", "key")


def scheme(path: str | os.PathLike[str]) -> str:
    """``s3``, ``http``, ``https``..., or ``""`` for a local path (and GDAL's own ``/vsi...`` names)."""
    text = os.fspath(path)
    if "://" not in text or text.startswith("/vsi"):
        return ""
    return urlparse(text).scheme.lower()


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a URL (``s3://``, ``https://``...), not a local path."""
    return scheme(path) != ""


def is_object_url(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is in an object store geosal can write to (``s3://``)."""
    return scheme(path) in OBJECT_SCHEMES


def gdal_path(path: str | os.PathLike[str]) -> str:
    """The name GDAL opens ``path`` by: ``/vsis3/bucket/key`` for ``s3://bucket/key``, ``/vsicurl/URL`` for
    ``http(s)://``, anything else unchanged. Configures GDAL for remote reads first (:func:`~geosal.raster.credentials.current`)."""
    text = os.fspath(path)
    kind = scheme(text)
    if kind == "s3":
        current()
        return "/vsis3/" + text.split("://", 1)[1]
    if kind in HTTP_SCHEMES:
        current()
        return "/vsicurl/" + text
    return text


def join(base: str | os.PathLike[str], *names: str) -> str:
    """``base/name/...``: a URL for a URL, an ``os.path.join`` otherwise."""
    text = os.fspath(base)
    if is_url(text):
        return "/".join([text.rstrip("/"), *(n.strip("/") for n in names)])
    return os.path.join(text, *names)


def parent(path: str | os.PathLike[str]) -> str:
    """The folder holding ``path`` (the prefix before the last ``/`` of a URL)."""
    text = os.fspath(path)
    if is_url(text):
        return text.rstrip("/").rsplit("/", 1)[0]
    return os.path.dirname(text)


def resolve_href(href: str, base: str) -> str:
    """``href`` resolved against the document at ``base`` (a path or a URL), as STAC resolves relative links:
    absolute URLs unchanged, ``file://`` as a path, a relative href against ``base``'s folder."""
    parsed = urlparse(href)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:  # http(s), s3, gs... (one letter: a Windows drive)
        return href
    if is_url(base):
        if base.startswith("s3://"):  # urljoin knows no s3 scheme: join on the path part
            bucket, _, key = base[5:].partition("/")
            return "s3://" + bucket + "/" + os.path.normpath(os.path.join(os.path.dirname(key), href)).lstrip("/")
        return urljoin(base, href)
    if os.path.isabs(href):
        return os.path.normpath(href)
    return os.path.normpath(os.path.join(os.path.dirname(base), href))


def stem(path: str | os.PathLike[str]) -> str:
    """The file name of ``path`` without its suffix (of the URL's path for a URL): ``s3://b/x/scene.tif`` -> ``scene``."""
    text = os.fspath(path)
    return PurePosixPath(urlparse(text).path).stem if is_url(text) else Path(text).stem


def public_url(url: str) -> str:
    """``url`` without a password and without signature or token query parameters (a presigned URL's
    secrets): what may be written into outputs and messages."""
    if not is_url(url):
        return url
    parsed = urlparse(url)
    netloc = parsed.hostname or ""
    netloc += f":{parsed.port}" if parsed.port else ""
    if parsed.username:
        netloc = f"{parsed.username}@{netloc}"
    query = "&".join(part for part in parsed.query.split("&") if part and not any(
        word in part.split("=", 1)[0].lower() for word in _SECRET_QUERY))
    return urlunparse(parsed._replace(netloc=netloc, query=query))


# --- the S3 file system -------------------------------------------------------------------------------------------


def filesystem(url: str, asynchronous: bool = False):
    """The s3fs file system for ``url`` with this process's access; returns ``(fs, "bucket/key")``.

    Raises:
        StorageConfigError: s3fs is not installed.
    """
    try:
        import s3fs
    except ImportError:
        raise StorageConfigError(f"{url}: reading or writing s3:// needs s3fs: pip install 'geosal[s3]'") from None
    options = fsspec_options(current())
    fs = s3fs.S3FileSystem(use_listings_cache=False, asynchronous=asynchronous, **options)
    return fs, url.split("://", 1)[1].rstrip("/")


def zarr_store(url: str, read_only: bool = False):
    """A Zarr store on the object ``url`` (a zarr ``FsspecStore`` with this process's access)."""
    from zarr.storage import FsspecStore

    fs, key = filesystem(url, asynchronous=True)
    return FsspecStore(fs=fs, path=key, read_only=read_only)


def _error_code(error: BaseException) -> str:
    """The S3 error code (``NoSuchBucket``, ``InvalidAccessKeyId``...) behind ``error``, or ``""``."""
    seen = error
    for _ in range(4):
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        if seen.__cause__ is None and seen.__context__ is None:
            break
        seen = seen.__cause__ or seen.__context__
    return ""


def describe_failure(url: str, error: BaseException) -> str:
    """One line for a failed request on ``url``: what went wrong, in words a user can act on."""
    code = _error_code(error)
    kind = type(error).__name__
    bucket = urlparse(url).netloc
    if code == "NoSuchBucket" or (isinstance(error, FileNotFoundError) and "bucket does not exist" in str(error)):
        return f"{url}: the bucket {bucket} does not exist"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "AuthorizationHeaderMalformed"):
        return (f"{url}: the credentials were refused ({code}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
                "AWS_SESSION_TOKEN, or AWS_PROFILE")
    if code == "AccessDenied" or isinstance(error, PermissionError):
        return f"{url}: access denied ({code or 'HTTP 403'})"
    if isinstance(error, FileNotFoundError) or code in ("NoSuchKey", "404"):
        return f"{url}: no such object"
    if kind == "NoCredentialsError":
        return (f"{url}: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE, "
                "or AWS_NO_SIGN_REQUEST=YES for a public bucket")
    if kind in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ClientConnectorError",
                "ConnectionRefusedError", "ServerDisconnectedError") or isinstance(error, (ConnectionError, TimeoutError)):
        access = current()
        where = access.endpoint_url or "S3"
        return f"{url}: cannot reach {where} ({kind}) after {access.retries + 1} attempts"
    message = (str(error).strip().splitlines() or [""])[0]
    return f"{url}: {code or kind}: {message}" if message else f"{url}: {code or kind}"


@contextlib.contextmanager
def translated(url: str, keep_missing: bool = False) -> Iterator[None]:
    """Turn a failure of the object store while the block runs into a one-line :class:`StorageError` about ``url``
    (a local path's ``OSError`` passes through unchanged: the pipeline names storage errors itself). With
    ``keep_missing``, a missing object (not a missing bucket) raises ``FileNotFoundError`` as a missing file does."""
    if not is_url(url):
        yield
        return
    try:
        yield
    except StorageError:
        raise
    except FileNotFoundError as error:
        if keep_missing and _error_code(error) != "NoSuchBucket" and "bucket does not exist" not in str(error):
            raise FileNotFoundError(url) from None
        raise StorageError(describe_failure(url, error)) from None
    except Exception as error:  # noqa: BLE001 - botocore, aiohttp and s3fs raise many kinds
        if not (isinstance(error, OSError) or _error_code(error) or type(error).__module__.split(".")[0]
                in ("botocore", "aiobotocore", "aiohttp", "s3fs", "urllib3")):
            raise
        raise StorageError(describe_failure(url, error)) from None


# --- HTTP (read only) ---------------------------------------------------------------------------------------------


def _retrying(call: Callable[[], T], url: str) -> T:
    """``call()``, retried on transient HTTP and network errors with exponential backoff, at most
    ``retries`` times and within :meth:`~geosal.raster.credentials.StorageAccess.max_wait_s` in all.

    Raises:
        StorageError: a permanent error (HTTP 4xx but 408, 425 and 429) at once, or the last transient one.
    """
    access = current()
    deadline = time.monotonic() + access.max_wait_s()
    for attempt in range(access.retries + 1):
        try:
            return call()
        except urllib.error.HTTPError as error:
            if error.code not in TRANSIENT_HTTP or attempt == access.retries:
                status = f"HTTP {error.code}"
                if error.code == 404:
                    raise StorageError(f"{public_url(url)}: not found ({status})") from None
                if error.code in (401, 403):
                    raise StorageError(f"{public_url(url)}: access denied ({status})") from None
                raise StorageError(f"{public_url(url)}: {status} {error.reason}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            if attempt == access.retries:
                reason = getattr(error, "reason", error)
                raise StorageError(f"{public_url(url)}: cannot be reached ({reason}) after {attempt + 1} attempts") from None
        delay = access.retry_delay_s * 2**attempt
        if time.monotonic() + delay > deadline:
            raise StorageError(f"{public_url(url)}: no answer within {access.max_wait_s():.0f} s")
        time.sleep(delay)
    raise AssertionError("unreachable")


def _http(url: str, method: str = "GET") -> tuple[bytes, dict[str, str]]:
    def call() -> tuple[bytes, dict[str, str]]:
        request = urllib.request.Request(url, method=method, headers={"User-Agent": "geosal"})
        with urllib.request.urlopen(request, timeout=current().timeout_s) as response:
            return (response.read() if method == "GET" else b""), dict(response.headers.items())

    return _retrying(call, url)


# --- operations on paths and URLs ---------------------------------------------------------------------------------


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole content of a file or object.

    Raises:
        FileNotFoundError: a local file is missing; StorageError: a remote one cannot be read.
    """
    text = os.fspath(path)
    kind = scheme(text)
    if kind in HTTP_SCHEMES:
        return _http(text)[0]
    if kind:
        fs, key = filesystem(text)
        with translated(text, keep_missing=True):
            return fs.cat_file(key)
    return Path(text).read_bytes()


def write_bytes(path: str | os.PathLike[str], data: bytes, exclusive: bool = False) -> bool:
    """Write ``data`` as the whole content of a file or object (parent folders made on a local disk; one PUT on
    an object store). With ``exclusive``, only if it does not exist yet (atomically); returns False when it did."""
    text = os.fspath(path)
    if is_url(text):
        fs, key = filesystem(text)
        with translated(text):
            try:
                fs.pipe_file(key, data, mode="create" if exclusive else "overwrite")
            except FileExistsError:
                return False
            except OSError as error:
                if exclusive and _error_code(error) == "PreconditionFailed":
                    return False
                raise
        return True
    target = Path(text)
    if not exclusive:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return True
    draft = _draft_beside(target, data)
    try:
        os.link(draft, target)
        return True
    except FileExistsError:
        return False
    finally:
        draft.unlink()


def put_file(local: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Copy the local file ``local`` to ``path``: an upload (one PUT, or a multipart upload for a large file: the
    object appears whole when it completes) or, for a local ``path``, a rename."""
    text = os.fspath(path)
    if is_url(text):
        fs, key = filesystem(text)
        with translated(text):
            fs.put_file(os.fspath(local), key)
        return
    os.replace(local, text)


def exists(path: str | os.PathLike[str]) -> bool:
    """Whether a file (or a folder) exists; for an object store, an object or an object under the prefix."""
    text = os.fspath(path)
    if is_url(text):
        fs, key = filesystem(text)
        with translated(text):
            return fs.exists(key)
    return os.path.exists(text)


def is_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file or an object (not a folder or prefix)."""
    text = os.fspath(path)
    if is_url(text):
        fs, key = filesystem(text)
        with translated(text):
            return fs.isfile(key)
    return os.path.isfile(text)


def modified(path: str | os.PathLike[str]) -> float:
    """When the file or object was last written (seconds since the epoch; an object's ``LastModified``).

    Raises:
        FileNotFoundError: it does not exist.
    """
    text = os.fspath(path)
    if is_url(text):
        fs, key = filesystem(text)
        with translated(text, keep_missing=True):
            info = fs.info(key)
        stamp = info.get("LastModified")
        return stamp.timestamp() if hasattr(stamp, "timestamp") else time.time()
    return os.stat(text).st_mtime


def delete(path: str | os.PathLike[str]) -> None:
    """Remove a file or object if it exists."""
    text = os.fspath(path)
    if is_url(text):
        fs, key = filesystem(text)
        with translated(text):
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(key)
        return
    Path(text).unlink(missing_ok=True)


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a folder and everything under it (every object under the prefix), if it exists."""
    text = os.fspath(path)
    if is_url(text):
        fs, key = filesystem(text)
        with translated(text):
            keys = fs.find(key)
            if keys:
                fs.rm(keys)
        return
    shutil.rmtree(text, ignore_errors=True)


def list_files(path: str | os.PathLike[str]) -> dict[str, int]:
    """Every file under a folder (object under a prefix), as its path relative to it (``/``-separated) and its
    size in bytes; empty when there is none."""
    text = os.fspath(path)
    if is_url(text):
        fs, key = filesystem(text)
        with translated(text):
            found = fs.find(key, detail=True)
        return {name[len(key):].lstrip("/"): int(info.get("size") or 0) for name, info in found.items() if name != key}
    sizes = {}
    for root, _, files in os.walk(text):
        for name in files:
            full = os.path.join(root, name)
            try:
                sizes[os.path.relpath(full, text).replace(os.sep, "/")] = os.stat(full, follow_symlinks=False).st_size
            except OSError:
                pass
    return sizes


def source_identity(path: str | os.PathLike[str]) -> list:
    """What identifies the content of a source, for a resumed run to refuse a changed file: size and modification
    time of a local file; size, ``ETag`` and ``Last-Modified`` of a remote object (a HEAD request).

    Raises:
        RasterInputError: a remote source is missing or cannot be reached (one line naming it).
    """
    text = os.fspath(path)
    kind = scheme(text)
    if not kind:
        if not os.path.exists(text):
            return []
        stat = os.stat(text)
        return [stat.st_size, int(stat.st_mtime)]
    try:
        if kind in HTTP_SCHEMES:
            headers = {k.lower(): v for k, v in _http(text, "HEAD")[1].items()}
            stamp = headers.get("last-modified")
            return [int(headers.get("content-length", -1)), headers.get("etag", ""),
                    parsedate_to_datetime(stamp).timestamp() if stamp else ""]
        fs, key = filesystem(text)
        try:
            with translated(text):
                info = fs.info(key)
        except StorageError as error:
            if "access denied" not in str(error):
                raise
            with translated(text):  # a HEAD answers 403 without a reason: one byte's GET says why (wrong key...)
                fs.cat_file(key, start=0, end=1)
            raise
        stamp = info.get("LastModified")
        return [int(info.get("size") or 0), str(info.get("ETag", "")), stamp.timestamp() if hasattr(stamp, "timestamp") else ""]
    except StorageError as error:
        raise RasterInputError(str(error)) from None


def list_objects(prefix: str, suffixes: tuple[str, ...]) -> list[str]:
    """The ``s3://`` URLs of every object under ``prefix`` whose name ends in one of ``suffixes`` (any case),
    hidden names (a part starting with ``.``) left out, sorted."""
    fs, key = filesystem(prefix)
    with translated(prefix):
        names = fs.find(key)
    base = prefix.split("://", 1)[0]
    found = []
    for name in names:
        relative = name[len(key):].lstrip("/")
        if name.lower().endswith(suffixes) and not any(part.startswith(".") for part in relative.split("/")):
            found.append(f"{base}://{name}")
    return sorted(found)


def write_text(path: str | os.PathLike[str], text: str, encoding: str | None = None) -> None:
    """Write ``text`` as the whole content of a file (in ``encoding``, default the locale's) or object (UTF-8; see
    :func:`write_bytes`)."""
    text_path = os.fspath(path)
    if is_url(text_path):
        write_bytes(text_path, text.encode())
    else:
        Path(text_path).write_text(text, encoding=encoding)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` so that a reader sees the old content or the new, never part of it: a draft renamed into
    place on a local disk, one PUT on an object store."""
    text = os.fspath(path)
    if is_url(text):
        write_bytes(text, data)
        return
    target = Path(text)
    os.replace(_draft_beside(target, data), target)


def _draft_beside(target: Path, data: bytes) -> Path:
    """A hidden file holding ``data`` in ``target``'s folder (made if missing), named for this process and moment,
    to be moved or linked to ``target`` whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    draft = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}")
    draft.write_bytes(data)
    return draft


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A local file name to write ``path`` through: ``path`` itself when it is local; for an object, a file in a
    temporary folder, uploaded to ``path`` when the block ends without an error (in one PUT or multipart upload,
    so the object appears whole) and removed in every case."""
    text = os.fspath(path)
    if not is_url(text):
        yield Path(text)
        return
    with tempfile.TemporaryDirectory(prefix="geosal-upload-") as folder:
        local = Path(folder) / text.rstrip("/").rsplit("/", 1)[-1]
        yield local
        put_file(local, text)


def read_many(paths: list[str]) -> list[bytes]:
    """The contents of several objects of one store, fetched concurrently (local files one after the other)."""
    if not paths:
        return []
    if not is_url(paths[0]):
        return [Path(p).read_bytes() for p in paths]
    fs, _ = filesystem(paths[0])
    keys = [p.split("://", 1)[1] for p in paths]
    with translated(paths[0]):
        found = fs.cat(keys, on_error="raise")
    return [found[key] for key in keys]


def absolute(path: str | os.PathLike[str]) -> str:
    """What names a source in outputs: the absolute path of a local file, a URL without its secrets (:func:`public_url`)."""
    text = os.fspath(path)
    return public_url(text) if is_url(text) else str(Path(text).resolve())
