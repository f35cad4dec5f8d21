"""Waiting for runs: one (``wait_for_run``) or many at once (``wait_for_runs``).

Run states: SUBMITTED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED; UNKNOWN (the Platform
lost track of the run) is terminal too and counts as a failure unless told otherwise.
A status the client does not know (newer server) is treated as still active.

Polling backs off from ``poll_interval`` by ``backoff`` up to ``max_interval`` while nothing
changes, and every request goes through the session's rate-limit bucket.  Waiting on many
runs reads their states from the workspace's run listing (100 per request) rather than one
request per run, and describes individually only runs the listing did not show.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import TowerError
from ._util import as_object, listed_runs
from .resolve import resolve_workspace_id

if TYPE_CHECKING:
    from ..abc import SessionLike
    from ..clock import Clock

__all__ = ["ACTIVE", "TERMINAL", "RunResult", "WaitTimeout", "wait_for_run", "wait_for_runs"]

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"})
ACTIVE = frozenset({"SUBMITTED", "RUNNING"})
_PAGE = 100  # runs per listing request


@dataclass(frozen=True)
class RunResult:
    """The state a wait ended on, and the run as last described."""

    workflow_id: str
    status: str
    workflow: dict[str, Any] = field(repr=False, default_factory=dict)
    unknown_is_failure: bool = True

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def failed(self) -> bool:
        return self.status in ("FAILED", "CANCELLED") or (
            self.status == "UNKNOWN" and self.unknown_is_failure
        )

    @property
    def run_name(self) -> str | None:
        name = self.workflow.get("runName")
        return str(name) if name is not None else None


class WaitTimeout(TowerError, TimeoutError):
    """The wait ran out of time; ``last`` maps each unfinished run to its last status."""

    def __init__(self, message: str, last: dict[str, str | None]) -> None:
        super().__init__(message)
        self.last = last


def _targets(until: str | Iterable[str] | None) -> frozenset[str]:
    if until is None:
        return TERMINAL
    if isinstance(until, str):
        return frozenset({until.upper()})
    return frozenset(s.upper() for s in until)


def _reached(status: str | None, targets: Collection[str]) -> bool:
    if status is None:
        return False
    if status in targets or status in TERMINAL:
        return True
    # a run never goes back: waiting for SUBMITTED is over once it is RUNNING
    return "SUBMITTED" in targets and status == "RUNNING"


class _Backoff:
    def __init__(self, first: float, ceiling: float, factor: float) -> None:
        if first <= 0 or ceiling <= 0 or factor < 1:
            raise ValueError("poll_interval and max_interval must be > 0 and backoff >= 1")
        self.first, self.ceiling, self.factor = first, max(first, ceiling), factor
        self.current = first

    def next(self, changed: bool) -> float:
        if changed:
            self.current = self.first
        wait = self.current
        self.current = min(self.ceiling, self.current * self.factor)
        return wait


async def _describe(tw: SessionLike, workflow_id: str, ws: int | None) -> dict[str, Any]:
    data = await tw.call("DescribeWorkflow", workflow_id=workflow_id, workspace_id=ws)
    data = as_object(data, "DescribeWorkflow")
    return dict(as_object(data.get("workflow") or {}, "DescribeWorkflow", "$.workflow"))


def _status_of(wf: Mapping[str, Any]) -> str | None:
    raw = wf.get("status")
    return str(raw).upper() if raw is not None else None


def _time_left(
    clock: Clock,
    deadline: float | None,
    wait: float,
    timeout: float | None,
    message: str,
    last: dict[str, Any],
) -> float:
    """``wait`` cut to what is left before ``deadline``; WaitTimeout once nothing is left."""
    if deadline is None:
        return wait
    remaining = deadline - clock.monotonic()
    if remaining <= 0:
        raise WaitTimeout(f"{message} after {timeout}s", last)
    return min(wait, remaining)


async def wait_for_run(
    tw: SessionLike,
    workflow_id: str,
    *,
    until: str | Iterable[str] | None = None,
    workspace: int | str | None = None,
    timeout: float | None = None,
    poll_interval: float = 5.0,
    max_interval: float = 60.0,
    backoff: float = 1.5,
    unknown_is_failure: bool = True,
    on_status: Callable[[str, str | None], None] | None = None,
) -> RunResult:
    """Poll ``DescribeWorkflow`` until the run reaches ``until`` (default: a terminal state).

    Raises :class:`WaitTimeout` after ``timeout`` seconds.  ``on_status(workflow_id, status)``
    is called on every change.  ``until="RUNNING"`` returns once it runs (or already ended).
    """
    targets = _targets(until)
    ws = await resolve_workspace_id(tw, workspace)
    deadline = None if timeout is None else tw.clock.monotonic() + timeout
    pace = _Backoff(poll_interval, max_interval, backoff)
    last: str | None = None
    while True:
        wf = await _describe(tw, workflow_id, ws)
        status = _status_of(wf)
        changed = status != last
        if changed and on_status is not None:
            on_status(workflow_id, status)
        last = status
        if _reached(status, targets):
            assert status is not None
            return RunResult(workflow_id, status, wf, unknown_is_failure)
        message = f"run {workflow_id} still {status}"
        wait = _time_left(
            tw.clock, deadline, pace.next(changed), timeout, message, {workflow_id: status}
        )
        await tw.clock.sleep(wait)


async def _list_states(
    tw: SessionLike, ws: int | None, pending: set[str], max_pages: int
) -> dict[str, dict[str, Any]]:
    """States of pending runs from the workspace's run listing (at most ``max_pages``)."""
    return {wid: wf async for wid, wf in listed_runs(tw, ws, pending, max_pages * _PAGE)}


async def _poll_round(
    tw: SessionLike,
    ws: int | None,
    pending: Collection[str],
    list_threshold: int,
    describe: Callable[[str], Awaitable[tuple[str, dict[str, Any]]]],
) -> dict[str, dict[str, Any]]:
    """The current state of every pending run: from the listing, else described one by one."""
    states: dict[str, dict[str, Any]] = {}
    if len(pending) > list_threshold:
        max_pages = 2 + 2 * (len(pending) // _PAGE)
        states = await _list_states(tw, ws, set(pending), max_pages)
    missing = [wid for wid in pending if wid not in states]
    for wid, wf in await asyncio.gather(*(describe(w) for w in missing)):
        states[wid] = wf
    return states


async def wait_for_runs(
    tw: SessionLike,
    workflow_ids: Iterable[str],
    *,
    until: str | Iterable[str] | None = None,
    workspace: int | str | None = None,
    timeout: float | None = None,
    poll_interval: float = 5.0,
    max_interval: float = 60.0,
    backoff: float = 1.5,
    unknown_is_failure: bool = True,
    concurrency: int = 8,
    list_threshold: int = 10,
    on_status: Callable[[str, str | None], None] | None = None,
) -> AsyncIterator[RunResult]:
    """Wait for many runs of one workspace; yield each :class:`RunResult` as it finishes.

    With more than ``list_threshold`` runs pending, a poll round reads the workspace's run
    listing (``GET /workflow``, 100 runs a request) and describes only the runs it did not
    show; otherwise it describes each run (``concurrency`` at a time).  Raises
    :class:`WaitTimeout` (``last`` = the unfinished runs) after ``timeout`` seconds, having
    yielded every run that finished before.
    """
    targets = _targets(until)
    ws = await resolve_workspace_id(tw, workspace)
    pending: dict[str, str | None] = dict.fromkeys(workflow_ids)
    deadline = None if timeout is None else tw.clock.monotonic() + timeout
    pace = _Backoff(poll_interval, max_interval, backoff)
    gate = asyncio.Semaphore(concurrency)

    async def describe(wid: str) -> tuple[str, dict[str, Any]]:
        async with gate:
            return wid, await _describe(tw, wid, ws)

    while pending:
        states = await _poll_round(tw, ws, pending, list_threshold, describe)
        changed = False
        for wid, wf in states.items():
            status = _status_of(wf)
            if status != pending[wid]:
                changed = True
                if on_status is not None:
                    on_status(wid, status)
                pending[wid] = status
            if _reached(status, targets):
                assert status is not None
                del pending[wid]
                yield RunResult(wid, status, wf, unknown_is_failure)
        if not pending:
            return
        message = f"{len(pending)} run(s) unfinished"
        wait = _time_left(tw.clock, deadline, pace.next(changed), timeout, message, dict(pending))
        await tw.clock.sleep(wait)
