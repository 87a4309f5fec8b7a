"""Value types for the command lines (``durably ...``, ``durably bench``, ``durably server``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["seconds", "whole_number"]


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``minimum``, else a clear error."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {number}")
        return number

    return parse


def seconds(maximum: float) -> Callable[[str], float]:
    """An argparse ``type``: a number of seconds above 0 and at most ``maximum``."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
        if not (math.isfinite(number) and 0 < number <= maximum):
            raise argparse.ArgumentTypeError(
                f"expected seconds above 0 and at most {maximum:g}, got {value!r}"
            )
        return number

    return parse
