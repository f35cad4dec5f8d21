"""Fan-out on top of a :class:`~tower_async.Tower` session: names, launches, waits, logs.

::

    from tower_async.orchestration import LaunchSpec, bulk_launch, wait_for_runs

    async with Tower(workspace="my-org/production") as tw:
        wid = await launch(tw, "nf-core/rnaseq", params={"input": "s3://..."}, run_name="s1")
        result = await wait_for_run(tw, wid)
        if not result.succeeded:
            wid = await relaunch(tw, wid)         # resumed from its cache

Every helper takes the session first and memoises name lookups in ``tw.memo``.
"""

from ._util import AmbiguousName, NameNotFound, ResolutionError
from .bulk import (
    BulkLaunch,
    BulkProgress,
    LaunchOutcome,
    bulk_launch,
    classify_failure,
    find_runs_named,
)
from .dispatch import launch  # the function (the submodule is .launch)
from .journal import Journal, JournalEntry, LaunchLedger
from .launch import LaunchSpec, build_launch_request, merge_params
from .logs import follow_log
from .relaunch import (
    NotResumable,
    RelaunchedRun,
    RelaunchError,
    derive_run_name,
    relaunch,
    relaunch_spec,
)
from .relaunch_bulk import RelaunchOutcome, relaunch_failed
from .resolve import (
    ResolvedPipeline,
    resolve_compute_env,
    resolve_label,
    resolve_labels,
    resolve_pipeline,
    resolve_workspace,
)
from .wait import TERMINAL, RunResult, WaitTimeout, wait_for_run, wait_for_runs

__all__ = [
    "TERMINAL",
    "AmbiguousName",
    "BulkLaunch",
    "BulkProgress",
    "Journal",
    "JournalEntry",
    "LaunchLedger",
    "LaunchOutcome",
    "LaunchSpec",
    "NameNotFound",
    "NotResumable",
    "RelaunchError",
    "RelaunchOutcome",
    "RelaunchedRun",
    "ResolutionError",
    "ResolvedPipeline",
    "RunResult",
    "WaitTimeout",
    "build_launch_request",
    "bulk_launch",
    "classify_failure",
    "derive_run_name",
    "find_runs_named",
    "follow_log",
    "launch",
    "merge_params",
    "relaunch",
    "relaunch_failed",
    "relaunch_spec",
    "resolve_compute_env",
    "resolve_label",
    "resolve_labels",
    "resolve_pipeline",
    "resolve_workspace",
    "wait_for_run",
    "wait_for_runs",
]
