"""Deprecated alias of :mod:`durably.worker.log` (kept so that old imports work)."""

from durably.worker.log import BAD_ENDS, lease_loss, log_bad_end

__all__ = ["BAD_ENDS", "lease_loss", "log_bad_end"]
