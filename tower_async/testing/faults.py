"""Deterministic fault injection for the fake Platform.

Faults are rules matched against each authenticated, rate-accepted request::

    platform.faults.add("CreateWorkflowLaunch", "drop_after", probability=0.1)
    platform.faults.burst("ListWorkflows", status=503, count=3)   # next 3 calls -> 503
    platform.faults.add("*", "latency", delay=0.05)
    platform.faults.add("CreateWorkflowLaunch", "latency", delay=5, when="after")
    platform.faults.add("/workflow/*", "drift", drift=("enum", "extra"))
    platform.faults.clear()

``route`` is an operationId (``"ListWorkflows"``), ``"*"``, or a glob matched against the
request path (anything starting with ``/``, e.g. ``"/workflow/*/tasks"``).
Every operation of the fake can be faulted (``Info`` too) except fetching the OpenAPI
document. Faults apply after authentication and the rate limit: a faulted call counts
as an accepted call.
Randomness comes from one ``random.Random(seed)``, so a given seed and call sequence
always produce the same faults. ``count`` limits how many times a rule fires.

The standalone server takes the same rules on its command line
(``--fault CreateWorkflowLaunch:drop_after:probability=0.1``, see :func:`parse_fault`).

Kinds:

``latency``      sleep ``delay`` seconds, then answer normally. ``when="before"`` (default):
                 the delay comes before the request body is read, so a client that gives
                 up meanwhile leaves nothing processed. ``when="after"``: the request is
                 read and processed first (state changes, e.g. a launch is recorded), then
                 the answer is delayed: a client that times out cannot tell whether its
                 launch happened. A streamed answer (the log download) is delayed before
                 its first byte either way.
``status``       answer ``status`` (default 503) with ``{"message"}``; nothing is processed.
``drop_before``  close the connection without answering; nothing is processed.
``drop_after``   process the request (state changes, e.g. a launch is recorded), then close
                 the connection without answering.
``truncate``     send the headers with the full ``Content-Length``, half the body, then
                 close the connection (client sees a payload error).
``invalid_json`` answer 200 with a body that is not valid JSON (the first half of the real
                 one, with a matching ``Content-Length``).
``slow_body``    trickle the body in ``chunk`` byte pieces, sleeping ``delay`` between them.
``unreadable``   process the request (state changes, e.g. a launch is recorded), then answer
                 its success (not an error, not a stream) with a 200 the client cannot
                 use: ``variant`` ``"object"`` (``{}``), ``"array"`` (``[]``),
                 ``"empty"`` (no body) or ``"html"`` (a proxy's page).
``drift``        spec drift in JSON payloads: ``nulls`` (optional fields set to null
                 where present; payloads otherwise omit unset fields),
                 ``enum`` (``status`` values replaced by ``enum_value``, default
                 ``"DELETING"``), ``extra`` (undocumented fields added), ``exit_string``
                 (task ``exit`` as a string, e.g. ``"0"``).
"""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = [
    "DRIFT_KINDS",
    "FAULT_KINDS",
    "LATENCY_WHEN",
    "UNREADABLE_VARIANTS",
    "FaultInjector",
    "FaultSpec",
    "LatencyWhen",
    "apply_drift",
    "parse_fault",
    "unreadable_body",
]

FaultKind = Literal[
    "latency",
    "status",
    "drop_before",
    "drop_after",
    "truncate",
    "invalid_json",
    "slow_body",
    "drift",
    "unreadable",
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
DRIFT_KINDS: frozenset[str] = frozenset({"nulls", "enum", "extra", "exit_string"})
LatencyWhen = Literal["before", "after"]
LATENCY_WHEN: frozenset[str] = frozenset({"before", "after"})
#: ``unreadable`` answers: 200 with these (body, content type)
_UNREADABLE: dict[str, tuple[bytes, str]] = {
    "object": (b"{}", "application/json"),
    "array": (b"[]", "application/json"),
    "empty": (b"", "application/json"),
    "html": (b"<html><body><h1>200 OK</h1>Request accepted.</body></html>", "text/html"),
}
UNREADABLE_VARIANTS: frozenset[str] = frozenset(_UNREADABLE)

# Fields the Platform's document does not mark required, set to null by "nulls" drift.
_NULLABLE_FIELDS = frozenset(
    {
        "description",
        "lastUpdated",
        "lastUsed",
        "message",
        "complete",
        "start",
        "labels",
        "commitId",
        "duration",
        "region",
        "revision",
        "configProfiles",
        "progress",
        "icon",
        "logoUrl",
        "orgLogoUrl",
    }
)


@dataclass
class FaultSpec:
    """One fault rule. ``count=None`` means unlimited; ``fired`` counts how often it hit."""

    route: str
    kind: FaultKind
    probability: float = 1.0
    count: int | None = None
    status: int = 503
    delay: float = 0.0
    chunk: int = 64
    drift: tuple[str, ...] = ("nulls", "enum", "extra", "exit_string")
    enum_value: str = "DELETING"
    when: LatencyWhen = "before"
    variant: str = "object"
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        unknown = set(self.drift) - DRIFT_KINDS
        if unknown:
            raise ValueError(f"unknown drift kinds {sorted(unknown)}; one of {sorted(DRIFT_KINDS)}")
        if self.chunk < 1:
            raise ValueError("chunk must be >= 1")
        if self.when not in LATENCY_WHEN:
            raise ValueError(f"when must be one of {sorted(LATENCY_WHEN)}, not {self.when!r}")
        if self.variant not in UNREADABLE_VARIANTS:
            raise ValueError(
                f"variant must be one of {sorted(UNREADABLE_VARIANTS)}, not {self.variant!r}"
            )

    def matches(self, operation_id: str, path: str) -> bool:
        route = self.route
        if route == "*" or route == operation_id:
            return True
        return route.startswith("/") and fnmatch.fnmatchcase(path, route)

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count


@dataclass
class FiredFault:
    operation_id: str
    path: str
    kind: str


@dataclass
class FaultInjector:
    """The fault rules of one fake Platform, with a seeded RNG and a log of fired faults."""

    seed: int = 0
    rules: list[FaultSpec] = field(default_factory=list)
    log: list[FiredFault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def add(
        self,
        route: str,
        kind: FaultKind,
        *,
        probability: float = 1.0,
        count: int | None = None,
        status: int = 503,
        delay: float = 0.0,
        chunk: int = 64,
        drift: Iterable[str] = ("nulls", "enum", "extra", "exit_string"),
        enum_value: str = "DELETING",
        when: LatencyWhen = "before",
        variant: str = "object",
    ) -> FaultSpec:
        spec = FaultSpec(
            route=route,
            kind=kind,
            probability=probability,
            count=count,
            status=status,
            delay=delay,
            chunk=chunk,
            drift=tuple(drift),
            enum_value=enum_value,
            when=when,
            variant=variant,
        )
        self.rules.append(spec)
        return spec

    def burst(self, route: str, *, status: int = 503, count: int = 3) -> FaultSpec:
        """The next ``count`` calls of ``route`` are answered ``status``."""
        return self.add(route, "status", status=status, count=count)

    def clear(self) -> None:
        self.rules.clear()

    def count_fired(self, kind: str | None = None, operation_id: str | None = None) -> int:
        return sum(
            1
            for f in self.log
            if (kind is None or f.kind == kind)
            and (operation_id is None or f.operation_id == operation_id)
        )

    def pick(self, operation_id: str, path: str) -> list[FaultSpec]:
        """The rules that fire for this call (at most one per kind, first rule wins)."""
        if not self.rules:
            return []
        chosen: list[FaultSpec] = []
        kinds: set[str] = set()
        for spec in self.rules:
            if spec.kind in kinds or spec.exhausted or not spec.matches(operation_id, path):
                continue
            if spec.probability < 1.0 and self._rng.random() >= spec.probability:
                continue
            spec.fired += 1
            kinds.add(spec.kind)
            chosen.append(spec)
            self.log.append(FiredFault(operation_id, path, spec.kind))
        self.rules[:] = [s for s in self.rules if not s.exhausted]
        return chosen


def unreadable_body(spec: FaultSpec) -> tuple[bytes, str]:
    """The body and content type an ``unreadable`` fault answers with (status 200)."""
    return _UNREADABLE[spec.variant]


_NUMBERS = {"probability": float, "delay": float, "count": int, "status": int, "chunk": int}


def parse_fault(text: str) -> dict[str, Any]:
    """``"ROUTE:KIND[:name=value,...]"`` -> keyword arguments of :meth:`FaultInjector.add`.

    ``CreateWorkflowLaunch:latency:delay=2,when=after`` or ``*:status:status=503,count=3``.
    Raises ValueError naming the bad part.
    """
    route, sep, rest = text.partition(":")
    kind, _, options = rest.partition(":")
    if not sep or not route or kind not in FAULT_KINDS:
        raise ValueError(f"--fault {text!r}: expected ROUTE:KIND[:name=value,...]")
    out: dict[str, Any] = {"route": route, "kind": kind}
    for item in filter(None, options.split(",")):
        name, eq, value = item.partition("=")
        if not eq or name not in {*_NUMBERS, "when", "variant", "enum_value"}:
            raise ValueError(f"--fault {text!r}: bad option {item!r}")
        try:
            out[name] = _NUMBERS[name](value) if name in _NUMBERS else value
        except ValueError:
            raise ValueError(f"--fault {text!r}: {name} is not a number: {value!r}") from None
    FaultSpec(**out)  # validates kind-independent ranges
    return out


def apply_drift(payload: Any, spec: FaultSpec) -> Any:
    """A drifted deep copy of a JSON payload."""
    kinds = frozenset(spec.drift)
    return _drift(payload, kinds, spec.enum_value)


def _drift(value: Any, kinds: frozenset[str], enum_value: str) -> Any:
    if isinstance(value, list):
        return [_drift(v, kinds, enum_value) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if "nulls" in kinds and key in _NULLABLE_FIELDS:
            out[key] = None
        elif "enum" in kinds and key == "status" and isinstance(item, str):
            out[key] = enum_value
        elif "exit_string" in kinds and key == "exit" and isinstance(item, int):
            out[key] = str(item)
        else:
            out[key] = _drift(item, kinds, enum_value)
    if "extra" in kinds:
        out["undocumentedField"] = {"addedBy": "tower-async fake", "n": 1}
    return out
