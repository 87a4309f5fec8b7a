"""Task chaining: steps run one after another, each checkpointed, each with its own retry policy.

`reserve_stock` is flaky (it fails twice, then succeeds): its retry policy absorbs that. `ship`
always fails for an unknown address: once its retries are exhausted the workflow gets
durably.StepFailed, and the Saga undoes what succeeded (refund, then release), newest first.
"""

import asyncio
import tempfile

import durably

FAST = durably.Retry(attempts=3, initial=0.05)  # short backoff, for the demo


def make_app(db_url: str) -> durably.App:
    app = durably.App(db_url)

    @app.step(retry=FAST)
    async def reserve_stock(order_id: str) -> str:
        if durably.step_context().attempt < 3:  # attempts 1 and 2 fail: a flaky warehouse API
            raise ConnectionError("warehouse API timed out")
        return f"reservation-{order_id}"

    @app.step()
    async def release_stock(reservation: str) -> None:
        await asyncio.sleep(0)  # tell the warehouse to release `reservation`

    @app.step()
    async def charge(order_id: str, cents: int) -> str:
        return f"payment-{order_id}-{cents}"

    @app.step()
    async def refund(payment: str) -> None:
        await asyncio.sleep(0)  # tell the payment provider to refund `payment`

    @app.step(retry=FAST)
    async def ship(order_id: str, address: str) -> str:
        if address == "nowhere":
            raise LookupError(f"carrier does not deliver to {address!r}")
        return f"tracking-{order_id}"

    @app.workflow()
    async def place_order(order_id: str, cents: int, address: str) -> str:
        try:
            async with durably.Saga() as saga:
                reservation = await reserve_stock(order_id)
                saga.add(release_stock, reservation)
                payment = await charge(order_id, cents)
                saga.add(refund, payment)
                tracking = await ship(order_id, address)
        except durably.StepFailed as failed:  # the saga has compensated already
            return f"{order_id}: not shipped ({failed.error_message}); refunded and released"
        return f"{order_id}: shipped, {tracking}"

    return app


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite:///{tmp}/chaining.db")
        with app:
            ok = app.start("place_order", "order-1", 4200, "1 Main St", id="order-1")
            bad = app.start("place_order", "order-2", 990, "nowhere", id="order-2")
            for handle in (ok, bad):
                print(handle.result(timeout=30))
                for entry in handle.history():
                    print(f"  {entry.seq} {entry.name}: {entry.status}, attempts: {entry.attempts}")
        app.close()


if __name__ == "__main__":
    main()
