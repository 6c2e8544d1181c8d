"""What identification produces, and how an answer becomes it: a product's rules
(``ProductRule``), the facts of a claimed file (``FileFacts``), ``InspectorFailure``, and
the validation of an inspector's answer (or a name's own fields) into ``FileFacts``.

The rules of an answer are interface.md section 4: the keys of ``RESULT_KEYS``, a required
date that agrees with the name, an interval, a version and keywords that agree with it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dbproc.clock import midnight
from dbproc.naming import FilenameFormat, ParsedName, is_free_value, make_slot
from dbproc.version import Version

RESULT_KEYS = frozenset({"date", "start", "stop", "version", "keywords", "metadata"})
DEFAULT_VERSION = Version(1, 0, 0)


@dataclass(frozen=True)
class ProductRule:
    """What identification needs to know of a product."""

    id: int
    name: str
    format: FilenameFormat
    inspector: str | None
    inspector_args: Mapping[str, Any]
    dir: str
    #: seconds one call of its inspector may take (None: the mission's default)
    inspector_timeout: float | None = None


@dataclass(frozen=True)
class FileFacts:
    """What a claimed file is: its product, date, interval, version and identity."""

    product: ProductRule
    date: dt.date
    start: dt.datetime
    stop: dt.datetime
    version: Version
    keywords: Mapping[str, str]
    metadata: Mapping[str, Any]
    slot: str


class InspectorFailure(Exception):
    """An inspector raised, could not be loaded, returned something invalid
    (``inspector_error``), overran its time (``inspector_timeout``) or killed its
    process (``inspector_crashed``): ``reason`` says which."""

    def __init__(
        self, message: str, detail: str | None = None, reason: str = "inspector_error"
    ) -> None:
        super().__init__(message)
        self.detail = detail
        self.reason = reason


def facts_json(facts: FileFacts) -> dict[str, Any]:
    """What an inspector's claim says, as JSON (``dbproc inspect``, run records)."""
    return {
        "product": facts.product.name,
        "date": facts.date.isoformat(),
        "start": facts.start.isoformat(),
        "stop": facts.stop.isoformat(),
        "version": str(facts.version),
        "keywords": dict(facts.keywords),
        "metadata": dict(facts.metadata),
    }


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip())
    raise ValueError(f"{value!r} is not a date")


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date):
        return midnight(value)
    if isinstance(value, str):
        return _as_datetime(dt.datetime.fromisoformat(value.strip()))
    raise ValueError(f"{value!r} is not a date-time")


def facts_from_answer(
    product: ProductRule, parsed: ParsedName, answer: object, who: str
) -> FileFacts:
    """The facts of ``answer`` (what ``who`` returned for ``product``), validated against
    the parsed name; raise :class:`InspectorFailure` naming the problem."""

    def bad(problem: str) -> InspectorFailure:
        shown = repr(answer)
        if len(shown) > 300:
            shown = shown[:300] + "…"
        return InspectorFailure(
            f"{who} of product {product.name} returned an invalid result: {problem}",
            f"returned: {shown}",
        )

    if not isinstance(answer, dict):
        raise bad(f"expected a dict or None, got {type(answer).__name__}")
    unknown = sorted(set(answer) - RESULT_KEYS)
    if unknown:
        raise bad(
            f"unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(RESULT_KEYS))}"
        )
    if answer.get("date") is None:
        raise bad("'date' is required")
    try:
        date = _as_date(answer["date"])
    except ValueError as exc:
        raise bad(f"'date': {exc}") from None
    if parsed.date is not None and parsed.date != date:
        raise bad(f"date {date} disagrees with the date {parsed.date} in the name")
    try:
        start = _as_datetime(answer["start"]) if answer.get("start") is not None else None
        stop = _as_datetime(answer["stop"]) if answer.get("stop") is not None else None
    except ValueError as exc:
        raise bad(f"'start'/'stop': {exc}") from None
    if start is None:
        start = parsed.start if parsed.start is not None and parsed.date == date else midnight(date)
    if stop is None:
        stop = midnight(date) + dt.timedelta(days=1)
        if stop <= start:
            stop = start + dt.timedelta(days=1)
    if not start < stop:
        raise bad(f"start {start} is not before stop {stop}")
    version = _version(answer.get("version"), parsed, bad)
    keywords = _keywords(answer.get("keywords"), parsed, bad)
    metadata = answer.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad("'metadata' must be a dict")
    try:
        metadata = json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise bad(f"'metadata' is not JSON-able: {exc}") from None
    slot = make_slot(keywords, parsed.time_of_day)
    if len(slot) > 255:
        raise bad("keywords are too long (more than 255 characters together)")
    return FileFacts(product, date, start, stop, version, keywords, metadata, slot)


def _version(value: Any, parsed: ParsedName, bad: Callable[[str], InspectorFailure]) -> Version:
    if value is None:
        return parsed.version or DEFAULT_VERSION
    if isinstance(value, Version):
        version = value
    else:
        try:
            version = Version.parse(value)
        except ValueError as exc:
            raise bad(f"'version': {exc}") from None
    if parsed.version is not None and parsed.version != version:
        raise bad(f"version {version} disagrees with version {parsed.version} in the name")
    return version


def _keywords(
    value: Any, parsed: ParsedName, bad: Callable[[str], InspectorFailure]
) -> dict[str, str]:
    keywords = dict(parsed.keywords)
    if value is None:
        return keywords
    if not isinstance(value, dict):
        raise bad("'keywords' must be a dict of strings")
    for key, item in value.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise bad(f"keyword name {key!r} is not an identifier")
        if not is_free_value(item):
            raise bad(
                f"keyword {key}={item!r} is not a safe value (letters, digits, "
                "'_', '+', '-', '.'; no path separators)"
            )
        if key in parsed.keywords and parsed.keywords[key] != item:
            raise bad(f"keyword {key}={item!r} disagrees with {parsed.keywords[key]!r} in the name")
        keywords[key] = item
    return keywords
