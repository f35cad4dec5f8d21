"""pytest plugin (entry point ``tower_async_fake``): the ``fake_platform`` fixture.

``fake_platform`` is a started :class:`FakePlatform` per test (manual run clock, rate limit
20/s on real time). Tests needing other options build their own::

    async with FakePlatform(rate_limit=5, rate_clock=ManualClock(0)) as fake: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .server import FakePlatform


@pytest_asyncio.fixture
async def fake_platform() -> AsyncIterator[FakePlatform]:
    async with FakePlatform() as platform:
        yield platform
    assert not platform.errors, f"fake Platform answered 500 on bugs: {platform.errors!r}"
