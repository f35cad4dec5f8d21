"""Opaque cursors of the fake Platform: data-link page tokens and run-log cursors.

Both are the URL-safe base64 of ``<prefix><non-negative int>`` without padding; a token
that does not decode to its own prefix and a number >= 0 is answered 400.
"""

from __future__ import annotations

import base64

from .records import ApiFailure

__all__ = ["decode_log_cursor", "decode_page_token", "encode_log_cursor", "encode_page_token"]

_PAGE = "o:"
_LOG_CURSOR = "line:"


def _encode(prefix: str, number: int) -> str:
    return base64.urlsafe_b64encode(f"{prefix}{number}".encode()).decode().rstrip("=")


def _decode(prefix: str, token: str) -> int:
    """The number in ``token``; ``ValueError`` (binascii and Unicode errors are ones too)
    when it is not ``prefix`` and an int >= 0."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    if not raw.startswith(prefix):
        raise ValueError(token)
    number = int(raw[len(prefix) :])
    if number < 0:
        raise ValueError(token)
    return number


def encode_page_token(offset: int) -> str:
    return _encode(_PAGE, offset)


def decode_page_token(token: str) -> int:
    try:
        return _decode(_PAGE, token)
    except ValueError as exc:
        raise ApiFailure(400, f"Invalid nextPageToken '{token}'") from exc


def encode_log_cursor(line: int) -> str:
    return _encode(_LOG_CURSOR, line)


def decode_log_cursor(token: str) -> int:
    try:
        return _decode(_LOG_CURSOR, token)
    except ValueError:
        raise ApiFailure(400, f"Invalid log cursor 'next': {token!r}") from None
