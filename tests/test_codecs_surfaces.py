"""What shows stored values (the CLI, ``durably server``) given an App's payload codecs shows the
plaintext; without them (or with the wrong key) it shows that a value is encoded, exits 0 and
never fails; no key ever appears in an output, an error or a log line."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import durably
from durably.cli import main
from durably.codecs import Compression, Encryption
from durably.server import create_app

from .marking import wait_until
from .ports import free_port
from .server.conftest import Server, server_command, server_env
from .test_codecs import K1, K2, assert_no_key
from .test_custom_serializer import FAST

SECRET = "PLANTED-surface-5e1d"
KEYS_ENV = "DURABLY_ENCRYPTION_KEYS"
MODULE = """
import durably
from durably.codecs import Compression, Encryption

def codecs():
    return [Compression(threshold=64), Encryption.from_env()]

app = durably.App({url!r}, codecs=codecs())
"""


def _keys(*pairs: tuple[str, bytes]) -> str:
    return ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in pairs)


@dataclass
class Written:
    url: str
    module: str  # the name of an importable module with ``app`` and ``codecs``
    folder: Path


@pytest.fixture
def written(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Written]:
    """A database with a finished and a failed workflow whose values an Encryption(k1) wrote."""
    app = durably.App(
        db_url, codecs=[Compression(threshold=64), Encryption(keys={"k1": K1})],
        worker_options=FAST,
    )  # fmt: skip

    @app.workflow(name="greet")
    async def greet(name: str) -> str:
        durably.set_state("stage", f"greeting {name}")
        return f"hello {name}"

    @app.workflow(name="boom")
    async def boom(name: str) -> None:
        raise ValueError(f"boom {name}")

    try:
        with app:
            assert app.start(greet, SECRET, id="g-1").result(timeout=60) == f"hello {SECRET}"
            app.start(boom, SECRET, id="b-1")
            wait_until(lambda: app.handle("b-1").status().value == "failed", "b-1 fails")
    finally:
        app.close()
    module = f"codecapp_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(MODULE.format(url=db_url))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.delenv("DURABLY_CODECS", raising=False)
    monkeypatch.delenv("DURABLY_SERVER", raising=False)
    yield Written(db_url, module, tmp_path)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert_no_key(out + err)
    return code, out + err


def test_the_cli_shows_plaintext_with_the_codecs_and_encoded_markers_without(
    written: Written, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEYS_ENV, _keys(("k1", K1)))
    db = ["--db", written.url]
    for given in (
        ["--codecs", f"{written.module}:codecs"],
        ["--app", f"{written.module}:app"],  # the App's database too: no --db needed
    ):
        where = given if given[0] == "--app" else [*given, *db]
        code, out = _cli(capsys, "show", "g-1", *where)
        assert code == 0 and f"hello {SECRET}" in out and f"greeting {SECRET}" in out, out
        code, out = _cli(capsys, "show", "b-1", "--json", *where)
        assert code == 0 and f"boom {SECRET}" in out
        code, out = _cli(capsys, "ls", "--json", *where)
        rows = {w["id"]: w for w in json.loads(out)}
        assert code == 0 and SECRET in rows["g-1"]["input_preview"]
    monkeypatch.setenv("DURABLY_CODECS", f"{written.module}:codecs")
    code, out = _cli(capsys, "show", "g-1", "--json", *db)
    assert code == 0 and json.loads(out)["workflow"]["output"] == f"hello {SECRET}"
    monkeypatch.delenv("DURABLY_CODECS")
    # without the codecs, and with another key: encoded, exit 0, no plaintext
    for given in ([], ["--codecs", f"{written.module}:codecs"]):
        monkeypatch.setenv(KEYS_ENV, _keys(("k2", K2)))
        code, out = _cli(capsys, "show", "g-1", *given, *db)
        assert code == 0 and SECRET not in out
        assert "output    <encoded: aes-gcm key k1, " in out and "bytes>" in out
        code, out = _cli(capsys, "history", "g-1", *given, *db)
        assert code == 0 and "<encoded: aes-gcm key k1" in out and SECRET not in out
        code, out = _cli(capsys, "show", "b-1", "--json", *given, *db)
        shown = json.loads(out)["workflow"]
        assert code == 0 and shown["error"]["type"] == "durably.Undecodable"
        message = shown["error"]["message"]
        assert ("aes-gcm key k1" in message or "key id 'k1'" in message) and SECRET not in out
        code, out = _cli(capsys, "ls", "--json", *given, *db)
        previews = [w["input_preview"] for w in json.loads(out)]
        assert code == 0 and all(p.startswith("<encoded: aes-gcm key k1") for p in previews)


def test_cli_codec_errors_are_clear_and_show_no_key(
    written: Written, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ["--db", written.url]
    short = K1[:20]
    monkeypatch.setenv(KEYS_ENV, _keys(("k1", short)))
    code, out = _cli(capsys, "show", "g-1", "--codecs", f"{written.module}:codecs", *db)
    assert code == 2 and "Encryption key 'k1' is 20 bytes long" in out
    assert_no_key(out, short)
    monkeypatch.setenv(KEYS_ENV, _keys(("k1", K1)))
    for spec, message in (
        (f"{written.module}:nothing", "has no 'nothing'"),
        ("no_such_module_xyz:codecs", "cannot import 'no_such_module_xyz'"),
        ("json:dumps", "calling dumps() raised TypeError"),
        ("json:decoder", "names a module: expected a durably.App, a payload codec"),
        ("nocolon", "expected MODULE:OBJ"),
    ):
        code, out = _cli(capsys, "show", "g-1", "--codecs", spec, *db)
        assert code == 2 and message in out, out
    code, out = _cli(capsys, "show", "g-1", "--app", "a:b", "--codecs", "c:d", *db)
    assert code == 2 and "not both" in out


def _read(app: durably.App) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://durably") as http:
            paths = {
                "one": "/v1/workflows/g-1", "history": "/v1/workflows/g-1/history",
                "state": "/v1/workflows/g-1/state", "result": "/v1/workflows/b-1/result",
                "list": "/v1/workflows", "dapr": "/v1.0/workflows/dapr/g-1",
            }  # fmt: skip
            out = {}
            for name, path in paths.items():
                r = await http.get(path)
                assert r.status_code == 200, (path, r.text)
                assert_no_key(r.text)
                out[name] = r.json()
            return out

    return asyncio.run(go())


def test_the_server_answers_plaintext_with_the_codecs_and_encoded_without(
    written: Written,
) -> None:
    keyed = durably.App(
        written.url, codecs=[Compression(threshold=64), Encryption(keys={"k1": K1})]
    )
    body = _read(keyed)  # create_app closes the App when it stops
    assert body["one"]["output"] == f"hello {SECRET}"
    assert body["state"]["state"]["stage"] == f"greeting {SECRET}"
    assert body["result"]["error"]["message"] == f"boom {SECRET}"
    assert SECRET in json.dumps(body["list"]) and SECRET in json.dumps(body["dapr"])
    for codecs in ([], [Encryption(keys={"k2": K2})]):
        body = _read(durably.App(written.url, codecs=codecs))
        assert SECRET not in json.dumps(body)
        reason = body["one"]["output"]["$undecodable"]["reason"]
        assert "aes-gcm key k1" in reason or "key id 'k1'" in reason
        assert body["result"]["error"]["type"] == "durably.Undecodable"
        assert body["list"]["workflows"][0]["input_preview"].startswith("<encoded: aes-gcm key k1")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the in-process test has both
def test_durably_server_takes_the_codecs_and_never_prints_a_key(
    written: Written, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEYS_ENV, _keys(("k1", K1)))
    for given, plain in (
        (["--codecs", f"{written.module}:codecs"], True),
        (["--app", f"{written.module}:app"], True),
        ([], False),
    ):
        log = tmp_path / "server.log"
        with log.open("wb") as stderr:
            server = _start(written.url, given, stderr)
            try:
                r = server.http.get("/v1/workflows/g-1")
                assert r.status_code == 200 and (SECRET in r.text) is plain, r.text
                assert_no_key(r.text)
            finally:
                server.stop()
        text = log.read_text()
        assert_no_key(text)
        assert ("payload codecs: Compression, Encryption" in text) is plain, text
    monkeypatch.setenv(KEYS_ENV, _keys(("k1", K1[:7])))
    proc = subprocess.run(
        [sys.executable, "-m", "durably.server", "--db", written.url,
         "--codecs", f"{written.module}:codecs"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "'k1' is 7 bytes long" in proc.stderr, proc.stderr
    assert_no_key(proc.stdout + proc.stderr, K1[:7])


def _start(url: str, given: list[str], stderr: Any) -> Server:
    """``durably server`` on a free port, its stderr to ``stderr``, once /healthz answers."""
    port = free_port()
    command = server_command(url, "--port", str(port), *given)
    proc = subprocess.Popen(command, env=server_env(), stderr=stderr)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        try:
            return httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, "the server answers /healthz")
    return Server(base, proc, None)


def test_the_readmes_codec_example_runs_and_the_cli_reads_it_with_the_key(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    (example,) = [b for b in blocks if "Encryption.from_env()]" in b]
    (tmp_path / "encrypted_app.py").write_text(example)
    env = {k: v for k, v in os.environ.items() if k not in ("DURABLY_DB", "DURABLY_CODECS")}
    env |= {KEYS_ENV: _keys(("k2", K2), ("k1", K1)), "PYTHONPATH": str(tmp_path)}
    ran = subprocess.run(
        [sys.executable, "encrypted_app.py"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0 and ran.stdout.strip() == "hello ada", ran.stderr
    stored = (tmp_path / "encrypted.db").read_bytes()
    assert b"hello ada" not in stored and b"$encoded:1:aes-gcm@k2:" in stored
    durably_cli = [sys.executable, "-m", "durably.cli", "show", "greet-ada"]
    with_app = subprocess.run(
        [*durably_cli, "--app", "encrypted_app:app"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert with_app.returncode == 0 and "output    hello ada" in with_app.stdout, with_app.stderr
    env.pop(KEYS_ENV)
    without = subprocess.run(
        [*durably_cli, "--db", "sqlite:///encrypted.db"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert without.returncode == 0, without.stderr
    assert "output    <encoded: aes-gcm key k2, " in without.stdout
    for out in (ran, with_app, without):
        assert_no_key(out.stdout + out.stderr)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_bench_takes_codecs_for_its_apps_and_its_workers(
    written: Written, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from durably.bench.report import render
    from durably.bench.workload import build

    monkeypatch.setenv(KEYS_ENV, _keys(("k1", K1[:5])))
    code, out = _cli(capsys, "bench", "--quick", "--codecs", f"{written.module}:codecs")
    assert code == 2 and "'k1' is 5 bytes long" in out  # refused before measuring anything
    assert_no_key(out, K1[:5])
    assert "DURABLY_CODECS" not in os.environ  # set for the bench's run only, then restored
    monkeypatch.setenv(KEYS_ENV, _keys(("k1", K1)))
    monkeypatch.setenv("DURABLY_CODECS", f"{written.module}:codecs")  # what --codecs sets
    app = build(written.url)  # what the bench process and its `durably worker`s serve
    try:
        assert [type(c).__name__ for c in app.codecs] == ["Compression", "Encryption"]
    finally:
        app.close()
    machine = {
        "durably": "0", "date": "d", "python": "3", "cpus": 2, "sqlite": "3", "db_dir": "/tmp",
        "filesystem": "ext4", "durability": "full", "backend": "sqlite",
        "codecs": f"{written.module}:codecs",
    }  # fmt: skip
    floors = {
        "floor_commit": {"commits": 10, "commit_ms": 1.0, "commits_per_s": 1000.0},
        "floor_batch": {"batches": 1, "rows_per_batch": 100, "rows_per_s": 2e4, "batch_ms": 5.0},
    }
    report = render({"machine": machine, "figures": floors})
    assert f"Payload codecs: {written.module}:codecs" in report
