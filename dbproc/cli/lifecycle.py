"""Commands of the data life-cycle: ``release``, ``purge`` and ``export prov|rocrate``."""

from __future__ import annotations

import csv
import io
from typing import Any

import click

from dbproc.cli.output import table
from dbproc.cli.state import AppState, command

RELEASE_COLUMNS = ("filename", "product", "date", "version", "sha256", "path")


@click.group("release")
def release_group() -> None:
    """Named, immutable sets of files: create, list, show, diff.

    Example:

    \b
        dbproc release create v1 --note "first public release"
        dbproc release show v1 --format csv > v1.csv
        dbproc release diff v1 v2
    """


@command(release_group, "create")
@click.argument("name")
@click.option(
    "--product",
    "products",
    multiple=True,
    metavar="P",
    help="Only files of product P (repeatable; default every product).",
)
@click.option("--note", help="What the release is (kept with it).")
def release_create(state: AppState, name: str, products: tuple[str, ...], note: str | None) -> None:
    """Freeze the newest version of every (product, date) as release NAME.

    A release is immutable: a second `create` of NAME is refused. Its manifest is
    written under the data root's .dbproc/releases/NAME.sha256; verify it with
    `cd ROOT && sha256sum -c .dbproc/releases/NAME.sha256`.
    """
    data = state.archive().release_create(name, products, note).as_dict()
    state.emit(
        data,
        f"release {data['name']}: {data['files']} file(s); manifest "
        f"{data['manifest']} (verify: cd {data['root']} && sha256sum -c "
        f"{data['manifest']})",
    )


@command(release_group, "list")
def release_list(state: AppState) -> None:
    """List the releases, oldest first."""
    rows = [r.as_dict() for r in state.archive().releases()]
    text = (
        table(
            [
                (
                    r["name"],
                    r["created_at"],
                    r["files"],
                    ",".join(r["products"]) or "all",
                    r["note"] or "",
                )
                for r in rows
            ],
            ["name", "created", "files", "products", "note"],
        )
        or "no releases"
    )
    state.emit(rows, text)


@command(release_group, "show")
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv", "json", "manifest"]),
    default="text",
    help="csv, json (same as --json), or sha256sum manifest text.",
)
def release_show(state: AppState, name: str, fmt: str) -> None:
    """List the files of release NAME."""
    archive = state.archive()
    if fmt == "manifest":
        click.echo(archive.release_manifest(name), nl=False)
        return
    rows = [r.as_dict() for r in archive.release_files(name)]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, RELEASE_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
        return
    if fmt == "json":
        state.json = True
    data = [{k: r[k] for k in RELEASE_COLUMNS} for r in rows]
    state.emit(
        data,
        table(
            [(r["filename"], r["product"], r["date"], r["version"]) for r in rows],
            ["file", "product", "date", "version"],
        )
        or f"release {name} holds no file",
    )


@command(release_group, "diff")
@click.argument("old")
@click.argument("new")
def release_diff(state: AppState, old: str, new: str) -> None:
    """What changed from release OLD to NEW: files added, removed, and changed versions."""
    data = state.archive().release_diff(old, new).as_dict()
    lines = [
        f"{old} -> {new}: {len(data['added'])} added, {len(data['removed'])} removed, "
        f"{len(data['changed'])} changed, {data['unchanged']} unchanged"
    ]
    lines += [f"  + {n}" for n in data["added"]]
    lines += [f"  - {n}" for n in data["removed"]]
    lines += [f"  ~ {c['from']} -> {c['to']}" for c in data["changed"]]
    state.emit(data, "\n".join(lines))


def _purge_text(data: dict[str, Any]) -> str:
    verb = "deleted" if data["applied"] else "would delete"
    lines = [
        f"{verb} {len(data['delete'])} file(s), {data['bytes']} bytes "
        f"(keeping the newest {data['keep']} of each product and date)"
    ]
    lines += [f"  {f['filename']}" for f in data["files"]]
    for why, names in data["kept"].items():
        lines.append(f"kept {len(names)} older file(s): {why.replace('_', ' ')}")
    lines += [f"problem: {p}" for p in data["problems"]]
    if not data["applied"] and data["delete"]:
        lines.append("dry run: nothing was deleted; add --apply to delete")
    return "\n".join(lines)


@click.group("export")
def export_group() -> None:
    """Provenance in standard forms: W3C PROV, RO-Crate."""


@command(export_group, "prov")
@click.argument("filenames", nargs=-1)
@click.option("--product", metavar="P", help="Every file of product P (all versions).")
@click.option("--all", "everything", is_flag=True, help="Every registered file.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "provn", "xml", "rdf"]),
    default="json",
    show_default=True,
    help="PROV-JSON, PROV-N, PROV-XML, RDF (Turtle).",
)
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    default=None,
    help="Generations of ancestors to include (default: all).",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file.")
def export_prov(
    state: AppState,
    filenames: tuple[str, ...],
    product: str | None,
    everything: bool,
    fmt: str,
    depth: int | None,
    output: str | None,
) -> None:
    """Write a W3C PROV document of files and their ancestors.

    Files are entities (product, date, version, sha256), runs activities, codes agents
    with plans. Load it with `prov.read(PATH)` in Python.

    \b
        dbproc export prov --all --format provn
        dbproc export prov testDB_20160104_v1.0.0.rot --depth 1 -o prov.json
    """
    text = state.archive().export_prov(
        filenames, product=product, everything=everything, fmt=fmt, depth=depth
    )
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=False)


@command(export_group, "rocrate")
@click.argument("filename")
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write the crate into (created).",
)
def export_rocrate(state: AppState, filename: str, to: str) -> None:
    """Write an RO-Crate (Process Run Crate profile) of FILENAME and its ancestors."""
    data = state.archive().export_rocrate(filename, to).as_dict()
    state.emit(data, f"wrote {data['metadata']}: {data['files']} file(s), {data['actions']} run(s)")


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli`` (``export`` joins an existing group)."""
    cli.add_command(release_group)
    existing = cli.commands.get("export")
    if isinstance(existing, click.Group):
        for name, sub in export_group.commands.items():
            existing.add_command(sub, name)
    else:
        cli.add_command(export_group)

    @command(cli, "purge")
    @click.option(
        "--keep",
        type=click.IntRange(min=1),
        default=2,
        show_default=True,
        help="Versions of each (product, date) to keep.",
    )
    @click.option(
        "--product",
        "products",
        multiple=True,
        metavar="P",
        help="Only files of product P (repeatable).",
    )
    @click.option("--apply", "do_apply", is_flag=True, help="Delete (default: only list).")
    def purge(state: AppState, keep: int, products: tuple[str, ...], do_apply: bool) -> None:
        """List (and with --apply delete from disk) versions older than the newest KEEP.

        Never deletes a newest version, a file in a release, or a file a newest
        version was made from. Purged files keep their record and lineage (state
        `purged` in `files --all-versions`).

        \b
            dbproc purge --keep 2
            dbproc purge --product L1 --keep 3 --apply
        """
        data = state.archive().purge(keep=keep, products=products, apply=do_apply).as_dict()
        state.emit(data, _purge_text(data))
