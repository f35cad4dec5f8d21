"""The in-memory Platform behind the fake server.

Everything here is plain Python, usable without HTTP: tests seed data with the ``add_*``
helpers, move time with ``clock.advance`` and inspect ``launches`` afterwards.

Run lifecycle: a run is SUBMITTED for ``durations.submitted`` seconds after launch, RUNNING
for ``durations.running`` seconds, then SUCCEEDED or FAILED. The status is derived from the
run clock on every read (no background tasks), so ``clock.advance(s)`` is all it takes.
A run fails when its params contain ``fail: true`` or, with ``failure_rate`` > 0, when the
seeded RNG says so at launch time (``fake.state.workflows[wid].fails = True`` scripts one).
Cancelled runs are CANCELLED.

Relaunch: every run keeps the launch it was posted with (``DescribeWorkflowLaunch``). A run
that started reports a ``commitId`` (derived from its repository and revision, or the
revision itself when that is a commit); its launch then has a ``resumeCommitId`` and can be
resumed. A run that never started, or whose ``commit_id`` a test set to None, cannot.
A launch with ``resume: true`` and a known ``sessionId`` joins that session: it must keep
the session's work directory and use a run name the session has not used (400 otherwise).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import random
import string
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import orjson
import yaml

from .clock import Clock, ManualClock
from .ratewindow import RateStats, SlidingWindow

__all__ = [
    "ComputeEnv",
    "DataLink",
    "Dataset",
    "FakeState",
    "Label",
    "LaunchRecord",
    "Org",
    "Pipeline",
    "RunDurations",
    "TokenInfo",
    "Workflow",
    "Workspace",
]

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"})
PROCESSES = ("FASTQC", "TRIMGALORE", "STAR_ALIGN", "SALMON_QUANT", "MULTIQC")
_ID_ALPHABET = string.ascii_letters + string.digits
LOG_LINE = 100  # bytes per generated run log line, newline included
#: the closing line of a finished run's log, per status
LOG_FOOTERS: dict[str, bytes] = {
    "SUCCEEDED": b"Execution complete -- Goodbye\n",
    "FAILED": b"ERROR ~ Error executing process > 'MULTIQC' -- exit status (1)\n",
    "CANCELLED": b"WARN: Execution aborted by user\n",
}


def log_line(wf_id: str, i: int) -> bytes:
    """Line ``i`` of a run's log: ``LOG_LINE`` bytes, newline included."""
    head = f"Jan-01 00:{(i // 60) % 60:02d}:{i % 60:02d}.000 [Task monitor] INFO  nextflow - "
    text = f"{head}run {wf_id} log line {i:09d} "
    return (text + "." * (LOG_LINE - 1 - len(text)) + "\n").encode()


class ApiFailure(Exception):
    """Raised by state operations; the server answers ``status`` with ``{"message"}``."""

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _iso_seconds(int(ts))


@functools.lru_cache(maxsize=1 << 16)
def _iso_seconds(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunDurations:
    submitted: float = 5.0  # seconds in SUBMITTED
    running: float = 60.0  # seconds in RUNNING


@dataclass
class TokenInfo:
    token: str
    workspaces: frozenset[int] | None  # None: every workspace (and the user context)
    window: SlidingWindow

    @property
    def stats(self) -> RateStats:
        return self.window.stats

    def allows(self, workspace_id: int | None) -> bool:
        return self.workspaces is None or workspace_id is None or workspace_id in self.workspaces


@dataclass
class Org:
    id: int
    name: str
    full_name: str

    def dto(self) -> dict[str, Any]:
        return {
            "orgId": self.id,
            "name": self.name,
            "fullName": self.full_name,
            "description": None,
            "location": None,
            "website": None,
            "logoId": None,
            "logoUrl": None,
            "memberId": self.id * 10,
            "memberRole": "owner",
            "paying": False,
            "type": "basic",
        }


@dataclass
class Workspace:
    id: int
    org: Org
    name: str
    full_name: str
    visibility: str = "PRIVATE"

    def dto(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "fullName": self.full_name,
            "description": None,
            "visibility": self.visibility,
        }


@dataclass
class ComputeEnv:
    id: str
    workspace_id: int | None
    org_id: int | None
    name: str
    platform: str = "aws-batch"
    status: str = "AVAILABLE"
    primary: bool = False
    work_dir: str = "s3://fake-bucket/work"
    region: str = "eu-west-1"
    created: float = 0.0

    def entry(self, workspace_name: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "platform": self.platform,
            "status": self.status,
            "primary": self.primary,
            "workDir": self.work_dir,
            "region": self.region,
            "credentialsId": "cred" + self.id[:6],
            "description": None,
            "lastUsed": iso(self.created),
            "message": None,
            "visibility": "PRIVATE",
            "workspaceName": workspace_name,
            "labels": [],
        }

    def config(self) -> dict[str, Any]:
        return {
            "workDir": self.work_dir,
            "region": self.region,
            "discriminator": self.platform,
            "environment": [],
            "preRunScript": None,
            "postRunScript": None,
        }

    def dto(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "platform": self.platform,
            "status": self.status,
            "primary": self.primary,
            "config": self.config(),
            "credentialsId": "cred" + self.id[:6],
            "description": None,
            "message": None,
            "dateCreated": iso(self.created),
            "lastUpdated": iso(self.created),
            "lastUsed": iso(self.created),
            "deleted": False,
            "orgId": self.org_id,
            "workspaceId": self.workspace_id,
            "labels": [],
        }


@dataclass
class Pipeline:
    id: int
    workspace_id: int | None
    name: str
    repository: str
    compute_env_id: str
    launch_id: str
    revision: str | None = None
    work_dir: str | None = None
    config_profiles: list[str] = field(default_factory=list)
    params_text: str | None = None
    description: str | None = None


@dataclass
class Label:
    id: int
    workspace_id: int | None
    name: str
    value: str | None = None
    resource: bool = False
    is_default: bool = False
    created: float = 0.0

    def dto(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "value": self.value,
            "resource": self.resource,
            "isDefault": self.is_default,
            "isDynamic": False,
            "isInterpolated": False,
            "dateCreated": iso(self.created),
        }


@dataclass
class Workflow:
    id: str
    workspace_id: int | None
    run_name: str
    project_name: str
    repository: str
    compute_env_id: str
    work_dir: str
    launch_id: str
    session_id: str
    submit: float
    params: dict[str, Any]
    revision: str | None = None
    config_profiles: list[str] = field(default_factory=list)
    config_text: str | None = None
    fails: bool = False
    cancelled_at: float | None = None
    deleted: bool = False
    n_tasks: int = 5
    label_ids: list[int] = field(default_factory=list)
    durations: RunDurations = field(default_factory=RunDurations)
    #: the run was launched with ``resume: true`` into an existing session
    resume: bool = False
    #: the commit the run reports once started; None makes it impossible to resume
    commit_id: str | None = None
    #: the WorkflowLaunchRequest the run was posted with (empty for seeded runs)
    launch: dict[str, Any] = field(default_factory=dict)

    @property
    def start_time(self) -> float:
        return self.submit + self.durations.submitted

    @property
    def complete_time(self) -> float:
        return self.start_time + self.durations.running

    def status_at(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "CANCELLED"
        if now < self.start_time:
            return "SUBMITTED"
        if now < self.complete_time:
            return "RUNNING"
        return "FAILED" if self.fails else "SUCCEEDED"

    def fraction_at(self, now: float) -> float:
        """How far the run got, 0..1."""
        end = now if self.cancelled_at is None else min(now, self.cancelled_at)
        if end <= self.start_time:
            return 0.0
        if self.durations.running <= 0:
            return 1.0
        return min(1.0, (end - self.start_time) / self.durations.running)


@dataclass
class Dataset:
    id: str
    workspace_id: int | None
    name: str
    description: str | None
    created: float
    versions: list[dict[str, Any]] = field(default_factory=list)
    contents: list[bytes] = field(default_factory=list)


@dataclass
class DataLink:
    id: str
    workspace_id: int | None
    name: str
    resource_ref: str
    provider: str = "aws"
    files: dict[str, int] = field(default_factory=dict)  # path -> size

    def dto(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": None,
            "resourceRef": self.resource_ref,
            "type": "bucket",
            "provider": self.provider,
            "region": "eu-west-1",
            "credentials": [],
            "publicAccessible": False,
            "hidden": False,
            "status": None,
            "message": None,
        }

    def listing(self, prefix: str) -> list[dict[str, Any]]:
        """Immediate children (folders first, then files) under ``prefix``."""
        prefix = prefix.strip("/")
        base = prefix + "/" if prefix else ""
        folders: set[str] = set()
        files: list[tuple[str, int]] = []
        for path, size in self.files.items():
            if not path.startswith(base):
                continue
            rest = path[len(base) :]
            head, sep, _ = rest.partition("/")
            if sep:
                folders.add(head)
            else:
                files.append((head, size))
        items: list[dict[str, Any]] = [
            {"type": "FOLDER", "name": name + "/", "size": 0, "mimeType": None}
            for name in sorted(folders)
        ]
        items.extend(
            {"type": "FILE", "name": name, "size": size, "mimeType": "application/octet-stream"}
            for name, size in sorted(files)
        )
        return items


@dataclass
class LaunchRecord:
    workflow_id: str
    workspace_id: int | None
    token: str
    body: dict[str, Any]
    fingerprint: str
    run_name: str
    at: float
    resume: bool = False
    session_id: str = ""


def fingerprint(body: Any) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


_HEX = frozenset("0123456789abcdef")


def commit_for(repository: str, revision: str | None) -> str:
    """The commit a run of ``repository`` at ``revision`` reports (a commit stays itself)."""
    if revision and len(revision) == 40 and set(revision) <= _HEX:
        return revision
    return hashlib.sha1(f"{repository}@{revision or 'HEAD'}".encode()).hexdigest()


def parse_params(text: str | None) -> dict[str, Any]:
    """``paramsText`` is JSON or YAML holding a mapping; raises ``ApiFailure(400)``."""
    if text is None or not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ApiFailure(400, f"Invalid params text: {exc}") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiFailure(400, "Invalid params text: expected a JSON or YAML object")
    return value


_ADJECTIVES = ("amazing", "brave", "cheeky", "dreamy", "elegant", "fervent", "golden", "happy")
_NAMES = ("curie", "darwin", "euler", "franklin", "hopper", "lovelace", "mendel", "turing")


class FakeState:
    """The data of one fake Platform.

    Seeded with one user, orgs ``community`` (workspace ``showcase``) and ``my-org``
    (workspaces ``production`` and ``dev``), a primary compute env per workspace, pipelines
    ``nf-core/rnaseq``, ``nf-core/rnaseq-dev``, ``nf-core/sarek`` and ``hello`` in each
    workspace, a few labels, and a data link ``fake-bucket`` with many objects.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        rate_limit: int | None = 20,
        rate_window: float = 1.0,
        durations: RunDurations | None = None,
        failure_rate: float = 0.0,
        log_size: int = 256 * 1024,
        tasks_per_run: int = 5,
        seed_data: bool = True,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock: Clock = clock if clock is not None else ManualClock()
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.durations = durations or RunDurations()
        self.failure_rate = failure_rate
        self.log_size = log_size
        self.tasks_per_run = tasks_per_run
        #: max page sizes enforced by the server, per operationId
        self.page_caps: dict[str, int] = {"ListWorkflowTasks": 100}
        self.user: dict[str, Any] = {
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
            "lastAccess": iso(self.clock.now()),
            "dateCreated": iso(self.clock.now() - 86400 * 365),
            "lastUpdated": iso(self.clock.now() - 86400),
            "deleted": False,
        }
        self.tokens: dict[str, TokenInfo] = {}
        self.orgs: dict[int, Org] = {}
        self.workspaces: dict[int, Workspace] = {}
        self.compute_envs: dict[str, ComputeEnv] = {}
        self.pipelines: dict[int, Pipeline] = {}
        self.workflows: dict[str, Workflow] = {}
        self.labels: dict[int, Label] = {}
        self.datasets: dict[str, Dataset] = {}
        self.data_links: dict[str, DataLink] = {}
        self.launches: list[LaunchRecord] = []
        self._next_int = 1000
        if seed_data:
            self._seed()

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

    def stats(self, token: str) -> RateStats:
        return self.tokens[token].stats

    # ------------------------------------------------------------------ seeding helpers
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

    def _seed(self) -> None:
        community = self.add_org("community", "Community")
        my_org = self.add_org("my-org", "My Organization")
        self.add_workspace(community, "showcase")
        self.add_workspace(my_org, "production")
        self.add_workspace(my_org, "dev")
        for ws_id in list(self.workspaces):
            self.add_pipeline(
                ws_id,
                "nf-core/rnaseq",
                "https://github.com/nf-core/rnaseq",
                revision="3.14.0",
                params_text='{"input": "samplesheet.csv", "genome": "GRCh38"}',
                config_profiles=["test"],
                description="RNA sequencing analysis pipeline",
            )
            self.add_pipeline(
                ws_id,
                "nf-core/rnaseq-dev",
                "https://github.com/nf-core/rnaseq",
                revision="dev",
            )
            self.add_pipeline(ws_id, "nf-core/sarek", "https://github.com/nf-core/sarek")
            self.add_pipeline(ws_id, "hello", "https://github.com/nextflow-io/hello")
            self.add_label(ws_id, "project", "alpha", resource=True)
            self.add_label(ws_id, "urgent")
            self.add_label(ws_id, "benchmark")
        showcase = self.workspace_by_name("community", "showcase")
        files = {
            f"reads/sample_{i:04d}_R{r}.fastq.gz": 1000 + i for i in range(250) for r in (1, 2)
        }
        files.update({f"results/run_{i:02d}/report.html": 5000 + i for i in range(10)})
        files["README.md"] = 120
        self.add_data_link(showcase.id, "fake-bucket", files)

    # ------------------------------------------------------------------ access checks
    def check_workspace(self, workspace_id: int | None) -> None:
        if workspace_id is not None and workspace_id not in self.workspaces:
            raise ApiFailure(403, f"Workspace {workspace_id} not found or not accessible")

    # ------------------------------------------------------------------ launches
    def launch(self, workspace_id: int | None, launch: dict[str, Any], token: str) -> Workflow:
        """Validate a WorkflowLaunchRequest and submit the run (raises ApiFailure)."""
        ce, profiles, label_ids = self._check_launch(workspace_id, launch)
        params = parse_params(launch.get("paramsText"))
        run_name = launch.get("runName") or (
            f"{self.rng.choice(_ADJECTIVES)}_{self.rng.choice(_NAMES)}"
        )
        resume, session_id = self._session_for(workspace_id, launch, run_name)
        fails = bool(params.get("fail")) or (
            self.failure_rate > 0 and self.rng.random() < self.failure_rate
        )
        pipeline = launch["pipeline"]
        project = pipeline.rstrip("/")
        if project.startswith("https://github.com/"):
            project = project[len("https://github.com/") :]
        repository = pipeline if "://" in pipeline else f"https://github.com/{pipeline}"
        now = self.clock.now()
        d = self.durations
        wf = Workflow(
            id=self._unique_workflow_id(),
            workspace_id=workspace_id,
            run_name=run_name,
            project_name=project,
            repository=repository,
            compute_env_id=ce.id,
            work_dir=launch["workDir"],
            launch_id=self.random_id(22),
            session_id=session_id,
            submit=now,
            params=params,
            revision=launch.get("revision"),
            config_profiles=list(profiles or []),
            config_text=launch.get("configText"),
            fails=fails,
            n_tasks=self.tasks_per_run,
            label_ids=list(label_ids),
            durations=RunDurations(d.submitted, d.running),
            resume=resume,
            commit_id=launch.get("commitId") or commit_for(repository, launch.get("revision")),
            launch=dict(launch),
        )
        self.workflows[wf.id] = wf
        self.launches.append(
            LaunchRecord(
                workflow_id=wf.id,
                workspace_id=workspace_id,
                token=token,
                body=launch,
                fingerprint=fingerprint(launch),
                run_name=run_name,
                at=now,
                resume=resume,
                session_id=session_id,
            )
        )
        return wf

    def _check_launch(
        self, workspace_id: int | None, launch: dict[str, Any]
    ) -> tuple[ComputeEnv, list[str] | None, list[int]]:
        """The compute env, profiles and label ids of a valid launch (raises ApiFailure)."""
        for key in ("pipeline", "computeEnvId", "workDir"):
            value = launch.get(key)
            if value is None or value == "":
                raise ApiFailure(400, f"Missing required launch field '{key}'")
            if not isinstance(value, str):
                raise ApiFailure(400, f"Launch field '{key}' must be a string")
        ce = self.compute_envs.get(launch["computeEnvId"])
        if ce is None or ce.workspace_id != workspace_id:
            raise ApiFailure(400, f"Unknown compute environment '{launch['computeEnvId']}'")
        for key in ("paramsText", "runName", "revision", "configText", "id", "commitId"):
            if launch.get(key) is not None and not isinstance(launch[key], str):
                raise ApiFailure(400, f"Launch field '{key}' must be a string")
        for key in ("resume", "pullLatest", "stubRun"):
            if launch.get(key) is not None and not isinstance(launch[key], bool):
                raise ApiFailure(400, f"Launch field '{key}' must be a boolean")
        profiles = launch.get("configProfiles")
        if profiles is not None and not (
            isinstance(profiles, list) and all(isinstance(p, str) for p in profiles)
        ):
            raise ApiFailure(400, "Launch field 'configProfiles' must be a list of strings")
        label_ids = launch.get("labelIds") or []
        if not isinstance(label_ids, list) or not all(
            isinstance(i, int) and i in self.labels for i in label_ids
        ):
            raise ApiFailure(400, "Launch field 'labelIds' must list existing label ids")
        return ce, profiles, label_ids

    def _session_for(
        self, workspace_id: int | None, launch: dict[str, Any], run_name: str
    ) -> tuple[bool, str]:
        """``(resume, sessionId)`` of a launch: a resume joins the given session, if known.

        Resuming keeps the session's work directory (its cache) and needs a run name the
        session has not used yet, as Nextflow does.
        """
        session_id = launch.get("sessionId")
        if not launch.get("resume") or not isinstance(session_id, str) or not session_id:
            return bool(launch.get("resume")), self.random_id(32)
        runs = [
            wf
            for wf in self.workflows.values()
            if wf.session_id == session_id and wf.workspace_id == workspace_id
        ]
        if runs and runs[0].work_dir != launch["workDir"]:
            raise ApiFailure(
                400,
                f"Cannot resume session '{session_id}' in work directory '{launch['workDir']}': "
                f"its cache is in '{runs[0].work_dir}'",
            )
        if any(wf.run_name == run_name for wf in runs):
            raise ApiFailure(
                400,
                f"Run name '{run_name}' has already been used in session '{session_id}' "
                "-- specify a different one",
            )
        return True, session_id

    def launch_counts(self) -> Counter[str]:
        """Accepted launches per request-body fingerprint."""
        return Counter(r.fingerprint for r in self.launches)

    def launches_named(self, run_name: str) -> list[LaunchRecord]:
        return [r for r in self.launches if r.run_name == run_name]

    # ------------------------------------------------------------------ workflows
    def get_workflow(self, workflow_id: str, workspace_id: int | None) -> Workflow:
        wf = self.workflows.get(workflow_id)
        if wf is None or wf.deleted or wf.workspace_id != workspace_id:
            raise ApiFailure(404, f"Workflow '{workflow_id}' not found")
        return wf

    def status(self, wf: Workflow) -> str:
        return wf.status_at(self.clock.now())

    def cancel(self, wf: Workflow) -> None:
        if self.status(wf) in TERMINAL:
            raise ApiFailure(400, f"Workflow '{wf.id}' is not active")
        wf.cancelled_at = self.clock.now()

    def delete(self, wf: Workflow) -> None:
        if self.status(wf) not in TERMINAL:
            raise ApiFailure(409, f"Workflow '{wf.id}' is still active; cancel it first")
        wf.deleted = True

    def list_workflows(self, workspace_id: int | None, search: str | None) -> list[Workflow]:
        """Newest first, filtered by ``search`` (``status:X``, ``workflowId:X``, text)."""
        statuses: set[str] = set()
        ids: set[str] = set()
        words: list[str] = []
        for part in (search or "").split():
            key, sep, val = part.partition(":")
            if sep and key.lower() == "status":
                statuses.add(val.upper())
            elif sep and key.lower() == "workflowid":
                ids.add(val)
            else:
                words.append(part.lower())
        now = self.clock.now()
        out: list[Workflow] = []
        for wf in reversed(self.workflows.values()):
            if wf.deleted or wf.workspace_id != workspace_id:
                continue
            if statuses and wf.status_at(now) not in statuses:
                continue
            if ids and wf.id not in ids:
                continue
            if words:
                text = f"{wf.run_name} {wf.project_name}".lower()
                if not all(w in text for w in words):
                    continue
            out.append(wf)
        return out

    def started(self, wf: Workflow) -> bool:
        """Whether the run got past SUBMITTED (only then does it report a commit)."""
        now = self.clock.now()
        status = wf.status_at(now)
        return status != "SUBMITTED" and not (
            status == "CANCELLED" and wf.fraction_at(now) == 0.0 and now < wf.start_time
        )

    def workflow_launch(self, wf: Workflow) -> dict[str, Any]:
        """The run's launch (``DescribeWorkflowLaunch``): as posted, plus where to resume."""
        sent = wf.launch
        ce = self.compute_envs.get(wf.compute_env_id)
        commit = wf.commit_id if self.started(wf) else None

        def get(key: str, default: Any = None) -> Any:
            value = sent.get(key)
            return default if value is None else value

        return {
            "id": wf.launch_id,
            "computeEnv": ce.dto() if ce is not None else None,
            "pipeline": get("pipeline", wf.repository),
            "workDir": wf.work_dir,
            "revision": wf.revision,
            "commitId": get("commitId"),
            "configProfiles": list(wf.config_profiles),
            "configText": wf.config_text,
            "paramsText": get("paramsText", orjson.dumps(wf.params).decode()),
            "preRunScript": get("preRunScript"),
            "postRunScript": get("postRunScript"),
            "mainScript": get("mainScript"),
            "entryName": get("entryName"),
            "schemaName": get("schemaName"),
            "pullLatest": get("pullLatest", False),
            "resume": wf.resume,
            "stubRun": get("stubRun", False),
            "sessionId": wf.session_id,
            "resumeDir": wf.work_dir,
            "resumeCommitId": commit,
            "towerConfig": get("towerConfig"),
            "headJobCpus": get("headJobCpus"),
            "headJobMemoryMb": get("headJobMemoryMb"),
            "userSecrets": list(get("userSecrets", [])),
            "workspaceSecrets": list(get("workspaceSecrets", [])),
            "dateCreated": iso(wf.submit),
        }

    def workflow_dto(self, wf: Workflow) -> dict[str, Any]:
        now = self.clock.now()
        status = wf.status_at(now)
        started = self.started(wf)
        complete: float | None = None
        if status in ("SUCCEEDED", "FAILED"):
            complete = wf.complete_time
        elif status == "CANCELLED":
            complete = wf.cancelled_at
        duration = None if complete is None else int((complete - wf.submit) * 1000)
        return {
            "id": wf.id,
            "status": status,
            "runName": wf.run_name,
            "projectName": wf.project_name,
            "repository": wf.repository,
            "revision": wf.revision,
            "commitId": wf.commit_id if started else None,
            "sessionId": wf.session_id,
            "submit": iso(wf.submit),
            "start": iso(wf.start_time) if started else None,
            "complete": iso(complete),
            "dateCreated": iso(wf.submit),
            "lastUpdated": iso(min(now, complete) if complete is not None else now),
            "duration": duration,
            "commandLine": f"nextflow run '{wf.repository}' -name {wf.run_name}"
            + (f" -r {wf.revision}" if wf.revision else "")
            + (f" -profile {','.join(wf.config_profiles)}" if wf.config_profiles else ""),
            "params": wf.params,
            "configText": wf.config_text,
            "configFiles": [],
            "profile": ",".join(wf.config_profiles) or "standard",
            "workDir": wf.work_dir,
            "launchDir": wf.work_dir,
            "projectDir": f"/.nextflow/assets/{wf.project_name}",
            "homeDir": "/root",
            "scriptName": "main.nf",
            "scriptFile": f"/.nextflow/assets/{wf.project_name}/main.nf",
            "scriptId": wf.session_id[:32],
            "launchId": wf.launch_id,
            "userName": self.user["userName"],
            "ownerId": self.user["id"],
            "container": None,
            "containerEngine": None,
            "resume": wf.resume,
            "success": (status == "SUCCEEDED") if complete is not None else None,
            "exitStatus": {"SUCCEEDED": 0, "FAILED": 1}.get(status),
            "errorMessage": "Process terminated with an error exit status (1)"
            if status == "FAILED"
            else None,
            "errorReport": None,
            "deleted": False,
            "requiresAttention": False,
            "manifest": {"nextflowVersion": ">=23.04.0", "mainScript": "main.nf"},
            "nextflow": {"version": "24.04.4", "build": "5917", "timestamp": None},
            "stats": None,
        }

    def workflow_labels(self, wf: Workflow) -> list[dict[str, Any]]:
        return [self.labels[i].dto() for i in wf.label_ids if i in self.labels]

    def task_states(self, wf: Workflow) -> list[tuple[str, int | None]]:
        """(status, exit code) of the tasks visible now, in submission order."""
        now = self.clock.now()
        status = wf.status_at(now)
        n = wf.n_tasks
        if status == "SUBMITTED" or n == 0:
            return []
        done = min(n, int(wf.fraction_at(now) * n))
        out: list[tuple[str, int | None]] = []
        for i in range(n):
            if i < done and not (status == "FAILED" and i == n - 1):
                out.append(("COMPLETED", 0))
            elif status == "RUNNING" and i == done:
                out.append(("RUNNING", None))
            elif status == "FAILED" and i == n - 1:
                out.append(("FAILED", 1))
            elif status == "CANCELLED" and i == done:
                out.append(("ABORTED", None))
            else:
                break
        return out

    def progress(self, wf: Workflow) -> dict[str, Any]:
        """ProgressData of a run (shared, cached per task-state pattern: do not mutate)."""
        return _progress(tuple(self.task_states(wf)), wf.n_tasks)

    def tasks(self, wf: Workflow) -> list[dict[str, Any]]:
        states = self.task_states(wf)
        n = wf.n_tasks
        out: list[dict[str, Any]] = []
        for i, (st, exit_code) in enumerate(states):
            t0 = wf.start_time + i * (wf.durations.running / max(n, 1))
            process = PROCESSES[i % len(PROCESSES)]
            out.append(
                {
                    "id": i + 1,
                    "taskId": i + 1,
                    "hash": f"{i:02x}/{wf.id[:6].lower()}",
                    "name": f"{process} (sample_{i})",
                    "process": process,
                    "tag": f"sample_{i}",
                    "status": st,
                    "exit": exit_code,
                    "exitStatus": exit_code,
                    "attempt": 1,
                    "submit": iso(t0),
                    "start": iso(t0),
                    "complete": iso(t0 + 1) if exit_code is not None else None,
                    "dateCreated": iso(t0),
                    "lastUpdated": iso(t0),
                    "workdir": f"{wf.work_dir}/{i:02x}/{wf.id.lower()}",
                    "script": f"{process.lower()} --sample sample_{i}",
                    "executor": "awsbatch",
                    "queue": "fake-queue",
                    "container": "quay.io/biocontainers/fake:1.0",
                    "cpus": 2,
                    "memory": 1 << 30,
                    "duration": 1000 if exit_code is not None else None,
                    "realtime": 900 if exit_code is not None else None,
                    "nativeId": f"job-{i}",
                    "module": [],
                    "errorAction": None,
                }
            )
        return out

    def log_length(self, wf: Workflow) -> int:
        """Bytes of run log body visible now (without the closing line).

        Grows while RUNNING, where the last line can still be partly written; once the run
        is terminal the body is whole lines (the line being written is completed), so the
        closing line of :meth:`log_footer` starts a line of its own.
        """
        status = self.status(wf)
        if status == "SUBMITTED":
            return 0
        if status in ("SUCCEEDED", "FAILED"):
            visible = self.log_size
        else:
            visible = int(self.log_size * wf.fraction_at(self.clock.now()))
        if status in TERMINAL:
            visible = -(-visible // LOG_LINE) * LOG_LINE
        return visible

    def log_footer(self, wf: Workflow) -> bytes:
        """The closing line of a finished run's log (empty while the run is active)."""
        return LOG_FOOTERS.get(self.status(wf), b"")

    def log_entries(self, wf: Workflow, start: int = 0, stop: int | None = None) -> list[str]:
        """The complete lines ``[start:stop]`` of the run's log visible now, without endings.

        The same text as the download, split into lines; a partly written last line of an
        active run is left out until it is complete.
        """
        full = self.log_length(wf) // LOG_LINE
        footer = self.log_footer(wf)
        count = full + (1 if footer else 0)
        stop = count if stop is None else min(stop, count)
        lines = [log_line(wf.id, i)[:-1].decode() for i in range(start, min(stop, full))]
        if footer and start <= full < stop:
            lines.append(footer.rstrip(b"\n").decode())
        return lines

    # ------------------------------------------------------------------ datasets
    def create_dataset(
        self, workspace_id: int | None, name: str, description: str | None
    ) -> Dataset:
        for ds in self.datasets.values():
            if ds.workspace_id == workspace_id and ds.name == name:
                raise ApiFailure(409, f"A dataset named '{name}' already exists")
        ds = Dataset(
            id=self.random_id(22),
            workspace_id=workspace_id,
            name=name,
            description=description,
            created=self.clock.now(),
        )
        self.datasets[ds.id] = ds
        return ds

    def dataset_dto(self, ds: Dataset) -> dict[str, Any]:
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

    def upload_dataset(
        self,
        ds: Dataset,
        file_name: str,
        media_type: str,
        content: bytes,
        has_header: bool,
    ) -> dict[str, Any]:
        version = {
            "datasetId": ds.id,
            "datasetName": ds.name,
            "datasetDescription": ds.description,
            "version": len(ds.versions) + 1,
            "fileName": file_name,
            "fileSize": len(content),
            "mediaType": media_type,
            "hasHeader": has_header,
            "workspaceId": ds.workspace_id,
            "disabled": False,
            "dateCreated": iso(self.clock.now()),
            "lastUpdated": iso(self.clock.now()),
            "url": f"https://fake.invalid/workspaces/{ds.workspace_id}/datasets/{ds.id}"
            f"/v/{len(ds.versions) + 1}/n/{file_name}",
        }
        ds.versions.append(version)
        ds.contents.append(content)
        return version


@functools.lru_cache(maxsize=4096)
def _progress(states: tuple[tuple[str, int | None], ...], n_tasks: int) -> dict[str, Any]:
    n_proc = max(1, min(len(PROCESSES), n_tasks))
    per_process = [Counter[str]() for _ in range(n_proc)]
    for i, (st, _) in enumerate(states):
        per_process[i % len(PROCESSES) % n_proc][st] += 1
    total = Counter(st for st, _ in states)
    running = total["RUNNING"]
    base = {
        "cpus": 2 * len(states),
        "cpuTime": 1000 * len(states),
        "cpuLoad": 900 * len(states),
        "memoryRss": 1 << 28,
        "memoryReq": 1 << 30,
        "readBytes": 1 << 20,
        "writeBytes": 1 << 19,
        "volCtxSwitch": 10,
        "invCtxSwitch": 2,
        "loadTasks": running,
        "loadCpus": 2 * running,
        "loadMemory": running << 30,
        "peakCpus": 2,
        "peakTasks": 1,
        "peakMemory": 1 << 30,
        "retries": 0,
        "ignored": 0,
    }

    def counts(c: Counter[str]) -> dict[str, int]:
        return {
            "pending": 0,
            "submitted": c["SUBMITTED"],
            "running": c["RUNNING"],
            "succeeded": c["COMPLETED"],
            "failed": c["FAILED"],
            "aborted": c["ABORTED"],
            "cached": c["CACHED"],
        }

    processes = [{**base, "process": PROCESSES[k], **counts(per_process[k])} for k in range(n_proc)]
    return {
        "workflowProgress": {**base, **counts(total)},
        "processesProgress": processes,
        "totalProcesses": n_proc,
    }


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_page_token(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, num = raw.partition(":")
        if prefix != "o":
            raise ValueError(token)
        offset = int(num)
        if offset < 0:
            raise ValueError(token)
        return offset
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiFailure(400, f"Invalid nextPageToken '{token}'") from exc
