"""The docs' examples run: docs/cli.md's shell lines and docs/python-api.md's Python."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _blocks(page: str, language: str) -> list[str]:
    text = (DOCS / page).read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def _run_line(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    words = shlex.split(line)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBPROC_")}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    assert words[0] == "dbproc", line
    return subprocess.run(
        [sys.executable, "-m", "dbproc", *words[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_page_examples_run(tmp_path: Path) -> None:
    blocks = _blocks("cli.md", "bash")
    session = next(b for b in blocks if b.startswith("dbproc example demo"))
    for line in session.splitlines():
        proc = _run_line(line, tmp_path)
        assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
    others = [b for b in blocks if b is not session]
    assert others
    for block in others:  # the option-placement examples, in the demo's folder
        for line in block.splitlines():
            proc = _run_line(line, tmp_path / "demo")
            assert proc.returncode == 0, (line, proc.stdout, proc.stderr)


def test_python_api_page_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dbproc.examples import write_example

    write_example(tmp_path)
    monkeypatch.chdir(tmp_path)
    blocks = _blocks("python-api.md", "python")
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), {"__name__": "doc_example"})  # noqa: S102


def test_docs_agree_that_quiet_leaves_the_log_file_alone() -> None:
    """-q quiets the terminal; the log file always gets INFO (as dbproc.logs does)."""
    from dbproc import logs

    for page in ("cli.md", "operations.md"):
        text = " ".join((DOCS / page).read_text().split())
        assert "always gets INFO" in text, page
        assert "keeps only warnings and errors in the log" not in text, page
    assert "terminal's level only" in " ".join((logs.__doc__ or "").split())
