"""Property test: hostile values into every operation of the 1.181.0 document (issue 11).

Each example draws a value for every parameter (and the body) of *every* operation from a
pool of hostile values (lone surrogates, control characters, non-ASCII digits and letters,
huge and empty strings, dot segments, wrong types, None, nested junk, datetimes) and sends
it through the sans-I/O builder and through a session whose endpoint is a loopback server
answering ``200 {}`` to everything.  Only the library's own errors (:class:`TowerError`
subclasses) may come out, and a call refused with RequestValidationError sends nothing.
Seeded and bounded (``derandomize=True``, a few examples per operation) so it runs in
seconds; ``TOWER_ASYNC_SOAK=N`` draws N times as many.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tower_async import RequestValidationError, Tower, TowerError
from tower_async.operations import Operation, bind_operations
from tower_async.sansio import build_request
from tower_async.spec import SchemaCache, load_document
from tower_async.validation import TowerValidationWarning

from .conftest import soak, spec_path
from .loopback import TOKEN, Server, published_fixture, server_fixture  # noqa: F401 - fixtures

BASE = "http://127.0.0.1:9/api"
GROUP = 10  # operations drawn per hypothesis run

ANY_CHAR = st.characters(codec=None, categories=None)  # surrogates and controls included
NASTY_TEXT = st.sampled_from(
    [
        "",
        ".",
        "..",
        "../../../workflow/launch",
        "a/../../b",
        "١٢٣",
        "²",
        "--5",
        "-0",
        "1e5",
        "café",
        "rnaséq",
        "\ud800",
        "a\udfffb",
        "x\r\nX-Evil: 1",
        "\x00",
        "\x7f",
        "%2e%2e",
        "a?b#c&d=e",
        "{workflowId}",
        " ",
        "x" * 20_000,
    ]
)
SCALARS = st.one_of(
    st.text(ANY_CHAR, max_size=12),
    NASTY_TEXT,
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.binary(max_size=8),
    st.datetimes(timezones=st.just(datetime.timezone.utc)),
    st.just(object()),
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(ANY_CHAR, max_size=6), st.integers()), inner, max_size=3),
        st.tuples(inner, inner),
    ),
    max_leaves=6,
)
OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "timeout": st.one_of(st.just(5), st.just("abc"), st.just(-1.0), st.none()),
        "validation": st.sampled_from(["warn", "strict", "off", "bogus", None]),
        "params": st.one_of(
            st.just("x"), st.dictionaries(st.text(max_size=4), SCALARS, max_size=2)
        ),
    },
)


@pytest.fixture(scope="module")
def operations(shared_cache_dir: Path) -> list[Operation]:
    cache = SchemaCache(shared_cache_dir)  # the run's: 1.181.0 is parsed once per run
    document = load_document(spec_path("1.181.0"), cache=cache, validate=False).document
    return sorted(bind_operations(document).values(), key=lambda op: op.operation_id)


def plausible(kind: str | None) -> st.SearchStrategy[Any]:
    """A value of the declared kind (so that some calls get through and are sent)."""
    if kind == "integer":
        return st.integers(0, 10**6)
    if kind == "boolean":
        return st.booleans()
    if kind == "number":
        return st.floats(0, 100)
    return st.text("abcXYZ019-_.é ", min_size=1, max_size=8).filter(lambda t: t not in ".")


@st.composite
def arguments(draw: st.DrawFn, op: Operation) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for param in op.parameters:
        if param.kind == "array":
            good = st.lists(plausible(param.item_kind), max_size=3)
        else:
            good = plausible(param.kind)
        if param.required or draw(st.integers(0, 2)):  # mostly given
            args[param.python_name] = draw(st.one_of(good, JUNK))
    if op.body is not None and draw(st.booleans()):
        args["body"] = draw(JUNK)
    if draw(st.integers(0, 5)) == 0:
        args[draw(st.text(ANY_CHAR, min_size=1, max_size=6))] = draw(SCALARS)
    return args


def examples(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``soak(count)`` seeded draws of ``strategy`` (derandomized: the same on every run;
    ``TOWER_ASYNC_SOAK=N`` draws N times as many)."""
    out: list[Any] = []

    @settings(
        max_examples=soak(count),
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


def per_operation(
    operations: list[Operation], draw: Callable[[Operation], st.SearchStrategy[Any]], count: int
) -> Iterator[tuple[Operation, Any]]:
    """``examples(draw(op), count)`` for every operation, drawn for a few operations at a time
    (one hypothesis run per group: each run has a fixed cost, ~20 ms)."""
    for start in range(0, len(operations), GROUP):
        group = operations[start : start + GROUP]
        for drawn in examples(st.tuples(*(draw(op) for op in group)), count):
            yield from zip(group, drawn, strict=True)


def test_the_builder_raises_only_request_validation_errors(operations: list[Operation]) -> None:
    built: set[str] = set()
    for op, args in per_operation(operations, arguments, 6):
        body = args.pop("body", None)
        try:
            request = build_request(op, BASE, args, body=body)
        except RequestValidationError as exc:
            assert exc.operation_id == op.operation_id
            str(exc).encode("utf-8")  # the message itself is printable
            continue
        built.add(op.operation_id)
        assert request.url.isascii() and request.url.startswith(BASE + "/")
        assert "/../" not in request.url and "/./" not in request.url
        for value in request.headers.values():
            assert "\r" not in value and "\n" not in value
            value.encode("utf-8")
    assert len(built) > len(operations) // 2  # most operations did build at least once


async def test_a_session_raises_only_library_errors(
    operations: list[Operation], server: Server, published: Tower
) -> None:
    plan = [
        (op, {**args, **opts})
        for op, (args, opts) in per_operation(
            operations, lambda op: st.tuples(arguments(op), OPTIONS), 2
        )
    ]
    outcomes: dict[str, int] = {"ok": 0, "refused": 0, "other": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TowerValidationWarning)
        for op, args in plan:
            await _call_once(published, server, op, args, outcomes)
    assert outcomes["ok"] > 0 and outcomes["refused"] > 0
    assert {s.headers.get("Authorization") for s in server.seen} == {f"Bearer {TOKEN}", None}


async def _call_once(
    tw: Tower, server: Server, op: Operation, args: dict[str, Any], outcomes: dict[str, int]
) -> None:
    before = len(server.seen)
    try:
        result = await tw.call(op.operation_id, **args)
    except RequestValidationError as exc:
        assert exc.operation_id == op.operation_id
        assert len(server.seen) == before, f"{op.operation_id} refused after sending"
        outcomes["refused"] += 1
        return
    except TowerError:
        outcomes["other"] += 1  # e.g. a strict ResponseValidationError for the {} answer
        return
    if hasattr(result, "release"):
        result.release()  # a streamed body: give the connection back
    outcomes["ok"] += 1
