"""Steps and workflows as defined by ``@app.step`` and ``@app.workflow``: what a direct call of
a step of the other kind (sync in async, async in sync) tells the user to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest

import durably


def test_a_step_of_the_other_kind_called_directly_says_what_to_write(tmp_path: Path) -> None:
    app = durably.App(f"sqlite:///{tmp_path}/app.db")

    @app.step(retry=durably.Retry(attempts=1))
    def sync_step() -> int:
        return 1

    @app.step(retry=durably.Retry(attempts=1))
    async def async_step() -> int:
        return 2

    @app.workflow()
    async def in_async() -> int:
        return sync_step()

    @app.workflow()
    def in_sync() -> object:
        return async_step()

    assert app.workflow(name="plain")(lambda: 3).app is app and sync_step.app is None
    try:
        with app:
            with pytest.raises(durably.WorkflowFailedError) as failed:
                app.start(in_async).result(timeout=30)
            assert (
                "sync step 'sync_step' called directly in async workflow 'in_async': write "
                "`await durably.run(sync_step, ...)`" in str(failed.value)
            )
            with pytest.raises(durably.WorkflowFailedError) as failed:
                app.start(in_sync).result(timeout=30)
            assert (
                "async step 'async_step' called directly in sync workflow 'in_sync': write "
                "`durably.submit(async_step, ...).result()`" in str(failed.value)
            )
    finally:
        app.close()
