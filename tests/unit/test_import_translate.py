"""Translating dbprocessing's formats, arguments, codes and inspectors (pure, no database)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dbproc.importing.legacy import LegacyCode, LegacyInput, LegacyMission, LegacyProcess
from dbproc.importing.legacy_inspector import keywords_of, run_legacy
from dbproc.importing.processes import _active_codes, code_args
from dbproc.importing.report import ImportReport
from dbproc.importing.translate import (
    parse_arguments,
    resolve_dirs,
    translate_format,
    usable_name,
)


def _fmt(text: str, output: bool = False) -> tuple[str, ImportReport]:
    report = ImportReport("old", "new.toml")
    return translate_format(text, output=output, what="P", report=report), report


def test_formats() -> None:
    new, report = _fmt("x_{Y}{m}{d}_v{VERSION}.cdf", output=True)
    assert new == "x_{Y}{m}{d}_v{VERSION}.cdf" and report.untranslated == []
    new, report = _fmt("x_{datetime}.cat")
    assert new == "x_{Y}-{m}-{d}.cat" and report.untranslated
    new, report = _fmt("x_{Y}{m}{d}.cat", output=True)
    assert new == "x_{Y}{m}{d}_v{VERSION}.cat"
    assert "without {VERSION}" in report.untranslated[0].problem
    new, report = _fmt("b_{Y}{m}{d}{H}{M}{S}{MILLI}_{QACODE}.dat")
    assert new == "b_{Y}{m}{d}{H}{M}{S}{milli}_{qacode}.dat"
    assert {u.problem for u in report.untranslated} == {
        "{MILLI} has no dbproc equivalent",
        "{QACODE} has no dbproc equivalent",
    }


def test_inspector_arguments_stop_at_the_first_bare_token() -> None:
    assert parse_arguments("apid=000 -q x=1") == ({"apid": "000"}, ["-q", "x=1"])
    assert parse_arguments(None) == ({}, [])
    assert keywords_of("nnn=000 bad x=a") == {"nnn": "000", "x": "a"}


def test_names_and_folders() -> None:
    taken: set[str] = set()
    assert usable_name("MagEIS L2 {daily}", taken) == "MagEIS_L2__daily"
    assert usable_name("MagEIS L2 {daily}", taken) == "MagEIS_L2__daily_2"
    dirs = resolve_dirs(LegacyMission("m", ".", "incoming", "", None, None), Path("/r"))
    assert dirs["codes"] == Path("/r") and dirs["errors"] == Path("/r/errors")
    assert dirs["inspectors"] == Path("/r") and dirs["incoming"] == Path("/r/incoming")


def _code(
    cid: int, version: tuple[int, int, int], start: str, stop: str, *, active: bool = True
) -> LegacyCode:
    return LegacyCode(
        cid,
        1,
        f"c{cid}.py",
        "bin",
        dt.date.fromisoformat(start),
        dt.date.fromisoformat(stop),
        None,
        version,
        1,
        active,
        active,
        "-a {DATE}",
    )


def test_codes_active_newest_and_disjoint() -> None:
    proc = LegacyProcess(1, "p", 2, "DAILY", "--x|--y z", (LegacyInput(3, False, 1, 1),))
    report = ImportReport("old", "new.toml")
    codes = [
        _code(1, (1, 0, 0), "2010-01-01", "2014-12-31"),
        _code(2, (2, 0, 0), "2015-01-01", "2020-01-01"),
        _code(3, (0, 9, 0), "2010-01-01", "2020-01-01", active=False),
        _code(4, (2, 1, 0), "2019-06-01", "2021-01-01"),
    ]
    chosen = _active_codes(proc, codes, "p", report)
    assert [c.id for c in chosen] == [1, 4]  # 2.0.0 overlaps the newer 2.1.0
    assert "overlapping" in report.untranslated[0].problem
    assert code_args(proc, codes[0]) == ["--x", "--y z", "-a", "{DATE}"]


def test_legacy_inspector_runs_without_dbprocessing(tmp_path: Path) -> None:
    source = tmp_path / "insp.py"
    source.write_text(
        "import datetime\n"
        "from dbprocessing import inspector, Version\n"
        "class Inspector(inspector.inspector):\n"
        "    code_name = 'insp.py'\n"
        "    def inspect(self, kwargs):\n"
        "        if not self.basename.startswith(kwargs['prefix']):\n"
        "            return None\n"
        "        d = self.extract_YYYYMMDD()\n"
        "        self.diskfile.params['utc_file_date'] = d.date()\n"
        "        self.diskfile.params['utc_start_time'] = d\n"
        "        self.diskfile.params['utc_stop_time'] = d + datetime.timedelta(hours=6)\n"
        "        self.diskfile.params['version'] = Version.Version.fromString('1.2.3')\n"
        "        self.diskfile.params['process_keywords'] = 'apid=7'\n"
        "        return True\n"
    )
    answer = run_legacy("/data/x_20160102.dat", dbprocessing_inspector=str(source), prefix="x")
    assert answer == {
        "date": dt.date(2016, 1, 2),
        "version": "1.2.3",
        "start": dt.datetime(2016, 1, 2),
        "stop": dt.datetime(2016, 1, 2, 6),
        "keywords": {"apid": "7"},
    }
    assert (
        run_legacy("/data/y_20160102.dat", dbprocessing_inspector=str(source), prefix="x") is None
    )


def test_old_database_is_opened_as_dbprocessing_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbproc.errors import UsageError
    from dbproc.importing.legacy import open_url

    db = tmp_path / "old.sqlite"
    db.write_bytes(b"")
    assert open_url(str(db)).drivername == "sqlite"
    monkeypatch.delenv("PGUSER", raising=False)
    with pytest.raises(UsageError, match="PGUSER"):
        open_url("rbsp_mageis")
    monkeypatch.setenv("PGUSER", "ops")
    monkeypatch.setenv("PGHOST", "db.example.org")
    monkeypatch.setenv("PGPORT", "5433")
    url = open_url("rbsp_mageis")
    assert (url.username, url.host, url.port, url.database) == (
        "ops",
        "db.example.org",
        5433,
        "rbsp_mageis",
    )
    with pytest.raises(UsageError, match="no such file"):
        open_url(str(tmp_path / "missing.sqlite"))
