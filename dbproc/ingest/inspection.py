"""Inspectors: run them in worker processes, ask every candidate product, judge the claims.

An inspector is ``path.py:function`` (function defaults to ``inspect``), called with the
file's absolute path as a ``str`` and the product's ``inspector_args``. It returns None
("not mine") or a dict (interface.md section 4; validated by :mod:`dbproc.ingest.facts`).
A product without an inspector claims every name that matches its format. Exactly one
product must claim a file.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbproc.clock import iso_utc
from dbproc.control import activity
from dbproc.ingest.facts import (
    FileFacts,
    InspectorFailure,
    ProductRule,
    facts_from_answer,
    facts_json,
)
from dbproc.ingest.inspector_pool import (
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_WORKERS,
    Call,
    InspectorPool,
    Outcome,
)
from dbproc.mission import resolve_code_path, split_inspector_spec
from dbproc.naming import ParsedName

logger = logging.getLogger("dbproc.inspection")

#: seconds one inspector call may take unless ``[ingest] inspector_timeout`` says otherwise
DEFAULT_TIMEOUT = 60.0


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


#: for one file and product: the parsed name (None: no match) and the facts, the failure,
#: or the index of the inspector call that will tell
_Asked = tuple[ProductRule, ParsedName | None, FileFacts | InspectorFailure | int]


class InspectorSet:
    """The inspectors of a mission, run in worker processes (contract section 10).

    The worker pool starts on the first call that needs an inspector and lives until
    :meth:`close` (or garbage collection); each worker loads a module at most once, so a
    set is meant to live for one pass. ``loads`` counts the distinct modules asked for.
    """

    def __init__(
        self,
        products: Sequence[ProductRule],
        codes_dir: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        workers: int = DEFAULT_WORKERS,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self.products = list(products)
        self.codes_dir = codes_dir
        self.timeout = timeout
        self._workers = workers
        self._max_answer_bytes = max_answer_bytes
        self._pool: InspectorPool | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._modules: set[Path] = set()
        self.loads = 0

    @property
    def pool(self) -> InspectorPool:
        """The worker pool (started on first use)."""
        if self._pool is None:
            self._pool = InspectorPool(self._workers, self._max_answer_bytes)
            self._finalizer = weakref.finalize(self, self._pool.close)
        return self._pool

    def close(self) -> None:
        """Stop the worker processes."""
        if self._finalizer is not None:
            self._finalizer()
        self._pool = None
        self._finalizer = None

    def __enter__(self) -> InspectorSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def identify(self, path: Path, name: str | None = None, *, only: str | None = None) -> Verdict:
        """Ask every product whose format matches (or just the product ``only``);
        exactly one must claim the file."""
        return self.identify_many([(path, name if name is not None else path.name)], only=only)[0]

    def identify_many(
        self, items: Sequence[tuple[Path, str]], *, only: str | None = None
    ) -> list[Verdict]:
        """:meth:`identify` for many files at once: their inspector calls go to the
        workers together (one round-trip per window of calls, not per file)."""
        asked: list[list[_Asked]]
        asked = []
        calls: list[Call] = []
        for path, name in items:
            mine: list[_Asked] = []
            for product in self.products:
                if only is not None and product.name != only:
                    continue
                parsed = product.format.match(name)
                if parsed is None:
                    mine.append((product, None, 0))
                    continue
                if product.inspector is None:
                    mine.append((product, parsed, _by_format(product, parsed)))
                    continue
                mine.append((product, parsed, len(calls)))
                calls.append(self._call(product, path, name))
            asked.append(mine)
        outcomes = self.pool.run(calls, _tell_inspecting) if calls else []
        return [self._verdict(mine, outcomes) for mine in asked]

    def _call(self, product: ProductRule, path: Path, name: str) -> Call:
        assert product.inspector is not None
        path_text, function = split_inspector_spec(product.inspector)
        module = resolve_code_path(self.codes_dir, path_text)
        if module not in self._modules:
            self._modules.add(module)
            self.loads += 1
        timeout = product.inspector_timeout or self.timeout
        return Call(
            str(module), function, str(path.absolute()), dict(product.inspector_args), timeout, name
        )

    def _verdict(
        self,
        mine: list[_Asked],
        outcomes: list[Outcome],
    ) -> Verdict:
        verdict = Verdict()
        claims: list[FileFacts] = []
        failures: list[tuple[str, InspectorFailure]] = []
        for product, parsed, got in mine:
            if parsed is None:
                verdict.unmatched.append(product.name)
                continue
            facts: FileFacts | None
            try:
                if isinstance(got, InspectorFailure):
                    raise got
                facts = (
                    got if isinstance(got, FileFacts) else _answer(product, parsed, outcomes[got])
                )
            except InspectorFailure as exc:
                failures.append((product.name, exc))
                verdict.answers[product.name] = {"error": str(exc)}
                continue
            verdict.answers[product.name] = (
                None
                if facts is None
                else {
                    **facts_json(facts),
                    "start": iso_utc(facts.start),
                    "stop": iso_utc(facts.stop),
                }
            )
            if facts is not None:
                claims.append(facts)
        _judge(verdict, claims, failures)
        return verdict


def _tell_inspecting(label: str, seconds: float) -> None:
    activity.report(f"inspecting {label} for {seconds:.0f} s")


def _by_format(product: ProductRule, parsed: ParsedName) -> FileFacts | InspectorFailure:
    if parsed.date is None:
        return InspectorFailure(
            f"product {product.name}: the name gives no date and the product has no inspector"
        )
    try:
        return facts_from_answer(product, parsed, {"date": parsed.date}, "format")
    except InspectorFailure as exc:
        return exc


def _answer(product: ProductRule, parsed: ParsedName, outcome: Outcome) -> FileFacts | None:
    """The facts of an inspector's answer; raise :class:`InspectorFailure` if it failed."""
    who = f"inspector {product.inspector}"
    if outcome.kind == "ok":
        if outcome.answer is None:
            return None
        return facts_from_answer(product, parsed, outcome.answer, who)
    if outcome.kind == "load":
        message = f"{who} failed to load: {outcome.message}"
    else:
        message = f"{who} of product {product.name} {outcome.message}"
    reason = {"timeout": "inspector_timeout", "crashed": "inspector_crashed"}.get(
        outcome.kind, "inspector_error"
    )
    raise InspectorFailure(message, outcome.detail, reason)


def _judge(
    verdict: Verdict, claims: list[FileFacts], failures: list[tuple[str, InspectorFailure]]
) -> None:
    if failures:
        _product_name, failure = failures[0]
        verdict.reason = failure.reason
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
