"""The Platform's schemas by name, for annotations: ``from tower_async.models import Workflow``.

The generated stubs (``python -m tower_async stubs``, see README "Types") give every name its
``TypedDict`` for type checkers; without them, and at run time, every name is ``dict``
(responses are plain dicts), so annotations and casts work either way.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return dict
