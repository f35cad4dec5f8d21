"""Names instead of ids: workspaces, pipelines, compute environments and labels.

Every resolution is memoised in ``tw.memo`` (per session), and concurrent callers share
one lookup, so a thousand launches of ``nf-core/rnaseq`` list the pipelines once.
Matches are exact; a miss raises :class:`NameNotFound` listing close names, and two exact
matches raise :class:`AmbiguousName` (never "the first hit").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._util import (
    AmbiguousName,
    NameNotFound,
    as_id,
    as_object,
    iter_offset_items,
    memo,
    not_found,
    objects,
)

if TYPE_CHECKING:
    from ..abc import SessionLike

__all__ = [
    "ResolvedPipeline",
    "resolve_compute_env",
    "resolve_labels",
    "resolve_pipeline",
    "resolve_workspace",
    "resolve_workspace_id",
    "user_id",
]


async def user_id(tw: SessionLike) -> int:
    """The id of the token's user (``GET /user-info``), memoised."""

    async def fetch() -> int:
        info = as_object(await tw.call("UserInfo"), "UserInfo")
        user = as_object(info.get("user"), "UserInfo", "$.user")
        return as_id(user.get("id"), "UserInfo", "$.user.id")

    return await memo(tw, ("user-id",), fetch)


async def resolve_workspace(tw: SessionLike, workspace: int | str) -> int:
    """``"org/workspace"`` (or an id, as int or digits) -> workspace id.

    Uses ``GET /user-info`` then ``GET /user/{userId}/workspaces``; exact match on
    ``orgName`` and ``workspaceName``.
    """
    if isinstance(workspace, int):
        return workspace
    text = workspace.strip()
    if text.isdigit():
        return int(text)
    org, sep, name = text.partition("/")
    if not sep or not org or not name or "/" in name:
        raise NameNotFound(
            "workspace", text, f"workspace {text!r} is not of the form 'organization/workspace'"
        )

    async def fetch() -> int:
        uid = await user_id(tw)
        data = as_object(await tw.call("ListWorkspacesUser", user_id=uid), "ListWorkspacesUser")
        entries = [e for e in objects(data, "orgsAndWorkspaces") if e.get("workspaceId")]
        hits = [e for e in entries if e.get("orgName") == org and e.get("workspaceName") == name]
        if not hits:
            known = [f"{e.get('orgName')}/{e.get('workspaceName')}" for e in entries]
            raise not_found("workspace", text, "visible to this token", known)
        where = "$.orgsAndWorkspaces[*].workspaceId"
        ids = sorted({as_id(e["workspaceId"], "ListWorkspacesUser", where) for e in hits})
        if len(ids) > 1:
            raise AmbiguousName(
                "workspace",
                text,
                f"{len(ids)} workspaces are named {text!r}: ids {ids}",
                [str(i) for i in ids],
            )
        return ids[0]

    return await memo(tw, ("workspace", text), fetch)


async def resolve_workspace_id(tw: SessionLike, workspace: int | str | None) -> int | None:
    """``workspace`` resolved, or the session's workspace when None."""
    if workspace is None:
        return tw.workspace_id
    return await resolve_workspace(tw, workspace)


@dataclass(frozen=True)
class ResolvedPipeline:
    """A pipeline found by name, with its saved launch configuration."""

    pipeline_id: int
    name: str
    workspace_id: int | None
    repository: str | None
    launch: dict[str, Any] = field(repr=False)


async def resolve_pipeline(
    tw: SessionLike, pipeline: str | int, *, workspace: int | str | None = None
) -> ResolvedPipeline:
    """A pipeline name (or id) -> its id and launch configuration.

    ``GET /pipelines?search=NAME`` over all pages, exact ``name`` match only, then
    ``GET /pipelines/{pipelineId}/launch``.
    """
    ws = await resolve_workspace_id(tw, workspace)

    async def fetch() -> ResolvedPipeline:
        if isinstance(pipeline, int) or (isinstance(pipeline, str) and pipeline.isdigit()):
            pid = int(pipeline)
            name = str(pipeline)
            repository = None
        else:
            hits: list[dict[str, Any]] = []
            seen: list[str] = []
            async for item in iter_offset_items(
                tw, "ListPipelines", "pipelines", search=pipeline, workspace_id=ws
            ):
                seen.append(str(item.get("name")))
                if item.get("name") == pipeline:
                    hits.append(item)
            where = f"in workspace {ws}" if ws is not None else "in the user context"
            if not hits:
                raise not_found("pipeline", pipeline, where, seen)
            where = "$.pipelines[*].pipelineId"
            ids = sorted({as_id(h.get("pipelineId"), "ListPipelines", where) for h in hits})
            if len(ids) > 1:
                raise AmbiguousName(
                    "pipeline",
                    pipeline,
                    f"{len(ids)} pipelines are named {pipeline!r} {where}: ids {ids}; "
                    "pass the pipeline id instead",
                    [str(i) for i in ids],
                )
            pid, name, repository = ids[0], pipeline, hits[0].get("repository")
        data = await tw.call("DescribePipelineLaunch", pipeline_id=pid, workspace_id=ws)
        data = as_object(data, "DescribePipelineLaunch")
        launch = dict(as_object(data.get("launch") or {}, "DescribePipelineLaunch", "$.launch"))
        return ResolvedPipeline(pid, name, ws, repository or launch.get("pipeline"), launch)

    return await memo(tw, ("pipeline", ws, str(pipeline)), fetch)


async def _compute_envs(tw: SessionLike, ws: int | None) -> list[dict[str, Any]]:
    async def fetch() -> list[dict[str, Any]]:
        data = as_object(await tw.call("ListComputeEnvs", workspace_id=ws), "ListComputeEnvs")
        return [dict(e) for e in objects(data, "computeEnvs") if e.get("id") is not None]

    return await memo(tw, ("compute-envs", ws), fetch)


async def resolve_compute_env(
    tw: SessionLike, name: str | None = None, *, workspace: int | str | None = None
) -> str:
    """A compute environment name (or id) -> its id; ``None`` -> the primary one."""
    ws = await resolve_workspace_id(tw, workspace)
    envs = await _compute_envs(tw, ws)
    where = f"in workspace {ws}" if ws is not None else "in the user context"
    if name is None:
        primary = [e for e in envs if e.get("primary")]
        if len(primary) != 1:
            raise NameNotFound(
                "compute environment",
                "<primary>",
                f"no primary compute environment {where}; name one "
                f"(known: {', '.join(sorted(str(e.get('name')) for e in envs)) or 'none'})",
            )
        return str(primary[0]["id"])
    hits = [e for e in envs if e.get("name") == name]
    if not hits:
        hits = [e for e in envs if e.get("id") == name]
    if not hits:
        raise not_found("compute environment", name, where, [str(e.get("name")) for e in envs])
    if len(hits) > 1:
        ids = sorted(str(e["id"]) for e in hits)
        raise AmbiguousName(
            "compute environment", name, f"{len(hits)} compute environments named {name!r}", ids
        )
    return str(hits[0]["id"])


def _split_label(label: str) -> tuple[str, str | None]:
    name, sep, value = label.partition("=")
    return name.strip(), (value.strip() if sep else None)


async def resolve_label(
    tw: SessionLike, label: str, *, workspace: int | str | None = None, create: bool = True
) -> int:
    """A label (``"name"`` or resource label ``"name=value"``) -> its id.

    Missing labels are created (``POST /labels``) once per session when ``create``.
    """
    ws = await resolve_workspace_id(tw, workspace)
    name, value = _split_label(label)
    resource = value is not None

    async def fetch() -> int:
        seen: list[str] = []
        async for item in iter_offset_items(
            tw, "ListLabels", "labels", search=name, workspace_id=ws
        ):
            seen.append(str(item.get("name")))
            if (
                item.get("name") == name
                and bool(item.get("resource")) == resource
                and (not resource or item.get("value") == value)
            ):
                return as_id(item.get("id"), "ListLabels", "$.labels[*].id")
        if not create:
            raise not_found("label", label, f"in workspace {ws}", seen)
        body: dict[str, Any] = {"name": name, "resource": resource}
        if resource:
            body["value"] = value
        created = as_object(await tw.call("CreateLabel", workspace_id=ws, body=body), "CreateLabel")
        return as_id(created.get("id"), "CreateLabel", "$.id")

    return await memo(tw, ("label", ws, name, value), fetch)


async def resolve_labels(
    tw: SessionLike,
    labels: Iterable[str | int],
    *,
    workspace: int | str | None = None,
    create: bool = True,
) -> list[int]:
    """Label names or ids -> ids (missing names created once when ``create``)."""
    out: list[int] = []
    for label in labels:
        if isinstance(label, int):
            lid = label
        else:
            lid = await resolve_label(tw, label, workspace=workspace, create=create)
        if lid not in out:
            out.append(lid)
    return out
