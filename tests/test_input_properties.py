"""Property-based tests of every input, on both backends (issue 12: "make this class of bug
impossible"): arbitrary text (lone surrogates, NUL, huge), numbers (huge integers, NaN,
infinities) and nested JSON fed to the Python API, the CLI (in process, through its ``main``)
and every HTTP and Dapr route (in process, through the ASGI app). Nothing may answer 500, raise
anything but a durably error, or print a traceback; and after any accepted input every read of
that workflow and every list keeps working."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import durably
from durably.cli import main
from durably.errors import DurablyError
from durably.server import create_app

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- strategies ----------------------------------------------------------------------------------

SPECIAL_TEXT = [
    "\ud800", "a\udfffb", "\x00", "a\x00b", "a/b", ".", "..", "²", "١٢", "\uff11\uff12", "-1",
    "x" * 201, "k" * 513, "y" * 5000, "é" * 300, "go", "echo", "waiter", " ", "", "%2F", "a b",
]  # fmt: skip
ANY_CHAR = st.characters(exclude_categories=())  # surrogates and control characters included
TEXT = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(ANY_CHAR, max_size=30),
    st.text(string.ascii_letters + string.digits + "_-.:", min_size=1, max_size=12),
)
HUGE_INTS = st.sampled_from([2**31, 2**63, -(2**63), 10**23, 10**30, 10**400, -(10**400)])
NUMBER = st.one_of(
    st.integers(), HUGE_INTS, st.floats(allow_nan=True, allow_infinity=True), st.booleans()
)


def nest(value: Any, depth: int) -> Any:
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT, HUGE_INTS)
JSON_VALUE = st.one_of(
    st.recursive(SCALAR, lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3)),
    st.builds(nest, SCALAR, st.integers(0, 1200)),
)
IDS = st.one_of(TEXT, st.text(string.ascii_lowercase, min_size=1, max_size=8))


def as_json(value: Any) -> bytes:
    """``value`` as JSON bytes, lone surrogates \\u-escaped and any depth (no recursion)."""
    try:
        return json.dumps(value, ensure_ascii=True).encode()
    except (RecursionError, ValueError):
        return b"[" * 3000 + b"1" + b"]" * 3000


def segment(text: str) -> str:
    """``text`` percent-encoded (a lone surrogate as its would-be UTF-8 bytes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def query(**params: str) -> str:
    return "?" + "&".join(f"{k}={segment(v)}" for k, v in params.items())


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def app(db_url: str) -> Iterator[durably.App]:
    """A worker on the test's database serving ``echo`` (returns its call) and ``waiter``."""
    app = durably.App(db_url, worker_options=FAST)

    @app.workflow(name="echo")
    async def echo(*args: Any, **kwargs: Any) -> Any:
        return [list(args), kwargs]

    @app.workflow(name="waiter")
    async def waiter() -> Any:
        return await durably.wait_event("go", timeout=3600)

    with app:
        app.start(waiter, id="w-1")
        app.start(echo, 1, id="done-1").result(timeout=30)
        yield app


def reads_work(app: durably.App, wid: str) -> None:
    """Every read of ``wid`` and every list works, and their values can be sent as UTF-8."""
    handle = app.handle(wid)
    info = handle.info()
    utf8([info.input, info.output, info.error])
    utf8([entry.result for entry in handle.history()])
    utf8(handle.states())
    handle.runs()
    handle.children()
    utf8([(w.input, w.output, w.error) for w in app.list_workflows(limit=1000)])


def utf8(value: Any) -> None:
    """``value`` can be sent as UTF-8 JSON (a lone surrogate cannot)."""
    json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")


# -- the Python API ------------------------------------------------------------------------------


def test_app_start_accepts_only_what_runs_and_reads_back(app: durably.App) -> None:
    @SETTINGS
    @given(st.lists(JSON_VALUE, max_size=3), st.dictionaries(TEXT, JSON_VALUE, max_size=2), IDS)
    def start(args: list[Any], kwargs: dict[str, Any], wid: str) -> None:
        kwargs.pop("id", None)
        before = len(app.store.list_workflows(limit=100_000))
        try:
            handle = app.start("echo", *args, id=wid, **kwargs)
        except DurablyError:
            assert len(app.store.list_workflows(limit=100_000)) == before  # nothing written
            seen.add("refused")
            return
        seen.add("accepted")
        try:
            handle.result(timeout=30)
        except durably.WorkflowFailedError as exc:  # only a value its own output cannot hold
            assert "result of workflow 'echo'" in str(exc), exc
        reads_work(app, handle.id)

    seen: set[str] = set()
    start()
    assert seen == {"accepted", "refused"}


def test_app_events_filters_and_forks_never_fail_unclearly(app: durably.App) -> None:
    @SETTINGS
    @given(TEXT, JSON_VALUE, st.one_of(st.none(), TEXT), NUMBER, TEXT, TEXT, NUMBER, NUMBER, IDS)
    def poke(
        name: str, payload: Any, dedup: str | None, limit: Any, name_filter: str, prefix: str,
        when: Any, step: Any, wid: str,
    ) -> None:  # fmt: skip
        calls = [
            lambda: app.send_event("w-1", name, payload, dedup_key=dedup),
            lambda: app.send_event("w-1", "other", payload),
            lambda: app.list_workflows(limit=limit),
            lambda: app.list_workflows(name=name_filter, id_prefix=prefix),
            lambda: app.list_workflows(created_after=when, created_before=when),
            lambda: app.list_workflows(before=(when, wid)),
            lambda: app.fork("done-1", from_step=step, new_id=None),
            lambda: app.handle(wid).info(),
            lambda: app.terminate(wid, name),
        ]
        for call in calls:
            with contextlib.suppress(DurablyError):
                call()
        reads_work(app, "w-1")

    poke()


# -- the HTTP API and the Dapr routes --------------------------------------------------------------


def test_no_route_answers_500_and_reads_keep_working(app: durably.App) -> None:
    web = create_app(durably.App(app.database_url))
    transport = httpx.ASGITransport(app=web)  # an exception the app lets out fails the test
    client = httpx.AsyncClient(transport=transport, base_url="http://durably.test")
    loop = asyncio.new_event_loop()

    statuses: set[int] = set()

    def ok(method: str, url: str, **kw: Any) -> Any:
        r = loop.run_until_complete(client.request(method, url, **kw))
        assert r.status_code < 500, (method, url, r.status_code, r.text)
        statuses.add(r.status_code)
        return r

    def all_reads(wid: str) -> None:
        for path in ("", "/result", "/history", "/state", "/runs", "/children"):
            assert ok("GET", f"/v1/workflows/{wid}{path}").status_code in (200, 202)
        assert ok("GET", f"/v1.0/workflows/dapr/{wid}").status_code in (200, 400)
        assert ok("GET", "/v1/workflows?limit=1000").status_code == 200

    text_json = {"Content-Type": "text/plain"}

    @SETTINGS
    @given(JSON_VALUE, TEXT, TEXT, st.one_of(NUMBER, TEXT), IDS)
    def hit(value: Any, name: str, text: str, number: Any, wid: str) -> None:
        body = as_json(value)
        bodies = [
            as_json({"name": "echo", "args": [value], "id": wid}),
            as_json({"name": name, "kwargs": {"k": value}}),
            as_json({"name": "echo", "priority": number, "queue": text}),
        ]
        for raw in bodies:
            r = ok(
                "POST", "/v1/workflows", content=raw, headers={"Content-Type": "application/json"}
            )
            if r.status_code in (200, 202):
                all_reads(r.json()["id"])
        ok("GET", f"/v1/workflows/{segment(wid)}")
        ok("GET", "/v1/workflows" + query(limit=str(number), name=text, id_prefix=name))
        ok("GET", "/v1/workflows" + query(created_after=str(number), cursor=text))
        ok("GET", "/v1/workflows" + query(created_before=text, status=name))
        ok("GET", "/v1/workflows/done-1/result" + query(wait=str(number)))
        event = as_json({"data": value, "dedup_key": text if len(text) % 2 else None})
        ok("POST", f"/v1/workflows/w-1/events/{segment(name)}", content=event)
        ok("POST", "/v1/workflows/done-1/fork", content=as_json({"from_step": number}))
        ok("POST", "/v1/workflows/nope-1/terminate", content=as_json({"reason": value}))
        ok("POST", f"/v1/workflows/{segment(wid)}/suspend", content=body)
        for prefix in ("/v1.0", "/v1.0-beta1"):
            for headers in (text_json, {}):
                start = f"{prefix}/workflows/dapr/echo/start?instanceID={segment(wid)}"
                r = ok("POST", start, content=body, headers=headers)
                if r.status_code == 202:
                    all_reads(r.json()["instanceID"])
                ok("POST", f"{prefix}/workflows/dapr/w-1/raiseEvent/{segment(name)}",
                   content=body, headers=headers)  # fmt: skip
        all_reads("w-1")

    try:
        hit()
        assert {200, 202, 400, 404} <= statuses
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
        web.state.durably.close()


# -- the CLI ---------------------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return code, err.getvalue()


def test_cli_never_prints_a_traceback(app: durably.App) -> None:
    db = ("--db", app.database_url)

    @settings(SETTINGS, max_examples=30)  # eleven commands an example
    @given(JSON_VALUE, TEXT, TEXT, st.one_of(NUMBER, TEXT), IDS)
    def run(value: Any, name: str, text: str, number: Any, wid: str) -> None:
        data = as_json(value).decode()
        commands = [
            ("start", "echo", "--input", data, "--id", wid),
            ("start", name, "--input", text),
            ("send", "w-1", name, "--data", data, "--dedup-key", text),
            ("ls", "--limit", str(number), "--name", text, "--id-prefix", name, "--json"),
            ("ls", "--since", str(number), "--until", text),
            ("fork", "done-1", "--from-step", str(number), "--new-id", wid),
            ("show", wid, "--json"),
            ("terminate", wid, "--reason", text),
        ]
        for argv in commands:
            code, err = run_cli(*argv, *db)
            codes.add(code)
            assert code in (0, 2, 3, 4), (argv, code, err)
            assert "Traceback" not in err, (argv, err)
            if code:
                assert err.strip(), argv
        for argv in (("show", "w-1", "--json"), ("ls", "--json"), ("history", "w-1")):
            assert run_cli(*argv, *db) == (0, "")

    codes: set[int] = set()
    run()
    assert {0, 2, 3} <= codes
