"""Launch a spec, new or a relaunch: the one place that knows both kinds.

:func:`prepare_launch` picks :func:`.launch.prepare_new_launch` or
:func:`.relaunch.prepare_relaunch` (``LaunchSpec.relaunch_of``); :func:`launch` prepares and
sends one.  :mod:`.bulk` uses :func:`prepare_launch` for every item, so that neither
:mod:`.launch` nor :mod:`.relaunch` depends on the other's caller (no import loop).
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from .launch import LaunchSpec, prepare_new_launch, send_launch
from .relaunch import prepare_relaunch

if TYPE_CHECKING:
    from ..abc import SessionLike

__all__ = ["launch", "prepare_launch"]


async def prepare_launch(tw: SessionLike, spec: LaunchSpec) -> tuple[int | None, dict[str, Any]]:
    """The workspace id and the ``{"launch": ...}`` body for ``spec`` (resolutions cached)."""
    if spec.relaunch_of is not None:
        return await prepare_relaunch(tw, spec)
    return await prepare_new_launch(tw, spec)


async def launch(tw: SessionLike, spec: LaunchSpec | str | int, **overrides: Any) -> str:
    """Launch a pipeline by name; returns the new run's ``workflowId``.

    ``launch(tw, "nf-core/rnaseq", params={"input": ...}, run_name="s1", labels=["x"])``
    or ``launch(tw, LaunchSpec(...))``.  The request is never re-sent unless the server
    provably did not process it (see ``TransportError.may_have_been_processed``).
    """
    if not isinstance(spec, LaunchSpec):
        spec = LaunchSpec(pipeline=spec, **overrides)
    elif overrides:
        spec = LaunchSpec(**{**{f.name: getattr(spec, f.name) for f in fields(spec)}, **overrides})
    ws, body = await prepare_launch(tw, spec)
    return await send_launch(tw, ws, body)
