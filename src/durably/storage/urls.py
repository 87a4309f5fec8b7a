"""Database and server URLs as people may see them: with no password and no secret option.

Every message, log line, ``repr`` and report that names a database (or a durably server) shows
:func:`redact_url` of its URL, never the URL itself; text that comes from elsewhere and may
echo a URL's parts (a database driver's error, for one) goes through :func:`scrub` first.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus

__all__ = [
    "DEFAULT_SCHEMA",
    "HIDDEN",
    "SAFE_OPTIONS",
    "check_schema_name",
    "redact_url",
    "scrub",
    "url_password",
    "url_secrets",
]

HIDDEN = "***"
"""What a secret is replaced with."""

SAFE_OPTIONS = frozenset(
    {
        "application_name",
        "connect_timeout",
        "dbname",
        "host",
        "port",
        "schema",
        "sslmode",
        "synchronous",
        "synchronous_commit",
        "target_session_attrs",
        "user",
    }
)
"""URL query options whose values are shown; any other option's value may be a secret (a
``password=``, an ``sslpassword=``, a token...) and is shown as ``***``."""

_KEYWORD_PASSWORD = re.compile(r"""(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)""", re.IGNORECASE)
"""A ``password=...`` in a libpq keyword/value string (``host=h password=p``)."""


_SCRUBBED_LENGTH = 3
"""Shorter secrets are not replaced in free text: they would match everywhere (``1`` in every
address) and tell nothing where they match."""


def _split(url: str) -> tuple[str, str | None, str, str, str | None]:
    """``scheme://``, the userinfo (None if absent), the host and path, the query, the fragment
    (None if absent) of a URL that has a ``://``.

    The userinfo ends at the *last* ``@`` (a password with an unencoded ``@``, ``/``, ``?`` or
    ``#`` stays inside it), unless what comes before that ``@`` holds no ``:`` but a ``/``,
    ``?`` or ``#``: then the ``@`` is part of the path or of a query value.
    """
    scheme, _, rest = url.partition("://")
    userinfo: str | None = None
    at = rest.rfind("@")
    if at >= 0:
        before = rest[:at]
        if ":" in before or not any(c in before for c in "/?#"):
            userinfo, rest = before, rest[at + 1 :]
    rest, hashed, fragment = rest.partition("#")
    base, _, query = rest.partition("?")
    return scheme + "://", userinfo, base, query, fragment if hashed else None


def _is_safe(key: str) -> bool:
    return unquote_plus(key).strip().lower() in SAFE_OPTIONS


def redact_url(url: str) -> str:
    """``url`` fit to be shown: the user is kept, a password becomes ``***``, and so does the
    value of every query option but :data:`SAFE_OPTIONS` (a fragment too).

    ``postgresql://app:s3cret@db:5432/prod?schema=jobs&sslpassword=x`` is shown as
    ``postgresql://app:***@db:5432/prod?schema=jobs&sslpassword=***``. A bare file path is
    returned as it is; a libpq keyword/value string has its ``password=`` value hidden.
    """
    if "://" not in url:
        return _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + HIDDEN, url)
    scheme, userinfo, base, query, fragment = _split(url)
    shown = scheme
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        shown += f"{user}:{HIDDEN}@" if colon else f"{userinfo}@"
    shown += base
    if query:
        items = []
        for item in query.split("&"):
            key, eq, _ = item.partition("=")
            if _is_safe(key):
                items.append(item)
            else:
                items.append(f"{key}={HIDDEN}" if eq else HIDDEN)
        shown += "?" + "&".join(items)
    if fragment is not None:
        shown += "#" + HIDDEN
    return shown


def url_password(url: str) -> str | None:
    """The password of a URL as written in it (percent-encoded), or None if it has none."""
    if "://" not in url:
        return None
    _, userinfo, _, _, _ = _split(url)
    if userinfo is None or ":" not in userinfo:
        return None
    return userinfo.partition(":")[2]


def url_secrets(url: str) -> list[str]:
    """Every secret a URL holds, as written and percent-decoded: its password and the values of
    its query options other than :data:`SAFE_OPTIONS`, longest first (empty ones left out)."""
    found: set[str] = set()
    if "://" not in url:
        found.update(m.group(2).strip("'") for m in _KEYWORD_PASSWORD.finditer(url))
    else:
        password = url_password(url)
        if password:
            found.update((password, unquote(password)))
        _, _, _, query, fragment = _split(url)
        for item in query.split("&") if query else ():
            key, _, value = item.partition("=")
            if value and not _is_safe(key):
                found.update((value, unquote_plus(value)))
        if fragment:
            found.update((fragment, unquote(fragment)))
    return sorted((s for s in found if s), key=len, reverse=True)


def scrub(text: str, *urls: str) -> str:
    """``text`` (a driver's error message, say) with every one of ``urls`` replaced by its
    :func:`redact_url` form, and each of their secrets that is left (of 3 characters or more)
    replaced by ``***``."""
    for url in urls:
        if url:
            text = text.replace(url, redact_url(url))
    for url in urls:
        for secret in url_secrets(url):
            if len(secret) >= _SCRUBBED_LENGTH:
                text = text.replace(secret, HIDDEN)
    return text


DEFAULT_SCHEMA = "durably"
"""The PostgreSQL schema of durably's tables when the URL names none (``?schema=``)."""

_MAX_IDENTIFIER_BYTES = 63
"""PostgreSQL keeps the first 63 bytes of a longer name (``NAMEDATALEN - 1``)."""


def check_schema_name(name: str) -> str:
    """``name`` if PostgreSQL keeps it as it is and it is not a system schema; else raise
    :class:`~durably.errors.ConfigurationError` saying why and what to use instead."""
    from durably.errors import ConfigurationError

    hint = f"pass ?schema=NAME in the database URL (default: {DEFAULT_SCHEMA})"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > _MAX_IDENTIFIER_BYTES:
        raise ConfigurationError(
            f"PostgreSQL schema name {name!r} is {size} bytes long: PostgreSQL keeps only the "
            f"first {_MAX_IDENTIFIER_BYTES}, so another name that starts the same would share "
            f"its tables; use a name of at most {_MAX_IDENTIFIER_BYTES} bytes ({hint})"
        )
    if not name.isprintable():  # NUL, control characters, lone surrogates
        raise ConfigurationError(
            f"PostgreSQL schema name {name!r} holds unprintable characters; {hint}"
        )
    lowered = name.lower()
    if lowered == "information_schema" or lowered.startswith("pg_"):
        raise ConfigurationError(
            f"{name!r} is a PostgreSQL system schema: durably's tables cannot go there; {hint}"
        )
    return name
