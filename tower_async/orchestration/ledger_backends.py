"""Launch ledgers for :func:`~tower_async.orchestration.bulk_launch` beyond the local file.

:class:`RedisLaunchLedger` is the :class:`~tower_async.orchestration.journal.LaunchLedger` on
a :class:`~tower_async.orchestration.ledger_redis.RedisLedger` that several processes or hosts
share (``journal="redis://host:6379/0?ledger=NAME"``, optionally ``&lease=SECONDS``):

* ``acquire`` is not exclusive: every worker of the bulk launch opens the same ledger;
* ``lookup`` gives the last word on an item; one held by a live worker's lease comes back
  with status ``claimed`` (bulk_launch skips it: that worker launches it), one whose worker
  died (``started``, lease expired) comes back ``uncertain`` and is resolved like the file
  journal's uncertain items: looked up by run name, launched only if no run has that name;
* ``claim`` is the atomic per-item claim (a lease of ``lease`` seconds, renewed every
  ``lease / 3`` seconds for every item this worker holds, queued or in flight);
* ``append(..., "started", durable=True)`` is acknowledged by Redis before the launch
  request is sent, and only while this worker still holds the lease
  (else :class:`ClaimLost`: the request is not sent, the item is another worker's now);
* every other outcome is fenced by the lease too (``launched`` always lands); claims still
  held at ``release`` (queued items of a stopped launch) are given back as ``not_sent``,
  or ``uncertain`` when they may have been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .journal import IN_DOUBT, NOT_SENT, STARTED, UNCERTAIN, JournalEntry
from .journal import ClaimLost as ClaimLost
from .ledger_redis import LedgerUnavailable, RedisLedger

__all__ = ["CLAIMED", "ClaimLost", "RedisLaunchLedger", "ledger_from_url"]

log = logging.getLogger("tower_async.orchestration.ledger")

#: lookup status of an item a live worker holds: skip it
CLAIMED = "claimed"


class RedisLaunchLedger:
    """A :class:`~tower_async.orchestration.journal.LaunchLedger` shared through Redis."""

    def __init__(
        self, ledger: RedisLedger, *, lease: float = 30.0, owner: str | None = None
    ) -> None:
        if not (isinstance(lease, int | float) and lease > 0 and math.isfinite(lease)):
            raise ValueError(f"journal: lease must be a number of seconds > 0, not {lease!r}")
        self.ledger = ledger
        self.lease = float(lease)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._seen: dict[str, str | None] = {}  # key -> status lookup returned, until claimed
        self._held: dict[str, bool] = {}  # claimed and unresolved key -> may have been sent
        self._beat: asyncio.Task[None] | None = None
        self._open = False

    @classmethod
    def from_url(cls, url: str) -> RedisLaunchLedger:
        """``redis://host:6379/0?ledger=NAME&lease=SECONDS`` (lease default 30)."""
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        raw = query.pop("lease", "30")
        try:
            lease = float(raw)
        except ValueError:
            raise ValueError(f"journal: lease must be a number of seconds, not {raw!r}") from None
        rest = urlunsplit(parts._replace(query=urlencode(query)))
        return cls(RedisLedger.from_url(rest), lease=lease)

    def __repr__(self) -> str:
        return f"<RedisLaunchLedger {self.ledger!r} owner={self.owner!r} lease={self.lease:g}s>"

    @property
    def is_open(self) -> bool:
        return self._open

    async def acquire(self) -> None:
        await self.ledger.open(load=False)
        self._open = True
        self._beat = asyncio.get_running_loop().create_task(self._heartbeat())

    async def release(self) -> None:
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        try:
            for key, maybe_sent in list(self._held.items()):  # give the rest back
                with contextlib.suppress(LedgerUnavailable):  # else the lease lapses
                    await self._resolve(key, UNCERTAIN if maybe_sent else NOT_SENT)
        finally:
            self._held.clear()
            self._open = False
            await self.ledger.close()

    async def lookup(self, key: str) -> JournalEntry | None:
        found, held = await self.ledger.inspect(key)
        entry: JournalEntry | None = found
        if held and found is not None:
            entry = JournalEntry(key, CLAIMED, found.workflow_id, found.run_name, found.error)
        self._seen[key] = None if entry is None else entry.status
        return entry

    async def claim(self, key: str) -> bool:
        seen = self._seen.pop(key, None)
        if seen == CLAIMED:
            return False
        # an item in doubt is claimed only by one that saw it so (and reconciles it first)
        ok = await self.ledger.claim(key, self.owner, self.lease, uncertain_ok=seen in IN_DOUBT)
        if ok:
            self._held[key] = seen in IN_DOUBT
        return ok

    async def append(
        self,
        key: str,
        status: str,
        *,
        workflow_id: str | None = None,
        run_name: str | None = None,
        error: str | None = None,
        durable: bool = False,
        **extra: Any,
    ) -> None:
        if status == STARTED:
            if not await self.ledger.mark_sending(key, self.owner, self.lease, run_name=run_name):
                self._held.pop(key, None)
                raise ClaimLost(
                    f"ledger {self.ledger.name!r}: the claim on {key!r} lapsed before its "
                    "launch request was sent; not sent (another worker resolves it)"
                )
            self._held[key] = True
            return
        if status == NOT_SENT and self._held.get(key):
            status = UNCERTAIN  # a doubt is never dropped by a mere not_sent
        await self._resolve(key, status, workflow_id=workflow_id, run_name=run_name, error=error)

    async def _resolve(self, key: str, status: str, **fields: str | None) -> None:
        self._held.pop(key, None)
        await self.ledger.resolve(key, status, self.owner, **fields)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            keys = list(self._held)
            try:
                lost = await self.ledger.heartbeat_many(keys, self.owner, self.lease)
            except LedgerUnavailable as exc:  # the next beat may get through
                log.warning("%s: heartbeat failed: %s", self.ledger.name, exc)
                continue
            for key in lost:
                if self._held.pop(key, None) is not None:
                    log.warning(
                        "ledger %r: the claim on %r lapsed; other workers treat it as uncertain",
                        self.ledger.name,
                        key,
                    )


def ledger_from_url(url: str) -> RedisLaunchLedger:
    """The ledger a ``journal=`` URL names (``redis://``, ``rediss://``, ``unix://``)."""
    return RedisLaunchLedger.from_url(url)
