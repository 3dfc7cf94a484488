"""The frozen wire format: messages huey-ng writes are byte-identical to upstream 3.5.4's
golden samples, and huey-ng reads every sample back into the same task."""

from __future__ import annotations

import base64
import gzip
import json
import pickle
import sys
import types
from typing import Any

import pytest

import huey
from huey.registry import Message
from huey.serializer import Serializer
from huey.utils import SKIPPED, ChordConfig, Error
from tests.conftest import WIRE_SAMPLES

SAMPLES = WIRE_SAMPLES / "messages.json"
SERIALIZERS = {
    "default": Serializer(),
    "gzip": Serializer(compression=True),
    "zlib": Serializer(compression=True, use_zlib=True),
}


def _samples() -> list[dict[str, Any]]:
    return json.loads(SAMPLES.read_text())["messages"]  # type: ignore[no-any-return]


@pytest.fixture
def main_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Tasks defined in a module named ``__main__``, like the samples were recorded."""
    module = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", module)
    return module


@pytest.fixture
def sample_huey(main_module: types.ModuleType) -> huey.MemoryHuey:
    h = huey.MemoryHuey("demo")

    def add(a: int, b: int) -> int:
        return a + b

    def custom(x: str, flag: bool = True) -> str:
        return x

    for fn in (add, custom):
        fn.__module__ = "__main__"
    h.task()(add)
    h.task(retries=2, retry_delay=5, expires=60, timeout=10, name="custom_name")(custom)
    main_module.add = add  # type: ignore[attr-defined]
    return h


def _build(h: huey.Huey, description: str) -> Any:
    add = h._registry.string_to_task("__main__.add")
    custom = h._registry.string_to_task("__main__.custom_name")
    if description.startswith("plain task"):
        return add((1, 2), id="00000000-0000-0000-0000-000000000001")
    if description.startswith("task with kwargs"):
        return custom(("x",), {"flag": False}, id="00000000-0000-0000-0000-000000000003")
    if description.startswith("pipeline"):
        head = add((3, 4), id="00000000-0000-0000-0000-000000000002")
        return head.then(add((10,), id="01b1cd0d-eac5-474a-a18f-74dd01754948"))
    return None


@pytest.mark.parametrize(
    "sample", _samples(), ids=lambda s: f"{s['description']}-{s['serializer']}"
)
def test_message_bytes_match_upstream(sample: dict[str, Any], sample_huey: huey.Huey) -> None:
    golden = base64.b64decode(sample["bytes_base64"])
    serializer = SERIALIZERS[sample["serializer"]]
    task = _build(sample_huey, sample["description"])
    if task is None:  # the stored Error sample
        value = serializer.deserialize(golden)
        assert isinstance(value, Error)
        assert type(value) is Error
        return
    message = sample_huey._registry.create_message(task)
    assert type(message) is Message
    for field, expected in sample["message_fields"].items():
        assert repr(getattr(message, field)) == expected, field
    produced = serializer.serialize(message)
    if sample["serializer"] == "gzip":
        # gzip headers carry a timestamp: compare the decompressed payload.
        assert gzip.decompress(produced) == gzip.decompress(golden)
    else:
        assert produced == golden


@pytest.mark.parametrize("sample", _samples(), ids=lambda s: s["description"])
def test_upstream_messages_load_as_tasks(sample: dict[str, Any], sample_huey: huey.Huey) -> None:
    serializer = SERIALIZERS[sample["serializer"]]
    data = serializer.deserialize(base64.b64decode(sample["bytes_base64"]))
    if isinstance(data, Error):
        assert "error" in data.metadata or data.metadata
        return
    task = sample_huey._registry.create_task(data)
    assert repr(task.id) == sample["message_fields"]["id"]
    assert repr(task.args) == sample["message_fields"]["args"]
    assert sample_huey.serialize_task(task) == pickle.dumps(
        sample_huey._registry.create_message(task), pickle.HIGHEST_PROTOCOL
    )


def test_message_fields_in_wire_order() -> None:
    assert Message._fields == (
        "id", "name", "eta", "retries", "retry_delay", "priority", "args", "kwargs",
        "on_complete", "on_error", "expires", "expires_resolved", "timeout", "chord_config",
        "retry_backoff",
    )  # fmt: skip
    # Older messages with fewer fields still load: missing fields default to None.
    assert Message("id", "n") == ("id", "n") + (None,) * 13


def test_wire_types_pickle_by_module_path() -> None:
    for obj, path in ((Message, b"huey.registry"), (Error, b"huey.utils")):
        assert path in pickle.dumps(obj(*([None] * len(obj._fields))))
    assert b"huey.utils" in pickle.dumps(ChordConfig("c", 2, 0, None))
    assert pickle.loads(pickle.dumps(SKIPPED)) is SKIPPED


def test_user_task_kwarg_kept_but_context_injection_stripped(sample_huey: huey.Huey) -> None:
    add = sample_huey._registry.string_to_task("__main__.add")
    task = add((1,), {})
    task.kwargs["task"] = task
    assert "task" not in sample_huey._registry.create_message(task).kwargs
    task.kwargs["task"] = "user value"
    assert sample_huey._registry.create_message(task).kwargs == {"task": "user value"}


def test_unknown_task_name_raises_huey_exception(sample_huey: huey.Huey) -> None:
    data = Serializer().serialize(Message("x", "nowhere.missing", args=(), kwargs={}))
    with pytest.raises(huey.exceptions.HueyException, match="nowhere.missing not found"):
        sample_huey.deserialize_task(data)
