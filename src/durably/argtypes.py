"""Value types for the command lines (``durably ...``, ``durably bench``, ``durably server``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from durably.limits import MAX_COUNT

__all__ = ["seconds", "whole_number"]


def whole_number(minimum: int, maximum: int = MAX_COUNT) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``minimum`` to ``maximum`` (default
    :data:`durably.limits.MAX_COUNT`) in ASCII digits, else a clear error."""

    def parse(value: str) -> int:
        text = value.strip()
        digits = text.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()):
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value[:60]!r}")
        if len(digits.lstrip("0")) > len(str(maximum)):
            raise argparse.ArgumentTypeError(f"expected a number <= {maximum}, got {text[:60]}...")
        number = int(text)
        if number < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {number}")
        if number > maximum:
            raise argparse.ArgumentTypeError(f"expected a number <= {maximum}, got {number}")
        return number

    return parse


def seconds(maximum: float) -> Callable[[str], float]:
    """An argparse ``type``: a number of seconds above 0 and at most ``maximum``."""

    def parse(value: str) -> float:
        shown = value[:60] + ("..." if len(value) > 60 else "")
        try:
            if not value.isascii():  # float() takes other scripts' digits: the CLI does not
                raise ValueError(value)
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds, got {shown!r}") from None
        if not (math.isfinite(number) and 0 < number <= maximum):
            raise argparse.ArgumentTypeError(
                f"expected seconds above 0 and at most {maximum:g}, got {shown!r}"
            )
        return number

    return parse
