"""``Retry-After`` and the Platform's "Wait Nsecs" message, as seconds (pure, stdlib only).

Its own module so that :mod:`tower_async.errors` (``RateLimited.retry_after``) and
:mod:`tower_async.retries` both use it without importing each other.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
import time
from collections.abc import Mapping

from ._wire import header

__all__ = ["parse_retry_after"]

_WAIT_MESSAGE = re.compile(rb"wait\s+(\d+(?:\.\d+)?)\s*s(?:ec|econd)?s?\b", re.IGNORECASE)


def parse_retry_after(
    headers: Mapping[str, str], body: bytes | None = b"", *, now: float | None = None
) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or an HTTP date, measured against
    the wall clock ``now``, default ``time.time()``), else from the Platform's "Maximum
    request rate exceeded. Wait Nsecs ..." message; ``None`` if neither says anything usable
    (garbage, a negative number, ``nan``, ``inf``).  A date in the past gives 0.
    """
    value = header(headers, "Retry-After")
    if value is not None:
        seconds = _retry_after_value(value.strip(), now)
        if seconds is not None:
            return seconds
    if body:
        match = _WAIT_MESSAGE.search(body[:4096])
        if match:
            seconds = float(match.group(1))
            return seconds if math.isfinite(seconds) else None
    return None


def _retry_after_value(text: str, now: float | None) -> float | None:
    if len(text) > 64:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=datetime.timezone.utc)
    try:
        delta = when.timestamp() - (time.time() if now is None else now)
    except (OverflowError, OSError, ValueError):
        return None
    return max(0.0, delta) if math.isfinite(delta) else None
