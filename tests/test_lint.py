"""The determinism lint (``durably lint``, src/durably/lint.py): every code found at its line,
import aliases, ignore comments, what counts as workflow code, and the command's exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from durably.lint import RULES, Finding, LintError, lint_paths, lint_source

ROOT = Path(__file__).resolve().parent.parent
DURABLY = Path(sys.executable).parent / "durably"


def found(body: str, header: str = "") -> list[tuple[int, str]]:
    """(line, code) of each finding in a workflow whose body is ``body`` (the body's first line
    is line 5 plus the header's lines)."""
    source = (
        textwrap.dedent(header)
        + "import durably\napp = durably.App('sqlite:///x.db')\n@app.workflow\nasync def wf():\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return [(f.line, f.code) for f in lint_source(source)]


# one bad call of each kind (on the body's second line)
ONE_OF_EACH = [
    ("import time\n", "time.time()", "DUR101"),
    ("import time\n", "time.monotonic_ns()", "DUR101"),
    ("import time\n", "time.perf_counter()", "DUR101"),
    ("import datetime\n", "datetime.datetime.now()", "DUR101"),
    ("import datetime\n", "datetime.datetime.utcnow()", "DUR101"),
    ("import datetime\n", "datetime.date.today()", "DUR101"),
    ("import random\n", "random.randint(1, 6)", "DUR102"),
    ("import random\n", "random.Random()", "DUR102"),
    ("import secrets\n", "secrets.token_hex()", "DUR102"),
    ("import uuid\n", "uuid.uuid4()", "DUR103"),
    ("import uuid\n", "uuid.uuid1()", "DUR103"),
    ("import os\n", "os.urandom(8)", "DUR104"),
    ("import asyncio\n", "await asyncio.sleep(1)", "DUR105"),
    ("import time\n", "time.sleep(1)", "DUR105"),
    ("", "open('f.txt').read()", "DUR106"),
    ("import requests\n", "requests.get('http://x')", "DUR107"),
    ("import httpx\n", "httpx.post('http://x')", "DUR107"),
    ("import urllib.request\n", "urllib.request.urlopen('http://x')", "DUR107"),
    ("import socket\n", "socket.create_connection(('x', 80))", "DUR107"),
    ("import subprocess\n", "subprocess.run(['ls'])", "DUR108"),
    ("import threading\n", "threading.Thread(target=print).start()", "DUR109"),
    ("import concurrent.futures\n", "concurrent.futures.ThreadPoolExecutor()", "DUR109"),
    ("", "for x in {'a', 'b'}:\n    pass", "DUR110"),
    ("", "for x in set(range(3)):\n    pass", "DUR110"),
    ("", "ys = [y for y in {c for c in 'abc'}]", "DUR110"),
]


@pytest.mark.parametrize(("header", "call", "code"), ONE_OF_EACH)
def test_each_bad_call_is_found_with_its_code_and_line(header: str, call: str, code: str) -> None:
    body = f"x = 1\n{call}\n"
    assert found(body, header) == [(6 + header.count("\n"), code)]


def test_every_code_is_covered_and_documented() -> None:
    assert {code for _, _, code in ONE_OF_EACH} == set(RULES)
    readme = (ROOT / "README.md").read_text()
    for code, rule in RULES.items():
        assert f"`{code}`" in readme, code
        assert rule.suggestion.startswith(("use", "move", "iterate"))


def test_a_finding_names_the_file_line_column_and_what_to_use() -> None:
    source = "import time\n@app.workflow()\ndef wf():\n    return  time.time()\n"
    (finding,) = lint_source(source, "flows.py")
    assert finding == Finding(
        "flows.py", 4, 13, "DUR101", RULES["DUR101"].message, "use durably.now()"
    )
    assert str(finding) == (f"flows.py:4:13: DUR101 {RULES['DUR101'].message} (use durably.now())")


@pytest.mark.parametrize(
    ("header", "call"),
    [
        ("import time as t\n", "t.time()"),
        ("from time import time\n", "time()"),
        ("from time import monotonic as clock\n", "clock()"),
        ("from datetime import datetime\n", "datetime.now()"),
        ("from datetime import date\n", "date.today()"),
        ("import datetime as dt\n", "dt.datetime.now()"),
        ("from datetime import datetime as DT\n", "DT.utcnow()"),
    ],
)
def test_import_aliases_are_resolved(header: str, call: str) -> None:
    assert found(f"{call}\n", header) == [(5 + header.count("\n"), "DUR101")]


def test_durably_functions_and_other_modules_names_are_not_flagged() -> None:
    header = """\
        from durably import now, random, uuid4, sleep
        import random as stdlib_random
        import uuid
        from urllib.parse import quote
        """
    body = """\
        when = durably.now()
        n = durably.random() + random()
        key = durably.uuid4() or uuid4() or uuid.uuid5(uuid.NAMESPACE_URL, "x")
        await durably.sleep(1)
        await sleep(1)
        rng = stdlib_random.Random(42)  # seeded: replays the same values
        url = quote("a b")
        for x in sorted({"a", "b"}):
            pass
        for x in [1, 2]:
            pass
        ys = {c for c in "abc"}
        """
    assert found(body, header) == []


def test_a_module_level_import_wins_over_one_in_a_function() -> None:
    source = textwrap.dedent(
        """\
        from durably import sleep_sync as sleep

        @app.step
        def wait():
            from time import sleep
            sleep(1)

        @app.workflow
        def wf():
            sleep(1)
        """
    )
    assert lint_source(source) == []


def test_ignore_comments_silence_their_line_only() -> None:
    body = """\
        a = time.time()  # durably: ignore[DUR101]
        b = time.time()  # durably: ignore
        c = time.time()  # durably: ignore[DUR102, DUR105]
        d = time.time()  # durably:ignore[dur110,DUR101]
        e = time.time()
        f = "# durably: ignore" + str(time.time())
        """
    assert found(body, "import time\n") == [(8, "DUR101"), (10, "DUR101"), (11, "DUR101")]


def test_steps_and_plain_functions_are_not_checked_nested_functions_are() -> None:
    source = textwrap.dedent(
        """\
        import time, random
        import durably

        app = durably.App("sqlite:///x.db")

        @app.step(retry=None)
        def fetch():
            return time.time()

        def helper():
            return random.random()

        @app.workflow(name="w")
        def wf():
            def inner():
                return time.time()

            @app.step
            def nested_step():
                return random.random()

            key = lambda: random.random()
            return inner(), key, nested_step

        class Flows:
            @staticmethod
            @billing.app.workflow
            async def other():
                return time.perf_counter()
        """
    )
    findings = [(f.line, f.code) for f in lint_source(source)]
    assert findings == [(16, "DUR101"), (22, "DUR102"), (29, "DUR101")]


def test_a_variable_holding_a_set_is_flagged_when_iterated() -> None:
    body = """\
        pending = set()
        pending.add("a")
        for item in pending:
            pass
        seen: set[str] = {"b"}
        seen |= {"c"}
        total = [s for s in seen | pending]
        names = set()
        names = sorted(names)
        for name in names:
            pass
        def inner():
            for item in pending:
                pass
        """
    assert found(body) == [(7, "DUR110"), (11, "DUR110"), (17, "DUR110")]


def test_a_syntax_error_names_the_file_and_line() -> None:
    with pytest.raises(LintError, match=r"^bad\.py:2:5: syntax error"):
        lint_source("x = 1\ndef (:\n", "bad.py")


def test_an_unreadable_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes(b'x = "\xff"\n')  # not UTF-8, no coding declaration
    with pytest.raises(LintError, match=r"latin\.py: cannot read it"):
        lint_paths([str(tmp_path)])


def test_the_examples_and_the_test_apps_are_clean() -> None:
    findings, count = lint_paths([str(ROOT / "examples")])
    assert count >= 9
    assert findings == []
    findings, _ = lint_paths([str(ROOT / "tests")])
    # the one deliberate case: a workflow that must still be running when its result is awaited
    assert [(Path(f.path).name, f.code) for f in findings] == [("test_results.py", "DUR105")]


def durably(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DURABLY), "lint", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_the_command_exits_0_1_or_2(tmp_path: Path) -> None:
    package = tmp_path / "app"
    (package / "__pycache__").mkdir(parents=True)
    (tmp_path / ".venv").mkdir()
    (package / "good.py").write_text("@app.workflow\ndef ok():\n    return 1\n")
    bad = "import uuid\n@app.workflow\ndef ko():\n    return uuid.uuid4()\n"
    (package / "__pycache__" / "bad.py").write_text(bad)
    (tmp_path / ".venv" / "bad.py").write_text(bad)
    clean = durably(".", cwd=tmp_path)
    assert (clean.returncode, clean.stdout) == (0, "no findings, 1 file checked\n")

    (package / "flows.py").write_text(bad)
    dirty = durably("app", "app/flows.py", cwd=tmp_path)  # a file given twice is read once
    assert dirty.returncode == 1
    assert dirty.stdout.splitlines() == [
        f"app/flows.py:4:12: DUR103 {RULES['DUR103'].message} (use durably.uuid4())",
        "1 finding(s) in 1 file(s), 2 files checked",
    ]

    as_json = durably("--json", "app/flows.py", "app/good.py", cwd=tmp_path)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == [
        {
            "path": "app/flows.py",
            "line": 4,
            "col": 12,
            "code": "DUR103",
            "message": RULES["DUR103"].message,
            "suggestion": "use durably.uuid4()",
        }
    ]
    assert json.loads(durably("--json", "app/good.py", cwd=tmp_path).stdout) == []

    missing = durably("app", "nowhere.py", cwd=tmp_path)
    assert missing.returncode == 2
    assert "nowhere.py: no such file or directory" in missing.stderr

    (package / "broken.py").write_text("@app.workflow\ndef wf(:\n")
    broken = durably("app", cwd=tmp_path)
    assert broken.returncode == 2
    assert "app/broken.py:2:8: syntax error" in broken.stderr

    usage = durably(cwd=tmp_path)
    assert usage.returncode == 2
