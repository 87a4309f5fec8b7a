"""The App of the schedule chaos test: one ``every=1s`` schedule declared in code, run by
``durably worker tests.e2e.sched_app:app`` processes (database: ``$DURABLY_DB``).

``SCHED_CATCHUP``: the schedule's catch-up window in seconds (default 300: every tick missed
while the workers were down runs). A worker started with another value updates the stored
schedule (a deploy).
"""

from __future__ import annotations

import os
from datetime import timedelta

import durably

app = durably.App()


@app.workflow(
    name="chaos-tick",
    schedule=durably.Schedule(
        "chaos",
        every=timedelta(seconds=1),
        overlap="allow_all",
        catchup_window=timedelta(seconds=float(os.environ.get("SCHED_CATCHUP", "300"))),
    ),
)
def chaos_tick() -> str:
    return "ran"
