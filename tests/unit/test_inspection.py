"""Identification and validation of inspector answers (no database needed)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbproc.ingest.facts import ProductRule
from dbproc.ingest.inspection import InspectorSet, Verdict
from dbproc.naming import FilenameFormat
from dbproc.version import Version

INSPECTOR = '''
import json, os
COUNTER = os.environ.get("DBPROC_TEST_COUNTER")
if COUNTER:
    with open(COUNTER, "a") as fh:
        fh.write("loaded\\n")

def answer(path, **args):
    """Return whatever the product's inspector_args say (JSON in 'result')."""
    result = json.loads(args["result"])
    if isinstance(result, dict) and result.get("date") == "__name__":
        result["date"] = os.path.basename(path)
    return result

def none(path, **args):
    return None

def raises(path, **args):
    raise ValueError("bad header in " + os.path.basename(path))

def exits(path, **args):
    raise SystemExit(2)

def chatty(path, **args):
    print("debugging output that must not reach stdout")
    return {"date": "2016-01-01"}

def returns_object(path, **args):
    return {"date": "2016-01-01", "metadata": {"when": __import__("datetime").datetime(2016, 1, 1)}}

def returns_nan(path, **args):
    return {"date": "2016-01-01", "metadata": {"x": float("nan")}}

def echo_args(path, **args):
    return {"date": "2016-01-01", "metadata": {"args": args, "path": path}}
'''


def rule(
    name: str = "P",
    fmt: str = "p_{Y}{m}{d}.dat",
    inspector: str | None = "insp.py:answer",
    **args: Any,
) -> ProductRule:
    return ProductRule(1, name, FilenameFormat.parse(fmt), inspector, args, name)


@pytest.fixture
def codes(tmp_path: Path) -> Path:
    folder = tmp_path / "codes"
    folder.mkdir()
    (folder / "insp.py").write_text(INSPECTOR)
    return folder


def ask(
    codes: Path, result: Any, name: str = "p_20160101.dat", fmt: str = "p_{Y}{m}{d}.dat"
) -> Verdict:
    import json

    path = codes.parent / name
    path.write_bytes(b"x")
    products = [rule(fmt=fmt, result=json.dumps(result))]
    return InspectorSet(products, codes).identify(path)


def invalid(codes: Path, result: Any, **kw: str) -> str:
    verdict = ask(codes, result, **kw)
    assert verdict.facts is None and verdict.reason == "inspector_error", verdict
    assert verdict.message is not None
    assert "inspector insp.py:answer of product P" in verdict.message
    return verdict.message


def test_minimal_answer_gets_defaults(codes: Path) -> None:
    verdict = ask(codes, {"date": "2016-01-01"})
    facts = verdict.facts
    assert facts is not None and verdict.reason is None
    assert facts.date == dt.date(2016, 1, 1)
    assert facts.start == dt.datetime(2016, 1, 1)
    assert facts.stop == dt.datetime(2016, 1, 2)
    assert facts.version == Version(1, 0, 0)
    assert facts.keywords == {} and facts.metadata == {}
    assert verdict.answers["P"]["version"] == "1.0.0"


def test_full_answer_is_taken(codes: Path) -> None:
    facts = ask(
        codes,
        {
            "date": "2016-01-01",
            "start": "2016-01-01T06:00:00",
            "stop": "2016-01-03T00:00:00+01:00",
            "version": "2.3.4",
            "keywords": {"sc": "rbspa"},
            "metadata": {"temperature_K": 0.0158, "ok": True, "tags": ["a", "b"]},
        },
    ).facts
    assert facts is not None
    assert facts.start == dt.datetime(2016, 1, 1, 6)
    assert facts.stop == dt.datetime(2016, 1, 2, 23)  # converted to UTC, naive
    assert facts.version == Version(2, 3, 4)
    assert facts.keywords == {"sc": "rbspa"}
    assert facts.slot == "sc=rbspa"
    assert facts.metadata == {"temperature_K": 0.0158, "ok": True, "tags": ["a", "b"]}


def test_version_defaults_to_the_name(codes: Path) -> None:
    facts = ask(
        codes,
        {"date": "2016-01-01"},
        name="p_20160101_v3.1.0.dat",
        fmt="p_{Y}{m}{d}_v{VERSION}.dat",
    ).facts
    assert facts is not None and facts.version == Version(3, 1, 0)


def test_keywords_default_to_the_free_fields_of_the_name(codes: Path) -> None:
    facts = ask(codes, {"date": "2016-01-01"}, name="p_017.dat", fmt="p_{nnn}.dat").facts
    assert facts is not None and facts.keywords == {"nnn": "017"} and facts.slot == "nnn=017"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({}, "'date' is required"),
        ({"date": None}, "'date' is required"),
        ({"date": "2016-02-30"}, "'date'"),
        ({"date": 20160101}, "'date'"),
        ({"date": "2016-01-02"}, "disagrees with the date 2016-01-01 in the name"),
        ({"date": "2016-01-01", "start": "2016-01-02", "stop": "2016-01-01"}, "is not before stop"),
        (
            {"date": "2016-01-01", "start": "2016-01-01T05:00", "stop": "2016-01-01T05:00"},
            "is not before stop",
        ),
        ({"date": "2016-01-01", "start": "noon"}, "'start'/'stop'"),
        ({"date": "2016-01-01", "version": "1.0"}, "'version'"),
        ({"date": "2016-01-01", "version": "v1.0.0"}, "'version'"),
        ({"date": "2016-01-01", "version": 1}, "'version'"),
        ({"date": "2016-01-01", "version": "0.1.0"}, "'version'"),
        ({"date": "2016-01-01", "keywords": ["a"]}, "'keywords' must be a dict"),
        ({"date": "2016-01-01", "keywords": {"sc": "../etc"}}, "is not a safe value"),
        ({"date": "2016-01-01", "keywords": {"sc": 3}}, "is not a safe value"),
        ({"date": "2016-01-01", "keywords": {"not a name": "x"}}, "is not an identifier"),
        ({"date": "2016-01-01", "metadata": ["a"]}, "'metadata' must be a dict"),
        ({"date": "2016-01-01", "colour": "red"}, "unknown key(s) 'colour'"),
        (["2016-01-01"], "expected a dict or None, got list"),
        ("2016-01-01", "expected a dict or None, got str"),
        (True, "expected a dict or None, got bool"),
    ],
)
def test_invalid_answers_are_refused_with_the_reason(
    codes: Path, result: Any, expected: str
) -> None:
    assert expected in invalid(codes, result)


def test_version_must_agree_with_the_name(codes: Path) -> None:
    message = invalid(
        codes,
        {"date": "2016-01-01", "version": "1.0.1"},
        name="p_20160101_v1.0.0.dat",
        fmt="p_{Y}{m}{d}_v{VERSION}.dat",
    )
    assert "version 1.0.1 disagrees with version 1.0.0 in the name" in message


def test_keywords_must_agree_with_free_fields_of_the_name(codes: Path) -> None:
    message = invalid(
        codes,
        {"date": "2016-01-01", "keywords": {"nnn": "018"}},
        name="p_017.dat",
        fmt="p_{nnn}.dat",
    )
    assert "keyword nnn='018' disagrees with '017' in the name" in message


def test_a_date_from_the_inspector_fills_a_dateless_name(codes: Path) -> None:
    facts = ask(codes, {"date": "2016-03-04"}, name="p_017.dat", fmt="p_{nnn}.dat").facts
    assert facts is not None and facts.date == dt.date(2016, 3, 4)


def test_the_detail_shows_what_was_returned(codes: Path) -> None:
    verdict = ask(codes, {"date": "2016-01-01", "version": "1.0"})
    assert verdict.detail is not None and "'version': '1.0'" in verdict.detail


def product_with(
    codes: Path, function: str, fmt: str = "p_{Y}{m}{d}.dat", name: str = "P"
) -> ProductRule:
    return rule(name=name, fmt=fmt, inspector=f"insp.py:{function}")


def identify(codes: Path, *products: ProductRule, name: str = "p_20160101.dat") -> Verdict:
    path = codes.parent / name
    path.write_bytes(b"x")
    return InspectorSet(list(products), codes).identify(path)


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("returns_object", "'metadata' is not JSON-able"),
        ("returns_nan", "'metadata' is not JSON-able"),
        ("raises", "raised ValueError('bad header in p_20160101.dat')"),
        ("exits", "raised SystemExit(2)"),
        ("missing", "defines no function 'missing'"),
    ],
)
def test_inspector_failures_are_a_verdict_never_an_exception(
    codes: Path, function: str, expected: str
) -> None:
    verdict = identify(codes, product_with(codes, function))
    assert verdict.facts is None and verdict.reason == "inspector_error"
    assert verdict.message is not None
    assert f"insp.py:{function}" in verdict.message and expected in verdict.message
    assert verdict.answers["P"] == {"error": verdict.message}


def test_exception_detail_holds_the_traceback(codes: Path) -> None:
    verdict = identify(codes, product_with(codes, "raises"))
    assert verdict.detail is not None and "ValueError: bad header" in verdict.detail


def test_an_inspector_that_cannot_load_is_named(codes: Path) -> None:
    (codes / "broken.py").write_text("def inspect(path:\n")
    verdict = identify(codes, rule(inspector="broken.py"))
    assert verdict.reason == "inspector_error" and verdict.message is not None
    assert "inspector broken.py failed to load: SyntaxError" in verdict.message


def test_an_inspector_exiting_at_import_is_named(codes: Path) -> None:
    (codes / "quits.py").write_text("import sys\nsys.exit('no')\n")
    verdict = identify(codes, rule(inspector="quits.py"))
    assert verdict.message is not None and "SystemExit('no')" in verdict.message


def test_what_an_inspector_prints_stays_off_stdout(
    codes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = identify(codes, product_with(codes, "chatty"))
    assert verdict.facts is not None
    assert "debugging output" not in capsys.readouterr().out


def test_inspector_gets_absolute_str_path_and_its_args(
    codes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(codes.parent)
    path = Path("p_20160101.dat")
    path.write_bytes(b"x")
    product = rule(inspector="insp.py:echo_args", apid="000", gain=2)
    facts = InspectorSet([product], codes).identify(path).facts
    assert facts is not None
    assert facts.metadata == {
        "args": {"apid": "000", "gain": 2},
        "path": str(codes.parent / "p_20160101.dat"),
    }


def test_none_means_not_claimed(codes: Path) -> None:
    verdict = identify(codes, product_with(codes, "none"))
    assert verdict.facts is None and verdict.reason == "no_product"
    assert verdict.message == "no product claims it: the inspectors of P returned None"
    assert verdict.answers == {"P": None}


def test_no_matching_format_means_not_claimed(codes: Path) -> None:
    verdict = identify(codes, product_with(codes, "answer"), name="other.txt")
    assert verdict.reason == "no_product" and verdict.answers == {}
    assert verdict.message == "no product claims it: its name matches no product's format"


def test_product_without_inspector_is_identified_by_format_alone(codes: Path) -> None:
    product = rule(fmt="p_{Y}{m}{d}_v{VERSION}.dat", inspector=None)
    facts = identify(codes, product, name="p_20160229_v2.0.1.dat").facts
    assert facts is not None
    assert (facts.date, facts.version) == (dt.date(2016, 2, 29), Version(2, 0, 1))
    assert facts.start == dt.datetime(2016, 2, 29) and facts.stop == dt.datetime(2016, 3, 1)


def test_time_of_day_in_the_name_sets_start_and_identity(codes: Path) -> None:
    product = rule(fmt="p_{Y}{m}{d}T{H}{M}.dat", inspector=None)
    facts = identify(codes, product, name="p_20160101T0630.dat").facts
    assert facts is not None
    assert facts.start == dt.datetime(2016, 1, 1, 6, 30) and facts.slot == "@063000"


def test_two_claims_are_ambiguous_and_name_both(codes: Path) -> None:
    first = rule(name="First", inspector=None)
    second = product_with(codes, "chatty", name="Second")
    verdict = identify(codes, first, second)
    assert verdict.facts is None and verdict.reason == "ambiguous"
    assert verdict.message is not None and "First, Second" in verdict.message


def test_one_claim_and_one_failure_is_a_failure(codes: Path) -> None:
    verdict = identify(
        codes, rule(name="Good", inspector=None), product_with(codes, "raises", name="Bad")
    )
    assert verdict.reason == "inspector_error" and verdict.message is not None
    assert "product Bad" in verdict.message and "also claimed by Good" in verdict.message


def test_each_module_is_loaded_once_per_set(
    codes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = tmp_path / "loads.txt"
    monkeypatch.setenv("DBPROC_TEST_COUNTER", str(counter))
    products = [
        rule(name="A", fmt="a_{Y}{m}{d}.dat", inspector="insp.py:chatty"),
        rule(name="B", fmt="b_{Y}{m}{d}.dat", inspector="insp.py:none"),
        rule(name="C", fmt="c_{Y}{m}{d}.dat", inspector="./insp.py:chatty"),
    ]
    inspectors = InspectorSet(products, codes)
    for n in range(5):
        for prefix in "abc":
            path = tmp_path / f"{prefix}_2016010{n + 1}.dat"
            path.write_bytes(b"x")
            inspectors.identify(path)
    assert inspectors.loads == 1
    assert counter.read_text() == "loaded\n"
    InspectorSet(products, codes).identify(tmp_path / "a_20160101.dat")  # a new pass reloads
    assert counter.read_text() == "loaded\n" * 2


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
answers = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "date": st.one_of(st.dates().map(str), st.just("2016-01-01"), json_values),
            "start": st.one_of(st.datetimes().map(str), json_values),
            "stop": st.one_of(st.datetimes().map(str), json_values),
            "version": st.one_of(st.just("1.2.3"), st.text(max_size=6), json_values),
            "keywords": st.one_of(
                st.dictionaries(st.sampled_from(["nnn", "sc", "1x"]), st.text(max_size=4)),
                json_values,
            ),
            "metadata": json_values,
            "extra": json_values,
        },
    ),
)


@settings(
    max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(answer=answers)
def test_any_answer_is_facts_or_a_named_refusal(codes: Path, answer: Any) -> None:
    from dbproc.ingest.facts import InspectorFailure, facts_from_answer

    product = rule(fmt="p_{nnn}.dat")
    parsed = product.format.match("p_017.dat")
    assert parsed is not None
    try:
        facts = facts_from_answer(product, parsed, answer, "inspector insp.py:answer")
    except InspectorFailure as exc:
        assert str(exc).startswith("inspector insp.py:answer of product P returned an invalid")
        return
    assert facts.start < facts.stop
    assert facts.keywords["nnn"] == "017"
    assert isinstance(facts.version, Version)
    import json

    text = json.dumps(facts.metadata, allow_nan=False)  # stored as JSON
    assert json.loads(text) == facts.metadata
    assert not any(isinstance(v, float) and math.isnan(v) for v in facts.metadata.values())


def test_answers_given_as_python_objects(codes: Path) -> None:
    from dbproc.ingest.facts import facts_from_answer

    product = rule(fmt="p_{Y}{m}{d}.dat")
    parsed = product.format.match("p_20160101.dat")
    assert parsed is not None
    facts = facts_from_answer(
        product,
        parsed,
        {
            "date": dt.datetime(2016, 1, 1, 12),
            "start": dt.date(2016, 1, 1),
            "stop": dt.datetime(2016, 1, 1, 18),
            "version": Version(1, 2, 0),
        },
        "inspector x",
    )
    assert facts.date == dt.date(2016, 1, 1) and facts.stop == dt.datetime(2016, 1, 1, 18)
    assert facts.version == Version(1, 2, 0)
