"""Bearer tokens: one rule (visible ASCII, checked where a token is given) so that the server,
the durably Client, the CLI and any other HTTP client agree on its bytes; a token that breaks it
is refused at startup (exit 2) with a message that never shows it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import durably
from durably.remote import AuthenticationError

from .conftest import Server, server_command, server_env, start_server

# every visible ASCII character but a few, in one token
PUNCTUATED = "t0k-!\"#$%&'()*+,./:;<=>?@[\\]^_`{|}~Z"
BAD = {
    "non-ASCII": ("pässwort", "a non-ASCII character at position 2"),
    "euro": ("€uro-token", "a non-ASCII character at position 1"),
    "leading space": (" tok-en", "a space at position 1"),
    "trailing space": ("tok-en ", "a space at position 7"),
    "inner space": ("tok en", "a space at position 4"),
    "tab": ("tok\ten", "a whitespace character at position 4"),
    "control": ("tok\x01en", "a control character at position 4"),
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('tokens')}/tokens.db"
    app = durably.App(url)
    _ = app.store  # creates and migrates the file (the server refuses a missing one)
    app.close()
    return url


@pytest.fixture(scope="module")
def punctuated(db: str) -> Iterator[Server]:
    s = start_server(db, PUNCTUATED)
    yield s
    s.stop()


@pytest.mark.parametrize("case", sorted(BAD))
def test_server_refuses_a_bad_token_at_startup_without_showing_it(db: str, case: str) -> None:
    token, why = BAD[case]
    done = subprocess.run(server_command(db, "--token", token, "--port", "1"), env=server_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"--token has {why}" in done.stderr and "visible ASCII" in done.stderr
    assert token.strip() not in done.stderr and "Traceback" not in done.stderr


def test_server_refuses_a_bad_token_from_the_environment(db: str) -> None:
    env = {**server_env(), "DURABLY_TOKEN": "pässwort"}
    done = subprocess.run(server_command(db, "--port", "1"), env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "$DURABLY_TOKEN has a non-ASCII character" in done.stderr
    assert "pässwort" not in done.stderr


def test_a_punctuated_token_works_from_every_client(punctuated: Server, tmp_path: Path) -> None:
    url = punctuated.url
    # raw bytes on the wire, as curl sends them
    raw = {"Authorization": b"Bearer " + PUNCTUATED.encode("utf-8")}
    assert httpx.get(f"{url}/v1/workflows", headers=raw).status_code == 200
    assert httpx.get(f"{url}/v1/workflows", headers={"dapr-api-token": PUNCTUATED}).is_success
    wrong = {"Authorization": "Bearer pässwort".encode()}
    assert httpx.get(f"{url}/v1/workflows", headers=wrong).status_code == 401
    with durably.Client(url, token=PUNCTUATED) as client:
        assert client.list_workflows() == []
    with durably.Client(url, token=PUNCTUATED[:-1]) as client, pytest.raises(AuthenticationError):
        client.list_workflows()
    env = {k: v for k, v in server_env().items() if k != "DURABLY_SERVER"}
    command = [sys.executable, "-m", "durably.cli", "ls", "--server", url, "--json"]
    done = subprocess.run([*command, "--token", PUNCTUATED], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
    from_env = subprocess.run(command, env={**env, "DURABLY_TOKEN": PUNCTUATED},
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert from_env.returncode == 0 and from_env.stdout.strip() == "[]", from_env.stderr


@pytest.mark.parametrize("case", ["non-ASCII", "euro", "leading space", "control"])
def test_client_and_cli_refuse_a_bad_token_clearly(
    punctuated: Server, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    token, why = BAD[case]
    with pytest.raises(durably.ConfigurationError) as info:
        durably.Client(punctuated.url, token=token)
    assert why in str(info.value) and token.strip() not in str(info.value)
    assert token.strip() not in repr(info.value)
    monkeypatch.setenv("DURABLY_TOKEN", token)
    with pytest.raises(durably.ConfigurationError, match="visible ASCII"):
        durably.Client(punctuated.url)
    monkeypatch.delenv("DURABLY_TOKEN")
    env = {k: v for k, v in server_env().items() if k != "DURABLY_SERVER"}
    done = subprocess.run(
        [sys.executable, "-m", "durably.cli", "ls", "--server", punctuated.url, "--token", token],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert why in done.stderr and "Traceback" not in done.stderr
    assert token.strip() not in done.stderr


def test_create_app_refuses_a_bad_token(db: str) -> None:
    from durably.server import create_app

    for token, why in BAD.values():
        with pytest.raises(durably.ConfigurationError, match=why):
            create_app(db, token=token)
