"""``WithBlock``: the ``with`` statement written once for the classes used in one."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["WithBlock"]


class WithBlock:
    """Base of a class used as ``with obj:``: entering runs :meth:`_enter` and gives the object
    itself; leaving runs :meth:`_exit` with the exception that ends the block (None if none),
    which it does not suppress."""

    __slots__ = ()

    def _enter(self) -> None:
        """What entering the block does (nothing, unless overridden)."""

    def _exit(self, exc: BaseException | None) -> None:
        """What leaving the block does (nothing, unless overridden)."""

    def __enter__(self) -> Self:
        self._enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(exc)
