"""Bulk launches: bounded concurrency, streamed outcomes, a resumable, locked journal.

::

    specs = (LaunchSpec("nf-core/rnaseq", params={"input": row["fastq"]},
                        run_name=f"rnaseq-{row['sample']}") for row in csv.DictReader(fh))
    async with bulk_launch(tw, specs, journal="launches.jsonl") as outcomes:
        async for outcome in outcomes:
            print(outcome.key, outcome.status, outcome.workflow_id or outcome.error)

Every request goes through the session, hence through the token's shared rate-limit bucket;
``concurrency`` only bounds how many launches are in flight.  Inputs are pulled lazily
(a bounded queue sits between the input and the workers), so a million-row samplesheet
never sits in memory; what is kept per item is its journal key (and run name).

Leaving the ``async with`` block (the loop ends, ``break``, an exception, a cancellation)
stops launching at once: launches in flight are cancelled and journaled.  The plain
``async for outcome in bulk_launch(...)`` form works too; wrap it in
``contextlib.aclosing(...)`` to get the same on ``break``.  Without either, a ``break``
leaves at most ``concurrency`` launches to finish (outcomes are produced only as fast as
they are consumed), and none is started after them.

Nothing lost, nothing launched twice
------------------------------------
The journal (see :mod:`~tower_async.orchestration.journal`) gets ``started`` only after the
rate-limit bucket granted the request and right before it is written to the connection, so
an item cancelled or crashed before that point is *not sent* and a rerun launches it.  The
session never re-sends ``CreateWorkflowLaunch`` unless the server provably did not process
it.  Any failure after the request may have been written (a dropped connection, a 500/502/
504, a 2xx without a readable ``workflowId``, a crash or Ctrl-C mid-request, an unexpected
exception) makes the item *uncertain*, never ``failed``.  ``on_uncertain`` decides:

``"reconcile"`` (default)
    Look the run up by its ``runName`` (``GET /workflow?search=``, exact ``runName``) -
    within the run after ``reconcile_delay`` seconds, and on a rerun before anything else:
    found means launched (``reconciled=True``), not found means launch it again (at most
    ``relaunches`` times per run).  Needs a run name unique within the input: give every
    item one, or let ``run_names=`` derive one from the journal key.  An item that cannot
    be looked up stays ``uncertain`` (``unresolved``), in the outcome and the progress.
    The small risk left: a request the server is *still* processing when the lookup runs
    would be launched twice; ``reconcile_delay`` is there to cover it.
``"skip"``
    Report it (status ``uncertain``; on a rerun ``skipped`` with ``may_have_launched``) and
    never relaunch it.  No duplicates, but it may be missing: check it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ..errors import (
    ApiError,
    JournalError,
    LaunchResponseError,
    RequestValidationError,
    TowerError,
    TransportError,
)
from ..observe import bulk_span
from ._util import iter_offset_items
from .dispatch import prepare_launch
from .journal import (
    DONE,
    FAILED,
    NOT_SENT,
    STARTED,
    UNCERTAIN,
    ClaimLost,
    Journal,
    LaunchLedger,
)
from .launch import LaunchSpec, send_launch
from .resolve import resolve_workspace_id

if TYPE_CHECKING:
    from ..abc import SessionLike

__all__ = [
    "BulkLaunch",
    "BulkProgress",
    "LaunchOutcome",
    "bulk_launch",
    "classify_failure",
    "derive_run_name",
    "find_runs_named",
]

log = logging.getLogger("tower_async.orchestration")

OutcomeStatus = Literal["launched", "failed", "uncertain", "skipped"]
UncertainPolicy = Literal["skip", "reconcile"]
RunNames = str | Callable[[str], str]


@dataclass(frozen=True)
class LaunchOutcome:
    """What happened to one item of a bulk launch.

    ``status``: ``launched`` (``workflow_id`` set; ``reconciled`` when found by name),
    ``failed`` (provably not launched; ``error`` says why; a rerun retries it),
    ``uncertain`` (may have launched and could not be checked: see ``error``),
    ``skipped`` (an earlier run journaled it: launched, with ``workflow_id``, or in doubt
    and left alone under ``on_uncertain="skip"``, with ``may_have_launched``).
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

    @property
    def unresolved(self) -> bool:
        """May have launched, and nobody knows: check it by hand (or rerun to reconcile)."""
        return self.may_have_launched and self.workflow_id is None


@dataclass
class BulkProgress:
    """Counters passed to ``on_progress`` after every outcome."""

    total: int | None = None
    done: int = 0
    launched: int = 0
    failed: int = 0
    uncertain: int = 0
    skipped: int = 0
    unresolved: int = 0  # uncertain or skipped-as-uncertain: may have launched, unknown
    ok: int = 0  # outcomes with a run (launched now or by an earlier run)
    started_at: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def not_launched(self) -> int:
        """Outcomes without a run: failed, or unresolved."""
        return self.done - self.ok

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
        if outcome.unresolved:
            self.unresolved += 1
        if outcome.ok:
            self.ok += 1

    def summary(self) -> str:
        total = f"/{self.total}" if self.total is not None else ""
        text = (
            f"{self.done}{total} done: {self.launched} launched, {self.skipped} skipped, "
            f"{self.failed} failed, {self.uncertain} uncertain in {self.elapsed:.1f}s"
        )
        if self.unresolved:
            text += f"; {self.unresolved} may have launched and could not be checked"
        return text


def classify_failure(exc: BaseException, *, sent: bool = True) -> tuple[bool, str]:
    """``(may_have_launched, reason)`` for an exception raised by a launch request.

    ``sent=False``: the request never reached the connection, so nothing was launched.
    After it may have been written, only a library error that proves the server did not
    process it (a refused connection, 4xx, 429, 503) means "not launched".
    """
    reason = str(exc) if isinstance(exc, TowerError) else f"{type(exc).__name__}: {exc}"
    if not sent:
        return False, reason
    if isinstance(exc, TransportError | ApiError | LaunchResponseError):
        return exc.may_have_been_processed, reason
    return True, reason  # anything else after the send: the server may have acted on it


async def find_runs_named(
    tw: SessionLike, run_name: str, *, workspace: int | str | None = None, max_pages: int = 20
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


@dataclass
class _Item:
    index: int
    key: str
    spec: LaunchSpec
    findable: bool  # has a run name no earlier item of this input has
    doubt: bool = False  # may exist on the server (an earlier run or attempt sent it)
    sent: bool = False  # the current attempt's request may have been written

    def out(self, status: OutcomeStatus, **kw: Any) -> LaunchOutcome:
        return LaunchOutcome(self.index, self.key, self.spec, status, **kw)


class _Runner:
    """Launches one item: journal records, failure classification, reconciliation."""

    def __init__(
        self,
        ledger: LaunchLedger | None,
        on_uncertain: UncertainPolicy,
        reconcile_delay: float,
        relaunches: int,
    ) -> None:
        self.ledger = ledger
        self.on_uncertain = on_uncertain
        self.reconcile_delay = reconcile_delay
        self.relaunches = relaunches

    async def record(self, it: _Item, status: str, **kw: Any) -> None:
        if self.ledger is not None:
            await self.ledger.append(it.key, status, run_name=it.spec.run_name, **kw)

    def reconciling(self, it: _Item) -> bool:
        return self.on_uncertain == "reconcile" and it.findable

    async def launch_one(self, tw: SessionLike, it: _Item) -> LaunchOutcome:
        try:
            return await self._launch(tw, it)
        except asyncio.CancelledError:
            if it.sent:
                await self.record(it, UNCERTAIN, error="interrupted after the request was sent")
            elif not it.doubt:
                await self.record(it, NOT_SENT)
            raise

    async def lookup(self, tw: SessionLike, it: _Item, context: str) -> LaunchOutcome | None:
        """The outcome when the name lookup settles it (found, or cannot look), else None."""
        if not self.reconciling(it):
            return it.out("uncertain", may_have_launched=True, error=f"{context}; {_NO_NAME}")
        assert it.spec.run_name is not None
        try:
            ids = await find_runs_named(tw, it.spec.run_name, workspace=it.spec.workspace)
        except TowerError as exc:
            reason = f"{context}; cannot look it up by name: {exc}"
            await self.record(it, UNCERTAIN, error=reason)
            return it.out("uncertain", may_have_launched=True, error=reason)
        it.doubt = False
        if not ids:
            return None
        await self.record(it, DONE, workflow_id=ids[0], reconciled=True)
        return it.out("launched", workflow_id=ids[0], reconciled=True)

    async def _launch(self, tw: SessionLike, it: _Item) -> LaunchOutcome:
        if it.doubt:  # an earlier run may have launched it
            settled = await self.lookup(tw, it, "an earlier run may have launched it")
            if settled is not None:
                return settled
        try:
            ws, body = await prepare_launch(tw, it.spec)
        except (asyncio.CancelledError, JournalError):
            raise
        except Exception as exc:  # resolution or validation: nothing was sent
            _, reason = classify_failure(exc, sent=False)
            await self.record(it, FAILED, error=reason)
            return it.out("failed", error=reason)

        async def on_send() -> None:  # the bucket granted it; the request goes out next
            if not it.sent:  # (once per call: the session may retry what was not processed)
                await self.record(it, STARTED, durable=True)
                it.sent = it.doubt = True

        attempts = 1 + (self.relaunches if self.reconciling(it) else 0)
        reason = ""
        for attempt in range(1, attempts + 1):
            it.sent = False
            try:
                workflow_id = await send_launch(tw, ws, body, on_send=on_send)
            except (asyncio.CancelledError, JournalError):
                raise
            except ClaimLost as exc:  # a shared ledger gave the item to another worker
                return it.out("skipped", error=str(exc))
            except Exception as exc:
                maybe, reason = classify_failure(exc, sent=it.sent)
                it.sent = False
                if not maybe:
                    await self.record(it, FAILED, error=reason)
                    return it.out("failed", error=reason)
                if not self.reconciling(it):
                    if self.on_uncertain == "reconcile":
                        reason += f"; {_NO_NAME}"
                    break
                log.info(
                    "launch %s may have reached the server (%s); looking it up", it.key, reason
                )
                await tw.clock.sleep(self.reconcile_delay)
                settled = await self.lookup(tw, it, reason)
                if settled is not None:
                    return settled
                reason += f"; not found by name after {attempt} attempt(s)"
                continue  # provably not there: launch it again
            await self.record(it, DONE, workflow_id=workflow_id)
            return it.out("launched", workflow_id=workflow_id)
        await self.record(it, UNCERTAIN, error=reason)
        return it.out("uncertain", may_have_launched=True, error=reason)


_NO_NAME = "no run name unique in the input to look it up by (see run_names=)"
_END = object()


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


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", key).strip("-").lower() or "item"


def derive_run_name(run_names: RunNames, key: str) -> str:
    """The run name ``run_names`` gives the item with journal key ``key``.

    A template gets ``{key}`` (the key, reduced to letters, digits, ``-`` and ``_``) and
    ``{digest}`` (12 hex digits of its SHA-256); a callable gets the key.
    """
    if callable(run_names):
        return str(run_names(key))
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return run_names.format(key=_slug(key), digest=digest)


def _check_options(concurrency: int, on_uncertain: str, run_names: RunNames | None) -> None:
    problems: list[tuple[str, str]] = []
    if on_uncertain not in ("skip", "reconcile"):
        problems.append(("on_uncertain", f"must be 'reconcile' or 'skip', not {on_uncertain!r}"))
    if not isinstance(concurrency, int) or concurrency < 1:
        problems.append(("concurrency", f"must be an int >= 1, not {concurrency!r}"))
    if isinstance(run_names, str):
        try:
            derive_run_name(run_names, "k")
        except (KeyError, IndexError, ValueError) as exc:
            problems.append(
                ("run_names", f"bad template {run_names!r} ({exc!r}); use {{key}} and {{digest}}")
            )
    elif run_names is not None and not callable(run_names):
        problems.append(("run_names", "must be a template string or a callable"))
    if problems:
        raise RequestValidationError("bulk_launch", problems)


class BulkLaunch:
    """The running bulk launch: an async iterator of :class:`LaunchOutcome` and an async
    context manager whose exit (or :meth:`aclose`) stops launching at once.

    Made by :func:`bulk_launch`; nothing starts (and the journal is not opened) until
    it is entered or first iterated.  ``progress`` holds the counters so far.
    """

    def __init__(
        self,
        sessions: list[SessionLike],
        specs: Iterable[LaunchSpec] | AsyncIterable[LaunchSpec],
        *,
        concurrency: int,
        ledger: LaunchLedger | None,
        runner: _Runner,
        run_names: RunNames | None,
        on_progress: Callable[[BulkProgress], None] | None,
        progress_bar: bool | None,
        total: int | None,
    ) -> None:
        self._sessions = sessions
        self._specs = specs
        self._concurrency = concurrency
        self._ledger = ledger
        self._runner = runner
        self._run_names = run_names
        self._on_progress = on_progress
        self._progress_bar = progress_bar
        self.progress = BulkProgress(total=total)
        workers = concurrency * len(sessions)
        self._inbox: asyncio.Queue[_Item | None] = asyncio.Queue(workers * 2)
        # unbounded, but every outcome in it holds one of `workers` credits: outcomes are
        # made only as fast as they are consumed, so an abandoned loop stops launching
        self._outbox: asyncio.Queue[Any] = asyncio.Queue()
        self._credits = asyncio.Semaphore(workers)
        self._supervisor: asyncio.Task[None] | None = None
        self._owns_ledger = False
        self._closed = False
        self._bar: Any = None
        # tracing (tower_async.observe): one span per bulk launch, one event per item
        self._traced = contextlib.ExitStack()
        self._span: Any = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._supervisor else "new"
        return f"<BulkLaunch {state}: {self.progress.summary()}>"

    # -- lifecycle -----------------------------------------------------------------------

    async def _start(self) -> None:
        if self._supervisor is not None:
            return
        if self._ledger is not None and not self._ledger.is_open:
            await self._ledger.acquire()  # JournalLocked: another process has it
            self._owns_ledger = True
        self._bar = _make_bar(self.progress.total, self._progress_bar)
        self.progress.started_at = time.monotonic()
        workers = self._concurrency * len(self._sessions)
        span = self._traced.enter_context(
            bulk_span(self._sessions[0], workers, self.progress.total)
        )
        self._span = span
        with span.activate():  # the workers' launch spans nest under it
            self._supervisor = asyncio.create_task(self._supervise(), name="bulk-launch")

    async def __aenter__(self) -> BulkLaunch:
        if self._closed:
            raise TowerError("this bulk launch is closed; call bulk_launch() again")
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop: cancel the launches in flight (journaled), close a journal opened here."""
        if self._closed:
            return
        self._closed = True
        sup = self._supervisor
        interrupted = False
        try:
            if sup is not None and not sup.done():
                sup.cancel()
                while not sup.done():  # the workers journal what they were doing first
                    try:
                        await asyncio.wait([sup])
                    except asyncio.CancelledError:
                        interrupted = True
            if sup is not None and not sup.cancelled():
                sup.exception()  # retrieved (it was handed to the consumer already)
        finally:
            if self._bar is not None:
                self._bar.close()
            if self._owns_ledger and self._ledger is not None:
                await self._ledger.release()
            self._traced.close()
        if interrupted:
            raise asyncio.CancelledError

    # -- iteration -----------------------------------------------------------------------

    def __aiter__(self) -> BulkLaunch:
        return self

    async def __anext__(self) -> LaunchOutcome:
        if self._closed:
            raise StopAsyncIteration
        await self._start()
        try:
            item = await self._outbox.get()
        except BaseException:  # the consumer is cancelled: stop, like a generator would
            await self.aclose()
            raise
        if item is _END:
            await self.aclose()
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            await self.aclose()
            raise item
        self._credits.release()
        try:
            self._report(item)
        except BaseException:  # on_progress failed: stop, as a generator would
            await self.aclose()
            raise
        return item  # type: ignore[no-any-return]

    def _report(self, outcome: LaunchOutcome) -> None:
        progress = self.progress
        progress.add(outcome)
        if self._span is not None:
            self._span.item(outcome)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(
                ok=progress.ok,
                failed=progress.failed,
                unresolved=progress.unresolved,
                refresh=False,
            )
        if self._on_progress is not None:
            self._on_progress(progress)

    # -- the tasks -----------------------------------------------------------------------

    async def _supervise(self) -> None:
        tasks = [asyncio.create_task(self._feed(), name="bulk-launch-feed")]
        tasks += [
            asyncio.create_task(self._work(s), name=f"bulk-launch-worker-{i}")
            for s in self._sessions
            for i in range(self._concurrency)
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException as exc:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not isinstance(exc, asyncio.CancelledError):
                self._outbox.put_nowait(exc)
            raise
        self._outbox.put_nowait(_END)

    async def _emit(self, outcome: LaunchOutcome) -> None:
        await self._credits.acquire()
        self._outbox.put_nowait(outcome)

    async def _work(self, session: SessionLike) -> None:
        while True:
            item = await self._inbox.get()
            if item is None:
                return
            await self._credits.acquire()
            self._outbox.put_nowait(await self._runner.launch_one(session, item))

    async def _feed(self) -> None:
        counts: dict[str, int] = {}
        names: set[str] = set()
        index = 0
        specs = self._specs
        iterator = specs if isinstance(specs, AsyncIterable) else _aiter(specs)
        async for spec in iterator:
            if not isinstance(spec, LaunchSpec):
                raise RequestValidationError(
                    "bulk_launch",
                    [(f"specs[{index}]", f"expected a LaunchSpec, got {type(spec).__name__}")],
                )
            base = spec.journal_key
            n = counts[base] = counts.get(base, 0) + 1
            key = base if n == 1 else f"{base}#{n}"
            if not spec.run_name and self._run_names is not None:
                spec = dataclasses.replace(
                    spec, run_name=derive_run_name(self._run_names, key), key=key
                )
            findable = bool(spec.run_name) and spec.run_name not in names
            if spec.run_name:
                names.add(spec.run_name)
            await self._dispatch(_Item(index, key, spec, findable))
            index += 1
        for _ in range(self._concurrency * len(self._sessions)):
            await self._inbox.put(None)

    async def _dispatch(self, it: _Item) -> None:
        ledger = self._ledger
        entry = await ledger.lookup(it.key) if ledger is not None else None
        if entry is not None and entry.status == DONE:
            await self._emit(it.out("skipped", workflow_id=entry.workflow_id))
            return
        if entry is not None and entry.in_doubt:
            if self._runner.on_uncertain == "skip":
                error = f"an earlier run may have launched it ({entry.error or entry.status})"
                await self._emit(it.out("skipped", may_have_launched=True, error=error))
                return
            it.doubt = True
        if ledger is not None and not await ledger.claim(it.key):
            await self._emit(it.out("skipped", error="claimed by another process"))
            return
        await self._inbox.put(it)


async def _aiter(items: Iterable[LaunchSpec]) -> Any:
    for item in items:
        yield item


def _make_ledger(
    journal: str | os.PathLike[str] | LaunchLedger | None, fsync: bool
) -> LaunchLedger | None:
    """``journal=`` as a ledger: a Redis URL (shared by processes), or a local file."""
    if journal is None or isinstance(journal, LaunchLedger):
        return journal
    if isinstance(journal, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", journal):
        from .ledger_backends import ledger_from_url

        try:
            return ledger_from_url(journal)
        except ValueError as exc:
            raise RequestValidationError("bulk_launch", [("journal", str(exc))]) from None
    return Journal(journal, fsync=fsync)


def bulk_launch(
    tw: SessionLike | Sequence[SessionLike],
    specs: Iterable[LaunchSpec] | AsyncIterable[LaunchSpec],
    *,
    concurrency: int = 16,
    journal: str | os.PathLike[str] | LaunchLedger | None = None,
    fsync: bool = True,
    on_uncertain: UncertainPolicy = "reconcile",
    reconcile_delay: float = 1.0,
    relaunches: int = 3,
    run_names: RunNames | None = None,
    on_progress: Callable[[BulkProgress], None] | None = None,
    progress_bar: bool | None = False,
    total: int | None = None,
) -> BulkLaunch:
    """Launch every spec; yields one :class:`LaunchOutcome` per input item, as they finish.

    ``async with bulk_launch(tw, specs, journal="j.jsonl") as outcomes: async for o in
    outcomes: ...`` (or a plain ``async for``; see the module doc).  ``tw`` may be several
    sessions (one per access token): each gets ``concurrency`` workers pulling from the
    same input, so the launches spread over the tokens' buckets.  ``journal`` (a path, a
    :class:`Journal` or another :class:`LaunchLedger`; opened and locked here if not open,
    and then closed here) makes a rerun skip what is done and settle what is in doubt;
    ``fsync`` applies to a path.  ``journal="redis://host:6379/0?ledger=NAME"`` (or a
    :class:`~tower_async.orchestration.ledger_backends.RedisLaunchLedger`) is a ledger shared
    by every process and host that runs this launch: each item is launched by one of them
    (the others skip it), a crashed worker's items are reconciled by the others.
    ``on_uncertain``/``reconcile_delay``/``relaunches``: see
    the module doc.  ``run_names`` gives items without a run name one, from their journal
    key: a template (``"bulk-{digest}"``, ``"{key}"``) or a callable ``key -> name``.
    ``progress_bar=True`` shows a tqdm bar (extra ``progress``; ``None``: when a terminal).
    Bad options raise :class:`~tower_async.errors.RequestValidationError` here.
    """
    _check_options(concurrency, on_uncertain, run_names)
    sessions: list[SessionLike] = list(tw) if isinstance(tw, Sequence) else [tw]
    if not sessions:
        raise RequestValidationError("bulk_launch", [("tw", "no session given")])
    if total is None and isinstance(specs, Sequence):
        total = len(specs)
    ledger = _make_ledger(journal, fsync)
    return BulkLaunch(
        sessions,
        specs,
        concurrency=concurrency,
        ledger=ledger,
        runner=_Runner(ledger, on_uncertain, reconcile_delay, relaunches),
        run_names=run_names,
        on_progress=on_progress,
        progress_bar=progress_bar,
        total=total,
    )
