"""aiohttp.web application of the fake Platform: the route table and the app's glue.

What every request goes through (auth, rate window, faults, workspace checks, errors) is
in :mod:`.middlewares`; the handlers, grouped by resource, in the ``routes_*`` modules;
the JSON forms in :mod:`.render`/:mod:`.render_runs`, answers in :mod:`.responses`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from .clock import Clock, MonotonicClock
from .faults import FaultInjector
from .middlewares import (
    NO_FAULTS,
    auth_middleware,
    error_middleware,
    fault_middleware,
    request_token,
    request_workspace,
    workspace_middleware,
)
from .pagetokens import decode_log_cursor as decode_log_cursor
from .pagetokens import encode_log_cursor as encode_log_cursor
from .records import ApiFailure
from .render import strip_nulls as strip_nulls
from .responses import JSON as JSON
from .responses import error_response, render_result
from .routes_account import (
    h_not_found,
    h_openapi,
    h_org_workspaces,
    h_orgs,
    h_service_info,
    h_user_info,
    h_user_workspaces,
)
from .routes_data import (
    h_create_dataset,
    h_explore,
    h_list_data_links,
    h_list_datasets,
    h_list_datasets_ws,
    h_upload_dataset,
)
from .routes_labels import h_create_label, h_list_labels
from .routes_pipelines import (
    h_describe_compute_env,
    h_list_compute_envs,
    h_list_pipelines,
    h_pipeline_launch,
)
from .routes_runlogs import h_download_log, h_workflow_log
from .routes_workflows import (
    h_cancel_workflow,
    h_delete_workflow,
    h_describe_workflow,
    h_launch,
    h_list_workflows,
    h_progress,
    h_tasks,
    h_workflow_launch,
)
from .routing import Ctx, Route
from .routing import HandlerFn as HandlerFn
from .routing import Result as Result
from .routing import json_body as json_body
from .routing import matching as matching
from .routing import paging as paging
from .routing import q_bool as q_bool
from .routing import q_int as q_int
from .routing import q_list as q_list
from .runlogs import LOG_DEFAULT_MAX_LENGTH as LOG_DEFAULT_MAX_LENGTH
from .state import FakeState

__all__ = ["DEFAULT_API_VERSION", "FakeApp", "Route", "build_routes"]

log = logging.getLogger("tower_async.testing")

DEFAULT_API_VERSION = "1.181.0-fake"
#: routes never subject to fault injection (so a client can always bind its document)
_NO_FAULTS = NO_FAULTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# The tables name the handlers through this module's globals when called (FakeApp() calls
# them), so that a test can monkeypatch ``app.h_user_info`` and the like.
def _account_routes() -> list[Route]:
    return [
        Route("GET", "/service-info", "Info", h_service_info, auth=False),
        Route("GET", "/openapi/seqera-api-latest.yml", "OpenApiDocument", h_openapi, auth=False),
        Route("GET", "/user-info", "UserInfo", h_user_info),
        Route("GET", "/user/{userId}/workspaces", "ListWorkspacesUser", h_user_workspaces),
        Route("GET", "/orgs", "ListOrganizations", h_orgs),
        Route("GET", "/orgs/{orgId}/workspaces", "ListWorkspaces", h_org_workspaces),
        Route("GET", "/compute-envs", "ListComputeEnvs", h_list_compute_envs),
        Route("GET", "/compute-envs/{computeEnvId}", "DescribeComputeEnv", h_describe_compute_env),
        Route("GET", "/pipelines", "ListPipelines", h_list_pipelines),
        Route("GET", "/pipelines/{pipelineId}/launch", "DescribePipelineLaunch", h_pipeline_launch),
    ]


def _workflow_routes() -> list[Route]:
    wf = "/workflow/{workflowId}"
    return [
        Route("POST", "/workflow/launch", "CreateWorkflowLaunch", h_launch),
        Route("GET", "/workflow", "ListWorkflows", h_list_workflows),
        Route("GET", wf, "DescribeWorkflow", h_describe_workflow),
        Route("DELETE", wf, "DeleteWorkflow", h_delete_workflow),
        Route("POST", f"{wf}/cancel", "CancelWorkflow", h_cancel_workflow),
        Route("GET", f"{wf}/launch", "DescribeWorkflowLaunch", h_workflow_launch),
        Route("GET", f"{wf}/progress", "DescribeWorkflowProgress", h_progress),
        Route("GET", f"{wf}/tasks", "ListWorkflowTasks", h_tasks),
        Route("GET", f"{wf}/download", "DownloadWorkflowLog", h_download_log, streams=True),
        Route("GET", f"{wf}/log", "GetWorkflowLog", h_workflow_log),
    ]


def _data_routes() -> list[Route]:
    ws_datasets = "/workspaces/{workspaceId}/datasets"
    browse = "/data-links/{dataLinkId}/browse"
    return [
        Route("GET", "/labels", "ListLabels", h_list_labels),
        Route("POST", "/labels", "CreateLabel", h_create_label),
        Route("GET", "/datasets", "ListDatasetsV2", h_list_datasets),
        Route("POST", "/datasets", "CreateDatasetV2", h_create_dataset),
        Route("GET", ws_datasets, "ListDatasets", h_list_datasets_ws, workspace_in_path=True),
        Route("POST", ws_datasets, "CreateDataset", h_create_dataset, workspace_in_path=True),
        Route(
            "POST",
            f"{ws_datasets}/{{datasetId}}/upload",
            "UploadDataset",
            h_upload_dataset,
            workspace_in_path=True,
        ),
        Route("GET", "/data-links", "ListDataLinks", h_list_data_links),
        Route("GET", browse, "ExploreDataLink", h_explore),
        Route("GET", f"{browse}/{{path:.+}}", "ExploreDataLinkWithPath", h_explore),
    ]


def build_routes() -> list[Route]:
    return [*_account_routes(), *_workflow_routes(), *_data_routes()]


class FakeApp:
    """Glue between aiohttp and a :class:`FakeState`: one instance per server."""

    def __init__(
        self,
        state: FakeState,
        faults: FaultInjector,
        *,
        rate_clock: Clock | None = None,
        api_version: str = DEFAULT_API_VERSION,
        spec_bytes: bytes = b"",
        platform_version: str = "25.2.0-fake",
        emit_nulls: bool = False,
    ) -> None:
        self.state = state
        self.faults = faults
        self.rate_clock: Clock = rate_clock if rate_clock is not None else MonotonicClock()
        self.api_version = api_version
        self.platform_version = platform_version
        self.spec_bytes = spec_bytes
        #: keep null members in JSON payloads (default: omitted, as the Platform does)
        self.emit_nulls = emit_nulls
        #: unhandled exceptions turned into 500s (should stay empty: each one is a bug)
        self.errors: list[BaseException] = []
        #: operationIds of requests whose client went away before the answer (not bugs)
        self.disconnects: list[str] = []
        self.routes = build_routes()
        self._route_of: dict[Handler, Route] = {}

    def make_app(self) -> web.Application:
        """The aiohttp application: the routes (and a catch-all 404) behind the middlewares
        (outermost first): errors, auth and rate window, faults, workspace checks."""
        route_of = self._route_of_request
        app = web.Application(
            client_max_size=64 * 1024 * 1024,
            middlewares=[
                error_middleware(self, route_of),
                auth_middleware(self, route_of),
                fault_middleware(self, route_of),
                workspace_middleware(self, route_of),
            ],
        )
        catch_all = Route("*", "/{tail:.*}", "NotFound", h_not_found, auth=False)
        for route in [*self.routes, catch_all]:
            app.router.add_route(route.method, route.path, self._endpoint(route))
        return app

    def _route_of_request(self, request: web.Request) -> Route | None:
        return self._route_of.get(request.match_info.handler)

    def _endpoint(self, route: Route) -> Handler:
        """The aiohttp handler of ``route``: its function's result, rendered."""

        async def endpoint(request: web.Request) -> web.StreamResponse:
            token, workspace_id = request_token(request), request_workspace(request)
            ctx = Ctx(request, self.state, token, workspace_id, request.query)
            try:
                result = await route.fn(self, ctx)
            except ApiFailure as failure:
                return error_response(failure.status, failure.message)
            return render_result(result, emit_nulls=self.emit_nulls)

        self._route_of[endpoint] = route
        return endpoint


def read_spec_version(path: Path) -> str:
    """``info.version`` of an OpenAPI YAML file, without parsing the whole document."""
    in_info = False
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("info:"):
                in_info = True
                continue
            if in_info:
                if line and not line[0].isspace():
                    break
                m = re.match(r"^\s+version:\s*['\"]?([^'\"\s]+)", line)
                if m:
                    return m.group(1)
    return "unknown"
