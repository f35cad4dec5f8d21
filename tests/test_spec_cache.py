"""Document loading and the schema cache (issue 2)."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web

from tower_async import SpecError, SpecWarning, Tower
from tower_async import spec as spec_module
from tower_async._memo import BoundedMemo
from tower_async.spec import SchemaCache, document_url_for, load_document

from .conftest import spec_path
from .tiny_server import TINY_SPEC, TOKEN


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*") if p.is_file())


def test_path_source_is_cached_in_fast_form(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SchemaCache(cache_dir)
    cold = load_document(TINY_SPEC, cache=cache)
    assert not cold.from_cache
    assert cold.api_version == "2.0.0" and cold.origin == "file"
    [entry] = _entries(cache_dir)
    assert entry.name == f"2.0.0__{cold.sha256}.json"
    header, _, body = entry.read_bytes().partition(b"\n")
    assert orjson.loads(header)["api_version"] == "2.0.0"
    assert orjson.loads(body) == cold.document

    # a warm load neither parses YAML nor validates the document again
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a warm load must not do this")

    monkeypatch.setattr(yaml, "load", boom)
    monkeypatch.setattr(spec_module, "check_document", boom)
    warm = load_document(TINY_SPEC, cache=SchemaCache(cache_dir))
    assert warm.from_cache and warm.document == cold.document and warm.sha256 == cold.sha256


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: b"not json at all\n" + data,  # garbage header
        lambda data: data.replace(b'"paths"', b'"pathz"', 1),  # checksum mismatch
        lambda data: b"",  # empty
    ],
    ids=["truncated", "garbage-header", "checksum", "empty"],
)
def test_corrupt_entry_is_detected_and_rebuilt(cache_dir: Path, damage: Any) -> None:
    cache = SchemaCache(cache_dir)
    first = load_document(TINY_SPEC, cache=cache)
    [entry] = _entries(cache_dir)
    entry.write_bytes(damage(entry.read_bytes()))
    again = load_document(TINY_SPEC, cache=cache)
    assert not again.from_cache  # re-parsed from the source, not the damaged entry
    assert again.document == first.document
    assert load_document(TINY_SPEC, cache=cache).from_cache  # and written back whole
    assert not [p for p in cache_dir.rglob(".tmp-*")]


def test_entry_from_another_patch_table_is_rebuilt(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SchemaCache(cache_dir)
    load_document(TINY_SPEC, cache=cache)
    assert load_document(TINY_SPEC, cache=cache).from_cache
    monkeypatch.setattr(spec_module, "_patch_table", lambda: "a-newer-table")
    assert not load_document(TINY_SPEC, cache=cache).from_cache  # re-patched, rewritten
    assert load_document(TINY_SPEC, cache=cache).from_cache


def test_dict_source_and_disabled_cache(cache_dir: Path) -> None:
    document = yaml.safe_load(TINY_SPEC.read_text())
    cold = load_document(document, cache=SchemaCache(cache_dir))
    assert cold.origin == "dict" and not cold.from_cache
    assert load_document(document, cache=SchemaCache(cache_dir)).from_cache
    nocache = load_document(document, cache=SchemaCache(None))
    assert not nocache.from_cache and nocache.path is None


def test_a_process_validates_one_document_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions without a cache (or each with a new one) do not validate a document again;
    another document, or the same one changed, is validated; the memo stays bounded."""
    seen: list[str] = []
    real = spec_module.check_document

    def counting(document: Any) -> str | None:
        seen.append(document["info"]["version"])
        return real(document)

    monkeypatch.setattr(spec_module, "check_document", counting)
    monkeypatch.setattr(spec_module, "VALIDITY", BoundedMemo(entries=spec_module.VALIDITY.entries))
    document = yaml.safe_load(TINY_SPEC.read_text())
    first = load_document(document, cache=SchemaCache(None))
    again = load_document(document, cache=SchemaCache(None))
    assert seen == [document["info"]["version"]]
    assert again.problems == first.problems and not again.from_cache
    broken = {**document, "info": {**document["info"], "version": "broken"}, "paths": []}
    with pytest.warns(SpecWarning, match="fails OpenAPI validation"):
        bad = load_document(broken, cache=SchemaCache(None))
    assert bad.problems and seen[-1] == "broken"
    assert load_document(broken, cache=SchemaCache(None)).problems == bad.problems
    assert seen.count("broken") == 1
    for n in range(spec_module.VALIDITY.entries + 1):
        load_document(
            {**document, "info": {**document["info"], "version": f"v{n}"}}, cache=SchemaCache(None)
        )
    assert len(spec_module.VALIDITY) == spec_module.VALIDITY.entries
    load_document(document, cache=SchemaCache(None))  # the oldest fell out: validated again
    assert seen.count(document["info"]["version"]) == 2


def test_a_process_parses_the_same_bytes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsed a second time, the same YAML bytes are kept; from then on a parse is a new
    copy of the first, without YAML.  Tighter limits are checked again (a memo never lets a
    document past its own limits)."""
    monkeypatch.setattr(spec_module, "PARSED", BoundedMemo(entries=4))
    content = TINY_SPEC.read_bytes()
    first = spec_module.parse_text(content, "t")
    assert spec_module.PARSED.get((hashlib.sha256(content).digest(), spec_module.LIMITS)) == (
        True,
        None,
    )  # seen once: nothing kept yet (a one-time cold load pays nothing)
    assert spec_module.parse_text(content, "t") == first
    parses: list[int] = []
    real_load = yaml.load

    def counted(*args: Any, **kwargs: Any) -> Any:
        parses.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(yaml, "load", counted)
    second = spec_module.parse_text(content, "t")
    assert second == first and second is not first and parses == []
    second["paths"].clear()  # a caller's change is its own
    assert spec_module.parse_text(content, "t") == first
    tight = spec_module.DocumentLimits(max_depth=2)
    with pytest.raises(SpecError, match="nest"):
        spec_module.parse_text(content, "t", tight)
    assert parses == []  # refused by the scan, before YAML builds anything
    assert spec_module.parse_text(content + b"\n", "t") == first and parses == [1]


def test_unreadable_and_malformed_sources(tmp_path: Path, cache_dir: Path) -> None:
    cache = SchemaCache(cache_dir)
    with pytest.raises(SpecError, match="cannot read"):
        load_document(tmp_path / "missing.yaml", cache=cache)
    bad = tmp_path / "bad.yaml"
    bad.write_text("openapi: [unclosed\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        load_document(bad, cache=cache)
    listy = tmp_path / "list.json"
    listy.write_text("[1, 2]")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_document(listy, cache=cache)


def test_invalid_published_document_binds_with_one_warning(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = spec_path("1.85.0")
    monkeypatch.setattr(spec_module, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = load_document(path, cache=SchemaCache(cache_dir))
        load_document(path, cache=SchemaCache(cache_dir))  # warm: no second warning
    mine = [w for w in caught if issubclass(w.category, SpecWarning)]
    assert len(mine) == 1
    text = str(mine[0].message)
    assert "1.85.0" in text and "bound anyway" in text
    assert r"\p{Graph}" in text  # says what is wrong
    assert spec.problems is not None
    from tower_async.operations import bind_operations

    assert len(bind_operations(spec.document)) == 201


def test_valid_document_gives_no_warning(cache_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecWarning)
        spec = load_document(spec_path("1.115.0"), cache=SchemaCache(cache_dir))
    assert spec.problems is None


def test_document_url_for_endpoints() -> None:
    assert (
        document_url_for("https://api.cloud.seqera.io")
        == "https://cloud.seqera.io/openapi/seqera-api-latest.yml"
    )
    assert (
        document_url_for("https://tower.example.org/api")
        == "https://tower.example.org/openapi/seqera-api-latest.yml"
    )
    assert (
        document_url_for("http://127.0.0.1:8000")
        == "http://127.0.0.1:8000/openapi/seqera-api-latest.yml"
    )


@pytest.fixture
async def doc_server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """Serves /service-info and the tiny document as a Platform install publishes it."""
    counts = {"service-info": 0, "document": 0}

    async def info(request: web.Request) -> web.Response:
        counts["service-info"] += 1
        return web.json_response({"serviceInfo": {"version": "x", "apiVersion": "2.0.0"}})

    async def document(request: web.Request) -> web.Response:
        counts["document"] += 1
        return web.Response(body=TINY_SPEC.read_bytes(), content_type="application/yaml")

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"pong": True})

    app = web.Application()
    app.router.add_get("/service-info", info)
    app.router.add_get("/openapi/seqera-api-latest.yml", document)
    app.router.add_get("/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", counts
    finally:
        await runner.cleanup()


async def test_automatic_document_from_service_info_then_cache(
    doc_server: tuple[str, dict[str, int]], cache_dir: Path
) -> None:
    url, counts = doc_server
    async with Tower(token=TOKEN, endpoint=url, cache_dir=cache_dir) as tw:
        assert tw.spec.api_version == "2.0.0" and not tw.spec.from_cache
        assert await tw.get_ping() == {"pong": True}
    assert counts == {"service-info": 1, "document": 1}
    async with Tower(token=TOKEN, endpoint=url, cache_dir=cache_dir) as tw:
        assert tw.spec.from_cache
    assert counts == {"service-info": 2, "document": 1}  # the version hit the cache


async def test_url_source_skips_parsing_when_content_is_cached(
    doc_server: tuple[str, dict[str, int]], cache_dir: Path
) -> None:
    url, counts = doc_server
    doc_url = f"{url}/openapi/seqera-api-latest.yml"
    async with Tower(spec=doc_url, token=TOKEN, endpoint=url, cache_dir=cache_dir) as tw:
        assert not tw.spec.from_cache
    async with Tower(spec=doc_url, token=TOKEN, endpoint=url, cache_dir=cache_dir) as tw:
        assert tw.spec.from_cache
        assert "list_items" in dir(tw)
    assert counts["document"] == 2


async def test_automatic_mode_on_an_unreachable_endpoint_names_it(cache_dir: Path) -> None:
    import socket

    from tower_async.errors import ConnectError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # the endpoint is down: a ConnectError naming it, not a SpecError advising spec=
    with pytest.raises(ConnectError, match=f"cannot connect to the endpoint 127.0.0.1:{port}"):
        async with Tower(token=TOKEN, endpoint=f"http://127.0.0.1:{port}", cache_dir=cache_dir):
            pass


# -- a shared cache directory written by someone else (issue 11) -----------------------------


def _rewrite(entry: Path, header_changes: dict[str, Any], body: bytes | None = None) -> None:
    """Rewrite an entry with a consistent checksum, as a hostile co-user could."""
    import hashlib

    header_bytes, _, old_body = entry.read_bytes().partition(b"\n")
    body = old_body if body is None else body
    header = {**orjson.loads(header_bytes), "body_sha256": hashlib.sha256(body).hexdigest()}
    header.update(header_changes)
    entry.write_bytes(orjson.dumps(header) + b"\n" + body)


def _deep_body(depth: int) -> bytes:
    document = yaml.safe_load(TINY_SPEC.read_text())
    node: Any = []
    for _ in range(depth):
        node = [node]
    document["x-deep"] = node
    return orjson.dumps(document)


def _ext_ref_body() -> bytes:
    document = yaml.safe_load(TINY_SPEC.read_text())
    document["components"] = {"schemas": {"X": {"$ref": "file:///etc/passwd"}}}
    return orjson.dumps(document)


@pytest.mark.parametrize(
    ("changes", "body"),
    [
        ({"patches": 5}, None),
        ({"problems": {"x": 1}}, None),
        ({"api_version": 2}, None),
        ({"origin": None}, None),
        ({"source_sha256": "0" * 64}, None),  # not the entry's name
        ({"api_version": "6.6.6"}, None),  # not the entry's name either
        ({}, b"[1, 2, 3]"),  # non-dict body
        ({}, b'"a string"'),
        ({}, _deep_body(100)),  # deeper than the limit
        ({}, _ext_ref_body()),  # a reference outside the document
    ],
    ids=[
        "patches-int",
        "problems-dict",
        "version-int",
        "origin-none",
        "other-sha",
        "other-version",
        "list-body",
        "str-body",
        "deep-body",
        "external-ref",
    ],
)
def test_hostile_entry_is_ignored_and_rebuilt(
    cache_dir: Path, changes: dict[str, Any], body: bytes | None
) -> None:
    cache = SchemaCache(cache_dir)
    first = load_document(TINY_SPEC, cache=cache)
    [entry] = _entries(cache_dir)
    _rewrite(entry, changes, body)
    again = load_document(TINY_SPEC, cache=cache)
    assert not again.from_cache and again.document == first.document
    assert load_document(TINY_SPEC, cache=cache).from_cache  # rebuilt whole


def test_entry_that_is_a_symlink_outside_is_not_followed(tmp_path: Path, cache_dir: Path) -> None:
    cache = SchemaCache(cache_dir)
    load_document(TINY_SPEC, cache=cache)
    [entry] = _entries(cache_dir)
    outside = tmp_path / "outside.json"
    outside.write_bytes(entry.read_bytes())  # a well-formed entry, elsewhere
    entry.unlink()
    entry.symlink_to(outside)
    again = load_document(TINY_SPEC, cache=cache)
    assert not again.from_cache  # the link was not read
    assert not entry.is_symlink() and entry.is_file()  # replaced by a real entry
    assert outside.read_bytes()  # the target is untouched


def test_symlinked_origin_directory_is_neither_read_nor_written(
    tmp_path: Path, cache_dir: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (cache_dir / "file").symlink_to(elsewhere, target_is_directory=True)
    for _ in range(2):
        assert not load_document(TINY_SPEC, cache=SchemaCache(cache_dir)).from_cache
    assert list(elsewhere.iterdir()) == []


def test_fifo_and_huge_entries_do_not_hang_or_load(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    cache = SchemaCache(cache_dir)
    first = load_document(TINY_SPEC, cache=cache)
    [entry] = _entries(cache_dir)
    entry.unlink()
    os.mkfifo(entry)  # opening it for reading would block forever
    assert not load_document(TINY_SPEC, cache=cache).from_cache
    assert not entry.exists() or not entry.is_fifo()
    # huge: larger than 4x the size limit (sparse, so nothing is really written)
    limit = TINY_SPEC.stat().st_size * 2
    monkeypatch.setattr(spec_module, "LIMITS", spec_module.DocumentLimits(max_bytes=limit))
    assert load_document(TINY_SPEC, cache=cache).from_cache
    with entry.open("r+b") as fh:
        fh.truncate(4 * limit + 1)
    assert not load_document(TINY_SPEC, cache=cache).from_cache
    assert first.document


async def test_automatic_lookup_ignores_an_entry_named_for_another_version(
    doc_server: tuple[str, dict[str, int]], cache_dir: Path
) -> None:
    url, counts = doc_server
    async with Tower(token=TOKEN, endpoint=url, cache_dir=cache_dir):
        pass
    [entry] = _entries(cache_dir)
    # an entry claiming 2.0.0 in its name but holding another version's header
    _rewrite(entry, {"api_version": "1.0.0"})
    async with Tower(token=TOKEN, endpoint=url, cache_dir=cache_dir) as tw:
        assert not tw.spec.from_cache and tw.spec.api_version == "2.0.0"
    assert counts["document"] == 2


def test_an_entry_whose_header_lacks_a_nullable_field_is_rebuilt(tmp_path: Path) -> None:
    """An entry written by another tower-async version (a field it did not know) is ignored
    and rebuilt, never a raw KeyError."""
    import orjson

    from tower_async.spec import SchemaCache, load_document

    doc = {"openapi": "3.0.3", "info": {"title": "t", "version": "1.0.0"}, "paths": {}}
    cache = SchemaCache(tmp_path)
    first = load_document(doc, cache=cache, validate=False)
    assert first.path is not None
    header_bytes, _, body = first.path.read_bytes().partition(b"\n")
    header = orjson.loads(header_bytes)
    del header["patched_problems"]
    first.path.write_bytes(orjson.dumps(header) + b"\n" + body)
    again = load_document(doc, cache=cache, validate=False)
    assert again.document == first.document and not again.from_cache
