"""Number formatting and the four-column table both benchmark scripts print."""

from __future__ import annotations

Row = tuple[str, str, str, str]


def num(x: float, unit: str) -> str:
    """``x`` with a precision that suits its size, then its unit."""
    if x >= 100:
        return f"{x:,.0f} {unit}"
    if x >= 10:
        return f"{x:,.1f} {unit}"
    return f"{x:,.2f} {unit}"


def table(header: Row, rows: list[Row]) -> list[str]:
    """Left-aligned columns: the header, a rule, then the rows."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]

    def line(cells: Row) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule: Row = ("-" * widths[0], "-" * widths[1], "-" * widths[2], "-" * widths[3])
    return [line(header), line(rule), *(line(r) for r in rows)]
