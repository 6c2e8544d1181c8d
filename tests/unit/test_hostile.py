"""Hostile input: property tests over filename formats, names, inspector answers, mission
files, code arguments and database URLs.

No input may make dbproc fail with anything but its own error (a message and an exit
code), produce a file name that is not one plain path component, put a product folder
outside the data root, pass anything through a shell, or show a database password.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from dbproc.errors import ConfigError, DbprocError
from dbproc.examples import example_dir
from dbproc.executors.base import JobSpec
from dbproc.executors.worker import run_spec
from dbproc.ingest.facts import InspectorFailure, ProductRule, facts_from_answer
from dbproc.mission import load_mission_file, resolve_code_path
from dbproc.naming import FilenameFormat, FormatError, render_dir
from dbproc.version import Version

# -- names ------------------------------------------------------------------------------

NASTY = st.sampled_from(
    [
        "..",
        ".",
        "/",
        "\\",
        "\x00",
        "\n",
        "\r",
        "\t",
        "-",
        "--",
        " ",
        "*",
        "?",
        "$(id)",
        "`id`",
        ";",
        "|",
        "&",
        "'",
        '"',
        "~",
        "{",
        "}",
        "{{",
        "}}",
        "%",
        "\u202e",
        "\ud800",
        "é",
        "\udcff",
        "a" * 300,
    ]
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(NASTY, max_size=5).map("".join),
    st.builds(lambda a, b, c: a + b + c, st.text(max_size=8), NASTY, st.text(max_size=8)),
)
FIELDS = st.sampled_from(
    [
        "{Y}",
        "{m}",
        "{d}",
        "{j}",
        "{y}",
        "{b}",
        "{DATE}",
        "{H}",
        "{M}",
        "{S}",
        "{VERSION}",
        "{nnn}",
        "{APID}",
        "{x}",
    ]
)
FORMATS = st.lists(st.one_of(FIELDS, TEXT), min_size=1, max_size=6).map("".join)


def safe_component(name: str) -> bool:
    """One path component that cannot climb, hide a separator, or end a C string."""
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and len(name.encode("utf-8", "surrogatepass")) <= 255
    )


@settings(max_examples=300, deadline=None)
@given(fmt=FORMATS, name=TEXT)
def test_formats_and_names_never_raise_anything_but_format_error(fmt: str, name: str) -> None:
    try:
        parsed_format = FilenameFormat.parse(fmt)
    except FormatError:
        return
    parsed = parsed_format.match(name)  # never raises
    if parsed is not None:
        assert all(safe_component(v) for v in parsed.keywords.values())


@settings(max_examples=300, deadline=None)
@given(
    fmt=FORMATS,
    keywords=st.dictionaries(st.sampled_from(["nnn", "APID", "x"]), TEXT),
    day=st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    version=st.builds(Version, st.integers(1, 10**6), st.integers(0, 10**6), st.integers(0, 10**6)),
)
@example(
    fmt="x_{nnn}_{DATE}_v{VERSION}.cat",
    keywords={"nnn": "../../etc"},
    day=dt.date(2016, 1, 1),
    version=Version(1, 0, 0),
)
@example(
    fmt="x_{nnn}_{DATE}_v{VERSION}.cat",
    keywords={"nnn": "a/b"},
    day=dt.date(2016, 1, 1),
    version=Version(1, 0, 0),
)
def test_a_rendered_name_is_one_safe_path_component(
    fmt: str, keywords: dict[str, str], day: dt.date, version: Version
) -> None:
    try:
        name = FilenameFormat.parse(fmt).render(date=day, version=version, keywords=keywords)
    except FormatError:
        return
    assert safe_component(name), name


@settings(max_examples=300, deadline=None)
@given(template=TEXT, day=st.dates())
def test_a_product_folder_accepted_by_the_mission_check_stays_under_the_root(
    template: str, day: dt.date
) -> None:
    doc = _example_doc()
    doc["products"]["L1"]["dir"] = template
    try:
        _load(doc)
    except ConfigError:
        return
    rendered = Path(render_dir(template, day))
    root = Path("/data/root")
    assert not rendered.is_absolute()
    assert ".." not in rendered.parts
    assert (root / rendered).resolve().is_relative_to(root), template


# -- inspector answers --------------------------------------------------------------------

RULE = ProductRule(1, "L0", FilenameFormat.parse("raw_{nnn}.dat"), "i.py", {}, "L0")
ANSWER_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    TEXT,
    st.dates(),
    st.datetimes(),
    st.lists(TEXT, max_size=3),
    st.dictionaries(TEXT, TEXT, max_size=3),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    answer=st.one_of(
        ANSWER_VALUES,
        st.fixed_dictionaries(
            {"date": st.one_of(st.dates(), TEXT)},
            optional={
                "start": ANSWER_VALUES,
                "stop": ANSWER_VALUES,
                "version": ANSWER_VALUES,
                "keywords": st.one_of(
                    ANSWER_VALUES,
                    st.dictionaries(TEXT, TEXT, max_size=3),
                    st.dictionaries(st.just("nnn"), TEXT, max_size=1),
                ),
                "metadata": ANSWER_VALUES,
            },
        ),
    )
)
@example(answer={"date": "2016-01-01", "keywords": {"nnn": "../../../etc/passwd"}})
@example(answer={"date": "2016-01-01", "keywords": {"evil": "a/b"}})
@example(answer={"date": "2016-01-01", "keywords": {"../x": "1"}})
def test_inspector_answers_are_validated_never_trusted(answer: Any) -> None:
    parsed = RULE.format.match("raw_001.dat")
    assert parsed is not None
    try:
        facts = facts_from_answer(RULE, parsed, answer, "inspector i.py")
    except InspectorFailure:
        return
    assert all(safe_component(v) and k.isidentifier() for k, v in facts.keywords.items())
    assert "/" not in facts.slot and "\x00" not in facts.slot
    json.dumps(facts.metadata, allow_nan=False)  # storable as JSON


# -- mission files ------------------------------------------------------------------------


def _example_doc() -> dict[str, Any]:
    return tomllib.loads((example_dir() / "mission.toml").read_text())


_MISSION_DIR: list[Path] = []


def _load(doc: dict[str, Any]) -> Any:
    """Write ``doc`` beside a copy of the example's codes and load it."""
    if not _MISSION_DIR:
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="hostile-mission-"))
        shutil.copytree(example_dir() / "codes", folder / "codes")
        _MISSION_DIR.append(folder)
    path = _MISSION_DIR[0] / "mission.toml"
    try:
        path.write_bytes(tomli_w.dumps(doc).encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate cannot be in a file
        assume(False)
    return load_mission_file(path)


TOML_VALUES = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False),
        TEXT,
        st.dates(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=3),
    ),
    max_leaves=8,
)
PLACES = st.sampled_from(
    [
        ("mission",),
        ("mission", "name"),
        ("mission", "root"),
        ("mission", "incoming"),
        ("mission", "errors"),
        ("mission", "codes"),
        ("products",),
        ("products", "L1"),
        ("products", "L1", "dir"),
        ("products", "L1", "format"),
        ("products", "L0_first", "inspector"),
        ("products", "L0_first", "inspector_args"),
        ("products", "L1", "level"),
        ("processes", "L0_to_L1", "inputs"),
        ("processes", "L0_to_L1", "timebase"),
        ("processes", "L0_to_L1", "output"),
        ("processes", "L0_to_L1", "code", "path"),
        ("processes", "L0_to_L1", "code", "version"),
        ("processes", "L0_to_L1", "code", "args"),
        ("processes", "L0_to_L1", "code", "valid_from"),
        ("processes", "L1_to_L2", "code"),
        ("processes", "L0_to_L1", "code", "timeout"),
        ("lock",),
        ("lock", "stale_after_seconds"),
        ("ingest", "settle_seconds"),
        ("execution", "jobs"),
        ("surprise",),
    ]
)


def _mutate(doc: dict[str, Any], place: tuple[str, ...], value: Any, delete: bool) -> None:
    here: Any = doc
    for key in place[:-1]:
        if not isinstance(here, dict):
            return
        here = here.setdefault(key, {})
    if not isinstance(here, dict):
        return
    if delete:
        here.pop(place[-1], None)
    else:
        here[place[-1]] = value


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(PLACES, TOML_VALUES, st.booleans()), min_size=1, max_size=4))
@example(changes=[(("mission", "root"), "da\x00ta", False)])
@example(changes=[(("products", "L1", "dir"), "L1/\x00", False)])
@example(changes=[(("processes", "L0_to_L1", "code", "path"), "scripts/\x00.py", False)])
@example(changes=[(("products", "L0_first", "inspector"), "insp\x00ectors/l0.py", False)])
@example(changes=[(("mission", "codes"), "\x00", False)])
@example(changes=[(("products", "L1", "dir"), "../../outside", False)])
@example(changes=[(("processes", "L0_to_L1", "code", "path"), "../../../bin/sh", False)])
def test_any_mission_file_is_accepted_or_refused_with_a_config_error(
    changes: list[tuple[tuple[str, ...], Any, bool]],
) -> None:
    doc = copy.deepcopy(_example_doc())
    for place, value, delete in changes:
        _mutate(doc, place, value, delete)
    try:
        text = tomli_w.dumps(doc).encode("utf-8")
    except (TypeError, ValueError):  # not TOML-able, or a lone surrogate
        assume(False)
    path = _MISSION_DIR[0] if _MISSION_DIR else None
    if path is None:
        _load(_example_doc())
        path = _MISSION_DIR[0]
    (path / "mission.toml").write_bytes(text)
    try:
        config = load_mission_file(path / "mission.toml")
    except ConfigError as exc:
        assert str(exc)
        return
    # accepted: every folder is a real path; every code and inspector is inside codes
    # (or absolute, as written)
    mission = config.mission
    for folder in (mission.root, mission.incoming, mission.errors, mission.codes):
        assert folder.is_absolute() and "\x00" not in str(folder)
    for product in config.products.values():
        rendered = Path(render_dir(product.dir, dt.date(2016, 1, 1)))
        assert not rendered.is_absolute() and ".." not in rendered.parts
    for process in config.processes.values():
        for code in [process.code]:
            given_path = Path(code.path)
            resolved = resolve_code_path(mission.codes, code.path).resolve()
            assert given_path.is_absolute() or resolved.is_relative_to(mission.codes.resolve())


@given(data=st.binary(max_size=200))
@settings(max_examples=100, deadline=None)
def test_a_mission_file_of_random_bytes_is_refused_cleanly(
    data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("bytes") / "mission.toml"
    path.write_bytes(data)
    try:
        load_mission_file(path)
    except ConfigError:
        pass


# -- codes: no shell, arguments verbatim ----------------------------------------------------

ARGS = st.lists(
    st.one_of(
        TEXT,
        st.sampled_from(
            [
                "$(touch PWNED)",
                "; touch PWNED",
                "`touch PWNED`",
                "&& touch PWNED",
                "| touch PWNED",
                "-rf",
                "--help",
                "*",
                "$HOME",
                "'",
                '"',
            ]
        ),
    ),
    max_size=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(args=ARGS)
def test_a_code_gets_its_arguments_verbatim_and_no_shell_runs(
    args: list[str], tmp_path: Path
) -> None:
    recorder = "import json, sys; open('argv.json', 'w').write(json.dumps(sys.argv[1:]))"
    import uuid

    root = tmp_path / f"run-{uuid.uuid4().hex}"
    root.mkdir()
    spec = JobSpec(
        run_id=1,
        attempt=1,
        argv=(sys.executable, "-c", recorder, *args),
        run_root=str(root),
        output_name=None,
        env={},
        timeout=30,
        kill_grace=1,
    )
    result = run_spec(spec)  # never raises, whatever the arguments
    if any("\x00" in a for a in args) or any(_unencodable(a) for a in args):
        assert result.status != "ok"
        return
    assert result.status == "ok", result
    assert result.run_dir is not None
    got = json.loads((Path(result.run_dir) / "argv.json").read_text())
    assert got == [os.fsdecode(os.fsencode(a)) for a in args]
    assert not list(tmp_path.rglob("PWNED"))


def _unencodable(text: str) -> bool:
    try:
        os.fsencode(text)
    except UnicodeError:
        return True
    return False


# -- database URLs: the password never shows ---------------------------------------------

PASSWORDS = st.text(
    alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789", min_size=12, max_size=20
)
URL_SHAPES = st.sampled_from(
    [
        "postgresql+psycopg2://user:{pw}@127.0.0.1:1/db",
        "postgresql+psycopg2://user:{pw}@127.0.0.1:notaport/db",
        "postgresql+psycopg2://user:{pw}@127.0.0.1:99999/db",
        "postgresql+nosuchdriver://user:{pw}@127.0.0.1/db",
        "mysql://user:{pw}@127.0.0.1/db",
        "oracle+cx://user:{pw}@host/db",
        "postgresql+psycopg2://user:{pw}@127.0.0.1:1/db?sslmode=nonsense",
        "postgresql+psycopg2://user:{pw}@[::1:1/db",
        "postgresql+psycopg2://user:{pw}@/db?host=/nonexistent",
        "sqlite://user:{pw}@/x.sqlite",
        "postgresql+psycopg2://user:{pw}@127.0.0.1:1/db?connect_timeout=x",
        "://user:{pw}@",
        "postgresql://user:{pw}@127.0.0.1:1",
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    pw=PASSWORDS,
    shape=URL_SHAPES,
    command=st.sampled_from(
        [["status"], ["files"], ["run"], ["config", "export"], ["check"], ["unlock"]]
    ),
)
def test_a_database_password_never_appears_in_output_or_logs(
    pw: str, shape: str, command: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from click.testing import CliRunner

    from dbproc.cli import cli

    url = shape.format(pw=pw)
    log = tmp_path_factory.mktemp("log") / "dbproc.log"
    for argv, env in (
        (["--db", url, "-v", "--log-file", str(log), *command], {}),
        (["-v", "--log-file", str(log), *command], {"DBPROC_DB": url}),
        ([*command, "--db", url], {}),
    ):
        result = CliRunner().invoke(cli, argv, env=env, catch_exceptions=True)
        shown = result.output + (log.read_text() if log.exists() else "")
        assert pw not in shown, shown
        assert result.exit_code in (1, 2, 5), (result.exit_code, shown, result.exception)
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        ), repr(result.exception)


def test_dbproc_errors_carry_exit_codes() -> None:
    assert issubclass(ConfigError, DbprocError)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p@ss@h:abc/db", "postgresql://u:***@h:abc/db"),
        ("://user:secret@", "://user:***@"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:///x.sqlite", "sqlite:///x.sqlite"),
    ],
)
def test_mask_password_hides_the_password_of_a_url_too_broken_to_parse(
    text: str, shown: str
) -> None:
    from dbproc.db.engine import mask_password

    assert mask_password(text) == shown
