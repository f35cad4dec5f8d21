"""The shared published documents, parsed and patched as a session binds them."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any

import yaml

from tower_async.patches import apply_patches

from .conftest import spec_path


def published_document(version: str = "1.181.0") -> dict[str, Any]:
    """The published document ``version`` as YAML builds it (skips when absent).

    A fresh copy on every call (a test may change it); the YAML is parsed once per process
    (~0.25 s for 1.181.0; a copy, unpickled, ~8 ms)."""
    doc: dict[str, Any] = pickle.loads(_pickled(spec_path(version), patched=False))
    return doc


def patched_document(version: str = "1.181.0") -> dict[str, Any]:
    """:func:`published_document` with the load-time patches, as a session binds it."""
    doc: dict[str, Any] = pickle.loads(_pickled(spec_path(version), patched=True))
    return doc


@functools.lru_cache(maxsize=8)
def _pickled(path: Path, patched: bool) -> bytes:
    """Pickled, not JSON: the copy keeps YAML's types (int keys, dates) exactly."""
    if patched:
        doc: dict[str, Any] = pickle.loads(_pickled(path, patched=False))
        apply_patches(doc)
    else:
        with path.open("rb") as f:
            doc = yaml.load(f, Loader=yaml.CSafeLoader)
    return pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL)


def one_operation(
    operation_id: str,
    request: Any,
    responses: dict[str, Any] | None = None,
    schemas: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A small document with one ``POST /things`` whose JSON request body is ``request``."""
    content = {"application/json": {"schema": request}}
    operation = {
        "operationId": operation_id,
        "requestBody": {"content": content},
        "responses": responses or {"204": {"description": "ok"}},
    }
    return {
        "openapi": "3.0.1",
        "info": {"title": "t", "version": "1"},
        "paths": {"/things": {"post": operation}},
        "components": {"schemas": schemas or {}},
    }
