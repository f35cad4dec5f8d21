"""bulk_launch on a shared Redis ledger: 3 processes over one input launch each item exactly
once (the standalone fake's run list by run name), also when one of them is SIGKILLed midway
and the others (rerun once its lease lapsed) finish its items."""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import zygote
from .test_bulk_kill import Fake, _env, _start_fake, wait_for_line
from .test_redis_limiter import JITTER_MARGIN

REPO = Path(__file__).resolve().parents[1]
CHILD = REPO / "tests" / "bulk_child.py"
ITEMS = 120
LEASE = 2.0
STRICT = 100  # the fake's per-token limit for the shared-limiter test (the value is not the point)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    yield from _start_fake()


@pytest.fixture(scope="module")
def strict_fake() -> Iterator[Fake]:
    """The fake at a strict STRICT calls/s per token (sliding 1 s window), like the Platform's
    20/s but quicker to run through."""
    yield from _start_fake("--rate-limit", str(STRICT))


def worker(
    fake: Fake,
    ledger: str,
    prefix: str,
    *,
    items: int = ITEMS,
    limiter: tuple[str, ...] = ("--rate", "300"),
    go: Path | None = None,
) -> zygote.Popen:
    cmd = [sys.executable, str(CHILD), "--url", fake.url, "--token", fake.token]
    cmd += ["--journal", ledger, "--prefix", prefix]
    cmd += ["--items", str(items), "--concurrency", "8", *limiter]
    cmd += ["--reconcile-delay", "0.1"]  # the fake processes a launch before it answers
    cmd += ["--go", str(go)] if go else []
    return zygote.Popen(cmd, stdout=zygote.PIPE, text=True, env=_env(), cwd=REPO)


def shared(redis_url: str, tag: str) -> tuple[str, str]:
    """A fresh run-name prefix and a ledger URL named after it, with a short lease."""
    prefix = f"{tag}{secrets.token_hex(3)}"
    return prefix, f"{redis_url}?ledger={prefix}&lease={LEASE}"


def finish(procs: list[zygote.Popen]) -> list[tuple[int, str]]:
    return [(p.wait(timeout=60), p.communicate(timeout=60)[0]) for p in procs]


def assert_exactly_once(fake: Fake, prefix: str) -> None:
    runs = fake.runs_named(f"{prefix}-")
    assert set(runs) == {f"{prefix}-{i:04d}" for i in range(ITEMS)}  # nothing lost
    assert set(runs.values()) == {1}, {n: c for n, c in runs.items() if c > 1}  # none twice


@pytest.mark.timeout(90)
def test_three_processes_launch_each_item_exactly_once(
    fake: Fake, redis_url: str, tmp_path: Path
) -> None:
    prefix, ledger = shared(redis_url, "rl")
    go = tmp_path / "go"
    procs = [worker(fake, ledger, prefix, go=go) for _ in range(3)]
    for proc in procs:  # all three start launching together
        wait_for_line(proc, "READY")
    go.touch()
    results = finish(procs)
    assert all("ERROR" not in out for _, out in results), results
    assert_exactly_once(fake, prefix)
    # the work was shared: each process launched some, and skipped the others' items
    launched = [out.count('"launched"') for _, out in results]
    assert all(launched), results


@pytest.mark.timeout(120)
def test_three_processes_at_the_strict_limit_share_the_token_and_the_ledger(
    strict_fake: Fake, redis_url: str
) -> None:
    """One token, three processes, the fake at a strict limit: the Redis limiter at that same
    rate keeps them under it (no 429) and the Redis ledger makes each item launched once."""
    items = 150
    prefix, ledger = shared(redis_url, "rs")
    # (a margin over a loaded host's arrival jitter: see test_redis_limiter.JITTER_MARGIN)
    shared_bucket = ("--rate", str(STRICT), "--limiter", f"{redis_url}?margin={JITTER_MARGIN}")
    procs = [
        worker(strict_fake, ledger, prefix, items=items, limiter=shared_bucket) for _ in range(3)
    ]
    results = finish(procs)
    # (a child exits 3 when it skipped items another one had claimed: expected here)
    assert all("ERROR" not in out and "RESULT" in out for _, out in results), results
    runs = strict_fake.runs_named(f"{prefix}-")
    assert set(runs) == {f"{prefix}-{i:04d}" for i in range(items)}
    assert set(runs.values()) == {1}
    assert all("THROTTLED 0" in out for _, out in results), results  # no 429 at all


@pytest.mark.timeout(90)
def test_a_killed_worker_s_items_are_resolved_by_the_others(fake: Fake, redis_url: str) -> None:
    prefix, ledger = shared(redis_url, "rk")
    victim = worker(fake, ledger, prefix)
    wait_for_line(victim, "FIRST")
    others = [worker(fake, ledger, prefix) for _ in range(2)]
    time.sleep(0.3)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    lapsed = time.monotonic() + LEASE + 0.3  # the victim's claims have expired by then
    results = finish(others)
    assert all("ERROR" not in out for _, out in results), results
    for _ in range(4):  # after the victim's lease lapsed, rerun until every item has a run
        if all(code == 0 for code, _ in results):
            break
        time.sleep(max(0.0, lapsed - time.monotonic()))  # (the reruns release theirs)
        results = finish([worker(fake, ledger, prefix) for _ in range(2)])
    assert all(code == 0 for code, _ in results), results
    assert_exactly_once(fake, prefix)


# -- the adapter against the real redis-server, in-process ------------------------------------


async def test_adapter_claims_skips_live_claims_and_settles_dead_ones(redis_url: str) -> None:
    from tower_async.orchestration.ledger_backends import ClaimLost, RedisLaunchLedger
    from tower_async.orchestration.ledger_redis import RedisLedger

    name = f"unit-{secrets.token_hex(4)}"
    a = RedisLaunchLedger(RedisLedger(redis_url, name), lease=0.4, owner="a")
    b = RedisLaunchLedger(RedisLedger(redis_url, name), lease=0.4, owner="b")
    await a.acquire()
    await b.acquire()  # not exclusive
    try:
        assert await a.lookup("k1") is None and await a.claim("k1")
        seen = await b.lookup("k1")
        assert seen is not None and seen.status == "claimed" and not await b.claim("k1")
        await a.append("k1", "started", run_name="r1", durable=True)
        await asyncio.sleep(0.8)  # a's heartbeat keeps the lease beyond `lease`
        held = await b.lookup("k1")
        assert held is not None and held.status == "claimed"
        await a.append("k1", "launched", workflow_id="wf1", run_name="r1")
        done = await b.lookup("k1")
        assert done is not None and (done.status, done.workflow_id) == ("launched", "wf1")
        assert not await b.claim("k1")
        # a worker that stops heartbeating (as if killed): its item turns uncertain
        assert await a.lookup("k2") is None and await a.claim("k2")
        a._held.clear()  # no more heartbeats for k2
        await asyncio.sleep(0.6)
        doubt = await b.lookup("k2")
        assert doubt is not None and doubt.in_doubt and await b.claim("k2")
        # a's lease is gone: it may not send, and its late outcome does not land
        with pytest.raises(ClaimLost, match="k2"):
            await a.append("k2", "started", run_name="r2", durable=True)
        await a.append("k2", "failed", error="late")
        entry, held2 = await b.ledger.inspect("k2")
        assert entry is not None and entry.status == "started" and entry.owner == "b" and held2
    finally:
        await a.release()
        await b.release()  # gives k2 back, still in doubt
    check = RedisLedger(redis_url, name)
    entries = await check.open()
    await check.close()
    assert entries["k2"].status == "uncertain"


def test_a_bad_ledger_url_is_refused_before_anything_is_sent() -> None:
    from tower_async import Tower
    from tower_async.errors import RequestValidationError
    from tower_async.orchestration import bulk_launch

    tw = Tower(token="t", endpoint="http://127.0.0.1:9")
    for url, word in [
        ("redis://127.0.0.1:6379/0", "ledger=NAME"),
        ("redis://127.0.0.1:6379/0?ledger=x&lease=soon", "lease"),
        ("redis://127.0.0.1:6379/0?ledger=x&lease=0", "lease"),
        ("http://example/0?ledger=x", "Redis URL"),
    ]:
        with pytest.raises(RequestValidationError, match=word):
            bulk_launch(tw, [], journal=url)
