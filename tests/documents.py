"""The shared published documents, parsed and patched as a session binds them."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any

import yaml

from tower_async.patches import apply_patches

from .conftest import spec_path


def patched_document(version: str = "1.181.0") -> dict[str, Any]:
    """The published document ``version`` (skips when absent) with the load-time patches.

    A fresh copy on every call (a test may change it); the YAML is parsed once per process
    (~0.25 s for 1.181.0; a copy, unpickled, ~6 ms)."""
    doc: dict[str, Any] = pickle.loads(_patched_pickle(spec_path(version)))
    return doc


@functools.lru_cache(maxsize=4)
def _patched_pickle(path: Path) -> bytes:
    """Pickled, not JSON: the copy keeps YAML's types (int keys, dates) exactly."""
    with path.open("rb") as f:
        doc: dict[str, Any] = yaml.load(f, Loader=yaml.CSafeLoader)
    apply_patches(doc)
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
