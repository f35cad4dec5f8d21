"""Handlers of the service, its document, the user, organizations and workspaces."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .records import ApiFailure, Workspace
from .render import org_dto, workspace_dto, workspace_entries
from .routing import AppInfo, Ctx, Result

__all__ = [
    "h_not_found",
    "h_openapi",
    "h_org_workspaces",
    "h_orgs",
    "h_service_info",
    "h_user_info",
    "h_user_workspaces",
]


async def h_service_info(app: AppInfo, ctx: Ctx) -> Result:
    return {
        "serviceInfo": {
            "version": app.platform_version,
            "apiVersion": app.api_version,
            "commitId": "f00dfeed",
            "authTypes": ["github"],
            "loginPath": "/login",
            "landingUrl": None,
            "termsOfUseUrl": None,
            "contentUrl": "https://fake.invalid/content",
            "contentMaxFileSize": 10 * 1024 * 1024,
            "heartbeatInterval": 60,
            "allowInstanceCredentials": False,
            "allowLocalRepos": False,
            "allowNextflowCliLogs": True,
            "userWorkspaceEnabled": True,
            "seqeraCloud": False,
            "waveEnabled": False,
            "groundswellEnabled": False,
            "llmEnabled": False,
        }
    }


async def h_openapi(app: AppInfo, ctx: Ctx) -> Result:
    return web.Response(body=app.spec_bytes, content_type="application/yaml")


async def h_user_info(app: AppInfo, ctx: Ctx) -> Result:
    return {"user": ctx.state.user, "needConsent": False, "defaultWorkspaceId": None}


def _visible_workspaces(ctx: Ctx) -> list[Workspace]:
    token = ctx.token
    return [ws for ws in ctx.state.workspaces.values() if token is None or token.allows(ws.id)]


def _numeric(ctx: Ctx, name: str) -> int:
    raw = ctx.request.match_info[name]
    if not raw.isdigit():
        raise ApiFailure(400, f"Invalid {name} '{raw}'")
    return int(raw)


async def h_user_workspaces(app: AppInfo, ctx: Ctx) -> Result:
    if _numeric(ctx, "userId") != ctx.state.user["id"]:
        raise ApiFailure(403, None)
    orgs = list(ctx.state.orgs.values())
    entries: list[dict[str, Any]] = workspace_entries(orgs, _visible_workspaces(ctx))
    return {"orgsAndWorkspaces": entries}


async def h_orgs(app: AppInfo, ctx: Ctx) -> Result:
    orgs = [org_dto(o) for o in ctx.state.orgs.values()]
    return {"organizations": orgs, "totalSize": len(orgs)}


async def h_org_workspaces(app: AppInfo, ctx: Ctx) -> Result:
    org_id = _numeric(ctx, "orgId")
    if org_id not in ctx.state.orgs:
        raise ApiFailure(403, None)
    return {
        "workspaces": [workspace_dto(ws) for ws in _visible_workspaces(ctx) if ws.org.id == org_id]
    }


async def h_not_found(app: AppInfo, ctx: Ctx) -> Result:
    raise ApiFailure(404, f"Not found: {ctx.request.method} {ctx.request.path}")
