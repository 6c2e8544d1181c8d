"""The ``interface.quality.revision`` version value type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_VERSION_RE = re.compile(r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$")


class VersionPart(StrEnum):
    """Which part of a version a bump raises."""

    INTERFACE = "interface"
    QUALITY = "quality"
    REVISION = "revision"


@dataclass(frozen=True, order=True)
class Version:
    """A file or code version ``interface.quality.revision``; compares as a tuple.

    >>> Version.parse("1.2.3").bump(VersionPart.QUALITY)
    Version(interface=1, quality=3, revision=0)
    """

    interface: int
    quality: int
    revision: int

    def __post_init__(self) -> None:
        for part in (self.interface, self.quality, self.revision):
            if not isinstance(part, int) or isinstance(part, bool) or part < 0:
                raise ValueError(f"version parts must be whole numbers >= 0, got {self!r}")
        if self.interface < 1:
            raise ValueError(f"the interface part of a version must be >= 1, got {self}")

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``"x.y.z"``; raise ``ValueError`` naming the text when it is not one."""
        match = _VERSION_RE.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not a version of the form x.y.z (e.g. 1.0.0)")
        return cls(int(match[1]), int(match[2]), int(match[3]))

    @classmethod
    def is_valid(cls, text: object) -> bool:
        """True when ``text`` parses as a version."""
        if not isinstance(text, str):
            return False
        try:
            cls.parse(text)
        except ValueError:
            return False
        return True

    def bump(self, part: VersionPart | str) -> Version:
        """The next version raising ``part`` and resetting the parts after it."""
        part = VersionPart(part)
        if part is VersionPart.INTERFACE:
            return Version(self.interface + 1, 0, 0)
        if part is VersionPart.QUALITY:
            return Version(self.interface, self.quality + 1, 0)
        return Version(self.interface, self.quality, self.revision + 1)

    def as_tuple(self) -> tuple[int, int, int]:
        """``(interface, quality, revision)``."""
        return (self.interface, self.quality, self.revision)

    def __str__(self) -> str:
        return f"{self.interface}.{self.quality}.{self.revision}"
