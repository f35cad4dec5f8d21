"""Project tasks.  ``nox -s tests`` is what CI runs (see .ci/run and README.md)."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck"]

PYTHON = None  # the interpreter nox runs on


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (real loopback HTTP against the embedded fake Platform).

    pytest-xdist with one worker more than the cores, stealing work (``--dist worksteal``):
    about a third of the suite's worker time is waiting (child processes, rate windows,
    Redis leases), not computing, so a third worker on two cores takes the wall time from
    ~72 s to ~56 s.  Every test uses its own ports, temporary directories and process-wide
    registries, so tests may share the machine.  ``nox -s tests -- -n 0`` runs them in one
    process (as ``pytest`` alone does).
    """
    session.install("-e", ".[test]")
    workers = str((os.cpu_count() or 1) + 1)
    session.run("pytest", "-q", "-rs", "-n", workers, "--dist", "worksteal", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check + format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package; mypy (pyproject's config) on tests/, examples/, bench/."""
    session.install("-e", ".[test,progress]", "mypy", "types-pyyaml")
    session.run("mypy", "--strict", "tower_async")
    session.run("mypy", "tests", "examples", "bench")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: a bulk launch (against the embedded fake Platform without a token)."""
    session.install("-e", ".[progress]")
    session.run("python", "examples/bulk_launch.py", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks; each prints ratios measured in the same run."""
    session.install("-e", ".[test]")
    scripts = session.posargs or [
        "bench_startup.py",
        "bench_validation.py",
        "bench_overhead.py",
        "bench_ratelimit.py",
        "bench_pagination.py",
        "bench_launch.py",
    ]
    for script in scripts:
        session.run("python", f"bench/{script}")
