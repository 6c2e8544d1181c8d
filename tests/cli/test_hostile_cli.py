"""Hostile input at the command line: file names, code paths and arguments, and the
database password, through whole passes.

No input makes a pass fail with a traceback or an "unexpected" error, nothing is written
outside the data root, the errors folder, staging and the database, every delivered
file is registered, refused (in ``errors/rejected``) or left waiting, codes get their
arguments verbatim (no shell) with every file as an absolute path, and the database
password shows nowhere: not in output, logs, run logs or what a code can see.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.invariants import assert_consistent
from tests.helpers import CliHarness, edit_mission

HOSTILE_NAMES = [
    b"..\xff",
    b"-rf",
    b"--help",
    b"name\nwith newline",
    b"tab\there",
    b" leading space",
    b"trailing space ",
    b"$(touch PWNED)",
    b"`touch PWNED`",
    b"; touch PWNED",
    b"a" * 255,
    b"\xc3\x28 not utf-8",
    b"testDB_000_0\n1.raw",
    b"testDB_000_\xff.raw",
    b"testDB_000_010.raw\r",
    b"\xe2\x80\xaeevil.raw",
    b"-testDB_000_011.raw",
    b"testDB_000_012.raw.part",
    b".testDB_000_013.raw",
    b"testDB_" + b"9" * 240 + b".raw",
    b"*",
    b"?",
    b"\\",
    b"~",
    b"%s%s%n",
    b"testDB_000_014.raw",  # a good one among them
]


def _outside(tmp_path: Path, cli: CliHarness) -> dict[str, bytes]:
    """Every file under tmp_path but the data root and the database's own files."""
    found = {}
    for dirpath, dirs, files in os.walk(tmp_path):
        here = Path(dirpath)
        dirs[:] = [d for d in dirs if here / d != cli.root]
        for name in files:
            path = here / name
            if path.name.startswith("mission.sqlite"):
                continue
            found[str(path)] = path.read_bytes() if not path.is_symlink() else b"->"
    return found


def _deliver_bytes_names(cli: CliHarness, names: list[bytes]) -> list[bytes]:
    folder = os.fsencode(cli.incoming)
    made = []
    for name in names:
        path = os.path.join(folder, name)
        try:
            with open(path, "xb") as fh:
                fh.write(b"payload of " + name[:50] + b"\n")
        except (FileExistsError, IsADirectoryError):
            continue
        os.utime(path, (1_400_000_000, 1_400_000_000))
        made.append(name)
    return made


def _accounted_for(cli: CliHarness, names: list[bytes]) -> None:
    """Each name is registered, or in rejected (under some name), or still waiting."""
    registered = {f["filename"] for f in cli.json("files", "--all-versions")}
    rejected_payloads = set()
    rejected = cli.errors / "rejected"
    if rejected.is_dir():
        for p in rejected.iterdir():
            if not p.name.endswith(".reason") and not p.is_symlink() and p.is_file():
                rejected_payloads.add(p.read_bytes())
    for name in names:
        payload = b"payload of " + name[:50] + b"\n"
        if os.fsdecode(name) in registered:
            continue
        if os.path.lexists(os.path.join(os.fsencode(cli.incoming), name)):
            continue
        assert payload in rejected_payloads, f"{name!r} was lost"


def _clean_pass(cli: CliHarness) -> None:
    result = cli.run("--json", "run")
    assert result.exit_code in (0, 3), result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output


def test_hostile_names_in_incoming(applied: CliHarness, tmp_path: Path) -> None:
    outside = _outside(tmp_path, applied)
    # a folder and symlinks pointing out of the mission, named like data files
    (applied.incoming / "testDB_000_020.raw").mkdir()
    (applied.incoming / "testDB_000_021.raw").symlink_to("/etc/passwd")
    secret = tmp_path / "elsewhere" / "testDB_000_022.raw"
    secret.parent.mkdir()
    secret.write_text("not yours\n")
    (applied.incoming / "testDB_000_022.raw").symlink_to(secret)
    outside = _outside(tmp_path, applied)
    names = _deliver_bytes_names(applied, HOSTILE_NAMES)
    _clean_pass(applied)
    _clean_pass(applied)
    assert _outside(tmp_path, applied) == outside  # nothing written outside the root
    assert secret.read_text() == "not yours\n"
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()
    _accounted_for(applied, names)
    files = {f["filename"] for f in applied.json("files")}
    assert "testDB_000_014.raw" in files
    assert not {"testDB_000_021.raw", "testDB_000_022.raw"} & files
    assert_consistent(applied, settled=False)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    names=st.lists(
        st.binary(min_size=1, max_size=300).filter(
            lambda b: (
                b"/" not in b and b"\x00" not in b and b not in (b".", b"..") and len(b) <= 255
            )
        ),
        min_size=1,
        max_size=4,
        unique=True,
    )
)
def test_random_byte_names_never_break_a_pass(
    names: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from dbproc.examples import write_example

    folder = tmp_path_factory.mktemp("bytes")
    cli = CliHarness(
        str(folder / "mission.sqlite"), write_example(folder / "mission", with_incoming=False)
    )
    cli.ok("config", "apply", str(cli.mission_file))
    outside = _outside(folder, cli)
    made = _deliver_bytes_names(cli, names)
    _clean_pass(cli)
    assert _outside(folder, cli) == outside
    _accounted_for(cli, made)


RECORDER = '''"""Writes its arguments and environment, as JSON, to OUTPUT (its last argument)."""
import json, os, sys
print(json.dumps(dict(os.environ)))
with open(sys.argv[-1], "w") as out:
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd()}, out)
'''


def test_codes_get_their_arguments_verbatim_without_a_shell(
    applied: CliHarness, tmp_path: Path
) -> None:
    weird = "scripts/we ird $(touch PWNED);name's.py"
    (applied.mission_dir / "codes" / weird).write_text(RECORDER)
    args = [
        "$(touch PWNED)",
        "; touch PWNED",
        "`touch PWNED`",
        "-rf",
        "--",
        "*",
        "$HOME",
        "a b",
        "{DATE}",
        "'",
        '"',
    ]

    def mutate(doc: dict) -> None:  # type: ignore[type-arg]
        doc["products"]["L0_dash"] = {"level": 0, "dir": "Ldash", "format": "-{Y}{m}{d}.raw"}
        doc["processes"]["L0_to_L1"]["inputs"].append({"product": "L0_dash", "optional": True})
        doc["processes"]["L0_to_L1"]["code"].update(path=weird, args=args)

    edit_mission(applied.mission_file, mutate)
    applied.ok("config", "apply", str(applied.mission_file))
    dash = applied.incoming / "-20160101.raw"
    dash.write_text("dash\n")
    os.utime(dash, (1_400_000_000, 1_400_000_000))
    result = applied.run("--json", "run")
    assert result.exit_code == 0, result.output
    l1 = {f["filename"]: f for f in applied.json("files", "--product", "L1")}
    made = json.loads(Path(l1["testDB_20160101_v1.0.0.cat"]["path"]).read_text())
    argv = made["argv"]
    assert argv[: len(args)] == [a.replace("{DATE}", "20160101") for a in args]
    files = argv[len(args) :]
    assert files and all(f.startswith("/") for f in files), files  # never an option
    assert files[-2].endswith("/Ldash/-20160101.raw")
    assert Path(files[-1]).parent == Path(made["cwd"])  # output in its own run folder
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()


@pytest.mark.postgres
def test_the_database_password_shows_nowhere(tmp_path: Path) -> None:
    """A full pass with the password in DBPROC_DB, -v and a log file, and a code that
    prints its whole environment: the password is in no output, log, run log, run record
    or the code's environment (PostgreSQL here trusts local connections, so any password
    is accepted)."""
    from click.testing import CliRunner
    from sqlalchemy import create_engine, text

    from dbproc.cli import cli as dbproc_cli
    from dbproc.examples import write_example
    from tests.conftest import drop_pg_schema, make_pg_schema_url

    url, schema = make_pg_schema_url()
    secret = "Pw" + os.urandom(8).hex()
    url = url.replace("postgres@", f"postgres:{secret}@", 1)
    assert secret in url
    try:
        mission = write_example(tmp_path / "mission")
        codes = tmp_path / "mission" / "codes" / "scripts"
        (codes / "recorder.py").write_text(RECORDER)
        edit_mission(
            mission,
            lambda doc: doc["processes"]["L1_to_L2"]["code"].update(path="scripts/recorder.py"),
        )
        log = tmp_path / "dbproc.log"
        outputs = []
        for argv in (
            ["config", "apply", str(mission)],
            ["-v", "run"],
            ["-v", "status"],
            ["runs", "--limit", "0"],
            ["check"],
            ["config", "export"],
        ):
            result = CliRunner().invoke(
                dbproc_cli,
                ["--log-file", str(log), *argv],
                env={"DBPROC_DB": url},
                catch_exceptions=False,
            )
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
        shown = "\n".join(outputs) + log.read_text()
        for folder in (tmp_path / "mission" / "data",):
            for path in folder.rglob("*"):
                if path.is_file():
                    shown += path.read_bytes().decode("utf-8", "replace")
        engine = create_engine(url)
        with engine.connect() as conn:
            for table in ("run", "pass_record", "mission", "code"):
                shown += repr(conn.execute(text(f"SELECT * FROM {table}")).all())
        engine.dispose()
        assert "DBPROC_RUN_DIR" in shown  # the code's environment is in there ...
        assert secret not in shown  # ... but not the password
    finally:
        drop_pg_schema(schema)


def test_outside_code_and_inspector_paths_are_refused_at_apply(
    applied: CliHarness, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def inspect(path, **kw):\n    return None\n")
    link = applied.mission_dir / "codes" / "scripts" / "sneaky.py"
    link.symlink_to(outside)
    rel = os.path.relpath(outside, applied.mission_dir / "codes")
    for key, value in (
        ("code", rel),
        ("code", "scripts/../../outside.py"),
        ("code", "scripts/sneaky.py"),
        ("inspector", rel + ":inspect"),
        ("inspector", "scripts/sneaky.py:inspect"),
    ):

        def mutate(doc: dict, key: str = key, value: str = value) -> None:  # type: ignore[type-arg]
            if key == "code":
                doc["processes"]["L0_to_L1"]["code"]["path"] = value
            else:
                doc["products"]["L0_first"]["inspector"] = value

        target = edit_mission(applied.mission_file, mutate, name="hostile.toml")
        result = applied.run("config", "apply", str(target))
        assert result.exit_code == 2, (value, result.output)
        assert "outside the codes folder" in result.stderr, result.stderr
    # an absolute path, written as such, is the operator's explicit choice
    absolute = tmp_path / "absolute_code.py"
    absolute.write_text(RECORDER)
    target = edit_mission(
        applied.mission_file,
        lambda doc: doc["processes"]["L0_to_L1"]["code"].update(path=str(absolute)),
        name="absolute.toml",
    )
    applied.ok("config", "apply", str(target))
