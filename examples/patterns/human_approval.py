"""Human in the loop: wait for an `approved` event for 7 days; if none comes, escalate.

durably.wait_event(name, timeout=...) returns the event's payload, or raises
durably.EventTimeoutError when the timeout passes first (an approval sent with no payload is
still an approval: it returns None). The demo drives a virtual clock by hand
(WorkflowEnvironment with auto_skip=False and env.advance) to show the three outcomes without
waiting a week.
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
        try:
            approved_by = await durably.wait_event("approved", timeout=timedelta(days=7))
        except durably.EventTimeoutError:  # no answer in a week: escalate to the manager
            durably.set_state("escalated_to", manager)
            await notify(manager, request)
            try:
                approved_by = await durably.wait_event("approved", timeout=timedelta(days=3))
            except durably.EventTimeoutError:
                days = (durably.now() - asked).days
                return f"{request}: rejected, nobody approved it in {days} days"
        days = (durably.now() - asked).days
        return f"{request}: approved by {approved_by} after {days} days"

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

            never = app.start("approve_expense", "expense-3", "ada", "grace", id="expense-3")
            for days in (7, 3):  # nobody answers at all
                env.wait_until_waiting(never)
                env.advance(timedelta(days=days))
            print(never.result(timeout=30))
        app.close()


if __name__ == "__main__":
    main()
