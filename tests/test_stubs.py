"""Generated stubs (``python -m tower_async stubs``): mypy (and pyright, when on PATH or in
``$TOWER_ASYNC_PYRIGHT``) over a user program of our own, for every shared Platform document.

Each checker runs once per document over one program holding every case: lines marked
``# E: <regex>`` must get an error (mypy's message matching the regex), no other line may,
and ``# R: <regex>`` lines must reveal a type matching the regex.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import inspect
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tower_async
from tower_async import Tower, _options, orchestration
from tower_async.errors import SpecError
from tower_async.spec import SchemaCache, load_document
from tower_async.stubs import PACKAGE, generate_stubs, reserved_names, write_stubs
from tower_async.stubs.cli import main as cli_main

from .conftest import spec_path

VERSIONS = ["1.85.0", "1.115.0", "1.181.0"]
REPO = Path(tower_async.__file__).resolve().parents[1]

PROGRAM = """\
import tower_async
from tower_async import PaginationError, RunResult, Tower
from tower_async.models import SubmitWorkflowLaunchRequestIn


async def main() -> None:
    async with Tower(workspace=1) as tw:
        page = await tw.list_workflows(max=10, search="status:FAILED")
        reveal_type(page)  # R: TypedDict\\(tower_async\\.models\\.ListWorkflowsResponse,
        async for item in tw.list_workflows.items(page_size=50, max_items=5):
            wf = item.get("workflow")
            reveal_type(wf)  # R: 'status'\\?: Literal\\['SUBMITTED'\\] \\| .*\\| str \\| None
            if wf is not None:
                print(wf.get("id"), wf.get("status"))
        pages = tw.list_workflows.pages(workspace_id=2)
        reveal_type(pages)  # R: TypedPageIterator\\[TypedDict\\(tower_async\\.models\\.ListWor
        run = await tw.describe_workflow(workflow_id="abc", validation="strict", timeout=5)
        reveal_type(run)  # R: TypedDict\\(tower_async\\.models\\.DescribeWorkflowResponse,
        body = {"launch": {"pipeline": "p", "computeEnvId": "c"}}
        created = await tw.create_workflow_launch(body=body, idempotent=False)  # E: "dict\\[
        created = await tw.create_workflow_launch(body={"launch": {"pipeline": "p"}})
        typed: SubmitWorkflowLaunchRequestIn = {"launch": {"pipeline": "p", "pullLatest": True}}
        created = await tw.create_workflow_launch(body=typed)
        print(created.get("workflowId"))
        result = await tw.wait_for_run("abc", poll_interval=1.0, until="RUNNING")
        reveal_type(result)  # R: tower_async\\.orchestration\\.wait\\.RunResult


async def wrong(tw: Tower) -> None:
    try:
        await tw.list_workflowz()  # E: has no attribute "list_workflowz"
        await tw.list_workflows(maxx=1)  # E: Unexpected keyword argument "maxx"
        await tw.list_workflows(max="ten")  # E: Argument "max" .* incompatible type "str"
        await tw.describe_workflow()  # E: Missing named argument "workflow_id"
        await tw.create_workflow_launch(body={"launch": {"pipeline": "p"}, "nope": 1})  # E: "nope"
        await tw.wait_for_run("abc", poll_intervall=1)  # E: argument "poll_intervall"
    except PaginationError as exc:
        print(exc.operation_id)


def public(r: RunResult) -> None:
{public}
"""


def _program() -> str:
    public = "\n".join(
        f'    reveal_type(tower_async.{name})  # R: -> tower_async\\.[\\w.]+\\.{name}"?$'
        for name in tower_async.__all__
        if name != "__version__"
    )
    return PROGRAM.replace("{public}", public)


def _marks(text: str, tag: str) -> dict[int, str]:
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        found = re.search(rf"  # {tag}: (.*)$", line)
        if found:
            out[n] = found.group(1)
    return out


#: mypy's incremental caches for these tests, kept between runs as mypy's own .mypy_cache
#: is (mypy checks every cached module against its source's hash, so a stale entry is
#: rechecked, never trusted).  One folder per program checked, seeded from another one, so
#: typeshed, aiohttp and this package are analysed once: ~3.7 s cold, ~0.2 s warm.
MYPY_CACHES = REPO / ".mypy_cache" / "test_stubs"


@contextlib.contextmanager
def _mypy_cache(key: str) -> Iterator[Path]:
    """The cache folder for ``key``, held under an exclusive lock (xdist workers and other
    runs take turns; two mypy processes on one cache are not known to be safe)."""
    MYPY_CACHES.mkdir(parents=True, exist_ok=True)
    with (MYPY_CACHES / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        folder = MYPY_CACHES / key
        seeds = [p for p in MYPY_CACHES.iterdir() if p.is_dir() and p != folder]
        if not folder.is_dir() and seeds:
            shutil.copytree(seeds[0], folder)
        yield folder


@pytest.fixture(scope="module")
def mypy_cache() -> Callable[[str], contextlib.AbstractContextManager[Path]]:
    pytest.importorskip("mypy", reason="mypy is not installed (it is in the 'test' extra)")
    return _mypy_cache


def _generate(version: str, out: Path) -> Path:
    # validate=False: the stubs come from the patched document, which validation does not
    # change (it only reports; tests/test_spec_cache.py and the CLI tests validate)
    spec = load_document(spec_path(version), cache=SchemaCache(None), validate=False)
    write_stubs(generate_stubs(spec.document, source=version), out)
    return out


def _prime(cache_dir: Path, version: str) -> None:
    """Put ``version`` in a schema cache without the ~1 s of validation (what is tested
    there is not the cold load: tests/test_spec_cache.py has it)."""
    load_document(spec_path(version), cache=SchemaCache(cache_dir), validate=False)


STUB_MODULES = ("-m", "tower_async._typed", "-m", "tower_async.models")


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory, mypy_cache: Any) -> Any:
    """``checked(version)``: mypy --strict's lines for the user program and the generated
    package of ``version``, both in one run (made once per version for the module)."""
    runs: dict[str, tuple[str, list[str]]] = {}

    def check(version: str) -> tuple[str, list[str]]:
        if version not in runs:
            root = tmp_path_factory.mktemp(f"stubs-{version}")
            stubs = _generate(version, root / "site")
            work = root / "project"
            work.mkdir()
            text = _program()
            (work / "prog.py").write_text(text)
            # the program, and the stub modules by name as an installed package (an
            # installed package's errors are only reported for modules named explicitly)
            with mypy_cache(version) as cache:
                runs[version] = text, _run_mypy(work, stubs, cache, "-m", "prog", *STUB_MODULES)
        return runs[version]

    return check


def _env(stubs: Path) -> dict[str, str]:
    # The stub package and this checkout are found the way an installed package is:
    # on the checker's sys.path, not beside the program (which would shadow the stubs).
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(stubs), str(REPO)])
    env.pop("MYPYPATH", None)
    return env


def _run_mypy(workdir: Path, stubs: Path, cache: Path, *args: str) -> list[str]:
    cmd = [sys.executable, "-m", "mypy", "--strict", "--no-error-summary"]
    cmd += ["--cache-dir", str(cache), "--python-version", "3.10", *args]
    done = subprocess.run(
        cmd, cwd=workdir, env=_env(stubs), capture_output=True, text=True, timeout=600
    )
    assert done.returncode in (0, 1), done.stderr + done.stdout
    return done.stdout.splitlines()


@pytest.mark.parametrize("version", VERSIONS)
def test_mypy_checks_a_user_program_against_the_stubs(version: str, checked: Any) -> None:
    text, lines = checked(version)
    errors: dict[int, list[str]] = {}
    notes: dict[int, list[str]] = {}
    for line in lines:
        found = re.match(r"prog\.py:(\d+): (error|note): (.*)$", line)
        if found is None:
            assert not re.match(r".*: error:", line), f"error outside the program: {line}"
            continue
        kind = errors if found.group(2) == "error" else notes
        kind.setdefault(int(found.group(1)), []).append(found.group(3))
    expected = _marks(text, "E")
    assert sorted(errors) == sorted(expected), "\n".join(lines)
    for n, pattern in expected.items():
        assert any(re.search(pattern, e) for e in errors[n]), (n, pattern, errors[n])
    for n, pattern in _marks(text, "R").items():
        revealed = [t for t in notes.get(n, []) if t.startswith("Revealed type is")]
        assert revealed, (n, notes.get(n))
        value = revealed[0].removeprefix("Revealed type is ").strip('"')
        assert re.search(pattern, value), (n, pattern, value[:400])


@pytest.mark.parametrize("version", VERSIONS)
def test_the_generated_package_passes_mypy_strict(version: str, checked: Any) -> None:
    _, lines = checked(version)
    assert lines and [line for line in lines if not line.startswith("prog.py:")] == []


def _pyright() -> str | None:
    return os.environ.get("TOWER_ASYNC_PYRIGHT") or shutil.which("pyright")


@pytest.mark.parametrize("version", VERSIONS)
def test_pyright_reports_the_same_lines(version: str, tmp_path: Path) -> None:
    pyright = _pyright()
    if pyright is None:
        pytest.skip(
            "pyright is not on PATH: `npm install pyright` (the PyPI wrapper downloads it "
            "at first run) and set TOWER_ASYNC_PYRIGHT to its binary"
        )
    stubs = _generate(version, tmp_path / "site")
    work = tmp_path / "project"
    work.mkdir()
    text = _program()
    (work / "prog.py").write_text(text)
    (work / "pyrightconfig.json").write_text('{"pythonVersion": "3.10"}')
    done = subprocess.run(
        [pyright, "--pythonpath", sys.executable, "prog.py"],
        cwd=work,
        env=_env(stubs),
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in done.stdout.splitlines() if " - error: " in ln]
    found = {int(m.group(1)) for ln in lines if (m := re.search(r"prog\.py:(\d+):\d+ ", ln))}
    assert found == set(_marks(text, "E")), done.stdout
    assert "builtins.object" not in done.stdout


# -- the generator itself (pure) ------------------------------------------------------------


def _doc() -> dict[str, Any]:
    ref = "#/components/schemas/"
    return {
        "openapi": "3.0.1",
        "info": {"title": "t", "version": "9"},
        "paths": {
            "/things": {
                "get": {
                    "operationId": "ListThings",
                    "parameters": [
                        {"name": "max", "in": "query", "schema": {"type": "integer"}},
                        {"name": "offset", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {"schema": {"$ref": ref + "Thing.List"}}
                            },
                        }
                    },
                },
                "post": {
                    "operationId": "CreateThing",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": ref + "Config"}}},
                    },
                    "responses": {"204": {"description": "none"}},
                },
            },
            "/ops": {
                "get": {"operationId": "Operations", "responses": {"200": {"description": ""}}}
            },
        },
        "components": {
            "schemas": {
                "Thing.List": {
                    "type": "object",
                    "properties": {
                        "things": {"type": "array", "items": {"$ref": ref + "Config"}},
                        "totalSize": {"type": "integer"},
                    },
                },
                "Config": {
                    "type": "object",
                    "discriminator": {
                        "propertyName": "kind",
                        "mapping": {"a-b": ref + "A", "c": ref + "C"},
                    },
                    "oneOf": [{"$ref": ref + "A"}, {"$ref": ref + "C"}],
                },
                "A": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "kind": {"type": "string"},
                        "size": {"type": "integer"},
                        "mode": {"type": "string", "enum": ["x", "y"]},
                    },
                },
                "C": {"type": "object", "properties": {"kind": {"type": "string"}}},
                "Tree": {
                    "type": "object",
                    "properties": {
                        "list": {"type": "array", "items": {"$ref": ref + "Tree"}},
                        "meta": {"type": "object", "properties": {"x-y": {"type": "number"}}},
                    },
                },
            }
        },
    }


def test_generator_output_shape() -> None:
    files = generate_stubs(_doc())
    assert files == generate_stubs(_doc())  # deterministic
    assert files["py.typed"] == "partial\n"
    models, ops = files["models.pyi"], files["_typed.pyi"]
    # dotted names sanitised; loose response types; strict request types with Required
    assert "class Thing_List(_te.TypedDict, total=False):" in models
    assert "    totalSize: int | None" in models
    assert "    mode: _t.Literal['x', 'y'] | str | None" in models
    assert "    size: _te.Required[int]" in models
    assert "    mode: _te.NotRequired[_t.Literal['x', 'y']]" in models
    # the discriminated oneOf: a union of Literal-tagged TypedDicts
    assert re.search(r"^Config: _te.TypeAlias = Config__a_b \| Config__c$", models, re.M)
    assert "    kind: _te.Required[_t.Literal['a-b']]" in models
    assert re.search(r"^ConfigIn: _te.TypeAlias = Config__a_bIn \| Config__cIn$", models, re.M)
    # one attribute per operation; paged ones typed items/pages; a body Required
    assert "    list_things: ListThingsOp" in ops
    assert "-> TypedItemIterator[m.Config]" in ops
    assert "-> TypedPageIterator[m.Thing_List]" in ops
    assert "    body: Required[m.ConfigIn]" in ops
    assert "async def __call__(self, **kwargs: Unpack[CreateThingArgs]) -> None" in ops
    # a name Tower already has is reached with tw.operation(...), as at run time
    assert "operations" in reserved_names()
    assert "    operations: OperationsOp" not in ops
    assert "Operations" in ops.splitlines()[1]


def test_recursive_and_awkward_schemas_give_a_strict_clean_package(
    tmp_path: Path, mypy_cache: Any
) -> None:
    files = generate_stubs(_doc())
    # a field named like a builtin type, or not an identifier: functional syntax
    assert "Tree = _te.TypedDict('Tree', {'list': list[Tree] | None," in files["models.pyi"]
    assert "Tree_meta = _te.TypedDict('Tree_meta', {'x-y': float | None}" in files["models.pyi"]
    write_stubs(files, tmp_path / "site")
    with mypy_cache("awkward") as cache:
        assert _run_mypy(tmp_path, tmp_path / "site", cache, *STUB_MODULES) == []


def test_broken_schemas_are_untyped_and_broken_documents_a_spec_error() -> None:
    schemas: dict[str, Any] = {
        "Loop": {"$ref": "#/components/schemas/Loop"},
        "Gone": {"$ref": "#/components/schemas/Missing"},
        "Odd": {"properties": 5, "required": "x"},
        "Floats": {"enum": [1.5, 2]},
        "Holes": {"type": "object", "required": "x", "properties": {"a": None}},
    }
    models = generate_stubs({"openapi": "3.0.0", "paths": {}, "components": {"schemas": schemas}})[
        "models.pyi"
    ]
    for line in (
        "Loop: _te.TypeAlias = _t.Any",
        "Gone: _te.TypeAlias = _t.Any",
        "Floats: _te.TypeAlias = float",
        "    a: _t.Any",
    ):
        assert line in models, line
    deep: dict[str, Any] = {"type": "object", "properties": {}}
    node = deep
    for _ in range(3000):
        node["properties"]["x"] = {"type": "object", "properties": {}}
        node = node["properties"]["x"]
    with pytest.raises(SpecError, match="nests schemas too deeply"):
        generate_stubs({"openapi": "3.0.0", "paths": {}, "components": {"schemas": {"D": deep}}})
    with pytest.raises(SpecError, match="no 'paths'"):
        generate_stubs({"openapi": "3.0.0"})


def test_cli_writes_the_package_from_the_document_a_session_binds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = spec_path("1.181.0")
    monkeypatch.setenv("TOWER_ASYNC_SPECS", str(path.parent))
    cache = tmp_path / "cache"
    _prime(cache, "1.181.0")
    assert cli_main(["--spec", "1.181.0", "--out", str(tmp_path), "--cache-dir", str(cache)]) == 0
    assert "API 1.181.0" in capsys.readouterr().out
    stub = (tmp_path / PACKAGE / "_typed.pyi").read_text()
    declared = set(re.findall(r"^    (\w+): \w+Op$", stub, re.M))

    async def bound() -> set[str]:
        async with Tower(spec=path, endpoint="http://127.0.0.1:9", cache_dir=cache, token="") as tw:
            assert tw.spec.patches  # the patched document, as the runtime binds it
            return set(tw.operations.python_names)

    names = asyncio.run(bound())
    assert declared == names - reserved_names()
    assert len(declared) > 200
    # a second run (VERSION now found in the schema cache) replaces the package in place
    monkeypatch.setenv("TOWER_ASYNC_SPECS", str(tmp_path / "nowhere"))
    assert cli_main(["--spec", "1.181.0", "--out", str(tmp_path), "--cache-dir", str(cache)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", PACKAGE]
    assert cli_main(["--remove", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_cli_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--out", str(tmp_path), "--cache-dir", str(tmp_path / "c")]
    assert cli_main(["--spec", "0.0.1", *args]) == 2
    err = capsys.readouterr().err
    assert "no document for API 0.0.1" in err and "Traceback" not in err
    assert cli_main(["--spec", str(tmp_path / "missing.yaml"), *args]) == 2
    assert "neither a file, a URL nor an API version" in capsys.readouterr().err
    done = subprocess.run(
        [sys.executable, "-m", "tower_async", "nonsense"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert done.returncode == 2 and "usage: python -m tower_async stubs" in done.stdout


# -- the static surface that does not need stubs --------------------------------------------


def test_dir_lists_every_public_name() -> None:
    assert set(tower_async.__all__) <= set(dir(tower_async))


def test_model_names_import_at_run_time_as_dict() -> None:
    from tower_async.models import SubmitWorkflowLaunchRequestIn, WorkflowDbDto

    assert SubmitWorkflowLaunchRequestIn is dict and WorkflowDbDto is dict
    with pytest.raises(AttributeError):
        tower_async.models.__wrapped__  # noqa: B018


@pytest.mark.parametrize(
    ("options", "function"),
    [
        (_options.LaunchOverrides, orchestration.LaunchSpec),
        (_options.BulkLaunchOptions, orchestration.bulk_launch),
        (_options.WaitOptions, orchestration.wait_for_run),
        (_options.WaitForRunsOptions, orchestration.wait_for_runs),
        (_options.FollowLogOptions, orchestration.follow_log),
    ],
)
def test_fan_out_options_mirror_orchestration(options: type, function: Any) -> None:
    params = inspect.signature(function).parameters.values()
    if isinstance(function, type):
        names = {p.name for p in params} - {"pipeline"}
    else:
        names = {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(options.__required_keys__ | options.__optional_keys__) == names  # type: ignore[attr-defined]


def test_cli_downloads_a_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tower_async.spec import document_url_for
    from tower_async.testing.server import run_in_thread

    with run_in_thread(rate_limit=None, spec=str(spec_path("1.115.0"))) as fake:
        url = document_url_for(fake.url)
        args = ["--spec", url, "--out", str(tmp_path), "--cache-dir", str(tmp_path / "c")]
        assert cli_main(args) == 0
    assert "API 1.115.0" in capsys.readouterr().out
    assert "    list_workflows: ListWorkflowsOp" in (tmp_path / PACKAGE / "_typed.pyi").read_text()


def test_the_default_location_needs_no_configuration(tmp_path: Path, mypy_cache: Any) -> None:
    """``python -m tower_async stubs`` without ``--out``, run by an environment's interpreter,
    writes into that environment's site-packages; mypy with that interpreter (and no
    MYPYPATH, no config) then sees the operations."""
    import sysconfig
    import venv

    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    # "installed": this checkout, and the dependencies from the running environment
    (Path(purelib) / "deps.pth").write_text(f"{REPO}\n{sysconfig.get_paths()['purelib']}\n")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    _prime(tmp_path / "cache", "1.181.0")
    made = subprocess.run(
        [python, "-m", "tower_async", "stubs", "--spec", str(spec_path("1.181.0"))],
        capture_output=True,
        text=True,
        env={**clean, "TOWER_ASYNC_CACHE_DIR": str(tmp_path / "cache")},
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert (Path(purelib) / PACKAGE / "_typed.pyi").is_file()
    work = tmp_path / "project"
    work.mkdir()
    (work / "prog.py").write_text(
        "from tower_async import Tower\n\n"
        "async def main(tw: Tower) -> None:\n"
        "    reveal_type(await tw.describe_workflow(workflow_id='x'))\n"
        "    await tw.describe_workflowz()\n"
    )
    cmd = [sys.executable, "-m", "mypy", "--strict", "--python-executable", str(python)]
    with mypy_cache("default-location") as cache:
        cmd += ["--cache-dir", str(cache), "--python-version", "3.10", "prog.py"]
        done = subprocess.run(cmd, cwd=work, env=clean, capture_output=True, text=True, timeout=600)
    assert 'prog.py:4: note: Revealed type is "TypedDict(tower_async.models.Describe' in done.stdout
    assert 'prog.py:5: error: "Tower" has no attribute "describe_workflowz"' in done.stdout
