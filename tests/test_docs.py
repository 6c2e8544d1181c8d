"""The docs describe what exists: every command is documented and the reference is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbproc.cli import cli
from dbproc.cli.reference import command_paths, render_reference

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_cli_reference_is_current() -> None:
    assert (DOCS / "cli-reference.md").read_text() == render_reference(), (
        "docs/cli-reference.md is stale: run `python -m dbproc.cli.reference > "
        "docs/cli-reference.md`"
    )


@pytest.mark.parametrize("path", command_paths(cli), ids=" ".join)
def test_every_command_is_in_the_cli_page(path: tuple[str, ...]) -> None:
    text = (DOCS / "cli.md").read_text()
    assert f"`{' '.join(path)}" in text or f"`{path[-1]}" in text, f"{path} not in docs/cli.md"


def test_readme_names_the_two_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    assert "./scripts/demo" in readme and "./scripts/test" in readme


def test_docs_links_resolve() -> None:
    import re

    for page in [DOCS.parent / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+\.md)\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
