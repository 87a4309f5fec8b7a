"""Retry policies for steps."""

from __future__ import annotations

from dataclasses import dataclass

from durably.errors import ConfigurationError, SerializationError

__all__ = ["Retry"]


@dataclass(frozen=True, slots=True)
class Retry:
    """How a step is retried when an attempt raises.

    Attempt ``n`` (1-based) that fails is followed, after ``initial * backoff ** (n - 1)`` seconds
    capped at ``max_interval`` (or at ``initial``, if that is longer: ``Retry(initial=3600)``
    waits an hour), by attempt ``n + 1``, until ``attempts`` attempts have run. A wait longer
    than the worker's eviction threshold is a durable timer: the workflow is parked meanwhile,
    and the attempt count survives crashes and restarts.
    Exceptions that are instances of a type in ``non_retryable`` fail the step at once.
    ``Retry(attempts=1)`` means no retries. The default for a step is ``Retry()``: 3 attempts,
    1 s then 2 s apart.
    """

    attempts: int = 3
    initial: float = 1.0
    backoff: float = 2.0
    max_interval: float = 60.0
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError(f"Retry(attempts={self.attempts}): attempts must be >= 1")
        if self.initial < 0 or self.max_interval < 0:
            raise ConfigurationError("Retry: initial and max_interval must be >= 0 seconds")
        if self.backoff < 1:
            raise ConfigurationError(f"Retry(backoff={self.backoff}): backoff must be >= 1")
        for t in self.non_retryable:
            if not (isinstance(t, type) and issubclass(t, BaseException)):
                raise ConfigurationError(
                    f"Retry(non_retryable=...): {t!r} is not an exception type"
                )

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after the ``failed_attempts``-th failed attempt."""
        cap = max(self.max_interval, self.initial)
        return float(min(self.initial * self.backoff ** (failed_attempts - 1), cap))

    def should_retry(self, exc: BaseException, failed_attempts: int) -> bool:
        """Whether another attempt follows the ``failed_attempts``-th, which raised ``exc``."""
        if failed_attempts >= self.attempts:
            return False
        if isinstance(exc, SerializationError):  # a result that cannot be stored never will be
            return False
        return not isinstance(exc, self.non_retryable)
