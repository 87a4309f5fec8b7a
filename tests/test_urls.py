"""Database and server URLs as people see them (durably.storage.urls): no password, no secret
option, and PostgreSQL schema names PostgreSQL keeps as written."""

from __future__ import annotations

import pytest

import durably
from durably.errors import ConfigurationError
from durably.storage import check_database_url, open_store
from durably.storage.urls import (
    DEFAULT_SCHEMA,
    check_schema_name,
    redact_url,
    scrub,
    url_password,
    url_secrets,
)

SECRET = "planted-s3cret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://app:{SECRET}@db:5432/prod", "postgresql://app:***@db:5432/prod"),
        (f"postgres://app:{SECRET}@db/prod?schema=jobs", "postgres://app:***@db/prod?schema=jobs"),
        # every option but the allow-listed ones may hold a secret
        (
            f"postgresql://app@db/prod?sslmode=require&sslpassword={SECRET}&schema=s",
            "postgresql://app@db/prod?sslmode=require&sslpassword=***&schema=s",
        ),
        (f"postgresql://db/prod?password={SECRET}", "postgresql://db/prod?password=***"),
        (f"postgresql://db/prod?{SECRET}", "postgresql://db/prod?***"),
        # unencoded '@', '/', '?', '#' and ':' stay inside the password
        ("postgresql://app:pl@nted/s3cret@db/prod", "postgresql://app:***@db/prod"),
        ("postgresql://app:pl?nted#s3c:ret@db/prod", "postgresql://app:***@db/prod"),
        ("postgresql://app:pl%40nted@db/prod", "postgresql://app:***@db/prod"),
        ("postgresql://app:@db/prod", "postgresql://app:***@db/prod"),
        # no password: nothing hidden (an '@' in a query value is not a user name)
        ("postgresql://app@db:5432/prod", "postgresql://app@db:5432/prod"),
        (f"postgresql://db/prod?password={SECRET}@x", "postgresql://db/prod?password=***"),
        (f"http://user:{SECRET}@server:8000/api#{SECRET}", "http://user:***@server:8000/api#***"),
        (
            "sqlite:///data/durably.db?synchronous=normal",
            "sqlite:///data/durably.db?synchronous=normal",
        ),
        ("data/durably.db", "data/durably.db"),
        (
            f"host=db user=app password={SECRET} dbname=prod",
            "host=db user=app password=*** dbname=prod",
        ),
        (f"host=db password='{SECRET} x'", "host=db password=***"),
    ],
)
def test_redact_url_hides_passwords_and_secret_options(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_url(shown) == shown  # idempotent: a shown URL may be shown again


def test_url_secrets_lists_each_secret_as_written_and_decoded() -> None:
    url = "postgresql://app:pl%40nted@db/prod?schema=s&sslpassword=a%2Bb&token=xyz"
    assert set(url_secrets(url)) == {"pl%40nted", "pl@nted", "a%2Bb", "a+b", "xyz"}
    assert url_password(url) == "pl%40nted"
    assert url_password("postgresql://app@db/prod") is None
    assert url_password("data/durably.db") is None
    assert url_secrets("postgresql://app@db/prod?schema=s&sslmode=require") == []


def test_scrub_hides_urls_and_their_secrets_in_free_text() -> None:
    url = f"postgresql://app:{SECRET}@db/prod?schema=s"
    text = f"failed: {url} (password {SECRET!r} rejected; host db)"
    scrubbed = scrub(text, url)
    assert SECRET not in scrubbed
    assert "postgresql://app:***@db/prod?schema=s" in scrubbed
    assert "host db" in scrubbed
    # a one- or two-character secret is not hunted in free text (it would match everywhere)
    assert scrub("at 127.0.0.1", "postgresql://u:1@h/d") == "at 127.0.0.1"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("s" * 64, "64 bytes long"),
        ("é" * 32, "64 bytes long"),
        ("information_schema", "system schema"),
        ("pg_catalog", "system schema"),
        ("pg_toast", "system schema"),
        ("PG_mine", "system schema"),
        ("bad\x00name", "unprintable"),
    ],
)
def test_schema_names_postgresql_would_change_or_owns_are_refused(name: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        check_schema_name(name)
    url = f"postgresql://app:{SECRET}@127.0.0.1:1/prod?schema={name}"
    # refused before anything connects (port 1: nothing listens), by the App too
    with pytest.raises(ConfigurationError, match=fragment) as caught:
        durably.App(url)
    assert SECRET not in str(caught.value)
    with pytest.raises(ConfigurationError, match=fragment):
        check_database_url(url)


def test_schema_names_postgresql_keeps_are_accepted() -> None:
    assert check_schema_name("s" * 63) == "s" * 63
    assert check_schema_name("é" * 31) == "é" * 31
    assert check_schema_name("public") == "public"
    assert DEFAULT_SCHEMA == "durably"


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://app:{SECRET}@db/prod",
        f"sqlite://app:{SECRET}@host/x.db",
        f"sqlite:///x.db?synchronous=normal&key={SECRET}",
    ],
)
def test_store_errors_name_the_url_without_its_secrets(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store(url)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    if url.startswith("mysql"):  # an unsupported scheme is named alone, not the whole URL
        assert "unsupported database URL scheme 'mysql://'" in str(caught.value)
    else:
        assert "***" in str(caught.value)


def test_app_and_client_reprs_hide_secrets() -> None:
    app = durably.App(f"postgresql://app:{SECRET}@db/prod?schema=s")
    assert repr(app) == "<durably.App postgresql://app:***@db/prod?schema=s>"
    assert app.safe_database_url == "postgresql://app:***@db/prod?schema=s"
    client = durably.Client(f"http://user:{SECRET}@127.0.0.1:1", token=SECRET)
    assert SECRET not in repr(client)
    assert SECRET not in client.url
    with pytest.raises(ConfigurationError) as caught:
        durably.Client(f"ftp://user:{SECRET}@host")
    assert SECRET not in str(caught.value)
