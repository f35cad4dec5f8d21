"""The bulk-launch journal: an append-only JSON-lines write-ahead log.

Each item writes a ``started`` line before its launch request is sent, then one outcome
line (``launched`` / ``failed`` / ``uncertain``), each flushed (and optionally fsync'ed)
before the next step.  Reading it back gives, per key, the last word:

* ``launched``  - done; a rerun skips it (and reports its workflowId);
* ``failed``    - provably not launched (4xx, 429/503, connection refused); a rerun retries it;
* ``uncertain`` or a bare ``started`` - the request may have reached the server (a crash or
  Ctrl-C mid-request, a dropped connection): a rerun must not blindly relaunch it.

A torn last line (crash mid-write) is ignored.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["Journal", "JournalEntry"]

DONE = "launched"
UNCERTAIN = "uncertain"
FAILED = "failed"
STARTED = "started"


@dataclass(frozen=True)
class JournalEntry:
    key: str
    status: str  # launched | failed | uncertain | started
    workflow_id: str | None = None
    run_name: str | None = None
    error: str | None = None


class Journal:
    """Open with :meth:`open`; ``entries`` holds what earlier runs recorded (last per key)."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.entries: dict[str, JournalEntry] = {}
        self._fh: IO[bytes] | None = None

    def load(self) -> dict[str, JournalEntry]:
        self.entries = {}
        if not self.path.exists():
            return self.entries
        with self.path.open("rb") as fh:
            for raw in fh:
                try:
                    rec = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue  # a torn line from a crash mid-write
                if not isinstance(rec, dict) or not isinstance(rec.get("key"), str):
                    continue
                key = rec["key"]
                status = str(rec.get("status"))
                prev = self.entries.get(key)
                if prev is not None and prev.status == DONE:
                    continue  # never forget a launch
                self.entries[key] = JournalEntry(
                    key,
                    status,
                    rec.get("workflowId") or (prev.workflow_id if prev else None),
                    rec.get("runName"),
                    rec.get("error"),
                )
        return self.entries

    def open(self) -> Journal:
        self.load()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("ab")
        # a torn last line must not glue itself to the next record
        if fh.tell() > 0:
            with self.path.open("rb") as tail:
                tail.seek(-1, os.SEEK_END)
                if tail.read(1) != b"\n":
                    fh.write(b"\n")
        self._fh = fh
        return self

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()

    def record(
        self,
        key: str,
        status: str,
        *,
        workflow_id: str | None = None,
        run_name: str | None = None,
        error: str | None = None,
        **extra: Any,
    ) -> None:
        if self._fh is None:
            raise RuntimeError("journal is not open")
        rec: dict[str, Any] = {"key": key, "status": status, "at": round(time.time(), 3)}
        if workflow_id is not None:
            rec["workflowId"] = workflow_id
        if run_name is not None:
            rec["runName"] = run_name
        if error is not None:
            rec["error"] = error
        rec.update(extra)
        self._fh.write(orjson.dumps(rec) + b"\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.entries[key] = JournalEntry(key, status, workflow_id, run_name, error)

    def __enter__(self) -> Journal:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
