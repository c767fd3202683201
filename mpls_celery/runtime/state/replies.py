"""Typed views of redis-py replies. Our clients never set decode_responses, so replies are bytes;
redis-py's annotations cannot know that, and these helpers say it once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def blob(value: Any) -> bytes | None:
    return cast(bytes | None, value)


def blobs(values: Any) -> list[bytes | None]:
    return list(cast(Sequence[bytes | None], values))


def text_hash(raw: Any) -> dict[str, str]:
    return {text(k): text(v) for k, v in cast(Mapping[Any, Any], raw).items()}


def stream_entries(raw: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    return [(text(entry_id), dict(fields)) for entry_id, fields in cast(list[Any], raw or [])]


def scored(raw: Any) -> list[tuple[str, float]]:
    return [(text(member), float(score)) for member, score in cast(list[Any], raw)]


def hash_of(raw: Any) -> dict[bytes, bytes]:
    """A hash reply (anything else — an error in a pipeline — reads as empty)."""
    return cast(dict[bytes, bytes], raw) if isinstance(raw, dict) else {}
