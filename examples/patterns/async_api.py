"""Asynchronous API: the client starts a long job and gets its id back at once, then polls.

The worker runs in another process (`python async_api.py worker <db url>`); the client is an App
that runs no worker. It starts the job (one committed row: returns in milliseconds) and polls
the status and the progress the workflow publishes with durably.set_state, until it finishes.
"""

import asyncio
import signal
import subprocess
import sys
import tempfile
import time

import durably


def make_app(db_url: str) -> durably.App:
    # A short poll interval: this worker learns of work started by another process by polling.
    app = durably.App(db_url, worker_options=durably.WorkerOptions(poll_interval=0.05))

    @app.step()
    async def render_page(report: str, page: int) -> int:
        await asyncio.sleep(0.2)  # slow work
        return 40 + page

    @app.workflow()
    async def build_report(report: str, pages: int) -> str:
        words = 0
        for page in range(1, pages + 1):
            words += await render_page(report, page)
            durably.set_state("progress", f"{page}/{pages} pages")
        return f"{report}: {pages} pages, {words} words"

    return app


def submit(app: durably.App, report: str, pages: int) -> str:
    """What a POST /reports endpoint does: start the job and answer with its id."""
    return app.start("build_report", report, pages).id


def poll(app: durably.App, job_id: str) -> tuple[str, str | None]:
    """What GET /reports/<id> does: the status and the progress so far."""
    handle = app.handle(job_id)
    return handle.status().value, handle.state("progress")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/async_api.db"
        worker = subprocess.Popen([sys.executable, __file__, "worker", db_url])
        client = make_app(db_url)  # no `with client:`: this process runs no worker
        try:
            started = time.monotonic()
            job_id = submit(client, "q3-sales", 5)
            print(f"started job {job_id} in {time.monotonic() - started:.3f}s")
            status, progress = poll(client, job_id)
            while status in ("pending", "running"):
                print(f"  {status}: {progress or 'waiting for a worker'}")
                time.sleep(0.25)
                status, progress = poll(client, job_id)
            print(f"{status}: {client.handle(job_id).result()}")
        finally:
            worker.send_signal(signal.SIGTERM)  # a clean stop
            worker.wait(timeout=30)
            client.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        make_app(sys.argv[2]).run_worker()
    else:
        main()
