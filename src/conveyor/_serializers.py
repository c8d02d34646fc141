"""How durable queues turn items into bytes and back.

The default, ``JSONSerializer``, can only produce data: reading a shared store never
runs code.  ``PickleSerializer`` accepts any picklable object and must be asked for by
name, because anyone who can write to the store can then run code in every consumer.
"""

from __future__ import annotations

import json
import pickle
import sys
from typing import Any, Protocol, runtime_checkable

from ._compat import int_max_str_digits
from ._exceptions import SerializationError

__all__ = ["JSONSerializer", "PickleSerializer", "Serializer", "resolve_serializer"]


@runtime_checkable
class Serializer(Protocol):
    """Encode items for storage and decode them again."""

    name: str

    def dumps(self, item: Any) -> bytes:
        """Encode one item.

        Raises:
            SerializationError: The item cannot be encoded; nothing may have been stored.
        """
        ...

    def loads(self, data: bytes) -> Any:
        """Decode one item produced by ``dumps()``.

        Raises:
            SerializationError: The bytes are not a valid encoding.
        """
        ...


class JSONSerializer:
    """Encode JSON data: ``dict`` (string keys), ``list``, ``str``, numbers, bools, ``None``.

    Tuples are stored as JSON arrays and come back as lists, as with every JSON codec.
    NaN and infinities are refused, so every stored item is valid JSON for other readers,
    and refused when read too.
    """

    name = "json"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(
            ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=True
        )
        self._decoder = json.JSONDecoder(parse_constant=_not_json)

    def dumps(self, item: Any) -> bytes:
        """Encode one item as UTF-8 JSON.

        Raises:
            SerializationError: The item is not JSON data.
        """
        try:
            if type(item) is int:  # ids and counters: JSON writes an int as Python does
                return b"%d" % item
            return self._encoder.encode(item).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(_encode_failure(item, exc)) from exc

    def loads(self, data: bytes) -> Any:
        """Decode one JSON item.

        Raises:
            SerializationError: The bytes are not UTF-8 JSON, or are JSON this process
                cannot read (nested deeper than its recursion limit, or an int longer
                than ``sys.get_int_max_str_digits()``).
        """
        try:
            if data.isdigit() and (data[0] != 0x30 or len(data) == 1):  # a plain int
                return int(data)
            return self._decoder.decode(data.decode())
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise SerializationError(_decode_failure(exc)) from exc


def _is_digit_limit(exc: BaseException) -> bool:
    # Python refuses to convert ints longer than sys.get_int_max_str_digits() (a guard
    # against quadratic time), with a ValueError told apart only by its text.
    return isinstance(exc, ValueError) and "integer string conversion" in str(exc)


def _encode_failure(item: Any, exc: BaseException) -> str:
    kind = type(item).__name__
    if isinstance(exc, RecursionError):
        return (
            f"cannot encode {kind} item as JSON: it nests deeper than the recursion limit "
            f"({sys.getrecursionlimit()}); flatten it"
        )
    if _is_digit_limit(exc):
        return (
            f"cannot encode {kind} item as JSON: it holds an int of more than "
            f"{int_max_str_digits()} digits, the limit of this process "
            "(sys.get_int_max_str_digits()); store big numbers as strings, so that "
            "every reader can decode them whatever its own limit"
        )
    return (
        f"cannot encode {kind} item as JSON: {exc}; "
        "put JSON data (dict, list, str, int, float, bool, None), "
        "or open the queue with serializer='pickle' if every writer is trusted"
    )


def _decode_failure(exc: BaseException) -> str:
    # Valid JSON that this process cannot read, written by one with other limits.
    if isinstance(exc, RecursionError):
        return (
            "stored item nests deeper than this process can decode (recursion limit "
            f"{sys.getrecursionlimit()}): {exc}"
        )
    if _is_digit_limit(exc):
        return (
            f"stored item holds an int of more than {int_max_str_digits()} digits, "
            f"the limit of this process (sys.get_int_max_str_digits()): {exc}"
        )
    return f"stored item is not valid JSON: {exc}"


def _not_json(constant: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON: refused as when writing.
    raise ValueError(f"{constant} is not JSON")


class PickleSerializer:
    """Encode any picklable object.  Only for stores that no untrusted party can write."""

    name = "pickle"

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self._protocol = protocol

    def dumps(self, item: Any) -> bytes:
        """Pickle one item.

        Raises:
            SerializationError: The item cannot be pickled.
        """
        try:
            return pickle.dumps(item, protocol=self._protocol)
        except Exception as exc:
            raise SerializationError(f"cannot pickle {type(item).__name__} item: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        """Unpickle one item.

        Raises:
            SerializationError: The bytes are not a pickle.
        """
        try:
            return pickle.loads(data)  # opt-in by name: see the class docstring
        except Exception as exc:
            raise SerializationError(f"stored item is not a valid pickle: {exc}") from exc


def resolve_serializer(spec: str | Serializer) -> Serializer:
    """Return the serializer named by *spec* (``"json"`` or ``"pickle"``), or *spec* itself.

    Raises:
        ValueError: *spec* is an unknown name.
        TypeError: *spec* is neither a name nor an object with ``dumps`` and ``loads``.
    """
    if isinstance(spec, str):
        if spec == "json":
            return JSONSerializer()
        if spec == "pickle":
            return PickleSerializer()
        raise ValueError(f"unknown serializer {spec!r}: use 'json', 'pickle' or a Serializer")
    if isinstance(spec, Serializer):
        return spec
    raise TypeError(
        f"serializer must be 'json', 'pickle' or an object with dumps/loads, not {spec!r}"
    )
