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
header (truncated, corrupt) is ignored, removed and rebuilt, never a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from .errors import SpecError

__all__ = [
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


def _patch_table() -> str:
    """The names of the patches this version applies: entries made by another are stale."""
    from .patches import PATCHES

    return ",".join(PATCHES)


class SpecWarning(UserWarning):
    """The OpenAPI document fails validation; it is bound anyway."""


@dataclass(frozen=True)
class SpecDocument:
    """A loaded (and patched) document with where it came from."""

    document: dict[str, Any] = field(repr=False)
    api_version: str
    sha256: str  # of the source content
    origin: str
    problems: str | None = None  # what openapi-spec-validator found wrong, if anything
    patches: tuple[str, ...] = ()
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


class SchemaCache:
    """The on-disk cache of pre-parsed documents.  ``root=None`` disables it."""

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        self.root = Path(root) if root is not None else None

    def __repr__(self) -> str:
        return f"SchemaCache({str(self.root)!r})"

    def _dir(self, origin: str) -> Path | None:
        return None if self.root is None else self.root / origin_slug(origin)

    def _read(self, path: Path) -> SpecDocument | None:
        try:
            data = path.read_bytes()
            header_bytes, _, body = data.partition(b"\n")
            header = orjson.loads(header_bytes)
            if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT:
                raise ValueError("unknown cache format")
            if header.get("patch_table") != _patch_table():
                raise ValueError("made with another patch table (tower-async was upgraded)")
            if hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
                raise ValueError("body checksum mismatch (truncated or corrupt)")
            document = orjson.loads(body)
            if not isinstance(document, dict):
                raise ValueError("document is not a mapping")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            log.warning("ignoring schema cache entry %s: %s", path, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return SpecDocument(
            document=document,
            api_version=str(header.get("api_version", "")),
            sha256=str(header.get("source_sha256", "")),
            origin=str(header.get("origin", "")),
            problems=header.get("problems"),
            patches=tuple(header.get("patches") or ()),
            from_cache=True,
            path=path,
        )

    def get_by_source(self, origin: str, sha256: str) -> SpecDocument | None:
        """The entry made from source content with this sha256, if cached."""
        directory = self._dir(origin)
        if directory is None or not directory.is_dir():
            return None
        for path in directory.glob(f"*__{sha256}.json"):
            doc = self._read(path)
            if doc is not None:
                return doc
        return None

    def get_by_version(self, origin: str, api_version: str) -> SpecDocument | None:
        """The newest entry for an origin and API version, if cached."""
        directory = self._dir(origin)
        if directory is None or not directory.is_dir():
            return None
        prefix = origin_slug(api_version)
        candidates = sorted(
            directory.glob(f"{prefix}__*.json"),
            key=lambda p: p.stat().st_mtime if p.exists() else 0.0,
            reverse=True,
        )
        for path in candidates:
            doc = self._read(path)
            if doc is not None:
                return doc
        return None

    def put(self, spec: SpecDocument) -> SpecDocument:
        """Write an entry atomically; return the document with its cache path."""
        directory = self._dir(spec.origin)
        if directory is None:
            return spec
        body = orjson.dumps(spec.document)
        header = {
            "format": CACHE_FORMAT,
            "origin": spec.origin,
            "api_version": spec.api_version,
            "source_sha256": spec.sha256,
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "problems": spec.problems,
            "patches": list(spec.patches),
            "patch_table": _patch_table(),
        }
        target = directory / f"{origin_slug(spec.api_version)}__{spec.sha256}.json"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(orjson.dumps(header) + b"\n" + body)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("could not write schema cache entry %s: %s", target, exc)
            return spec
        return SpecDocument(
            document=spec.document,
            api_version=spec.api_version,
            sha256=spec.sha256,
            origin=spec.origin,
            problems=spec.problems,
            patches=spec.patches,
            from_cache=False,
            path=target,
        )


def parse_text(content: bytes, where: str) -> dict[str, Any]:
    """Parse a document's bytes: JSON via orjson when it looks like JSON, else YAML."""
    stripped = content.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise SpecError(f"{where}: invalid JSON: {exc}") from None
    else:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            data = yaml.load(content, Loader=loader)
        except yaml.YAMLError as exc:
            raise SpecError(f"{where}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{where}: an OpenAPI document must be a mapping")
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


def check_document(document: Mapping[str, Any]) -> str | None:
    """Run openapi-spec-validator once; return a short description of what is wrong."""
    try:
        from openapi_spec_validator import validate
    except ImportError:  # pragma: no cover - openapi-core depends on it
        return None
    try:
        validate(document)
    except Exception as exc:
        where = getattr(exc, "json_path", None) or "the document"
        message = str(getattr(exc, "message", exc))
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


def prepare_document(
    document: dict[str, Any], *, origin: str, sha256: str, validate: bool = True
) -> SpecDocument:
    """First sight of a document: validate once, apply the patch table, note its version."""
    info = document.get("info")
    api_version = str(info.get("version", "unknown")) if isinstance(info, dict) else "unknown"
    problems = check_document(document) if validate else None
    patches: tuple[str, ...] = ()
    try:
        from .patches import apply_patches
    except ImportError:  # pragma: no cover - the table ships with the package
        pass
    else:
        patches = tuple(apply_patches(document))
    return SpecDocument(
        document=document,
        api_version=api_version,
        sha256=sha256,
        origin=origin,
        problems=problems,
        patches=patches,
    )


_warned: set[str] = set()


def warn_if_invalid(spec: SpecDocument) -> None:
    """One SpecWarning per document and process when the document failed validation."""
    if spec.problems and spec.sha256 not in _warned:
        _warned.add(spec.sha256)
        warnings.warn(
            f"the OpenAPI document (API {spec.api_version}, from {spec.origin}) fails OpenAPI "
            f"validation and is bound anyway: {spec.problems}",
            SpecWarning,
            stacklevel=3,
        )


def sha256_of_mapping(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_from_bytes(
    content: bytes, *, origin: str, where: str, cache: SchemaCache, validate: bool = True
) -> SpecDocument:
    """Cache hit by content hash, else parse + validate + patch + store."""
    sha = hashlib.sha256(content).hexdigest()
    hit = cache.get_by_source(origin, sha)
    if hit is not None:
        return hit
    document = parse_text(content, where)
    return cache.put(prepare_document(document, origin=origin, sha256=sha, validate=validate))


def load_document(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    cache: SchemaCache,
    validate: bool = True,
) -> SpecDocument:
    """Load a document from a path or a mapping (no network; URLs go through the session)."""
    if isinstance(source, Mapping):
        sha = sha256_of_mapping(source)
        hit = cache.get_by_source("dict", sha)
        if hit is not None:
            spec = hit
        else:
            document = orjson.loads(orjson.dumps(source))  # a private deep copy
            spec = cache.put(
                prepare_document(document, origin="dict", sha256=sha, validate=validate)
            )
    else:
        path = Path(source)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise SpecError(f"cannot read the OpenAPI document {str(path)!r}: {exc}") from None
        spec = load_from_bytes(
            content, origin="file", where=str(path), cache=cache, validate=validate
        )
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
) -> SpecDocument:
    """Load from a URL, or automatically for ``endpoint`` at ``api_version``.

    ``fetch(url) -> bytes`` does the I/O (the session's HTTP client), so this stays
    testable; parsing and validation of a new document run in ``to_thread``.
    """
    if url is None:
        if endpoint is None:
            raise SpecError("either a document URL or the endpoint is needed")
        origin = endpoint
        if api_version is not None:
            hit = cache.get_by_version(origin, api_version)
            if hit is not None:
                warn_if_invalid(hit)
                return hit
        url = document_url_for(endpoint)
    else:
        origin = url
    content = await fetch(url)
    sha = hashlib.sha256(content).hexdigest()
    hit = cache.get_by_source(origin, sha)
    if hit is None:

        def build() -> SpecDocument:
            document = parse_text(content, url)
            spec = prepare_document(document, origin=origin, sha256=sha, validate=validate)
            if api_version is not None and spec.api_version != api_version:
                # file it under the version the server reports, so the next lookup hits
                spec = SpecDocument(
                    document=spec.document,
                    api_version=api_version,
                    sha256=spec.sha256,
                    origin=spec.origin,
                    problems=spec.problems,
                    patches=spec.patches,
                )
            return cache.put(spec)

        hit = await to_thread(build) if to_thread is not None else build()
    warn_if_invalid(hit)
    return hit
