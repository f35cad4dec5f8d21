"""Shared fixtures: where the Platform's published documents are, and an isolated cache."""

from __future__ import annotations

import compileall
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tower_async import Tower
from tower_async.ratelimit import _REGISTRY, AiolimiterLimiter
from tower_async.testing import FakePlatform

from .redis_server import RedisServer, RedisServerMissing

REPO = Path(__file__).resolve().parents[1]
VERSIONS = ("1.85.0", "1.115.0", "1.181.0")


# pytest keeps each test module's assertion-rewritten code in tests/__pycache__ only while
# bytecode is written; with PYTHONDONTWRITEBYTECODE set (CI here) every pytest process
# rewrote every test module again, ~1 CPU-second each.  The rewritten files are written
# atomically, so xdist workers share them.
sys.dont_write_bytecode = False


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile the package and the test helpers once, in the controlling process.

    The suite starts ~50 child processes (kill tests, Redis workers, examples).  Where
    ``PYTHONDONTWRITEBYTECODE`` is set (as in CI here) or the checkout is new, each of them
    would compile the package from source again (~0.2 s a child); with the ``.pyc`` files
    written once (as ``pip install`` writes them for an installed package) they only read
    them.  Up-to-date files are skipped, so a second run costs a stat per module."""
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the controller did it
        return
    for folder in ("tower_async", "tests"):
        compileall.compile_dir(REPO / folder, quiet=2, workers=1)


def soak(count: int) -> int:
    """``count`` times ``$TOWER_ASYNC_SOAK`` (a whole number >= 1, default 1): how many
    trials or examples a bounded test runs; ``TOWER_ASYNC_SOAK=20`` for the heavy version."""
    text = os.environ.get("TOWER_ASYNC_SOAK", "").strip() or "1"
    if not text.isdigit() or int(text) < 1:
        raise pytest.UsageError(f"TOWER_ASYNC_SOAK must be a whole number >= 1, not {text!r}")
    return count * int(text)


def specs_dir() -> Path:
    """``$TOWER_ASYNC_SPECS``, else ``../shared/openapi`` beside the repository."""
    env = os.environ.get("TOWER_ASYNC_SPECS")
    return Path(env) if env else REPO.parent / "shared" / "openapi"


def spec_path(version: str) -> Path:
    path = specs_dir() / f"seqera-api-{version}.yaml"
    if not path.is_file():
        pytest.skip(
            f"the Platform's published document {path} is not here "
            "(set TOWER_ASYNC_SPECS to the folder holding seqera-api-*.yaml)"
        )
    return path


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A private schema cache for one test."""
    d = tmp_path / "schema-cache"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def shared_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A schema cache shared by the whole run: big documents are parsed and checked once."""
    return tmp_path_factory.mktemp("shared-schema-cache")


@pytest.fixture(autouse=True)
def _isolated_user_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never touch the real user cache or pick up a real token from the environment."""
    monkeypatch.setenv("TOWER_ASYNC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "user-cache"))
    for name in ("TOWER_ACCESS_TOKEN", "TOWER_API_ENDPOINT", "TOWER_WORKSPACE_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_limiter_registry() -> Iterator[None]:
    """Every test starts with no process-wide bucket: every fake Platform hands out the same
    seeded token, so a bucket tightened (or adapted down) by an earlier test would pace a
    later one at its rate (a 1000-launch test ran at 20/s instead of 360/s)."""
    _REGISTRY.clear()
    yield
    _REGISTRY.clear()


@pytest.fixture
def release_times(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clock reading of every release by any :class:`AiolimiterLimiter` in the test, as
    its gate takes it, not when the caller's task resumes (which a loaded host delays
    unevenly, by more than the bucket's 20 ms margin).  Sort before use: two threads may
    append in the other order."""
    times: list[float] = []
    real = AiolimiterLimiter._try_pass

    def recording(self: AiolimiterLimiter) -> float:
        wait = real(self)
        if wait == 0.0:
            times.append(self._last)
        return wait

    monkeypatch.setattr(AiolimiterLimiter, "_try_pass", recording)
    return times


@pytest.fixture
async def fake() -> AsyncIterator[FakePlatform]:
    """The fake Platform without a rate limit (tests that need one start their own).

    A short shutdown: a latency fault a test left behind is cut after 0.1 s, not 0.5 s."""
    async with FakePlatform(rate_limit=None, shutdown_timeout=0.1) as platform:
        yield platform
    assert not platform.errors, f"the fake Platform answered 500 on bugs: {platform.errors!r}"


def session_on(fake: FakePlatform, cache_dir: Path | None = None, **options: Any) -> Tower:
    """A Tower on ``fake`` with its token, in ``my-org/production`` (resolved by name),
    without a rate limit; ``options`` are more Tower() arguments or replace those.

    ``cache_dir=None``: the run's user cache (``_isolated_user_cache``), where every fake's
    document is filed once by content, so a session opens without parsing it again."""
    defaults: dict[str, Any] = {"workspace": "my-org/production"}
    if "limiter" not in options:  # a limiter object sets its own rate
        defaults["rate_limit"] = None
    options = {**defaults, **options}
    return Tower(token=fake.token, endpoint=fake.url, cache_dir=cache_dir, **options)


@pytest.fixture
async def tw(fake: FakePlatform) -> AsyncIterator[Tower]:
    """A session on ``fake`` in the workspace ``my-org/production`` (resolved by name)."""
    async with session_on(fake) as session:
        yield session


# -- a real redis-server (tests/redis_server.py) ---------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` for the run (loopback, random port, temp dir, no persistence);
    skips when it is not installed, fails instead when ``CI`` is set."""
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis"))
    except RedisServerMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}; CI must run the Redis tests")
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url
