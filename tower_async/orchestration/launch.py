"""Launch a pipeline by name, the way ``tw launch`` does.

``GET /pipelines?search=`` (exact name) -> ``GET /pipelines/{id}/launch`` -> overlay the
caller's settings on the saved launch configuration -> ``POST /workflow/launch``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import orjson
import yaml

from ..errors import LaunchResponseError, ResponseValidationError, TowerError
from .resolve import (
    resolve_compute_env,
    resolve_labels,
    resolve_pipeline,
    resolve_workspace_id,
)

if TYPE_CHECKING:
    from ..abc import SessionLike

__all__ = [
    "LaunchSpec",
    "build_launch_request",
    "merge_params",
    "prepare_new_launch",
    "send_launch",
]

#: Fields of the saved launch configuration carried into a WorkflowLaunchRequest when the
#: bound document does not list the request's properties.
_CARRIED = (
    "id",
    "pipeline",
    "workDir",
    "revision",
    "commitId",
    "configProfiles",
    "configText",
    "paramsText",
    "preRunScript",
    "postRunScript",
    "mainScript",
    "entryName",
    "schemaName",
    "pullLatest",
    "stubRun",
    "resume",
    "userSecrets",
    "workspaceSecrets",
    "towerConfig",
    "headJobCpus",
    "headJobMemoryMb",
    "launchContainer",
    "optimizationId",
    "optimizationTargets",
)
#: Saved-config fields never copied: server-side bookkeeping, or set per launch below.
_NOT_CARRIED = frozenset(
    {"computeEnv", "dateCreated", "lastUpdated", "workspaceId", "sessionId", "runName"}
)


@dataclass(frozen=True)
class LaunchSpec:
    """One launch: a pipeline (name or id) and what to overlay on its saved configuration.

    ``key`` identifies the item in a bulk-launch journal; it defaults to ``run_name`` and
    otherwise to a hash of the spec.  A unique ``run_name`` per item is what lets a rerun
    reconcile a launch whose outcome was unknown (see :func:`bulk_launch`).

    ``relaunch_of`` (a workflow id) makes the item a relaunch of that run instead: its
    launch is kept and the fields set here override it (``pipeline`` may be ``""``: the
    run's); ``resume`` is then ``None`` (resume when possible, else from scratch), ``True``
    (resume or fail) or ``False`` (from scratch).  See :mod:`tower_async.orchestration.relaunch`.
    """

    pipeline: str | int
    params: Mapping[str, Any] | None = None
    run_name: str | None = None
    revision: str | None = None
    profiles: Sequence[str] | None = None
    work_dir: str | None = None
    labels: Sequence[str | int] = ()
    compute_env: str | None = None
    workspace: int | str | None = None
    config_text: str | None = None
    pre_run_script: str | None = None
    post_run_script: str | None = None
    main_script: str | None = None
    entry_name: str | None = None
    pull_latest: bool | None = None
    stub_run: bool | None = None
    resume: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None
    relaunch_of: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == () or value == {} or f.name == "key":
                continue
            if isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple | list):
                value = list(value)
            out[f.name] = value
        return out

    def fingerprint(self) -> str:
        blob = orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS, default=str)
        return hashlib.sha256(blob).hexdigest()[:24]

    @property
    def journal_key(self) -> str:
        return self.key or self.run_name or f"sha:{self.fingerprint()}"


def parse_params_text(text: str | None) -> dict[str, Any]:
    """A saved ``paramsText`` (JSON or YAML mapping) as a dict."""
    if text is None or not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise TowerError(f"the saved paramsText is neither JSON nor YAML: {exc}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TowerError("the saved paramsText is not a mapping")
    return value


def merge_params(base: str | None, overlay: Mapping[str, Any] | None) -> str | None:
    """The saved params with the caller's on top (top-level keys), as JSON text."""
    if not overlay:
        return base
    merged = parse_params_text(base)
    merged.update(overlay)
    return orjson.dumps(merged).decode()


def _request_properties(tw: SessionLike) -> frozenset[str] | None:
    """Properties of WorkflowLaunchRequest in the bound document, if it says."""
    try:
        schemas = tw.spec.document.get("components", {}).get("schemas", {})
    except Exception:  # pragma: no cover - an unbound session cannot launch anyway
        return None
    schema = schemas.get("WorkflowLaunchRequest")
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return None
    return frozenset(schema["properties"])


def build_launch_request(
    saved: Mapping[str, Any],
    spec: LaunchSpec,
    *,
    compute_env_id: str,
    label_ids: Sequence[int],
    allowed: frozenset[str] | None = None,
) -> dict[str, Any]:
    """A WorkflowLaunchRequest: the saved configuration overlaid with ``spec`` (pure)."""
    body: dict[str, Any] = {}
    for key, value in saved.items():
        if key in _NOT_CARRIED or value is None:
            continue
        if allowed is not None and key not in allowed:
            continue
        if allowed is None and key not in _CARRIED:
            continue
        body[key] = value
    body["computeEnvId"] = compute_env_id
    if not body.get("workDir"):
        ce = saved.get("computeEnv") or {}
        work_dir = (ce.get("config") or {}).get("workDir") if isinstance(ce, dict) else None
        if work_dir:
            body["workDir"] = work_dir
    overlay: dict[str, Any] = {
        "runName": spec.run_name,
        "revision": spec.revision,
        "workDir": spec.work_dir,
        "configText": spec.config_text,
        "preRunScript": spec.pre_run_script,
        "postRunScript": spec.post_run_script,
        "mainScript": spec.main_script,
        "entryName": spec.entry_name,
        "pullLatest": spec.pull_latest,
        "stubRun": spec.stub_run,
        "resume": spec.resume,
    }
    if spec.profiles is not None:
        overlay["configProfiles"] = list(spec.profiles)
    for key, value in overlay.items():
        if value is not None:
            body[key] = value
    params = merge_params(saved.get("paramsText"), spec.params)
    if params is not None:
        body["paramsText"] = params
    if label_ids:
        body["labelIds"] = list(label_ids)
    body.update(spec.extra)
    return body


async def prepare_new_launch(
    tw: SessionLike, spec: LaunchSpec
) -> tuple[int | None, dict[str, Any]]:
    """The workspace id and the ``{"launch": ...}`` body for a spec that is not a relaunch
    (resolutions cached); :func:`.dispatch.prepare_launch` picks this or a relaunch."""
    ws = await resolve_workspace_id(tw, spec.workspace)
    pipeline = await resolve_pipeline(tw, spec.pipeline, workspace=ws)
    saved = pipeline.launch
    if spec.compute_env is not None:
        ce_id = await resolve_compute_env(tw, spec.compute_env, workspace=ws)
    else:
        saved_ce = saved.get("computeEnv")
        saved_id = saved_ce.get("id") if isinstance(saved_ce, dict) else None
        ce_id = str(saved_id) if saved_id else await resolve_compute_env(tw, workspace=ws)
    label_ids = await resolve_labels(tw, spec.labels, workspace=ws) if spec.labels else []
    request = build_launch_request(
        saved, spec, compute_env_id=ce_id, label_ids=label_ids, allowed=_request_properties(tw)
    )
    return ws, {"launch": request}


def _workflow_id(data: Any) -> str | None:
    wid = data.get("workflowId") if isinstance(data, dict) else None
    return wid if isinstance(wid, str) and wid else None


async def send_launch(
    tw: SessionLike, workspace_id: int | None, body: Mapping[str, Any], **options: Any
) -> str:
    """``POST /workflow/launch`` once; the new run's ``workflowId``.

    A 2xx without a readable ``workflowId`` (``{}``, ``[]``, an empty or HTML body, or one
    that fails ``strict`` validation without one) raises :class:`LaunchResponseError`: the
    server took the request, so the run may exist.  ``options`` go to the call (``timeout``,
    ``on_send``).
    """
    op = "CreateWorkflowLaunch"
    try:
        result = await tw.call(op, workspace_id=workspace_id, body=body, **options)
    except ResponseValidationError as exc:
        wid = _workflow_id(exc.data)
        if wid is None:
            raise LaunchResponseError(op, exc.status, exc.data) from exc
        return wid
    wid = _workflow_id(result)
    if wid is None:
        raise LaunchResponseError(op, None, result)
    return wid
