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


PACKAGE = DOCS.parent / "dbproc"


def test_the_layout_in_design_md_names_every_module() -> None:
    """docs/design.md's table matches the tree: each module of dbproc is named there."""
    design = (DOCS / "design.md").read_text()
    unnamed = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.stem not in ("__init__", "__main__")
        and "examples" not in path.parts  # the example mission's codes, data
        and f"{path.stem}.py" not in design
        and f"`{path.stem}`" not in design
    ]
    assert not unnamed, f"modules docs/design.md does not name: {unnamed}"


def test_the_paths_in_design_md_exist() -> None:
    import re

    design = (DOCS / "design.md").read_text()
    named = set(re.findall(r"`(?:dbproc/)?([a-z_]+/[a-z_]+\.py)`", design))
    missing = sorted(
        p for p in named if not (PACKAGE / p).exists() and not (PACKAGE.parent / p).exists()
    )
    assert not missing, f"docs/design.md names modules that do not exist: {missing}"
