"""Payload codecs (durably.codecs): every stored value goes through the App's chain, encrypted
values hold no plaintext at rest, keys rotate, plain and encoded values live side by side, and
the payload size limit holds before and after the codecs."""

from __future__ import annotations

import base64
import importlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

import durably
from durably.codec import codec_for
from durably.codecs import MARKER, CodecChain, Compression, Encryption, describe
from durably.storage import sqlite_path

from .marking import _query, payloads, register, text_columns, wait_until
from .test_custom_serializer import FAST, _exercise

K1 = bytes(range(32))
K2 = bytes(range(100, 132))


def _encryption(**extra: Any) -> Encryption:
    return Encryption(keys={"k1": K1, **extra})


CHAINS = {
    "compression": lambda: [Compression(threshold=0)],
    "encryption": lambda: [_encryption()],
    "both": lambda: [Compression(threshold=0, algorithm="zstd"), _encryption()],
}


def key_forms(key: bytes) -> list[str]:
    """Ways a key could leak into text: its repr, hex, base64 (both alphabets), latin-1."""
    b64 = base64.b64encode(key).decode()
    return [repr(key), key.hex(), b64, b64.rstrip("="), base64.urlsafe_b64encode(key).decode()]


def assert_no_key(text: str, *keys: bytes) -> None:
    for key in keys or (K1, K2):
        for form in key_forms(key):
            assert form not in text, f"a key shows in: {text[:500]}"


# -- round trips through the App -------------------------------------------------------------------


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_every_value_kind_round_trips_through_the_codecs(db_url: str, chain: str) -> None:
    app = durably.App(db_url, codecs=CHAINS[chain](), worker_options=FAST)
    try:
        wfs = register(app)
        with app:
            _exercise(app, wfs)  # reads back inputs, outputs, steps, errors, state, runs, events
            app.terminate("hold", "stopped by the test")
        found = payloads(app)
        kinds = {(where, kind) for where, kind, _ in found}
        assert ("events.payload", "payload") in kinds and ("journal.result", "child") in kinds
        encoded = [text for _, _, text in found if text.startswith(MARKER)]
        if chain == "compression":  # only values that shrink are compressed
            assert any(t.startswith(MARKER + "zlib:") for t in encoded), found
        else:  # every value is encrypted
            assert len(encoded) == len(found), [t for _, _, t in found if t not in encoded]
            layers = "zstd+aes-gcm@k1:" if chain == "both" else "aes-gcm@k1:"
            assert any(t.startswith(MARKER + layers) for t in encoded)
        assert app.handle("hold").info().error == {
            "type": "Terminated", "code": "terminated", "message": "stopped by the test"
        }  # fmt: skip
    finally:
        app.close()


# -- no plaintext at rest --------------------------------------------------------------------------

PLANTS = {
    kind: f"PLANTED-{kind}-7f3a9c"
    for kind in ("input", "kwarg", "output", "result", "error", "attempt", "event", "state",
                 "child-input", "child-output", "child-error", "next-run", "reason", "fail")
}  # fmt: skip


def _planting_app(app: durably.App) -> dict[str, Any]:
    @app.step(retry=durably.Retry(attempts=2, initial=0.01))
    async def stamp(text: str) -> str:
        if durably.step_context().attempt == 1:
            raise RuntimeError(PLANTS["attempt"])
        return PLANTS["result"] + text

    @app.step(retry=durably.Retry(attempts=1))
    async def explode() -> None:
        raise ValueError(PLANTS["error"])

    @app.workflow(name="kid")
    async def kid(text: str) -> str:
        if text == "fail":
            raise RuntimeError(PLANTS["child-error"])
        return PLANTS["child-output"]

    @app.workflow(name="planted")
    async def planted(text: str, *, note: str, lap: int = 1) -> dict[str, str]:
        if lap == 1:
            durably.continue_as_new(PLANTS["next-run"], note=note, lap=2)
        stamped = await stamp(text)
        try:
            await explode()
        except durably.StepFailed:
            pass
        durably.set_state("progress", PLANTS["state"])
        event = await durably.wait_event("go", timeout=600)
        child = await kid(PLANTS["child-input"])
        try:
            await kid("fail")
        except durably.ChildWorkflowFailed:
            pass
        return {"out": PLANTS["output"], "stamped": stamped, "event": event, "child": child}

    @app.workflow(name="doomed")
    async def doomed(text: str) -> None:
        raise RuntimeError(PLANTS["fail"])

    @app.workflow(name="parked")
    async def parked(text: str) -> None:
        await durably.wait_event("never", timeout=3600)

    return {"planted": planted, "doomed": doomed, "parked": parked}


def _plant_everything(app: durably.App) -> None:
    wfs = _planting_app(app)
    with app:
        handle = app.start(wfs["planted"], PLANTS["input"], note=PLANTS["kwarg"], id="p-1")
        wait_until(lambda: app.handle("p-1").state("progress") is not None, "state published")
        app.send_event("p-1", "go", PLANTS["event"])
        result = handle.result(timeout=60)
        assert result["out"] == PLANTS["output"] and result["event"] == PLANTS["event"]
        assert result["child"] == PLANTS["child-output"]
        assert handle.state("progress") == PLANTS["state"]
        with pytest.raises(durably.WorkflowFailedError, match=PLANTS["fail"]):
            app.start(wfs["doomed"], PLANTS["input"], id="p-2").result(timeout=60)
        app.start(wfs["parked"], PLANTS["input"], id="p-3")
        wait_until(lambda: app.handle("p-3").status().value == "running", "p-3 parks")
        app.terminate("p-3", PLANTS["reason"])
    assert app.handle("p-3").info().error["message"] == PLANTS["reason"]


def _all_text(app: durably.App) -> str:
    """Every value of every text column of every durably table."""
    rows = []
    for table, column in sorted(text_columns(app)):
        rows += [str(r[0]) for r in _query(app, f"SELECT {column} FROM {table}")]
    return "\n".join(rows)


def test_an_encrypting_app_leaves_no_plaintext_at_rest(db_url: str) -> None:
    app = durably.App(
        db_url, codecs=[Compression(threshold=64), _encryption()], worker_options=FAST
    )
    try:
        _plant_everything(app)
        text = _all_text(app)
        assert "p-1" in text  # the check reads the tables (ids are not values: in clear)
        assert [p for p in PLANTS.values() if p in text] == []
        assert_no_key(text)
        for _, _, value in payloads(app):
            assert value.startswith(MARKER + "aes-gcm@k1:") or value.startswith(
                MARKER + "zlib+aes-gcm@k1:"
            )
    finally:
        app.close()
    path = sqlite_path(db_url)
    if path is not None:  # the whole file (and its WAL, if any) byte by byte
        data = b"".join(p.read_bytes() for p in Path(path).parent.glob(Path(path).name + "*"))
        assert b"p-1" in data
        found = [p for p in PLANTS.values() if p.encode() in data]
        assert found == []
        assert K1 not in data


def test_a_plain_app_stores_the_plants_in_clear(tmp_path: Path) -> None:
    """The at-rest test can fail: without codecs the same workflows leave every plant."""
    app = durably.App(f"sqlite:///{tmp_path}/plain.db", worker_options=FAST)
    try:
        _plant_everything(app)
        text = _all_text(app)
    finally:
        app.close()
    assert [p for p in PLANTS.values() if p not in text] == []


# -- key rotation and mixed databases --------------------------------------------------------------


def _waiting_app(db_url: str, codecs: list[Any]) -> tuple[durably.App, Any]:
    app = durably.App(db_url, codecs=codecs, worker_options=FAST)

    @app.step
    async def shout(text: str) -> str:
        return text.upper() + "!"

    @app.workflow(name="relay")
    async def relay(text: str) -> dict[str, Any]:
        durably.set_state("seen", text)
        reply = await durably.wait_event("reply", timeout=600)
        return {"text": await shout(text), "reply": reply}

    return app, relay


def _labels(app: durably.App, workflow_id: str) -> dict[str, str]:
    rows = _query(app, f"SELECT input, output FROM workflows WHERE id = '{workflow_id}'")
    journal = _query(app, f"SELECT kind, result FROM journal WHERE workflow_id = '{workflow_id}'")

    def label(text: str | None) -> str:
        if text is None:
            return "-"
        return text[len(MARKER) :].partition(":")[0] if text.startswith(MARKER) else "plain"

    out = {"input": label(rows[0][0]), "output": label(rows[0][1])}
    out |= {f"journal.{kind}": label(result) for kind, result in journal}
    return out


def _waiting(app: durably.App, workflow_id: str) -> bool:
    return any(e.kind == "event" for e in app.handle(workflow_id).history())


def test_keys_rotate_and_plain_values_still_read(db_url: str) -> None:
    # 1. no codecs: a plain workflow starts and waits
    app, relay = _waiting_app(db_url, [])
    with app:
        app.start(relay, "plain one", id="r-plain")
        wait_until(lambda: _waiting(app, "r-plain"), "r-plain waits")
    app.close()
    # 2. codecs enabled with key k1: the plain workflow resumes; a new one is encrypted with k1
    app, relay = _waiting_app(db_url, [Encryption(keys={"k1": K1})])
    with app:
        assert app.handle("r-plain").state("seen") == "plain one"
        app.send_event("r-plain", "reply", {"n": 1})
        assert app.handle("r-plain").result(timeout=60) == {"text": "PLAIN ONE!", "reply": {"n": 1}}
        app.start(relay, "secret two", id="r-k1")
        wait_until(lambda: _waiting(app, "r-k1"), "r-k1 waits")
    assert _labels(app, "r-plain")["input"] == "plain"
    assert _labels(app, "r-plain")["output"] == "aes-gcm@k1"
    assert _labels(app, "r-k1") == {
        "input": "aes-gcm@k1",
        "output": "-",
        "journal.state": "aes-gcm@k1",
        "journal.event": "aes-gcm@k1",
    }
    app.close()
    # 3. rotate: k2 active, k1 kept; the k1 workflow resumes, its new values use k2
    app, relay = _waiting_app(db_url, [Encryption(keys={"k2": K2, "k1": K1}, active="k2")])
    with app:
        app.send_event("r-k1", "reply", "yes")
        assert app.handle("r-k1").result(timeout=60) == {"text": "SECRET TWO!", "reply": "yes"}
        assert app.handle("r-k1").info().input == {"args": ["secret two"], "kwargs": {}}
    labels = _labels(app, "r-k1")
    assert labels["input"] == "aes-gcm@k1" and labels["journal.state"] == "aes-gcm@k1"
    assert labels["output"] == "aes-gcm@k2" and labels["journal.step"] == "aes-gcm@k2"
    app.close()
    # 4. k1 dropped: its values cannot be read, and say which key they need (never a key)
    reader = durably.App(db_url, codecs=[Encryption(keys={"k2": K2})])
    try:
        info = reader.handle("r-k1").info()
        assert info.output == {"text": "SECRET TWO!", "reply": "yes"}
        assert isinstance(info.input, durably.Undecodable)
        assert "key id 'k1'" in info.input.reason and "'k2'" in info.input.reason
        assert str(info.input).startswith("<encoded: aes-gcm key k1, ")
        with pytest.raises(durably.SerializationError, match="key id 'k1'") as caught:
            reader.handle("r-k1").state("seen")
        assert_no_key(str(caught.value) + info.input.reason)
    finally:
        reader.close()


def test_an_app_without_codecs_reads_encoded_values_as_encoded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/enc.db"
    app, relay = _waiting_app(url, [_encryption()])
    with app:
        app.start(relay, "hidden", id="r-1")
        wait_until(lambda: _waiting(app, "r-1"), "r-1 waits")
    app.close()
    plain = durably.App(url)
    try:
        info = plain.handle("r-1").info()
        assert isinstance(info.input, durably.Undecodable)
        assert re.fullmatch(r"<encoded: aes-gcm key k1, \d+ bytes>", str(info.input))
        assert "no payload codecs" in info.input.reason
        [listed] = plain.list_workflows()
        assert listed.input_preview is not None
        assert re.fullmatch(r"<encoded: aes-gcm key k1, \d+ bytes>", listed.input_preview)
        with pytest.raises(durably.SerializationError, match="no payload codecs"):
            plain.handle("r-1").state("seen")
        states = plain.handle("r-1").states()
        assert isinstance(states["seen"], durably.Undecodable)
    finally:
        plain.close()
    with_key = durably.App(url, codecs=[_encryption()])
    try:  # small values show decoded in lists too (their whole text is in the preview)
        assert with_key.list_workflows()[0].input_preview == '{"args":["hidden"],"kwargs":{}}'
    finally:
        with_key.close()


# -- the size limit --------------------------------------------------------------------------------


def test_the_size_limit_holds_before_and_after_the_codecs(tmp_path: Path) -> None:
    app = durably.App(
        f"sqlite:///{tmp_path}/limit.db", codecs=[_encryption()], max_payload_bytes=1000
    )

    @app.workflow(name="take")
    async def take(text: str) -> None:
        return None

    try:
        with pytest.raises(durably.PayloadTooLargeError, match="over the limit of 1000"):
            app.start(take, "x" * 1200, id="big")  # over the limit before the codecs
        with pytest.raises(
            durably.PayloadTooLargeError, match=r"after the App's payload codecs\).*limit of 1000"
        ):
            app.start(take, "y" * 900, id="grown")  # base64 makes 930 bytes about 1300
        assert app.list_workflows() == []  # nothing was written
        app.start(take, "z" * 600, id="fits")
        assert [w.id for w in app.list_workflows()] == ["fits"]
    finally:
        app.close()
    squeezed = durably.App(
        f"sqlite:///{tmp_path}/squeeze.db", codecs=[Compression(100)], max_payload_bytes=1000
    )

    @squeezed.workflow(name="take")
    async def take2(text: str) -> None:
        return None

    try:  # compression does not let a larger value in: the limit holds before it too
        with pytest.raises(durably.PayloadTooLargeError):
            squeezed.start(take2, "a" * 1200, id="big")
        squeezed.start(take2, "a" * 900, id="small")
        [stored] = _query(squeezed, "SELECT input FROM workflows")
        assert stored[0].startswith(MARKER + "zlib:") and len(stored[0]) < 100
    finally:
        squeezed.close()


# -- the codecs themselves -------------------------------------------------------------------------


def test_compression_keeps_small_and_incompressible_values_plain() -> None:
    chain = CodecChain([Compression(threshold=100)])
    assert chain.seal("short") == "short"
    noise = base64.b64encode(os.urandom(300)).decode()
    assert chain.seal(noise) == noise  # zlib would make it bigger
    text = '{"rows":[' + ",".join(["1"] * 500) + "]}"
    sealed = chain.seal(text)
    assert sealed.startswith(MARKER + "zlib:") and len(sealed) < len(text) / 10
    assert chain.open(sealed) == text
    zstd = CodecChain([Compression(threshold=100, algorithm="zstd")])
    assert zstd.seal(text).startswith(MARKER + "zstd:")
    assert chain.open(zstd.seal(text)) == text  # either algorithm reads both


def test_zstd_without_zstandard_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    sealed = CodecChain([Compression(threshold=0, algorithm="zstd")]).seal("a" * 200)
    reader = Compression()
    real = importlib.import_module

    def no_zstandard(name: str, *args: Any) -> Any:
        if name == "zstandard":
            raise ImportError("No module named 'zstandard'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_zstandard)
    with pytest.raises(durably.ConfigurationError, match=r"pip install 'durably\[zstd\]'"):
        Compression(algorithm="zstd")
    with pytest.raises(durably.SerializationError, match=r"zstd.*durably\[zstd\]"):
        CodecChain([reader]).open(sealed)


def test_encryption_uses_a_new_nonce_per_value_and_detects_tampering() -> None:
    chain = CodecChain([_encryption()])
    one, two = chain.seal('"same"'), chain.seal('"same"')
    assert one != two and chain.open(one) == chain.open(two) == '"same"'
    head, body = one.rsplit(":", 1)
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(durably.SerializationError, match="altered"):
        chain.open(head + ":" + base64.b64encode(bytes(raw)).decode())
    relabelled = one.replace("aes-gcm@k1", "aes-gcm@k9")
    two_keys = CodecChain([Encryption(keys={"k1": K1, "k9": K1}, active="k1")])
    with pytest.raises(durably.SerializationError, match="key id 'k9'"):
        two_keys.open(relabelled)  # the label is the associated data: it cannot be changed
    with pytest.raises(durably.SerializationError, match="malformed"):
        chain.open(MARKER + "aes-gcm@k1:not base64!")


def test_encryption_settings_errors_name_key_ids_never_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = b"0123456789abcdef0123456789abcde"  # 31 bytes
    messages = []
    for make in (
        lambda: Encryption(keys={}),
        lambda: Encryption(keys={"k1": secret}),
        lambda: Encryption(keys={"k1": secret.decode()}),  # type: ignore[dict-item]
        lambda: Encryption(keys={"bad id!": K1}),
        lambda: Encryption(keys={"k1": K1, "k2": K2}),
        lambda: Encryption(keys={"k1": K1}, active="k3"),
    ):
        with pytest.raises(durably.ConfigurationError) as caught:
            make()
        messages.append(caught.value.message)
    assert "'k1' is 31 bytes long" in messages[1] and "active=" in messages[4]
    for text in (
        "k2:" + base64.b64encode(secret).decode(),
        "k2:%%%",
        "no-colon",
        "",
    ):
        monkeypatch.setenv("DURABLY_ENCRYPTION_KEYS", text)
        with pytest.raises(durably.ConfigurationError) as caught:
            Encryption.from_env()
        messages.append(caught.value.message)
    joined = "\n".join(messages)
    assert_no_key(joined, secret, K1, K2)
    assert secret.decode() not in joined
    monkeypatch.setenv("DURABLY_ENCRYPTION_KEYS", f"k2:{base64.urlsafe_b64encode(K2).decode()},"
                       f"k1:{base64.b64encode(K1).decode().rstrip('=')}")  # fmt: skip
    loaded = Encryption.from_env()
    assert loaded.active == "k2" and loaded.key_ids == ["k2", "k1"]
    assert_no_key(repr(loaded) + str(loaded) + repr(vars(loaded)))


def test_a_plain_value_that_looks_encoded_is_never_mistaken_for_one() -> None:
    class Raw:  # a serializer whose text may start with the marker
        def encode(self, value: Any) -> str:
            return str(value)

        def decode(self, data: str, type_hint: Any = Any) -> Any:
            return data

    codec = codec_for(Raw(), codecs=[Compression(threshold=10_000)])
    tricky = MARKER + "zlib:eJw="
    stored = codec.encode(tricky)
    assert stored == MARKER + ":" + base64.b64encode(tricky.encode()).decode()
    assert codec.decode(stored) == tricky and codec.decode("plain") == "plain"
    assert describe(stored) is not None and describe("plain") is None


def test_bad_codec_chains_are_configuration_errors() -> None:
    with pytest.raises(durably.ConfigurationError, match="list of payload codecs"):
        durably.App("sqlite:///:memory:", codecs=Compression())  # type: ignore[arg-type]
    with pytest.raises(durably.ConfigurationError, match="two payload codecs read layer 'zlib'"):
        durably.App("sqlite:///:memory:", codecs=[Compression(), Compression()])
    with pytest.raises(durably.ConfigurationError, match="not a payload codec"):
        durably.App("sqlite:///:memory:", codecs=[object()])  # type: ignore[list-item]


def test_the_deploy_gate_replays_encrypted_journals(tmp_path: Path) -> None:
    """replay-check (``check_store``) and ``durably.testing.replay`` of an exported history read
    encrypted journals through the App's codecs; the export holds the stored (encrypted) texts."""
    from durably.history import export_history
    from durably.replay import check_store
    from durably.testing import replay

    app, relay = _waiting_app(f"sqlite:///{tmp_path}/gate.db", [_encryption()])
    try:
        with app:
            app.start(relay, "gated", id="r-gate")
            wait_until(lambda: _waiting(app, "r-gate"), "r-gate waits")
        report = check_store(app, app.store)
        assert [r.workflow_id for r in report.results] == ["r-gate"] and not report.diverged
        history = export_history(app.store, "r-gate").to_dict()
        assert (
            "gated" not in str(history) and MARKER + "aes-gcm@k1:" in history["workflow"]["input"]
        )
        assert replay(app, history).results[0].workflow_id == "r-gate"
    finally:
        app.close()


def test_the_codecs_are_safe_to_share_between_threads() -> None:
    """A worker encodes and decodes from many threads (sync steps and workflows) at once."""
    from concurrent.futures import ThreadPoolExecutor

    chain = CodecChain([Compression(threshold=0, algorithm="zstd"), _encryption()])
    texts = [f'{{"n":{i},"pad":"{"ab" * (50 + i % 300)}"}}' for i in range(800)]
    with ThreadPoolExecutor(8) as pool:
        sealed = list(pool.map(chain.seal, texts))
        assert list(pool.map(chain.open, sealed)) == texts
    assert all(s.startswith(MARKER + "zstd+aes-gcm@k1:") for s in sealed)
