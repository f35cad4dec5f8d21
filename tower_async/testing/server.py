"""Start and stop the fake Platform: in-process (async) or on its own thread (sync)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .app import DEFAULT_API_VERSION, FakeApp, read_spec_version
from .clock import Clock, ManualClock
from .faults import FaultInjector
from .openapi import document_bytes
from .ratewindow import RateStats
from .state import FakeState, RunDurations

__all__ = ["FakePlatform", "resolve_spec", "run_in_thread", "specs_dir"]


def specs_dir() -> Path:
    """Folder of the real documents: ``$TOWER_ASYNC_SPECS`` or ``<repo>/../shared/openapi``."""
    env = os.environ.get("TOWER_ASYNC_SPECS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "openapi"


def resolve_spec(spec: str | os.PathLike[str]) -> Path:
    """``"1.181.0"`` -> ``<specs_dir>/seqera-api-1.181.0.yaml``; anything else is a path."""
    text = os.fspath(spec)
    if text and all(part.isdigit() for part in text.split(".")):
        path = specs_dir() / f"seqera-api-{text}.yaml"
    else:
        path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(
            f"OpenAPI document not found: {path} (a version such as '1.181.0' is looked up "
            "as seqera-api-<version>.yaml in $TOWER_ASYNC_SPECS, else in ../shared/openapi "
            "beside a source checkout; set TOWER_ASYNC_SPECS to the folder holding the "
            "Platform's published documents, or pass a path)"
        )
    return path


class FakePlatform:
    """A fake Seqera Platform on ``127.0.0.1``, as an async context manager::

        async with FakePlatform(rate_limit=5) as fake:
            fake.url, fake.token, fake.state, fake.faults
            fake.advance(30)          # move the run clock

    ``spec=None`` serves the fake's own document and reports ``api_version``;
    ``spec="1.181.0"`` (or a path) serves that real document and reports its version.
    ``clock`` defaults to a :class:`ManualClock` (runs only move with :meth:`advance`);
    ``rate_clock`` defaults to real monotonic time (pass a ManualClock to test windows).
    """

    def __init__(
        self,
        *,
        state: FakeState | None = None,
        seed: int = 0,
        rate_limit: int | None = 20,
        rate_window: float = 1.0,
        clock: Clock | None = None,
        rate_clock: Clock | None = None,
        durations: RunDurations | None = None,
        failure_rate: float = 0.0,
        log_size: int = 256 * 1024,
        spec: str | os.PathLike[str] | None = None,
        api_version: str = DEFAULT_API_VERSION,
        host: str = "127.0.0.1",
        port: int = 0,
        shutdown_timeout: float = 0.5,
    ) -> None:
        self.state = state or FakeState(
            seed=seed,
            clock=clock if clock is not None else ManualClock(),
            rate_limit=rate_limit,
            rate_window=rate_window,
            durations=durations,
            failure_rate=failure_rate,
            log_size=log_size,
        )
        self.faults = FaultInjector(seed=seed)
        if spec is not None:
            path = resolve_spec(spec)
            api_version = read_spec_version(path)
            spec_bytes = path.read_bytes()
        else:
            spec_bytes = document_bytes(api_version)
        self.api_version = api_version
        self.fake = FakeApp(
            self.state,
            self.faults,
            rate_clock=rate_clock,
            api_version=api_version,
            spec_bytes=spec_bytes,
        )
        self.token = self.state.add_token()
        self.host = host
        self.port = port
        # how long stop() lets requests in flight finish before cancelling them (a latency
        # fault of minutes must not hold a test's teardown)
        self.shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("FakePlatform is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def spec_url(self) -> str:
        return f"{self.url}/openapi/seqera-api-latest.yml"

    async def start(self) -> FakePlatform:
        if self._runner is not None:
            return self
        runner = web.AppRunner(
            self.fake.make_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self.shutdown_timeout,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self._runner = runner
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakePlatform:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ conveniences
    def advance(self, seconds: float) -> float:
        """Move the run clock forward (needs a clock with ``advance``)."""
        advance = getattr(self.state.clock, "advance", None)
        if advance is None:
            raise TypeError(f"{self.state.clock!r} cannot be advanced")
        return float(advance(seconds))

    def add_token(self, workspaces: list[int] | None = None, **kwargs: Any) -> str:
        return self.state.add_token(workspaces, **kwargs)

    def stats(self, token: str | None = None) -> RateStats:
        """Rate counters of ``token`` (default: :attr:`token`)."""
        return self.state.stats(token or self.token)

    def workspace_id(self, org: str, workspace: str) -> int:
        return self.state.workspace_by_name(org, workspace).id

    def launch_body(
        self, workspace_id: int, run_name: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """A valid ``CreateWorkflowLaunch`` body for ``workspace_id`` (its primary compute
        environment, its work dir, nf-core/rnaseq), with ``extra`` launch fields on top."""
        ce = self.state.primary_compute_env(workspace_id)
        if ce is None:
            raise ValueError(f"workspace {workspace_id} has no primary compute environment")
        launch: dict[str, Any] = {
            "pipeline": "https://github.com/nf-core/rnaseq",
            "computeEnvId": ce.id,
            "workDir": ce.work_dir,
        }
        if run_name is not None:
            launch["runName"] = run_name
        launch.update(extra)
        return {"launch": launch}

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    @property
    def errors(self) -> list[BaseException]:
        """Unhandled exceptions answered as 500 (each one is a bug in the fake)."""
        return self.fake.errors

    @property
    def disconnects(self) -> list[str]:
        """operationIds of the requests whose client went away before the answer.

        Logged at DEBUG only: a client timing out or cancelling a call is not an error of
        the server.
        """
        return self.fake.disconnects


@contextlib.contextmanager
def run_in_thread(**kwargs: Any) -> Iterator[FakePlatform]:
    """Run a :class:`FakePlatform` on its own event loop in a daemon thread.

    For synchronous code (examples, benchmarks). Keyword arguments go to FakePlatform.
    Touch ``platform.state`` from the caller's thread only for reads, or while no request
    is in flight.  Leaving the ``with`` block stops the server and joins the thread, however
    short the block was.
    """
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        try:
            platform = await FakePlatform(**kwargs).start()
        except BaseException as exc:  # reported to the caller
            box["error"] = exc
            ready.set()
            return
        # created on the server's loop before the caller can ask it to stop: a stop that
        # comes right after the start is a future resolved, never a loop.stop() lost
        stopping: asyncio.Future[None] = loop.create_future()
        box["platform"], box["stopping"] = platform, stopping
        ready.set()
        try:
            await stopping
        finally:
            await platform.stop()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="fake-platform", daemon=True)
    thread.start()
    ready.wait()
    if "error" in box:
        thread.join()
        raise box["error"]
    platform: FakePlatform = box["platform"]
    stopping: asyncio.Future[None] = box["stopping"]
    try:
        yield platform
    finally:

        def stop() -> None:
            if not stopping.done():
                stopping.set_result(None)

        loop.call_soon_threadsafe(stop)
        thread.join(timeout=10)
