"""pytest plugin (entry point ``tower_async_fake``): the fake Platform as fixtures.

Installing tower-async registers this module with pytest, so it must cost nothing in test
runs that do not use it: it imports neither pytest-asyncio (which a user's environment may
not have) nor the fake server until a test asks for one of its fixtures.

``fake_platform``
    a started :class:`~tower_async.testing.FakePlatform` per test (manual run clock, rate
    limit 20/s on real time).  With pytest-asyncio installed it runs on the test's event loop
    (``async def`` tests); without it, on its own thread (plain ``def`` tests).
``fake_platform_thread``
    always on its own thread, for synchronous tests (``requests``/``tw`` CLI/subprocesses).

Tests needing other options build their own::

    async with FakePlatform(rate_limit=5, rate_clock=ManualClock(0)) as fake: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import FakePlatform

__all__ = ["fake_platform", "fake_platform_thread"]


def _check(platform: FakePlatform) -> None:
    assert not platform.errors, f"fake Platform answered 500 on bugs: {platform.errors!r}"


@pytest.fixture
def fake_platform_thread() -> Iterator[FakePlatform]:
    from .server import run_in_thread

    with run_in_thread() as platform:
        yield platform
    _check(platform)


try:
    import pytest_asyncio
except ImportError:  # tower-async installed without its test extra
    HAVE_PYTEST_ASYNCIO = False
else:
    HAVE_PYTEST_ASYNCIO = True

if HAVE_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture
    async def fake_platform() -> AsyncIterator[FakePlatform]:
        from .server import FakePlatform

        async with FakePlatform() as platform:
            yield platform
        _check(platform)

else:

    @pytest.fixture
    def fake_platform(fake_platform_thread: FakePlatform) -> FakePlatform:
        return fake_platform_thread
