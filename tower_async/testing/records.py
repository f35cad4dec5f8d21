"""The records of the fake Platform: plain dataclasses, no HTTP, no JSON.

Their JSON forms are in :mod:`.render`, the Platform's rules about them in :mod:`.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .ratewindow import RateStats, SlidingWindow

__all__ = [
    "PROCESSES",
    "TERMINAL",
    "ApiFailure",
    "ComputeEnv",
    "DataLink",
    "Dataset",
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


class ApiFailure(Exception):
    """Raised by state operations; the server answers ``status`` with ``{"message"}``."""

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


@dataclass
class Workspace:
    id: int
    org: Org
    name: str
    full_name: str
    visibility: str = "PRIVATE"


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
