"""Run logs of the fake Platform: generated lines, how much is visible when, and pages.

A run's log is ``log_size`` bytes of ``LOG_LINE``-byte lines that become visible while the
run is RUNNING, then, once it finished, a closing line per status (``LOG_FOOTERS``).
"""

from __future__ import annotations

from collections.abc import Iterator

from .records import TERMINAL, Workflow

__all__ = [
    "LOG_DEFAULT_MAX_LENGTH",
    "LOG_FOOTERS",
    "LOG_LINE",
    "log_blocks",
    "log_entries",
    "log_footer",
    "log_length",
    "log_line",
    "log_page",
    "page_lines",
]

LOG_LINE = 100  # bytes per generated run log line, newline included
#: the closing line of a finished run's log, per status
LOG_FOOTERS: dict[str, bytes] = {
    "SUCCEEDED": b"Execution complete -- Goodbye\n",
    "FAILED": b"ERROR ~ Error executing process > 'MULTIQC' -- exit status (1)\n",
    "CANCELLED": b"WARN: Execution aborted by user\n",
}
#: ``maxLength`` when the client sends none (the fake's choice; the document gives no default)
LOG_DEFAULT_MAX_LENGTH = 64 * 1024
_LOG_CHUNK = 64 * 1024


def log_line(wf_id: str, i: int) -> bytes:
    """Line ``i`` of a run's log: ``LOG_LINE`` bytes, newline included."""
    head = f"Jan-01 00:{(i // 60) % 60:02d}:{i % 60:02d}.000 [Task monitor] INFO  nextflow - "
    text = f"{head}run {wf_id} log line {i:09d} "
    return (text + "." * (LOG_LINE - 1 - len(text)) + "\n").encode()


def log_length(wf: Workflow, now: float, log_size: int) -> int:
    """Bytes of run log body visible at ``now`` (without the closing line).

    Grows while RUNNING, where the last line can still be partly written; once the run
    is terminal the body is whole lines (the line being written is completed), so the
    closing line of :func:`log_footer` starts a line of its own.
    """
    status = wf.status_at(now)
    if status == "SUBMITTED":
        return 0
    finished = status in ("SUCCEEDED", "FAILED")
    visible = log_size if finished else int(log_size * wf.fraction_at(now))
    if status in TERMINAL:
        visible = -(-visible // LOG_LINE) * LOG_LINE
    return visible


def log_footer(wf: Workflow, now: float) -> bytes:
    """The closing line of a finished run's log (empty while the run is active)."""
    return LOG_FOOTERS.get(wf.status_at(now), b"")


def log_entries(
    wf: Workflow, now: float, log_size: int, start: int = 0, stop: int | None = None
) -> list[str]:
    """The complete lines ``[start:stop]`` of the run's log visible now, without endings.

    The same text as the download, split into lines; a partly written last line of an
    active run is left out until it is complete.
    """
    full = log_length(wf, now, log_size) // LOG_LINE
    footer = log_footer(wf, now)
    count = full + (1 if footer else 0)
    stop = count if stop is None else min(stop, count)
    lines = [log_line(wf.id, i)[:-1].decode() for i in range(start, min(stop, full))]
    if footer and start <= full < stop:
        lines.append(footer.rstrip(b"\n").decode())
    return lines


def log_blocks(wf: Workflow, now: float, log_size: int) -> Iterator[bytes]:
    """The download of the run's log visible at ``now``, in blocks of about 64 KiB (what
    is visible is decided by this call, not when the blocks are read)."""
    return _blocks(wf.id, log_length(wf, now, log_size), log_footer(wf, now))


def _blocks(wf_id: str, length: int, footer: bytes) -> Iterator[bytes]:
    lines_per_chunk = _LOG_CHUNK // LOG_LINE
    sent = 0
    i = 0
    while sent < length:
        block = b"".join(log_line(wf_id, n) for n in range(i, i + lines_per_chunk))
        i += lines_per_chunk
        block = block[: length - sent]
        yield block
        sent += len(block)
    if footer:
        yield footer


def log_page(lines: list[str], max_length: int) -> list[str]:
    """The first of ``lines`` that fit in ``max_length`` bytes counting one newline each,
    but at least one, so that a client always moves forward."""
    entries: list[str] = []
    used = 0
    for line in lines:
        size = len(line.encode()) + 1
        if entries and used + size > max_length:
            break
        used += size
        entries.append(line)
    return entries


def page_lines(max_length: int) -> int:
    """How many lines to read for a page of ``max_length`` bytes: one more than fit (lines
    are ``LOG_LINE`` bytes with their newline, the closing line is shorter), to know
    whether the page was cut."""
    return max(1, max_length // LOG_LINE) + 1
