"""Following a run's log as it grows: an async iterator of lines.

Two ways, chosen by ``method``:

``"log"``       ``GET /workflow/{id}/log`` (``GetWorkflowLog``): a page of ``entries`` with a
                ``forwardToken`` passed back as ``next``; ``pending`` says more will come.
``"download"``  ``GET /workflow/{id}/download`` (``DownloadWorkflowLog``): the whole log file so
                far, streamed; each poll skips the bytes already seen (the log only grows).
``"auto"``      ``"log"`` when the bound document has ``GetWorkflowLog`` and the server
                answers it, else ``"download"``.

Either way the iterator ends once the run is terminal and the final log has been read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from ..errors import NotFound, ResponseValidationError
from ..sansio import StreamBody
from ._util import as_object
from .resolve import resolve_workspace_id
from .wait import TERMINAL, _Backoff, _describe

if TYPE_CHECKING:
    from ..abc import SessionLike

__all__ = ["follow_log"]

Method = Literal["auto", "log", "download"]


async def _status(tw: SessionLike, workflow_id: str, ws: int | None) -> str | None:
    raw = (await _describe(tw, workflow_id, ws)).get("status")
    return str(raw).upper() if raw is not None else None


async def _follow_download(
    tw: SessionLike, workflow_id: str, ws: int | None, pace: _Backoff
) -> AsyncIterator[str]:
    seen = 0  # bytes of complete lines already yielded
    while True:
        status = await _status(tw, workflow_id, ws)
        final = status in TERMINAL  # what is downloaded after this is the whole log
        body = await tw.call("DownloadWorkflowLog", workflow_id=workflow_id, workspace_id=ws)
        if not isinstance(body, StreamBody):
            raise ResponseValidationError(
                "DownloadWorkflowLog", 200, [("", "expected a streamed log file")], body
            )
        skip = seen
        buf = b""
        got = 0
        async for chunk in body.iter_chunked(65536):
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk = chunk[skip:]
                skip = 0
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                seen += len(line) + 1
                got += 1
                yield line.decode("utf-8", "replace").rstrip("\r")
        if final:
            if buf:
                yield buf.decode("utf-8", "replace").rstrip("\r")
            return
        await tw.clock.sleep(pace.next(got > 0))


async def _follow_api(
    tw: SessionLike, workflow_id: str, ws: int | None, pace: _Backoff, max_length: int | None
) -> AsyncIterator[str]:
    cursor: str | None = None
    while True:
        status = await _status(tw, workflow_id, ws)
        final = status in TERMINAL
        data = await tw.call(
            "GetWorkflowLog",
            workflow_id=workflow_id,
            workspace_id=ws,
            next=cursor,
            max_length=max_length,
        )
        data = as_object(data or {}, "GetWorkflowLog")
        page: Mapping[str, Any] = as_object(data.get("log") or {}, "GetWorkflowLog", "$.log")
        entries = page.get("entries") or []
        if not isinstance(entries, list):
            raise ResponseValidationError(
                "GetWorkflowLog", 200, [("$.log.entries", "expected an array")], data
            )
        for entry in entries:
            yield str(entry)
        token = page.get("forwardToken")
        cursor = token if isinstance(token, str) and token else cursor
        if final and not page.get("pending") and not entries:
            return
        if entries and page.get("truncated"):
            pace.next(True)  # more is there already (the page was cut): read on at once
        elif not entries:
            await tw.clock.sleep(pace.next(False))
        elif not final:
            await tw.clock.sleep(pace.next(True))


async def follow_log(
    tw: SessionLike,
    workflow_id: str,
    *,
    workspace: int | str | None = None,
    method: Method = "auto",
    poll_interval: float = 2.0,
    max_interval: float = 30.0,
    backoff: float = 1.5,
    max_length: int | None = 64 * 1024,
) -> AsyncIterator[str]:
    """Yield the run's log lines (without line endings) as the log grows, until it ends."""
    ws = await resolve_workspace_id(tw, workspace)
    pace = _Backoff(poll_interval, max_interval, backoff)
    if method == "auto":
        method = "log" if "GetWorkflowLog" in tw.operations else "download"
        if method == "log":
            # the run must exist (raises NotFound otherwise); then a 404 means no such route
            await _status(tw, workflow_id, ws)
            try:
                await tw.call(
                    "GetWorkflowLog", workflow_id=workflow_id, workspace_id=ws, max_length=1
                )
            except NotFound:
                method = "download"
    if method == "log":
        async for line in _follow_api(tw, workflow_id, ws, pace, max_length):
            yield line
    elif method == "download":
        async for line in _follow_download(tw, workflow_id, ws, pace):
            yield line
    else:
        raise ValueError("method must be 'auto', 'log' or 'download'")
