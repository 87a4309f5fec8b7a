"""Money transfer saga: withdraw, then deposit; if the deposit fails for good, refund.

Every call to the bank carries the step's idempotency key ("<workflow id>:<seq>", the same on
every retry and replay), and the bank applies each key at most once. The first withdrawal reply
is "lost" (the bank applied it, then the connection dropped): the retry applies nothing twice.
"""

import tempfile
import threading

import durably


class AccountClosed(Exception):
    pass


class FakeBank:
    """An in-memory bank that remembers which idempotency keys it has applied."""

    def __init__(self, balances: dict[str, int]) -> None:
        self.balances = dict(balances)
        self.applied: dict[str, int] = {}  # idempotency key -> amount moved
        self.closed = {"mallory"}
        self.lose_first_reply = True
        self._lock = threading.Lock()  # sync steps run on worker threads

    def move(self, key: str, account: str, amount: int) -> int:
        with self._lock:
            if key not in self.applied:  # a key seen before is a retry or replay: do nothing
                if account in self.closed:
                    raise AccountClosed(f"account {account!r} is closed")
                self.balances[account] += amount
                self.applied[key] = amount
                if self.lose_first_reply:
                    self.lose_first_reply = False
                    raise ConnectionError("connection reset after the bank applied the change")
            return self.balances[account]


def make_app(db_url: str, bank: FakeBank | None = None) -> durably.App:
    app = durably.App(db_url)
    the_bank = bank if bank is not None else FakeBank({"alice": 500, "bob": 100})
    retry = durably.Retry(attempts=3, initial=0.05, non_retryable=(AccountClosed,))

    @app.step(retry=retry)
    def withdraw(account: str, amount: int) -> int:
        return the_bank.move(durably.step_context().idempotency_key, account, -amount)

    @app.step(retry=retry)
    def deposit(account: str, amount: int) -> int:
        return the_bank.move(durably.step_context().idempotency_key, account, amount)

    @app.step(retry=durably.Retry(attempts=10, initial=0.05))  # an undo must not give up
    def refund(account: str, amount: int) -> int:
        return the_bank.move(durably.step_context().idempotency_key, account, amount)

    @app.workflow()
    async def transfer(source: str, target: str, amount: int) -> str:
        try:
            async with durably.Saga() as saga:
                await durably.run(withdraw, source, amount)  # sync steps: durably.run
                saga.add(refund, source, amount)
                await durably.run(deposit, target, amount)
        except durably.StepFailed as failed:
            return f"{amount} from {source} to {target}: failed ({failed.error_message}), refunded"
        return f"{amount} from {source} to {target}: done"

    return app


def main() -> None:
    bank = FakeBank({"alice": 500, "bob": 100, "mallory": 0})
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite:///{tmp}/transfer.db", bank)
        with app:
            print(app.start("transfer", "alice", "bob", 150, id="t-1").result(timeout=30))
            print(app.start("transfer", "alice", "mallory", 70, id="t-2").result(timeout=30))
        app.close()
    print("balances:", bank.balances)
    print("applied once each:", bank.applied)


if __name__ == "__main__":
    main()
