"""Giving the CLI and ``durably server`` an App's payload codecs, so they show stored values.

``--app MODULE:APP``: an App whose serializer, payload codecs and payload size limit are used
(and whose database, when no ``--db`` is given). ``--codecs MODULE:OBJ`` (default
``$DURABLY_CODECS``): just the codecs, where OBJ is a :class:`durably.App` (its serializer and
codecs), a :class:`durably.PayloadCodec`, a list of them, or a function of no arguments that
returns one of these (e.g. one that builds ``Encryption.from_env()``). Without either, encoded
values are shown as ``<encoded: aes-gcm key k2, 123 bytes>``.

Keys are never printed: errors name the option, the object and the key ids only.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from durably.app import App
from durably.codecs.base import PayloadCodec
from durably.errors import ConfigurationError, DurablyError
from durably.serialization import DEFAULT_MAX_PAYLOAD_BYTES, Serializer

__all__ = ["CODECS_ENV", "CodecOptions", "add_codec_arguments", "codec_options", "load_object"]

CODECS_ENV = "DURABLY_CODECS"
"""The environment variable ``--codecs`` defaults to."""

_APP_HELP = (
    "an App (MODULE:APP) whose serializer and payload codecs read the values (and whose "
    "database is used when --db is not given)"
)
_CODECS_HELP = (
    f"payload codecs that read the values (default: ${CODECS_ENV}): MODULE:OBJ naming an App, "
    "a codec, a list of codecs, or a function returning one"
)


def add_codec_arguments(parser: argparse.ArgumentParser | Any) -> None:
    """``--app MODULE:APP`` and ``--codecs MODULE:OBJ`` on a command that shows values."""
    parser.add_argument("--app", dest="codec_app", metavar="MODULE:APP", help=_APP_HELP)
    parser.add_argument("--codecs", dest="codecs", metavar="MODULE:OBJ", help=_CODECS_HELP)


def load_object(
    spec: str,
    option: str | None = None,
    *,
    shape: str = "MODULE:OBJ",
    example: str = "myapp.codecs:codecs",
    missing_ok: bool = False,
) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute (None if it is missing and
    ``missing_ok``). ``option`` names where the spec was given, ``shape`` and ``example`` what
    it should look like, in errors (:class:`ConfigurationError`)."""
    where = f"{option}: " if option else ""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"{where}expected {shape} (e.g. {example}), got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{where}cannot import {module_name!r} ({exc}); run from the folder that holds it or "
            "set PYTHONPATH"
        ) from exc
    if not hasattr(module, attr) and not missing_ok:
        raise ConfigurationError(f"{where}module {module_name!r} has no {attr!r}")
    return getattr(module, attr, None)


@dataclass(frozen=True)
class CodecOptions:
    """How a command reads stored values: the serializer, payload codecs and size limit to
    open the database with, and the database of ``--app`` (None: none given)."""

    serializer: Serializer | None = None
    codecs: tuple[PayloadCodec, ...] = ()
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    database_url: str | None = field(default=None, repr=False)  # may hold a password

    def open(self, database: str | None) -> App:
        """A client App on ``database`` (default: the ``--app``'s, else ``$DURABLY_DB``)."""
        return App(
            database or self.database_url, serializer=self.serializer, codecs=self.codecs,
            max_payload_bytes=self.max_payload_bytes,
        )  # fmt: skip


def _of_app(app: App) -> CodecOptions:
    return CodecOptions(app.serializer, app.codecs, app.codec.max_payload_bytes, app.database_url)


def _codecs(obj: Any, option: str) -> CodecOptions:
    if isinstance(obj, App):
        return _of_app(obj)
    if callable(obj) and not isinstance(obj, PayloadCodec):
        name = getattr(obj, "__qualname__", type(obj).__name__)
        try:
            obj = obj()
        except DurablyError:
            raise  # e.g. a bad key: its message names the key id, never the key
        except Exception as exc:
            raise ConfigurationError(
                f"{option}: calling {name}() raised {type(exc).__name__}: {exc}; it should "
                "return a durably.App, a payload codec or a list of them"
            ) from None
        if isinstance(obj, App):
            return _of_app(obj)
    codecs: Sequence[Any] = [obj] if isinstance(obj, PayloadCodec) else obj
    if not isinstance(codecs, list | tuple) or not all(isinstance(c, PayloadCodec) for c in codecs):
        raise ConfigurationError(
            f"{option} names a {type(obj).__name__}: expected a durably.App, a payload codec, "
            "a list of them, or a function returning one"
        )
    return CodecOptions(codecs=tuple(codecs))


def codec_options(args: argparse.Namespace) -> CodecOptions:
    """The :class:`CodecOptions` of ``--app``/``--codecs``/``$DURABLY_CODECS`` in ``args``."""
    app_spec = getattr(args, "codec_app", None)
    codecs_spec = getattr(args, "codecs", None)
    if app_spec and codecs_spec:
        raise ConfigurationError("give --app or --codecs, not both")
    if app_spec:
        app = load_object(app_spec, "--app")
        if not isinstance(app, App):
            raise ConfigurationError(
                f"--app {app_spec!r} is not a durably.App (found {type(app).__name__})"
            )
        return _of_app(app)
    if codecs_spec:
        return _codecs(load_object(codecs_spec, "--codecs"), "--codecs")
    env = os.environ.get(CODECS_ENV)
    if env:
        return _codecs(load_object(env, f"${CODECS_ENV}"), f"${CODECS_ENV}")
    return CodecOptions()
