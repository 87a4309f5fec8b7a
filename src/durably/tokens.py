"""The bearer token of ``durably server`` and of its clients: one rule for both sides.

A token is 1 to :data:`MAX_TOKEN_CHARS` visible ASCII characters (``!`` to ``~``: letters,
digits and punctuation; no spaces, no control or non-ASCII characters). HTTP clients send
header bytes their own way (curl UTF-8, Python's http.client Latin-1) and proxies may trim
spaces, so only such a token reaches the server as the same bytes from every client. The
server compares the bytes it receives with the token's ASCII bytes.
"""

from __future__ import annotations

from durably.errors import ConfigurationError

__all__ = ["MAX_TOKEN_CHARS", "check_token"]

MAX_TOKEN_CHARS = 1024
"""The longest token accepted (a request's whole head must stay under the server's limit)."""

_HOW = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _kind(char: str) -> str:
    if char == " ":
        return "a space"
    if char.isspace():
        return "a whitespace character"
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return "a control character"
    return "a non-ASCII character"


def check_token(token: str, what: str = "the token") -> str:
    """``token`` if it is a valid bearer token, else a :class:`ConfigurationError` that says
    which rule it breaks and where (the token itself is never shown). ``what`` names where the
    token came from in that message (``"--token"``, ``"$DURABLY_TOKEN"``...)."""
    if not isinstance(token, str):
        raise ConfigurationError(f"{what} must be a string, got {type(token).__name__}")
    if not token.strip():
        raise ConfigurationError(f"{what} is empty; pass a non-empty token ({_HOW})")
    if len(token) > MAX_TOKEN_CHARS:
        raise ConfigurationError(
            f"{what} is {len(token)} characters long; use at most {MAX_TOKEN_CHARS} ({_HOW})"
        )
    for position, char in enumerate(token, 1):
        if not "!" <= char <= "~":
            raise ConfigurationError(
                f"{what} has {_kind(char)} at position {position} of {len(token)}: a token must "
                "be visible ASCII characters only (letters, digits, punctuation; no spaces), "
                f"which every HTTP client sends the same way ({_HOW})"
            )
    return token
