"""``durably bench``: standard workloads measured next to the storage floor of the same run.

Workloads (``--only``): throughput (1 process, and K worker processes), sequential per-step
latency, start-to-result latency, recovery after SIGKILL, replay of a long journal, memory of
sleeping workflows. See README "Benchmarks". Modules: :mod:`~durably.bench.options` (command
line), :mod:`~durably.bench.targets` and :mod:`~durably.bench.floors` (fresh databases and their
floors), :mod:`~durably.bench.workloads` and :mod:`~durably.bench.processes` (measurements),
:mod:`~durably.bench.procs` (worker processes), :mod:`~durably.bench.workload` (the app they
serve), :mod:`~durably.bench.report` (the table) and :mod:`~durably.bench.run`.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with command-line arguments ``argv``; the exit code."""
    from durably.bench.run import main as run_main

    return run_main(argv)
