"""Payload codecs: compression and encryption of every value durably stores.

``durably.App(codecs=[Compression(threshold=1024), Encryption(keys={"k2": new, "k1": old},
active="k2")])`` applies the chain, in order, to every value after the serializer (workflow
inputs and outputs, step results and errors, events, published state, children's inputs,
recorded ``now``/``random``/``uuid4`` values, timers) and undoes it on reading. Stored values
are recognisable (``$encoded:1:<layers>:<base64>``, see :mod:`durably.codecs.base`), so a
database can hold plain values written before codecs were enabled next to encoded ones.

A process without the codecs (``durably show``, ``durably server`` started with only ``--db``)
shows an encoded value as ``<encoded: aes-gcm key k2, 123 bytes>`` and never fails; give it the
App (``--app MODULE:APP``) or the codecs (``--codecs MODULE:OBJ`` or ``$DURABLY_CODECS``) to see
the values.
"""

from durably.codecs.base import MARKER, CodecChain, PayloadCodec, describe, is_encoded
from durably.codecs.compression import Compression
from durably.codecs.encryption import KEYS_ENV, Encryption

__all__ = [
    "KEYS_ENV",
    "MARKER",
    "CodecChain",
    "Compression",
    "Encryption",
    "PayloadCodec",
    "describe",
    "is_encoded",
]
