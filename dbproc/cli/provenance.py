"""Commands for when something changed or looks wrong: reprocess, lineage, recall, explain."""

from __future__ import annotations

from typing import Any

import click

from dbproc.cli.output import table
from dbproc.cli.reports import parse_date
from dbproc.cli.state import AppState, command
from dbproc.errors import UsageError
from dbproc.provenance.lineage import Lineage, to_dot

#: how ``explain`` words each status for a person
VERDICTS = {
    "up_to_date": "up to date",
    "ingested": "up to date (ingested)",
    "not_expected": "no output expected",
    "superseded": "superseded",
    "out_of_date": "OUT OF DATE",
    "missing_input": "cannot be built",
    "outside_validity": "cannot be built",
    "no_code": "cannot be built",
    "failed": "FAILED",
    "collision": "cannot be built",
    "name_error": "cannot be built",
}


def verdict_text(status: str, reason: str) -> str:
    """``explain``'s verdict, with the reason in brackets unless the verdict says it."""
    verdict = VERDICTS.get(status, "NOT up to date")
    shown = reason.replace("_", " ")
    if not reason or reason == status or shown.lower() in verdict.lower():
        return verdict
    return f"{verdict} ({reason})"


def builds_text(builds: dict[str, dict[str, Any]] | None) -> list[str]:
    """Lines describing a build preview."""
    if builds is None:
        return []
    if not builds:
        return ["builds it causes: none"]
    lines = ["builds it causes (this pass and everything downstream):"]
    for process, info in builds.items():
        span = (
            info["first_date"]
            if info["first_date"] == info["last_date"]
            else f"{info['first_date']}..{info['last_date']}"
        )
        reasons = ", ".join(f"{r} {n}" for r, n in info["reasons"].items())
        lines.append(f"  {process}: {info['builds']} build(s), {span} ({reasons})")
    return lines


def register(cli: click.Group) -> None:  # long: it holds the commands, each short
    """Add this module's commands to ``cli``."""

    @command(cli, "reprocess")
    @click.option(
        "--product",
        "products",
        multiple=True,
        metavar="P",
        help="Outputs of product P (repeatable).",
    )
    @click.option(
        "--process",
        "processes",
        multiple=True,
        metavar="X",
        help="Outputs of process X (repeatable; RUN processes: dates they ran).",
    )
    @click.option(
        "--instrument",
        "instruments",
        multiple=True,
        metavar="I",
        help="Outputs of products of instrument I (repeatable).",
    )
    @click.option(
        "--file", "files", multiple=True, metavar="NAME", help="This output file (repeatable)."
    )
    @click.option("--since", metavar="YYYY-MM-DD", help="Outputs dated on or after.")
    @click.option("--until", metavar="YYYY-MM-DD", help="Outputs dated on or before.")
    @click.option(
        "--bump",
        type=click.Choice(["revision", "quality"]),
        default="revision",
        show_default=True,
        help="Which part of the version the rebuilds raise.",
    )
    @click.option(
        "--all", "everything", is_flag=True, help="Allow no filter at all: rebuild every output."
    )
    @click.option("--dry-run", is_flag=True, help="Show what would be queued; change nothing.")
    @click.option("--note", help="Why (kept with the request).")
    def reprocess(
        state: AppState,
        products: tuple[str, ...],
        processes: tuple[str, ...],
        instruments: tuple[str, ...],
        files: tuple[str, ...],
        since: str | None,
        until: str | None,
        bump: str,
        everything: bool,
        dry_run: bool,
        note: str | None,
    ) -> None:
        """Force rebuilds of the newest version of every matching output.

        Filters combine with AND between kinds and OR within a kind. The requests are
        stored; the next `dbproc run` (or `process`) rebuilds them with reason `forced`,
        and their children follow the normal rules.

        Example:

        \b
            dbproc reprocess --product L2 --since 2016-01-02 --until 2016-01-03 --dry-run
            dbproc reprocess --process L0_to_L1 --bump quality --note "new calibration"
        """
        if not (products or processes or instruments or files or since or until or everything):
            raise UsageError(
                "reprocess needs a filter (--product, --process, --instrument, "
                "--file, --since, --until), or --all to rebuild every output"
            )
        result = state.archive().reprocess(
            dry_run=dry_run,
            products=products,
            processes=processes,
            instruments=instruments,
            files=files,
            since=parse_date(since, "--since"),
            until=parse_date(until, "--until"),
            bump=bump,
            note=note,
        )
        verb = "would queue" if dry_run else "queued"
        lines = [
            f"{verb} {result.queued} forced rebuild(s)"
            + (f" ({result.already_queued} already queued)" if result.already_queued else "")
        ]
        lines += [
            f"  {t.process} {t.date}" + (f" (replaces {t.replaces})" if t.replaces else "")
            for t in result.targets[:20]
        ]
        if len(result.targets) > 20:
            lines.append(f"  ... and {len(result.targets) - 20} more")
        lines += builds_text(result.builds)
        if dry_run:
            lines.append("dry run: nothing was changed")
        state.emit(result, "\n".join(lines))

    @command(cli, "lineage")
    @click.argument("filename")
    @click.option(
        "--depth",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="How many generations to walk.",
    )
    @click.option("--all", "everything", is_flag=True, help="The whole ancestry and descendance.")
    @click.option("--up", "direction", flag_value="up", help="Only parents and ancestors.")
    @click.option("--down", "direction", flag_value="down", help="Only children and descendants.")
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json", "dot"]),
        default="text",
        help="Output format (--json is the same as --format json).",
    )
    def lineage(
        state: AppState,
        filename: str,
        depth: int,
        everything: bool,
        direction: str | None,
        fmt: str,
    ) -> None:
        """Show the parents and children of a file, with the code and run that made each.

        Superseded files keep their own lineage. `--format dot | dot -Tsvg` draws it.

        Example:

        \b
            dbproc lineage testDB_20160104_v1.1.0.cat --all
            dbproc lineage testDB_000_002.raw --down --depth 2 --format dot
        """
        found = state.archive().lineage(
            filename, depth=None if everything else depth, direction=direction or "both"
        )
        if fmt == "dot":
            click.echo(to_dot(found), nl=False)
            return
        if fmt == "json":
            state.json = True
        state.emit(found, _lineage_text(found))

    @command(cli, "recall")
    @click.argument("filename")
    @click.option(
        "--reprocess",
        "do_reprocess",
        is_flag=True,
        help="Force rebuilds of the newest derived files.",
    )
    @click.option(
        "--bump",
        type=click.Choice(["revision", "quality"]),
        default="revision",
        show_default=True,
        help="With --reprocess: which version part to raise.",
    )
    def recall(state: AppState, filename: str, do_reprocess: bool, bump: str) -> None:
        """List every file derived from FILENAME at any depth: the blast radius of a bad input.

        Example:

        \b
            dbproc recall testDB_000_002.raw
            dbproc recall testDB_000_002.raw --reprocess
        """
        archive = state.archive()
        found = archive.recall(filename)
        lines = [f"{found.count} file(s) derived from {filename} ({found.newest} newest)"]
        for product, info in found.by_product.items():
            lines.append(f"  {product}: {info.count} ({info.newest} newest)")
            lines += [
                f"    {f.filename}" + ("" if f.newest else " (superseded)") for f in info.files
            ]
        data = found.as_dict()
        if do_reprocess:
            queued = archive.recall_reprocess(filename, bump=bump)
            data["reprocess"] = queued.as_dict()
            lines.append(f"queued {queued.queued} forced rebuild(s); `dbproc run` makes them")
        state.emit(data, "\n".join(lines))

    @command(cli, "explain")
    @click.argument("filename", required=False)
    @click.option("--product", metavar="P", help="With --date: explain this product's date.")
    @click.option(
        "--process",
        metavar="X",
        help="With --date: explain this process's date (RUN processes too).",
    )
    @click.option("--date", "day", metavar="YYYY-MM-DD", help="With --product or --process.")
    def explain(
        state: AppState,
        filename: str | None,
        product: str | None,
        process: str | None,
        day: str | None,
    ) -> None:
        """Say why a file (or a product on a date) is, or is not, up to date, with evidence.

        Example:

        \b
            dbproc explain testDB_20160104_v1.0.0.cat
            dbproc explain --product L1 --date 2016-01-05 --json
        """
        if filename is None and ((product is None) == (process is None) or day is None):
            raise UsageError("give a FILENAME, or --product P (or --process X) --date YYYY-MM-DD")
        if filename is not None and (product or process or day):
            raise UsageError("give either a FILENAME or --product/--process and --date, not both")
        archive = state.archive()
        if process is not None:
            when = parse_date(day, "--date")
            assert when is not None
            found = archive.explain_process(process, when)
        else:
            found = archive.explain(filename, product=product, date=parse_date(day, "--date"))
        data = found.as_dict()
        items = data.get("decisions", [data])
        lines = []
        for item in items:
            what = item.get("product") or item["process"]
            head = item.get("filename") or f"{what} {item['date']}"
            lines.append(f"{head}: {verdict_text(item['status'], item['reason'])}")
            lines += [f"  - {e}" for e in item.get("evidence", [])]
            if item.get("code"):
                lines.append(f"  code: {item['code']['why']}")
            if item.get("next"):
                lines.append(
                    f"  next build: {item['next']['filename'] or '(RUN)'} "
                    f"version {item['next']['version']} with code "
                    f"{item['next']['code_version']}"
                )
            if item.get("last_run"):
                run = item["last_run"]
                lines.append(
                    f"  last run: {run['id']} {run['status']}"
                    + (f" ({run['error']})" if run.get("error") else "")
                )
        state.emit(data, "\n".join(lines))


def _lineage_text(found: Lineage) -> str:
    code = found.code
    made = (
        f"made by {code.process} code {code.version} ({code.path}), run {found.run}"
        if code
        else "ingested (not made by a code)"
    )
    lines = [
        f"{found.filename}  {found.product} v{found.version} {found.date}"
        + ("" if found.newest else "  (superseded)"),
        f"  {made}",
        *_relatives_text(found),
    ]
    for item in found.reproduced_by:
        lines.append(
            f"  reproduced identically by {item['code']['process']} code "
            f"{item['code']['version']} on {item['at']} (run {item['run']})"
        )
    if isinstance(found.runs, list) and found.runs:
        lines.append("RUN runs that used it:")
        lines.append(
            table(
                [(r["run"], r["process"], r["date"], r["code_version"]) for r in found.runs],
                ["run", "process", "date", "code"],
            )
        )
    return "\n".join(lines)


def _relatives_text(found: Lineage) -> list[str]:
    """The ancestors and descendants tables (parents and children at depth 1)."""
    lines = []
    if found.ancestors:
        deep = any(a.depth != 1 for a in found.ancestors)
        lines.append("ancestors:" if deep else "parents:")
        rows = [
            (
                a.depth,
                a.filename,
                a.product,
                a.version,
                f"{a.code.process} {a.code.version}" if a.code else "ingested",
            )
            for a in found.ancestors
        ]
        lines.append(table(rows, ["depth", "file", "product", "version", "made by"]))
    if found.descendants:
        deep = any(d.depth != 1 for d in found.descendants)
        lines.append("descendants:" if deep else "children:")
        rows = [
            (d.depth, d.filename, d.product, d.version, "yes" if d.newest else "no")
            for d in found.descendants
        ]
        lines.append(table(rows, ["depth", "file", "product", "version", "newest"]))
    return lines
