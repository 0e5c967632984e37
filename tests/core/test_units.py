"""Byte sizes and memory budgets: what is read, and what is refused before any work."""

from __future__ import annotations

import math

import pytest
from minjiang.core._units import format_bytes, parse_bytes, parse_memory_budget
from minjiang.core.errors import MemoryBudgetError, MinjiangError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256MiB", 256 << 20),
        ("4GiB", 4 << 30),
        ("4 GiB", 4 << 30),
        ("512MB", 512 * 10**6),
        ("1.5GiB", 3 << 29),
        ("10PiB", 10 << 50),
        ("2PB", 2 * 10**15),
        ("1TiB", 1 << 40),
        ("16mib", 16 << 20),
        ("1_000_000_000", 10**9),
        ("2e9", 2 * 10**9),
        (2 * 10**9, 2 * 10**9),
        (float(64 << 20), 64 << 20),
    ],
)
def test_budgets_that_read(text: str | int | float, expected: int) -> None:
    assert parse_memory_budget(text) == expected


@pytest.mark.parametrize("text", ["0", 0, "0B", "0GiB", 0.0, "0.0001"])
def test_a_zero_budget_is_refused_not_read_as_no_limit(text: str | int | float) -> None:
    with pytest.raises(MemoryBudgetError) as err:
        parse_memory_budget(text)
    # the message names the value and says what to write instead
    assert repr(text) in str(err.value)
    assert "e.g. '4GiB'" in str(err.value)


@pytest.mark.parametrize("text", ["-1", -1, "-4GiB", -0.5, "-1e9"])
def test_negative_budgets_are_refused(text: str | int | float) -> None:
    with pytest.raises(MemoryBudgetError) as err:
        parse_memory_budget(text)
    assert repr(text) in str(err.value)


def test_small_positive_budgets_are_left_to_the_planner() -> None:
    # too small for a task is the planner's call (it names both sizes), not the parser's
    assert parse_memory_budget("1") == 1
    assert parse_memory_budget("1KiB") == 1024


@pytest.mark.parametrize(
    "text",
    ["nan", "NaN", "inf", "infGiB", float("nan"), float("inf"), -math.inf, math.nan],
)
def test_non_finite_budgets_are_refused(text: str | float) -> None:
    with pytest.raises(MemoryBudgetError, match="memory"):
        parse_memory_budget(text)


@pytest.mark.parametrize(
    "text", ["4 furlongs", "4GB RAM", "GiB", "", "  ", "4.GiB.", "0x100MiB", "4GiBs", "½GiB"]
)
def test_unknown_units_and_garbage_are_refused(text: str) -> None:
    with pytest.raises(MemoryBudgetError) as err:
        parse_memory_budget(text)
    assert "units:" in str(err.value) or "write e.g." in str(err.value)


@pytest.mark.parametrize("value", [True, False, None, [1], {"a": 1}, b"4GiB"])
def test_values_of_the_wrong_type_are_refused(value: object) -> None:
    with pytest.raises(MemoryBudgetError, match=r"write e\.g\."):
        parse_memory_budget(value)  # type: ignore[arg-type]


def test_budget_errors_are_typed_and_value_errors() -> None:
    with pytest.raises(MinjiangError):
        parse_memory_budget("-1")
    with pytest.raises(ValueError):
        parse_memory_budget("-1")


def test_parse_bytes_allows_zero_but_not_negative() -> None:
    assert parse_bytes("0") == 0
    assert parse_bytes("0B") == 0
    with pytest.raises(MemoryBudgetError):
        parse_bytes("-1B")


def test_runtime_refuses_a_bad_budget_before_any_work(tmp_path) -> None:
    from minjiang import Runtime

    with pytest.raises(MemoryBudgetError):
        Runtime(tmp_path / "store", executor="local", memory_budget="-1")
    assert not (tmp_path / "store" / "datasets").exists()


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (256 << 20, "256.0 MiB"),
        (3 << 40, "3.0 TiB"),
    ],
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text
