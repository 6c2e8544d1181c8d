from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dbproc.naming import FilenameFormat, FormatError, render_dir
from dbproc.version import Version


def test_render_and_parse_daily_name() -> None:
    fmt = FilenameFormat.parse("testDB_{Y}{m}{d}_v{VERSION}.cat")
    name = fmt.render(date=dt.date(2016, 1, 4), version=Version(1, 1, 0))
    assert name == "testDB_20160104_v1.1.0.cat"
    parsed = fmt.match(name)
    assert parsed is not None
    assert parsed.date == dt.date(2016, 1, 4)
    assert parsed.version == Version(1, 1, 0)


def test_literal_dot_is_escaped() -> None:
    fmt = FilenameFormat.parse("a_{DATE}.cat")
    assert fmt.match("a_20160101.cat") is not None
    assert fmt.match("a_20160101xcat") is None


def test_regex_is_anchored() -> None:
    fmt = FilenameFormat.parse("a_{DATE}.cat")
    assert fmt.match("xa_20160101.cat") is None
    assert fmt.match("a_20160101.cat.part") is None


def test_free_fields_are_keywords() -> None:
    fmt = FilenameFormat.parse("testDB_000_{nnn}.raw")
    parsed = fmt.match("testDB_000_017.raw")
    assert parsed is not None and parsed.keywords == {"nnn": "017"} and parsed.date is None
    assert fmt.match("testDB_001_017.raw") is None


@pytest.mark.parametrize(
    ("fmt", "name", "date"),
    [
        ("x_{Y}{j}.dat", "x_2016060.dat", dt.date(2016, 2, 29)),
        ("x_{y}{m}{d}.dat", "x_160105.dat", dt.date(2016, 1, 5)),
        ("x_{y}{m}{d}.dat", "x_990105.dat", dt.date(1999, 1, 5)),
        ("x_{d}{b}{Y}.dat", "x_05jan2016.dat", dt.date(2016, 1, 5)),
        ("x_{DATE}_{Y}.dat", "x_20160105_2016.dat", dt.date(2016, 1, 5)),
    ],
)
def test_date_fields(fmt: str, name: str, date: dt.date) -> None:
    parsed = FilenameFormat.parse(fmt).match(name)
    assert parsed is not None and parsed.date == date


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("x_{Y}{m}{d}.dat", "x_20161301.dat"),  # month 13
        ("x_{Y}{m}{d}.dat", "x_20160230.dat"),  # Feb 30
        ("x_{Y}{j}.dat", "x_2015366.dat"),  # 2015 has 365 days
        ("x_{DATE}_{Y}.dat", "x_20160105_2017.dat"),  # fields disagree
        ("x_{Y}_{Y}.dat", "x_2016_2017.dat"),  # repeated field must repeat its value
    ],
)
def test_invalid_dates_do_not_match(fmt: str, name: str) -> None:
    assert FilenameFormat.parse(fmt).match(name) is None


def test_time_fields_give_start() -> None:
    fmt = FilenameFormat.parse("x_{DATE}T{H}{M}{S}_v{VERSION}.dat")
    parsed = fmt.match("x_20160105T123000_v1.0.0.dat")
    assert parsed is not None
    assert parsed.start == dt.datetime(2016, 1, 5, 12, 30)
    assert parsed.time_of_day == (12, 30, 0)


@pytest.mark.parametrize("bad", ["", "a_{Y", "a_}x", "a/{Y}", "a_{}", "a_{1x}", "{a}{c}.x"])
def test_malformed_formats_are_refused(bad: str) -> None:
    with pytest.raises(FormatError):
        FilenameFormat.parse(bad)


def test_render_refuses_unsafe_keyword_values() -> None:
    fmt = FilenameFormat.parse("x_{APID}_{DATE}.dat")
    for value in ("../etc", "a/b", "", ".hidden", "a\x00b", "-rf"):
        with pytest.raises(FormatError):
            fmt.render(date=dt.date(2016, 1, 1), keywords={"APID": value})


def test_render_names_missing_field() -> None:
    fmt = FilenameFormat.parse("x_{APID}_{DATE}_v{VERSION}.dat")
    with pytest.raises(FormatError, match="APID"):
        fmt.render(date=dt.date(2016, 1, 1), version=Version(1, 0, 0))
    with pytest.raises(FormatError, match="version"):
        fmt.render(date=dt.date(2016, 1, 1), keywords={"APID": "x"})


def test_braces_escape() -> None:
    fmt = FilenameFormat.parse("x{{{DATE}}}.dat")
    assert fmt.render(date=dt.date(2016, 1, 1)) == "x{20160101}.dat"
    assert fmt.match("x{20160101}.dat") is not None


def test_render_dir() -> None:
    assert render_dir("L2/{Y}/{m}", dt.date(2016, 1, 5)) == "L2/2016/01"
    assert render_dir("L2/{Y}/{j}", dt.date(2016, 2, 1)) == "L2/2016/032"
    with pytest.raises(FormatError):
        render_dir("L2/{VERSION}", dt.date(2016, 1, 5))


LITERAL = st.text(alphabet="abcXYZ_-.0", min_size=0, max_size=4)
FIELDS = st.sampled_from(
    ["Y", "m", "d", "j", "y", "b", "H", "M", "S", "DATE", "VERSION", "APID", "nnn"]
)
VALUE = st.text(alphabet="ABCdef0123456789", min_size=1, max_size=6)


@st.composite
def formats_and_fields(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    fields = draw(st.lists(FIELDS, min_size=1, max_size=5, unique=True))
    parts = []
    for name in fields:
        parts.append(draw(LITERAL))
        parts.append("{" + name + "}")
        parts.append(draw(st.text(alphabet="_-.", min_size=1, max_size=2)))
    fmt = "".join(parts)
    when = draw(
        st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2068, 12, 31))
    )
    version = draw(st.builds(Version, st.integers(1, 99), st.integers(0, 99), st.integers(0, 99)))
    keywords = {f: draw(VALUE) for f in fields if f in ("APID", "nnn")}
    return fmt, {"start": when.replace(microsecond=0), "version": version, "keywords": keywords}


@given(formats_and_fields())
def test_parse_render_round_trip(case: tuple[str, dict[str, object]]) -> None:
    text, fields = case
    fmt = FilenameFormat.parse(text)
    try:
        name = fmt.render(**fields)  # type: ignore[arg-type]
    except FormatError:
        assume(False)  # an ambiguous combination the engine rightly refuses
        return
    parsed = fmt.match(name)
    assert parsed is not None, (text, name)
    start = fields["start"]
    assert isinstance(start, dt.datetime)
    if fmt.has_date:
        assert parsed.date == start.date()
    if fmt.has_version:
        assert parsed.version == fields["version"]
    assert parsed.keywords == fields["keywords"]
    assert (
        fmt.render(
            date=parsed.date or start.date(),
            start=parsed.start or start,
            version=parsed.version or fields["version"],  # type: ignore[arg-type]
            keywords=parsed.keywords,
        )
        == name
    )
