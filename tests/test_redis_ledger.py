"""The Redis launch ledger against a real redis-server: atomic claims (tasks and processes),
outcomes that never downgrade ``launched``, and crashed workers' claims found as uncertain."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tower_async.orchestration.ledger_redis import LedgerUnavailable, RedisLedger

from . import zygote
from .redis_server import free_port

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
async def ledger(redis_url: str) -> AsyncIterator[RedisLedger]:
    async with RedisLedger(redis_url, f"test-{secrets.token_hex(4)}") as led:
        yield led


async def test_each_key_is_claimed_by_exactly_one_of_many_tasks(ledger: RedisLedger) -> None:
    keys = [f"item-{i}" for i in range(40)]
    wins: list[tuple[str, str]] = []

    async def worker(owner: str) -> None:
        for key in keys:
            if await ledger.claim(key, owner, ttl=30):
                wins.append((key, owner))

    await asyncio.wait_for(asyncio.gather(*(worker(f"w{i}") for i in range(8))), timeout=60)
    assert sorted(k for k, _ in wins) == sorted(keys)  # every key once, none twice
    await ledger.refresh()
    assert {k: e.status for k, e in ledger.entries.items()} == dict.fromkeys(keys, "started")
    assert all(ledger.entries[k].owner == owner for k, owner in wins)


async def test_outcomes_and_what_can_be_claimed_again(ledger: RedisLedger) -> None:
    assert await ledger.claim("a", "w1", ttl=30, run_name="run-a")
    assert not await ledger.claim("a", "w2", ttl=30)  # held
    done = await ledger.record("a", "launched", workflow_id="wf1", run_name="run-a", owner="w1")
    assert (done.status, done.workflow_id) == ("launched", "wf1")
    # never downgraded, and the first workflowId stays
    late = await ledger.record("a", "uncertain", error="lost answer")
    assert (late.status, late.workflow_id) == ("launched", "wf1")
    assert (await ledger.record("a", "launched", workflow_id="wf2")).workflow_id == "wf1"
    assert not await ledger.claim("a", "w2", ttl=30)  # launched: never again
    # failed (provably not sent) may be retried; uncertain only to resolve it
    assert await ledger.claim("b", "w1", ttl=30)
    await ledger.record("b", "failed", error="403 Forbidden")
    assert await ledger.claim("b", "w2", ttl=30)
    await ledger.record("b", "uncertain", error="connection reset")
    assert not await ledger.claim("b", "w3", ttl=30)
    assert await ledger.claim("b", "w3", ttl=30, uncertain_ok=True)
    assert not await ledger.claim("b", "w4", ttl=30, uncertain_ok=True)  # one resolver
    entries = await ledger.refresh()
    assert entries["a"].status == "launched" and entries["b"].status == "started"


async def test_an_expired_claim_becomes_uncertain_and_a_heartbeat_keeps_one(
    ledger: RedisLedger,
) -> None:
    assert await ledger.claim("dies", "w1", ttl=0.2, run_name="run-dies")
    assert await ledger.claim("lives", "w2", ttl=0.3)
    async with ledger.holding("lives", "w2", ttl=0.3):
        await asyncio.sleep(0.8)  # > ttl: only the heartbeat keeps the lease
        assert await ledger.expire_claims() == ["dies"]
    entry = await ledger.get("dies")
    assert entry is not None and entry.status == "uncertain" and entry.run_name == "run-dies"
    assert await ledger.expire_claims() == []  # once
    assert not await ledger.claim("dies", "w3", ttl=30)
    assert await ledger.claim("dies", "w3", ttl=30, uncertain_ok=True)  # to resolve it
    assert (await ledger.get("dies")).run_name == "run-dies"  # type: ignore[union-attr]
    assert not await ledger.heartbeat("dies", "w1", ttl=1)  # w1's lease is gone


async def test_holding_warns_when_the_lease_is_lost(
    ledger: RedisLedger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tower_async.orchestration.ledger")
    assert await ledger.claim("k", "w1", ttl=0.3)
    async with ledger.holding("k", "w1", ttl=0.3):
        await ledger.record("k", "failed")  # the lease goes with the outcome
        await asyncio.sleep(0.35)  # beats every 0.1 s
    lost = [r.getMessage() for r in caplog.records if "expired while in flight" in r.getMessage()]
    assert len(lost) == 1 and "'k'" in lost[0] and "'w1'" in lost[0]


async def test_bad_arguments_and_unreachable_redis() -> None:
    with pytest.raises(ValueError, match="not a Redis URL"):
        RedisLedger("http://x", "n")
    with pytest.raises(ValueError, match="ledger=NAME"):
        RedisLedger.from_url("redis://127.0.0.1:6379/0")
    assert RedisLedger.from_url("redis://127.0.0.1:6379/0?ledger=nightly").name == "nightly"
    down = RedisLedger(f"redis://127.0.0.1:{free_port()}/0", "n", timeout=1)
    with pytest.raises(LedgerUnavailable, match=r"ledger 'n': read failed, Redis at 127\.0\.0\.1"):
        await asyncio.wait_for(down.open(), timeout=10)
    await down.close()
    with pytest.raises(LedgerUnavailable, match="not open"):
        await down.claim("k", "w", ttl=1)


async def spawn(url: str, name: str, owner: str, keys: int, hold: float) -> zygote.AsyncChild:
    return await zygote.create_subprocess_exec(
        sys.executable, "-m", "tests.ledger_children", url, name, owner, str(keys), str(hold),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=zygote.PIPE,
    )  # fmt: skip


async def test_three_processes_claim_each_key_exactly_once(
    redis_url: str, ledger: RedisLedger
) -> None:
    children = [await spawn(redis_url, ledger.name, f"p{i}", 60, 0.0) for i in range(3)]
    outs = await asyncio.wait_for(asyncio.gather(*(c.communicate() for c in children)), 120)
    assert [c.returncode for c in children] == [0, 0, 0]
    claimed = Counter(
        line.split()[1]
        for out, _ in outs
        for line in out.decode().splitlines()
        if line.startswith("claimed")
    )
    assert sorted(claimed) == [f"k{i:04d}" for i in range(60)] and set(claimed.values()) == {1}
    entries = await ledger.refresh()
    assert len(entries) == 60 and {e.status for e in entries.values()} == {"launched"}


async def test_a_killed_workers_claims_are_found_by_the_others(
    redis_url: str, ledger: RedisLedger
) -> None:
    victim = await spawn(redis_url, ledger.name, "victim", 30, 0.5)
    assert victim.stdout is not None
    seen = []
    for _ in range(3):  # let it launch two, and kill it while it holds the third (0.5 s)
        line = await asyncio.wait_for(victim.stdout.readline(), 30)
        seen.append(line.decode().split()[1])
    os.kill(victim.pid, signal.SIGKILL)
    await victim.wait()
    lapsed = time.monotonic() + 1.2  # the victim's lease (ttl 1 s) runs out without its heartbeat
    survivors = [await spawn(redis_url, ledger.name, f"s{i}", 30, 0.0) for i in range(2)]
    await asyncio.wait_for(asyncio.gather(*(c.communicate() for c in survivors)), 120)
    await asyncio.sleep(max(0.0, lapsed - time.monotonic()))
    lost = await ledger.expire_claims()
    assert len(lost) == 1 and lost[0] == seen[-1]  # the one it held when killed
    entries = await ledger.refresh()
    assert entries[lost[0]].status == "uncertain" and entries[lost[0]].run_name == f"run-{lost[0]}"
    assert all(e.status == "launched" for k, e in entries.items() if k != lost[0])
    assert len(entries) == 30
