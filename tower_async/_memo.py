"""A small process-wide memo for pure, costly work on documents (parsing, validation).

Keys are content hashes, so an entry is never stale; it is bounded by entries and bytes
(least recently used out first) and safe from the worker threads that build documents.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedMemo(Generic[V]):
    """At most ``entries`` values of at most ``max_bytes`` in all (``size`` of each)."""

    def __init__(self, entries: int, max_bytes: int = 2**62) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self._values: dict[object, tuple[V, int]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: object) -> tuple[bool, V | None]:
        """``(True, value)`` when ``key`` is held (it becomes the most recent), else
        ``(False, None)``."""
        with self._lock:
            held = self._values.pop(key, None)
            if held is None:
                return False, None
            self._values[key] = held
            return True, held[0]

    def put(self, key: object, value: V, size: int = 0) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._values.pop(key, None)
            self._bytes += size - (old[1] if old else 0)
            self._values[key] = (value, size)
            while len(self._values) > self.entries or self._bytes > self.max_bytes:
                _, dropped = self._values.pop(next(iter(self._values)))  # the oldest
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._bytes = 0
