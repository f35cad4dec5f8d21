"""``python -m tower_async stubs --spec PATH|URL|VERSION [--out DIR]``."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from ..errors import SpecError, TowerError
from ..spec import SchemaCache, SpecDocument, default_cache_dir, load_document, load_remote
from . import PACKAGE, default_out_dir, generate_stubs, write_stubs

__all__ = ["load_spec", "main"]


def _from_cache(cache: SchemaCache, version: str) -> SpecDocument | None:
    root = cache.root
    if root is None or not root.is_dir():
        return None
    for origin in sorted(p.name for p in root.iterdir() if p.is_dir()):
        hit = cache.get_by_version(origin, version)
        if hit is not None:
            return hit
    return None


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data: bytes = response.read()
            return data
    except OSError as exc:
        raise SpecError(f"cannot download the OpenAPI document from {url}: {exc}") from None


def load_spec(source: str, cache: SchemaCache) -> SpecDocument:
    """The patched document for a path, a URL or an API version (cache, then shared folder),
    loaded exactly as a session loads it."""
    if source.startswith(("http://", "https://")):

        async def fetch(url: str) -> bytes:
            return await asyncio.to_thread(_download, url)

        return asyncio.run(load_remote(fetch=fetch, cache=cache, url=source))
    path = Path(source)
    if path.is_file():
        return load_document(path, cache=cache)
    if source and all(part.isdigit() for part in source.split(".")):
        hit = _from_cache(cache, source)
        if hit is not None:
            return hit
        from ..testing.server import specs_dir

        shared = specs_dir() / f"seqera-api-{source}.yaml"
        if shared.is_file():
            return load_document(shared, cache=cache)
        raise SpecError(
            f"no document for API {source} in the schema cache ({cache.root}) or in {shared.parent}"
            " ($TOWER_ASYNC_SPECS); pass a path or URL"
        )
    raise SpecError(f"{source!r} is neither a file, a URL nor an API version")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tower_async stubs",
        description="Write a typed stub package (tower_async-stubs) for one Platform document.",
    )
    p.add_argument("--spec", help="a path, a URL, or an API version (1.181.0)")
    p.add_argument(
        "--out",
        default=None,
        help=f"where {PACKAGE}/ goes (default: this environment's site-packages: "
        f"{default_out_dir()})",
    )
    p.add_argument("--cache-dir", default=None, help="schema cache (default: the session's)")
    p.add_argument("--remove", action="store_true", help=f"delete {PACKAGE}/ from --out")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out is not None else default_out_dir()
    if args.remove:
        shutil.rmtree(out / PACKAGE, ignore_errors=True)
        print(f"removed {out / PACKAGE}")
        return 0
    if not args.spec:
        p.error("--spec PATH|URL|VERSION is required")
    cache = SchemaCache(args.cache_dir if args.cache_dir is not None else default_cache_dir())
    started = time.perf_counter()
    try:
        spec = load_spec(args.spec, cache)
        files = generate_stubs(spec.document, source=f"API {spec.api_version} ({spec.origin})")
        target = write_stubs(files, out)
    except (TowerError, OSError) as exc:
        print(f"tower_async stubs: {exc}", file=sys.stderr)
        return 2
    took = time.perf_counter() - started
    print(f"wrote {target} (API {spec.api_version}, {took:.2f} s)")
    return 0
