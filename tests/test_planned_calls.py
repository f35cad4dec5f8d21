"""Planned calls (issue 17) on real HTTP: same wire request as the general path, retries
entered only on a non-success, strict checks every response, warn samples as documented."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tower_async import Tower
from tower_async.errors import ResponseValidationError, ServerError
from tower_async.retries import ExponentialBackoff, RetryEvent, RetryPolicy
from tower_async.validation import WARN_SAMPLE_AFTER, WARN_SAMPLE_EVERY, TowerValidationWarning

from .conftest import spec_path
from .loopback import TOKEN, Server, json_response, serve

GOOD = {"workflow": {"id": "w1", "status": "RUNNING"}, "workspaceId": 10}
BAD = {"workflow": {"id": "w1", "status": "RUNNING"}, "workspaceId": "ten"}


def session(server: Server, cache: Path, **options: Any) -> Tower:
    return Tower(
        spec=spec_path("1.181.0"),
        token=TOKEN,
        endpoint=server.url,
        cache_dir=cache,
        rate_limit=None,
        validate_document=False,
        **options,
    )


async def test_planned_and_general_calls_send_the_same_request(shared_cache_dir: Path) -> None:
    async with serve() as server, session(server, shared_cache_dir, workspace=10) as tw:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("describe_workflow", {"workflow_id": "4Bx1b1F7zvr1Cs"}),
            ("describe_workflow", {"workflow_id": "a b/c", "workspace_id": 3}),  # encoded
            ("list_workflows", {"max": 5, "offset": 0, "attributes": ["labels", "optimized"]}),
            ("list_workflows", {"search": "name&x=1", "workspace_id": None}),
            ("delete_workflow", {"workflow_id": "w1", "force": True}),
        ]
        for name, arguments in calls:
            await getattr(tw, name)(**arguments)  # planned: the session's options
            await getattr(tw, name)(**arguments, validation="warn")  # the general path
        assert len(server.seen) == 2 * len(calls)
        for op in ("DescribeWorkflow", "ListWorkflows", "DeleteWorkflow"):
            assert tw._facts[op].plan is not None  # the plain calls took the planned path
        for planned, general in zip(server.seen[::2], server.seen[1::2], strict=True):
            assert (planned.method, planned.path) == (general.method, general.path)
            assert planned.headers == general.headers
        assert server.seen[0].path == "/workflow/4Bx1b1F7zvr1Cs?workspaceId=10"
        assert server.seen[2].path == "/workflow/a%20b%2Fc?workspaceId=3"


async def test_a_planned_call_retries_only_after_a_failed_first_attempt(
    shared_cache_dir: Path,
) -> None:
    answers = [503, 503, 200, 200]

    async def flaky(request: web.Request) -> web.Response:
        status = answers.pop(0)
        return json_response(GOOD if status == 200 else {"message": "busy"}, status)

    retries: list[RetryEvent] = []
    policy = RetryPolicy(backoff=ExponentialBackoff(base=0.001, max_backoff=0.002))
    async with (
        serve(flaky) as server,
        session(server, shared_cache_dir, retry=policy, on_retry=retries.append) as tw,
    ):
        assert await tw.describe_workflow(workflow_id="w1") == GOOD
        assert [e.attempt for e in retries] == [1, 2]
        assert [e.status for e in retries] == [503, 503]
        assert await tw.describe_workflow(workflow_id="w1") == GOOD  # first attempt: no retry
        assert len(retries) == 2
        assert len(server.seen) == 4


async def test_a_planned_call_gives_up_like_the_general_path(shared_cache_dir: Path) -> None:
    async def down(request: web.Request) -> web.Response:
        return json_response({"message": "down"}, 503)

    policy = RetryPolicy(max_attempts=3, backoff=ExponentialBackoff(base=0.001, max_backoff=0.002))
    async with serve(down) as server, session(server, shared_cache_dir, retry=policy) as tw:
        with pytest.raises(ServerError) as planned:
            await tw.describe_workflow(workflow_id="w1")
        with pytest.raises(ServerError) as general:
            await tw.describe_workflow(workflow_id="w1", validation="warn")
        assert len(server.seen) == 6
        assert str(planned.value) == str(general.value)


async def test_strict_checks_every_planned_response(shared_cache_dir: Path) -> None:
    bodies = [GOOD] * (WARN_SAMPLE_AFTER + 5) + [BAD] * (2 * WARN_SAMPLE_EVERY)

    async def answer(request: web.Request) -> web.Response:
        return json_response(bodies.pop(0))

    async with (
        serve(answer) as server,
        session(server, shared_cache_dir, validation="strict") as tw,
    ):
        for _ in range(WARN_SAMPLE_AFTER + 5):
            await tw.describe_workflow(workflow_id="w1")
        for _ in range(2 * WARN_SAMPLE_EVERY):
            with pytest.raises(ResponseValidationError):
                await tw.describe_workflow(workflow_id="w1")


async def test_warn_reports_a_new_deviation_at_the_next_sample(shared_cache_dir: Path) -> None:
    bodies = [GOOD] * WARN_SAMPLE_AFTER + [BAD] * WARN_SAMPLE_EVERY

    async def answer(request: web.Request) -> web.Response:
        return json_response(bodies.pop(0))

    async with serve(answer) as server, session(server, shared_cache_dir) as tw:
        tw._require().validator.forget_reports()  # the document's validator is shared
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(WARN_SAMPLE_AFTER + WARN_SAMPLE_EVERY):
                await tw.describe_workflow(workflow_id="w1")
        reports = [w for w in caught if issubclass(w.category, TowerValidationWarning)]
        assert len(reports) == 1
        assert "workspaceId" in str(reports[0].message)
        assert not bodies
