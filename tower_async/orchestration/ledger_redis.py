"""A launch ledger shared by processes and hosts, in Redis (``pip install 'tower-async[redis]'``).

The file journal (:mod:`tower_async.orchestration.journal`) is the single-host default.  When
several processes or hosts run one bulk launch over the same input, they share a
:class:`RedisLedger` so that each item is launched once between them::

    ledger = RedisLedger("redis://redis.internal:6379/0", "nightly-2024-06-01")
    # or RedisLedger.from_url("redis://redis.internal:6379/0?ledger=nightly-2024-06-01")
    await ledger.open()
    if await ledger.claim(key, owner=worker_id, ttl=30, run_name=run_name):
        async with ledger.holding(key, worker_id, ttl=30):   # heartbeat while in flight
            ... launch ...
        await ledger.record(key, "launched", workflow_id=wid, run_name=run_name)

Per ledger NAME, Redis holds (prefix ``tower-async:ledger:NAME``):

* ``:entries`` - a hash, item key -> JSON ``{status, workflowId, runName, error, owner}``: the
  last word per item, with the file journal's statuses (``started``, ``launched``,
  ``failed``, ``uncertain``);
* ``:claim:<key>`` - the lease of the worker launching that item (``SET NX PX``), kept alive
  by :meth:`RedisLedger.heartbeat` / :meth:`RedisLedger.holding`;
* ``:inflight`` - a set of the keys in ``started`` state, so finding crashed claims does not
  scan the whole ledger.

Every operation is one Lua script, atomic in Redis:

* :meth:`~RedisLedger.claim` succeeds for exactly one owner: for an item that is new or
  ``failed`` (provably not launched), and - with ``uncertain_ok=True`` - for an ``uncertain``
  one (to resolve it); never for ``launched``, ``started`` (someone holds it, or held it and
  crashed) or, by default, ``uncertain``;
* :meth:`~RedisLedger.record` writes an outcome and drops the lease; it never downgrades
  ``launched`` (a late ``failed``/``uncertain`` from a confused worker is ignored, and the
  first workflowId stays);
* :meth:`~RedisLedger.expire_claims` turns every ``started`` item whose lease expired (its
  worker died: SIGKILL, a lost host) into ``uncertain`` and returns those keys: the request
  may have reached the Platform, so they are resolved like the file journal's uncertain
  items - look the run name up, then ``record(... "launched")`` or relaunch after a
  ``claim(..., uncertain_ok=True)``.

Intended integration (for ``bulk_launch(..., journal="redis://host:6379/0?ledger=NAME")`` or a
ledger object; the journal backend protocol is being designed separately):

1. ``open()``; ``entries`` is the snapshot a worker plans from (``launched`` items are skipped
   and reported with their workflowId, as with the file journal);
2. per item: ``claim(key, owner, ttl, run_name=...)``; on ``False`` skip it (another worker
   has it); on ``True`` launch inside ``holding(...)`` and ``record`` the outcome -
   ``failed`` when provably not sent, ``uncertain`` when the answer was lost;
3. at the end (and periodically, e.g. every ``ttl``): ``expire_claims()``, then resolve the
   returned keys and every ``uncertain`` entry by run-name lookup under
   ``claim(..., uncertain_ok=True)``, so the survivors finish a crashed worker's items;
4. ``close()``.

A cancelled call raises ``CancelledError`` at once; the Redis command finishes in the
background (a claim may then be taken without the caller knowing: its lease expires after
``ttl`` and :meth:`~RedisLedger.expire_claims` reports it as uncertain).  Owners are
free-form strings (``f"{hostname}:{pid}:{uuid4().hex[:8]}"``).  Redis errors
raise :class:`LedgerUnavailable` naming the operation and the server (never a hang: every
call is bounded by ``timeout``).  The ledger stores item keys, run names and workflowIds,
never a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from ..errors import TowerError
from ..ratelimit_redis import check_redis_url, connect, redis_location, shielded
from .journal import JournalEntry

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["STATUSES", "LedgerEntry", "LedgerUnavailable", "RedisLedger"]

logger = logging.getLogger("tower_async.orchestration.ledger")

STATUSES = ("started", "launched", "failed", "uncertain", "not_sent")


class LedgerUnavailable(TowerError):
    """The Redis launch ledger could not be reached."""


@dataclass(frozen=True)
class LedgerEntry(JournalEntry):
    """The last word on one item: the file journal's entry (statuses ``started``,
    ``launched``, ``failed``, ``uncertain``) plus the owner that wrote it."""

    owner: str | None = None

    @classmethod
    def from_json(cls, key: str, raw: str) -> LedgerEntry:
        d = orjson.loads(raw)
        return cls(key, d["status"], d.get("workflowId"), d.get("runName"), d.get("error"),
                   d.get("owner"))  # fmt: skip


# KEYS: entries hash, claim key, inflight set.  ARGV: item key, owner, ttl ms, run name,
# uncertain_ok (0/1).  Returns 1 when the claim is taken, else 0.
_CLAIM = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local run = ARGV[4]
if raw then
  local e = cjson.decode(raw)
  local s = e.status
  if s == 'launched' or s == 'started' or (s == 'uncertain' and ARGV[5] ~= '1') then
    return 0
  end
  if run == '' and type(e.runName) == 'string' then run = e.runName end
end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 0 end
local entry = {status = 'started', owner = ARGV[2]}
if run ~= '' then entry.runName = run end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: entries hash, claim key, inflight set.  ARGV: item key, JSON of the new entry, status.
# Returns the JSON now stored (the old one when it was 'launched').
_RECORD = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw and cjson.decode(raw).status == 'launched' then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[1])
  return raw
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == 'started' then return ARGV[2] end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return ARGV[2]
"""

# KEYS: claim key.  ARGV: owner, ttl ms.  Returns 1 when the lease is still ours (extended).
_HEARTBEAT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: entries hash, inflight set.  ARGV: claim key prefix.  Marks 'started' items without a
# lease as 'uncertain'; returns their keys.
_EXPIRE = """
local out = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[1] .. key) == 0 then
    local raw = redis.call('HGET', KEYS[1], key)
    if raw then
      local e = cjson.decode(raw)
      if e.status == 'started' then
        e.status = 'uncertain'
        e.error = 'the worker that claimed it stopped before recording an outcome'
        redis.call('HSET', KEYS[1], key, cjson.encode(e))
        table.insert(out, key)
      end
    end
    redis.call('SREM', KEYS[2], key)
  end
end
return out
"""

# -- for bulk_launch (ledger_backends.RedisLaunchLedger) --------------------------------------

# KEYS: entries hash, claim key, inflight set.  ARGV: item key.  Returns {raw or false, held}:
# a 'started' item whose lease is gone becomes 'uncertain' first (as _EXPIRE does).
_INSPECT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {false, 0} end
local e = cjson.decode(raw)
if e.status ~= 'started' then return {raw, 0} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {raw, 1} end
e.status = 'uncertain'
e.error = 'the worker that claimed it stopped before recording an outcome'
raw = cjson.encode(e)
redis.call('HSET', KEYS[1], ARGV[1], raw)
redis.call('SREM', KEYS[3], ARGV[1])
return {raw, 0}
"""

# KEYS: entries hash, claim key, inflight set.  ARGV: item key, owner, ttl ms, entry JSON.
# The request is about to be sent: 1 when the lease is still the owner's and the item is not
# launched (the entry is rewritten and the lease renewed), else 0 (do not send).
_SENDING = """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw and cjson.decode(raw).status == 'launched' then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: entries hash, claim key, inflight set.  ARGV: item key, owner, entry JSON, status.
# An outcome from ``owner``: 'launched' always lands (unless launched already); any other
# status only while the owner holds the lease (or its lapsed lease was not taken by anyone).
# Returns the JSON now stored, or false.
_RESOLVE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local holder = redis.call('GET', KEYS[2])
local prev = raw and cjson.decode(raw)
if prev and prev.status == 'launched' then
  if holder == ARGV[2] then redis.call('DEL', KEYS[2]) end
  return raw
end
if ARGV[4] ~= 'launched' then
  if holder ~= ARGV[2] and not (holder == false and prev and prev.owner == ARGV[2]) then
    return raw
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if holder == ARGV[2] then redis.call('DEL', KEYS[2]) end
redis.call('SREM', KEYS[3], ARGV[1])
return ARGV[3]
"""

# KEYS: claim keys.  ARGV: owner, ttl ms.  Renews the owner's leases; returns the lost ones.
_BEAT_MANY = """
local lost = {}
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2])
  else
    table.insert(lost, k)
  end
end
return lost
"""


class RedisLedger:
    """A launch ledger in Redis shared by every process that opens the same ``url`` and
    ``name``; see the module docstring."""

    def __init__(
        self,
        url: str,
        name: str,
        *,
        timeout: float = 2.0,
        prefix: str = "tower-async:ledger:",
    ) -> None:
        check_redis_url(url, where="RedisLedger(url)")
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"RedisLedger(name): need a non-empty name without spaces: {name!r}")
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"RedisLedger(timeout) must be > 0 seconds, not {timeout!r}")
        self.url = url
        self.name = name
        self.location = redis_location(url)
        self._timeout = timeout
        self._base = f"{prefix}{name}"
        self._entries_key = f"{self._base}:entries"
        self._inflight_key = f"{self._base}:inflight"
        self._claim_prefix = f"{self._base}:claim:"
        self.entries: dict[str, LedgerEntry] = {}
        self._client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._pending: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisLedger:
        """``redis://host:6379/0?ledger=NAME`` (the other query options go to redis-py)."""
        check_redis_url(url, where="journal")
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        name = query.pop("ledger", "")
        if not name:
            raise ValueError("journal: a Redis ledger URL needs ?ledger=NAME")
        rest = urlunsplit(parts._replace(query=urlencode(query)))
        return cls(rest, name, **kwargs)

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self, *, load: bool = True) -> dict[str, LedgerEntry]:
        """Connect (on the running loop) and load :attr:`entries` (unless ``load=False``)."""
        if self._client is None:
            client = connect(self.url, self._timeout)
            self._scripts = {
                name: client.register_script(text)
                for name, text in (
                    ("claim", _CLAIM),
                    ("record", _RECORD),
                    ("heartbeat", _HEARTBEAT),
                    ("expire", _EXPIRE),
                    ("inspect", _INSPECT),
                    ("sending", _SENDING),
                    ("resolve", _RESOLVE),
                    ("beat_many", _BEAT_MANY),
                )
            }
            self._client = client
        return await self.refresh() if load else self.entries

    async def close(self) -> None:
        client, self._client = self._client, None
        if self._pending:  # calls abandoned by cancelled callers, bounded by the timeout
            await asyncio.wait(list(self._pending), timeout=self._timeout)
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> RedisLedger:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reading ---------------------------------------------------------------------------

    async def refresh(self) -> dict[str, LedgerEntry]:
        """Reload :attr:`entries` (a snapshot: other workers keep writing)."""
        raw: dict[str, str] = await self._run("read", self._need().hgetall(self._entries_key))
        self.entries = {k: LedgerEntry.from_json(k, v) for k, v in raw.items()}
        return self.entries

    async def get(self, key: str) -> LedgerEntry | None:
        raw = await self._run("read", self._need().hget(self._entries_key, key))
        return None if raw is None else LedgerEntry.from_json(key, raw)

    # -- writing ---------------------------------------------------------------------------

    async def claim(
        self,
        key: str,
        owner: str,
        ttl: float,
        *,
        run_name: str | None = None,
        uncertain_ok: bool = False,
    ) -> bool:
        """Take ``key`` for ``owner`` for ``ttl`` seconds (renew with :meth:`heartbeat`).
        True for exactly one of any number of concurrent callers."""
        _check_claim(key, owner, ttl)
        keys = [self._entries_key, self._claim_prefix + key, self._inflight_key]
        args = [key, owner, _ms(ttl), run_name or "", "1" if uncertain_ok else "0"]
        return bool(await self._script("claim", keys, args))

    async def heartbeat(self, key: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease on ``key`` to ``ttl`` seconds from now; False when the
        lease is gone (expired, or the item was recorded)."""
        _check_claim(key, owner, ttl)
        return bool(await self._script("heartbeat", [self._claim_prefix + key], [owner, _ms(ttl)]))

    @contextlib.asynccontextmanager
    async def holding(self, key: str, owner: str, ttl: float) -> AsyncIterator[None]:
        """Heartbeat ``owner``'s lease every ``ttl / 3`` seconds while the body runs."""
        _check_claim(key, owner, ttl)

        async def beat() -> None:
            while True:
                await asyncio.sleep(ttl / 3)
                with contextlib.suppress(LedgerUnavailable):  # the next beat may get through
                    if not await self.heartbeat(key, owner, ttl):
                        logger.warning(
                            "ledger %r: the claim of %r by %r expired while in flight; other "
                            "workers will treat it as uncertain",
                            self.name,
                            key,
                            owner,
                        )
                        return

        task = asyncio.get_running_loop().create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def record(
        self,
        key: str,
        status: str,
        *,
        workflow_id: str | None = None,
        run_name: str | None = None,
        error: str | None = None,
        owner: str | None = None,
    ) -> LedgerEntry:
        """Write the outcome of ``key`` (and drop its lease); returns what the ledger now
        holds - the earlier entry when it was already ``launched`` (never downgraded)."""
        if status not in STATUSES:
            raise ValueError(f"RedisLedger.record(status) must be one of {STATUSES}: {status!r}")
        if not key:
            raise ValueError("RedisLedger.record(key) must be a non-empty string")
        entry = {"status": status, "workflowId": workflow_id, "runName": run_name,
                 "error": error, "owner": owner}  # fmt: skip
        body = orjson.dumps({k: v for k, v in entry.items() if v is not None}).decode()
        keys = [self._entries_key, self._claim_prefix + key, self._inflight_key]
        stored = await self._script("record", keys, [key, body, status])
        result = LedgerEntry.from_json(key, stored)
        self.entries[key] = result
        return result

    async def expire_claims(self) -> list[str]:
        """Mark ``started`` items whose lease expired (their worker died) ``uncertain`` and
        return their keys (sorted), for resolution by run-name lookup."""
        keys = await self._script("expire", [self._entries_key, self._inflight_key],
                                  [self._claim_prefix])  # fmt: skip
        return sorted(keys)

    # -- fenced by the owner (bulk_launch) ---------------------------------------------------

    async def inspect(self, key: str) -> tuple[LedgerEntry | None, bool]:
        """``(entry, held)``: the last word on ``key`` and whether a live lease holds it; an
        item whose worker died (``started``, lease gone) is turned ``uncertain`` first."""
        keys = [self._entries_key, self._claim_prefix + key, self._inflight_key]
        raw, held = await self._script("inspect", keys, [key])
        entry = None if not raw else LedgerEntry.from_json(key, _text(raw))
        return entry, bool(held)

    async def mark_sending(
        self, key: str, owner: str, ttl: float, *, run_name: str | None = None
    ) -> bool:
        """Right before the launch request goes out: True (acknowledged by Redis) when
        ``owner`` still holds ``key`` and it is not launched, else False - do not send."""
        _check_claim(key, owner, ttl)
        body = _body({"status": "started", "runName": run_name, "owner": owner})
        keys = [self._entries_key, self._claim_prefix + key, self._inflight_key]
        return bool(await self._script("sending", keys, [key, owner, _ms(ttl), body]))

    async def resolve(
        self, key: str, status: str, owner: str, **fields: str | None
    ) -> LedgerEntry | None:
        """:meth:`record` fenced by the lease: a status other than ``launched`` lands only
        while ``owner`` holds ``key`` (or held it and nobody took it since).  Returns what
        the ledger now holds (None: nothing)."""
        if status not in STATUSES or status == "started":
            raise ValueError(f"RedisLedger.resolve(status) must be an outcome: {status!r}")
        _check_claim(key, owner, 1.0)
        body = _body({"status": status, "workflowId": fields.get("workflow_id"),
                      "runName": fields.get("run_name"), "error": fields.get("error"),
                      "owner": owner})  # fmt: skip
        keys = [self._entries_key, self._claim_prefix + key, self._inflight_key]
        stored = await self._script("resolve", keys, [key, owner, body, status])
        return None if not stored else LedgerEntry.from_json(key, _text(stored))

    async def heartbeat_many(self, keys: list[str], owner: str, ttl: float) -> list[str]:
        """Renew ``owner``'s leases on ``keys``; returns the keys whose lease was lost."""
        if not keys:
            return []
        _check_claim(keys[0], owner, ttl)
        claim_keys = [self._claim_prefix + k for k in keys]
        lost = await self._script("beat_many", claim_keys, [owner, _ms(ttl)])
        cut = len(self._claim_prefix)
        return [_text(k)[cut:] for k in lost]

    # -- plumbing --------------------------------------------------------------------------

    def _need(self) -> Redis:
        if self._client is None:
            raise LedgerUnavailable(f"ledger {self.name!r} at {self.location} is not open")
        return self._client

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        self._need()
        return await self._run(name, self._scripts[name](keys=keys, args=args))

    async def _run(self, operation: str, call: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return await shielded(call, self._pending)
        except (RedisError, OSError) as exc:
            raise LedgerUnavailable(
                f"ledger {self.name!r}: {operation} failed, Redis at {self.location} is "
                f"unavailable ({type(exc).__name__}: {exc})"
            ) from None

    def __repr__(self) -> str:
        state = "open" if self._client is not None else "closed"
        return f"<RedisLedger {self.name!r} at {self.location} {state}>"


def _body(entry: dict[str, str | None]) -> str:
    return orjson.dumps({k: v for k, v in entry.items() if v is not None}).decode()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _check_claim(key: str, owner: str, ttl: float) -> None:
    if not key or not owner:
        raise ValueError("RedisLedger: key and owner must be non-empty strings")
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"RedisLedger: ttl must be a finite number of seconds > 0, not {ttl!r}")
