"""Loading and caching the Platform's OpenAPI document.

A document enters the process from a path (YAML or JSON), a URL, an already
parsed mapping, or automatically: ask the server's ``GET /service-info`` for its
``apiVersion`` and use the cached document for that version, else download the
document the server publishes and cache it.

The first time a document is seen it is parsed (the slow part: ~0.13 s of YAML
for 1.181.0), checked once with openapi-spec-validator (an invalid document is
bound anyway, with one :class:`SpecWarning` saying what is wrong), corrected by
the patch table in :mod:`tower_async.patches`, and written to the schema cache in
a pre-parsed fast form: one JSON header line, then the document as orjson JSON.
Later loads read that form (a few ms) and skip parsing and validation.

Cache entries are keyed by origin, API version and the sha256 of the source
content: ``<root>/<origin>/<apiVersion>__<sha256>.json``.  Writes are atomic
(temporary file + rename); an entry whose body does not match the sha256 in its
header (truncated, corrupt), or that is not a regular file, too large, of the wrong
shape or outside the document limits, is ignored, removed and rebuilt, never a crash.

Every document, from any source, is held to :data:`LIMITS` (size, nesting, YAML alias
expansion) and may only refer to itself (see :mod:`tower_async._docsafety`); every
failure is a :class:`SpecError` naming the document and the place.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import pickle
import re
import stat
import sys
import tempfile
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from ._docsafety import NO_RETRIEVAL, DocumentLimits, caller_stacklevel, check_tree, scan_yaml
from ._memo import BoundedMemo
from .errors import SpecError

__all__ = [
    "LIMITS",
    "DocumentLimits",
    "SchemaCache",
    "SpecDocument",
    "SpecWarning",
    "default_cache_dir",
    "document_url_for",
    "load_document",
    "prepare_document",
]

log = logging.getLogger("tower_async.spec")

CACHE_FORMAT = 1
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

#: The caps every document is held to (read at each load; assign a new
#: :class:`DocumentLimits` to change them).  A cache entry may be up to 4x ``max_bytes``.
LIMITS = DocumentLimits()
_MAX_CANDIDATES = 16  # entries tried per version lookup, newest first


def _patch_table() -> str:
    """The names of the patches this version applies: entries made by another are stale."""
    from .patches import PATCHES

    return ",".join(PATCHES)


class SpecWarning(UserWarning):
    """Something about the OpenAPI document the caller should know; it is bound anyway.

    Said once, when a document enters the cache: it fails OpenAPI validation (and whether
    the patched document is valid), or some operationIds are bound under aliases.
    """


@dataclass(frozen=True)
class SpecDocument:
    """A loaded (and patched) document with where it came from."""

    document: dict[str, Any] = field(repr=False)
    api_version: str
    sha256: str  # of the source content
    origin: str
    problems: str | None = None  # what openapi-spec-validator found wrong, if anything
    patches: tuple[str, ...] = ()
    patched_problems: str | None = None  # what is still wrong after the patches
    from_cache: bool = False
    path: Path | None = None  # the cache entry


def default_cache_dir() -> Path:
    """``$TOWER_ASYNC_CACHE_DIR``, else the platform's user cache dir (platformdirs-style)."""
    env = os.environ.get("TOWER_ASYNC_CACHE_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "tower-async" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "tower-async"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tower-async"


#: Where documents from servers on this machine are filed in the user cache: one folder, found
#: by content, never by port (a fake Platform on a new port each run must not add a folder).
LOOPBACK_ORIGIN = "loopback"


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_slug(origin: str) -> str:
    """A directory name for an origin: ``file``, ``dict`` or a URL's host[:port]."""
    if "://" in origin:
        parts = urlsplit(origin)
        origin = parts.netloc or parts.scheme
    return _SAFE.sub("_", origin).strip("_") or "unknown"


def document_url_for(endpoint: str) -> str:
    """Where a Platform install publishes its document, from its API endpoint."""
    parts = urlsplit(endpoint)
    host = parts.netloc
    if host == "api.cloud.seqera.io":
        return "https://cloud.seqera.io/openapi/seqera-api-latest.yml"
    if host == "api.tower.nf":
        return "https://tower.nf/openapi/seqera-api-latest.yml"
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        path = path[: -len("/api")]
    return f"{parts.scheme}://{host}{path}/openapi/seqera-api-latest.yml"


_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "origin": (str,),
    "api_version": (str,),
    "source_sha256": (str,),
    "body_sha256": (str,),
    "problems": (str, type(None)),
    "patched_problems": (str, type(None)),
    "patches": (list,),
    "patch_table": (str,),
}


def _check_header(header: Any, expect: Mapping[str, str]) -> dict[str, Any]:
    """The header of a cache entry, or ValueError: every field of the right type and value."""
    if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT:
        raise ValueError("unknown cache format")
    for key, types in _HEADER_TYPES.items():
        if key not in header or not isinstance(header[key], types):
            raise ValueError(f"header field {key!r} is missing or of the wrong type")
    if not all(isinstance(p, str) for p in header["patches"]):
        raise ValueError("header field 'patches' is not a list of names")
    if header["patch_table"] != _patch_table():
        raise ValueError("made with another patch table (tower-async was upgraded)")
    for key, value in expect.items():
        if header[key] != value:
            raise ValueError(f"header field {key!r} does not match the entry's name")
    return header


def _read_regular_file(path: Path, max_size: int) -> bytes:
    """A regular file's bytes, never following a symlink, never blocking on a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_BINARY", 0)
    if path.is_symlink():
        raise ValueError("is a symbolic link")
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is not a regular file")
        if info.st_size > max_size:
            raise ValueError(f"is larger than {max_size} bytes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(max_size + 1)[:max_size]
    finally:
        os.close(fd)


class SchemaCache:
    """The on-disk cache of pre-parsed documents.  ``root=None`` disables it.

    The directory may be shared: an entry that is not a regular file (a symlink, a FIFO),
    is too large, has a header of the wrong shape or for another name, a body that does
    not match its checksum, or a body that breaks the document limits is ignored (and
    removed), and the document is loaded from its source again.
    """

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        self.root = Path(root) if root is not None else None

    def __repr__(self) -> str:
        return f"SchemaCache({str(self.root)!r})"

    def _dir(self, origin: str) -> Path | None:
        if self.root is None:
            return None
        directory = self.root / origin_slug(origin)
        if directory.is_symlink():
            log.warning("ignoring schema cache directory %s: it is a symbolic link", directory)
            return None
        return directory

    def _read(self, path: Path, origin: str, expect: Mapping[str, str]) -> SpecDocument | None:
        limits = LIMITS
        try:
            data = _read_regular_file(path, 4 * limits.max_bytes)
            header_bytes, _, body = data.partition(b"\n")
            header = _check_header(orjson.loads(header_bytes), expect)
            if hashlib.sha256(body).hexdigest() != header["body_sha256"]:
                raise ValueError("body checksum mismatch (truncated or corrupt)")
            document = orjson.loads(body)
            if not isinstance(document, dict):
                raise ValueError("document is not a mapping")
            check_tree(document, str(path), limits)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, SpecError) as exc:  # orjson.JSONDecodeError: ValueError
            log.warning("ignoring schema cache entry %s: %s", path, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return SpecDocument(
            document=document,
            api_version=header["api_version"],
            sha256=header["source_sha256"],
            origin=origin,
            problems=header["problems"],
            patches=tuple(header["patches"]),
            patched_problems=header["patched_problems"],
            from_cache=True,
            path=path,
        )

    def get_by_source(self, origin: str, sha256: str) -> SpecDocument | None:
        """The entry made from source content with this sha256, if cached."""
        directory = self._dir(origin)
        if directory is None or not directory.is_dir() or not re.fullmatch("[0-9a-f]{64}", sha256):
            return None
        for path in directory.glob(f"*__{sha256}.json"):
            api_version = path.name[: -len(f"__{sha256}.json")]
            doc = self._read(path, origin, {"source_sha256": sha256})
            if doc is not None and origin_slug(doc.api_version) == api_version:
                return doc
        return None

    def get_by_version(self, origin: str, api_version: str) -> SpecDocument | None:
        """The newest entry for an origin and API version, if cached."""
        directory = self._dir(origin)
        if directory is None or not directory.is_dir():
            return None
        prefix = origin_slug(api_version)

        def mtime(p: Path) -> float:
            try:
                return p.lstat().st_mtime
            except OSError:
                return 0.0

        candidates = sorted(directory.glob(f"{prefix}__*.json"), key=mtime, reverse=True)
        for path in candidates[:_MAX_CANDIDATES]:
            doc = self._read(path, origin, {"api_version": api_version})
            if doc is not None and path.name == f"{prefix}__{doc.sha256}.json":
                return doc
        return None

    def put(self, spec: SpecDocument) -> SpecDocument:
        """Write an entry atomically; return the document with its cache path."""
        directory = self._dir(spec.origin)
        if directory is None:
            return spec
        body = _dumps(spec.document, spec.origin)
        if len(body) > 4 * LIMITS.max_bytes:
            log.warning("not caching the document from %s: %d bytes", spec.origin, len(body))
            return spec
        header = {
            "format": CACHE_FORMAT,
            "origin": spec.origin,
            "api_version": spec.api_version,
            "source_sha256": spec.sha256,
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "problems": spec.problems,
            "patched_problems": spec.patched_problems,
            "patches": list(spec.patches),
            "patch_table": _patch_table(),
        }
        target = directory / f"{origin_slug(spec.api_version)}__{spec.sha256}.json"
        try:
            _write_atomically(directory, target, orjson.dumps(header) + b"\n" + body)
        except OSError as exc:
            log.warning("could not write schema cache entry %s: %s", target, exc)
            return spec
        return replace(spec, from_cache=False, path=target)


def _write_atomically(directory: Path, target: Path, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)  # replaces a symlink itself, never writes through it
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _dumps(document: Any, where: str, option: int = 0) -> bytes:
    try:
        return orjson.dumps(document, option=option | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        raise SpecError(f"{where}: the document cannot be stored as JSON: {exc}") from None


#: Parsed YAML documents, pickled, by (SHA-256 of the source, limits): the same bytes parsed
#: again (sessions with no cache, or each with a new one) unpickle in ~8 ms instead of
#: ~0.3 s for the Platform's 1.181.0.  A document is kept the second time it is parsed, so a
#: process that loads it once (the usual cold start) pays nothing for it.  At most 16
#: documents and 32 MiB.
PARSED: BoundedMemo[bytes | None] = BoundedMemo(entries=16, max_bytes=32 * 2**20)


def parse_text(content: bytes, where: str, limits: DocumentLimits | None = None) -> dict[str, Any]:
    """Parse a document's bytes: JSON via orjson when it looks like JSON, else YAML.

    The size, nesting and YAML alias expansion are checked against ``limits``
    (default :data:`LIMITS`) before anything is built.  Every call returns a new mapping.
    """
    limits = LIMITS if limits is None else limits
    if len(content) > limits.max_bytes:
        raise SpecError(f"{where}: the document is larger than {limits.max_bytes} bytes")
    if content.lstrip()[:1] in (b"{", b"["):
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise SpecError(f"{where}: invalid JSON: {exc}") from None
    else:
        data = _parse_yaml(content, where, limits)
    if not isinstance(data, dict):
        raise SpecError(f"{where}: an OpenAPI document must be a mapping")
    return data


def _parse_yaml(content: bytes, where: str, limits: DocumentLimits) -> Any:
    key = (hashlib.sha256(content).digest(), limits)
    seen, pickled = PARSED.get(key)
    if pickled is not None:  # our own pickle of what SafeLoader built
        return pickle.loads(pickled)
    import yaml

    scan_yaml(content, where, limits)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(content, Loader=loader)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise SpecError(f"{where}: invalid YAML: {exc}") from None
    if not seen:
        PARSED.put(key, None)  # kept if it comes again
        return data
    try:
        pickled = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, RecursionError, TypeError):
        return data  # (a self-referencing structure: not kept)
    PARSED.put(key, pickled, len(pickled))
    return data


def _find_bad_patterns(node: Any, path: str = "$", out: list[str] | None = None) -> list[str]:
    out = [] if out is None else out
    if isinstance(node, dict):
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as exc:
                out.append(f"{path}.pattern {pattern!r} is not a valid regular expression ({exc})")
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                _find_bad_patterns(value, f"{path}.{key}", out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _find_bad_patterns(value, f"{path}[{i}]", out)
    return out


def _validate_offline(document: Mapping[str, Any]) -> None:
    """openapi-spec-validator with resolver handlers that refuse every URL and file."""
    from jsonschema_path import SchemaPath
    from openapi_spec_validator.shortcuts import get_validator_cls

    cls = get_validator_cls(document)
    path = SchemaPath.from_dict(document, base_uri="", handlers=NO_RETRIEVAL)
    cls(path).validate()


def _refusal_in(exc: BaseException) -> str | None:
    """The message of a SpecError (a refused reference) among an exception's causes."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 16:
        if isinstance(current, SpecError):
            return str(current)
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def check_document(document: Mapping[str, Any]) -> str | None:
    """Run openapi-spec-validator once (offline); return a short description of what is wrong.

    References are resolved within the document only: a ``$ref`` to a file or URL is
    reported as a problem, never fetched.
    """
    try:
        _validate_offline(document)
    except RecursionError:
        return (
            "openapi-spec-validator cannot finish on this document (it recursed past "
            "Python's limit, on self-referencing schemas), so its validity is unknown"
        )
    except Exception as exc:
        where = getattr(exc, "json_path", None) or "the document"
        message = str(getattr(exc, "message", exc))
        refused = _refusal_in(exc)
        if refused is not None:
            message = f"{message}: {refused}"
        if len(message) > 160:
            message = message[:80] + " ... " + message[-60:]
        text = f"{where}: {message}"
        bad = _find_bad_patterns(document)
        if bad:
            text += "; cause: " + "; ".join(bad[:3])
            if len(bad) > 3:
                text += f" (and {len(bad) - 3} more)"
        return text
    return None


#: What :func:`check_document` said of a document, by the SHA-256 of its JSON bytes:
#: validation is a pure function of the document and costs 0.2-1 s on the Platform's, so
#: a process validates one document once, however many sessions bind it without a cache
#: or each with a new one (hashes and short texts only, 64 at most).
VALIDITY: BoundedMemo[str | None] = BoundedMemo(entries=64)


def _validity(document: Mapping[str, Any], data: bytes) -> str | None:
    key = hashlib.sha256(data).hexdigest()
    held, said = VALIDITY.get(key)
    if not held:
        said = check_document(document)
        VALIDITY.put(key, said)
    return said


def _apply_patches(document: dict[str, Any], where: str) -> tuple[str, ...]:
    from .patches import PATCHES

    applied = []
    for name, patch in PATCHES.items():
        try:
            changed = patch(document)
        except (AttributeError, KeyError, TypeError, ValueError, RecursionError) as exc:
            raise SpecError(f"{where}: patch {name!r} cannot be applied: {exc!r}") from None
        if changed:
            applied.append(name)
    return tuple(applied)


def prepare_document(
    document: dict[str, Any],
    *,
    origin: str,
    sha256: str,
    validate: bool = True,
    where: str | None = None,
) -> SpecDocument:
    """First sight of a document: check limits, validate, patch, note its version.

    A document is validated once a process (:data:`VALIDITY`).

    The document is checked against :data:`LIMITS` and copied first (so a YAML alias
    shared between two places is two places, and the caller's mapping is not patched).
    When it fails validation and patches apply, the patched document is validated too.
    """
    where = origin if where is None else where
    check_tree(document, where, LIMITS)
    data = _dumps(document, where)
    document = orjson.loads(data)
    info = document.get("info")
    api_version = str(info.get("version", "unknown")) if isinstance(info, dict) else "unknown"
    problems = _validity(document, data) if validate else None
    patches = _apply_patches(document, where)
    patched_problems = problems
    if problems is not None and patches:
        patched_problems = _validity(document, _dumps(document, where))
    return SpecDocument(
        document=document,
        api_version=api_version,
        sha256=sha256,
        origin=origin,
        problems=problems,
        patches=patches,
        patched_problems=patched_problems,
    )


_warned: set[str] = set()


def warn_if_invalid(spec: SpecDocument) -> None:
    """One SpecWarning when a document that failed validation enters the cache.

    Said on the cold load only (a warm load from the cache is silent; the findings stay
    on ``spec.problems``), attributed to the caller's frame, and once per process.
    """
    if not spec.problems or spec.from_cache or spec.sha256 in _warned:
        return
    _warned.add(spec.sha256)
    text = (
        f"the OpenAPI document (API {spec.api_version}, from {spec.origin}) fails OpenAPI "
        f"validation: {spec.problems}; "
    )
    if spec.patches and spec.patched_problems is None:
        text += f"the patches ({', '.join(spec.patches)}) correct it: the patched document is valid"
    elif spec.patches:
        text += (
            f"after the patches ({', '.join(spec.patches)}) the patched document is not known "
            f"to be valid: {spec.patched_problems}; it is bound anyway"
        )
    else:
        text += "it is bound anyway"
    warnings.warn(text, SpecWarning, stacklevel=caller_stacklevel())


def sha256_of_mapping(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(_dumps(document, "dict", orjson.OPT_SORT_KEYS)).hexdigest()


def load_from_bytes(
    content: bytes, *, origin: str, where: str, cache: SchemaCache, validate: bool = True
) -> SpecDocument:
    """Cache hit by content hash, else parse + validate + patch + store."""
    sha = hashlib.sha256(content).hexdigest()
    hit = cache.get_by_source(origin, sha)
    if hit is not None:
        return hit
    document = parse_text(content, where)
    return cache.put(
        prepare_document(document, origin=origin, sha256=sha, validate=validate, where=where)
    )


def _read_source(path: Path) -> bytes:
    limit = LIMITS.max_bytes
    try:
        with path.open("rb") as fh:
            content = fh.read(limit + 1)
    except OSError as exc:
        raise SpecError(f"cannot read the OpenAPI document {str(path)!r}: {exc}") from None
    if len(content) > limit:
        raise SpecError(f"{path}: the document is larger than {limit} bytes")
    return content


def load_document(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    cache: SchemaCache,
    validate: bool = True,
    warn: bool = True,
) -> SpecDocument:
    """Load a document from a path or a mapping (no network; URLs go through the session).

    ``warn=False`` leaves the :class:`SpecWarning` to the caller (:func:`warn_if_invalid`),
    as the session does so that it is attributed to the caller's frame, not a worker thread.
    """
    if isinstance(source, Mapping):
        source = dict(source)
        check_tree(source, "dict", LIMITS)
        sha = sha256_of_mapping(source)
        hit = cache.get_by_source("dict", sha)
        if hit is not None:
            spec = hit
        else:  # prepare_document works on a private deep copy
            spec = cache.put(prepare_document(source, origin="dict", sha256=sha, validate=validate))
    else:
        path = Path(source)
        spec = load_from_bytes(
            _read_source(path), origin="file", where=str(path), cache=cache, validate=validate
        )
    if warn:
        warn_if_invalid(spec)
    return spec


async def load_remote(
    *,
    fetch: Callable[[str], Awaitable[bytes]],
    cache: SchemaCache,
    url: str | None = None,
    endpoint: str | None = None,
    api_version: str | None = None,
    validate: bool = True,
    to_thread: Callable[..., Awaitable[Any]] | None = None,
    origin: str | None = None,
    by_version: bool = True,
) -> SpecDocument:
    """Load from a URL, or automatically for ``endpoint`` at ``api_version``.

    ``fetch(url) -> bytes`` does the I/O (the session's HTTP client), so this stays
    testable; parsing and validation of a new document run in ``to_thread``.  The entry
    is filed under ``origin`` (default: the endpoint, else the URL); with ``api_version``
    an entry filed there for that version is used without any download (unless
    ``by_version=False``: then the document is always downloaded and found by its content,
    as for :data:`LOOPBACK_ORIGIN`, where servers on several ports share one folder).
    """
    if url is None:
        if endpoint is None:
            raise SpecError("either a document URL or the endpoint is needed")
        url = document_url_for(endpoint)
    if origin is None:
        origin = url if endpoint is None else endpoint
    if api_version is not None and by_version:
        hit = cache.get_by_version(origin, api_version)
        if hit is not None:
            return hit
    content = await fetch(url)
    sha = hashlib.sha256(content).hexdigest()
    hit = cache.get_by_source(origin, sha)
    if hit is None:
        where, filed_under = url, origin

        def build() -> SpecDocument:
            document = parse_text(content, where)
            spec = prepare_document(
                document, origin=filed_under, sha256=sha, validate=validate, where=where
            )
            if api_version is not None and spec.api_version != api_version:
                # file it under the version the server reports, so the next lookup hits
                spec = replace(spec, api_version=api_version)
            return cache.put(spec)

        hit = await to_thread(build) if to_thread is not None else build()
    warn_if_invalid(hit)
    return hit
