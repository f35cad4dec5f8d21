"""A TLS certificate the client does not trust (an Enterprise install with a private CA).

A loopback HTTPS server with a self-signed certificate made by the ``openssl`` CLI in the
test: opening a session (automatic mode: /service-info, then the served document) fails
with a CertificateError saying so and how to trust the CA; ``verify=PATH`` (``ca_file=``,
deprecated) or ``SSL_CERT_FILE`` make the same session work.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from tower_async import CertificateError, ConnectError, Tower, TransportError

from .tiny_server import TINY_SPEC, TOKEN, serve_app


def make_certificate(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
    ]
    subprocess.run(
        [*command, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
async def https(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """(endpoint, CA file) of a loopback HTTPS server with a self-signed certificate."""
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def service_info(_: web.Request) -> web.Response:
        body = {"serviceInfo": {"version": "1.0.0", "apiVersion": "1.0.0"}}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def document(_: web.Request) -> web.Response:
        return web.Response(body=TINY_SPEC.read_bytes(), content_type="application/yaml")

    async def ping(_: web.Request) -> web.Response:
        return web.Response(body=b'{"pong": true}', content_type="application/json")

    app = web.Application()
    app.router.add_get("/service-info", service_info)
    app.router.add_get("/openapi/seqera-api-latest.yml", document)
    app.router.add_get("/ping", ping)
    async with serve_app(app, ssl=context) as url:
        yield url, cert


async def test_untrusted_certificate_says_how_to_trust_its_ca(
    https: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, _ = https
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(CertificateError) as info:
        async with Tower(token=TOKEN, endpoint=endpoint, cache_dir=tmp_path / "c"):
            pass
    err = info.value
    text = str(err)
    assert "certificate verification failed for 127.0.0.1:" in text
    assert "verify=" in text and "SSL_CERT_FILE" in text
    assert "self-signed" in text  # the reason OpenSSL gave
    assert isinstance(err, ConnectError) and isinstance(err, TransportError)
    assert not err.may_have_been_processed
    assert isinstance(err.__cause__, aiohttp.ClientConnectorCertificateError)
    assert TOKEN not in text


async def test_verify_path_or_ssl_cert_file_trusts_it(
    https: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, ca = https
    async with Tower(token=TOKEN, endpoint=endpoint, cache_dir=tmp_path / "a", verify=ca) as tw:
        assert await tw.get_ping() == {"pong": True}
    with pytest.warns(DeprecationWarning, match="verify="):  # the old spelling still works
        old = Tower(token=TOKEN, endpoint=endpoint, cache_dir=tmp_path / "a", ca_file=ca)
    async with old as tw:
        assert await tw.get_ping() == {"pong": True}
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # set after aiohttp was imported
    async with Tower(token=TOKEN, endpoint=endpoint, cache_dir=tmp_path / "b") as tw:
        assert await tw.get_ping() == {"pong": True}
