"""Warn-mode sampling of response validation (issue 17): the documented policy, asserted."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from tower_async.errors import ResponseValidationError
from tower_async.operations import bind_operations
from tower_async.validation import (
    WARN_SAMPLE_AFTER,
    WARN_SAMPLE_EVERY,
    TowerValidationWarning,
    Validator,
)

from .documents import patched_document

GOOD = {"workflow": {"id": "4Bx1b1F7zvr1Cs", "status": "RUNNING"}, "workspaceId": 10}


def bad(n: int) -> dict[str, Any]:
    """A DescribeWorkflow body with an untolerated deviation (the reported key is the same)."""
    return {"workflow": {"id": "4Bx1b1F7zvr1Cs", "status": "RUNNING"}, "workspaceId": f"x{n}"}


@pytest.fixture(scope="module")
def ops() -> Any:
    return bind_operations(patched_document("1.181.0"))


@pytest.fixture
def validator() -> Validator:
    return Validator(patched_document("1.181.0"))


def reported(validator: Validator, op: Any, data: Any, mode: Any = "warn") -> bool:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validator.validate_response(op, 200, "application/json", data, mode)
    return any(issubclass(w.category, TowerValidationWarning) for w in caught)


def fresh(validator: Validator) -> None:
    """Forget which deviations were reported, keep the sampling counters."""
    validator._reported.clear()


def test_every_response_is_checked_until_the_shape_is_seen_clean(
    validator: Validator, ops: Any
) -> None:
    op = ops["DescribeWorkflow"]
    for _ in range(WARN_SAMPLE_AFTER - 1):
        assert not reported(validator, op, GOOD)
    # the response before the threshold: still checked
    assert reported(validator, op, bad(0))
    # a deviation resets the count: the next responses are all checked again
    for i in range(1, WARN_SAMPLE_AFTER):
        fresh(validator)
        assert reported(validator, op, bad(i)), i


def test_after_the_threshold_a_new_deviation_is_reported_at_the_next_sample(
    validator: Validator, ops: Any
) -> None:
    op = ops["DescribeWorkflow"]
    for _ in range(WARN_SAMPLE_AFTER):
        assert not reported(validator, op, GOOD)
    # the shape is sampled now: a persisting deviation shows within WARN_SAMPLE_EVERY calls
    hits = [reported(validator, op, bad(0)) for _ in range(WARN_SAMPLE_EVERY)]
    assert hits.count(True) == 1
    # and from then on every response is checked again
    for i in range(1, WARN_SAMPLE_AFTER):
        fresh(validator)
        assert reported(validator, op, bad(i)), i


def test_sampling_is_deterministic_one_in_every(validator: Validator, ops: Any) -> None:
    op = ops["DescribeWorkflow"]
    for _ in range(WARN_SAMPLE_AFTER):
        reported(validator, op, GOOD)
    # a deviation on a skipped call goes unseen, on the sampled one it is seen: the first
    # call after the threshold is a sample, then one in WARN_SAMPLE_EVERY
    pattern = []
    for k in range(3 * WARN_SAMPLE_EVERY):
        fresh(validator)
        sampled = k % WARN_SAMPLE_EVERY == 0
        data = GOOD if sampled else bad(k)
        pattern.append(reported(validator, op, data))
    assert not any(pattern)


def test_shapes_are_counted_per_operation(validator: Validator, ops: Any) -> None:
    describe, other = ops["DescribeWorkflow"], ops["DescribeWorkflowLaunch"]
    for _ in range(WARN_SAMPLE_AFTER + 1):
        reported(validator, describe, GOOD)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validator.validate_response(other, 200, "application/json", {"launch": 3}, "warn")
    assert any(issubclass(w.category, TowerValidationWarning) for w in caught)


def test_strict_checks_every_response_whatever_warn_has_seen(
    validator: Validator, ops: Any
) -> None:
    op = ops["DescribeWorkflow"]
    for _ in range(WARN_SAMPLE_AFTER + 5):
        validator.validate_response(op, 200, "application/json", GOOD, "warn")
        validator.validate_response(op, 200, "application/json", GOOD, "strict")
    for _ in range(3 * WARN_SAMPLE_EVERY):
        with pytest.raises(ResponseValidationError):
            validator.validate_response(op, 200, "application/json", bad(0), "strict")


def test_sample_every_one_checks_every_response(validator: Validator, ops: Any) -> None:
    op = ops["DescribeWorkflow"]
    validator.sample_every = 1
    for _ in range(WARN_SAMPLE_AFTER + 3):
        reported(validator, op, GOOD)
    for i in range(2 * WARN_SAMPLE_EVERY):
        fresh(validator)
        assert reported(validator, op, bad(i))


def test_forget_reports_restarts_full_checking(validator: Validator, ops: Any) -> None:
    op = ops["DescribeWorkflow"]
    for _ in range(WARN_SAMPLE_AFTER + 1):
        reported(validator, op, GOOD)
    validator.forget_reports()
    assert reported(validator, op, bad(0))
