"""Monitor: check something every 10 minutes until it holds or a deadline passes.

Each check is one short run: check, sleep, then durably.continue_as_new with the next check's
input, so the journal never grows however long it polls (earlier runs are listed by h.runs()).
WorkflowEnvironment skips the clock ahead, so hours of polling take milliseconds.
"""

import tempfile
import time
from datetime import datetime, timedelta

import durably
from durably.testing import WorkflowEnvironment

INTERVAL = timedelta(minutes=10)
READY_AFTER = {"build-42": 9}  # a fake CI: build-42 passes on its 9th check; others never do


def make_app(db_url: str) -> durably.App:
    app = durably.App(db_url)

    @app.step()
    async def is_green(build: str, check: int) -> bool:
        return check >= READY_AFTER.get(build, 10**9)  # ask the CI server here

    @app.workflow()
    async def watch_build(build: str, deadline: datetime, check: int = 1) -> str:
        durably.set_state("checks", check)
        if await is_green(build, check):
            return f"{build} is green (check {check})"
        if durably.now() + INTERVAL > deadline:
            return f"{build} gave up at the deadline (check {check})"
        await durably.sleep(INTERVAL)
        durably.continue_as_new(build, deadline, check + 1)

    return app


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite:///{tmp}/monitor.db")
        with WorkflowEnvironment(app) as env:
            for build in ("build-42", "build-43"):
                started, wall = env.now(), time.monotonic()
                handle = app.start("watch_build", build, started + timedelta(hours=6), id=build)
                print(handle.result(timeout=30))
                print(
                    f"  {env.now() - started} of virtual time in {time.monotonic() - wall:.2f}s; "
                    f"{len(handle.runs())} earlier runs, journal of {len(handle.history())} entries"
                )
        app.close()


if __name__ == "__main__":
    main()
