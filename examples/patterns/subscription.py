"""A subscription that runs forever: bills every 30 days, takes `change_plan` and
`cancel_subscription` commands at any time, and publishes plan, months billed and status.

Each month is one run: it waits for a command until the bill is due (the wait's timeout is the
time left), bills, then continues as new, so the journal stays small for years. Both commands
come as one event, "command", so that a single wait handles whichever arrives first.
"""

import tempfile
import time
from datetime import UTC, datetime, timedelta

import durably
from durably.testing import WorkflowEnvironment

MONTH = timedelta(days=30)
PRICES = {"basic": 900, "pro": 2900}  # cents a month


def make_app(db_url: str) -> durably.App:
    app = durably.App(db_url)

    @app.step()
    async def charge(customer: str, plan: str, month: int) -> str:
        key = durably.step_context().idempotency_key  # hand it to the payment provider
        return f"charged {customer} {PRICES[plan]} cents for month {month} ({key})"

    @app.workflow()
    async def subscription(customer: str, plan: str, billed: int = 0) -> str:
        durably.set_state("plan", plan)
        durably.set_state("months_billed", billed)
        durably.set_state("status", "active")
        bill_at = durably.now() + MONTH
        while (left := bill_at - durably.now()) > timedelta(0):
            try:
                command = await durably.wait_event("command", timeout=left)
            except durably.EventTimeoutError:  # no command before the bill is due
                break
            if command["action"] == "cancel_subscription":
                durably.set_state("status", "cancelled")
                return f"{customer}: cancelled after {billed} months"
            plan = command["plan"]  # change_plan: takes effect from this month's bill
            durably.set_state("plan", plan)
        await charge(customer, plan, billed + 1)
        durably.continue_as_new(customer, plan, billed + 1)

    return app


def change_plan(app: durably.App, subscription_id: str, plan: str) -> None:
    app.send_event(subscription_id, "command", {"action": "change_plan", "plan": plan})


def cancel_subscription(app: durably.App, subscription_id: str) -> None:
    app.send_event(subscription_id, "command", {"action": "cancel_subscription"})


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite:///{tmp}/subscription.db")
        start = datetime(2030, 1, 1, tzinfo=UTC)  # virtual time, moved only by env.advance()
        with WorkflowEnvironment(app, start=start, auto_skip=False) as env:
            wall = time.monotonic()
            sub = app.start("subscription", "ada", "basic", id="sub-ada")
            for _ in range(3):
                env.wait_until_waiting(sub)
                env.advance(MONTH)
            env.wait_until_waiting(sub)
            print(f"{env.now():%Y-%m-%d} {sub.states()}")
            change_plan(app, "sub-ada", "pro")
            while sub.state("plan") != "pro":
                time.sleep(0.005)
            print(f"{env.now():%Y-%m-%d} {sub.states()}")
            env.advance(MONTH)
            env.wait_until_waiting(sub)
            cancel_subscription(app, "sub-ada")
            print(f"{env.now():%Y-%m-%d} {sub.result(timeout=30)} {sub.states()}")
            print(f"4 months in {time.monotonic() - wall:.2f}s; the runs before the last:")
            for run in sub.runs():
                print(f"  run {run.run}: input {run.input['args']}, {run.status.value}")
        app.close()


if __name__ == "__main__":
    main()
