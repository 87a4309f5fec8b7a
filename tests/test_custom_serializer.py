"""A custom serializer sees every value durably stores, and readers without it do not crash.

The serializers (tests/marking.py) mark what they write; after workflows that store every kind of
payload (inputs, keyword arguments, outputs, step results and errors, failed attempts, events,
published state, child inputs, results and failures, timers, recorded now/random/uuid,
continue-as-new, fork, terminate), every non-null value of every payload column of every table
must carry the mark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

import durably
from durably.codec import Codec, _JsonCodec, codec_for

from .marking import (
    MARK,
    OTHER_TEXT_COLUMNS,
    PAYLOAD_COLUMNS,
    SERIALIZERS,
    WHEN,
    Item,
    PickleMarker,
    ReversedJson,
    payloads,
    register,
    text_columns,
    wait_until,
)

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)
DURABLY = [sys.executable, "-m", "durably.cli"]


def _plain(value: Any) -> Any:
    return asdict(value) if isinstance(value, Item) else value


def _idle_is_waiting(app: durably.App) -> bool:
    try:
        entries = app.handle("hold:0").history()
    except durably.WorkflowNotFoundError:
        return False
    return any(e.kind == "event" and e.status == "waiting" for e in entries)


def _exercise(app: durably.App, wfs: dict[str, Any]) -> None:
    """Store every kind of payload through ``app`` (its worker running)."""
    handle = app.start(wfs["main"], Item("ada", 2), when=WHEN, id="main-1")
    app.send_event("main-1", "go", {"by": 3})
    result = handle.result(timeout=60)
    assert _plain(result["grown"]) == {"name": "ada!", "qty": 7}
    assert result["when"] == WHEN
    assert result["stamped"] is True and result["chance"] is True and result["token"] == 4
    assert [_plain_input(r.input) for r in handle.runs()] == [
        {"args": [{"name": "ada", "qty": 2}], "kwargs": {"when": WHEN}}
    ]
    state = handle.state("progress")
    assert _plain(state["doubled"]) == {"name": "ada", "qty": 4} and state["when"] == WHEN
    steps = {e.name: e for e in handle.history() if e.kind == "step"}
    assert steps["boom"].status == "failed" and steps["boom"].error["message"] == "step failure"
    assert steps["flaky"].failed_attempts[0]["error"]["message"] == "the first attempt fails"
    fork = app.fork("main-1", from_step=1, new_id="main-fork")
    app.send_event("main-fork", "go", {"by": 1})
    assert _plain(fork.result(timeout=60)["grown"]) == {"name": "ada!", "qty": 5}
    app.start(wfs["holder"], id="hold")
    wait_until(lambda: _idle_is_waiting(app), "the idle child waits for its event")
    with pytest.raises(durably.WorkflowFailedError, match="top-level failure"):
        app.start(wfs["broken"], "top-level failure", id="broken-1").result(timeout=60)


def _plain_input(value: Any) -> Any:
    return {"args": [_plain(a) for a in value["args"]], "kwargs": value["kwargs"]}


def _assert_all_marked(app: durably.App) -> set[tuple[str, str]]:
    found = payloads(app)
    bare = [(where, kind, text[:60]) for where, kind, text in found if not text.startswith(MARK)]
    assert not bare, f"payloads that bypassed the serializer: {bare}"
    return {(where, kind) for where, kind, _ in found}


@pytest.mark.parametrize("kind", sorted(SERIALIZERS))
def test_every_stored_value_goes_through_the_custom_serializer(db_url: str, kind: str) -> None:
    app = durably.App(db_url, serializer=SERIALIZERS[kind](), worker_options=FAST)
    try:
        wfs = register(app)
        with app:
            _exercise(app, wfs)
            seen = _assert_all_marked(app)  # with a child waiting on its parent, an event wait
            app.terminate("hold", "stopped by the test")
            seen |= _assert_all_marked(app)
        # every kind of payload was there to check (the test cannot pass on an empty database)
        assert {
            ("workflows.input", "input"), ("workflows.output", "output"),
            ("workflows.error", "error"), ("step_attempts.error", "error"),
            ("events.payload", "payload"), ("state.value", "value"),
            ("workflow_runs.input", "input"),
            ("journal.result", "now"), ("journal.result", "random"), ("journal.result", "uuid"),
            ("journal.result", "sleep"), ("journal.result", "step"), ("journal.result", "event"),
            ("journal.result", "state"), ("journal.result", "child"),
            ("journal.error", "step"), ("journal.error", "child"),
        } <= seen  # fmt: skip
        assert app.handle("hold").info().error == {
            "type": "Terminated", "code": "terminated", "message": "stopped by the test"
        }  # fmt: skip
        # no payload column is left unchecked
        assert text_columns(app) == PAYLOAD_COLUMNS | OTHER_TEXT_COLUMNS
    finally:
        app.close()


# -- the interface -----------------------------------------------------------------------------


class EncodeOnlyValue:
    """The smallest serializer: ``encode(value)`` with no keywords, and ``decode``."""

    def encode(self, value: Any) -> str:
        return MARK + json.dumps(value)

    def decode(self, data: str, type_hint: Any = Any) -> Any:
        return json.loads(data.removeprefix(MARK))


def test_a_protocol_serializer_without_durablys_extras_runs_workflows(tmp_path: Any) -> None:
    app = durably.App(
        f"sqlite:///{tmp_path}/p.db", serializer=EncodeOnlyValue(), worker_options=FAST
    )

    @app.workflow
    async def add(a: int, b: int) -> int:
        return a + b

    with app:
        assert app.start(add, 2, b=3).result(timeout=30) == 5
    assert all(text.startswith(MARK) for _, _, text in payloads(app))
    app.close()


def test_the_fast_path_is_kept_only_for_an_unmodified_json_serializer() -> None:
    class Tuned(durably.JsonSerializer):
        """A subclass that overrides nothing durably calls."""

    class CallOnly(durably.JsonSerializer):
        def encode_call(self, *args: Any, **kwargs: Any) -> str:
            raise AssertionError("not part of the protocol: never called")

    patched = durably.JsonSerializer()
    patched.encode = lambda value, **context: MARK + json.dumps(value)  # type: ignore[method-assign]
    assert type(codec_for()) is _JsonCodec
    assert type(codec_for(durably.JsonSerializer(10))) is _JsonCodec
    assert type(codec_for(Tuned())) is _JsonCodec
    for serializer in (ReversedJson(), PickleMarker(), CallOnly(), patched):
        assert type(codec_for(serializer)) is Codec
    assert codec_for(patched).encode([1]) == MARK + "[1]"


def test_a_serializer_without_encode_or_decode_is_refused_at_app_creation() -> None:
    class Half:
        def encode(self, value: Any) -> str:
            return str(value)

    with pytest.raises(durably.ConfigurationError, match="no decode method"):
        durably.App("sqlite:///unused.db", serializer=Half())  # type: ignore[arg-type]


def test_serializer_failures_name_the_value_and_the_workflow() -> None:
    class Picky:
        def encode(self, value: Any, **context: Any) -> str:
            if isinstance(value, float):
                raise TypeError("no floats here")
            return json.dumps(value)

        def decode(self, data: str, type_hint: Any = Any) -> Any:
            raise KeyError("broken")

    codec = codec_for(Picky())
    with pytest.raises(durably.SerializationError) as err:
        codec.encode_call((1, 2.5), {}, workflow_id="wf-1", name="pay")
    assert "argument 2 of workflow 'pay'" in str(err.value) and "no floats here" in str(err.value)
    assert err.value.workflow_id == "wf-1"
    with pytest.raises(durably.SerializationError, match=r"Picky\.decode raised KeyError"):
        codec.decode("[]")
    assert isinstance(codec.view("[]"), durably.Undecodable)


def test_the_size_limit_applies_to_a_custom_serializers_output() -> None:
    codec = codec_for(PickleMarker(), max_payload_bytes=100)
    with pytest.raises(durably.PayloadTooLargeError, match="over the limit of 100 bytes"):
        codec.encode("x" * 200, what="result of step 's'")


# -- readers without the serializer ------------------------------------------------------------


@pytest.fixture
def written(db_url: str) -> str:
    """A database whose values a PickleMarker app wrote (workflows done and one waiting)."""
    app = durably.App(db_url, serializer=PickleMarker(), worker_options=FAST)
    wfs = register(app)
    try:
        with app:
            _exercise(app, wfs)
    finally:
        app.close()
    return db_url


def _cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DURABLY, *args, "--db", db], capture_output=True, text=True, timeout=120
    )


def test_the_cli_shows_what_it_cannot_decode_without_crashing(written: str) -> None:
    show = _cli(written, "show", "main-1")
    assert show.returncode == 0, show.stderr
    assert "Traceback" not in show.stderr + show.stdout
    assert "cannot decode (written by another serializer?); stored text: MARK:" in show.stdout
    history = _cli(written, "history", "main-1")
    assert history.returncode == 0 and "Traceback" not in history.stderr, history.stderr
    listed = _cli(written, "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {w["id"]: w for w in json.loads(listed.stdout)}
    assert rows["main-1"]["summary"] is True  # lists carry previews of the stored text
    assert rows["main-1"]["input_preview"].startswith(MARK)
    shown = json.loads(_cli(written, "show", "main-1", "--json").stdout)
    assert shown["workflow"]["output"]["$undecodable"]["text"].startswith(MARK)
    assert shown["state"]["progress"]["$undecodable"]["text"].startswith(MARK)


def test_an_app_without_the_serializer_reads_undecodable_values(written: str) -> None:
    plain = durably.App(written)
    try:
        info = plain.handle("main-1").info()
        assert isinstance(info.input, durably.Undecodable) and info.input.text.startswith(MARK)
        assert isinstance(info.output, durably.Undecodable)
        assert "cannot decode" in str(info.output)
        assert all(
            isinstance(v, durably.Undecodable) for v in plain.handle("main-1").states().values()
        )
        failed = plain.handle("broken-1").info().error
        assert failed is not None and failed["type"] == "durably.Undecodable"
        with pytest.raises(durably.SerializationError):
            plain.handle("main-1").result(timeout=5)
    finally:
        plain.close()


def test_the_readmes_serializer_example_runs_and_stores_through_it(tmp_path: Any) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    (example,) = [b for b in blocks if "class Compressed(durably.JsonSerializer)" in b]
    (tmp_path / "compressed_app.py").write_text(example)
    env = {k: v for k, v in os.environ.items() if k != "DURABLY_DB"}
    run = subprocess.run(
        [sys.executable, "compressed_app.py"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "hello ada"
    app = durably.App(f"sqlite:///{tmp_path}/compressed.db")
    try:
        stored = [text for _, _, text in payloads(app)]
        assert stored and all(text.startswith("z:") for text in stored)
    finally:
        app.close()
