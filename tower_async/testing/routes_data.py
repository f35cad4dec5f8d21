"""Handlers of datasets and data links."""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from .pagetokens import decode_page_token, encode_page_token
from .records import ApiFailure, Dataset
from .render import data_link_dto, dataset_dto
from .routing import (
    AppInfo,
    Ctx,
    Result,
    json_body,
    matching,
    opt_str,
    page_of,
    paging,
    q_bool,
    q_int,
)

__all__ = [
    "h_create_dataset",
    "h_explore",
    "h_list_data_links",
    "h_list_datasets",
    "h_list_datasets_ws",
    "h_upload_dataset",
]


async def h_list_datasets(app: AppInfo, ctx: Ctx) -> Result:
    max_, offset = paging(ctx, "ListDatasetsV2", default_max=100)
    found = matching(ctx, ctx.state.datasets.values())
    return page_of("datasets", found, max_, offset, dataset_dto)


async def h_list_datasets_ws(app: AppInfo, ctx: Ctx) -> Result:
    found = [ds for ds in ctx.state.datasets.values() if ds.workspace_id == ctx.workspace_id]
    return {"datasets": [dataset_dto(ds) for ds in found], "totalSize": len(found)}


async def h_create_dataset(app: AppInfo, ctx: Ctx) -> Result:
    body = await json_body(ctx.request)
    name = opt_str(body, "name")
    if not name or not name.strip():
        raise ApiFailure(400, "Missing dataset 'name'")
    description = opt_str(body, "description")
    ds = ctx.state.create_dataset(ctx.workspace_id, name, description)
    return {"dataset": dataset_dto(ds)}


def _dataset(ctx: Ctx) -> Dataset:
    ds_id = ctx.request.match_info["datasetId"]
    ds = ctx.state.datasets.get(ds_id)
    if ds is None or ds.workspace_id != ctx.workspace_id:
        raise ApiFailure(404, f"Dataset '{ds_id}' not found")
    return ds


async def _file_part(request: web.Request) -> tuple[bytes, str, str]:
    """``(content, file name, media type)`` of the multipart body's ``file`` part."""
    try:
        reader = await request.multipart()
        content: bytes | None = None
        file_name = "dataset.csv"
        media_type = "text/csv"
        while True:
            part = await reader.next()
            if part is None:
                break
            if isinstance(part, BodyPartReader) and part.name == "file":
                content = bytes(await part.read())
                file_name = part.filename or file_name
                media_type = part.headers.get("Content-Type", media_type)
            elif part is not None:
                await part.release()
    except (ValueError, AssertionError) as exc:
        raise ApiFailure(400, f"Malformed multipart body: {exc}") from None
    if content is None:
        raise ApiFailure(400, "Missing multipart part 'file'")
    return content, file_name, media_type


async def h_upload_dataset(app: AppInfo, ctx: Ctx) -> Result:
    ds = _dataset(ctx)
    has_header = q_bool(ctx.query, "header", False)
    if not ctx.request.content_type.startswith("multipart/"):
        raise ApiFailure(400, "Expected a multipart/form-data body with a 'file' part")
    content, file_name, media_type = await _file_part(ctx.request)
    if file_name.endswith(".tsv"):
        media_type = "text/tab-separated-values"
    elif media_type in ("application/octet-stream", ""):
        media_type = "text/csv"
    version = ctx.state.upload_dataset(ds, file_name, media_type, content, has_header)
    return {"version": version}


async def h_list_data_links(app: AppInfo, ctx: Ctx) -> Result:
    max_, offset = paging(ctx, "ListDataLinks", default_max=100)
    found = matching(ctx, ctx.state.data_links.values())
    return page_of("dataLinks", found, max_, offset, data_link_dto)


async def h_explore(app: AppInfo, ctx: Ctx) -> Result:
    dl_id = ctx.request.match_info["dataLinkId"]
    path = ctx.request.match_info.get("path", "")
    dl = ctx.state.data_links.get(dl_id)
    if dl is None or dl.workspace_id != ctx.workspace_id:
        raise ApiFailure(404, f"Data-link '{dl_id}' not found")
    size = q_int(ctx.query, "pageSize", 100)
    assert size is not None
    if not 1 <= size <= 1000:
        raise ApiFailure(400, "'pageSize' must be within 1..1000")
    token = ctx.query.get("nextPageToken")
    start = decode_page_token(token) if token else 0
    items = dl.listing(path)
    if path and not items:
        raise ApiFailure(404, f"Path '{path}' not found in data-link '{dl_id}'")
    search = ctx.query.get("search")
    if search:
        items = [it for it in items if it["name"].startswith(search)]
    page = items[start : start + size]
    nxt = encode_page_token(start + size) if start + size < len(items) else None
    return {"objects": page, "nextPageToken": nxt, "originalPath": path or None}
