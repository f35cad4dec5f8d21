"""Bulk launches: bounded concurrency, streamed outcomes, a resumable journal.

::

    specs = (LaunchSpec("nf-core/rnaseq", params={"input": row["fastq"]},
                        run_name=f"rnaseq-{row['sample']}") for row in csv.DictReader(fh))
    async for outcome in bulk_launch(tw, specs, journal="launches.jsonl"):
        print(outcome.key, outcome.status, outcome.workflow_id or outcome.error)

Every request goes through the session, hence through the token's shared rate-limit bucket;
``concurrency`` only bounds how many launches are in flight.  Inputs are pulled lazily
(a bounded queue sits between the input and the workers), so a million-row samplesheet
never sits in memory; what is kept per item is its journal key.

Idempotency
-----------
The session never re-sends ``CreateWorkflowLaunch`` unless the server provably did not
process it.  A launch that failed in a way that may have reached the server (a dropped
connection after the request was written, a 500/502/504, a crash or Ctrl-C mid-request)
is *uncertain*.  ``on_uncertain`` decides what happens to it, in this run and on a rerun:

``"skip"`` (default)
    Report it (status ``uncertain``; on a rerun ``skipped`` with ``may_have_launched``) and
    never relaunch it.  No duplicates, but it may be missing: check it by hand.
``"reconcile"``
    Look the run up by its ``runName`` (``GET /workflow?search=``, exact ``runName``) after
    ``reconcile_delay`` seconds: found means launched (``reconciled=True``), not found means
    launch it again.  Needs a unique ``run_name`` per item (items without one stay
    uncertain).  The small risk left: a request the server is *still* processing when the
    lookup runs would be launched twice; ``reconcile_delay`` is there to cover it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ApiError, ResponseValidationError, TowerError, TransportError
from ..observe import bulk_span
from ._util import iter_offset_items
from .journal import DONE, FAILED, STARTED, UNCERTAIN, Journal
from .launch import LaunchSpec, prepare_launch
from .resolve import resolve_workspace_id

if TYPE_CHECKING:
    from ..session import Tower

__all__ = ["BulkProgress", "LaunchOutcome", "bulk_launch", "classify_failure", "find_runs_named"]

log = logging.getLogger("tower_async.orchestration")

OutcomeStatus = Literal["launched", "failed", "uncertain", "skipped"]
UncertainPolicy = Literal["skip", "reconcile"]


@dataclass(frozen=True)
class LaunchOutcome:
    """What happened to one item of a bulk launch.

    ``status``: ``launched`` (``workflow_id`` set), ``failed`` (provably not launched;
    ``error`` says why; a rerun retries it), ``uncertain`` (may have launched: see
    ``may_have_launched``/``error``), ``skipped`` (an earlier run journaled it: launched
    with ``workflow_id``, or uncertain and left alone under ``on_uncertain="skip"``).
    """

    index: int
    key: str
    spec: LaunchSpec = field(repr=False)
    status: OutcomeStatus
    workflow_id: str | None = None
    error: str | None = None
    may_have_launched: bool = False
    reconciled: bool = False

    @property
    def ok(self) -> bool:
        """True when the item has a run (launched now or by an earlier run)."""
        return self.workflow_id is not None


@dataclass
class BulkProgress:
    """Counters passed to ``on_progress`` after every outcome."""

    total: int | None = None
    done: int = 0
    launched: int = 0
    failed: int = 0
    uncertain: int = 0
    skipped: int = 0
    started_at: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    def add(self, outcome: LaunchOutcome) -> None:
        self.done += 1
        if outcome.status == "launched":
            self.launched += 1
        elif outcome.status == "failed":
            self.failed += 1
        elif outcome.status == "uncertain":
            self.uncertain += 1
        else:
            self.skipped += 1

    def summary(self) -> str:
        total = f"/{self.total}" if self.total is not None else ""
        return (
            f"{self.done}{total} done: {self.launched} launched, {self.failed} failed, "
            f"{self.uncertain} uncertain, {self.skipped} skipped in {self.elapsed:.1f}s"
        )


def classify_failure(exc: BaseException) -> tuple[bool, str]:
    """``(may_have_launched, reason)`` for an exception raised by a launch request."""
    if isinstance(exc, TransportError):
        return exc.may_have_been_processed, str(exc)
    if isinstance(exc, ApiError):
        # 4xx were refused; 503 (and 429) prove nothing was processed; 500/502/504 do not.
        return exc.status >= 500 and exc.status != 503, str(exc)
    return False, f"{type(exc).__name__}: {exc}"


async def find_runs_named(
    tw: Tower, run_name: str, *, workspace: int | str | None = None, max_pages: int = 20
) -> list[str]:
    """Ids of the runs whose ``runName`` is exactly ``run_name`` (newest first)."""
    ws = await resolve_workspace_id(tw, workspace)
    found: list[str] = []
    seen = 0
    async for item in iter_offset_items(
        tw, "ListWorkflows", "workflows", search=run_name, workspace_id=ws, attributes=["minimal"]
    ):
        wf = item.get("workflow") or {}
        if wf.get("runName") == run_name and wf.get("id"):
            found.append(str(wf["id"]))
        seen += 1
        if seen >= max_pages * 100:
            break
    return found


_END = object()


class _Runner:
    def __init__(
        self,
        journal: Journal | None,
        on_uncertain: UncertainPolicy,
        reconcile_delay: float,
        relaunches: int,
    ) -> None:
        self.relaunches = relaunches
        self.journal = journal
        self.on_uncertain = on_uncertain
        self.reconcile_delay = reconcile_delay

    def record(self, key: str, status: str, **kw: Any) -> None:
        if self.journal is not None:
            self.journal.record(key, status, **kw)

    async def reconcile(self, tw: Tower, spec: LaunchSpec) -> list[str] | None:
        """Runs named like ``spec`` (None when it has no run name to look up)."""
        if not spec.run_name:
            return None
        return await find_runs_named(tw, spec.run_name, workspace=spec.workspace)

    async def launch_one(
        self, tw: Tower, index: int, key: str, spec: LaunchSpec, check_first: bool
    ) -> LaunchOutcome:
        def out(status: OutcomeStatus, **kw: Any) -> LaunchOutcome:
            return LaunchOutcome(index, key, spec, status, **kw)

        if check_first:  # an earlier run may have launched it
            try:
                ids = await self.reconcile(tw, spec)
            except TowerError as exc:
                return out("skipped", may_have_launched=True, error=f"cannot reconcile: {exc}")
            if ids is None:
                return out(
                    "skipped",
                    may_have_launched=True,
                    error="an earlier run may have launched it; no runName to reconcile with",
                )
            if ids:
                self.record(key, DONE, workflow_id=ids[0], run_name=spec.run_name, reconciled=True)
                return out("launched", workflow_id=ids[0], reconciled=True)
        try:
            ws, body = await prepare_launch(tw, spec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # resolution or validation: nothing was sent
            self.record(key, FAILED, run_name=spec.run_name, error=str(exc))
            return out("failed", error=f"{type(exc).__name__}: {exc}")
        reconciling = self.on_uncertain == "reconcile" and bool(spec.run_name)
        attempts = 1 + (self.relaunches if reconciling else 0)
        reason = ""
        for attempt in range(attempts):
            self.record(key, STARTED, run_name=spec.run_name)
            try:
                result = await tw.call("CreateWorkflowLaunch", workspace_id=ws, body=body)
                workflow_id = str(result["workflowId"])
            except asyncio.CancelledError:
                raise
            except ResponseValidationError as exc:
                data = exc.data if isinstance(exc.data, dict) else {}
                if not (200 <= exc.status < 300 and data.get("workflowId")):
                    reason = str(exc)  # an answer we cannot read: the launch may exist
                    break
                workflow_id = str(data["workflowId"])
            except Exception as exc:
                maybe, reason = classify_failure(exc)
                if not maybe:
                    self.record(key, FAILED, run_name=spec.run_name, error=reason)
                    return out("failed", error=reason)
                if not reconciling:
                    break
                log.info("launch %s may have reached the server (%s); reconciling", key, reason)
                await asyncio.sleep(self.reconcile_delay)
                try:
                    ids = await self.reconcile(tw, spec)
                except TowerError as lookup_error:
                    reason += f"; reconciliation failed: {lookup_error}"
                    break
                if ids:
                    self.record(
                        key, DONE, workflow_id=ids[0], run_name=spec.run_name, reconciled=True
                    )
                    return out("launched", workflow_id=ids[0], reconciled=True)
                if attempt + 1 < attempts:
                    continue  # provably not there: launch it again
                reason += f"; still not launched after {attempts} attempts"
                break
            self.record(key, DONE, workflow_id=workflow_id, run_name=spec.run_name)
            return out("launched", workflow_id=workflow_id)
        self.record(key, UNCERTAIN, run_name=spec.run_name, error=reason)
        return out("uncertain", may_have_launched=True, error=reason)


def _make_bar(total: int | None, enabled: bool | None) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        log.warning("progress bar requested but tqdm is not installed (extra 'progress')")
        return None
    return tqdm(total=total, unit="launch", dynamic_ncols=True)


async def bulk_launch(
    tw: Tower | Sequence[Tower],
    specs: Iterable[LaunchSpec] | AsyncIterable[LaunchSpec],
    *,
    concurrency: int = 16,
    journal: str | os.PathLike[str] | Journal | None = None,
    on_uncertain: UncertainPolicy = "skip",
    reconcile_delay: float = 1.0,
    relaunches: int = 3,
    on_progress: Callable[[BulkProgress], None] | None = None,
    progress_bar: bool | None = False,
    total: int | None = None,
) -> AsyncIterator[LaunchOutcome]:
    """Launch every spec; yield one :class:`LaunchOutcome` per input item, as they finish.

    ``tw`` may be several sessions (one per access token): each gets ``concurrency``
    workers pulling from the same input, so the launches spread over the tokens' buckets.
    ``journal`` (a path) makes a rerun skip what is done; see the module doc for
    ``on_uncertain``; under ``"reconcile"`` an item is launched again at most ``relaunches``
    times, each time only after a lookup showed no run of that name.
    ``progress_bar=True`` shows a tqdm bar (extra ``progress``; ``None``: when a terminal).
    Breaking out of the loop cancels the launches in flight (journaled as uncertain).
    """
    if on_uncertain not in ("skip", "reconcile"):
        raise ValueError("on_uncertain must be 'skip' or 'reconcile'")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    sessions: list[Tower] = list(tw) if isinstance(tw, Sequence) else [tw]
    if not sessions:
        raise ValueError("no session given")
    if total is None and isinstance(specs, Sequence):
        total = len(specs)
    owned = journal is not None and not isinstance(journal, Journal)
    jr: Journal | None
    if journal is None:
        jr = None
    elif isinstance(journal, Journal):
        jr = journal
    else:
        jr = Journal(journal).open()
    runner = _Runner(jr, on_uncertain, reconcile_delay, relaunches)
    workers = concurrency * len(sessions)
    inbox: asyncio.Queue[tuple[int, str, LaunchSpec, bool] | None] = asyncio.Queue(workers * 2)
    outbox: asyncio.Queue[Any] = asyncio.Queue(workers * 4)
    progress = BulkProgress(total=total)
    bar = _make_bar(total, progress_bar)
    previous = dict(jr.entries) if jr is not None else {}

    async def feed() -> None:
        counts: dict[str, int] = {}
        index = 0

        async def one(spec: LaunchSpec) -> None:
            nonlocal index
            if not isinstance(spec, LaunchSpec):
                raise TypeError(f"bulk_launch expects LaunchSpec items, got {type(spec).__name__}")
            base = spec.journal_key
            n = counts[base] = counts.get(base, 0) + 1
            key = base if n == 1 else f"{base}#{n}"
            i = index
            index += 1
            entry = previous.get(key)
            if entry is None or entry.status == FAILED:
                await inbox.put((i, key, spec, False))
            elif entry.status == DONE:
                await outbox.put(
                    LaunchOutcome(i, key, spec, "skipped", workflow_id=entry.workflow_id)
                )
            elif on_uncertain == "reconcile" and n == 1:
                await inbox.put((i, key, spec, True))
            else:
                await outbox.put(
                    LaunchOutcome(
                        i,
                        key,
                        spec,
                        "skipped",
                        may_have_launched=True,
                        error="an earlier run may have launched it "
                        f"({entry.error or 'no outcome recorded'})",
                    )
                )

        if isinstance(specs, AsyncIterable):
            async for spec in specs:
                await one(spec)
        else:
            for spec in specs:
                await one(spec)
        for _ in range(workers):  # (on an error the supervisor cancels the workers)
            await inbox.put(None)

    async def work(session: Tower) -> None:
        while True:
            item = await inbox.get()
            if item is None:
                return
            index, key, spec, check_first = item
            await outbox.put(await runner.launch_one(session, index, key, spec, check_first))

    async def supervise() -> None:
        tasks = [asyncio.create_task(feed(), name="bulk-launch-feed")]
        tasks += [
            asyncio.create_task(work(s), name=f"bulk-launch-worker-{i}")
            for s in sessions
            for i in range(concurrency)
        ]
        try:
            for fut in asyncio.as_completed(tasks):
                await fut
        except BaseException as exc:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not isinstance(exc, asyncio.CancelledError):
                await outbox.put(exc)
            raise
        await outbox.put(_END)

    # tracing (tower_async.observe): one span per bulk launch, one event per item
    traced = contextlib.ExitStack()
    span = traced.enter_context(bulk_span(sessions[0], workers, total))
    with span.activate():  # the workers' launch spans nest under it
        supervisor = asyncio.create_task(supervise(), name="bulk-launch")
    try:
        while True:
            item = await outbox.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            progress.add(item)
            span.item(item)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    ok=progress.launched,
                    failed=progress.failed,
                    uncertain=progress.uncertain,
                    skipped=progress.skipped,
                    refresh=False,
                )
            if on_progress is not None:
                on_progress(progress)
            yield item
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await supervisor
        if bar is not None:
            bar.close()
        if owned and jr is not None:
            jr.close()
        traced.close()
