"""The Platform's rules, as the fake applies them: launch validation, sessions and resume,
run progression (which tasks are visible when), and the run search.

Pure functions of records and the run clock's ``now``; they raise :class:`ApiFailure` for
what the Platform answers with a 4xx.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import yaml

from .records import ApiFailure, ComputeEnv, Label, Workflow

__all__ = [
    "check_launch",
    "commit_for",
    "fingerprint",
    "parse_params",
    "project_of",
    "repository_of",
    "search_workflows",
    "session_for",
    "started",
    "task_states",
]

_HEX = frozenset("0123456789abcdef")
_GITHUB = "https://github.com/"


def fingerprint(body: Any) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


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


def project_of(pipeline: str) -> str:
    """The project name of a launch's ``pipeline`` (a GitHub URL loses its host)."""
    project = pipeline.rstrip("/")
    if project.startswith(_GITHUB):
        project = project[len(_GITHUB) :]
    return project


def repository_of(pipeline: str) -> str:
    """The repository URL of a launch's ``pipeline`` (a bare name is a GitHub project)."""
    return pipeline if "://" in pipeline else f"{_GITHUB}{pipeline}"


# ---------------------------------------------------------------------------- launches
def _check_types(launch: Mapping[str, Any]) -> None:
    for key in ("paramsText", "runName", "revision", "configText", "id", "commitId"):
        if launch.get(key) is not None and not isinstance(launch[key], str):
            raise ApiFailure(400, f"Launch field '{key}' must be a string")
    for key in ("resume", "pullLatest", "stubRun"):
        if launch.get(key) is not None and not isinstance(launch[key], bool):
            raise ApiFailure(400, f"Launch field '{key}' must be a boolean")


def check_launch(
    launch: Mapping[str, Any],
    workspace_id: int | None,
    compute_envs: Mapping[str, ComputeEnv],
    labels: Mapping[int, Label],
) -> tuple[ComputeEnv, list[str] | None, list[int]]:
    """The compute env, profiles and label ids of a valid launch (raises ApiFailure)."""
    for key in ("pipeline", "computeEnvId", "workDir"):
        value = launch.get(key)
        if value is None or value == "":
            raise ApiFailure(400, f"Missing required launch field '{key}'")
        if not isinstance(value, str):
            raise ApiFailure(400, f"Launch field '{key}' must be a string")
    ce = compute_envs.get(launch["computeEnvId"])
    if ce is None or ce.workspace_id != workspace_id:
        raise ApiFailure(400, f"Unknown compute environment '{launch['computeEnvId']}'")
    _check_types(launch)
    profiles = launch.get("configProfiles")
    if profiles is not None and not (
        isinstance(profiles, list) and all(isinstance(p, str) for p in profiles)
    ):
        raise ApiFailure(400, "Launch field 'configProfiles' must be a list of strings")
    label_ids = launch.get("labelIds") or []
    if not isinstance(label_ids, list) or not all(
        isinstance(i, int) and i in labels for i in label_ids
    ):
        raise ApiFailure(400, "Launch field 'labelIds' must list existing label ids")
    return ce, profiles, label_ids


def session_for(
    launch: Mapping[str, Any],
    workspace_id: int | None,
    run_name: str,
    workflows: Iterable[Workflow],
) -> str | None:
    """The session a ``resume: true`` launch joins, or None (it then starts a new one).

    Resuming keeps the session's work directory (its cache) and needs a run name the
    session has not used yet, as Nextflow does.
    """
    session_id = launch.get("sessionId")
    if not launch.get("resume") or not isinstance(session_id, str) or not session_id:
        return None
    runs = [
        wf for wf in workflows if wf.session_id == session_id and wf.workspace_id == workspace_id
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
    return session_id


# ---------------------------------------------------------------------------- progression
def started(wf: Workflow, now: float) -> bool:
    """Whether the run got past SUBMITTED (only then does it report a commit)."""
    status = wf.status_at(now)
    return status != "SUBMITTED" and not (
        status == "CANCELLED" and wf.fraction_at(now) == 0.0 and now < wf.start_time
    )


def _task_state(status: str, i: int, done: int, n: int) -> tuple[str, int | None] | None:
    """Task ``i`` of ``n`` when ``done`` are complete and the run is ``status``, or None
    when that task is not visible yet (nor any after it)."""
    last_fails = status == "FAILED" and i == n - 1
    if i < done and not last_fails:
        return ("COMPLETED", 0)
    if status == "RUNNING" and i == done:
        return ("RUNNING", None)
    if last_fails:
        return ("FAILED", 1)
    if status == "CANCELLED" and i == done:
        return ("ABORTED", None)
    return None


def task_states(wf: Workflow, now: float) -> list[tuple[str, int | None]]:
    """(status, exit code) of the tasks visible now, in submission order."""
    status = wf.status_at(now)
    n = wf.n_tasks
    if status == "SUBMITTED" or n == 0:
        return []
    done = min(n, int(wf.fraction_at(now) * n))
    out: list[tuple[str, int | None]] = []
    for i in range(n):
        state = _task_state(status, i, done, n)
        if state is None:
            break
        out.append(state)
    return out


# ---------------------------------------------------------------------------- search
def _parse_search(search: str | None) -> tuple[set[str], set[str], list[str]]:
    """``(statuses, workflow ids, words)`` of a ``ListWorkflows`` search."""
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
    return statuses, ids, words


def search_workflows(
    workflows: Iterable[Workflow], workspace_id: int | None, search: str | None, now: float
) -> list[Workflow]:
    """The runs of a workspace, in the given order, matching ``search`` (``status:X``,
    ``workflowId:X``, words of the run or project name; all must match)."""
    statuses, ids, words = _parse_search(search)

    def keep(wf: Workflow) -> bool:
        if wf.deleted or wf.workspace_id != workspace_id:
            return False
        if statuses and wf.status_at(now) not in statuses:
            return False
        if ids and wf.id not in ids:
            return False
        text = f"{wf.run_name} {wf.project_name}".lower()
        return all(w in text for w in words)

    return [wf for wf in workflows if keep(wf)]
