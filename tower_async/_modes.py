"""The validation modes, defined once (the session checks them, validation applies them).

A leaf module: importing it does not import the validator.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["MODES", "Mode"]

Mode = Literal["strict", "warn", "off"]
MODES: tuple[Mode, ...] = ("strict", "warn", "off")
