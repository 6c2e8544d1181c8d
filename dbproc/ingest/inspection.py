"""Inspectors: load them once per pass, ask every candidate product, validate the answers.

An inspector is ``path.py:function`` (function defaults to ``inspect``), called with the
file's absolute path as a ``str`` and the product's ``inspector_args``. It returns None
("not mine") or a dict (interface.md section 4). A product without an inspector claims
every name that matches its format. Exactly one product must claim a file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import json
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from dbproc.clock import iso_utc, midnight
from dbproc.mission import resolve_code_path, split_inspector_spec
from dbproc.naming import FilenameFormat, ParsedName, is_free_value, make_slot
from dbproc.version import Version

logger = logging.getLogger("dbproc.inspection")

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


@dataclass
class Verdict:
    """The outcome of asking every product about one file."""

    facts: FileFacts | None = None
    #: product name -> what its inspector returned (or the exception), for `dbproc inspect`
    answers: dict[str, Any] = field(default_factory=dict)
    #: products not asked because the name does not match their format
    unmatched: list[str] = field(default_factory=list)
    #: a short reason code and a message when no single product claims the file
    reason: str | None = None
    message: str | None = None
    detail: str | None = None


class InspectorFailure(Exception):
    """An inspector raised, could not be loaded, or returned something invalid."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail



class InspectorSet:
    """The inspectors of a mission, each module loaded at most once (per pass).

    Modules are cached by their resolved path, so products naming different functions of
    one file (``l0.py:first``, ``l0.py:second``) share one load. ``loads`` counts loads.
    """

    def __init__(self, products: Sequence[ProductRule], codes_dir: Path) -> None:
        self.products = list(products)
        self.codes_dir = codes_dir
        self._modules: dict[Path, ModuleType | InspectorFailure] = {}
        self.loads = 0

    def function(self, spec: str) -> Callable[..., Any]:
        """The inspector function for ``spec``; raise :class:`InspectorFailure` if unusable."""
        path_text, function = split_inspector_spec(spec)
        path = resolve_code_path(self.codes_dir, path_text)
        module = self._modules.get(path)
        if module is None:
            module = self._load(spec, path)
            self._modules[path] = module
        if isinstance(module, InspectorFailure):
            raise InspectorFailure(
                f"inspector {spec} failed to load: {module}", module.detail
            )
        fn = getattr(module, function, None)
        if not callable(fn):
            raise InspectorFailure(f"inspector {spec}: {path} defines no function {function!r}")
        return fn  # type: ignore[no-any-return]

    def _load(self, spec: str, path: Path) -> ModuleType | InspectorFailure:
        self.loads += 1
        module_name = f"dbproc_inspector_{abs(hash(str(path))):x}"
        try:
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            if module_spec is None or module_spec.loader is None:
                return InspectorFailure(f"cannot load {path} as Python")
            module: ModuleType = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            with _quiet(spec):
                module_spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code
            sys.modules.pop(module_name, None)
            return InspectorFailure(repr(exc), traceback.format_exc(limit=-3))
        return module

    def identify(self, path: Path, name: str | None = None, *, only: str | None = None
                 ) -> Verdict:
        """Ask every product whose format matches (or just the product ``only``);
        exactly one must claim the file."""
        name = name if name is not None else path.name
        verdict = Verdict()
        claims: list[FileFacts] = []
        failures: list[tuple[str, InspectorFailure]] = []
        for product in self.products:
            if only is not None and product.name != only:
                continue
            parsed = product.format.match(name)
            if parsed is None:
                verdict.unmatched.append(product.name)
                continue
            try:
                facts = self._ask(product, path, parsed)
            except InspectorFailure as exc:
                failures.append((product.name, exc))
                verdict.answers[product.name] = {"error": str(exc)}
                continue
            verdict.answers[product.name] = None if facts is None else {
                **facts_json(facts), "start": iso_utc(facts.start), "stop": iso_utc(facts.stop)}
            if facts is not None:
                claims.append(facts)
        if failures:
            _product_name, failure = failures[0]
            verdict.reason = "inspector_error"
            verdict.message = str(failure)
            verdict.detail = failure.detail
            if len(failures) > 1:
                verdict.message += f" (and {len(failures) - 1} more inspector failure(s))"
            if claims:
                verdict.message += (
                    f"; it was also claimed by {', '.join(c.product.name for c in claims)}"
                )
        elif not claims:
            verdict.reason = "no_product"
            verdict.message = (
                "no product claims it: its name matches no product's format"
                if not verdict.answers
                else "no product claims it: the inspectors of "
                f"{', '.join(sorted(verdict.answers))} returned None"
            )
        elif len(claims) > 1:
            verdict.reason = "ambiguous"
            verdict.message = (
                "claimed by several products: "
                f"{', '.join(sorted(c.product.name for c in claims))}; "
                "make their formats or inspectors exclusive"
            )
        else:
            verdict.facts = claims[0]
        return verdict

    def _ask(self, product: ProductRule, path: Path, parsed: ParsedName) -> FileFacts | None:
        if product.inspector is None:
            if parsed.date is None:
                raise InspectorFailure(
                    f"product {product.name}: the name gives no date and "
                    "the product has no inspector"
                )
            return _facts(product, parsed, {"date": parsed.date}, "format")
        fn = self.function(product.inspector)
        try:
            with _quiet(product.inspector):
                answer = fn(str(path.absolute()), **dict(product.inspector_args))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code
            raise InspectorFailure(
                f"inspector {product.inspector} of product {product.name} raised {exc!r}",
                traceback.format_exc(limit=-3),
            ) from exc
        if answer is None:
            return None
        return _facts(product, parsed, answer, f"inspector {product.inspector}")


_STDOUT_LOCK = threading.RLock()


@contextlib.contextmanager
def _quiet(spec: str) -> Iterator[None]:
    """Keep what user code prints off dbproc's stdout (it would corrupt ``--json``).

    ``sys.stdout`` is process-wide, so callers in several threads take turns.
    """
    buffer = io.StringIO()
    try:
        with _STDOUT_LOCK, contextlib.redirect_stdout(buffer):
            yield
    finally:
        printed = buffer.getvalue()
        if printed:
            logger.debug("inspector %s printed: %s", spec, printed.rstrip()[:2000])


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


def _facts(product: ProductRule, parsed: ParsedName, answer: object, who: str) -> FileFacts:
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
