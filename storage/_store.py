"""Stores: the root that every dataset and catalog record lives under.

A :class:`Store` is a small base class over a root URL with ``/``-separated keys. It
offers the handful of whole-object operations the catalog and the runtime need
(atomic write, atomic create-if-absent, listing, deletion). Array I/O never goes
through it: :meth:`Store.zarr_store` hands out zarr-python's own store object
(``zarr.storage.LocalStore`` or ``zarr.storage.FsspecStore``) rooted below the store.

Two kinds ship: :class:`LocalStore` (a folder) and :class:`ObjectStore` (S3 and
S3-compatible servers through s3fs). :func:`open_store` picks one from the URL.
"""

from __future__ import annotations

import abc
import builtins
import errno
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote, urlparse

from minjiang.errors import KeyNotFoundError, StoreError
from minjiang.storage._names import canonical_json, validate_key

if TYPE_CHECKING:
    from zarr.abc.store import Store as ZarrStore
    from zarr.storage import FsspecStore

__all__ = ["LocalStore", "ObjectStore", "Store", "open_store"]

MARKER_KEY = "minjiang.json"
STORE_FORMAT = 1
DEFAULT_STORE = "./minjiang-store"
_TMP_PREFIX = ".tmp-"
_ZARR_TMP_SUFFIX = ".partial"  # zarr's LocalStore writes chunks to <name>.<uuid>.partial first


def is_temporary(name: str) -> bool:
    """Whether a file name is a temporary file of an atomic write (never data).

    minjiang's own writes use ``.tmp-<name>.<uuid>``; zarr's ``LocalStore`` writes
    ``<name>.<uuid>.partial`` and renames it. A writer killed between the two leaves
    the temporary file behind: listings skip such files, publishing a record removes
    them from its dataset, and ``verify_dataset`` reports any it finds.
    """
    return name.startswith(_TMP_PREFIX) or name.endswith(_ZARR_TMP_SUFFIX)


class Store(abc.ABC):
    """Base class of minjiang stores.

    Keys are ``/``-separated paths relative to the root; every key is validated
    (:func:`~minjiang.storage.validate_key`) so nothing can be read or written outside
    it. Subclasses implement the ``_``-prefixed primitives; the public methods add key
    validation and the JSON helpers. The conformance tests in
    :class:`minjiang.storage.testing.StoreTests` define the contract.

    Attributes
    ----------
    supports_rename : bool
        Whether an object can be renamed atomically (folders: yes; S3: no).
    supports_exclusive_create : bool
        Whether :meth:`create_bytes` is atomic against concurrent writers.
    """

    supports_rename: bool = False
    supports_exclusive_create: bool = False
    scheme: ClassVar[str] = ""

    def __init__(self, url: str) -> None:
        self._url = url

    @property
    def url(self) -> str:
        """The root URL of the store (``file:///...`` or ``s3://bucket/prefix``)."""
        return self._url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url!r})"

    def shared_options(self) -> dict[str, Any]:
        """The options another process needs, beside :attr:`url`, to open this store
        as this one is configured (``open_store(url, storage_options=...)``), without
        credentials: those come from each machine's own environment. Empty for a
        folder."""
        return {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Store) and type(other) is type(self) and other.url == self.url

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._url))

    # ------------------------------------------------------------------ public API
    def zarr_store(self, prefix: str, *, read_only: bool = False) -> ZarrStore:
        """zarr-python's own store object rooted at ``root/prefix``.

        Parameters
        ----------
        prefix : str
            A key prefix such as ``"datasets/<id>/arrays.zarr"``.
        read_only : bool, optional
            Open it read-only (zarr refuses writes).

        Returns
        -------
        zarr.abc.store.Store
            A ``zarr.storage.LocalStore`` or ``zarr.storage.FsspecStore``.
        """
        return self._zarr_store(validate_key(prefix, allow_empty=True), read_only=read_only)

    def read_bytes(self, key: str) -> bytes:
        """Read a whole object.

        Raises
        ------
        KeyNotFoundError
            If there is no object at ``key`` (also a ``FileNotFoundError``).
        """
        return self._read(validate_key(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write a whole object atomically: readers see the old bytes or the new, never a mix."""
        self._write(validate_key(key), bytes(data))

    def create_bytes(self, key: str, data: bytes) -> bool:
        """Create an object only if there is none at ``key``.

        Returns
        -------
        bool
            True if this call created it, False if an object already existed (it is
            left untouched). Atomic against concurrent creators where
            ``supports_exclusive_create`` is true.
        """
        return self._create(validate_key(key), bytes(data))

    def exists(self, key: str) -> bool:
        """Whether an object (not a folder) exists at ``key``."""
        return self._exists(validate_key(key))

    def list(self, prefix: str = "") -> builtins.list[str]:
        """All keys below the folder ``prefix``, recursively, sorted.

        Keys are relative to the store root (``list("a")`` gives ``["a/b", "a/c/d"]``);
        ``prefix`` is a folder, so ``list("a")`` never returns ``"ab/x"``. Temporary
        files of atomic writes (``.tmp-*``, zarr's ``*.partial``) are never listed.
        """
        prefix = validate_key(prefix.rstrip("/"), allow_empty=True) if prefix else ""
        return sorted(k for k in self._list(prefix) if not is_temporary(k.rsplit("/", 1)[-1]))

    def list_dir(self, prefix: str = "") -> builtins.list[str]:
        """Names of the immediate children (objects and folders) of the folder ``prefix``, sorted."""
        prefix = validate_key(prefix.rstrip("/"), allow_empty=True) if prefix else ""
        return sorted(n for n in self._list_dir(prefix) if not is_temporary(n))

    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing key is not an error."""
        self._delete(validate_key(key))

    def delete_prefix(self, prefix: str) -> None:
        """Delete everything below the folder ``prefix`` (never the whole store)."""
        prefix = prefix.rstrip("/")
        if not prefix:
            raise StoreError(
                f"refusing to delete the whole store {self.url!r}: delete_prefix needs a "
                "folder below the root, for example 'datasets/<id>/_scratch'"
            )
        self._delete_prefix(validate_key(prefix))

    def local_path(self, key: str) -> Path | None:
        """The local file path of ``key``, or None for stores that are not local folders."""
        validate_key(key, allow_empty=True)
        return None

    def read_json(self, key: str) -> Any:
        """Read and parse a JSON object.

        Raises
        ------
        KeyNotFoundError
            If the key is missing.
        StoreError
            If the bytes are not valid UTF-8 JSON.
        """
        data = self.read_bytes(key)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise StoreError(
                f"{key!r} in store {self.url!r} is not valid JSON ({len(data)} bytes): {err}; "
                "it was damaged or written by something else"
            ) from err

    def write_json(self, key: str, obj: Any) -> None:
        """Write ``obj`` as canonical UTF-8 JSON, atomically."""
        self.write_bytes(key, canonical_json(obj))

    def create_json(self, key: str, obj: Any) -> bool:
        """Create ``key`` holding ``obj`` as canonical JSON if absent; see :meth:`create_bytes`."""
        return self.create_bytes(key, canonical_json(obj))

    # ------------------------------------------------------------ primitives
    @abc.abstractmethod
    def _zarr_store(self, prefix: str, *, read_only: bool) -> ZarrStore:
        """zarr-python's own store object rooted at ``prefix``."""

    @abc.abstractmethod
    def _read(self, key: str) -> bytes:
        """The bytes at ``key`` (raise KeyNotFoundError when absent)."""

    @abc.abstractmethod
    def _write(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically."""

    @abc.abstractmethod
    def _create(self, key: str, data: bytes) -> bool:
        """Create ``key`` atomically if absent; False when it existed."""

    @abc.abstractmethod
    def _exists(self, key: str) -> bool:
        """Whether ``key`` exists."""

    @abc.abstractmethod
    def _list(self, prefix: str) -> builtins.list[str]:
        """All keys below ``prefix``, recursive."""

    @abc.abstractmethod
    def _list_dir(self, prefix: str) -> builtins.list[str]:
        """Immediate child names of ``prefix``."""

    @abc.abstractmethod
    def _delete(self, key: str) -> None:
        """Delete ``key`` (absent is fine)."""

    @abc.abstractmethod
    def _delete_prefix(self, prefix: str) -> None:
        """Delete everything below ``prefix``."""

    def _ensure_marker(self) -> None:
        marker = {"format": STORE_FORMAT}
        if self.create_json(MARKER_KEY, marker):
            return
        try:
            found = self.read_json(MARKER_KEY)
        except StoreError as err:
            raise StoreError(f"{self.url!r} has an unreadable {MARKER_KEY}: {err}") from err
        fmt = found.get("format") if isinstance(found, dict) else None
        if fmt != STORE_FORMAT:
            raise StoreError(
                f"store {self.url!r} has format {fmt!r} in {MARKER_KEY}, this minjiang reads "
                f"format {STORE_FORMAT}; use the minjiang version that wrote it"
            )


# --------------------------------------------------------------------------- local


class LocalStore(Store):
    """A store in a local (or mounted network) folder.

    Writes go to a temporary file beside the target (names starting ``.tmp-``, never
    listed) that is flushed, fsynced and then ``os.replace``-d into place. Exclusive
    creates ``os.link`` the temporary file to the target, which fails if the target
    exists: atomic on POSIX filesystems that support hard links (local disks, NFSv3+,
    Lustre, GPFS).
    """

    supports_rename = True
    supports_exclusive_create = True
    scheme: ClassVar[str] = "file"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        text = _check_local_path(root)
        path = Path(text).expanduser().absolute()
        self.root = Path(os.path.normpath(path))
        super().__init__(self.root.as_uri())
        try:
            if self.root.exists() and not self.root.is_dir():
                raise StoreError(
                    f"store root {str(self.root)!r} exists and is not a folder; point the store "
                    "at a folder (or a path that does not exist yet)"
                )
            self.root.mkdir(parents=True, exist_ok=True)
        except StoreError:
            raise
        except OSError as err:
            raise StoreError(f"cannot create the store folder {str(self.root)!r}: {err}") from err

    def _path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def local_path(self, key: str) -> Path | None:
        """The local file path of ``key`` (it need not exist)."""
        return self._path(validate_key(key, allow_empty=True))

    def _zarr_store(self, prefix: str, *, read_only: bool) -> ZarrStore:
        import zarr.storage

        return zarr.storage.LocalStore(self._path(prefix), read_only=read_only)

    def _read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
            raise KeyNotFoundError(f"no key {key!r} in store {self.url!r}") from err
        except OSError as err:
            raise StoreError(f"cannot read {key!r} from store {self.url!r}: {err}") from err

    def _tmp_write(self, key: str, data: bytes) -> Path:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as err:
            raise StoreError(
                f"cannot write {key!r} in store {self.url!r}: a parent of it is a file"
            ) from err
        tmp = path.parent / f"{_TMP_PREFIX}{path.name}.{uuid.uuid4().hex}"
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _write(self, key: str, data: bytes) -> None:
        try:
            tmp = self._tmp_write(key, data)
            try:
                os.replace(tmp, self._path(key))
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except StoreError:
            raise
        except OSError as err:
            raise StoreError(f"cannot write {key!r} to store {self.url!r}: {err}") from err

    def _create(self, key: str, data: bytes) -> bool:
        try:
            tmp = self._tmp_write(key, data)
        except StoreError:
            raise
        except OSError as err:
            raise StoreError(f"cannot write {key!r} to store {self.url!r}: {err}") from err
        try:
            os.link(tmp, self._path(key))
            return True
        except FileExistsError:
            return False
        except OSError as err:
            if err.errno in {
                errno.EPERM,
                errno.ENOTSUP,
                errno.EOPNOTSUPP,
                errno.EXDEV,
                errno.EMLINK,
            }:
                raise StoreError(
                    f"cannot create {key!r} exclusively in store {self.url!r}: the filesystem "
                    f"refused a hard link ({err}); minjiang needs hard links for atomic "
                    "create-if-absent, so put the store on a filesystem that has them"
                ) from err
            raise StoreError(f"cannot create {key!r} in store {self.url!r}: {err}") from err
        finally:
            tmp.unlink(missing_ok=True)

    def _exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _list(self, prefix: str) -> builtins.list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        out = []
        for dirpath, _dirnames, filenames in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if not is_temporary(name):
                    out.append(name if rel == "." else f"{rel}/{name}")
        return out

    def _list_dir(self, prefix: str) -> builtins.list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return [p.name for p in base.iterdir() if not is_temporary(p.name)]

    def _delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError as err:
            raise StoreError(
                f"{key!r} in store {self.url!r} is a folder; use delete_prefix to delete folders"
            ) from err
        except OSError as err:
            raise StoreError(f"cannot delete {key!r} from store {self.url!r}: {err}") from err

    def _delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            try:
                shutil.rmtree(path)
            except FileNotFoundError:
                return
            except OSError as err:
                raise StoreError(
                    f"cannot delete {prefix!r} from store {self.url!r}: {err}"
                ) from err


# --------------------------------------------------------------------------- object


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")


def _s3_error_code(err: BaseException) -> str | None:
    # s3fs maps S3 errors to OSError subclasses and chains the botocore ClientError.
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        response = getattr(cur, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        cur = cur.__cause__ or cur.__context__
    return None


#: HTTP attempts per S3 request (botocore's "standard" retry mode: 5xx, throttling,
#: connection errors and timeouts are retried with jittered exponential back-off).
S3_MAX_ATTEMPTS = 4
#: s3fs's retries of a whole call; they catch what botocore's cannot (a response body cut
#: short after its headers arrived). A request is therefore tried at most
#: ``S3_MAX_ATTEMPTS * S3_CALL_RETRIES`` times before the fault is reported.
S3_CALL_RETRIES = 3
#: Seconds to connect, and to wait for each read of a response, before an attempt fails.
S3_CONNECT_TIMEOUT = 5.0
S3_READ_TIMEOUT = 20.0


def _s3_failures(*, values: bool = True) -> tuple[type[BaseException], ...]:
    """What a failing S3 call raises besides OSError: botocore's, aiohttp's, timeouts
    (and ValueError, which s3fs raises for some refusals, unless ``values`` is off)."""
    import asyncio

    found: list[type[BaseException]] = [OSError, asyncio.TimeoutError]
    if values:
        found.append(ValueError)
    try:
        from botocore.exceptions import (  # type: ignore[import-untyped]
            BotoCoreError,
            ClientError,
        )

        found += [BotoCoreError, ClientError]
    except ImportError:
        pass
    try:
        from aiohttp import ClientError as AioClientError

        found.append(AioClientError)
    except ImportError:
        pass
    return tuple(found)


def _redacted(url: str) -> str:
    """``url`` without any user or password part."""
    parsed = urlparse(url)
    if parsed.username is None and parsed.password is None:
        return url
    host = parsed.hostname or ""
    if parsed.port is not None:
        host = f"{host}:{parsed.port}"
    return parsed._replace(netloc=host).geturl()


def _s3_cause(err: BaseException) -> str:
    code = _s3_error_code(err)
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}{f' {code}' if code else ''}: {text}"


def s3_error(what: str, key: str, url: str, endpoint: str | None, err: BaseException) -> StoreError:
    """The StoreError for an S3 call that failed after its retries, naming the object and the fix."""
    where = f" at {_redacted(endpoint)}" if endpoint else ""
    return StoreError(
        f"cannot {what} {key!r} in store {url!r}{where}: {_s3_cause(err)}; the request was "
        f"tried up to {S3_MAX_ATTEMPTS * S3_CALL_RETRIES} times. Check that the server is "
        "reachable and healthy and that the credentials may access the bucket; for a slow "
        "or flaky server raise the limits with storage_options={'config_kwargs': "
        "{'retries': {'mode': 'standard', 'total_max_attempts': N}, 'read_timeout': S}}"
    )


#: s3fs options that carry credentials: never passed on to other processes
_CREDENTIAL_KEYS = frozenset(
    {"key", "secret", "token", "profile", "username", "password", "anon_credentials"}
)


def _s3_options(storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """s3fs options with minjiang's explicit, bounded retries and timeouts filled in."""
    opts = dict(storage_options or {})
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if (
        endpoint
        and "endpoint_url" not in opts
        and "endpoint_url" not in opts.get("client_kwargs", {})
    ):
        opts["endpoint_url"] = endpoint
    # Listings must not come from a cache: other processes write the same bucket.
    opts.setdefault("use_listings_cache", False)
    config = dict(opts.get("config_kwargs") or {})
    config.setdefault("retries", {"mode": "standard", "total_max_attempts": S3_MAX_ATTEMPTS})
    config.setdefault("connect_timeout", S3_CONNECT_TIMEOUT)
    config.setdefault("read_timeout", S3_READ_TIMEOUT)
    opts["config_kwargs"] = config
    return opts


def _object_zarr_store_class() -> type[FsspecStore]:
    from zarr.storage import FsspecStore

    # zarr raises ValueError itself (a write to a read-only store): those stay as they are
    failures = _s3_failures(values=False)

    class ObjectZarrStore(FsspecStore):
        """zarr's FsspecStore whose S3 failures (after s3fs's and botocore's retries) are
        StoreErrors naming the object, as the minjiang store's own calls are."""

        def _failed(self, what: str, key: str, err: BaseException) -> StoreError:
            return s3_error(what, key, f"s3://{self.path}", None, err)

        async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
            try:
                return await super().get(key, prototype, byte_range)
            except failures as err:
                raise self._failed("read", key, err) from err

        async def get_partial_values(self, prototype: Any, key_ranges: Any) -> Any:
            key_ranges = list(key_ranges)
            try:
                return await super().get_partial_values(prototype, key_ranges)
            except failures as err:
                keys = ", ".join(k for k, _ in key_ranges[:3])
                raise self._failed("read", keys, err) from err

        async def set(self, key: str, value: Any, byte_range: Any = None) -> None:
            try:
                await super().set(key, value, byte_range)
            except failures as err:
                raise self._failed("write", key, err) from err

        async def exists(self, key: str) -> bool:
            try:
                return await super().exists(key)
            except failures as err:
                raise self._failed("test", key, err) from err

        async def delete(self, key: str) -> None:
            try:
                await super().delete(key)
            except failures as err:
                raise self._failed("delete", key, err) from err

    return ObjectZarrStore


class ObjectStore(Store):
    """A store in an S3 (or S3-compatible) bucket, through s3fs/fsspec.

    Every PUT of an object is atomic on S3 (an object is visible whole or not at all),
    so :meth:`write_bytes` is a plain PUT. :meth:`create_bytes` is a conditional PUT
    with ``If-None-Match: *``: AWS S3 (since August 2024), MinIO, Ceph RGW and moto
    refuse it with ``412 Precondition Failed`` when the object exists, which makes it
    atomic against concurrent creators *on servers that implement it atomically*. A
    server that ignores the header would let the last writer win: set
    ``supports_exclusive_create`` off (``exclusive_create=False``) for such servers
    and the catalog still never shows a torn record, only possibly the later of two
    equal-id records (which carry the same content id).

    Parameters
    ----------
    url : str
        ``s3://bucket/prefix``.
    storage_options : Mapping, optional
        Passed to ``s3fs.S3FileSystem``; ``endpoint_url`` defaults to
        ``$AWS_ENDPOINT_URL`` when that is set. Unless given there, retries and timeouts
        are set explicitly: botocore's ``standard`` retry mode with
        ``total_max_attempts`` :data:`S3_MAX_ATTEMPTS` per request (``config_kwargs``),
        s3fs's ``retries`` of a whole call :data:`S3_CALL_RETRIES` (``retries``), and connect and read timeouts of
        :data:`S3_CONNECT_TIMEOUT` and :data:`S3_READ_TIMEOUT` seconds. Zarr's chunk I/O
        uses the same options.
    exclusive_create : bool, optional
        Whether the server honours ``If-None-Match: *`` (the default).

    Notes
    -----
    A fault that outlasts the retries is a :class:`~minjiang.errors.StoreError` naming
    the store, the key and the endpoint, never a hang or a bare client exception; the
    same holds for chunk reads and writes through :meth:`zarr_store`. Messages never
    carry credentials: the endpoint is shown without any user part, and credentials
    given in ``storage_options`` appear in no message, representation or record.

    A conditional PUT whose first attempt reached the server but whose answer was lost
    is retried and refused (412); :meth:`create_bytes` then reads the object back and
    reports it created when the bytes are its own, so a retried commit counts once.
    """

    supports_rename = False
    scheme: ClassVar[str] = "s3"

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        exclusive_create: bool = True,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StoreError(f"not an S3 URL: {url!r}; expected 's3://bucket/prefix'")
        bucket = parsed.netloc
        if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IPV4.fullmatch(bucket):
            raise StoreError(
                f"S3 bucket name {bucket!r} in store URL {url!r} is not valid: bucket names are 3-63 "
                "characters of lowercase letters, digits, '.' and '-', start and end with a "
                "letter or digit, have no '..' and are not an IP address"
            )
        prefix = parsed.path.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self._root = f"{bucket}/{prefix}" if prefix else bucket
        super().__init__(f"s3://{self._root}")
        opts = _s3_options(storage_options)
        # s3fs reads its whole-call retries from an attribute, not a constructor argument
        self.call_retries = int(opts.pop("retries", S3_CALL_RETRIES))
        self.storage_options: dict[str, Any] = opts
        self._exclusive = exclusive_create
        self.supports_exclusive_create = exclusive_create
        self._fs_lock = threading.Lock()
        self._fs: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Ray ships stores to workers: the filesystem and its lock are rebuilt there.
        state = dict(self.__dict__)
        state["_fs"] = None
        state["_fs_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fs_lock = threading.Lock()

    @property
    def fs(self) -> Any:
        """The synchronous ``s3fs.S3FileSystem`` this store uses."""
        with self._fs_lock:
            if self._fs is None:
                try:
                    import s3fs
                except ImportError as err:
                    raise StoreError(
                        "s3:// stores need s3fs; install it with `pip install minjiang[s3]`"
                    ) from err
                fs = s3fs.S3FileSystem(**self.storage_options)
                fs.retries = self.call_retries
                self._fs = fs
            return self._fs

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"  # never the options: they may hold credentials

    def shared_options(self) -> dict[str, Any]:
        """The endpoint, timeouts, retries and other s3fs settings, credentials left
        out (``key``, ``secret``, ``token``, ``profile`` and the client's ``aws_*``
        keys): tasks on other machines open the store as the driver configured it and
        take credentials from their own environment."""
        opts = {k: v for k, v in self.storage_options.items() if k not in _CREDENTIAL_KEYS}
        client = {
            k: v
            for k, v in (opts.get("client_kwargs") or {}).items()
            if not k.startswith("aws_")
        }
        if client:
            opts["client_kwargs"] = client
        else:
            opts.pop("client_kwargs", None)
        opts["retries"] = self.call_retries
        return opts

    @property
    def endpoint(self) -> str | None:
        """The endpoint URL (without any user part), or None for AWS's default."""
        opts = self.storage_options
        url = opts.get("endpoint_url") or opts.get("client_kwargs", {}).get("endpoint_url")
        return _redacted(str(url)) if url else None

    def _full(self, key: str) -> str:
        return f"{self._root}/{key}" if key else self._root

    def _failed(self, what: str, key: str, err: BaseException) -> StoreError:
        return s3_error(what, key, self.url, self.endpoint, err)

    def _call(self, what: str, key: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except FileNotFoundError as err:
            raise KeyNotFoundError(f"no key {key!r} in store {self.url!r}") from err
        except _s3_failures() as err:
            raise self._failed(what, key, err) from err

    def _zarr_store(self, prefix: str, *, read_only: bool) -> ZarrStore:
        store = _object_zarr_store_class().from_url(
            f"s3://{self._full(prefix)}",
            storage_options=dict(self.storage_options),
            read_only=read_only,
        )
        store.fs.retries = self.call_retries
        result: ZarrStore = store
        return result

    def _read(self, key: str) -> bytes:
        return bytes(self._call("read", key, lambda: self.fs.cat_file(self._full(key))))

    def _write(self, key: str, data: bytes) -> None:
        self._call("write", key, lambda: self.fs.pipe_file(self._full(key), data))

    def _create(self, key: str, data: bytes) -> bool:
        if not self._exclusive:
            if self._exists(key):
                return False
            self._write(key, data)
            return True
        for attempt in range(8):
            try:
                self.fs.pipe_file(self._full(key), data, mode="create")
                return True
            except FileExistsError:  # s3fs's mapping of 412 PreconditionFailed
                return self._created_by_us(key, data)
            except _s3_failures() as err:
                code = _s3_error_code(err)
                if code == "PreconditionFailed":
                    return self._created_by_us(key, data)
                if code == "ConditionalRequestConflict" and attempt < 7:
                    # AWS: another conditional write to this key is in flight; once it
                    # settles, ours either wins or gets 412.
                    time.sleep(0.05 * 2**attempt)
                    continue
                if code in {"NotImplemented", "InvalidArgument", "InvalidRequest"}:
                    raise StoreError(
                        f"cannot create {key!r} in store {self.url!r}: the server refused a "
                        f"conditional write ({_s3_cause(err)}); if it does not support "
                        "If-None-Match, open the store with exclusive_create=False"
                    ) from err
                raise self._failed("create", key, err) from err
        raise StoreError(
            f"cannot create {key!r} in store {self.url!r}: conditional writes kept conflicting "
            "(409) for 8 attempts; another writer keeps writing this key, retry later"
        )

    def _created_by_us(self, key: str, data: bytes) -> bool:
        # 412: the key exists. When its bytes are ours, our own earlier attempt got in
        # and only its answer was lost (botocore retried the PUT): the create succeeded.
        # Two creators of identical bytes cannot be told apart, and need not be.
        try:
            return self._read(key) == data
        except KeyNotFoundError:
            return False

    def _exists(self, key: str) -> bool:
        # Not fs.isfile: it answers False for any failure, so a server that kept failing
        # would make a published record look absent.
        try:
            info = self.fs.info(self._full(key))
        except FileNotFoundError:
            return False
        except _s3_failures() as err:
            raise self._failed("test", key, err) from err
        return bool(info.get("type") == "file")

    def _list(self, prefix: str) -> builtins.list[str]:
        base = self._full(prefix)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        except _s3_failures() as err:
            raise self._failed("list", prefix, err) from err
        root = self._root + "/"
        out = []
        for path in found:
            if path.startswith(root) and (not prefix or path.startswith(base + "/")):
                out.append(path[len(root) :])
        return out

    def _list_dir(self, prefix: str) -> builtins.list[str]:
        base = self._full(prefix)
        try:
            found = self.fs.ls(base, detail=False)
        except FileNotFoundError:
            return []
        except _s3_failures() as err:
            raise self._failed("list", prefix, err) from err
        names = []
        for path in found:
            path = path.rstrip("/")
            if path.startswith(base + "/"):
                names.append(path[len(base) + 1 :])
        return names

    def _delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._full(key))
        except FileNotFoundError:
            return
        except _s3_failures() as err:
            raise self._failed("delete", key, err) from err

    def _delete_prefix(self, prefix: str) -> None:
        try:
            keys = self.fs.find(self._full(prefix))
            if keys:
                self.fs.rm(keys)
        except FileNotFoundError:
            return
        except _s3_failures() as err:
            raise self._failed("delete", prefix, err) from err


# --------------------------------------------------------------------------- factory

_PATH_MAX = 4096  # bytes, Linux PATH_MAX
_NAME_MAX = 255  # bytes per path component


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:60] + "..." + value[-12:])


def _check_local_path(root: str | os.PathLike[str]) -> str:
    """The folder path of a local store, or a StoreError saying why it cannot be one."""
    try:
        text = os.fspath(root)
    except TypeError:
        raise StoreError(
            f"a store location must be a folder path or URL string, not "
            f"{type(root).__name__}; for example './minjiang-store' or 's3://bucket/prefix'"
        ) from None
    if isinstance(text, bytes):
        raise StoreError(
            f"store path {text!r} is bytes; pass it as a str (os.fsdecode) or a pathlib.Path"
        )
    if not text.strip():
        raise StoreError(
            f"store path {text!r} is empty; give a folder (for example './minjiang-store'), "
            "or leave the store unset to use $MINJIANG_STORE or ./minjiang-store. An empty "
            "path would make the current folder a store"
        )
    if "\0" in text:
        raise StoreError(
            f"store path {_shown(text)} contains a NUL character, which no file system "
            "allows; remove it"
        )
    control = sorted({c for c in text if ord(c) < 0x20 or ord(c) == 0x7F})
    if control:
        raise StoreError(
            f"store path {_shown(text)} contains control characters "
            f"({', '.join(repr(c) for c in control)}); a store location is printable text, "
            "remove them"
        )
    try:
        encoded = os.fsencode(text)
    except UnicodeError:
        raise StoreError(
            f"store path {_shown(text)} cannot be encoded for the file system; use a path of "
            "valid characters"
        ) from None
    if len(encoded) > _PATH_MAX:
        raise StoreError(
            f"store path {_shown(text)} is {len(encoded)} bytes, more than the {_PATH_MAX} "
            "bytes a path may have; choose a shorter folder"
        )
    long = [p for p in encoded.split(b"/") if len(p) > _NAME_MAX]
    if long:
        raise StoreError(
            f"store path {_shown(text)} has a component of {len(long[0])} bytes, more than the "
            f"{_NAME_MAX} bytes a file name may have; choose a shorter folder name"
        )
    return text


_SCHEMES: dict[str, str] = {
    "": "a local folder path",
    "file": "file:///path/to/folder",
    "s3": "s3://bucket/prefix (S3 or an S3-compatible server; endpoint from $AWS_ENDPOINT_URL)",
}


def open_store(
    url: str | os.PathLike[str] | Store | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> Store:
    """Open (and on first use create) a minjiang store.

    Parameters
    ----------
    url : str, path-like, Store or None
        ``None`` uses ``$MINJIANG_STORE`` or ``./minjiang-store``. A path or
        ``file://`` URL opens a :class:`LocalStore`; ``s3://bucket/prefix`` an
        :class:`ObjectStore`. A Store is returned as it is.
    storage_options : Mapping, optional
        Options for the object store (``s3fs.S3FileSystem`` keyword arguments).

    Returns
    -------
    Store
        The store, with its root and its ``minjiang.json`` marker created.

    Raises
    ------
    StoreError
        For an empty location (which would make the current folder a store), one with a
        NUL character, too long for the file system or not a string, an unknown URL
        scheme (the message lists the supported ones), a root that is not a folder, or a
        store written in another format.
    """
    if isinstance(url, Store):
        return url
    if url is None:
        url = os.environ.get("MINJIANG_STORE") or DEFAULT_STORE
    store: Store
    if isinstance(url, os.PathLike):
        store = LocalStore(url)
    else:
        if not isinstance(url, str):
            raise StoreError(
                f"a store location must be a folder path or URL string, not "
                f"{type(url).__name__}; for example './minjiang-store' or 's3://bucket/prefix'"
            )
        text = _check_local_path(url)  # empty, NUL, over-long: refused for every scheme
        parsed = urlparse(text)
        scheme = parsed.scheme.lower()
        if len(scheme) == 1 and os.name == "nt":  # a Windows drive letter
            scheme = ""
        if scheme == "":
            store = LocalStore(text)
        elif scheme == "file":
            if parsed.netloc not in {"", "localhost"}:
                raise StoreError(
                    f"file:// URL {text!r} names host {parsed.netloc!r}; only local paths are "
                    "supported (file:///path)"
                )
            store = LocalStore(unquote(parsed.path))
        elif scheme in {"s3", "s3a"}:
            store = ObjectStore("s3://" + text.split("://", 1)[1], storage_options)
        else:
            listed = "; ".join(f"{k or 'path'}: {v}" for k, v in _SCHEMES.items())
            raise StoreError(
                f"unsupported store URL {text!r} (scheme {scheme!r}); supported: {listed}"
            )
    store._ensure_marker()
    return store
