"""The CLI's argparse types take ASCII numbers in range and say what is wrong, briefly."""

from __future__ import annotations

import argparse

import pytest

from durably.argtypes import seconds, whole_number


@pytest.mark.parametrize(
    "value",
    [
        "\u0661\u0662",
        "\uff11\uff12",
        "\u00b2",
        "nan",
        "inf",
        "1e400",
        "0",
        "-1",
        "61",
        "x" * 5000,
        "\ud800",
    ],
)
def test_seconds_refuses_what_is_not_an_ascii_number_in_range(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        seconds(60)(value)
    assert len(str(caught.value)) < 200  # a huge value is not echoed whole


@pytest.mark.parametrize(
    "value", ["\u0661\u0662", "\uff11\uff12", "\u00b2", "9" * 5000, "-1", "1.5"]
)
def test_whole_number_refuses_what_is_not_an_ascii_count_in_range(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        whole_number(0)(value)
    assert len(str(caught.value)) < 200


def test_numbers_in_range_are_taken() -> None:
    assert seconds(60)("0.5") == 0.5
    assert seconds(60)(" 60 ") == 60.0
    assert whole_number(1)("42") == 42
