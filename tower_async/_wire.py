"""Small facts about wire values shared by the request builder, validation and retries.

A leaf module (no imports from the package), so any layer can use it without a loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

__all__ = ["header", "looks_like_files"]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """``headers[name]``, also found under its lower-case spelling (plain dicts are not
    case-insensitive; aiohttp's CIMultiDict finds it either way)."""
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def looks_like_files(body: Any) -> bool:
    """Whether a request body is a mapping holding file-like content (bytes, a path, a
    ``(filename, content[, type])`` tuple or an object with ``read``): a multipart upload."""
    if not isinstance(body, Mapping):
        return False
    return any(
        isinstance(v, (bytes, bytearray, PurePath, tuple)) or hasattr(v, "read")
        for v in body.values()
    )
