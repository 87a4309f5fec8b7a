"""First of several replies: ask three suppliers for a quote, take whichever answers first, and
give up after an hour.

Each request is a child workflow (`ask_supplier`) that sends the request and waits for the
supplier's `quote` event (a webhook would send it). The parent waits for the first of the
children and a one-hour timer with durably.wait_any(...): `fired.key` says which one, and
`fired.value` is that child's result. The children that lose keep running until told
otherwise, so the parent cancels them (a step calling app.cancel). The choice is journaled: a
replay after a crash picks the same supplier even if the others have answered since.

The demo drives a virtual clock by hand (WorkflowEnvironment with auto_skip=False).
"""

import logging
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import durably
from durably.testing import WorkflowEnvironment

SUPPLIERS = ("acme", "globex", "initech")


def make_app(db_url: str) -> durably.App:
    app = durably.App(db_url)

    @app.step()
    async def send_request(supplier: str, item: str) -> str:
        return f"asked {supplier} for {item}"  # an HTTP call or an email here

    @app.step()
    def cancel_requests(ids: list[str]) -> list[str]:
        cancelled = []
        for workflow_id in ids:
            if app.handle(workflow_id).status() in ("pending", "running"):
                app.cancel(workflow_id)
                cancelled.append(workflow_id)
        return cancelled

    @app.workflow()
    async def ask_supplier(supplier: str, item: str) -> dict[str, Any]:
        await send_request(supplier, item)
        price = await durably.wait_event("quote")
        return {"supplier": supplier, "price": price}

    @app.workflow()
    async def quick_quote(item: str) -> str:
        me = durably.workflow_id()
        asks = {s: durably.start_child(ask_supplier, s, item, id=f"{me}:{s}") for s in SUPPLIERS}
        fired = await durably.wait_any(**asks, deadline=durably.timer(timedelta(hours=1)))
        await durably.run(cancel_requests, [h.id for s, h in asks.items() if s != fired.key])
        if fired.key == "deadline":
            return f"{item}: no quote within an hour"
        return f"{item}: {fired.value['price']} from {fired.key}"

    return app


def ended(handle: durably.WorkflowHandle[Any]) -> str:
    """How the workflow ended, once it has."""
    try:
        handle.result(timeout=30)
    except durably.DurablyError:
        pass  # cancelled, failed...
    return handle.status().value


def main() -> None:
    logging.getLogger("durably").setLevel(logging.ERROR)  # not the cancellations (WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite:///{tmp}/quotes.db")
        start = datetime(2030, 1, 1, tzinfo=UTC)  # virtual time, moved only by env.advance()
        with WorkflowEnvironment(app, start=start, auto_skip=False) as env:
            quote = app.start("quick_quote", "widgets", id="q-1")
            env.wait_until_waiting(quote)
            app.send_event("q-1:globex", "quote", 42)  # globex answers first
            print(quote.result(timeout=30))
            for supplier in SUPPLIERS:
                print(f"  {supplier}: {ended(app.handle(f'q-1:{supplier}'))}")

            silent = app.start("quick_quote", "gizmos", id="q-2")
            env.wait_until_waiting(silent)
            env.advance(timedelta(hours=1))  # nobody answers
            print(silent.result(timeout=30))
        app.close()


if __name__ == "__main__":
    main()
