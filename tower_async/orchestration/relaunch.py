"""Relaunch a run, resumed from its cache by default (every failed run of a bulk launch:
:mod:`.relaunch_bulk`).

::

    new_id = await relaunch(tw, "4Hd8Zr0mTlw3Nq")           # resumed, same settings

A relaunch reads the run (``GET /workflow/{id}``) and the launch it was started with
(``GET /workflow/{id}/launch``) and posts that launch again: every field kept unless
overridden.  Resuming sets ``resume: true``, the run's ``sessionId``, the launch's
``resumeDir`` as ``workDir``, its ``resumeCommitId`` as ``revision`` and the run's
``launchId`` as ``id``.  A launch without ``resumeCommitId`` (the run never reported a
commit) cannot be resumed: by default it is relaunched from scratch (its own revision and
work directory) with a warning, and the result says so (``resumed`` is False, ``note``);
``on_not_resumable="error"`` raises :class:`NotResumable` instead.  Changing the work
directory or the pipeline while resuming is refused before any request: the cache lives
in that directory and belongs to that pipeline.

The new run is named after the old one with a ``-rN`` suffix (``s1`` -> ``s1-r1`` ->
``s1-r2``): a resumed run joins the old run's session, where Nextflow refuses a name
already used, and a name per item is what lets a bulk relaunch reconcile after a crash.
The run's labels are carried over unless ``labels=`` is given.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from ..errors import RequestValidationError, TowerError
from .launch import LaunchSpec, _request_properties, build_launch_request
from .resolve import resolve_compute_env, resolve_labels, resolve_pipeline, resolve_workspace_id

if TYPE_CHECKING:
    from ..abc import SessionLike

__all__ = [
    "NotResumable",
    "RelaunchError",
    "RelaunchedRun",
    "build_relaunch_request",
    "derive_run_name",
    "prepare_relaunch",
    "relaunch",
    "relaunch_spec",
]

log = logging.getLogger("tower_async.orchestration")

NotResumablePolicy = Literal["scratch", "error"]
_OPERATION = "relaunch"
_PLANS = "tower_async.orchestration.relaunch"
_MAX_PLANS = 10_000  # relaunch notes kept per session until their outcome is read
#: fields of a run's launch that are about that run only, never posted again as they are
_RUN_ONLY = frozenset(
    {"id", "sessionId", "resume", "resumeDir", "resumeCommitId", "runName", "pipelineId"}
)
_SUFFIX = re.compile(r"^(?P<base>.+)-r(?P<n>\d+)$")


class RelaunchError(TowerError):
    """A run cannot be relaunched as asked; ``workflow_id`` names it."""

    def __init__(self, workflow_id: str, message: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(message)


class NotResumable(RelaunchError):
    """Resuming was required, but the run's launch has nothing to resume from."""


@dataclass(frozen=True)
class _Plan:
    resumed: bool
    note: str | None


class RelaunchedRun(str):
    """The new run's workflow id (a ``str``), and how it relates to the run it relaunches."""

    relaunch_of: str
    resumed: bool
    note: str | None

    def __new__(
        cls, workflow_id: str, *, relaunch_of: str, resumed: bool, note: str | None = None
    ) -> RelaunchedRun:
        self = super().__new__(cls, workflow_id)
        self.relaunch_of = relaunch_of
        self.resumed = resumed
        self.note = note
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_relaunched_run, (str(self), self.relaunch_of, self.resumed, self.note))


def _relaunched_run(wid: str, relaunch_of: str, resumed: bool, note: str | None) -> RelaunchedRun:
    return RelaunchedRun(wid, relaunch_of=relaunch_of, resumed=resumed, note=note)


def derive_run_name(run_name: str | None) -> str | None:
    """The name of a relaunch of a run named ``run_name``: ``s1`` -> ``s1-r1`` -> ``s1-r2``."""
    if not run_name:
        return None
    m = _SUFFIX.match(run_name)
    if m is None:
        return f"{run_name}-r1"
    return f"{m['base']}-r{int(m['n']) + 1}"


def _spec_fields() -> frozenset[str]:
    return frozenset(f.name for f in fields(LaunchSpec)) - {"relaunch_of", "resume", "pipeline"}


def relaunch_spec(
    workflow_id: str,
    *,
    resume: bool = True,
    on_not_resumable: NotResumablePolicy = "scratch",
    pipeline: str | int | None = None,
    **overrides: Any,
) -> LaunchSpec:
    """The :class:`LaunchSpec` of a relaunch (checked here: raises before any request).

    ``overrides`` are the fields of :class:`LaunchSpec` (``params``, ``run_name``,
    ``revision``, ``profiles``, ``compute_env``, ``work_dir``, ``labels``, ``workspace``...);
    the journal key defaults to ``relaunch:<workflow_id>``.
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(workflow_id, str) or not workflow_id.strip():
        problems.append(("workflow_id", f"a workflow id is needed, got {workflow_id!r}"))
    if on_not_resumable not in ("scratch", "error"):
        problems.append(("on_not_resumable", f"'scratch' or 'error', got {on_not_resumable!r}"))
    if not isinstance(resume, bool):
        problems.append(("resume", f"True or False, got {resume!r}"))
    unknown = sorted(set(overrides) - _spec_fields())
    for name in unknown:
        problems.append((name, "not a relaunch option"))
    if resume and overrides.get("work_dir") is not None:
        problems.append(
            (
                "work_dir",
                "cannot change the work directory when resuming (the cache is there); "
                "pass resume=False to relaunch from scratch into another work directory",
            )
        )
    if resume and pipeline is not None:
        problems.append(
            (
                "pipeline",
                "cannot change the pipeline when resuming (the cache belongs to the "
                "run's pipeline); pass resume=False to relaunch another pipeline from scratch",
            )
        )
    if problems:
        raise RequestValidationError(_OPERATION, problems)
    tri_state = (None if on_not_resumable == "scratch" else True) if resume else False
    overrides.setdefault("key", f"relaunch:{workflow_id}")
    return LaunchSpec(
        pipeline="" if pipeline is None else pipeline,
        relaunch_of=workflow_id,
        resume=tri_state,
        **overrides,
    )


def _check_spec(spec: LaunchSpec) -> str:
    """The run to relaunch, once ``spec`` is known not to combine resume and a move."""
    wid = spec.relaunch_of
    assert wid is not None
    problems = []
    if spec.resume is not False and spec.work_dir is not None:
        problems.append(("work_dir", "cannot change the work directory when resuming"))
    if spec.resume is not False and spec.pipeline not in ("", None):
        problems.append(("pipeline", "cannot change the pipeline when resuming"))
    if problems:
        raise RequestValidationError(_OPERATION, problems)
    return wid


def build_relaunch_request(
    launch: Mapping[str, Any],
    workflow: Mapping[str, Any],
    spec: LaunchSpec,
    *,
    compute_env_id: str,
    pipeline: str,
    label_ids: Sequence[int],
    allowed: frozenset[str] | None = None,
) -> tuple[dict[str, Any], bool, str | None]:
    """``(WorkflowLaunchRequest, resumed, note)`` relaunching ``workflow`` (pure).

    ``launch`` is the run's launch (``DescribeWorkflowLaunch``), ``workflow`` the run
    (``DescribeWorkflow``); ``spec`` overrides (see :func:`relaunch_spec`).
    """
    wid = str(workflow.get("id") or spec.relaunch_of)
    session_id = workflow.get("sessionId") or launch.get("sessionId")
    commit = launch.get("resumeCommitId")
    note: str | None = None
    if spec.resume is False:
        resumed = False
    elif commit and session_id:
        resumed = True
    else:
        why = "no resumeCommitId: the run never reported a commit" if not commit else "no sessionId"
        if spec.resume is True:
            raise NotResumable(
                wid,
                f"run {wid} cannot be resumed ({why}); pass resume=False "
                "or on_not_resumable='scratch' to relaunch it from scratch",
            )
        resumed = False
        note = f"run {wid} cannot be resumed ({why}): relaunched from scratch"
    saved = {k: v for k, v in launch.items() if k not in _RUN_ONLY}
    saved["pipeline"] = pipeline
    work_dir = launch.get("workDir") or workflow.get("workDir")
    if resumed:
        saved.update(resume=True, revision=commit, workDir=launch.get("resumeDir") or work_dir)
    else:
        saved.update(resume=False, workDir=work_dir)
    launch_id = workflow.get("launchId") or launch.get("id")
    if launch_id:
        saved["id"] = launch_id
    overlay = replace(
        spec, resume=None, run_name=spec.run_name or derive_run_name(workflow.get("runName"))
    )
    body = build_launch_request(
        saved, overlay, compute_env_id=compute_env_id, label_ids=label_ids, allowed=allowed
    )
    if resumed and (allowed is None or "sessionId" in allowed):
        body["sessionId"] = session_id
    return body, resumed, note


async def _describe(
    tw: SessionLike, wid: str, ws: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run (with its labels) and its launch, read concurrently."""
    reading = asyncio.ensure_future(
        tw.call("DescribeWorkflow", workflow_id=wid, workspace_id=ws, attributes=["labels"])
    )
    try:
        launch = await tw.call("DescribeWorkflowLaunch", workflow_id=wid, workspace_id=ws)
        run = await reading
    finally:
        if not reading.done():
            reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)  # retrieved, whatever it was
    workflow = dict((run or {}).get("workflow") or {})
    workflow["labels"] = (run or {}).get("labels") or []
    data = dict((launch or {}).get("launch") or {})
    if not data:
        raise RelaunchError(wid, f"run {wid} has no launch to relaunch (DescribeWorkflowLaunch)")
    return workflow, data


async def _targets(
    tw: SessionLike,
    spec: LaunchSpec,
    ws: int | None,
    wid: str,
    launch: Mapping[str, Any],
    workflow: Mapping[str, Any],
) -> tuple[str, str, list[int]]:
    """Compute env id, pipeline and label ids: the overrides resolved, else the run's."""
    if spec.compute_env is not None:
        ce_id = await resolve_compute_env(tw, spec.compute_env, workspace=ws)
    else:
        ce = launch.get("computeEnv")
        ce_id = str(ce.get("id") or "") if isinstance(ce, Mapping) else ""
        if not ce_id:
            raise RelaunchError(
                wid, f"the launch of run {wid} names no compute environment; pass compute_env="
            )
    if spec.pipeline not in ("", None):
        found = await resolve_pipeline(tw, spec.pipeline, workspace=ws)
        pipeline = str(found.repository or found.launch.get("pipeline") or "")
    else:
        pipeline = str(launch.get("pipeline") or "")
    if not pipeline:
        raise RelaunchError(wid, f"the launch of run {wid} names no pipeline; pass pipeline=")
    if spec.labels:
        label_ids = await resolve_labels(tw, spec.labels, workspace=ws)
    else:
        labels = workflow.get("labels") or []
        label_ids = [int(x["id"]) for x in labels if isinstance(x, Mapping) and x.get("id")]
    return ce_id, pipeline, label_ids


async def _prepare(tw: SessionLike, spec: LaunchSpec) -> tuple[int | None, dict[str, Any], _Plan]:
    wid = _check_spec(spec)
    ws = await resolve_workspace_id(tw, spec.workspace)
    workflow, launch = await _describe(tw, wid, ws)
    ce_id, pipeline, label_ids = await _targets(tw, spec, ws, wid, launch, workflow)
    body, resumed, note = build_relaunch_request(
        launch,
        workflow,
        spec,
        compute_env_id=ce_id,
        pipeline=pipeline,
        label_ids=label_ids,
        allowed=_request_properties(tw),
    )
    if note:
        log.warning("%s", note)
    return ws, {"launch": body}, _Plan(resumed, note)


async def prepare_relaunch(tw: SessionLike, spec: LaunchSpec) -> tuple[int | None, dict[str, Any]]:
    """The workspace id and ``{"launch": ...}`` body relaunching ``spec.relaunch_of``.

    What :func:`~tower_async.orchestration.launch.prepare_launch` does for a spec with
    ``relaunch_of``; logs a warning when the run is relaunched from scratch (and keeps
    that note for :func:`relaunch_failed` to report).
    """
    ws, body, plan = await _prepare(tw, spec)
    plans = _plans(tw)
    plans[str(spec.relaunch_of)] = plan
    while len(plans) > _MAX_PLANS:
        plans.popitem(last=False)
    return ws, body


def _plans(tw: SessionLike) -> OrderedDict[str, _Plan]:
    table = tw.memo.get(_PLANS)
    if table is None:
        table = tw.memo[_PLANS] = OrderedDict()
    return table


def _take_plan(tw: SessionLike, wid: str) -> _Plan | None:
    return _plans(tw).pop(wid, None)


async def relaunch(
    tw: SessionLike,
    workflow_id: str,
    *,
    resume: bool = True,
    on_not_resumable: NotResumablePolicy = "scratch",
    pipeline: str | int | None = None,
    **overrides: Any,
) -> RelaunchedRun:
    """Relaunch a run; returns the new run's workflow id (a :class:`RelaunchedRun`).

    Resumed by default.  ``run_name``, ``params`` (merged over the run's), ``revision``,
    ``profiles``, ``compute_env`` (name or id), ``pipeline`` (name or id; only with
    ``resume=False``), ``work_dir`` (only with ``resume=False``), ``labels``,
    ``workspace``, ``config_text``, the scripts, ``pull_latest``, ``stub_run``, ``extra``
    override the run's launch.  Raises :class:`~tower_async.RequestValidationError` for
    bad options (before any request), :class:`NotResumable` when the run cannot be
    resumed and ``on_not_resumable="error"``.
    """
    spec = relaunch_spec(
        workflow_id,
        resume=resume,
        on_not_resumable=on_not_resumable,
        pipeline=pipeline,
        **overrides,
    )
    ws, body, plan = await _prepare(tw, spec)
    result = await tw.call("CreateWorkflowLaunch", workspace_id=ws, body=body)
    return RelaunchedRun(
        str(result["workflowId"]), relaunch_of=workflow_id, resumed=plan.resumed, note=plan.note
    )
