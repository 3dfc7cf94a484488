"""Unit tests for ``huey.serializer`` (spec §14)."""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import hmac
import json
import logging
import pickle
import zlib
from pathlib import Path
from typing import Any

import pytest

from huey.exceptions import ConfigurationError
from huey.serializer import (
    Serializer,
    SignedSerializer,
    constant_time_compare,
    is_compressed,
)
from huey.utils import Error

SAMPLES = Path("/work/shared/wire-samples/messages.json")

VALUES: list[Any] = [
    None,
    0,
    -12345678901234567890,
    3.5,
    "text ünïcode",
    b"\x00\x01\xff:bytes:with:colons",
    (1, "two", 3.0),
    [1, [2, [3]]],
    {"nested": {"a": [1, 2]}, "k": None},
    {1, 2, 3},
    datetime.datetime(2024, 1, 2, 3, 4, 5, 678),
    Error({"error": "ValueError('x')", "retries": 0}),
    "x" * 100_000,
]

SERIALIZERS = {
    "plain": lambda: Serializer(),
    "gzip": lambda: Serializer(compression=True),
    "gzip-9": lambda: Serializer(compression=True, compression_level=9),
    "zlib": lambda: Serializer(compression=True, use_zlib=True),
    "zlib-1": lambda: Serializer(compression=True, compression_level=1, use_zlib=True),
    "protocol-2": lambda: Serializer(pickle_protocol=2),
    "signed": lambda: SignedSerializer(secret="s3cret"),
    "signed-gzip": lambda: SignedSerializer(secret="s3cret", compression=True),
    "signed-zlib": lambda: SignedSerializer(secret=b"s3cret", compression=True, use_zlib=True),
}


@pytest.mark.parametrize("name", list(SERIALIZERS))
@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip(name: str, value: Any) -> None:
    serializer = SERIALIZERS[name]()
    data = serializer.serialize(value)
    assert isinstance(data, bytes)
    assert serializer.deserialize(data) == value


def test_defaults() -> None:
    serializer = Serializer()
    assert serializer.compression is False
    assert serializer.compression_level == 6
    assert serializer.use_zlib is False
    assert serializer.pickle_protocol == pickle.HIGHEST_PROTOCOL


def test_default_output_is_plain_pickle() -> None:
    value = {"a": (1, 2), "b": None}
    assert Serializer().serialize(value) == pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    assert Serializer(pickle_protocol=2).serialize(value) == pickle.dumps(value, 2)
    assert Serializer(pickle_protocol=2).serialize(value)[:2] == b"\x80\x02"


def test_gzip_compression_uses_level() -> None:
    value = "abc" * 10_000
    raw = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    data = Serializer(compression=True, compression_level=9).serialize(value)
    assert data[:2] == b"\x1f\x8b"
    assert gzip.decompress(data) == raw
    # Level 1 and level 9 produce different streams for this input.
    fast = Serializer(compression=True, compression_level=1).serialize(value)
    assert gzip.decompress(fast) == raw
    assert len(data) < len(raw) and len(fast) < len(raw)
    assert fast[10:] != data[10:]  # skip the gzip header (it holds a timestamp)


def test_zlib_compression_is_byte_exact() -> None:
    value = ["x", 1, {"k": "v" * 1000}]
    raw = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    for level in (1, 6, 9):
        data = Serializer(compression=True, compression_level=level, use_zlib=True).serialize(value)
        assert data == zlib.compress(raw, level)
        assert data[0] == 0x78


def test_compressing_serializer_reads_uncompressed_data(caplog: pytest.LogCaptureFixture) -> None:
    plain = Serializer().serialize({"old": "data"})
    for reader in (Serializer(compression=True), Serializer(compression=True, use_zlib=True)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="huey.serializer"):
            assert reader.deserialize(plain) == {"old": "data"}
        records = [r for r in caplog.records if r.name == "huey.serializer"]
        assert len(records) == 1
        assert records[0].levelno == logging.WARNING
        assert "not compressed" in records[0].getMessage()


def test_compressed_data_read_without_warning(caplog: pytest.LogCaptureFixture) -> None:
    serializer = Serializer(compression=True)
    with caplog.at_level(logging.DEBUG, logger="huey.serializer"):
        assert serializer.deserialize(serializer.serialize(42)) == 42
    assert not [r for r in caplog.records if r.name == "huey.serializer"]


def test_gzip_and_zlib_readers_read_each_other() -> None:
    gz = Serializer(compression=True)
    zl = Serializer(compression=True, use_zlib=True)
    assert zl.deserialize(gz.serialize("from gzip")) == "from gzip"
    assert gz.deserialize(zl.serialize("from zlib")) == "from zlib"


def test_non_compressing_serializer_does_not_decompress() -> None:
    compressed = Serializer(compression=True, use_zlib=True).serialize("v")
    with pytest.raises(pickle.UnpicklingError):
        Serializer().deserialize(compressed)


def test_is_compressed() -> None:
    assert is_compressed(gzip.compress(b"abc"))
    assert is_compressed(zlib.compress(b"abc"))
    assert is_compressed(b"\x1f")
    assert is_compressed(b"\x78anything")
    assert not is_compressed(pickle.dumps("abc"))
    assert not is_compressed(b"")
    assert not is_compressed(b"\x80\x05")
    assert not is_compressed(b"\x1e")


def test_constant_time_compare() -> None:
    assert constant_time_compare(b"abc", b"abc")
    assert not constant_time_compare(b"abc", b"abd")
    assert not constant_time_compare(b"abc", b"abcd")
    assert not constant_time_compare(b"", b"a")
    assert constant_time_compare("abc", "abc")
    assert not constant_time_compare("abc", "xbc")
    assert constant_time_compare("abc", b"abc")


def test_override_hooks() -> None:
    class JSONSerializer(Serializer):
        def _serialize(self, data: Any) -> bytes:
            return json.dumps(data).encode()

        def _deserialize(self, data: bytes) -> Any:
            return json.loads(data)

    plain = JSONSerializer()
    assert plain.serialize({"a": 1}) == b'{"a": 1}'
    assert plain.deserialize(b'{"a": 1}') == {"a": 1}
    # Compression wraps the hooks.
    packed = JSONSerializer(compression=True, use_zlib=True)
    data = packed.serialize([1, 2])
    assert zlib.decompress(data) == b"[1, 2]"
    assert packed.deserialize(data) == [1, 2]


# --- SignedSerializer -----------------------------------------------------------------------


def expected_signature(salt: bytes, secret: bytes, message: bytes) -> bytes:
    key = hashlib.sha1(salt + secret).digest()
    return hmac.new(key, message, hashlib.sha1).hexdigest().encode()


def test_signed_payload_layout() -> None:
    value = {"task": "x"}
    data = SignedSerializer(secret="s3cret").serialize(value)
    pickled = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    assert data == pickled + b":" + expected_signature(b"huey", b"s3cret", pickled)


def test_signed_custom_salt_and_bytes_secret() -> None:
    serializer = SignedSerializer(secret=b"k", salt="pepper")
    pickled = pickle.dumps(7, pickle.HIGHEST_PROTOCOL)
    assert serializer.serialize(7) == pickled + b":" + expected_signature(b"pepper", b"k", pickled)
    # str and bytes secrets are equivalent.
    assert SignedSerializer(secret="k", salt=b"pepper").serialize(7) == serializer.serialize(7)


def test_signed_before_compression() -> None:
    serializer = SignedSerializer(secret="s3cret", compression=True, use_zlib=True)
    data = serializer.serialize("v")
    inner = zlib.decompress(data)
    pickled = pickle.dumps("v", pickle.HIGHEST_PROTOCOL)
    assert inner == pickled + b":" + expected_signature(b"huey", b"s3cret", pickled)


def test_signed_rejects_tampered_data() -> None:
    serializer = SignedSerializer(secret="s3cret")
    data = serializer.serialize({"amount": 1})
    message, _, signature = data.rpartition(b":")
    forged = pickle.dumps({"amount": 1000}, pickle.HIGHEST_PROTOCOL)
    with pytest.raises(ValueError, match="Invalid signature"):
        serializer.deserialize(forged + b":" + signature)
    with pytest.raises(ValueError, match="Invalid signature"):
        serializer.deserialize(message + b":" + b"0" * len(signature))
    with pytest.raises(ValueError, match="Invalid signature"):
        serializer.deserialize(message + b":")


def test_signed_rejects_other_key_or_salt() -> None:
    data = SignedSerializer(secret="one").serialize("v")
    with pytest.raises(ValueError):
        SignedSerializer(secret="two").deserialize(data)
    with pytest.raises(ValueError):
        SignedSerializer(secret="one", salt="other").deserialize(data)
    assert SignedSerializer(secret="one").deserialize(data) == "v"


def test_signed_missing_separator() -> None:
    with pytest.raises(ValueError, match="separator"):
        SignedSerializer(secret="s3cret").deserialize(b"no separator here")


def test_signed_rejects_unsigned_pickle() -> None:
    # A pickle written by a plain serializer: either no ':' at all, or a bogus "signature".
    for value in (1, "a:b", {"k:": "v"}):
        with pytest.raises(ValueError):
            SignedSerializer(secret="s3cret").deserialize(Serializer().serialize(value))


def test_signed_splits_at_last_separator() -> None:
    # The pickle itself contains ':' bytes; only the last one separates the signature.
    serializer = SignedSerializer(secret="s3cret")
    value = b"a:b:c:"
    data = serializer.serialize(value)
    assert data.count(b":") > 1
    assert serializer.deserialize(data) == value


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"secret": None},
        {"secret": ""},
        {"secret": "x", "salt": None},
        {"secret": "x", "salt": ""},
    ],
)
def test_signed_requires_secret_and_salt(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="secret and a salt"):
        SignedSerializer(**kwargs)


def test_signed_is_a_serializer() -> None:
    serializer = SignedSerializer(secret="s", compression=True, compression_level=3)
    assert isinstance(serializer, Serializer)
    assert serializer.compression is True
    assert serializer.compression_level == 3


# --- golden data from upstream huey 3.5.4 ---------------------------------------------------


def golden_error_sample() -> bytes:
    samples = json.loads(SAMPLES.read_text())["messages"]
    (sample,) = [s for s in samples if s["description"].startswith("stored error result")]
    return base64.b64decode(sample["bytes_base64"])


def test_stored_error_result_is_byte_identical_to_upstream() -> None:
    value = Error({"error": "ValueError('boom')", "retries": 0, "task_id": "x"})
    golden = golden_error_sample()
    assert Serializer().serialize(value) == golden
    decoded = Serializer().deserialize(golden)
    assert isinstance(decoded, Error)
    assert decoded == value
