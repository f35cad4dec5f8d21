"""The static face of a session's operations (what editors and type checkers see).

At run time operations are bound from the document when a session opens
(``Tower.__getattr__``), so without generated stubs every operation types as a
:class:`~tower_async.session.BoundOperation` taking any keyword.  ``python -m tower_async
stubs`` writes a partial stub package (``tower_async-stubs``) whose ``_typed.pyi`` replaces
this module for checkers: one attribute per operation of *your* Platform version, typed
arguments and responses (see README, "Types").  Nothing here runs any code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import BoundOperation

__all__ = ["TypedOperations"]


class TypedOperations:
    """Base class of :class:`~tower_async.Tower`: the generated stubs declare the operations."""

    __slots__ = ()

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> BoundOperation: ...
