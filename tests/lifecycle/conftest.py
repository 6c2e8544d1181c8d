"""Fixtures of the life-cycle tests: the example mission built once, with early cutoff."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import CliHarness, edit_mission


def set_code(cli: CliHarness, process: str, **code: Any) -> None:
    """Change ``process``'s code table (and any process key given as ``proc_KEY``)."""

    def mutate(doc: dict[str, Any]) -> None:
        for key, value in code.items():
            if key.startswith("proc_"):
                doc["processes"][process][key[5:]] = value
            else:
                doc["processes"][process]["code"][key] = value

    edit_mission(cli.mission_file, mutate)
    cli.ok("config", "apply", str(cli.mission_file))


def run_statuses(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(process, date, status) of every run of a ``run --json`` report."""
    return sorted((r["process"], r["date"], r["status"]) for r in report["process"]["runs"])


@pytest.fixture
def built(applied: CliHarness) -> CliHarness:
    """The example mission applied and run once."""
    applied.ok("run")
    return applied
