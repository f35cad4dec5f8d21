"""Helpers shared by the benchmarks: where the published documents are, timing, output."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def specs_dir() -> Path:
    env = os.environ.get("TOWER_ASYNC_SPECS")
    return Path(env) if env else REPO.parent / "shared" / "openapi"


def spec_path(version: str = "1.181.0") -> Path:
    path = specs_dir() / f"seqera-api-{version}.yaml"
    if not path.is_file():
        raise SystemExit(
            f"{path} not found: set TOWER_ASYNC_SPECS to the folder holding seqera-api-*.yaml"
        )
    return path


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
