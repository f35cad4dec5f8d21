"""JSON forms of runs: workflows, their launches, tasks and progress.

Pure functions of a :class:`Workflow` and the run clock's ``now``; where the run is in its
lifecycle comes from :mod:`.rules`.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import orjson

from .records import PROCESSES, ComputeEnv, Workflow, Workspace
from .render import compute_env_dto, iso
from .rules import started, task_states

__all__ = [
    "describe_workflow",
    "progress",
    "tasks",
    "workflow_dto",
    "workflow_launch_dto",
    "workspace_extras",
]


def workflow_launch_dto(wf: Workflow, ce: ComputeEnv | None, now: float) -> dict[str, Any]:
    """The run's launch (``DescribeWorkflowLaunch``): as posted, plus where to resume."""
    sent = wf.launch
    commit = wf.commit_id if started(wf, now) else None

    def get(key: str, default: Any = None) -> Any:
        value = sent.get(key)
        return default if value is None else value

    return {
        "id": wf.launch_id,
        "computeEnv": compute_env_dto(ce) if ce is not None else None,
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


def _complete_time(wf: Workflow, status: str) -> float | None:
    if status in ("SUCCEEDED", "FAILED"):
        return wf.complete_time
    if status == "CANCELLED":
        return wf.cancelled_at
    return None


def _command_line(wf: Workflow) -> str:
    return (
        f"nextflow run '{wf.repository}' -name {wf.run_name}"
        + (f" -r {wf.revision}" if wf.revision else "")
        + (f" -profile {','.join(wf.config_profiles)}" if wf.config_profiles else "")
    )


def _outcome(status: str, complete: float | None) -> dict[str, Any]:
    return {
        "success": (status == "SUCCEEDED") if complete is not None else None,
        "exitStatus": {"SUCCEEDED": 0, "FAILED": 1}.get(status),
        "errorMessage": "Process terminated with an error exit status (1)"
        if status == "FAILED"
        else None,
        "errorReport": None,
    }


def _script(wf: Workflow) -> dict[str, Any]:
    return {
        "profile": ",".join(wf.config_profiles) or "standard",
        "workDir": wf.work_dir,
        "launchDir": wf.work_dir,
        "projectDir": f"/.nextflow/assets/{wf.project_name}",
        "homeDir": "/root",
        "scriptName": "main.nf",
        "scriptFile": f"/.nextflow/assets/{wf.project_name}/main.nf",
        "scriptId": wf.session_id[:32],
    }


def workflow_dto(wf: Workflow, now: float, user: dict[str, Any]) -> dict[str, Any]:
    status = wf.status_at(now)
    has_started = started(wf, now)
    complete = _complete_time(wf, status)
    duration = None if complete is None else int((complete - wf.submit) * 1000)
    return {
        "id": wf.id,
        "status": status,
        "runName": wf.run_name,
        "projectName": wf.project_name,
        "repository": wf.repository,
        "revision": wf.revision,
        "commitId": wf.commit_id if has_started else None,
        "sessionId": wf.session_id,
        "submit": iso(wf.submit),
        "start": iso(wf.start_time) if has_started else None,
        "complete": iso(complete),
        "dateCreated": iso(wf.submit),
        "lastUpdated": iso(min(now, complete) if complete is not None else now),
        "duration": duration,
        "commandLine": _command_line(wf),
        "params": wf.params,
        "configText": wf.config_text,
        "configFiles": [],
        **_script(wf),
        "launchId": wf.launch_id,
        "userName": user["userName"],
        "ownerId": user["id"],
        "container": None,
        "containerEngine": None,
        "resume": wf.resume,
        **_outcome(status, complete),
        "deleted": False,
        "requiresAttention": False,
        "manifest": {"nextflowVersion": ">=23.04.0", "mainScript": "main.nf"},
        "nextflow": {"version": "24.04.4", "build": "5917", "timestamp": None},
        "stats": None,
    }


def workspace_extras(wf: Workflow, ws: Workspace | None) -> dict[str, Any]:
    """The organization and workspace members of a run's list entry or description."""
    return {
        "orgId": ws.org.id if ws else None,
        "orgName": ws.org.name if ws else None,
        "workspaceId": wf.workspace_id,
        "workspaceName": ws.name if ws else None,
    }


def _job_info(wf: Workflow, status: str) -> dict[str, Any]:
    return {
        "id": int.from_bytes(wf.id.encode()[:6], "big") % 10_000_000,
        "operationId": f"job-{wf.id.lower()}",
        "message": None,
        "status": {"SUBMITTED": "SUBMITTED", "RUNNING": "RUNNING"}.get(status, "TERMINATED"),
        "exitCode": {"SUCCEEDED": 0, "FAILED": 1}.get(status),
    }


def describe_workflow(
    wf: Workflow,
    now: float,
    user: dict[str, Any],
    *,
    ce: ComputeEnv | None,
    ws: Workspace | None,
    labels: list[dict[str, Any]],
) -> dict[str, Any]:
    """The answer of ``DescribeWorkflow``."""
    dto = workflow_dto(wf, now, user)
    dto.update(
        {
            "configProfiles": wf.config_profiles,
            "logFile": f"{wf.work_dir}/nf-{wf.id}.log",
            "outFile": f"{wf.work_dir}/nf-{wf.id}.txt",
            "operationId": f"job-{wf.id.lower()}",
            "towerConfig": None,
            "preRunScript": None,
            "postRunScript": None,
            "nextflowConfig": None,
        }
    )
    return {
        "workflow": dto,
        "progress": progress(wf, now),
        "platform": {"id": ce.platform if ce else "aws-batch", "name": "AWS Batch"},
        "jobInfo": _job_info(wf, dto["status"]),
        "labels": labels,
        "optimized": False,
        "messages": [],
        **workspace_extras(wf, ws),
    }


def _task(wf: Workflow, i: int, status: str, exit_code: int | None) -> dict[str, Any]:
    t0 = wf.start_time + i * (wf.durations.running / max(wf.n_tasks, 1))
    process = PROCESSES[i % len(PROCESSES)]
    done = exit_code is not None
    return {
        "id": i + 1,
        "taskId": i + 1,
        "hash": f"{i:02x}/{wf.id[:6].lower()}",
        "name": f"{process} (sample_{i})",
        "process": process,
        "tag": f"sample_{i}",
        "status": status,
        "exit": exit_code,
        "exitStatus": exit_code,
        "attempt": 1,
        "submit": iso(t0),
        "start": iso(t0),
        "complete": iso(t0 + 1) if done else None,
        "dateCreated": iso(t0),
        "lastUpdated": iso(t0),
        "workdir": f"{wf.work_dir}/{i:02x}/{wf.id.lower()}",
        "script": f"{process.lower()} --sample sample_{i}",
        "executor": "awsbatch",
        "queue": "fake-queue",
        "container": "quay.io/biocontainers/fake:1.0",
        "cpus": 2,
        "memory": 1 << 30,
        "duration": 1000 if done else None,
        "realtime": 900 if done else None,
        "nativeId": f"job-{i}",
        "module": [],
        "errorAction": None,
    }


def tasks(wf: Workflow, now: float) -> list[dict[str, Any]]:
    """The run's tasks visible at ``now``, in submission order."""
    return [_task(wf, i, st, code) for i, (st, code) in enumerate(task_states(wf, now))]


def progress(wf: Workflow, now: float) -> dict[str, Any]:
    """ProgressData of a run (shared, cached per task-state pattern: do not mutate)."""
    return _progress(tuple(task_states(wf, now)), wf.n_tasks)


def _base_load(n_states: int, running: int) -> dict[str, int]:
    return {
        "cpus": 2 * n_states,
        "cpuTime": 1000 * n_states,
        "cpuLoad": 900 * n_states,
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


def _counts(c: Counter[str]) -> dict[str, int]:
    return {
        "pending": 0,
        "submitted": c["SUBMITTED"],
        "running": c["RUNNING"],
        "succeeded": c["COMPLETED"],
        "failed": c["FAILED"],
        "aborted": c["ABORTED"],
        "cached": c["CACHED"],
    }


@functools.lru_cache(maxsize=4096)
def _progress(states: tuple[tuple[str, int | None], ...], n_tasks: int) -> dict[str, Any]:
    n_proc = max(1, min(len(PROCESSES), n_tasks))
    per_process = [Counter[str]() for _ in range(n_proc)]
    for i, (st, _) in enumerate(states):
        per_process[i % len(PROCESSES) % n_proc][st] += 1
    total = Counter(st for st, _ in states)
    base = _base_load(len(states), total["RUNNING"])
    processes = [
        {**base, "process": PROCESSES[k], **_counts(per_process[k])} for k in range(n_proc)
    ]
    return {
        "workflowProgress": {**base, **_counts(total)},
        "processesProgress": processes,
        "totalProcesses": n_proc,
    }
