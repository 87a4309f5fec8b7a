import asyncio

import durably

app = durably.App()  # the SQLite file ./durably.db (or $DURABLY_DB)


@app.step(retry=durably.Retry(attempts=5, initial=0.5))
async def fetch_price(item: str) -> int:
    await asyncio.sleep(0.1)  # call a slow, flaky API here
    return {"apple": 3, "pear": 4}[item]


@app.step()
async def charge(customer: str, cents: int) -> str:
    key = durably.step_context().idempotency_key  # the same on every retry and replay
    return f"charged {customer} {cents} cents (idempotency key {key})"


@app.workflow()
async def checkout(customer: str, item: str) -> str:
    price = await fetch_price(item)  # checkpointed: never run again once it succeeded
    return await charge(customer, price * 100)


if __name__ == "__main__":
    with app:  # an embedded worker runs workflows on a background thread
        handle = app.start(checkout, "ada", "pear", id="checkout-ada-1")
        print(handle.result(timeout=30))
