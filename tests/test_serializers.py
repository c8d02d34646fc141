"""The serializers of durable queues: what they write, what they read back, what they refuse."""

from __future__ import annotations

import enum
import json
import sys
from typing import Any

import pytest

from conveyor import SerializationError
from conveyor._serializers import JSONSerializer, PickleSerializer, resolve_serializer


class Colour(enum.IntEnum):
    RED = 1


VALUES: list[Any] = [
    0,
    7,
    -7,
    10**40,
    -(10**40),
    True,
    False,
    None,
    1.5,
    "",
    'héllo "quoted" \n',
    [1, "a", None],
    {"id": 3, "tags": ["x"], "nested": {"ok": True}},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_json_writes_what_the_json_module_writes(value: Any) -> None:
    serializer = JSONSerializer()
    data = serializer.dumps(value)
    assert data == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    back = serializer.loads(data)
    assert back == value
    assert type(back) is type(value)


def test_json_int_subclasses_are_written_as_their_value() -> None:
    assert JSONSerializer().dumps(Colour.RED) == b"1"


@pytest.mark.parametrize(
    "data", [b"007", b"00", b"1 2", b"", b"\xff", b"NaN", b"{", "\u0661".encode()], ids=repr
)
def test_json_refuses_what_is_not_json(data: bytes) -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        JSONSerializer().loads(data)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), {"x": float("-inf")}, object(), b"raw"]
)
def test_json_refuses_what_other_readers_could_not_read(value: Any) -> None:
    with pytest.raises(SerializationError, match="serializer='pickle'"):
        JSONSerializer().dumps(value)


def test_json_reads_other_writers_json() -> None:
    assert JSONSerializer().loads(b' { "a" : [1, 2.5e3] } ') == {"a": [1, 2500.0]}


def test_pickle_is_chosen_by_name_only() -> None:
    assert isinstance(resolve_serializer("json"), JSONSerializer)
    assert isinstance(resolve_serializer("pickle"), PickleSerializer)
    with pytest.raises(ValueError, match="unknown serializer"):
        resolve_serializer("yaml")
    with pytest.raises(TypeError, match="dumps/loads"):
        resolve_serializer(42)  # type: ignore[arg-type]


def test_json_refuses_an_int_too_long_to_write_and_says_why() -> None:
    limit = sys.get_int_max_str_digits()
    if not limit:
        pytest.skip("this interpreter converts ints of any length")
    for item in (10 ** (limit + 10), [1, -(10 ** (limit + 10))], {"n": 10 ** (limit + 10)}):
        with pytest.raises(SerializationError, match="digits") as caught:
            JSONSerializer().dumps(item)
        assert isinstance(caught.value.__cause__, ValueError)


def test_json_refuses_an_item_nested_too_deep_to_write() -> None:
    # Deeper than the interpreter's limit for Python frames and, from 3.12 on, for C
    # code (which the json module's C encoder counts against).
    item: Any = []
    for _ in range(max(sys.getrecursionlimit() + 100, 100_000)):
        item = [item]
    with pytest.raises(SerializationError, match="recursion limit"):
        JSONSerializer().dumps(item)


UNREADABLE = {
    "deep list": (b"[" * 100_000 + b"]" * 100_000, "recursion limit"),
    "deep object": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "recursion limit"),
    "long int": (b"9" * 5000, "digits"),
    "long int inside": (b'{"n":[' + b"9" * 5000 + b"]}", "digits"),
}


@pytest.mark.parametrize(("data", "reason"), UNREADABLE.values(), ids=list(UNREADABLE))
def test_json_valid_but_beyond_this_process_limits_is_a_serialization_error(
    data: bytes, reason: str
) -> None:
    # Written by a process with other limits: valid JSON this one cannot read.
    if reason == "digits" and not 0 < sys.get_int_max_str_digits() < 5000:
        pytest.skip("this interpreter reads ints of 5000 digits")
    with pytest.raises(SerializationError, match=reason):
        JSONSerializer().loads(data)
