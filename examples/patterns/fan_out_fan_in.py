"""Fan-out/fan-in: run one step per input in parallel, at most `limit` at a time, then aggregate.

Each `count_words` call is a checkpointed step: after a crash only the unfinished ones run again.
The semaphore bounds how many are in flight. Tasks acquire it in the order they were created
(asyncio.Semaphore is FIFO), so steps take their sequence numbers in input order: deterministic.
"""

import asyncio
import tempfile

import durably

DOCUMENTS = [f"doc-{i}" for i in range(12)]


def make_app(db_url: str) -> durably.App:
    app = durably.App(db_url)

    @app.step(retry=durably.Retry(attempts=3, initial=0.05))
    async def count_words(doc: str) -> int:
        await asyncio.sleep(0.05)  # fetch and parse the document here
        return 100 + int(doc.removeprefix("doc-"))

    @app.workflow()
    async def word_count(docs: list[str], limit: int) -> dict[str, int]:
        in_flight = asyncio.Semaphore(limit)

        async def one(doc: str) -> int:
            async with in_flight:
                return await count_words(doc)

        counts = await asyncio.gather(*(one(doc) for doc in docs))  # fan out...
        return {"documents": len(counts), "words": sum(counts)}  # ...and in

    return app


def peak_parallelism(app: durably.App, workflow_id: str) -> int:
    """How many steps overlapped at most, from the journal's start and finish times."""
    entries = [e for e in app.handle(workflow_id).history() if e.kind == "step"]
    return max(sum(o.started_at <= e.started_at < o.finished_at for o in entries) for e in entries)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite:///{tmp}/fan_out.db")
        with app:
            handle = app.start("word_count", DOCUMENTS, 4, id="count-1")
            print("result:", handle.result(timeout=30))
        print("steps in the journal:", len(handle.history()))
        print("at most in flight:", peak_parallelism(app, "count-1"))
        app.close()


if __name__ == "__main__":
    main()
