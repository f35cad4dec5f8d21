"""Handlers of labels."""

from __future__ import annotations

import re

from .records import ApiFailure, Label
from .render import label_dto
from .routing import (
    AppInfo,
    Ctx,
    Result,
    json_body,
    matching,
    opt_bool,
    opt_str,
    page_of,
    paging,
    q_bool,
)

__all__ = ["h_create_label", "h_list_labels"]

_LABEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,38}$")


async def h_list_labels(app: AppInfo, ctx: Ctx) -> Result:
    max_, offset = paging(ctx, "ListLabels", default_max=100)
    kind = (ctx.query.get("type") or "all").lower()
    if kind not in ("all", "simple", "resource"):
        raise ApiFailure(400, f"Invalid label type '{kind}'")
    is_default = ctx.query.get("isDefault")
    want_default = None if is_default is None else q_bool(ctx.query, "isDefault")
    found = [
        lab
        for lab in matching(ctx, ctx.state.labels.values())
        if (kind == "all" or lab.resource == (kind == "resource"))
        and (want_default is None or lab.is_default == want_default)
    ]
    return page_of("labels", found, max_, offset, label_dto)


def _find_label(ctx: Ctx, name: str, value: str | None, resource: bool) -> Label | None:
    for lab in ctx.state.labels.values():
        if (lab.workspace_id, lab.name, lab.value, lab.resource) == (
            ctx.workspace_id,
            name,
            value,
            resource,
        ):
            return lab
    return None


async def h_create_label(app: AppInfo, ctx: Ctx) -> Result:
    body = await json_body(ctx.request)
    name = opt_str(body, "name")
    if not name or not _LABEL_NAME.match(name):
        raise ApiFailure(400, "Invalid label name")
    value = opt_str(body, "value")
    resource = opt_bool(body, "resource")
    is_default = opt_bool(body, "isDefault")
    if resource and not value:
        raise ApiFailure(400, "Resource labels need a 'value'")
    if not resource and value is not None:
        raise ApiFailure(400, "Only resource labels have a 'value'")
    lab = _find_label(ctx, name, value, resource) or ctx.state.add_label(
        ctx.workspace_id, name, value, resource=resource, is_default=is_default
    )
    return {
        "id": lab.id,
        "name": lab.name,
        "value": lab.value,
        "resource": lab.resource,
        "isDefault": lab.is_default,
    }
