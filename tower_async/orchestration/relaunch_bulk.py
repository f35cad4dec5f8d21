"""Relaunch every failed run of a bulk launch, as a bulk launch of its own.

::

    async for o in relaunch_failed(tw, "launches.jsonl", journal="relaunches.jsonl"):
        print(o.relaunch_of, "->", o.workflow_id, "resumed" if o.resumed else o.note)

Each run is relaunched as :func:`~tower_async.orchestration.relaunch.relaunch` does (resumed
from its cache by default); the bulk launch (:mod:`.bulk`) journals, bounds concurrency and
reconciles.  Its own module so that :mod:`.relaunch` (one run) does not depend on
:mod:`.bulk`, which depends on it through :func:`~.dispatch.prepare_launch`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, RequestValidationError
from ._util import listed_runs
from .bulk import BulkProgress, LaunchOutcome, UncertainPolicy, bulk_launch
from .journal import Journal
from .launch import LaunchSpec
from .relaunch import NotResumablePolicy, _take_plan, derive_run_name, relaunch_spec
from .resolve import resolve_workspace_id

if TYPE_CHECKING:
    from ..abc import SessionLike

__all__ = ["RelaunchOutcome", "relaunch_failed"]

log = logging.getLogger("tower_async.orchestration")


@dataclass(frozen=True)
class RelaunchOutcome:
    """One item of :func:`relaunch_failed`: the bulk-launch outcome of relaunching a run.

    ``resumed`` is None when this call did not prepare the relaunch (journaled by an
    earlier call, or refused before the launch was built: see ``error``).
    """

    relaunch_of: str
    original_status: str
    outcome: LaunchOutcome = field(repr=False)
    resumed: bool | None = None
    note: str | None = None

    @property
    def key(self) -> str:
        return self.outcome.key

    @property
    def status(self) -> str:
        return self.outcome.status

    @property
    def workflow_id(self) -> str | None:
        return self.outcome.workflow_id

    @property
    def error(self) -> str | None:
        return self.outcome.error

    @property
    def ok(self) -> bool:
        return self.outcome.ok


_NO_ID = object()
_LIST_THRESHOLD = 50  # more runs than this: their states come from the run listing
_STATUSES = frozenset({"SUBMITTED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"})
RunsInput = str | os.PathLike[str] | Journal | Iterable[Any]


def _run_ids(runs: RunsInput, problems: list[tuple[str, str]]) -> list[str]:
    """Unique workflow ids of a bulk-launch journal (path or Journal) or an iterable of ids
    (or of objects with a ``workflow_id``, such as launch outcomes)."""
    if isinstance(runs, str | os.PathLike | Journal):
        jr = runs if isinstance(runs, Journal) else Journal(runs)
        if not jr.path.is_file():
            problems.append(("journal_or_ids", f"no journal at {str(jr.path)!r}"))
            return []
        entries = list(jr.load().values())
        ids = [e.workflow_id for e in entries if e.workflow_id]
        if len(ids) < len(entries):
            log.warning(
                "%d of %d entries of %s have no run (never launched, or uncertain): skipped",
                len(entries) - len(ids),
                len(entries),
                jr.path,
            )
        return list(dict.fromkeys(ids))
    ids = []
    for item in runs:
        wid = item if isinstance(item, str) else getattr(item, "workflow_id", _NO_ID)
        if isinstance(wid, str) and wid:
            ids.append(wid)
        elif wid is not None:  # (an outcome without a run has workflow_id None: skipped)
            problems.append(("journal_or_ids", f"not a workflow id: {item!r}"))
            if len(problems) > 10:
                break
    return list(dict.fromkeys(ids))


def _wanted(statuses: str | Iterable[str], problems: list[tuple[str, str]]) -> frozenset[str]:
    items = [statuses] if isinstance(statuses, str) else list(statuses)
    wanted = frozenset(str(s).upper() for s in items)
    if not wanted or not wanted <= _STATUSES:
        problems.append(
            ("statuses", f"run statuses among {sorted(_STATUSES)}, got {sorted(map(str, items))}")
        )
    return wanted


async def _describe_many(
    tw: SessionLike, ids: Iterable[str], ws: int | None, concurrency: int
) -> AsyncIterator[tuple[str, dict[str, Any] | None]]:
    """``(id, run)`` for every id, ``concurrency`` descriptions at a time, as they come."""

    async def one(wid: str) -> tuple[str, dict[str, Any] | None]:
        try:
            data = await tw.call("DescribeWorkflow", workflow_id=wid, workspace_id=ws)
        except NotFound:
            return wid, None
        return wid, dict((data or {}).get("workflow") or {})

    source = iter(ids)
    pending: set[asyncio.Task[tuple[str, dict[str, Any] | None]]] = set()
    try:
        while True:
            for wid in source:
                pending.add(asyncio.create_task(one(wid)))
                if len(pending) >= concurrency:
                    break
            if not pending:
                return
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                yield task.result()
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _run_states(
    tw: SessionLike, ids: list[str], ws: int | None, concurrency: int
) -> AsyncIterator[tuple[str, dict[str, Any] | None]]:
    """``(id, run)`` for every id (``None``: not found), as they come.

    Many runs are read from the workspace's run listing (newest first, 100 a request,
    ``attributes=minimal``) until all were seen or the listing went well past them; the
    runs it did not show are described one by one.
    """
    if len(ids) > _LIST_THRESHOLD:
        budget = (2 + 2 * (len(ids) // 100)) * 100
        found: set[str] = set()
        async with aclosing(listed_runs(tw, ws, ids, budget)) as listing:
            async for wid, wf in listing:
                found.add(wid)
                yield wid, wf
        ids = [w for w in ids if w not in found]
    async for pair in _describe_many(tw, ids, ws, concurrency):
        yield pair


async def relaunch_failed(
    tw: SessionLike,
    journal_or_ids: RunsInput,
    *,
    statuses: str | Iterable[str] = ("FAILED",),
    resume: bool = True,
    on_not_resumable: NotResumablePolicy = "scratch",
    concurrency: int = 16,
    journal: str | os.PathLike[str] | Journal | None = None,
    on_uncertain: UncertainPolicy = "reconcile",
    reconcile_delay: float = 1.0,
    workspace: int | str | None = None,
    on_progress: Callable[[BulkProgress], None] | None = None,
    progress_bar: bool | None = False,
    **overrides: Any,
) -> AsyncIterator[RelaunchOutcome]:
    """Relaunch every run of a bulk launch whose last state is in ``statuses``.

    ``journal_or_ids``: a bulk-launch journal (path or :class:`Journal`, read only) or
    workflow ids (or launch outcomes).  The runs' states come from the workspace's run
    listing when there are many (100 a request), else from describing each (``concurrency``
    at a time), all through the session's bucket; the selected ones go through
    :func:`bulk_launch` as
    relaunch items (key ``relaunch:<workflow id>``, run name :func:`derive_run_name`), so
    ``journal`` (the relaunch's own, not the input) makes a rerun after a crash skip what
    was relaunched and reconcile what may have been.  Yields one :class:`RelaunchOutcome`
    per selected run, as they finish; ``overrides`` as for :func:`relaunch`.
    """
    template, wanted, ids = _checked_input(
        journal_or_ids,
        journal,
        statuses,
        concurrency,
        resume,
        on_not_resumable,
        workspace,
        overrides,
    )
    ws = await resolve_workspace_id(tw, workspace)
    original: dict[str, str] = {}  # selected run -> its status, until its outcome
    items = _failed_specs(tw, ids, ws, wanted, template, concurrency, original)
    outcomes = bulk_launch(
        tw,
        items,
        concurrency=concurrency,
        journal=journal,
        on_uncertain=on_uncertain,
        reconcile_delay=reconcile_delay,
        on_progress=on_progress,
        progress_bar=progress_bar,
    )
    async with aclosing(items), aclosing(outcomes):  # outcomes close first, then items
        async for outcome in outcomes:
            yield _relaunch_outcome(tw, outcome, original)


def _relaunch_outcome(
    tw: SessionLike, outcome: LaunchOutcome, original: dict[str, str]
) -> RelaunchOutcome:
    """The relaunch's outcome: which run it replaces, that run's status, resumed or not."""
    wid = outcome.spec.relaunch_of or ""
    plan = _take_plan(tw, wid)
    return RelaunchOutcome(
        wid,
        original.pop(wid, ""),
        outcome,
        plan.resumed if plan else None,
        plan.note if plan else None,
    )


def _same_file(a: str | os.PathLike[str] | Journal, b: str | os.PathLike[str] | Journal) -> bool:
    pa = a.path if isinstance(a, Journal) else Path(a)
    pb = b.path if isinstance(b, Journal) else Path(b)
    return pa.resolve() == pb.resolve()


def _checked_input(
    runs: RunsInput,
    journal: str | os.PathLike[str] | Journal | None,
    statuses: str | Iterable[str],
    concurrency: int,
    resume: bool,
    on_not_resumable: NotResumablePolicy,
    workspace: int | str | None,
    overrides: dict[str, Any],
) -> tuple[LaunchSpec, frozenset[str], list[str]]:
    """relaunch_failed's options checked at once: the spec template, statuses and run ids."""
    problems: list[tuple[str, str]] = []
    for name in ("run_name", "key"):
        if name in overrides:
            problems.append((name, "each relaunch is named and keyed after its run"))
            overrides.pop(name)
    wanted = _wanted(statuses, problems)
    if (
        journal is not None
        and isinstance(runs, str | os.PathLike | Journal)
        and _same_file(runs, journal)
    ):
        problems.append(("journal", "the relaunch journal must not be the journal it reads"))
    if concurrency < 1:
        problems.append(("concurrency", f"must be >= 1, got {concurrency}"))
    template = LaunchSpec("")
    try:
        template = relaunch_spec(
            "-", resume=resume, on_not_resumable=on_not_resumable, workspace=workspace, **overrides
        )
    except RequestValidationError as exc:
        problems.extend(exc.problems)
    ids = _run_ids(runs, problems)
    if problems:
        raise RequestValidationError("relaunch_failed", problems)
    return template, wanted, ids


async def _failed_specs(
    tw: SessionLike,
    ids: list[str],
    ws: int | None,
    wanted: frozenset[str],
    template: LaunchSpec,
    concurrency: int,
    original: dict[str, str],
) -> AsyncGenerator[LaunchSpec, None]:
    """A relaunch spec per run whose state is ``wanted``, as their descriptions come in."""
    async for wid, run in _run_states(tw, ids, ws, concurrency):
        if run is None:
            log.warning("run %s is not in workspace %s (deleted?): not relaunched", wid, ws)
            continue
        status = str(run.get("status") or "").upper()
        if status in wanted:
            original[wid] = status
            name = derive_run_name(run.get("runName"))
            yield replace(template, relaunch_of=wid, key=f"relaunch:{wid}", run_name=name)
