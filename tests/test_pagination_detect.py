"""Which operations page, and how: inferred from parameters and response schemas (issue 6)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from tower_async import Tower
from tower_async.operations import bind_operations
from tower_async.pagination import (
    Paging,
    PagingTable,
    detect_paging,
    paged_operations,
    paging_for,
    unpaged_list_operations,
)

from .conftest import spec_path
from .documents import published_document

OFFSET_PAGED_1_181 = {
    # operationId: (items key, total key)
    "ListAgents": ("agents", "totalSize"),
    "ListDataLinks": ("dataLinks", "totalSize"),
    "ListDataStudioCheckpoints": ("checkpoints", "totalSize"),
    "ListDataStudioTemplates": ("templates", "totalSize"),
    "ListDataStudios": ("studios", "totalSize"),
    "ListDatasetsV2": ("datasets", "totalSize"),
    "ListLabels": ("labels", "totalSize"),
    "ListLatestDatasetVersionsV2": ("versions", "totalSize"),
    "ListManagedCredentials": ("managedCredentials", "totalSize"),
    "ListManagedIdentities": ("managedIdentities", "totalSize"),
    "ListOrganizationCollaborators": ("members", "totalSize"),
    "ListOrganizationMembers": ("members", "totalSize"),
    "ListOrganizationTeamMembers": ("members", "totalSize"),
    "ListOrganizationTeams": ("teams", "totalSize"),
    "ListPipelineVersions": ("versions", "totalSize"),
    "ListPipelines": ("pipelines", "totalSize"),
    "ListRoles": ("roles", "totalSize"),
    "ListWorkflowTasks": ("tasks", "total"),
    "ListWorkflows": ("workflows", "totalSize"),
    "ListWorkspaceParticipants": ("participants", "totalSize"),
    "ListWorkspacesByTeam": ("workspaces", "totalSize"),
}

TOKEN_PAGED_1_181 = {
    # operationId: (items key, size parameter, token parameter, next-token key)
    "ExploreDataLink": ("objects", "pageSize", "nextPageToken", "nextPageToken"),
    "ExploreDataLinkWithPath": ("objects", "pageSize", "nextPageToken", "nextPageToken"),
    "ListAuditLogsV2": ("auditLogs", "max", "nextPageToken", "nextPageToken"),
    # GA4GH WES: not one of the Platform's own three, but it pages the same way
    "Ga4ghRunList": ("runs", "page_size", "page_token", "next_page_token"),
}

# List-like operations of 1.181.0 that return their whole list in one response.
UNPAGED_1_181 = {
    "ExploreDataLinkTree": "items",
    "ListActionTypes": "eventTypes",
    "ListActions": "actions",
    "ListComputeEnvs": "computeEnvs",
    "ListCredentials": "credentials",
    "ListDataStudioCompatibleComputeEnvs": "computeEnvs",
    "ListDatasetVersions": "versions",
    "ListDatasetVersionsV2": "versions",
    "ListDatasets": "datasets",
    "ListLaunchDatasetVersions": "versions",
    "ListMountedDataLinkIds": "dataLinkIds",
    "ListOrganizationIdpGroups": "groups",
    "ListOrganizations": "organizations",
    "ListPipelineRepositories": "pipelines",
    "ListPipelineSecrets": "pipelineSecrets",
    "ListPlatformRegions": "regions",
    "ListPlatforms": "platforms",
    "ListRolePermissions": "permissions",
    "ListSshKeys": "sshKeys",
    "ListUserRolesInOrganization": "userWorkspaces",
    "ListWorkspaceDatasetVersions": "versions",
    "ListWorkspaces": "workspaces",
    "ListWorkspacesUser": "orgsAndWorkspaces",
    "TokenList": "tokens",
}


@cache
def _document(version: str) -> dict[str, Any]:
    return published_document(version)


def test_every_paged_operation_of_1_181_is_detected() -> None:
    doc = _document("1.181.0")
    ops = bind_operations(doc)
    paged = paged_operations(ops, doc)
    offset = {k: v for k, v in paged.items() if v.style == "offset"}
    token = {k: v for k, v in paged.items() if v.style == "token"}
    assert {k: (v.items_key, v.total_key) for k, v in offset.items()} == OFFSET_PAGED_1_181
    assert len(offset) == 21
    assert all(
        (v.size_param, v.offset_param, v.token_param) == ("max", "offset", None)
        for v in offset.values()
    )
    assert {
        k: (v.items_key, v.size_param, v.token_param, v.next_token_key) for k, v in token.items()
    } == TOKEN_PAGED_1_181
    assert all(v.total_key is None and v.offset_param is None for v in token.values())
    wf = offset["ListWorkflows"]
    assert (wf.has_more_key, wf.include_total_param) == ("hasMore", "includeTotalSize")
    assert all(
        v.has_more_key is None and v.include_total_param is None
        for k, v in offset.items()
        if k != "ListWorkflows"
    )


def test_unpaged_list_operations_of_1_181_with_reasons() -> None:
    doc = _document("1.181.0")
    ops = bind_operations(doc)
    unpaged = unpaged_list_operations(ops, doc)
    # the reasons, printed for the record (pytest -s)
    for oid, reason in sorted(unpaged.items()):
        print(f"not paged: {oid}: {reason}")
    assert set(unpaged) == set(UNPAGED_1_181)
    for oid, key in UNPAGED_1_181.items():
        assert unpaged[oid].startswith("no max/offset or page-token parameters"), oid
        assert f"returns the whole list in '{key}'" in unpaged[oid], oid
    assert unpaged["ListOrganizations"].endswith("with totalSize)")
    assert not set(unpaged) & set(paged_operations(ops, doc))


@pytest.mark.parametrize(("version", "offset", "token"), [("1.85.0", 18, 3), ("1.115.0", 19, 3)])
def test_older_documents(version: str, offset: int, token: int) -> None:
    doc = _document(version)
    ops = bind_operations(doc)
    paged = paged_operations(ops, doc)
    assert sum(v.style == "offset" for v in paged.values()) == offset
    assert sum(v.style == "token" for v in paged.values()) == token
    # before 1.115 the workflow list had neither hasMore nor includeTotalSize
    wf = paged["ListWorkflows"]
    assert wf.total_key == "totalSize"
    assert (wf.has_more_key is None) == (version == "1.85.0")
    assert paged["ListWorkflowTasks"].total_key == "total"


def _get(op_id: str, params: list[str], schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op_id,
            "parameters": [
                {"name": p, "in": "query", "schema": {"type": "integer"}} for p in params
            ],
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {"schema": schema}}}
            },
        }
    }


ARR = {"type": "array", "items": {"type": "string"}}
SYNTHETIC: dict[str, Any] = {
    "openapi": "3.0.1",
    "info": {"title": "t", "version": "1"},
    "components": {
        "schemas": {
            "Base": {"type": "object", "properties": {"totalSize": {"type": "integer"}}},
            "Rows": {"type": "array", "items": {"type": "integer"}},
        }
    },
    "paths": {
        "/a": _get("ListNoArray", ["max", "offset"], {"properties": {"n": {"type": "integer"}}}),
        "/b": _get("ListTwoArrays", ["max", "offset"], {"properties": {"a": ARR, "b": ARR}}),
        "/c": _get("ListBare", ["max", "offset"], ARR),
        "/d": _get("ListOnlyMax", ["max"], {"properties": {"rows": ARR}}),
        "/e": _get(
            "ListLostToken",
            ["nextPageToken"],
            {"properties": {"rows": ARR}},
        ),
        "/f": _get(
            "ListMerged",
            ["max", "offset"],
            {
                "allOf": [
                    {"$ref": "#/components/schemas/Base"},
                    {"properties": {"rows": {"$ref": "#/components/schemas/Rows"}}},
                ]
            },
        ),
        "/g": _get("DescribeThing", [], {"properties": {"tags": ARR}}),
        "/h": _get("GetCount", [], {"properties": {"totalSize": {"type": "integer"}}}),
    },
}


def test_reasons_on_a_synthetic_document() -> None:
    ops = bind_operations(SYNTHETIC)
    assert unpaged_list_operations(ops, SYNTHETIC) == {
        "ListNoArray": "response has no array property",
        "ListTwoArrays": "response has 2 array properties (a, b)",
        "ListBare": "the response is a bare JSON array (no place for a total or a token)",
        "ListOnlyMax": "has 'max' but no offset parameter",
        "ListLostToken": "takes 'nextPageToken' but the response has no next-page token",
        "GetCount": "no max/offset or page-token parameters",
    }
    merged = paging_for(ops["ListMerged"], SYNTHETIC)
    assert merged == Paging(
        style="offset",
        items_key="rows",
        size_param="max",
        offset_param="offset",
        total_key="totalSize",
    )
    assert paging_for(ops["DescribeThing"], SYNTHETIC) is None
    assert isinstance(detect_paging(ops["DescribeThing"], SYNTHETIC), str)
    table = PagingTable(SYNTHETIC)
    assert table.get(ops["ListMerged"]) is table.get(ops["ListMerged"]) == merged  # cached


async def test_session_bound_to_1_181_offers_pages(tmp_path: Any) -> None:
    path = spec_path("1.181.0")
    async with Tower(spec=path, token="x", endpoint="http://127.0.0.1:9", cache_dir=tmp_path) as tw:
        for oid in [*OFFSET_PAGED_1_181, *TOKEN_PAGED_1_181]:
            it = tw.operation(oid).items()
            assert it.paging.items_key
            await it.aclose()  # nothing was sent: iterators are lazy


def test_a_self_referencing_single_member_schema_is_a_verdict_not_a_recursion() -> None:
    """paging and binding share one depth-bounded kind walk (``A: {allOf: [$ref A]}``)."""
    loop = {"allOf": [{"$ref": "#/components/schemas/Loop"}]}
    document: dict[str, Any] = {
        "openapi": "3.0.1",
        "info": {"title": "t", "version": "1"},
        "components": {"schemas": {"Loop": loop}},
        "paths": {
            "/things": {
                "get": {
                    "operationId": "ListThings",
                    "parameters": [
                        {"name": n, "in": "query", "schema": {"type": "integer"}}
                        for n in ("max", "offset")
                    ],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"things": loop, "items": {"items": {}}},
                                    }
                                }
                            },
                        }
                    },
                }
            }
        },
    }
    op = bind_operations(document)["ListThings"]
    found = detect_paging(op, document)
    # the looping property is no array ("any" past the bound); an untyped `items` schema is
    assert isinstance(found, Paging) and found.items_key == "items"
