"""Keyword options of the fan-out methods on :class:`~tower_async.Tower`, for type checkers.

Each ``TypedDict`` lists the keyword-only parameters of the function in
:mod:`tower_async.orchestration` its method delegates to (``tests/test_stubs.py`` checks
that they agree), so ``tw.wait_for_run(wid, poll_intervall=1)`` is a type error while the
method forwards exactly what it was given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    import os

    from .orchestration import BulkProgress, LaunchLedger
    from .orchestration.bulk import RunNames, UncertainPolicy
    from .orchestration.logs import Method

__all__ = [
    "BulkLaunchOptions",
    "FollowLogOptions",
    "LaunchOverrides",
    "WaitForRunsOptions",
    "WaitOptions",
]


class LaunchOverrides(TypedDict, total=False):
    """The fields of :class:`~tower_async.orchestration.LaunchSpec` besides ``pipeline``."""

    params: Mapping[str, Any] | None
    run_name: str | None
    revision: str | None
    profiles: Sequence[str] | None
    work_dir: str | None
    labels: Sequence[str | int]
    compute_env: str | None
    workspace: int | str | None
    config_text: str | None
    pre_run_script: str | None
    post_run_script: str | None
    main_script: str | None
    entry_name: str | None
    pull_latest: bool | None
    stub_run: bool | None
    resume: bool | None
    extra: Mapping[str, Any]
    key: str | None
    relaunch_of: str | None


class BulkLaunchOptions(TypedDict, total=False):
    """:func:`tower_async.orchestration.bulk_launch`."""

    concurrency: int
    journal: str | os.PathLike[str] | LaunchLedger | None
    fsync: bool
    on_uncertain: UncertainPolicy
    reconcile_delay: float
    relaunches: int
    run_names: RunNames | None
    on_progress: Callable[[BulkProgress], None] | None
    progress_bar: bool | None
    total: int | None


class WaitOptions(TypedDict, total=False):
    """:func:`tower_async.orchestration.wait_for_run`."""

    until: str | Iterable[str] | None
    workspace: int | str | None
    timeout: float | None
    poll_interval: float
    max_interval: float
    backoff: float
    unknown_is_failure: bool
    on_status: Callable[[str, str | None], None] | None


class WaitForRunsOptions(WaitOptions, total=False):
    """:func:`tower_async.orchestration.wait_for_runs`."""

    concurrency: int
    list_threshold: int


class FollowLogOptions(TypedDict, total=False):
    """:func:`tower_async.orchestration.follow_log`."""

    workspace: int | str | None
    method: Method
    poll_interval: float
    max_interval: float
    backoff: float
    max_length: int | None
