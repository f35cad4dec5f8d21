"""A fake Seqera Platform for tests, examples and benchmarks (like moto for AWS).

In-process::

    async with FakePlatform() as fake:
        async with aiohttp.ClientSession() as s:
            await s.get(f"{fake.url}/user-info", headers=fake.headers())

From sync code: ``with run_in_thread(rate_limit=None) as fake: ...``; standalone:
``python -m tower_async.testing --port 8000``; in pytest: the ``fake_platform`` fixture.

The names below are imported on first use, so that the pytest plugin (registered for every
pytest run in an environment that has tower-async) does not load the fake server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clock import Clock, ManualClock, MonotonicClock, RealClock
    from .faults import FaultInjector, FaultSpec
    from .openapi import FAKE_TITLE, build_document
    from .ratewindow import RateStats, SlidingWindow
    from .server import FakePlatform, resolve_spec, run_in_thread, specs_dir
    from .state import FakeState, LaunchRecord, RunDurations

_WHERE = {
    "Clock": "clock",
    "ManualClock": "clock",
    "MonotonicClock": "clock",
    "RealClock": "clock",
    "FaultInjector": "faults",
    "FaultSpec": "faults",
    "FAKE_TITLE": "openapi",
    "build_document": "openapi",
    "RateStats": "ratewindow",
    "SlidingWindow": "ratewindow",
    "FakePlatform": "server",
    "resolve_spec": "server",
    "run_in_thread": "server",
    "specs_dir": "server",
    "FakeState": "state",
    "LaunchRecord": "state",
    "RunDurations": "state",
}

__all__ = [
    "FAKE_TITLE",
    "Clock",
    "FakePlatform",
    "FakeState",
    "FaultInjector",
    "FaultSpec",
    "LaunchRecord",
    "ManualClock",
    "MonotonicClock",
    "RateStats",
    "RealClock",
    "RunDurations",
    "SlidingWindow",
    "build_document",
    "resolve_spec",
    "run_in_thread",
    "specs_dir",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tower_async.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
