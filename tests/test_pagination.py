"""Paged listings against the fake Platform (issue 6): offset and token paging.

Edge cases the fake cannot produce (servers that do not advance, lie about totals, ignore
``max``) are in ``test_pagination_edges.py``; detection on the published documents in
``test_pagination_detect.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tower_async import Tower
from tower_async.pagination import ItemIterator, PageIterator, PaginationError
from tower_async.retries import ExponentialBackoff, RetryPolicy
from tower_async.testing import FakePlatform

from .test_ratelimit import max_in_window

PS = 10  # page size used throughout
COUNTS = [0, 1, PS - 1, PS, PS + 1, 3 * PS + 7]


def expected_pages(n: int, page_size: int = PS) -> int:
    """Pages a server with a total (or hasMore, or next token) needs for ``n`` items."""
    return max(1, -(-n // page_size))


@pytest.fixture
async def tw(fake: FakePlatform) -> AsyncIterator[Tower]:
    async with Tower(token=fake.token, endpoint=fake.url, rate_limit=None) as session:
        yield session


def new_workspace(fake: FakePlatform, name: str) -> int:
    return fake.state.add_workspace("my-org", name).id


async def collect(it: AsyncIterator[Any], bound: int = 10_000) -> list[Any]:
    out: list[Any] = []
    async for x in it:
        out.append(x)
        assert len(out) <= bound, "iteration did not stop"
    return out


# -- offset paging at page boundaries ----------------------------------------------------------


@pytest.mark.parametrize("n", COUNTS)
async def test_labels_by_total_size_exact_at_boundaries(
    fake: FakePlatform, tw: Tower, n: int
) -> None:
    ws = new_workspace(fake, f"labels{n}")
    made = [fake.state.add_label(ws, f"label-{i:03d}").id for i in range(n)]
    it = tw.list_labels.items(workspace_id=ws, page_size=PS)
    assert isinstance(it, ItemIterator)
    got = await collect(it)
    assert [lab["id"] for lab in got] == made
    assert it.pages_fetched == expected_pages(n)
    assert it.total == n and it.items_seen == n and it.done
    assert it.last_page["totalSize"] == n


@pytest.mark.parametrize("n", COUNTS)
async def test_workflows_by_has_more_exact_at_boundaries(
    fake: FakePlatform, tw: Tower, n: int
) -> None:
    ws = new_workspace(fake, f"runs{n}")
    ids = fake.state.add_workflows(ws, n)
    pages = tw.list_workflows.pages(workspace_id=ws, page_size=PS, attributes=["minimal"])
    assert isinstance(pages, PageIterator)
    sizes: list[int] = []
    seen: list[str] = []
    async for page in pages:
        sizes.append(len(page["workflows"]))
        seen.extend(w["workflow"]["id"] for w in page["workflows"])
        assert len(sizes) <= 10
    assert seen == list(reversed(ids))  # newest first, nothing skipped or repeated
    assert len(sizes) == expected_pages(n)
    assert all(s == PS for s in sizes[:-1])
    # includeTotalSize is not requested by default: no count, no total
    assert pages.total is None


async def test_workflow_total_on_request(fake: FakePlatform, tw: Tower) -> None:
    ws = new_workspace(fake, "counted")
    fake.state.add_workflows(ws, 23)
    it = tw.list_workflows.items(workspace_id=ws, page_size=PS, include_total_size=True)
    assert len(await collect(it)) == 23
    assert it.total == 23 and it.pages_fetched == 3


async def test_many_pages_and_plain_call_is_one_page(fake: FakePlatform, tw: Tower) -> None:
    ws = new_workspace(fake, "many")
    ids = fake.state.add_workflows(ws, 1234)
    got = await collect(tw.list_workflows.items(workspace_id=ws, attributes=["minimal"]))
    assert [w["workflow"]["id"] for w in got] == list(reversed(ids))
    one = await tw.list_workflows(workspace_id=ws, max=7)
    assert len(one["workflows"]) == 7 and one["hasMore"] is True
    # the caller's own ``max`` is the page size, and ``offset`` the starting point
    it = tw.list_workflows.items(workspace_id=ws, max=500, offset=1000)
    rest = await collect(it)
    assert [w["workflow"]["id"] for w in rest] == list(reversed(ids))[1000:]
    assert it.pages_fetched == 1


async def test_server_capped_page_is_not_the_last(fake: FakePlatform, tw: Tower) -> None:
    fake.state.tasks_per_run = 250
    ws = new_workspace(fake, "tasks")
    [wf] = fake.state.add_workflows(ws, 1, status="SUCCEEDED")
    pages = tw.list_workflow_tasks.pages(workflow_id=wf, workspace_id=ws, page_size=500)
    sizes = [len(p["tasks"]) for p in await collect(pages)]
    assert sizes == [100, 100, 50]  # the fake caps tasks at 100 per page, like the Platform
    assert pages.total == 250
    ids = [
        t["task"]["taskId"]
        for t in await collect(
            tw.list_workflow_tasks.items(workflow_id=wf, workspace_id=ws, page_size=500)
        )
    ]
    assert ids == list(range(1, 251))


# -- token paging -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", COUNTS)
async def test_data_link_tokens_exact_at_boundaries(fake: FakePlatform, tw: Tower, n: int) -> None:
    ws = new_workspace(fake, f"links{n}")
    link = fake.state.add_data_link(ws, f"bucket-{n}", {f"f{i:04d}.txt": i for i in range(n)})
    pages = tw.explore_data_link.pages(data_link_id=link.id, workspace_id=ws, page_size=PS)
    got = await collect(pages)
    names = [o["name"] for p in got for o in p["objects"]]
    assert names == [f"f{i:04d}.txt" for i in range(n)]
    assert pages.pages_fetched == expected_pages(n)
    assert pages.next_token is None and pages.done and pages.total is None


async def test_data_link_with_path_items_and_max_items(fake: FakePlatform, tw: Tower) -> None:
    ws = new_workspace(fake, "deep")
    link = fake.state.add_data_link(ws, "deep", {f"reads/r{i:03d}.fq": 1 for i in range(45)})
    it = tw.explore_data_link_with_path.items(
        data_link_id=link.id, path="reads", workspace_id=ws, page_size=PS
    )
    assert len(await collect(it)) == 45 and it.pages_fetched == 5
    it = tw.explore_data_link_with_path.items(
        data_link_id=link.id, path="reads", workspace_id=ws, page_size=PS, max_items=13
    )
    names = [o["name"] for o in await collect(it)]
    assert names == [f"r{i:03d}.fq" for i in range(13)]
    assert it.pages_fetched == 2 and len(it.last_page["objects"]) == 3  # asked for 3 only


# -- max_items ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_items", "sizes"),
    [
        (0, []),
        (1, [1]),
        (9, [9]),
        (10, [10]),
        (25, [10, 10, 5]),
        (57, [10] * 5 + [7]),
        (500, [10] * 5 + [7]),
    ],
)
async def test_max_items_shrinks_the_last_request(
    fake: FakePlatform, tw: Tower, max_items: int, sizes: list[int]
) -> None:
    ws = new_workspace(fake, f"cap{max_items}")
    ids = fake.state.add_workflows(ws, 57)
    pages = tw.list_workflows.pages(workspace_id=ws, page_size=PS, max_items=max_items)
    got = await collect(pages)
    assert [len(p["workflows"]) for p in got] == sizes
    flat = [w["workflow"]["id"] for p in got for w in p["workflows"]]
    assert flat == list(reversed(ids))[:max_items]
    assert pages.pages_fetched == len(sizes) and pages.items_seen == len(flat)


async def test_bad_options_raise_before_any_request(fake: FakePlatform, tw: Tower) -> None:
    with pytest.raises(ValueError, match="page_size"):
        tw.list_workflows.items(page_size=0)
    with pytest.raises(ValueError, match="max_items"):
        tw.list_workflows.items(max_items=-1)
    with pytest.raises(ValueError, match="disagree"):
        tw.list_workflows.items(page_size=10, max=20)
    with pytest.raises(PaginationError, match="ListComputeEnvs: not a paged operation"):
        tw.list_compute_envs.items()
    assert fake.stats().calls == 0


# -- early break, prefetch, no task left behind --------------------------------------------------


async def _other_tasks() -> set[asyncio.Task[Any]]:
    """Client-side tasks besides this one (the in-process fake's own handlers excluded)."""
    for _ in range(3):
        await asyncio.sleep(0)
    return {
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task()
        and not getattr(t.get_coro(), "__qualname__", "").startswith("RequestHandler.")
    }


@pytest.mark.parametrize("prefetch", [False, True])
async def test_early_break_releases_the_connection_at_once(
    fake: FakePlatform, prefetch: bool
) -> None:
    ws = new_workspace(fake, "brk")
    fake.state.add_workflows(ws, 100)
    # one connection only: if the break left a request holding it, the next call would wait
    connector = aiohttp.TCPConnector(limit=1)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        Tower(token=fake.token, endpoint=fake.url, rate_limit=None, session=http) as tw,
    ):
        first = await tw.list_workflows(workspace_id=ws, max=1)
        assert len(first["workflows"]) == 1
        seen = 0
        async for _ in tw.list_workflows.items(workspace_id=ws, page_size=PS, prefetch=prefetch):
            seen += 1
            if seen == 1:
                # from now on a request hangs 1.5 s: a prefetch in flight would hold the
                # only connection (and a task) well past the break
                fake.faults.add("ListWorkflows", "latency", delay=1.5)
                await asyncio.sleep(0.05)
            if seen == 3:
                break
        assert not await _other_tasks()
        info = await asyncio.wait_for(tw.user_info(), timeout=1.0)
        assert info["user"]["id"]


async def test_aclose_cancels_the_prefetch(fake: FakePlatform, tw: Tower) -> None:
    ws = new_workspace(fake, "aclose")
    fake.state.add_workflows(ws, 30)
    async with tw.list_workflows.items(workspace_id=ws, page_size=PS, prefetch=True) as it:
        first = await it.__anext__()
        assert first["workflow"]["id"]
        assert it._pending is not None  # the next page is on its way
    assert it._pending is None and it.done
    assert not await _other_tasks()
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()
    # contextlib.aclosing works the same way
    async with contextlib.aclosing(
        tw.list_workflows.pages(workspace_id=ws, page_size=PS, prefetch=True)
    ) as pages:
        async for _ in pages:
            break
    assert not await _other_tasks()


async def test_prefetch_overlaps_and_yields_the_same_items(fake: FakePlatform, tw: Tower) -> None:
    ws = new_workspace(fake, "pf")
    ids = fake.state.add_workflows(ws, 47)
    plain = [
        w["workflow"]["id"]
        for w in await collect(tw.list_workflows.items(workspace_id=ws, page_size=PS))
    ]
    before = fake.stats().accepted
    it = tw.list_workflows.items(workspace_id=ws, page_size=PS, prefetch=True)
    got: list[str] = []
    async for w in it:
        got.append(w["workflow"]["id"])
        if len(got) == 1:
            await asyncio.sleep(0.05)
            assert it._pending is not None and it._pending.done()  # page 2 arrived meanwhile
    assert got == plain == list(reversed(ids))
    assert it.pages_fetched == 5 and it._pending is None
    assert fake.stats().accepted - before == 5  # no extra request past the end


# -- totals changing during iteration ---------------------------------------------------------


async def test_total_grows_during_iteration(fake: FakePlatform, tw: Tower) -> None:
    ws = new_workspace(fake, "grow")
    for i in range(35):
        fake.state.add_label(ws, f"a{i:03d}")
    it = tw.list_labels.items(workspace_id=ws, page_size=PS)
    got = []
    async for lab in it:
        got.append(lab["name"])
        if len(got) == 1:
            for i in range(10):  # appended after the cursor: followed
                fake.state.add_label(ws, f"b{i:03d}")
        assert len(got) <= 100
    assert len(got) == 45 and len(set(got)) == 45
    assert it.total == 45


async def test_total_shrinks_during_iteration(fake: FakePlatform, tw: Tower) -> None:
    ws = new_workspace(fake, "shrink")
    made = [fake.state.add_label(ws, f"a{i:03d}").id for i in range(35)]
    it = tw.list_labels.items(workspace_id=ws, page_size=PS)
    got = []
    async for lab in it:
        got.append(lab["id"])
        if len(got) == 1:
            for label_id in made[15:]:
                del fake.state.labels[label_id]
        assert len(got) <= 100
    assert got == made[:15]
    assert it.total == 15 and it.pages_fetched == 2


async def test_total_drops_to_zero_mid_way(fake: FakePlatform, tw: Tower) -> None:
    ws = new_workspace(fake, "vanish")
    made = [fake.state.add_label(ws, f"a{i:03d}").id for i in range(25)]
    it = tw.list_labels.pages(workspace_id=ws, page_size=PS)
    pages = []
    async for page in it:
        pages.append(page)
        for label_id in made:
            fake.state.labels.pop(label_id, None)
    assert len(pages) == 2 and pages[-1]["labels"] == [] and it.total == 0


# -- the same bucket and retries as any call -----------------------------------------------------


class CountingLimiter:
    def __init__(self) -> None:
        self.acquired = 0

    async def acquire(self) -> None:
        self.acquired += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_pages_use_the_limiter_and_retries(fake: FakePlatform) -> None:
    ws = new_workspace(fake, "retry")
    for i in range(42):
        fake.state.add_label(ws, f"l{i:03d}")
    limiter = CountingLimiter()
    retried: list[Any] = []
    policy = RetryPolicy(backoff=ExponentialBackoff(base=0.001, max_backoff=0.01))
    async with Tower(
        token=fake.token,
        endpoint=fake.url,
        limiter=limiter,  # type: ignore[arg-type]
        retry=policy,
        on_retry=retried.append,
    ) as tw:
        it = tw.list_labels.items(workspace_id=ws, page_size=PS)
        got = []
        async for lab in it:
            got.append(lab["name"])
            if len(got) == 15:
                fake.faults.burst("ListLabels", status=503, count=2)
        assert got == [f"l{i:03d}" for i in range(42)]
        assert len(retried) == 2
        assert limiter.acquired == it.pages_fetched + 2 == 7


async def test_real_rate_limit_paces_paging(release_times: list[float]) -> None:
    retried: list[int | None] = []
    async with FakePlatform(rate_limit=20) as fake:
        ws = fake.workspace_id("my-org", "production")
        fake.state.add_workflows(ws, 60)
        on_retry = lambda event: retried.append(event.status)  # noqa: E731
        async with Tower(token=fake.token, endpoint=fake.url, on_retry=on_retry) as tw:
            it = tw.list_workflows.items(workspace_id=ws, page_size=2, max_items=50)
            assert len(await collect(it)) == 50
        assert it.pages_fetched == 25
        stats = fake.stats()
    # the client's bucket kept every window under 20 (a 429 from arrival jitter on a loaded
    # host is retried, never surfaced)
    assert max_in_window(sorted(release_times), 1.0) <= 20 and len(release_times) >= 25
    assert retried == [429] * stats.rejected
