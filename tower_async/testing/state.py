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

import random
from collections import Counter
from typing import Any

# ``X as X``: names this module has always offered, now at home in the modules named
from .clock import Clock as Clock
from .clock import ManualClock as ManualClock
from .pagetokens import decode_page_token as decode_page_token
from .pagetokens import encode_page_token as encode_page_token
from .ratewindow import RateStats as RateStats
from .ratewindow import SlidingWindow as SlidingWindow
from .records import PROCESSES as PROCESSES
from .records import TERMINAL as TERMINAL
from .records import ApiFailure as ApiFailure
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
from .render import dataset_dto, label_dto
from .render import iso as iso
from .render_runs import progress, tasks, workflow_dto, workflow_launch_dto
from .rules import (
    check_launch,
    project_of,
    repository_of,
    search_workflows,
    session_for,
    started,
    task_states,
)
from .rules import commit_for as commit_for
from .rules import fingerprint as fingerprint
from .rules import parse_params as parse_params
from .runlogs import LOG_FOOTERS as LOG_FOOTERS
from .runlogs import LOG_LINE as LOG_LINE
from .runlogs import log_entries, log_footer, log_length
from .runlogs import log_line as log_line
from .seed import Catalog, default_user, seed_defaults

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

_ADJECTIVES = ("amazing", "brave", "cheeky", "dreamy", "elegant", "fervent", "golden", "happy")
_NAMES = ("curie", "darwin", "euler", "franklin", "hopper", "lovelace", "mendel", "turing")


class FakeState(Catalog):
    """The data of one fake Platform.

    Seeded with one user, orgs ``community`` (workspace ``showcase``) and ``my-org``
    (workspaces ``production`` and ``dev``), a primary compute env per workspace, pipelines
    ``nf-core/rnaseq``, ``nf-core/rnaseq-dev``, ``nf-core/sarek`` and ``hello`` in each
    workspace, a few labels, and a data link ``fake-bucket`` with many objects.

    The records and their ``add_*`` helpers come from :class:`~.seed.Catalog`; the
    Platform's rules from :mod:`.rules`, JSON forms from :mod:`.render` and
    :mod:`.render_runs`, run logs from :mod:`.runlogs`.
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
        self.clock = clock if clock is not None else ManualClock()
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.durations = durations or RunDurations()
        self.failure_rate = failure_rate
        self.log_size = log_size
        self.tasks_per_run = tasks_per_run
        #: max page sizes enforced by the server, per operationId
        self.page_caps: dict[str, int] = {"ListWorkflowTasks": 100}
        self.user: dict[str, Any] = default_user(self.clock.now())
        self.tokens = {}
        self.orgs = {}
        self.workspaces = {}
        self.compute_envs = {}
        self.pipelines = {}
        self.workflows = {}
        self.labels = {}
        self.datasets = {}
        self.data_links = {}
        self.launches = []
        self._next_int = 1000
        if seed_data:
            self._seed()

    def _seed(self) -> None:
        seed_defaults(self)

    def stats(self, token: str) -> RateStats:
        return self.tokens[token].stats

    # ------------------------------------------------------------------ access checks
    def check_workspace(self, workspace_id: int | None) -> None:
        if workspace_id is not None and workspace_id not in self.workspaces:
            raise ApiFailure(403, f"Workspace {workspace_id} not found or not accessible")

    # ------------------------------------------------------------------ launches
    def launch(self, workspace_id: int | None, launch: dict[str, Any], token: str) -> Workflow:
        """Validate a WorkflowLaunchRequest and submit the run (raises ApiFailure)."""
        ce, profiles, label_ids = check_launch(launch, workspace_id, self.compute_envs, self.labels)
        params = parse_params(launch.get("paramsText"))
        run_name = launch.get("runName") or (
            f"{self.rng.choice(_ADJECTIVES)}_{self.rng.choice(_NAMES)}"
        )
        joined = session_for(launch, workspace_id, run_name, self.workflows.values())
        resume = bool(launch.get("resume"))
        session_id = joined if joined is not None else self.random_id(32)
        fails = bool(params.get("fail")) or (
            self.failure_rate > 0 and self.rng.random() < self.failure_rate
        )
        repository = repository_of(launch["pipeline"])
        d = self.durations
        wf = Workflow(
            id=self._unique_workflow_id(),
            workspace_id=workspace_id,
            run_name=run_name,
            project_name=project_of(launch["pipeline"]),
            repository=repository,
            compute_env_id=ce.id,
            work_dir=launch["workDir"],
            launch_id=self.random_id(22),
            session_id=session_id,
            submit=self.clock.now(),
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
        self._record_launch(wf, launch, token)
        return wf

    def _record_launch(self, wf: Workflow, launch: dict[str, Any], token: str) -> None:
        self.launches.append(
            LaunchRecord(
                workflow_id=wf.id,
                workspace_id=wf.workspace_id,
                token=token,
                body=launch,
                fingerprint=fingerprint(launch),
                run_name=wf.run_name,
                at=wf.submit,
                resume=wf.resume,
                session_id=wf.session_id,
            )
        )

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
        newest_first = reversed(self.workflows.values())
        return search_workflows(newest_first, workspace_id, search, self.clock.now())

    def started(self, wf: Workflow) -> bool:
        """Whether the run got past SUBMITTED (only then does it report a commit)."""
        return started(wf, self.clock.now())

    def workflow_launch(self, wf: Workflow) -> dict[str, Any]:
        """The run's launch (``DescribeWorkflowLaunch``): as posted, plus where to resume."""
        ce = self.compute_envs.get(wf.compute_env_id)
        return workflow_launch_dto(wf, ce, self.clock.now())

    def workflow_dto(self, wf: Workflow) -> dict[str, Any]:
        return workflow_dto(wf, self.clock.now(), self.user)

    def workflow_labels(self, wf: Workflow) -> list[dict[str, Any]]:
        return [label_dto(self.labels[i]) for i in wf.label_ids if i in self.labels]

    def task_states(self, wf: Workflow) -> list[tuple[str, int | None]]:
        """(status, exit code) of the tasks visible now, in submission order."""
        return task_states(wf, self.clock.now())

    def progress(self, wf: Workflow) -> dict[str, Any]:
        """ProgressData of a run (shared, cached per task-state pattern: do not mutate)."""
        return progress(wf, self.clock.now())

    def tasks(self, wf: Workflow) -> list[dict[str, Any]]:
        return tasks(wf, self.clock.now())

    # ------------------------------------------------------------------ run logs
    def log_length(self, wf: Workflow) -> int:
        """Bytes of run log body visible now (without the closing line); see
        :func:`.runlogs.log_length`."""
        return log_length(wf, self.clock.now(), self.log_size)

    def log_footer(self, wf: Workflow) -> bytes:
        """The closing line of a finished run's log (empty while the run is active)."""
        return log_footer(wf, self.clock.now())

    def log_entries(self, wf: Workflow, start: int = 0, stop: int | None = None) -> list[str]:
        """The complete lines ``[start:stop]`` of the run's log visible now, without endings
        (a partly written last line of an active run is left out until it is complete)."""
        return log_entries(wf, self.clock.now(), self.log_size, start, stop)

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
        return dataset_dto(ds)

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
