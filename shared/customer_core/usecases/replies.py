"""Stored replies of idempotent calls: a frozen dataclass result as JSON and back.

`idempotency.run`/`finish` store a use case's result so that a replay answers
exactly what the first call did. Results are frozen dataclasses of ids, times,
enums, numbers, strings, optionals, dicts and nested dataclasses; this codec
writes them by their type hints, so a use case needs no codec of its own.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return [[_dump(k), _dump(v)] for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    return value


def _load(hint: Any, raw: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if raw is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _load(inner, raw)
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        return {_load(key_hint, k): _load(value_hint, v) for k, v in raw}
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(hint)
        return origin(_load(inner, v) for v in raw)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint)
        fields = {f.name: _load(hints[f.name], raw[f.name]) for f in dataclasses.fields(hint)}
        return hint(**fields)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(raw)
    if hint is uuid.UUID:
        return uuid.UUID(raw)
    if hint is datetime:
        return datetime.fromisoformat(raw)
    return raw


class DataclassCodec(Generic[T]):
    """An `idempotency.Codec` for results of type `kind` (a frozen dataclass)."""

    def __init__(self, kind: type[T]) -> None:
        self.kind = kind

    def encode(self, value: T) -> bytes:
        return json.dumps(_dump(value), separators=(",", ":")).encode()

    def decode(self, raw: bytes) -> T:
        loaded: T = _load(self.kind, json.loads(raw))
        return loaded
