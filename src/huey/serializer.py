"""Serializers: how task messages, results and other values become the bytes storage keeps.

The default :class:`Serializer` pickles (optionally compressing with gzip or zlib) and is
byte-compatible with upstream huey, so both can share one storage. :class:`SignedSerializer`
adds an HMAC-SHA1 signature so that a consumer refuses data it did not sign.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import logging
import pickle
import zlib
from typing import Any

from huey.exceptions import ConfigurationError

__all__ = ["Serializer", "SignedSerializer", "constant_time_compare", "is_compressed"]

logger = logging.getLogger("huey.serializer")

# First bytes of compressed data: gzip's magic number starts with 0x1f, and a zlib stream's
# CMF byte is 0x78 for the default 32K window. Pickles (protocol 2+) start with 0x80.
_GZIP_MAGIC = 0x1F
_ZLIB_MAGIC = 0x78


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def is_compressed(data: bytes) -> bool:
    """Return True when ``data`` starts like a gzip (0x1f) or zlib (0x78) stream."""
    return len(data) > 0 and data[0] in (_GZIP_MAGIC, _ZLIB_MAGIC)


def constant_time_compare(s1: bytes | str, s2: bytes | str) -> bool:
    """Compare two signatures in constant time (``hmac.compare_digest``)."""
    return hmac.compare_digest(_to_bytes(s1), _to_bytes(s2))


class Serializer:
    """Pickle values, optionally compressing them.

    Subclasses change the encoding by overriding :meth:`_serialize` and :meth:`_deserialize`;
    compression is applied around them.

    :param compression: compress serialized data (gzip unless ``use_zlib``).
    :param compression_level: level passed to the compressor (1-9).
    :param use_zlib: compress with zlib instead of gzip.
    :param pickle_protocol: pickle protocol used by :meth:`_serialize`.
    """

    def __init__(
        self,
        compression: bool = False,
        compression_level: int = 6,
        use_zlib: bool = False,
        pickle_protocol: int = pickle.HIGHEST_PROTOCOL,
    ) -> None:
        self.compression = compression
        self.compression_level = compression_level
        self.use_zlib = use_zlib
        self.pickle_protocol = pickle_protocol

    def _serialize(self, data: Any) -> bytes:
        return pickle.dumps(data, self.pickle_protocol)

    def _deserialize(self, data: bytes) -> Any:
        return pickle.loads(data)

    def serialize(self, data: Any) -> bytes:
        """Encode ``data`` to bytes, then compress them when compression is on."""
        raw = self._serialize(data)
        if not self.compression:
            return raw
        if self.use_zlib:
            return zlib.compress(raw, self.compression_level)
        return gzip.compress(raw, self.compression_level)

    def deserialize(self, data: bytes) -> Any:
        """Decode bytes written by :meth:`serialize`.

        With compression on, data that does not look compressed (written by a serializer
        without compression) is logged and decoded as it is, so turning compression on does
        not strand data already in storage. The compressor is picked from the first byte, so
        gzip and zlib data can both be read whatever ``use_zlib`` says.
        """
        if self.compression:
            if not is_compressed(data):
                logger.warning(
                    "Serializer has compression enabled but the data is not compressed; "
                    "reading it uncompressed."
                )
            elif data[0] == _GZIP_MAGIC:
                data = gzip.decompress(data)
            else:
                data = zlib.decompress(data)
        return self._deserialize(data)


class SignedSerializer(Serializer):
    """A :class:`Serializer` that appends an HMAC-SHA1 signature and checks it on read.

    The payload is ``pickle + b':' + hex signature``, signed before compression. The HMAC
    key is ``sha1(salt + secret).digest()``.

    :param secret: the shared secret (str or bytes); required.
    :param salt: salt mixed into the key; required.
    :param kwargs: passed to :class:`Serializer`.
    :raises ConfigurationError: when ``secret`` or ``salt`` is missing.
    """

    def __init__(
        self, secret: str | bytes | None = None, salt: str | bytes | None = "huey", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not secret or not salt:
            raise ConfigurationError(
                "SignedSerializer requires a secret and a salt, e.g. "
                "SignedSerializer(secret='a long random string')"
            )
        self.secret = _to_bytes(secret)
        self.salt = _to_bytes(salt)
        self._key = hashlib.sha1(self.salt + self.secret).digest()

    def _signature(self, message: bytes) -> bytes:
        return hmac.new(self._key, message, hashlib.sha1).hexdigest().encode("ascii")

    def _sign(self, message: bytes) -> bytes:
        return message + b":" + self._signature(message)

    def _unsign(self, signed: bytes) -> bytes:
        message, sep, signature = signed.rpartition(b":")
        if not sep:
            raise ValueError("Missing signature separator: data was not written signed")
        if not constant_time_compare(signature, self._signature(message)):
            raise ValueError("Invalid signature: data was tampered with or signed with another key")
        return message

    def _serialize(self, data: Any) -> bytes:
        return self._sign(super()._serialize(data))

    def _deserialize(self, data: bytes) -> Any:
        return super()._deserialize(self._unsign(data))
