"""A fake Seqera Platform for tests, examples and benchmarks (like moto for AWS).

In-process::

    async with FakePlatform() as fake:
        async with aiohttp.ClientSession() as s:
            await s.get(f"{fake.url}/user-info", headers=fake.headers())

From sync code: ``with run_in_thread(rate_limit=None) as fake: ...``; standalone:
``python -m tower_async.testing --port 8000``; in pytest: the ``fake_platform`` fixture.
"""

from .clock import Clock, ManualClock, MonotonicClock, RealClock
from .faults import FaultInjector, FaultSpec
from .openapi import FAKE_TITLE, build_document
from .ratewindow import RateStats, SlidingWindow
from .server import FakePlatform, resolve_spec, run_in_thread, specs_dir
from .state import FakeState, LaunchRecord, RunDurations

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
