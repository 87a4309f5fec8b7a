"""Crash-test a payment workflow: is it safe to crash anywhere?

``durably.testing.check_crash_safety`` runs the workflow once, then once more per durable point,
crashing it there (and, for each step, after its body ran but before its result was committed),
resuming it on a fresh worker, and checking that it ends as the uncrashed run did. A step whose
result was not committed runs again: the card is charged twice unless the payment provider
deduplicates by the step's idempotency key, which is what this example checks.

Run it: ``python examples/crash_safety.py`` (or put ``check(...)`` in a pytest test).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import durably
from durably.testing import CrashSafetyReport, check_crash_safety

app = durably.App("sqlite:///crash_safety.db")  # the check runs on fresh temporary databases


class PaymentProvider:
    """A fake payment API that, like real ones, applies a charge once per idempotency key."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.charges: dict[str, int] = {}

    def charge(self, idempotency_key: str, cents: int) -> str:
        self.requests[idempotency_key] += 1
        self.charges.setdefault(idempotency_key, cents)  # a repeated key changes nothing
        return f"ch_{list(self.charges).index(idempotency_key) + 1:04d}"


provider = PaymentProvider()


@app.step()
async def charge_card(customer: str, cents: int) -> str:
    return provider.charge(durably.step_context().idempotency_key, cents)


@app.step()
async def send_receipt(customer: str, charge_id: str) -> str:
    return f"receipt for {charge_id} sent to {customer}"


@app.workflow()
async def checkout(customer: str, cents: int) -> str:
    charge_id = await charge_card(customer, cents)
    await durably.sleep(timedelta(days=1))  # settlement: costs nothing in the check
    return await send_receipt(customer, charge_id)


def check() -> CrashSafetyReport:
    """Crash ``checkout`` everywhere and check the customer was charged exactly once."""
    report = check_crash_safety(app, checkout, "ada", 4200)
    assert report.status == "completed", report.result
    after_charge = report.run_at("after-body step 'charge_card' (seq 0)")
    assert after_charge.step_runs["charge_card"] == 2  # the step ran again after that crash...
    assert list(provider.charges.values()) == [4200]  # ...but the card was charged once
    assert sum(provider.requests.values()) == report.step_runs["charge_card"] + sum(
        run.step_runs.get("charge_card", 0) for run in report.runs
    )
    return report


if __name__ == "__main__":
    report = check()
    print(f"{report.workflow}: {report.result}")
    for run in report.runs:
        again = ", ".join(f"{name} ran {n}x" for name, n in run.reran(report).items())
        print(f"  crash {run.point}: same result{'; ' + again if again else ''}")
    print(f"charged once: {provider.charges}")
