"""Human in the loop: wait for an `approved` or a `rejected` event; after 7 days with neither,
escalate to the manager, who has 3 more days.

durably.wait_any(...) waits for the first of several things (here two events and a timer) and
returns which one fired (`fired.key`) with its value (the event's payload, None for the timer).
The choice is journaled, so a replay after a crash takes the same branch; an event that did not
win stays for a later wait, and a timer that did not win is dropped. A workflow waiting a week
holds no thread or coroutine: it is parked until an event arrives or the timer is due. The demo
drives a virtual clock by hand (WorkflowEnvironment with auto_skip=False and env.advance) to
show the outcomes without waiting a week.
"""

import tempfile
from datetime import UTC, datetime, timedelta

import durably
from durably.testing import WorkflowEnvironment


def make_app(db_url: str) -> durably.App:
    app = durably.App(db_url)

    @app.step()
    async def notify(person: str, request: str) -> str:
        return f"asked {person} to approve {request}"  # send the email or chat message here

    @app.workflow()
    async def approve_expense(request: str, approver: str, manager: str) -> str:
        asked = durably.now()
        await notify(approver, request)
        fired = await durably.wait_any(
            approved=durably.event("approved"),
            rejected=durably.event("rejected"),
            escalate=durably.timer(timedelta(days=7)),
        )
        if fired.key == "escalate":  # no answer in a week: escalate to the manager
            durably.set_state("escalated_to", manager)
            await notify(manager, request)
            fired = await durably.wait_any(
                approved=durably.event("approved"),
                rejected=durably.event("rejected"),
                expire=durably.timer(timedelta(days=3)),
            )
        days = (durably.now() - asked).days
        if fired.key == "expire":
            return f"{request}: rejected, nobody approved it in {days} days"
        return f"{request}: {fired.key} by {fired.value} after {days} days"

    return app


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite:///{tmp}/approval.db")
        start = datetime(2030, 1, 1, tzinfo=UTC)  # virtual time, moved only by env.advance()
        with WorkflowEnvironment(app, start=start, auto_skip=False) as env:
            quick = app.start("approve_expense", "expense-1", "ada", "grace", id="expense-1")
            app.send_event("expense-1", "approved", "ada")
            print(quick.result(timeout=30))

            late = app.start("approve_expense", "expense-2", "ada", "grace", id="expense-2")
            env.wait_until_waiting(late)
            env.advance(timedelta(days=7))  # ada never answers
            env.wait_until_waiting(late)
            print(f"  expense-2 escalated to {late.state('escalated_to')}")
            app.send_event("expense-2", "approved", "grace")
            print(late.result(timeout=30))

            no = app.start("approve_expense", "expense-4", "ada", "grace", id="expense-4")
            app.send_event("expense-4", "rejected", "ada")
            print(no.result(timeout=30))

            never = app.start("approve_expense", "expense-3", "ada", "grace", id="expense-3")
            for days in (7, 3):  # nobody answers at all
                env.wait_until_waiting(never)
                env.advance(timedelta(days=days))
            print(never.result(timeout=30))
        app.close()


if __name__ == "__main__":
    main()
