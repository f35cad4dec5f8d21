"""Seed data of the fake Platform: the :class:`Catalog` of records with its ``add_*``
helpers (what tests seed with), and the data every fake starts with (:func:`seed_defaults`).
"""

from __future__ import annotations

import random
import string
from typing import Any, Literal

from .clock import Clock
from .ratewindow import SlidingWindow
from .records import (
    ComputeEnv,
    DataLink,
    Dataset,
    Label,
    LaunchRecord,
    Org,
    Pipeline,
    RunDurations,
    TokenInfo,
    Workflow,
    Workspace,
)
from .render import iso
from .rules import commit_for

__all__ = ["Catalog", "default_user", "seed_defaults"]

_ID_ALPHABET = string.ascii_letters + string.digits


def default_user(now: float) -> dict[str, Any]:
    """The one user of a fake Platform (``UserInfo``), as of ``now``."""
    return {
        "id": 1001,
        "userName": "fake-user",
        "email": "fake-user@example.com",
        "firstName": "Fake",
        "lastName": "User",
        "organization": "tower-async",
        "description": None,
        "avatar": None,
        "avatarId": None,
        "notification": True,
        "termsOfUseConsent": True,
        "marketingConsent": False,
        "lastAccess": iso(now),
        "dateCreated": iso(now - 86400 * 365),
        "lastUpdated": iso(now - 86400),
        "deleted": False,
    }


class Catalog:
    """The records of one fake Platform, with the helpers that add them.

    The attributes are set by :class:`~tower_async.testing.state.FakeState`.
    """

    rng: random.Random
    clock: Clock
    rate_limit: int | None
    rate_window: float
    durations: RunDurations
    tasks_per_run: int
    tokens: dict[str, TokenInfo]
    orgs: dict[int, Org]
    workspaces: dict[int, Workspace]
    compute_envs: dict[str, ComputeEnv]
    pipelines: dict[int, Pipeline]
    workflows: dict[str, Workflow]
    labels: dict[int, Label]
    datasets: dict[str, Dataset]
    data_links: dict[str, DataLink]
    launches: list[LaunchRecord]
    _next_int: int

    # ------------------------------------------------------------------ ids, tokens
    def _int_id(self) -> int:
        self._next_int += 1
        return self._next_int

    def random_id(self, length: int = 14) -> str:
        return "".join(self.rng.choice(_ID_ALPHABET) for _ in range(length))

    def add_token(
        self,
        workspaces: list[int] | None = None,
        *,
        rate_limit: int | Literal["default"] | None = "default",
        token: str | None = None,
    ) -> str:
        """Register a token and return it.

        ``workspaces=None``: every workspace. ``rate_limit``: calls per window for this
        token (``None`` = unlimited; default: the state's ``rate_limit``).
        """
        value = token or "fake-" + self.random_id(40)
        limit = self.rate_limit if rate_limit == "default" else rate_limit
        self.tokens[value] = TokenInfo(
            token=value,
            workspaces=None if workspaces is None else frozenset(workspaces),
            window=SlidingWindow(limit=limit, window=self.rate_window),
        )
        return value

    def add_org(self, name: str, full_name: str | None = None) -> Org:
        org = Org(id=self._int_id() * 1000, name=name, full_name=full_name or name)
        self.orgs[org.id] = org
        return org

    def add_workspace(
        self, org: Org | str, name: str, *, with_compute_env: bool = True
    ) -> Workspace:
        if isinstance(org, str):
            org = self.org_by_name(org)
        ws_id = self._int_id() * 1000 + 7
        ws = Workspace(id=ws_id, org=org, name=name, full_name=f"{org.name} {name}")
        self.workspaces[ws.id] = ws
        if with_compute_env:
            self.add_compute_env(ws.id, f"{name}-aws-batch", primary=True)
        return ws

    def org_by_name(self, name: str) -> Org:
        for org in self.orgs.values():
            if org.name == name:
                return org
        raise KeyError(name)

    def workspace_by_name(self, org: str, name: str) -> Workspace:
        for ws in self.workspaces.values():
            if ws.org.name == org and ws.name == name:
                return ws
        raise KeyError(f"{org}/{name}")

    def add_compute_env(
        self,
        workspace_id: int | None,
        name: str,
        *,
        primary: bool = False,
        status: str = "AVAILABLE",
        platform: str = "aws-batch",
        work_dir: str | None = None,
    ) -> ComputeEnv:
        ws = self.workspaces.get(workspace_id) if workspace_id is not None else None
        ce = ComputeEnv(
            id=self.random_id(22),
            workspace_id=workspace_id,
            org_id=ws.org.id if ws else None,
            name=name,
            platform=platform,
            status=status,
            primary=primary,
            work_dir=work_dir or f"s3://fake-bucket-{workspace_id}/work",
            created=self.clock.now(),
        )
        self.compute_envs[ce.id] = ce
        return ce

    def primary_compute_env(self, workspace_id: int | None) -> ComputeEnv | None:
        for ce in self.compute_envs.values():
            if ce.workspace_id == workspace_id and ce.primary:
                return ce
        return None

    def add_pipeline(
        self,
        workspace_id: int | None,
        name: str,
        repository: str | None = None,
        *,
        compute_env_id: str | None = None,
        revision: str | None = "master",
        params_text: str | None = None,
        config_profiles: list[str] | None = None,
        description: str | None = None,
    ) -> Pipeline:
        if compute_env_id is None:
            ce = self.primary_compute_env(workspace_id)
            if ce is None:
                ce = self.add_compute_env(workspace_id, "default-ce", primary=True)
            compute_env_id = ce.id
        ce = self.compute_envs[compute_env_id]
        p = Pipeline(
            id=self._int_id() * 100 + 3,
            workspace_id=workspace_id,
            name=name,
            repository=repository or f"https://github.com/{name}",
            compute_env_id=compute_env_id,
            launch_id=self.random_id(22),
            revision=revision,
            work_dir=ce.work_dir,
            config_profiles=list(config_profiles or []),
            params_text=params_text,
            description=description,
        )
        self.pipelines[p.id] = p
        return p

    def add_label(
        self,
        workspace_id: int | None,
        name: str,
        value: str | None = None,
        *,
        resource: bool = False,
        is_default: bool = False,
    ) -> Label:
        label = Label(
            id=self._int_id(),
            workspace_id=workspace_id,
            name=name,
            value=value,
            resource=resource,
            is_default=is_default,
            created=self.clock.now(),
        )
        self.labels[label.id] = label
        return label

    def add_data_link(
        self, workspace_id: int | None, name: str, files: dict[str, int] | None = None
    ) -> DataLink:
        dl = DataLink(
            id="v1-cloud-" + self.random_id(20),
            workspace_id=workspace_id,
            name=name,
            resource_ref=f"s3://{name}",
            files=dict(files or {}),
        )
        self.data_links[dl.id] = dl
        return dl

    def add_workflows(
        self,
        workspace_id: int | None,
        n: int,
        *,
        status: str | None = None,
        project_name: str = "nf-core/rnaseq",
        run_name_prefix: str = "bulk",
    ) -> list[str]:
        """Bulk-create ``n`` runs quickly (for paging tests). Returns their ids, oldest first.

        ``status`` pins them to a state: SUBMITTED, RUNNING, SUCCEEDED, FAILED or CANCELLED
        (by backdating their submit time); default: freshly SUBMITTED.
        """
        now = self.clock.now()
        ce = self.primary_compute_env(workspace_id)
        ce_id = ce.id if ce else "none"
        ids: list[str] = []
        d = self.durations
        back = {
            None: 0.0,
            "SUBMITTED": 0.0,
            "RUNNING": d.submitted + d.running / 2,
            "SUCCEEDED": d.submitted + d.running + 1,
            "FAILED": d.submitted + d.running + 1,
            "CANCELLED": 0.0,
        }
        if status not in back:
            raise ValueError(f"cannot pin a run to status {status!r}")
        for i in range(n):
            wf = Workflow(
                id=self._unique_workflow_id(),
                workspace_id=workspace_id,
                run_name=f"{run_name_prefix}_{i:05d}",
                project_name=project_name,
                repository=f"https://github.com/{project_name}",
                compute_env_id=ce_id,
                work_dir=ce.work_dir if ce else "s3://fake/work",
                launch_id=self.random_id(22),
                session_id=self.random_id(32),
                submit=now - back[status] - (n - i) * 1e-3,
                params={"index": i},
                fails=status == "FAILED",
                cancelled_at=now if status == "CANCELLED" else None,
                commit_id=commit_for(f"https://github.com/{project_name}", None),
                n_tasks=self.tasks_per_run,
                durations=RunDurations(d.submitted, d.running),
            )
            self.workflows[wf.id] = wf
            ids.append(wf.id)
        return ids

    def _unique_workflow_id(self) -> str:
        while True:
            wid = self.random_id(14)
            if wid not in self.workflows:
                return wid


def seed_defaults(catalog: Catalog) -> None:
    """Seed the data every fake Platform starts with (see FakeState)."""
    community = catalog.add_org("community", "Community")
    my_org = catalog.add_org("my-org", "My Organization")
    catalog.add_workspace(community, "showcase")
    catalog.add_workspace(my_org, "production")
    catalog.add_workspace(my_org, "dev")
    for ws_id in list(catalog.workspaces):
        catalog.add_pipeline(
            ws_id,
            "nf-core/rnaseq",
            "https://github.com/nf-core/rnaseq",
            revision="3.14.0",
            params_text='{"input": "samplesheet.csv", "genome": "GRCh38"}',
            config_profiles=["test"],
            description="RNA sequencing analysis pipeline",
        )
        catalog.add_pipeline(
            ws_id,
            "nf-core/rnaseq-dev",
            "https://github.com/nf-core/rnaseq",
            revision="dev",
        )
        catalog.add_pipeline(ws_id, "nf-core/sarek", "https://github.com/nf-core/sarek")
        catalog.add_pipeline(ws_id, "hello", "https://github.com/nextflow-io/hello")
        catalog.add_label(ws_id, "project", "alpha", resource=True)
        catalog.add_label(ws_id, "urgent")
        catalog.add_label(ws_id, "benchmark")
    showcase = catalog.workspace_by_name("community", "showcase")
    files = {f"reads/sample_{i:04d}_R{r}.fastq.gz": 1000 + i for i in range(250) for r in (1, 2)}
    files.update({f"results/run_{i:02d}/report.html": 5000 + i for i in range(10)})
    files["README.md"] = 120
    catalog.add_data_link(showcase.id, "fake-bucket", files)
