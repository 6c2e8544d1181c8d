from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dbproc.version import Version, VersionPart

versions = st.builds(Version, st.integers(1, 999), st.integers(0, 999), st.integers(0, 999))


@pytest.mark.parametrize("text", ["1.0.0", "2.10.3", "1.0.12"])
def test_parse_and_str_round_trip(text: str) -> None:
    assert str(Version.parse(text)) == text


@pytest.mark.parametrize(
    "text", ["1.0", "1.0.0.0", "v1.0.0", "0.1.0", "1.a.0", "", "01.0.0", "1.0.-1", " ", "1..0"]
)
def test_parse_refuses_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="version"):
        Version.parse(text)


def test_compare_as_tuples() -> None:
    assert Version.parse("1.10.0") > Version.parse("1.9.9")
    assert Version.parse("2.0.0") > Version.parse("1.99.99")
    assert max(Version.parse(v) for v in ("1.0.1", "1.1.0", "1.0.9")) == Version(1, 1, 0)


def test_bump_resets_lower_parts() -> None:
    v = Version(1, 2, 3)
    assert v.bump(VersionPart.INTERFACE) == Version(2, 0, 0)
    assert v.bump("quality") == Version(1, 3, 0)
    assert v.bump(VersionPart.REVISION) == Version(1, 2, 4)


@given(versions, st.sampled_from(list(VersionPart)))
def test_bump_always_grows(v: Version, part: VersionPart) -> None:
    assert v.bump(part) > v


@given(versions)
def test_str_parse_round_trip(v: Version) -> None:
    assert Version.parse(str(v)) == v


def test_interface_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="interface"):
        Version(0, 1, 0)
