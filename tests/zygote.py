"""Child processes forked from one pre-imported interpreter (a zygote), for the kill tests.

The suite starts ~50 client processes (kill tests, Redis workers, examples, standalone
fakes).  Each new interpreter spent ~0.3 CPU-seconds importing aiohttp, redis and this
package before doing anything; forked from a process that has imported them, a child
starts in a few milliseconds.  It is still a real, separate process: its own pid, signals,
exit status, pipes, environment and working directory, started by ``python <script>`` or
``python -m <module>`` semantics (``runpy``), as ``subprocess`` would.

:class:`Popen` and :func:`run` take the arguments of their ``subprocess`` namesakes that the
tests use.  The zygote (``python -m tests.zygote``) is started once per test process,
single-threaded and without an event loop, so a fork copies no lock held by another thread;
it exits when the test process that started it goes away (its stdin closes).

Tests about start-up itself (imports, ``python -m`` entry points, the pytest plugin) keep
using ``subprocess``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import json
import os
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
REPO = Path(__file__).resolve().parents[1]
#: what the zygote imports before it forks (what the children import anyway)
PRELOAD = (
    "aiohttp",
    "aiohttp.web",
    "yaml",
    "redis.asyncio",
    "tower_async",
    "tower_async.session",
    "tower_async.orchestration",
    "tower_async.orchestration.ledger_redis",
    "tower_async.ratelimit_redis",
    "tower_async.testing",
)


# -- the zygote (python -m tests.zygote SOCKET) ----------------------------------------------


def _child_main(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become ``python <argv...>`` and never return."""
    code = 1
    try:
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
        code = _run_argv(request["argv"])
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        _flush()
        import traceback

        traceback.print_exc()
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as Python ends on an uncaught Ctrl-C
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        import traceback

        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        _flush()
        os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(Exception):
        print(code, file=sys.stderr)
    return 1


def _run_argv(argv: list[str]) -> int:
    """``python -m mod args`` or ``python script args`` (argv[0] is the interpreter)."""
    import runpy

    args = argv[1:]
    if args[:1] == ["-u"]:
        args = args[1:]
    if args[:1] == ["-m"]:
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(args)
        sys.path.insert(0, str(Path(args[0]).resolve().parent))
        runpy.run_path(args[0], run_name="__main__")
    return 0


class _Zygote:
    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the test process handles Ctrl-C
        self.wake, self.wake_w = wake_r, wake_w
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(wake_r, selectors.EVENT_READ, "reap")
        self.selector.register(sys.stdin, selectors.EVENT_READ, "parent")

    def serve(self) -> None:
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                if key.data == "parent" and not os.read(sys.stdin.fileno(), 1024):
                    return  # the test process is gone
                if key.data == "accept":
                    self._accept()
            self._reap()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        while data[-1:] != b"\n":  # (the request ends with a newline)
            more = conn.recv(1 << 16)
            if not more:
                raise RuntimeError("a truncated request")
            data += more
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            self._close_all(conn)
            _child_main(request, fds)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")

    def _close_all(self, conn: socket.socket) -> None:
        """In a new child: nothing of the zygote's stays open (other children's sockets,
        the listener, the wake-up pipe)."""
        signal.set_wakeup_fd(-1)
        self.selector.close()
        for sock in (self.listener, conn, *self.children.values()):
            sock.close()
        os.close(self.wake)
        os.close(self.wake_w)

    def _reap(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.wake, 4096)
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                code = os.waitstatus_to_exitcode(status)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
                conn.close()


def _serve(path: str) -> None:
    for name in PRELOAD:
        __import__(name)
    zygote = _Zygote(path)
    print("READY", flush=True)
    zygote.serve()


# -- the test side ---------------------------------------------------------------------------

_lock = threading.Lock()
_started: tuple[subprocess.Popen[bytes], str] | None = None


def _socket_path() -> str:
    global _started
    with _lock:
        if _started is None or _started[0].poll() is not None:
            folder = tempfile.mkdtemp(prefix="zygote-")
            path = os.path.join(folder, "s")
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.zygote", path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=REPO,
                env=env,
            )
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != b"READY":
                raise RuntimeError("the zygote did not start")
            atexit.register(_stop, proc, folder)
            _started = proc, path
        return _started[1]


def _stop(proc: subprocess.Popen[bytes], folder: str) -> None:
    with contextlib.suppress(Exception):
        proc.kill()
        proc.wait(timeout=5)
    shutil.rmtree(folder, ignore_errors=True)


def _target(spec: int | None, default: int) -> tuple[int, int | None]:
    """(fd for the child, our end of a pipe or None) for PIPE, DEVNULL or None (ours)."""
    if spec == PIPE:
        r, w = os.pipe()
        return w, r
    if spec == DEVNULL:
        return os.open(os.devnull, os.O_RDWR), None
    if spec is None:
        return os.dup(default), None
    raise ValueError(f"zygote.Popen takes PIPE, DEVNULL or None, not {spec!r}")


class Popen:
    """A forked child with the parts of :class:`subprocess.Popen` the tests use."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        stdout: int | None = None,
        stderr: int | None = None,
        text: bool = False,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.args = [str(a) for a in args]
        self.returncode: int | None = None
        ends = [_target(DEVNULL, 0), _target(stdout, 1), _target(stderr, 2)]
        request = {
            "argv": self.args,
            "env": dict(os.environ if env is None else env),
            "cwd": str(cwd or os.getcwd()),
        }
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._conn.connect(_socket_path())
            message = json.dumps(request).encode() + b"\n"
            socket.send_fds(self._conn, [message], [fd for fd, _ in ends])
        finally:
            for fd, _ in ends:
                os.close(fd)
        self._buf = b""
        self._waiting = threading.Lock()
        self.pid: int = json.loads(self._line(None) or b'{"pid": 0}')["pid"]
        if not self.pid:
            raise RuntimeError("the zygote did not start the child")
        self.stdout = self._reader(ends[1][1], text)
        self.stderr = self._reader(ends[2][1], text)

    @staticmethod
    def _reader(fd: int | None, text: bool) -> Any:
        if fd is None:
            return None
        return os.fdopen(fd, "r" if text else "rb")

    def poll(self) -> int | None:
        if self.returncode is None:
            self._await_exit(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and not self._await_exit(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def _await_exit(self, timeout: float | None) -> bool:
        with self._waiting:  # (run() may wait from two threads at a timeout)
            if self.returncode is not None:
                return True
            line = self._line(timeout)
            if line is None:
                return False
            self.returncode = json.loads(line)["exit"] if line else -signal.SIGKILL
            self._conn.close()
            return True

    def _line(self, timeout: float | None) -> bytes | None:
        """The zygote's next line (b"" when it is gone), or None at the timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self._conn], [], [], left)
            if not readable:
                return None
            more = self._conn.recv(4096)
            if not more:
                return b""
            self._buf += more
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def communicate(self, timeout: float | None = None) -> tuple[Any, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        out = self.stdout.read() if self.stdout is not None else None
        err = self.stderr.read() if self.stderr is not None else None
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self.wait(left)
        for stream in (self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        return out, err


def run(
    args: Sequence[str],
    *,
    capture_output: bool = False,
    text: bool = False,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[Any]:
    """:func:`subprocess.run` through the zygote (the child is killed at the timeout)."""
    pipe = PIPE if capture_output else None
    proc = Popen(args, stdout=pipe, stderr=pipe, text=text, env=env, cwd=cwd)
    try:
        out, err = _communicate_within(proc, timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.wait(), out, err)


def _communicate_within(proc: Popen, timeout: float | None) -> tuple[Any, Any]:
    if timeout is None:
        return proc.communicate()
    box: list[tuple[Any, Any]] = []
    reader = threading.Thread(target=lambda: box.append(proc.communicate()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        raise subprocess.TimeoutExpired(proc.args, timeout)
    return box[0]


class AsyncChild:
    """:class:`Popen` for a coroutine: what ``asyncio.create_subprocess_exec`` gives."""

    def __init__(self, proc: Popen, stdout: asyncio.StreamReader | None) -> None:
        self._proc = proc
        self.stdout = stdout
        self.pid = proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    async def wait(self) -> int:
        return await asyncio.to_thread(self._proc.wait)

    async def communicate(self) -> tuple[bytes, None]:
        """(stdout, None): what the child wrote (b"" when not piped), after it ended."""
        out = await self.stdout.read() if self.stdout is not None else b""
        await self.wait()
        return out, None

    def send_signal(self, sig: int) -> None:
        self._proc.send_signal(sig)

    def kill(self) -> None:
        self._proc.kill()


async def create_subprocess_exec(
    *args: str,
    stdout: int | None = None,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> AsyncChild:
    """:func:`asyncio.create_subprocess_exec` through the zygote (stdout as a stream)."""
    proc = Popen(args, stdout=stdout, env=env, cwd=cwd)
    reader = None
    if proc.stdout is not None:
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), proc.stdout)
    return AsyncChild(proc, reader)


if __name__ == "__main__":
    _serve(sys.argv[1])
