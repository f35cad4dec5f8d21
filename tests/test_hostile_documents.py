"""Hostile documents (issue 11): nothing but SpecError comes out, nothing is fetched or opened.

Every document here is written by the test; servers are on loopback and count what they get.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tower_async import SpecError, SpecWarning, Tower
from tower_async import spec as spec_module
from tower_async.spec import DocumentLimits, SchemaCache, check_document, load_document

from .conftest import REPO, spec_path

TOKEN = "hostile-doc-token-5b7e"


def _doc(paths: dict[str, Any] | None = None, /, **extra: Any) -> dict[str, Any]:
    """A small valid OpenAPI 3.0 document with one GET /ping unless ``paths`` is given."""
    if paths is None:
        paths = {"/ping": _get("GetPing")}
    return {
        "openapi": "3.0.1",
        "info": {"title": "hostile", "version": "9.9.9"},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        **extra,
    }


def _get(op_id: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": schema or {"type": "object"}}}
    return {
        "get": {
            "operationId": op_id,
            "responses": {"200": {"description": "ok", "content": content}},
        }
    }


@dataclass
class Server:
    url: str
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, auth


@asynccontextmanager
async def server(
    routes: dict[str, Callable[[], web.Response]] | None = None,
) -> AsyncIterator[Server]:
    """A loopback server that records every request; unknown paths answer JSON with the path."""
    srv = Server(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        srv.seen.append((request.method, request.path, request.headers.get("Authorization")))
        make = (routes or {}).get(request.path)
        if make is not None:
            return make()
        return web.json_response({"path": request.path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    srv.url = f"http://127.0.0.1:{port}"
    try:
        yield srv
    finally:
        await runner.cleanup()


def _cached(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob("*.json")) if cache_dir.exists() else []


def _write(tmp_path: Path, name: str, document: dict[str, Any] | str) -> Path:
    path = tmp_path / name
    text = document if isinstance(document, str) else json.dumps(document)
    path.write_text(text)
    return path


# -- paths that could leave the endpoint ----------------------------------------------------

BAD_PATHS = [
    ".evil.example/user-info",  # endpoint + path = another host
    "7/user-info",  # endpoint :2001 + path = port 20017
    "http://evil.example/x",
    "//evil.example/x",
    "/a//b",
    "/workflow/../launch",
    "/workflow/./launch",
    "/%2e%2e/launch",
    "/a%2fb",
    "/a\\b",
    "/@evil.example/x",
    "/x?token=1",
    "/x#frag",
    "/a b",
    "/a\r\nHost: evil",
    "/{id",
]


@pytest.mark.parametrize("path", BAD_PATHS)
async def test_path_that_could_leave_the_endpoint_is_refused_at_bind(
    path: str, cache_dir: Path
) -> None:
    async with server() as endpoint, server() as other:
        document = _doc({path: _get("GetUserInfo")})
        tw = Tower(spec=document, token=TOKEN, endpoint=endpoint.url, cache_dir=cache_dir)
        with pytest.raises(SpecError) as caught:
            await tw.open()
        assert "GetUserInfo" in str(caught.value) and repr(path)[1:-1] in str(caught.value)
        assert endpoint.seen == [] and other.seen == []  # nothing was sent anywhere


async def test_a_path_joined_into_the_port_never_reaches_that_port(cache_dir: Path) -> None:
    # endpoint http://127.0.0.1:4012 + path "3/user-info" would be port 40123
    async with server() as other:
        port = other.url.rsplit(":", 1)[1]
        endpoint = f"http://127.0.0.1:{port[:-1]}"
        document = _doc({f"{port[-1]}/user-info": _get("GetUserInfo")})
        tw = Tower(spec=document, token=TOKEN, endpoint=endpoint, cache_dir=cache_dir)
        with pytest.raises(SpecError, match="does not start with '/'"):
            await tw.open()
        with pytest.raises(AttributeError):  # the session never opened: nothing to call
            await tw.get_user_info()
    assert other.seen == []  # the token never went to the other port


@pytest.mark.parametrize(
    "path", ["/", "/ping/", "/workflow/{workflowId}/cancel", "/a/{b}.json", "/a:b/c~d"]
)
async def test_ordinary_paths_bind_and_stay_on_the_endpoint(path: str, cache_dir: Path) -> None:
    async with server() as endpoint:
        document = _doc({path: _get("GetThing")})
        async with Tower(
            spec=document, token=TOKEN, endpoint=endpoint.url, cache_dir=cache_dir
        ) as tw:
            args = {p.python_name: "v1" for p in tw.operations["GetThing"].parameters}
            await tw.get_thing(**args)
        [(_, seen_path, auth)] = endpoint.seen
        assert seen_path == path.replace("{workflowId}", "v1").replace("{b}", "v1")
        assert auth == f"Bearer {TOKEN}"


# -- external references ----------------------------------------------------------------------


def _with_ref(ref: str, key: str = "$ref") -> dict[str, Any]:
    return _doc({"/ping": _get("GetPing", {key: ref})})


async def test_http_ref_is_refused_without_a_request(tmp_path: Path, cache_dir: Path) -> None:
    async with server() as remote:
        ref = f"{remote.url}/x.yaml"
        path = _write(tmp_path, "doc.json", _with_ref(ref))
        with pytest.raises(SpecError, match="refers outside the document") as caught:
            await _load_in_thread(path, cache_dir)
        assert "$.paths./ping.get.responses.200.content.application/json.schema.$ref" in str(
            caught.value
        )
        # the validator on its own, with the ref and with a base URI moved by $id, fetches nothing
        problems = check_document(_with_ref(ref))
        moved = _doc({"/ping": _get("GetPing", {"$id": f"{remote.url}/", "$ref": "#/x"})})
        check_document(moved)
        assert problems is not None and "not followed" in problems
        assert remote.seen == []
        with pytest.raises(SpecError, match="moves the base URI"):
            load_document(moved, cache=SchemaCache(cache_dir))
    assert _cached(cache_dir) == []  # nothing was cached


async def _load_in_thread(path: Path, cache_dir: Path) -> Any:
    import asyncio

    # the loopback server must keep serving while the document is checked
    return await asyncio.to_thread(load_document, path, cache=SchemaCache(cache_dir))


_AUDIT_CHILD = """
import json, sys
secret = sys.argv[1]
opened = []
def hook(event, args):
    if event == "open" and args and secret in str(args[0]):
        opened.append(str(args[0]))
sys.addaudithook(hook)
from tower_async.spec import SchemaCache, check_document, load_document
out = {"errors": [], "problems": []}
for doc in sys.argv[3:]:
    try:
        load_document(doc, cache=SchemaCache(sys.argv[2]))
    except Exception as exc:
        out["errors"].append(type(exc).__name__ + ": " + str(exc))
    import yaml
    out["problems"].append(check_document(yaml.safe_load(open(doc))))
out["opened"] = opened
print(json.dumps(out))
"""


def test_file_refs_never_open_the_file(tmp_path: Path) -> None:
    marker = "ROOT-PASSWORD-4c1f9a"
    secret = tmp_path / "outside" / "secret.yaml"
    secret.parent.mkdir()
    secret.write_text(f"type: object\ndescription: {marker}\n")
    docs = [
        _write(tmp_path, "abs.json", _with_ref(secret.as_uri())),
        _write(tmp_path, "outside/rel.json", _with_ref("secret.yaml")),
        _write(tmp_path, "outside/relfrag.json", _with_ref("./secret.yaml#/description")),
    ]
    cache = tmp_path / "cache"
    result = subprocess.run(
        [sys.executable, "-c", _AUDIT_CHILD, str(secret), str(cache), *map(str, docs)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=secret.parent,  # a relative ref would find the file here
        check=True,
    )
    out = json.loads(result.stdout)
    assert out["opened"] == []
    assert len(out["errors"]) == 3 and all(e.startswith("SpecError: ") for e in out["errors"])
    assert all(p is not None for p in out["problems"])
    assert marker not in result.stdout + result.stderr
    for entry in cache.rglob("*") if cache.exists() else []:
        assert not entry.is_file() or marker.encode() not in entry.read_bytes()


# -- YAML aliases, size and depth ------------------------------------------------------------

BILLION_LAUGHS = """openapi: 3.0.1
info: {title: lol, version: 1.0.0}
paths: {}
x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
x-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
x-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
x-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
x-e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
x-f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
x-g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
x-h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
x-i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
x-j: &j [*i,*i,*i,*i,*i,*i,*i,*i,*i]
x-k: &k [*j,*j,*j,*j,*j,*j,*j,*j,*j]
x-l: &l [*k,*k,*k,*k,*k,*k,*k,*k,*k]
x-m: &m [*l,*l,*l,*l,*l,*l,*l,*l,*l]
x-n: &n [*m,*m,*m,*m,*m,*m,*m,*m,*m]
x-o: &o [*n,*n,*n,*n,*n,*n,*n,*n,*n]
"""

MAPPING_LAUGHS = "openapi: 3.0.1\ninfo: {title: lol, version: 1.0.0}\npaths: {}\n" + "".join(
    f"x-{b}: &{b} {{" + ", ".join(f"{k}: *{a}" for k in "abcdefghi") + "}\n"
    for a, b in zip("abcdefghijklmn", "bcdefghijklmno", strict=True)
).replace("*a", "lol")

_RLIMIT_CHILD = """
import resource, sys
from tower_async.spec import SchemaCache, load_document
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    load_document(sys.argv[1], cache=SchemaCache(sys.argv[2]))
except BaseException as exc:
    print(type(exc).__name__, str(exc)[:300])
else:
    print("loaded")
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, MAPPING_LAUGHS], ids=["lists", "mappings"])
def test_alias_bomb_is_refused_in_bounded_memory(text: str, tmp_path: Path) -> None:
    assert len(text.encode()) < 1100
    bomb = _write(tmp_path, "bomb.yaml", text)
    cache = tmp_path / "cache"
    # address space: what the interpreter with its imports takes, plus 256 MiB
    base = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tower_async.spec, yaml, resource;"
            "print(open('/proc/self/statm').read().split()[0])",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    limit = int(base.stdout) * os.sysconf("SC_PAGE_SIZE") + 256 * 2**20
    result = subprocess.run(
        [sys.executable, "-c", _RLIMIT_CHILD, str(bomb), str(cache), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("SpecError "), result.stdout + result.stderr
    assert "bomb.yaml line " in result.stdout and "expands to more than" in result.stdout
    assert _cached(cache) == []


def test_small_aliases_expand_into_a_plain_tree(tmp_path: Path, cache_dir: Path) -> None:
    text = textwrap.dedent(
        """\
        openapi: 3.0.1
        info: {title: t, version: 1.0.0}
        paths:
          /a:
            get:
              operationId: GetA
              responses: &ok
                "200": {description: ok, content: {application/json: {schema: {type: object}}}}
          /b:
            get:
              operationId: GetB
              responses: *ok
        """
    )
    spec = load_document(_write(tmp_path, "anchors.yaml", text), cache=SchemaCache(cache_dir))
    a = spec.document["paths"]["/a"]["get"]["responses"]
    b = spec.document["paths"]["/b"]["get"]["responses"]
    assert a == b and a is not b  # two places, not one shared object


def _nested(depth: int) -> str:
    return "openapi: 3.0.1\ninfo: {title: t, version: 1.0.0}\npaths: {}\nx-deep: " + (
        "[" * depth + "]" * depth
    )


@pytest.mark.parametrize("kind", ["yaml", "json", "dict", "alias"])
def test_deep_nesting_is_a_spec_error(kind: str, tmp_path: Path, cache_dir: Path) -> None:
    cache = SchemaCache(cache_dir)
    deep: Any
    if kind == "yaml":
        deep = _write(tmp_path, "deep.yaml", _nested(300))
    elif kind == "json":
        deep = _write(tmp_path, "deep.json", _doc(**{"x-deep": _deep_list(300)}))
    elif kind == "dict":
        deep = _doc(**{"x-deep": _deep_list(300)})
    else:  # 40 levels aliased into 40 more
        inner = "[" * 40 + "]" * 40
        text = _nested(0).replace("x-deep: ", f"x-a: &a {inner}\nx-deep: ")
        deep = _write(tmp_path, "alias.yaml", text + "[" * 40 + "*a" + "]" * 40)
    with pytest.raises(SpecError, match="nested deeper than 64 levels"):
        load_document(deep, cache=cache)
    # and within the limit it loads
    assert load_document(_write(tmp_path, "ok.yaml", _nested(40)), cache=cache).document


def _deep_list(depth: int) -> list[Any]:
    node: list[Any] = []
    for _ in range(depth):
        node = [node]
    return node


def test_a_mapping_that_contains_itself_or_explodes_is_a_spec_error(cache_dir: Path) -> None:
    cyclic = _doc()
    cyclic["x-self"] = cyclic
    with pytest.raises(SpecError, match="nested deeper"):
        load_document(cyclic, cache=SchemaCache(cache_dir))
    level: list[Any] = ["lol"] * 10
    for _ in range(12):  # 10**12 values if expanded, a few hundred objects in memory
        level = [level] * 10
    with pytest.raises(SpecError, match="more than"):
        load_document(_doc(**{"x-bomb": level}), cache=SchemaCache(cache_dir))


def test_size_limit_for_files(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spec_module, "LIMITS", DocumentLimits(max_bytes=4096))
    big = _doc(**{"x-pad": "x" * 5000})
    with pytest.raises(SpecError, match="larger than 4096 bytes"):
        load_document(_write(tmp_path, "big.json", big), cache=SchemaCache(cache_dir))
    with pytest.raises(SpecError, match="expands to more than 4096 characters"):
        text = _nested(0) + "[]\nx-a: &a " + "y" * 1000 + "\nx-b: [*a, *a, *a, *a, *a]\n"
        load_document(_write(tmp_path, "chars.yaml", text), cache=SchemaCache(cache_dir))


async def test_size_limit_for_downloads(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_module, "LIMITS", DocumentLimits(max_bytes=4096))
    body = json.dumps(_doc(**{"x-pad": "x" * 5000})).encode()

    def gzipped() -> web.Response:
        response = web.Response(body=body, content_type="application/json")
        response.enable_compression()  # small on the wire, large once decompressed
        return response

    async with server({"/doc.json": gzipped}) as host:
        tw = Tower(spec=f"{host.url}/doc.json", token=TOKEN, endpoint=host.url, cache_dir=cache_dir)
        with pytest.raises(SpecError, match="larger than 4096 bytes"):
            await tw.open()


async def test_alias_bomb_from_a_download_is_refused(cache_dir: Path) -> None:
    def bomb() -> web.Response:
        return web.Response(body=BILLION_LAUGHS.encode(), content_type="application/yaml")

    async with server({"/bomb.yaml": bomb}) as host:
        tw = Tower(
            spec=f"{host.url}/bomb.yaml", token=TOKEN, endpoint=host.url, cache_dir=cache_dir
        )
        with pytest.raises(SpecError, match=r"bomb\.yaml line \d+: the document expands"):
            await tw.open()
        assert [p for _, p, _ in host.seen] == ["/bomb.yaml"]  # and nothing after it
    assert _cached(cache_dir) == []


@pytest.mark.parametrize(
    ("value", "found"),
    [("!!binary aGVsbG8=", "bytes"), ("!!set {a, b}", "set"), ("!!python/name:os.system", "")],
)
def test_non_json_yaml_values_are_spec_errors(
    value: str, found: str, tmp_path: Path, cache_dir: Path
) -> None:
    text = _nested(0) + f"[]\nx-value: {value}\n"
    with pytest.raises(SpecError, match=found):
        load_document(_write(tmp_path, "tags.yaml", text), cache=SchemaCache(cache_dir))


def test_yaml_int_keys_and_dates_become_json(tmp_path: Path, cache_dir: Path) -> None:
    text = textwrap.dedent(
        """\
        openapi: 3.0.1
        info: {title: t, version: 1.0.0}
        paths:
          /a:
            get:
              operationId: GetA
              responses:
                200: {description: ok, content: {application/json: {schema: {example: 2024-01-31}}}}
        """
    )
    path = _write(tmp_path, "keys.yaml", text)
    cold = load_document(path, cache=SchemaCache(cache_dir))
    warm = load_document(path, cache=SchemaCache(cache_dir))
    assert warm.from_cache and cold.document == warm.document
    responses = cold.document["paths"]["/a"]["get"]["responses"]
    assert responses["200"]["content"]["application/json"]["schema"]["example"] == "2024-01-31"


@pytest.mark.parametrize(
    "responses",
    [
        {"400": {"description": "x", "content": []}},
        {
            "200": {
                "description": "x",
                "content": {"application/json": {"schema": {"nullable": True, "allOf": 5}}},
            }
        },
        {"200": "not a response"},
        [1, 2],
    ],
    ids=["content-list", "allof-int", "response-str", "responses-list"],
)
async def test_odd_shapes_never_raise_raw_errors(responses: Any, cache_dir: Path) -> None:
    document = _doc({"/x": {"get": {"operationId": "GetX", "responses": responses}}})
    async with server() as endpoint:
        try:
            async with Tower(
                spec=document, token=TOKEN, endpoint=endpoint.url, cache_dir=cache_dir
            ) as tw:
                await tw.get_x()
        except SpecError as exc:
            assert "GetX" in str(exc) or "dict" in str(exc)
        except Exception as exc:  # pragma: no cover - the assertion below says what
            if type(exc).__module__.startswith("tower_async"):
                return
            raise AssertionError(f"raw {type(exc).__name__}: {exc}") from exc


# -- the SpecWarning of an invalid document (issue 16) ----------------------------------------


async def test_invalid_document_warning_points_at_the_caller_once(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spec_module, "_warned", set())
    path = spec_path("1.85.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with Tower(
            spec=path, token=TOKEN, endpoint="http://127.0.0.1:9", cache_dir=cache_dir
        ):
            pass
    [warning] = [w for w in caught if issubclass(w.category, SpecWarning)]
    assert warning.filename == __file__
    text = str(warning.message)
    assert "java-regex" in text and "patched document" in text
    monkeypatch.setattr(spec_module, "_warned", set())  # as in a new process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with Tower(
            spec=path, token=TOKEN, endpoint="http://127.0.0.1:9", cache_dir=cache_dir
        ) as tw:
            assert tw.spec.from_cache and tw.spec.problems
    assert not [w for w in caught if issubclass(w.category, SpecWarning)]


def test_warning_says_when_the_patched_document_is_valid(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spec_module, "_warned", set())
    schema = {"type": "string", "pattern": r"[\p{Graph}&&[^/]]\p{Graph}+"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = load_document(_doc({"/a": _get("GetA", schema)}), cache=SchemaCache(cache_dir))
    [warning] = [w for w in caught if issubclass(w.category, SpecWarning)]
    assert warning.filename == __file__
    assert spec.problems and spec.patched_problems is None
    assert "the patched document is valid" in str(warning.message)
    assert orjson.loads(orjson.dumps(spec.document))["paths"]["/a"]["get"]["responses"]


# -- operationIds that cannot be attribute names ------------------------------------------

ODD_IDS = {
    "close": "op_close",
    "open": "op_open",
    "call": "op_call",
    "launch": "op_launch",
    "spec": "op_spec",
    "operations": "op_operations",
    "cache": "op_cache",
    "endpoint": "op_endpoint",
    "wait_for_run": "op_wait_for_run",
    "123go": "op_123go",
    "class": "op_class",
    "café": "op_cafe",
    "日本": "op_u65e5_u672c",
    "ListThings": "list_things",
    "list_things": "op_list_things",  # the same Python name as ListThings
    "foo-bar": "foo_bar",  # snake_case makes it an identifier: no alias needed
}


async def test_colliding_and_odd_operation_ids_stay_reachable(cache_dir: Path) -> None:
    paths = {f"/op{i}": _get(op_id) for i, op_id in enumerate(ODD_IDS)}
    async with server() as endpoint:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tw = Tower(spec=_doc(paths), token=TOKEN, endpoint=endpoint.url, cache_dir=cache_dir)
            await tw.open()
        try:
            mine = [w for w in caught if issubclass(w.category, SpecWarning)]
            assert len(mine) == 1 and mine[0].filename == __file__
            assert "'close' -> op_close" in str(mine[0].message)
            assert dict(tw.operations.aliases) == {
                k: v for k, v in ODD_IDS.items() if v.startswith("op_")
            }
            for i, (op_id, name) in enumerate(ODD_IDS.items()):
                assert tw.operations[op_id].python_name == name
                assert name in dir(tw)
                assert await getattr(tw, name)() == {"path": f"/op{i}"}
                assert await tw.call(op_id) == {"path": f"/op{i}"}
                assert tw.operation(op_id).operation.operation_id == op_id
            # the session's own attributes are untouched
            assert tw.endpoint == endpoint.url and callable(tw.close) and tw.spec.api_version
        finally:
            await tw.close()
        assert len(endpoint.seen) == 2 * len(ODD_IDS)


def test_reserved_names_cover_every_public_attribute_of_a_session() -> None:
    from tower_async.session import _reserved_names

    tw = Tower(token=TOKEN, endpoint="http://127.0.0.1:9")
    public = {n for n in dir(tw) if not n.startswith("_")}
    assert public <= _reserved_names()


# -- downloads: NO_PROXY and document_url= ------------------------------------------------


def _service_info() -> web.Response:
    return web.json_response({"serviceInfo": {"version": "x", "apiVersion": "9.9.9"}})


def _document() -> web.Response:
    return web.Response(body=json.dumps(_doc()).encode(), content_type="application/json")


async def test_no_proxy_is_honoured_for_document_downloads(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the "proxy" answers /service-info itself; the document host is in NO_PROXY
    async with (
        server({"/service-info": _service_info}) as proxy,
        server({"/doc.json": _document}) as doc_host,
    ):
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.delenv("http_proxy", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        port = doc_host.url.rsplit(":", 1)[1]
        async with Tower(
            token=TOKEN,
            endpoint=f"http://localhost:{port}",  # not in NO_PROXY: through the proxy
            document_url=f"{doc_host.url}/doc.json",
            cache_dir=cache_dir,
        ) as tw:
            assert tw.spec.api_version == "9.9.9"
        assert [p for _, p, _ in proxy.seen] == ["/service-info"]
        assert [p for _, p, _ in doc_host.seen] == ["/doc.json"]  # directly, not proxied


async def test_document_url_entry_is_found_while_the_document_host_is_down(
    cache_dir: Path,
) -> None:
    async with server({"/service-info": _service_info}) as endpoint:
        async with server({"/doc.json": _document}) as doc_host:
            document_url = f"{doc_host.url}/doc.json"
            async with Tower(
                token=TOKEN, endpoint=endpoint.url, document_url=document_url, cache_dir=cache_dir
            ) as tw:
                assert not tw.spec.from_cache
            assert len(doc_host.seen) == 1
        # the document host is gone now
        async with Tower(
            token=TOKEN, endpoint=endpoint.url, document_url=document_url, cache_dir=cache_dir
        ) as tw:
            assert tw.spec.from_cache and tw.spec.api_version == "9.9.9"
            assert await tw.get_ping() == {"path": "/ping"}


def test_a_patch_that_breaks_on_a_shape_is_a_spec_error(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tower_async import patches

    def fragile(document: dict[str, Any]) -> bool:
        return bool(document["paths"]["/ping"]["get"]["responses"]["200"]["content"].values()[0])

    monkeypatch.setitem(patches.PATCHES, "fragile", fragile)
    path = _write(tmp_path, "doc.json", _doc())
    with pytest.raises(SpecError, match=r"doc\.json: patch 'fragile' cannot be applied"):
        load_document(path, cache=SchemaCache(cache_dir))
    assert _cached(cache_dir) == []
