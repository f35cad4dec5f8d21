"""The fake's own OpenAPI 3.0.1 document, written for the fake (not a copy of the Platform's).

It describes exactly the operations the fake implements, with the Platform's operationIds,
paths, parameter names and JSON field names, so a client bound from it talks to the fake
just as it would to the Platform.
"""

from __future__ import annotations

import functools
from typing import Any

import yaml

__all__ = ["FAKE_TITLE", "build_document", "document_bytes"]

FAKE_TITLE = "tower-async fake Platform"

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def arr(item: Schema) -> Schema:
    return {"type": "array", "items": item}


def obj(props: dict[str, Schema], required: list[str] | None = None) -> Schema:
    out: Schema = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


S: Schema = {"type": "string"}
DT: Schema = {"type": "string", "format": "date-time"}
I64: Schema = {"type": "integer", "format": "int64"}
I32: Schema = {"type": "integer", "format": "int32"}
B: Schema = {"type": "boolean"}
N: Schema = {"type": "number", "format": "double"}


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def q(name: str, schema: Schema, description: str = "") -> Schema:
    p: Schema = {"in": "query", "name": name, "schema": schema}
    if description:
        p["description"] = description
    return p


def path_param(name: str, schema: Schema) -> Schema:
    return {"in": "path", "name": name, "required": True, "schema": schema}


WS = q("workspaceId", I64, "Workspace numeric identifier")
MAX = q("max", I32, "Pagination max results")
OFFSET = q("offset", I32, "Pagination offset")
SEARCH = q("search", S, "Filter search parameter")
ATTRS = {
    "in": "query",
    "name": "attributes",
    "explode": False,
    "style": "form",
    "schema": arr(S),
}


def op(
    operation_id: str,
    summary: str,
    *,
    params: list[Schema] | None = None,
    ok: Schema | None = None,
    ok_status: str = "200",
    ok_content_type: str = "application/json",
    body: Schema | None = None,
    body_type: str = "application/json",
    auth: bool = True,
    tag: str = "default",
    extra_errors: tuple[str, ...] = (),
) -> Schema:
    responses: Schema = {}
    if ok is None:
        responses[ok_status] = {"description": "OK - No content"}
    else:
        responses[ok_status] = {
            "description": "OK",
            "content": {ok_content_type: {"schema": ok}},
        }
    err = {"content": {"application/json": {"schema": ref("ErrorResponse")}}}
    responses["400"] = {"description": "Bad request", **err}
    if auth:
        responses["403"] = {"description": "Operation not allowed"}
    for code in extra_errors:
        responses[code] = {"description": "Not found" if code == "404" else "Conflict", **err}
    out: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
    }
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = {"required": True, "content": {body_type: {"schema": body}}}
    if auth:
        out["security"] = [{"BearerAuth": []}]
    return out


_LOAD_FIELDS = (
    "pending",
    "submitted",
    "running",
    "succeeded",
    "failed",
    "cached",
    "ignored",
    "aborted",
    "retries",
    "loadTasks",
    "loadCpus",
    "loadMemory",
    "peakCpus",
    "peakTasks",
    "peakMemory",
    "cpus",
    "cpuTime",
    "cpuLoad",
    "memoryRss",
    "memoryReq",
    "readBytes",
    "writeBytes",
    "volCtxSwitch",
    "invCtxSwitch",
)
VISIBILITY: Schema = {"type": "string", "enum": ["PRIVATE", "SHARED"]}


def _launch_common() -> dict[str, Schema]:
    """What a saved launch (pipeline's) and a run's launch both report."""
    return {
        "id": S,
        "computeEnv": nullable(ref("ComputeEnvResponseDto")),
        "pipeline": S,
        "workDir": nullable(S),
        "revision": nullable(S),
        "commitId": nullable(S),
        "configProfiles": nullable(arr(S)),
        "configText": nullable(S),
        "paramsText": nullable(S),
        "preRunScript": nullable(S),
        "postRunScript": nullable(S),
        "mainScript": nullable(S),
        "entryName": nullable(S),
        "schemaName": nullable(S),
        "pullLatest": nullable(B),
        "resume": nullable(B),
        "stubRun": nullable(B),
        "sessionId": nullable(S),
        "towerConfig": nullable(S),
        "userSecrets": nullable(arr(S)),
        "workspaceSecrets": nullable(arr(S)),
        "dateCreated": nullable(DT),
    }


def _label() -> Schema:
    return obj(
        {
            "id": I64,
            "name": S,
            "value": nullable(S),
            "resource": B,
            "isDefault": B,
            "isDynamic": B,
            "isInterpolated": B,
            "dateCreated": nullable(DT),
        }
    )


def _load_fields() -> dict[str, Schema]:
    return {k: I64 for k in _LOAD_FIELDS}


def _workflow_props() -> dict[str, Schema]:
    return {
        "id": S,
        "status": ref("WorkflowStatus"),
        "runName": S,
        "projectName": S,
        "repository": nullable(S),
        "revision": nullable(S),
        "commitId": nullable(S),
        "sessionId": S,
        "submit": DT,
        "start": nullable(DT),
        "complete": nullable(DT),
        "dateCreated": nullable(DT),
        "lastUpdated": nullable(DT),
        "duration": nullable(I64),
        "commandLine": S,
        "params": nullable({"type": "object", "additionalProperties": True}),
        "configText": nullable(S),
        "configFiles": nullable(arr(S)),
        "profile": nullable(S),
        "workDir": S,
        "launchDir": nullable(S),
        "projectDir": nullable(S),
        "homeDir": nullable(S),
        "scriptName": nullable(S),
        "scriptFile": nullable(S),
        "scriptId": nullable(S),
        "launchId": nullable(S),
        "userName": S,
        "ownerId": nullable(I64),
        "container": nullable(S),
        "containerEngine": nullable(S),
        "resume": nullable(B),
        "success": nullable(B),
        "exitStatus": nullable(I32),
        "errorMessage": nullable(S),
        "errorReport": nullable(S),
        "deleted": nullable(B),
        "requiresAttention": nullable(B),
        "manifest": nullable({"type": "object", "additionalProperties": True}),
        "nextflow": nullable({"type": "object", "additionalProperties": True}),
        "stats": nullable({"type": "object", "additionalProperties": True}),
    }


def _ws_extras() -> dict[str, Schema]:
    return {
        "orgId": nullable(I64),
        "orgName": nullable(S),
        "workspaceId": nullable(I64),
        "workspaceName": nullable(S),
    }


def _compute_env() -> Schema:
    return obj(
        {
            "id": S,
            "name": S,
            "platform": S,
            "status": ref("ComputeEnv.Status"),
            "primary": nullable(B),
            "config": {"type": "object", "additionalProperties": True},
            "credentialsId": nullable(S),
            "description": nullable(S),
            "message": nullable(S),
            "dateCreated": nullable(DT),
            "lastUpdated": nullable(DT),
            "lastUsed": nullable(DT),
            "deleted": nullable(B),
            "orgId": nullable(I64),
            "workspaceId": nullable(I64),
            "labels": nullable(arr(ref("LabelDbDto"))),
        }
    )


def _dataset() -> Schema:
    return obj(
        {
            "id": S,
            "name": S,
            "description": nullable(S),
            "workspaceId": nullable(I64),
            "organizationId": nullable(I64),
            "mediaType": nullable(S),
            "version": nullable(I64),
            "sourceType": nullable(S),
            "deleted": B,
            "hidden": B,
            "labels": nullable(arr(ref("LabelDbDto"))),
            "dateCreated": nullable(DT),
            "lastUpdated": nullable(DT),
        }
    )


def _status_schemas() -> dict[str, Schema]:
    return {
        "ErrorResponse": obj({"message": S}, ["message"]),
        "WorkflowStatus": {
            "type": "string",
            "enum": ["SUBMITTED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"],
        },
        "TaskStatus": {
            "type": "string",
            "enum": ["NEW", "SUBMITTED", "RUNNING", "CACHED", "COMPLETED", "FAILED", "ABORTED"],
        },
        "ComputeEnv.Status": {
            "type": "string",
            "enum": ["CREATING", "AVAILABLE", "ERRORED", "INVALID"],
        },
        "ServiceInfoResponse": obj(
            {
                "serviceInfo": obj(
                    {
                        "version": S,
                        "apiVersion": S,
                        "commitId": S,
                        "authTypes": arr(S),
                        "loginPath": S,
                        "landingUrl": nullable(S),
                        "termsOfUseUrl": nullable(S),
                        "contentUrl": S,
                        "contentMaxFileSize": I64,
                        "heartbeatInterval": I32,
                        "allowInstanceCredentials": B,
                        "allowLocalRepos": B,
                        "allowNextflowCliLogs": B,
                        "userWorkspaceEnabled": B,
                        "seqeraCloud": B,
                        "waveEnabled": B,
                        "groundswellEnabled": B,
                        "llmEnabled": B,
                    }
                )
            }
        ),
    }


def _user_schemas() -> dict[str, Schema]:
    return {
        "DescribeUserResponse": obj(
            {
                "user": obj(
                    {
                        "id": I64,
                        "userName": S,
                        "email": S,
                        "firstName": nullable(S),
                        "lastName": nullable(S),
                        "organization": nullable(S),
                        "description": nullable(S),
                        "avatar": nullable(S),
                        "avatarId": nullable(S),
                        "notification": nullable(B),
                        "termsOfUseConsent": nullable(B),
                        "marketingConsent": nullable(B),
                        "lastAccess": nullable(DT),
                        "dateCreated": nullable(DT),
                        "lastUpdated": nullable(DT),
                        "deleted": nullable(B),
                    }
                ),
                "needConsent": B,
                "defaultWorkspaceId": nullable(I64),
            }
        ),
        "ListWorkspacesAndOrgResponse": obj(
            {
                "orgsAndWorkspaces": arr(
                    obj(
                        {
                            "orgId": I64,
                            "orgName": S,
                            "orgLogoUrl": nullable(S),
                            "orgType": nullable(S),
                            "workspaceId": nullable(I64),
                            "workspaceName": nullable(S),
                            "workspaceFullName": nullable(S),
                            "visibility": nullable(
                                {"type": "string", "enum": ["PRIVATE", "SHARED"]}
                            ),
                            "roles": arr(S),
                        }
                    )
                )
            }
        ),
    }


def _org_schemas() -> dict[str, Schema]:
    return {
        "ListOrganizationsResponse": obj(
            {
                "organizations": arr(
                    obj(
                        {
                            "orgId": I64,
                            "name": S,
                            "fullName": S,
                            "description": nullable(S),
                            "location": nullable(S),
                            "website": nullable(S),
                            "logoId": nullable(S),
                            "logoUrl": nullable(S),
                            "memberId": nullable(I64),
                            "memberRole": nullable(S),
                            "paying": nullable(B),
                            "type": nullable(S),
                        }
                    )
                ),
                "totalSize": I64,
            }
        ),
        "ListWorkspacesResponse": obj(
            {
                "workspaces": arr(
                    obj(
                        {
                            "id": I64,
                            "name": S,
                            "fullName": S,
                            "description": nullable(S),
                            "visibility": VISIBILITY,
                        }
                    )
                )
            }
        ),
    }


def _compute_env_schemas() -> dict[str, Schema]:
    return {
        "LabelDbDto": _label(),
        "ListComputeEnvsResponse": obj(
            {
                "computeEnvs": arr(
                    obj(
                        {
                            "id": S,
                            "name": S,
                            "platform": S,
                            "status": ref("ComputeEnv.Status"),
                            "primary": nullable(B),
                            "workDir": nullable(S),
                            "region": nullable(S),
                            "credentialsId": nullable(S),
                            "description": nullable(S),
                            "lastUsed": nullable(DT),
                            "message": nullable(S),
                            "visibility": nullable(S),
                            "workspaceName": nullable(S),
                            "labels": nullable(arr(ref("LabelDbDto"))),
                        }
                    )
                )
            }
        ),
        "ComputeEnvResponseDto": _compute_env(),
        "DescribeComputeEnvResponse": obj({"computeEnv": ref("ComputeEnvResponseDto")}),
    }


def _pipeline_schemas() -> dict[str, Schema]:
    return {
        "PipelineDbDto": obj(
            {
                "pipelineId": I64,
                "name": S,
                "description": nullable(S),
                "icon": nullable(S),
                "repository": S,
                "userId": I64,
                "userName": S,
                "userFirstName": nullable(S),
                "userLastName": nullable(S),
                "orgId": nullable(I64),
                "orgName": nullable(S),
                "workspaceId": nullable(I64),
                "workspaceName": nullable(S),
                "visibility": nullable(S),
                "deleted": B,
                "lastUpdated": nullable(DT),
                "optimizationId": nullable(S),
                "optimizationTargets": nullable(S),
                "optimizationStatus": nullable(S),
                "labels": nullable(arr(ref("LabelDbDto"))),
            }
        ),
        "ListPipelinesResponse": obj({"pipelines": arr(ref("PipelineDbDto")), "totalSize": I64}),
        "LaunchDbDto": obj(
            {
                **_launch_common(),
                "pipelineSchemaId": nullable(I64),
                "runName": nullable(S),
                "workspaceId": nullable(I64),
                "lastUpdated": nullable(DT),
            }
        ),
        "DescribeLaunchResponse": obj({"launch": ref("LaunchDbDto")}),
        "WorkflowLaunchResponse": obj(
            {
                **_launch_common(),
                "resumeDir": nullable(S),
                "resumeCommitId": nullable(S),
                "headJobCpus": nullable(I32),
                "headJobMemoryMb": nullable(I32),
            }
        ),
        "DescribeWorkflowLaunchResponse": obj({"launch": ref("WorkflowLaunchResponse")}),
    }


def _launch_schemas() -> dict[str, Schema]:
    return {
        "WorkflowLaunchRequest": obj(
            {
                "id": S,
                "commitId": S,
                "computeEnvId": S,
                "pipeline": S,
                "workDir": S,
                "revision": S,
                "runName": S,
                "sessionId": S,
                "configProfiles": arr(S),
                "configText": S,
                "paramsText": S,
                "towerConfig": S,
                "preRunScript": S,
                "postRunScript": S,
                "mainScript": S,
                "entryName": S,
                "schemaName": S,
                "pullLatest": B,
                "resume": B,
                "stubRun": B,
                "labelIds": arr(I64),
                "userSecrets": arr(S),
                "workspaceSecrets": arr(S),
                "headJobCpus": I32,
                "headJobMemoryMb": I32,
            }
        ),
        "SubmitWorkflowLaunchRequest": obj({"launch": ref("WorkflowLaunchRequest")}),
        "SubmitWorkflowLaunchResponse": obj({"workflowId": S}),
    }


def _workflow_schemas() -> dict[str, Schema]:
    return {
        "WorkflowDbDto": obj(_workflow_props()),
        "WorkflowMaxDbDto": {
            "allOf": [
                ref("WorkflowDbDto"),
                obj(
                    {
                        "configProfiles": nullable(arr(S)),
                        "logFile": nullable(S),
                        "outFile": nullable(S),
                        "operationId": nullable(S),
                        "towerConfig": nullable(S),
                        "preRunScript": nullable(S),
                        "postRunScript": nullable(S),
                        "nextflowConfig": nullable(S),
                    }
                ),
            ]
        },
        "WorkflowLoad": obj(_load_fields()),
        "ProcessLoad": obj({"process": S, **_load_fields()}),
        "ProgressData": obj(
            {
                "workflowProgress": ref("WorkflowLoad"),
                "processesProgress": arr(ref("ProcessLoad")),
                "totalProcesses": I32,
            }
        ),
        "ListWorkflowsResponse.ListWorkflowsElement": obj(
            {
                "workflow": ref("WorkflowDbDto"),
                "progress": nullable(ref("ProgressData")),
                "labels": nullable(arr(ref("LabelDbDto"))),
                "starred": nullable(B),
                "optimized": nullable(B),
                **_ws_extras(),
            }
        ),
    }


def _workflow_answer_schemas() -> dict[str, Schema]:
    return {
        "ListWorkflowsResponse": obj(
            {
                "workflows": arr(ref("ListWorkflowsResponse.ListWorkflowsElement")),
                "totalSize": I64,
                "hasMore": B,
            }
        ),
        "DescribeWorkflowResponse": obj(
            {
                "workflow": ref("WorkflowMaxDbDto"),
                "progress": nullable(ref("ProgressData")),
                "platform": nullable(obj({"id": S, "name": S})),
                "jobInfo": nullable(
                    obj(
                        {
                            "id": I64,
                            "operationId": nullable(S),
                            "message": nullable(S),
                            "status": nullable(S),
                            "exitCode": nullable(I32),
                        }
                    )
                ),
                "labels": nullable(arr(ref("LabelDbDto"))),
                "optimized": nullable(B),
                "messages": nullable(arr(S)),
                **_ws_extras(),
            }
        ),
        "GetProgressResponse": obj({"progress": ref("ProgressData")}),
    }


def _task_log_schemas() -> dict[str, Schema]:
    return {
        "Task": obj(
            {
                "id": I64,
                "taskId": I64,
                "hash": nullable(S),
                "name": nullable(S),
                "process": nullable(S),
                "tag": nullable(S),
                "status": ref("TaskStatus"),
                "exit": nullable(I32),
                "exitStatus": nullable(I32),
                "attempt": nullable(I32),
                "submit": nullable(DT),
                "start": nullable(DT),
                "complete": nullable(DT),
                "dateCreated": nullable(DT),
                "lastUpdated": nullable(DT),
                "workdir": nullable(S),
                "script": nullable(S),
                "executor": nullable(S),
                "queue": nullable(S),
                "container": nullable(S),
                "cpus": nullable(I32),
                "memory": nullable(I64),
                "duration": nullable(I64),
                "realtime": nullable(I64),
                "nativeId": nullable(S),
                "module": nullable(arr(S)),
                "errorAction": nullable(S),
            },
            ["status", "taskId"],
        ),
        "DescribeTaskResponse": obj({"task": ref("Task")}),
        "ListTasksResponse": obj({"tasks": arr(ref("DescribeTaskResponse")), "total": I64}),
        # the Platform's document (1.181.0) declares ``entries`` as ``Iterator_String_``, an
        # empty ``type: object`` (a Java Iterator<String>), but the Platform serializes it as
        # a JSON array of lines; the fake documents what it sends
        "LogPage.Download": obj({"displayText": S, "fileName": S, "saveName": S}),
        "LogPage": obj(
            {
                "downloads": arr(ref("LogPage.Download")),
                "entries": arr(S),
                "forwardToken": S,
                "message": S,
                "pending": B,
                "rewindToken": S,
                "truncated": B,
            }
        ),
        "WorkflowLogResponse": obj({"log": ref("LogPage")}),
    }


def _label_dataset_schemas() -> dict[str, Schema]:
    return {
        "ListLabelsResponse": obj({"labels": arr(ref("LabelDbDto")), "totalSize": I64}),
        "CreateLabelRequest": obj({"name": S, "value": S, "resource": B, "isDefault": B}),
        "CreateLabelResponse": obj(
            {"id": I64, "name": S, "value": nullable(S), "resource": B, "isDefault": B}
        ),
        "DatasetDto": _dataset(),
        "ListDatasetsResponse": obj({"datasets": arr(ref("DatasetDto")), "totalSize": I64}),
        "CreateDatasetRequest": obj({"name": S, "description": S}),
        "CreateDatasetResponse": obj({"dataset": ref("DatasetDto")}),
        "MultiRequestFileSchema": obj({"file": {"type": "string", "format": "binary"}}),
        "DatasetVersionDto": obj(
            {
                "datasetId": S,
                "datasetName": S,
                "datasetDescription": nullable(S),
                "version": I64,
                "fileName": S,
                "fileSize": I64,
                "mediaType": S,
                "hasHeader": B,
                "workspaceId": nullable(I64),
                "disabled": B,
                "dateCreated": DT,
                "lastUpdated": DT,
                "url": S,
            }
        ),
    }


def _data_link_schemas() -> dict[str, Schema]:
    return {
        "UploadDatasetVersionResponse": obj({"version": ref("DatasetVersionDto")}),
        "DataLinkDto": obj(
            {
                "id": S,
                "name": S,
                "description": nullable(S),
                "resourceRef": S,
                "type": S,
                "provider": S,
                "region": nullable(S),
                "credentials": arr({"type": "object", "additionalProperties": True}),
                "publicAccessible": B,
                "hidden": B,
                "status": nullable(S),
                "message": nullable(S),
            }
        ),
        "DataLinksListResponse": obj({"dataLinks": arr(ref("DataLinkDto")), "totalSize": I64}),
        "DataLinkItem": obj(
            {
                "type": {"type": "string", "enum": ["FOLDER", "FILE"]},
                "name": S,
                "size": I64,
                "mimeType": nullable(S),
            }
        ),
        "DataLinkContentResponse": obj(
            {
                "objects": arr(ref("DataLinkItem")),
                "nextPageToken": nullable(S),
                "originalPath": nullable(S),
            }
        ),
    }


def _schemas() -> dict[str, Schema]:
    return {
        **_status_schemas(),
        **_user_schemas(),
        **_org_schemas(),
        **_compute_env_schemas(),
        **_pipeline_schemas(),
        **_launch_schemas(),
        **_workflow_schemas(),
        **_workflow_answer_schemas(),
        **_task_log_schemas(),
        **_label_dataset_schemas(),
        **_data_link_schemas(),
    }


def _account_paths() -> dict[str, Any]:
    return {
        "/service-info": {
            "get": op(
                "Info",
                "General Seqera service features and version.",
                ok=ref("ServiceInfoResponse"),
                auth=False,
                tag="service-info",
            )
        },
        "/user-info": {
            "get": op("UserInfo", "Describe current user", ok=ref("DescribeUserResponse"))
        },
        "/user/{userId}/workspaces": {
            "get": op(
                "ListWorkspacesUser",
                "List user workspaces and organizations",
                params=[path_param("userId", I64)],
                ok=ref("ListWorkspacesAndOrgResponse"),
                tag="workspaces",
            )
        },
        "/orgs": {
            "get": op(
                "ListOrganizations",
                "List organizations",
                params=[q("role", S)],
                ok=ref("ListOrganizationsResponse"),
                tag="orgs",
            )
        },
        "/orgs/{orgId}/workspaces": {
            "get": op(
                "ListWorkspaces",
                "List organization workspaces",
                params=[path_param("orgId", I64)],
                ok=ref("ListWorkspacesResponse"),
                tag="workspaces",
            )
        },
    }


def _pipeline_paths() -> dict[str, Any]:
    return {
        "/compute-envs": {
            "get": op(
                "ListComputeEnvs",
                "List compute environments",
                params=[q("status", S), WS, ATTRS],
                ok=ref("ListComputeEnvsResponse"),
                tag="compute-envs",
            )
        },
        "/compute-envs/{computeEnvId}": {
            "get": op(
                "DescribeComputeEnv",
                "Describe compute environment",
                params=[path_param("computeEnvId", S), WS, ATTRS],
                ok=ref("DescribeComputeEnvResponse"),
                tag="compute-envs",
                extra_errors=("404",),
            )
        },
        "/pipelines": {
            "get": op(
                "ListPipelines",
                "List pipelines",
                params=[ATTRS, WS, MAX, OFFSET, SEARCH, q("visibility", S)],
                ok=ref("ListPipelinesResponse"),
                tag="pipelines",
            )
        },
        "/pipelines/{pipelineId}/launch": {
            "get": op(
                "DescribePipelineLaunch",
                "Describe pipeline launch",
                params=[path_param("pipelineId", I64), WS, q("sourceWorkspaceId", I64)],
                ok=ref("DescribeLaunchResponse"),
                tag="pipelines",
                extra_errors=("404",),
            )
        },
    }


def _workflow_paths() -> dict[str, Any]:
    wf_id = path_param("workflowId", S)
    return {
        "/workflow/launch": {
            "post": op(
                "CreateWorkflowLaunch",
                "Launch workflow",
                params=[WS, q("sourceWorkspaceId", I64)],
                body=ref("SubmitWorkflowLaunchRequest"),
                ok=ref("SubmitWorkflowLaunchResponse"),
                tag="workflows",
            )
        },
        "/workflow": {
            "get": op(
                "ListWorkflows",
                "List workflows",
                params=[
                    ATTRS,
                    WS,
                    MAX,
                    OFFSET,
                    SEARCH,
                    q("includeTotalSize", B, "Include total size in the response"),
                ],
                ok=ref("ListWorkflowsResponse"),
                tag="workflows",
            )
        },
        "/workflow/{workflowId}": {
            "get": op(
                "DescribeWorkflow",
                "Describe workflow",
                params=[wf_id, WS, ATTRS],
                ok=ref("DescribeWorkflowResponse"),
                tag="workflows",
                extra_errors=("404",),
            ),
            "delete": op(
                "DeleteWorkflow",
                "Delete the workflow",
                params=[wf_id, WS, q("force", B)],
                ok_status="204",
                tag="workflows",
                extra_errors=("404", "409"),
            ),
        },
    }


def _run_paths() -> dict[str, Any]:
    wf_id = path_param("workflowId", S)
    return {
        "/workflow/{workflowId}/launch": {
            "get": op(
                "DescribeWorkflowLaunch",
                "Describe workflow launch",
                params=[wf_id, WS],
                ok=ref("DescribeWorkflowLaunchResponse"),
                tag="workflows",
                extra_errors=("404",),
            )
        },
        "/workflow/{workflowId}/cancel": {
            "post": op(
                "CancelWorkflow",
                "Cancel workflow",
                params=[wf_id, WS, q("force", B)],
                ok_status="204",
                tag="workflows",
                extra_errors=("404",),
            )
        },
        "/workflow/{workflowId}/progress": {
            "get": op(
                "DescribeWorkflowProgress",
                "Retrieve workflow execution progress",
                params=[wf_id, WS],
                ok=ref("GetProgressResponse"),
                tag="workflows",
                extra_errors=("404",),
            )
        },
        "/workflow/{workflowId}/tasks": {
            "get": op(
                "ListWorkflowTasks",
                "List workflow tasks",
                params=[
                    wf_id,
                    WS,
                    MAX,
                    OFFSET,
                    q("sortBy", S),
                    q("sortDir", S),
                    SEARCH,
                ],
                ok=ref("ListTasksResponse"),
                tag="workflows",
                extra_errors=("404",),
            )
        },
    }


def _log_label_paths() -> dict[str, Any]:
    wf_id = path_param("workflowId", S)
    return {
        "/workflow/{workflowId}/download": {
            "get": op(
                "DownloadWorkflowLog",
                "Download workflow files",
                params=[wf_id, q("fileName", S, "Filename to download"), WS],
                ok={"type": "string", "format": "binary"},
                ok_content_type="text/plain",
                tag="workflows",
                extra_errors=("404",),
            )
        },
        "/workflow/{workflowId}/log": {
            "get": op(
                "GetWorkflowLog",
                "Get workflow logs",
                params=[
                    wf_id,
                    WS,
                    q("next", S, "Workflow log cursor"),
                    q("maxLength", I64, "Maximum length in bytes of the log to retrieve"),
                ],
                ok=ref("WorkflowLogResponse"),
                tag="workflows",
                extra_errors=("404",),
            )
        },
        "/labels": {
            "get": op(
                "ListLabels",
                "List labels",
                params=[
                    WS,
                    MAX,
                    OFFSET,
                    SEARCH,
                    q("type", {"type": "string", "enum": ["simple", "resource", "all"]}),
                    q("isDefault", B),
                ],
                ok=ref("ListLabelsResponse"),
                tag="labels",
            ),
            "post": op(
                "CreateLabel",
                "Create label",
                params=[WS],
                body=ref("CreateLabelRequest"),
                ok=ref("CreateLabelResponse"),
                tag="labels",
            ),
        },
    }


def _dataset_paths() -> dict[str, Any]:
    ws_path = path_param("workspaceId", I64)
    return {
        "/datasets": {
            "get": op(
                "ListDatasetsV2",
                "List datasets",
                params=[WS, MAX, OFFSET, SEARCH],
                ok=ref("ListDatasetsResponse"),
                tag="datasets",
            ),
            "post": op(
                "CreateDatasetV2",
                "Create dataset",
                params=[WS],
                body=ref("CreateDatasetRequest"),
                ok=ref("CreateDatasetResponse"),
                tag="datasets",
                extra_errors=("409",),
            ),
        },
        "/workspaces/{workspaceId}/datasets": {
            "get": {
                **op(
                    "ListDatasets",
                    "List workspace datasets",
                    params=[ws_path],
                    ok=ref("ListDatasetsResponse"),
                    tag="datasets",
                ),
                "deprecated": True,
            },
            "post": {
                **op(
                    "CreateDataset",
                    "Create dataset",
                    params=[ws_path],
                    body=ref("CreateDatasetRequest"),
                    ok=ref("CreateDatasetResponse"),
                    tag="datasets",
                    extra_errors=("409",),
                ),
                "deprecated": True,
            },
        },
    }


def _data_link_paths() -> dict[str, Any]:
    ws_path = path_param("workspaceId", I64)
    explore_params = [
        path_param("dataLinkId", S),
        WS,
        q("search", S, "Prefix search of the data-link content"),
        q("nextPageToken", S, "Token for the next page"),
        q("pageSize", I32, "Number of items per page"),
    ]
    return {
        "/workspaces/{workspaceId}/datasets/{datasetId}/upload": {
            "post": {
                **op(
                    "UploadDataset",
                    "Upload new dataset version",
                    params=[ws_path, path_param("datasetId", S), q("header", B)],
                    body=ref("MultiRequestFileSchema"),
                    body_type="multipart/form-data",
                    ok=ref("UploadDatasetVersionResponse"),
                    tag="datasets",
                    extra_errors=("404",),
                ),
                "deprecated": True,
            }
        },
        "/data-links": {
            "get": op(
                "ListDataLinks",
                "List data-links",
                params=[WS, q("credentialsId", S), SEARCH, MAX, OFFSET, q("visibility", S)],
                ok=ref("DataLinksListResponse"),
                tag="data-links",
            )
        },
        "/data-links/{dataLinkId}/browse": {
            "get": op(
                "ExploreDataLink",
                "Explore data-link content",
                params=explore_params,
                ok=ref("DataLinkContentResponse"),
                tag="data-links",
                extra_errors=("404",),
            )
        },
        "/data-links/{dataLinkId}/browse/{path}": {
            "get": op(
                "ExploreDataLinkWithPath",
                "Explore data-link path content",
                params=[*explore_params[:1], path_param("path", S), *explore_params[1:]],
                ok=ref("DataLinkContentResponse"),
                tag="data-links",
                extra_errors=("404",),
            )
        },
    }


def _paths() -> dict[str, Any]:
    return {
        **_account_paths(),
        **_pipeline_paths(),
        **_workflow_paths(),
        **_run_paths(),
        **_log_label_paths(),
        **_dataset_paths(),
        **_data_link_paths(),
    }


def build_document(api_version: str) -> dict[str, Any]:
    """The fake's OpenAPI 3.0.1 document as a dict (fresh copy each call)."""
    return {
        "openapi": "3.0.1",
        "info": {
            "title": FAKE_TITLE,
            "version": api_version,
            "description": "In-memory stand-in for the Seqera Platform API, for tests.",
        },
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"BearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


@functools.lru_cache(maxsize=8)
def document_bytes(api_version: str) -> bytes:
    """The document as YAML bytes (cached per version)."""
    text = yaml.dump(
        build_document(api_version), Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True
    )
    return text.encode()
