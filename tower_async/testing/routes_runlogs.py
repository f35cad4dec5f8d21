"""Handlers of run logs: the download (streamed) and the paged ``GetWorkflowLog``."""

from __future__ import annotations

from aiohttp import web

from .pagetokens import decode_log_cursor, encode_log_cursor
from .records import TERMINAL, ApiFailure
from .routes_workflows import get_workflow
from .routing import AppInfo, Ctx, Result, q_int
from .runlogs import LOG_DEFAULT_MAX_LENGTH, log_blocks, log_page, page_lines

__all__ = ["h_download_log", "h_workflow_log"]


async def h_download_log(app: AppInfo, ctx: Ctx) -> Result:
    state = ctx.state
    wf = get_workflow(ctx)
    blocks = log_blocks(wf, state.clock.now(), state.log_size)
    file_name = ctx.query.get("fileName") or f"nf-{wf.id}.log"
    resp = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": "text/plain",
            "Content-Disposition": f'attachment; filename="{file_name}"',
        },
    )
    resp.enable_chunked_encoding()
    await resp.prepare(ctx.request)
    for block in blocks:
        await resp.write(block)
    await resp.write_eof()
    return resp


async def h_workflow_log(app: AppInfo, ctx: Ctx) -> Result:
    """``GetWorkflowLog``: a page of the run's log lines from the ``next`` cursor on.

    ``entries`` are complete lines (the download's text), at most ``maxLength`` bytes of
    them counting one newline each, but always at least one line when one is available, so
    a client always moves forward. ``forwardToken`` is the cursor after the page (also when
    the page is empty: pass it back to wait for more), ``rewindToken`` the cursor of the
    page itself; ``truncated`` says more lines are available right now; ``pending`` says
    the run is active, so the log will still grow.
    """
    state = ctx.state
    wf = get_workflow(ctx)
    token = ctx.query.get("next")
    start = decode_log_cursor(token) if token else 0
    max_length = q_int(ctx.query, "maxLength", LOG_DEFAULT_MAX_LENGTH)
    assert max_length is not None
    if max_length < 1:
        raise ApiFailure(400, "'maxLength' must be >= 1")
    status = state.status(wf)
    lines = state.log_entries(wf, start, start + page_lines(max_length))
    entries = log_page(lines, max_length)
    file_name = f"nf-{wf.id}.log"
    return {
        "log": {
            "entries": entries,
            "truncated": len(entries) < len(lines),
            "rewindToken": encode_log_cursor(start),
            "forwardToken": encode_log_cursor(start + len(entries)),
            "pending": status not in TERMINAL,
            "message": "Waiting for the run to start" if status == "SUBMITTED" else None,
            "downloads": [
                {"fileName": file_name, "displayText": "Nextflow log file", "saveName": file_name}
            ],
        }
    }
