"""The fake's ``unreadable`` 200 fault and the standalone server's ``--fault`` rules."""

from __future__ import annotations

import aiohttp
import pytest

from tower_async.testing import FakePlatform
from tower_async.testing.__main__ import parse_args
from tower_async.testing.faults import parse_fault


@pytest.mark.parametrize(
    ("variant", "body", "content_type"),
    [
        ("object", b"{}", "application/json"),
        ("array", b"[]", "application/json"),
        ("empty", b"", "application/json"),
        ("html", b"<html>", "text/html"),
    ],
)
async def test_unreadable_answers_200_after_processing(
    fake: FakePlatform, variant: str, body: bytes, content_type: str
) -> None:
    fake.faults.add("CreateWorkflowLaunch", "unreadable", variant=variant, count=1)
    ws = fake.workspace_id("my-org", "production")
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{fake.url}/workflow/launch?workspaceId={ws}",
            json=fake.launch_body(ws, run_name="u"),
            headers=fake.headers(),
        ) as resp,
    ):
        assert resp.status == 200 and resp.content_type == content_type
        assert (await resp.read()).startswith(body)
    assert len(fake.state.launches_named("u")) == 1  # processed all the same


def test_parse_fault_and_the_command_line() -> None:
    assert parse_fault("CreateWorkflowLaunch:latency:delay=0.5,when=after,probability=0.1") == {
        "route": "CreateWorkflowLaunch",
        "kind": "latency",
        "delay": 0.5,
        "when": "after",
        "probability": 0.1,
    }
    assert parse_fault("*:status:status=500,count=2") == {
        "route": "*",
        "kind": "status",
        "status": 500,
        "count": 2,
    }
    for bad in ("nokind", "X:explode", "X:latency:delay", "X:latency:delay=soon", "X:status:x=1"):
        with pytest.raises(ValueError, match="--fault"):
            parse_fault(bad)
    with pytest.raises(ValueError, match="variant"):
        parse_fault("X:unreadable:variant=xml")
    args = parse_args(["--fault", "CreateWorkflowLaunch:drop_after:probability=0.2"])
    assert args.fault == [
        {"route": "CreateWorkflowLaunch", "kind": "drop_after", "probability": 0.2}
    ]
    with pytest.raises(SystemExit):
        parse_args(["--fault", "X:explode"])
