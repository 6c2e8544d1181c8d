"""The filename format engine: render a name from fields, parse a name into fields.

A format is text with fields in braces (``testDB_{Y}{m}{d}_v{VERSION}.cat``). Date
fields are ``{Y} {m} {d} {j} {y} {b} {H} {M} {S} {DATE}``, ``{VERSION}`` is ``x.y.z``,
and any other ``{name}`` is a free field whose value an inspector reports as a keyword.
``{{`` and ``}}`` stand for literal braces. Parsing uses an anchored regex in which every
literal is escaped, so ``.`` in a format only ever matches a dot.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from dbproc.version import Version

DATE_FIELDS = ("Y", "m", "d", "j", "y", "b", "DATE")
TIME_FIELDS = ("H", "M", "S")
VERSION_FIELD = "VERSION"
RESERVED_FIELDS = frozenset((*DATE_FIELDS, *TIME_FIELDS, VERSION_FIELD))
DIR_FIELDS = frozenset(("Y", "m", "d", "j", "y", "b", "DATE"))

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: What a free field's value may look like: starts with a letter or digit, then letters,
#: digits, ``_ + - .``; never a path separator, never ``.``/``..``, never empty.
FREE_VALUE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_+\-.]*"
_FREE_VALUE_RE = re.compile(rf"^{FREE_VALUE_PATTERN}$")
_FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_NAME_LENGTH = 255

_FIELD_REGEX = {
    "Y": r"[0-9]{4}",
    "m": r"[0-9]{2}",
    "d": r"[0-9]{2}",
    "j": r"[0-9]{3}",
    "y": r"[0-9]{2}",
    "b": r"[A-Za-z]{3}",
    "H": r"[0-9]{2}",
    "M": r"[0-9]{2}",
    "S": r"[0-9]{2}",
    "DATE": r"[0-9]{8}",
    "VERSION": r"[0-9]+\.[0-9]+\.[0-9]+",
}


class FormatError(ValueError):
    """A filename format that cannot be used, or fields that cannot be rendered into it."""


def is_free_value(value: object) -> bool:
    """True when ``value`` may be used as the value of a free field."""
    return isinstance(value, str) and bool(_FREE_VALUE_RE.match(value)) and len(value) <= 100


@dataclass(frozen=True)
class ParsedName:
    """What a filename says through its format.

    ``date`` is None when the format has no (complete) date; ``start`` is the date plus
    any ``{H}{M}{S}`` of the name; ``keywords`` holds the free fields.
    """

    date: dt.date | None
    start: dt.datetime | None
    version: Version | None
    keywords: dict[str, str] = field(default_factory=dict)
    time_of_day: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class _Part:
    literal: str | None = None
    field: str | None = None


def _split(text: str) -> tuple[_Part, ...]:
    parts: list[_Part] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
        elif char == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
        elif char == "{":
            end = text.find("}", i)
            if end < 0:
                raise FormatError(f"unclosed '{{' at position {i} in {text!r}")
            name = text[i + 1 : end]
            if not _FIELD_NAME_RE.match(name):
                raise FormatError(
                    f"field {{{name}}} in {text!r} is not a name (use letters, digits and _)"
                )
            if literal:
                parts.append(_Part(literal="".join(literal)))
                literal = []
            parts.append(_Part(field=name))
            i = end + 1
        elif char == "}":
            raise FormatError(f"unmatched '}}' at position {i} in {text!r} (write '}}}}')")
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append(_Part(literal="".join(literal)))
    return tuple(parts)


@dataclass(frozen=True)
class FilenameFormat:
    """A parsed filename format. Build with :meth:`parse`."""

    text: str
    parts: tuple[_Part, ...]

    @classmethod
    def parse(cls, text: str) -> FilenameFormat:
        """Parse a format; raise :class:`FormatError` when it is malformed."""
        if not isinstance(text, str) or not text:
            raise FormatError("a filename format must be a non-empty string")
        parts = _split(text)
        if text in (".", ".."):
            raise FormatError(f"format {text!r} names a folder, not a file")
        for part in parts:
            if part.literal is not None and ("/" in part.literal or "\\" in part.literal):
                raise FormatError(f"format {text!r} contains a path separator")
            if part.literal is not None and "\x00" in part.literal:
                raise FormatError(f"format {text!r} contains a NUL character")
        for first, second in zip(parts, parts[1:], strict=False):
            if (
                first.field is not None
                and second.field is not None
                and first.field not in RESERVED_FIELDS
                and second.field not in RESERVED_FIELDS
            ):
                raise FormatError(
                    f"free fields {{{first.field}}}{{{second.field}}} touch in {text!r}: "
                    "put a separator between them"
                )
        return cls(text=text, parts=parts)

    @cached_property
    def fields(self) -> frozenset[str]:
        """Every field name in the format."""
        return frozenset(p.field for p in self.parts if p.field is not None)

    @cached_property
    def free_fields(self) -> tuple[str, ...]:
        """Free field names, in order of first appearance."""
        seen: list[str] = []
        for p in self.parts:
            if p.field is not None and p.field not in RESERVED_FIELDS and p.field not in seen:
                seen.append(p.field)
        return tuple(seen)

    @property
    def has_version(self) -> bool:
        """True when the format contains ``{VERSION}``."""
        return VERSION_FIELD in self.fields

    @property
    def has_date(self) -> bool:
        """True when the fields of a name determine a calendar date."""
        f = self.fields
        year = "Y" in f or "y" in f
        return "DATE" in f or (year and ("j" in f or (("m" in f or "b" in f) and "d" in f)))

    @property
    def time_fields(self) -> tuple[str, ...]:
        """The time-of-day fields present."""
        return tuple(t for t in TIME_FIELDS if t in self.fields)

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """The anchored regex matching names of this format."""
        pattern: list[str] = ["^"]
        seen: set[str] = set()
        for p in self.parts:
            if p.literal is not None:
                pattern.append(re.escape(p.literal))
                continue
            assert p.field is not None
            group = _group_name(p.field)
            if p.field in seen:
                pattern.append(f"(?P={group})")
                continue
            seen.add(p.field)
            body = _FIELD_REGEX.get(p.field, f"{FREE_VALUE_PATTERN}?")
            pattern.append(f"(?P<{group}>{body})")
        pattern.append("$")
        return re.compile("".join(pattern))

    def match(self, name: str) -> ParsedName | None:
        """Parse ``name``; None when it does not match the format or holds an invalid date."""
        if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
            return None
        m = self.regex.match(name)
        if m is None:
            return None
        raw = {f: m.group(_group_name(f)) for f in self.fields}
        try:
            date = _date_from_fields(raw)
            time_of_day = _time_from_fields(raw)
            version = Version.parse(raw[VERSION_FIELD]) if VERSION_FIELD in raw else None
        except ValueError:
            return None
        start = None
        if date is not None:
            h, mi, s = time_of_day or (0, 0, 0)
            start = dt.datetime(date.year, date.month, date.day, h, mi, s)
        keywords = {f: raw[f] for f in self.free_fields}
        return ParsedName(date, start, version, keywords, time_of_day)

    def render(
        self,
        *,
        date: dt.date | None = None,
        start: dt.datetime | None = None,
        version: Version | None = None,
        keywords: Mapping[str, str] | None = None,
    ) -> str:
        """Render a name; raise :class:`FormatError` naming any missing or unsafe value.

        ``start`` gives the time fields (and the date when ``date`` is not given).
        """
        keywords = dict(keywords or {})
        if date is None and start is not None:
            date = start.date()
        when = start or (dt.datetime(date.year, date.month, date.day) if date else None)
        out: list[str] = []
        for p in self.parts:
            if p.literal is not None:
                out.append(p.literal)
                continue
            assert p.field is not None
            if p.field == VERSION_FIELD:
                if version is None:
                    raise FormatError(f"format {self.text!r} needs a version")
                out.append(str(version))
            elif p.field in RESERVED_FIELDS:
                if when is None:
                    raise FormatError(f"format {self.text!r} needs a date for {{{p.field}}}")
                out.append(_render_date_field(p.field, when))
            else:
                value = keywords.get(p.field)
                if value is None:
                    raise FormatError(
                        f"format {self.text!r} needs a value for the free field {{{p.field}}}"
                    )
                if not is_free_value(value):
                    raise FormatError(
                        f"value {value!r} of {{{p.field}}} is not allowed in a filename "
                        "(letters, digits, '_', '+', '-', '.'; starting with a letter or digit)"
                    )
                out.append(value)
        name = "".join(out)
        parsed = self.match(name)
        if parsed is None or any(parsed.keywords.get(k) != keywords[k] for k in self.free_fields):
            raise FormatError(
                f"the name {name!r} does not read back unambiguously through "
                f"{self.text!r}; change the keyword values or the format"
            )
        return name


def _group_name(field_name: str) -> str:
    return f"f_{field_name}"


def _render_date_field(name: str, when: dt.datetime) -> str:
    if name == "Y":
        return f"{when.year:04d}"
    if name == "m":
        return f"{when.month:02d}"
    if name == "d":
        return f"{when.day:02d}"
    if name == "j":
        return f"{when.timetuple().tm_yday:03d}"
    if name == "y":
        return f"{when.year % 100:02d}"
    if name == "b":
        return MONTHS[when.month - 1]
    if name == "DATE":
        return f"{when.year:04d}{when.month:02d}{when.day:02d}"
    if name == "H":
        return f"{when.hour:02d}"
    if name == "M":
        return f"{when.minute:02d}"
    if name == "S":
        return f"{when.second:02d}"
    raise FormatError(f"unknown date field {{{name}}}")


def render_dir(template: str, date: dt.date) -> str:
    """Render a product ``dir`` template (fields ``{Y} {m} {d} {j} {y} {b} {DATE}``)."""
    when = dt.datetime(date.year, date.month, date.day)
    out: list[str] = []
    for p in _split(template):
        if p.literal is not None:
            out.append(p.literal)
        elif p.field in DIR_FIELDS:
            out.append(_render_date_field(p.field, when))
        else:
            raise FormatError(
                f"dir template {template!r} has field {{{p.field}}}; "
                f"only {', '.join('{' + f + '}' for f in sorted(DIR_FIELDS))}"
            )
    return "".join(out)


def dir_template_fields(template: str) -> frozenset[str]:
    """The fields of a ``dir`` template; raise :class:`FormatError` when malformed."""
    return frozenset(p.field for p in _split(template) if p.field is not None)


def _year_from_two_digits(yy: int) -> int:
    return 1900 + yy if yy >= 69 else 2000 + yy


def _date_from_fields(raw: Mapping[str, str]) -> dt.date | None:
    """The date the fields of a name give; ValueError when they are invalid or disagree."""
    candidates: list[dt.date] = []
    if "DATE" in raw:
        text = raw["DATE"]
        candidates.append(dt.date(int(text[:4]), int(text[4:6]), int(text[6:])))
    year = (
        int(raw["Y"])
        if "Y" in raw
        else (_year_from_two_digits(int(raw["y"])) if "y" in raw else None)
    )
    month = int(raw["m"]) if "m" in raw else (_month_from_abbr(raw["b"]) if "b" in raw else None)
    if year is not None and month is not None and "d" in raw:
        candidates.append(dt.date(year, month, int(raw["d"])))
    if year is not None and "j" in raw:
        doy = int(raw["j"])
        date_j = dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
        if doy < 1 or date_j.year != year:
            raise ValueError(f"day of year {doy} is not in {year}")
        candidates.append(date_j)
    if not candidates:
        if month is not None and not 1 <= month <= 12:
            raise ValueError("bad month")
        return None
    date = candidates[0]
    when = dt.datetime(date.year, date.month, date.day)
    for name in DATE_FIELDS:
        if name in raw and _render_date_field(name, when).lower() != raw[name].lower():
            raise ValueError(f"date field {{{name}}} disagrees with {date}")
    return date


def _month_from_abbr(text: str) -> int:
    lowered = [m.lower() for m in MONTHS]
    if text.lower() not in lowered:
        raise ValueError(f"{text!r} is not a month abbreviation")
    return lowered.index(text.lower()) + 1


def _time_from_fields(raw: Mapping[str, str]) -> tuple[int, int, int] | None:
    if not any(t in raw for t in TIME_FIELDS):
        return None
    h, mi, s = (int(raw.get(t, "0")) for t in TIME_FIELDS)
    if not (0 <= h <= 23 and 0 <= mi <= 59 and 0 <= s <= 59):
        raise ValueError("bad time of day")
    return (h, mi, s)


def make_slot(keywords: Mapping[str, str], time_of_day: tuple[int, int, int] | None) -> str:
    """The identity of a file within its (product, date) besides its version."""
    text = ";".join(f"{k}={keywords[k]}" for k in sorted(keywords))
    if time_of_day is not None:
        text = f"@{time_of_day[0]:02d}{time_of_day[1]:02d}{time_of_day[2]:02d}" + (
            f";{text}" if text else ""
        )
    return text
