"""The CLI reference page (docs/cli-reference.md), generated from every command's help.

``python -m dbproc.cli.reference > docs/cli-reference.md`` rewrites it; a test fails when
the page and the commands drift apart.
"""

from __future__ import annotations

import click
from click.testing import CliRunner


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path, depth first, sorted."""
    out: list[tuple[str, ...]] = []
    ctx = click.Context(group)  # (list_commands and get_command load lazy commands)
    for name in sorted(group.list_commands(ctx)):
        cmd = group.get_command(ctx, name)
        if cmd is None:
            continue
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out.extend(command_paths(cmd, (*prefix, name)))
    return out


def render_reference() -> str:
    """The whole reference page."""
    from dbproc.cli import cli

    runner = CliRunner()
    parts = [
        "# CLI reference\n",
        "Generated from `--help` by `python -m dbproc.cli.reference`; do not edit.\n",
    ]
    for path in [(), *command_paths(cli)]:
        result = runner.invoke(cli, [*path, "--help"], prog_name="dbproc", terminal_width=100)
        title = " ".join(("dbproc", *path))
        parts.append(f"## `{title}`\n\n```\n{result.output.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    click.echo(render_reference(), nl=False)
