"""The user's schema cache and servers on this machine (issue 16).

A fake Platform listens on a new port each time.  Without ``cache_dir=`` its document goes to
the user's real cache, where it must be filed once (one ``loopback`` folder, found by content),
not once per port.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import pytest

from tower_async import Tower
from tower_async.spec import LOOPBACK_ORIGIN, is_loopback
from tower_async.testing import FakePlatform


@pytest.fixture
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME and XDG_CACHE_HOME, no TOWER_ASYNC_CACHE_DIR: the platform default."""
    monkeypatch.delenv("TOWER_ASYNC_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "tower-async"


def entries(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000/api", True),
        ("http://127.3.4.5", True),
        ("http://[::1]:9/", True),
        ("http://localhost:1234", True),
        ("http://LOCALHOST.", True),
        ("http://api.localhost", True),
        ("https://api.cloud.seqera.io", False),
        ("http://10.0.0.1:8000", False),
        ("http://localhost.example.com", False),
        ("http://[::2]", False),
    ],
)
def test_is_loopback(url: str, local: bool) -> None:
    assert is_loopback(url) is local


async def test_a_dozen_fakes_on_new_ports_leave_one_entry(user_cache: Path) -> None:
    async with contextlib.AsyncExitStack() as stack:
        fakes = [await stack.enter_async_context(FakePlatform(rate_limit=None)) for _ in range(12)]
        assert len({fake.port for fake in fakes}) == 12  # all open at once: distinct ports
        loaded = []
        for fake in fakes:
            async with Tower(token=fake.token, endpoint=fake.url, rate_limit=None) as tw:
                assert (await tw.user_info())["user"]["userName"]
                loaded.append(tw.spec)
    [entry] = entries(user_cache)
    assert entry.parent == Path(LOOPBACK_ORIGIN)
    assert not loaded[0].from_cache and all(spec.from_cache for spec in loaded[1:])
    assert {spec.sha256 for spec in loaded} == {loaded[0].sha256}


async def test_a_document_url_on_a_fake_is_filed_once_too(user_cache: Path) -> None:
    for _ in range(3):
        async with (
            FakePlatform(rate_limit=None) as fake,
            Tower(spec=fake.spec_url, token=fake.token, endpoint=fake.url, rate_limit=None),
        ):
            pass
    assert [e.parent for e in entries(user_cache)] == [Path(LOOPBACK_ORIGIN)]


async def test_local_servers_sharing_a_version_each_get_their_own_document(
    user_cache: Path, tmp_path: Path
) -> None:
    """Found by content, never by version: two local servers both saying 9.9.9 but serving
    different documents never get each other's."""
    own = tmp_path / "own.yaml"
    own.write_text(
        "openapi: 3.0.3\ninfo:\n  title: own\n  version: 9.9.9\npaths:\n"
        "  /service-info:\n    get:\n      operationId: OwnDocumentOnly\n"
        "      responses: {'200': {description: ok}}\n"
    )
    for _ in range(2):
        for spec in (own, None):
            fake = FakePlatform(rate_limit=None, spec=spec, api_version="9.9.9")
            async with fake, Tower(token=fake.token, endpoint=fake.url, rate_limit=None) as tw:
                served = hashlib.sha256(fake.fake.spec_bytes).hexdigest()
                assert tw.spec.sha256 == served and tw.spec.api_version == "9.9.9"
                assert ("own_document_only" in dir(tw)) is (spec is own)
    assert len(entries(user_cache)) == 2


async def test_an_explicit_cache_dir_keeps_one_folder_per_origin(tmp_path: Path) -> None:
    """With ``cache_dir=`` the caller's folder keeps the exact per-origin layout (a later
    session on the same origin finds the version without a download)."""
    async with FakePlatform(rate_limit=None) as fake:
        for _ in range(2):
            async with Tower(
                token=fake.token, endpoint=fake.url, cache_dir=tmp_path, rate_limit=None
            ) as tw:
                pass
        assert tw.spec.from_cache
    [entry] = entries(tmp_path)
    assert entry.parent == Path(f"127.0.0.1_{fake.port}")
