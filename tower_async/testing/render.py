"""JSON forms of the fake's records (what the Platform answers), and the null stripping.

Pure functions of records and the run clock's ``now``; the run-related forms (workflows,
their launches, tasks and progress) are in :mod:`.render_runs`.
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any

from .records import ComputeEnv, DataLink, Dataset, Label, Org, Pipeline, Workspace

__all__ = [
    "compute_env_config",
    "compute_env_dto",
    "compute_env_entry",
    "data_link_dto",
    "dataset_dto",
    "iso",
    "label_dto",
    "org_dto",
    "pipeline_dto",
    "pipeline_launch_dto",
    "strip_nulls",
    "workspace_dto",
    "workspace_entries",
]


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _iso_seconds(int(ts))


@functools.lru_cache(maxsize=1 << 16)
def _iso_seconds(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_KEEP_NULL = frozenset({"workspaceId", "workspaceName", "workspaceFullName"})


def strip_nulls(value: Any) -> Any:
    """Drop null members of objects, recursively (not inside ``params``: user data).

    The Platform omits unset optional fields; the document rarely marks them nullable.
    Exception kept on purpose: ``workspaceId``/``workspaceName``/``workspaceFullName`` stay
    null, as in the Platform's per-organization entries of ``ListWorkspacesUser`` (real
    drift from its document, which does not mark them nullable).
    """
    if isinstance(value, dict):
        return {
            k: (v if k == "params" else strip_nulls(v))
            for k, v in value.items()
            if v is not None or k in _KEEP_NULL
        }
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def org_dto(org: Org) -> dict[str, Any]:
    return {
        "orgId": org.id,
        "name": org.name,
        "fullName": org.full_name,
        "description": None,
        "location": None,
        "website": None,
        "logoId": None,
        "logoUrl": None,
        "memberId": org.id * 10,
        "memberRole": "owner",
        "paying": False,
        "type": "basic",
    }


def workspace_dto(ws: Workspace) -> dict[str, Any]:
    return {
        "id": ws.id,
        "name": ws.name,
        "fullName": ws.full_name,
        "description": None,
        "visibility": ws.visibility,
    }


def _compute_env_head(ce: ComputeEnv) -> dict[str, Any]:
    """The members a compute environment's list entry and description start with."""
    return {
        "id": ce.id,
        "name": ce.name,
        "platform": ce.platform,
        "status": ce.status,
        "primary": ce.primary,
    }


def compute_env_entry(ce: ComputeEnv, workspace_name: str | None) -> dict[str, Any]:
    return {
        **_compute_env_head(ce),
        "workDir": ce.work_dir,
        "region": ce.region,
        "credentialsId": "cred" + ce.id[:6],
        "description": None,
        "lastUsed": iso(ce.created),
        "message": None,
        "visibility": "PRIVATE",
        "workspaceName": workspace_name,
        "labels": [],
    }


def compute_env_config(ce: ComputeEnv) -> dict[str, Any]:
    return {
        "workDir": ce.work_dir,
        "region": ce.region,
        "discriminator": ce.platform,
        "environment": [],
        "preRunScript": None,
        "postRunScript": None,
    }


def compute_env_dto(ce: ComputeEnv) -> dict[str, Any]:
    return {
        **_compute_env_head(ce),
        "config": compute_env_config(ce),
        "credentialsId": "cred" + ce.id[:6],
        "description": None,
        "message": None,
        "dateCreated": iso(ce.created),
        "lastUpdated": iso(ce.created),
        "lastUsed": iso(ce.created),
        "deleted": False,
        "orgId": ce.org_id,
        "workspaceId": ce.workspace_id,
        "labels": [],
    }


def label_dto(label: Label) -> dict[str, Any]:
    return {
        "id": label.id,
        "name": label.name,
        "value": label.value,
        "resource": label.resource,
        "isDefault": label.is_default,
        "isDynamic": False,
        "isInterpolated": False,
        "dateCreated": iso(label.created),
    }


def data_link_dto(dl: DataLink) -> dict[str, Any]:
    return {
        "id": dl.id,
        "name": dl.name,
        "description": None,
        "resourceRef": dl.resource_ref,
        "type": "bucket",
        "provider": dl.provider,
        "region": "eu-west-1",
        "credentials": [],
        "publicAccessible": False,
        "hidden": False,
        "status": None,
        "message": None,
    }


def dataset_dto(ds: Dataset) -> dict[str, Any]:
    last = ds.versions[-1] if ds.versions else None
    return {
        "id": ds.id,
        "name": ds.name,
        "description": ds.description,
        "workspaceId": ds.workspace_id,
        "organizationId": None,
        "mediaType": last["mediaType"] if last else None,
        "version": last["version"] if last else None,
        "sourceType": "UPLOADED",
        "deleted": False,
        "hidden": False,
        "labels": [],
        "dateCreated": iso(ds.created),
        "lastUpdated": iso(ds.created),
    }


def pipeline_dto(
    p: Pipeline, ws: Workspace | None, user: dict[str, Any], now: float
) -> dict[str, Any]:
    return {
        "pipelineId": p.id,
        "name": p.name,
        "description": p.description,
        "icon": None,
        "repository": p.repository,
        "userId": user["id"],
        "userName": user["userName"],
        "userFirstName": user["firstName"],
        "userLastName": user["lastName"],
        "orgId": ws.org.id if ws else None,
        "orgName": ws.org.name if ws else None,
        "workspaceId": p.workspace_id,
        "workspaceName": ws.name if ws else None,
        "visibility": "PRIVATE",
        "deleted": False,
        "lastUpdated": iso(now),
        "optimizationId": None,
        "optimizationTargets": None,
        "optimizationStatus": None,
        "labels": [],
    }


def pipeline_launch_dto(p: Pipeline, ce: ComputeEnv, now: float) -> dict[str, Any]:
    """The launch a pipeline would post (``DescribePipelineLaunch``)."""
    stamp = iso(now)
    return {
        "id": p.launch_id,
        "computeEnv": compute_env_dto(ce),
        "pipeline": p.repository,
        "workDir": p.work_dir,
        "revision": p.revision,
        "commitId": None,
        "configProfiles": p.config_profiles,
        "configText": None,
        "paramsText": p.params_text,
        "preRunScript": None,
        "postRunScript": None,
        "mainScript": None,
        "entryName": None,
        "schemaName": None,
        "pipelineSchemaId": None,
        "pullLatest": False,
        "resume": False,
        "stubRun": False,
        "runName": None,
        "sessionId": None,
        "towerConfig": None,
        "userSecrets": [],
        "workspaceSecrets": [],
        "workspaceId": p.workspace_id,
        "dateCreated": stamp,
        "lastUpdated": stamp,
    }


def _org_entry(org: Org, ws: Workspace | None) -> dict[str, Any]:
    return {
        "orgId": org.id,
        "orgName": org.name,
        "orgLogoUrl": None,
        "orgType": "basic",
        "workspaceId": ws.id if ws else None,
        "workspaceName": ws.name if ws else None,
        "workspaceFullName": ws.full_name if ws else None,
        "visibility": ws.visibility if ws else None,
        "roles": ["owner"],
    }


def workspace_entries(orgs: list[Org], workspaces: list[Workspace]) -> list[dict[str, Any]]:
    """``ListWorkspacesUser`` entries: per organization with a visible workspace, one entry
    for the organization itself, then one per workspace."""
    entries: list[dict[str, Any]] = []
    for org in orgs:
        mine = [ws for ws in workspaces if ws.org.id == org.id]
        if mine:
            entries.append(_org_entry(org, None))
            entries.extend(_org_entry(org, ws) for ws in mine)
    return entries
