"""dbprocessing's processes and codes → ``[processes.*]`` tables (pure), for
:mod:`dbproc.importing.translate`: windows, timebases, the active code array."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dbproc.importing.legacy import LegacyCode, LegacyProcess
from dbproc.importing.report import ImportReport

if TYPE_CHECKING:
    from dbproc.importing.translate import Translation


def usable_name(name: str, taken: set[str]) -> str:
    """A dbproc-usable, unique version of a legacy name."""
    clean = re.sub(r"[^A-Za-z0-9_.\-]", "_", name).strip("._-")[:100] or "unnamed"
    if not clean[0].isalnum():
        clean = "x" + clean
    base, n = clean, 2
    while clean in taken:
        clean = f"{base[:95]}_{n}"
        n += 1
    taken.add(clean)
    return clean


def code_path(code: LegacyCode) -> str:
    version = ".".join(str(v) for v in code.version)
    return os.path.normpath(
        os.path.join(code.relative_path, code.filename).replace("{CODEVERSION}", version)
    )


def code_args(process: LegacyProcess, code: LegacyCode) -> list[str]:
    """``extra_params`` split on ``|``, then ``arguments`` split on whitespace."""
    extra = [a for a in (process.extra_params or "").split("|") if a.strip()]
    return extra + (code.arguments or "").split()


def code_table(process: LegacyProcess, code: LegacyCode) -> dict[str, Any]:
    table: dict[str, Any] = {
        "path": code_path(code),
        "version": ".".join(str(v) for v in code.version),
        "output_interface": int(code.output_interface or 1),
        "args": code_args(process, code),
    }
    if code.start != dt.date.min:
        table["valid_from"] = code.start
    if code.stop != dt.date.max:
        table["valid_until"] = code.stop
    if code.description:
        table["description"] = code.description
    return table


def translate_processes(
    out: Translation,
    processes: Sequence[LegacyProcess],
    codes: Sequence[LegacyCode],
    report: ImportReport,
) -> None:
    taken: set[str] = set()
    made_by: dict[str, str] = {}
    for proc in processes:
        name = usable_name(proc.name, taken)
        body = _process_body(out, proc, name, made_by, report)
        if body is None:
            continue
        mine = [c for c in codes if c.process_id == proc.id]
        chosen = _active_codes(proc, mine, name, report)
        if not chosen:
            report.note(
                "process", name, "it has no code", "add a [processes.NAME.code]", "not imported"
            )
            continue
        tables = [code_table(proc, c) for c in chosen]
        body["code"] = tables[0] if len(tables) == 1 else tables
        out.doc["processes"][name] = body
        out.processes[proc.id] = name
        seen: dict[str, int] = {}
        for c in sorted(mine, key=lambda c: (c not in chosen, c.id)):
            version = ".".join(str(v) for v in c.version)
            if version in seen and seen[version] != c.id:
                report.note(
                    "code",
                    f"{name} {version}",
                    f"code rows {seen[version]} and {c.id} have the same version",
                    "nothing: their outputs are linked to the one dbproc code version",
                    "merged",
                )
            seen.setdefault(version, c.id)
            out.codes[c.id] = (name, version)
            if c not in chosen and seen[version] == c.id:
                out.inactive[c.id] = code_table(proc, c)


def _process_body(
    out: Translation, proc: LegacyProcess, name: str, made_by: dict[str, str], report: ImportReport
) -> dict[str, Any] | None:
    """The process table without its code; None (noted) when it cannot be imported."""
    if proc.timebase not in ("DAILY", "FILE", "RUN"):
        report.note(
            "process",
            name,
            f"timebase {proc.timebase!r} is not run by dbprocessing "
            "either (only DAILY, FILE, RUN are)",
            "use DAILY, FILE or RUN",
            "not imported",
        )
        return None
    items = _input_items(out, proc, name, report)
    if items is None:
        return None
    if proc.timebase == "FILE":
        _drop_trigger_window(items, name, report)
    body: dict[str, Any] = {"timebase": proc.timebase, "inputs": items}
    if proc.timebase != "RUN":
        output = _output(out, proc, name, made_by, report)
        if output is None:
            return None
        body = {"output": output, **body}
    return body


def _input_items(
    out: Translation, proc: LegacyProcess, name: str, report: ImportReport
) -> list[dict[str, Any]] | None:
    """The ``inputs`` array (imported products only, one made required if none was);
    None (noted) when no input product was imported."""
    inputs = [i for i in proc.inputs if i.product_id in out.products]
    if not inputs:
        report.note(
            "process",
            name,
            "it has no input products (dbprocessing ran it only through DBRunner.py)",
            "give it an input, or run the code from cron",
            "not imported",
        )
        return None
    items = [
        {
            "product": out.products[i.product_id],
            "before": i.yesterday,
            "after": i.tomorrow,
            "optional": i.optional,
        }
        for i in inputs
    ]
    if all(i["optional"] for i in items):
        items[0]["optional"] = False
        report.note(
            "process",
            name,
            "every input is optional",
            "check which one is required",
            f"{items[0]['product']} made required",
        )
    return items


def _drop_trigger_window(items: list[dict[str, Any]], name: str, report: ImportReport) -> None:
    """A FILE process's trigger (its first required input) gets a window of 0."""
    first = next(i for i in items if not i["optional"])
    if first["before"] or first["after"]:
        report.note(
            "process",
            name,
            "the FILE trigger input has a window",
            "nothing: a FILE output follows its trigger file",
            "window of the trigger set to 0",
        )
        first["before"] = first["after"] = 0


def _output(
    out: Translation, proc: LegacyProcess, name: str, made_by: dict[str, str], report: ImportReport
) -> str | None:
    """The output product of a DAILY or FILE process, claimed in ``made_by``; None (noted)
    when it has none or another process makes it."""
    output = out.products.get(proc.output_product) if proc.output_product else None
    if output is None:
        report.note(
            "process",
            name,
            f"a {proc.timebase} process without an output product",
            "name its output product",
            "not imported",
        )
        return None
    if output in made_by:
        report.note(
            "process",
            name,
            f"its output {output} is also made by {made_by[output]}",
            "give each product one process",
            "not imported",
        )
        return None
    made_by[output] = name
    return output


def _active_codes(
    proc: LegacyProcess, mine: Sequence[LegacyCode], name: str, report: ImportReport
) -> list[LegacyCode]:
    """The codes dbprocessing would choose from (active and newest), disjoint by date."""
    active = sorted((c for c in mine if c.active and c.newest), key=lambda c: c.start)
    if not active and mine:
        best = max(mine, key=lambda c: c.version)
        report.note(
            "code",
            name,
            "no code is both active_code and newest_version",
            "check the code of the process",
            f"code {code_path(best)} {'.'.join(map(str, best.version))} made the active one",
        )
        return [best]
    chosen: list[LegacyCode] = []
    for c in sorted(active, key=lambda c: c.version, reverse=True):
        clash = next((o for o in chosen if c.start <= o.stop and o.start <= c.stop), None)
        if clash is not None:
            report.note(
                "code",
                name,
                f"codes {code_path(c)} and {code_path(clash)} are both "
                "active for overlapping dates (dbprocessing stops with an error there)",
                "make their date ranges disjoint",
                f"{code_path(c)} {'.'.join(map(str, c.version))} kept inactive",
            )
            continue
        chosen.append(c)
    seen_versions = set()
    unique = []
    for c in sorted(chosen, key=lambda c: c.start):
        if c.version in seen_versions:
            report.note(
                "code",
                name,
                f"two active codes have version {c.version}",
                "give each its own version",
                f"{code_path(c)} kept inactive",
            )
            continue
        seen_versions.add(c.version)
        unique.append(c)
    return unique
