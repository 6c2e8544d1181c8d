"""``dbproc files --where`` expressions."""

from __future__ import annotations

import pytest

from dbproc.errors import UsageError
from dbproc.provenance.inventory import MetadataFilter


@pytest.mark.parametrize(
    ("text", "key", "op", "value"),
    [
        ("temperature_K<0.02", "temperature_K", "<", "0.02"),
        ("temperature_K <= 0.02", "temperature_K", "<=", "0.02"),
        ("mode!=safe", "mode", "!=", "safe"),
        ("gain>=2", "gain", ">=", "2"),
        ("note=a=b", "note", "=", "a=b"),
        ("range>a=b", "range", ">", "a=b"),  # the first operator splits
        ("title=Third Part.", "title", "=", "Third Part."),
    ],
)
def test_parse(text: str, key: str, op: str, value: str) -> None:
    assert MetadataFilter.parse(text) == MetadataFilter(key, op, value)


@pytest.mark.parametrize("text", ["temperature", "=3", " <3", ""])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="write KEY=VALUE"):
        MetadataFilter.parse(text)


@pytest.mark.parametrize(
    ("text", "metadata", "expected"),
    [
        ("t<0.02", {"t": 0.0158}, True),
        ("t<0.02", {"t": 0.5}, False),
        ("t=0.5", {"t": 0.5}, True),
        ("n=2", {"n": 2}, True),
        ("n>10", {"n": 9}, False),  # numbers, not text: "9" > "10" as text
        ("ok=true", {"ok": True}, True),
        ("ok=true", {"ok": False}, False),
        ("ok=no", {"ok": False}, True),
        ("mode=science", {"mode": "science"}, True),
        ("mode!=science", {"mode": "survey"}, True),
        ("mode!=science", {}, False),  # a missing key matches nothing
        ("mode=science", None, False),
        ("name>m", {"name": "n"}, True),  # text compares as text
    ],
)
def test_matches(text: str, metadata: dict[str, object] | None, expected: bool) -> None:
    assert MetadataFilter.parse(text).matches(metadata) is expected
