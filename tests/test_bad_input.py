"""Bad input through the Python API, on both backends: refused with a clear durably error (never
a raw OverflowError, UnicodeEncodeError or database error) before anything is written, the same
way on SQLite and PostgreSQL; and nothing workflow code stores can break a later read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import durably
from durably import limits
from durably.errors import ConfigurationError, DurablyError, SerializationError

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)


def deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def app(db_url: str) -> Iterator[durably.App]:
    app = durably.App(db_url, worker_options=FAST)

    @app.step(retry=durably.Retry(attempts=1))
    async def produce(kind: str) -> Any:
        return {"surrogate": "bad \ud800", "deep": deep(101), "fine": deep(100)}[kind]

    @app.workflow(name="echo")
    async def echo(*args: Any, **kwargs: Any) -> Any:
        return [list(args), kwargs]

    @app.workflow(name="same")
    async def same(value: Any, **kwargs: Any) -> Any:
        return value

    @app.workflow(name="stepper")
    async def stepper(kind: str) -> Any:
        return await produce(kind)

    @app.workflow(name="returns")
    async def returns(kind: str) -> Any:
        return {"surrogate": "\udfff", "deep": deep(101)}[kind]

    @app.workflow(name="publishes")
    async def publishes() -> None:
        durably.set_state("k", ["\ud800"])

    @app.workflow(name="raises")
    async def raises() -> None:
        raise ValueError("bad \ud800 text")

    @app.workflow(name="waits")
    async def waits() -> Any:
        return await durably.wait_event("go")

    yield app
    app.close()


def every_read_works(app: durably.App, wid: str) -> None:
    handle = app.handle(wid)
    handle.info()
    handle.history()
    handle.states()
    handle.runs()
    assert wid in [w.id for w in app.list_workflows(limit=1000)]


BAD_STARTS = [
    ((["\ud800"],), {}, "lone surrogate"),
    (({"\udc80": 1},), {}, "lone surrogate"),
    ((), {"k": "a\udfffb"}, "lone surrogate"),
    ((deep(980),), {}, "nested too deeply \\(more than 100 levels"),
    ((deep(101),), {}, "nested too deeply \\(more than 100 levels"),
]


def test_start_refuses_values_that_cannot_be_read_back(app: durably.App) -> None:
    for args, kwargs, words in BAD_STARTS:
        with pytest.raises(SerializationError, match=words) as err:
            app.start("echo", *args, id="bad-1", **kwargs)
        assert "workflow 'echo'" in err.value.message
    assert app.list_workflows() == []


def test_the_deepest_accepted_value_round_trips(app: durably.App) -> None:
    with app:
        handle = app.start("same", deep(98), k=deep(98), id="deep-ok")
        assert handle.result(timeout=30) == deep(98)
        app.send_event(app.start("waits", id="deep-event").id, "go", deep(100))
        assert app.handle("deep-event").result(timeout=30) == deep(100)
    every_read_works(app, "deep-event")
    every_read_works(app, "deep-ok")


@pytest.mark.parametrize(
    ("kind", "words"), [("surrogate", "lone surrogate"), ("deep", "more than 100 levels")]
)
def test_a_step_result_that_cannot_be_read_back_fails_the_step_clearly(
    app: durably.App, kind: str, words: str
) -> None:
    with app:
        handle = app.start("stepper", kind, id=f"step-{kind}")
        with pytest.raises(durably.WorkflowFailedError) as err:
            handle.result(timeout=30)
    assert words in str(err.value) and "step 'produce'" in str(err.value)
    assert f"workflow id 'step-{kind}'" in str(err.value)
    every_read_works(app, f"step-{kind}")


@pytest.mark.parametrize("wf", ["returns-surrogate", "returns-deep", "publishes", "raises"])
def test_outputs_state_and_errors_of_workflow_code_never_break_reads(
    app: durably.App, wf: str
) -> None:
    name, _, kind = wf.partition("-")
    with app:
        handle = app.start(name, *([kind] if kind else []), id=f"wf-{wf}")
        with pytest.raises(durably.WorkflowFailedError) as err:
            handle.result(timeout=30)
    every_read_works(app, f"wf-{wf}")
    if name == "raises":  # the message is kept, the surrogate shown as U+FFFD
        assert "bad \ufffd text" in str(handle.info().error)
    else:
        assert isinstance(err.value.__cause__ or err.value, DurablyError)


BAD_EVENTS = [
    ("\ud800", None, "lone surrogate"),
    ("a\x00b", None, "NUL"),
    ("x" * 5_000_000, None, "over the limit of 200"),
    ("a/b", None, "invalid event name"),
    ("go", "\ud800", "lone surrogate"),
    ("go", "k\x00", "NUL"),
    ("go", "k" * 3000, "over the limit of 512"),
    ("go", "k" * 500_000, "over the limit of 512"),
]


def test_send_event_refuses_names_and_keys_the_same_on_both_backends(app: durably.App) -> None:
    handle = app.start("waits", id="waiting")
    for name, dedup_key, words in BAD_EVENTS:
        with pytest.raises(ConfigurationError, match=words):
            app.send_event(handle.id, name, 1, dedup_key=dedup_key)
    with pytest.raises(SerializationError, match="lone surrogate"):
        app.send_event(handle.id, "go", {"v": "\ud800"})
    with pytest.raises(SerializationError, match="nested too deeply \\(more than 100 levels"):
        app.send_event(handle.id, "go", deep(975))
    # the longest name and key are stored and deduplicated on both backends
    key = "é" * limits.MAX_DEDUP_KEY_LENGTH
    assert app.send_event(handle.id, "e" * limits.MAX_NAME_LENGTH, 1, dedup_key=key) is True
    assert app.send_event(handle.id, "e" * limits.MAX_NAME_LENGTH, 2, dedup_key=key) is False
    with app:  # no refused "go" was queued: the workflow gets the first one sent after them
        assert app.send_event(handle.id, "go", 7) is True
        assert handle.result(timeout=30) == 7


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"limit": 10**30}, "limit must be a whole number >= 1 and <="),
        ({"limit": 0}, "limit must be a whole number"),
        ({"limit": 2.5}, "limit must be a whole number"),
        ({"before": (10**400, "a")}, "finite epoch seconds"),
        ({"before": (float("nan"), "a")}, "finite epoch seconds"),
        ({"before": (1.0, "\ud800")}, "invalid workflow id"),
        ({"created_after": 10**400}, "created_after must be finite"),
        ({"created_before": float("inf")}, "created_before must be finite"),
        ({"name": "a\x00"}, "NUL"),
        ({"name": "\ud800"}, "lone surrogate"),
        ({"id_prefix": "a\x00"}, "NUL"),
        ({"id_prefix": "\udc00"}, "lone surrogate"),
    ],
)
def test_list_workflows_refuses_bad_filters(
    app: durably.App, kwargs: dict[str, Any], words: str
) -> None:
    with pytest.raises(DurablyError, match=words):
        app.list_workflows(**kwargs)


def test_fork_refuses_out_of_range_steps(app: durably.App) -> None:
    with app:
        app.start("echo", 1, id="src").result(timeout=30)
    for from_step in (2**63, 10**23, -1, True):
        with pytest.raises(ConfigurationError, match="from_step must be a whole number"):
            app.fork("src", from_step=from_step)
    assert len(app.list_workflows()) == 1


def test_names_reasons_and_state_keys(app: durably.App) -> None:
    for name in ("\ud800", "a\x00", "n" * 201):
        with pytest.raises(ConfigurationError, match="workflow name"):
            app.start(name)
    handle = app.start("waits", id="to-stop")
    for reason in ("why \ud800", "why \x00", "w" * 10_001):
        with pytest.raises(ConfigurationError, match="reason"):
            app.terminate(handle.id, reason)
    app.terminate(handle.id, "why: ü 日本 😀")
    assert "why: ü 日本 😀" in str(app.handle(handle.id).info().error)
    every_read_works(app, handle.id)
