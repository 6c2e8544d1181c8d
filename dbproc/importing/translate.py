"""dbprocessing's mission → a dbproc mission file (pure: legacy rows in, TOML doc out).

Everything that cannot be carried over as it was goes into the report with what to do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbproc.importing.legacy import (
    LegacyCode,
    LegacyInspector,
    LegacyMission,
    LegacyProcess,
    LegacyProduct,
)
from dbproc.importing.processes import translate_processes, usable_name
from dbproc.importing.report import ImportReport
from dbproc.naming import DIR_FIELDS, FilenameFormat, FormatError

#: dbprocessing's load-time fields, expanded from the mission's own names
NAME_FIELDS = ("MISSION", "SPACECRAFT", "SATELLITE", "INSTRUMENT", "PRODUCT", "LEVEL")
#: dbprocessing fields dbproc has no equivalent for, and the free field that replaces them
AS_FREE_FIELD = {"MILLI": "milli", "MICRO": "micro", "QACODE": "qacode", "mday": "mday"}
ADAPTER_NAME = "dbprocessing_inspector.py"
_FIELD = re.compile(r"\{([^{}]*)\}")


@dataclass
class Translation:
    """The mission document and the maps from old ids to new names."""

    doc: dict[str, Any]
    products: dict[int, str] = field(default_factory=dict)
    processes: dict[int, str] = field(default_factory=dict)
    #: old code id -> (process name, version "x.y.z"); every code of an imported process
    codes: dict[int, tuple[str, str]] = field(default_factory=dict)
    #: codes registered inactive (not in the mission file): old id -> code table
    inactive: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: product name -> the dir template as dbprocessing resolves it (for file paths)
    legacy_dirs: dict[int, str] = field(default_factory=dict)


def expand_names(text: str, values: Mapping[str, str]) -> str:
    """Replace dbprocessing's name fields ({MISSION}, {INSTRUMENT}, ...) by their values."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def translate_format(fmt: str, *, output: bool, what: str, report: ImportReport) -> str:
    """A dbprocessing filename format as a dbproc one (see the docs' differences table)."""
    new = fmt.replace("{datetime}", "{Y}-{m}-{d}")
    if new != fmt:
        report.note(
            "format",
            what,
            f"{fmt!r} uses {{datetime}}",
            "nothing: same names",
            "{datetime} written as {Y}-{m}-{d}",
        )
    for old, free in AS_FREE_FIELD.items():
        if "{" + old + "}" in new:
            new = new.replace("{" + old + "}", "{" + free + "}")
            report.note(
                "format",
                what,
                f"{{{old}}} has no dbproc equivalent",
                f"make the product's inspector report keyword {free!r} "
                f"(dbproc inspectors return keywords={{'{free}': ...}})",
                f"{{{old}}} became the free field {{{free}}}",
            )
    try:
        parsed = FilenameFormat.parse(new)
    except FormatError as exc:
        report.note(
            "format",
            what,
            f"{fmt!r} is not a usable dbproc format: {exc}",
            "edit the product's format in the mission file",
        )
        return new
    if output and not parsed.has_version:
        stem, dot, ext = new.rpartition(".")
        proposed = f"{stem}_v{{VERSION}}.{ext}" if dot and "}" not in ext else new + "_v{VERSION}"
        report.note(
            "format",
            what,
            f"{fmt!r} is a process output without {{VERSION}} (dbprocessing could never "
            "rebuild it: the name would not change)",
            "keep the proposed format, or choose another with {VERSION}; existing files keep "
            "their names; make sure the product's inspector also accepts the new names",
            f"format proposed: {proposed!r}",
        )
        new = proposed
    return new


def translate_dir(relative_path: str, what: str, report: ImportReport) -> str:
    """A dbprocessing ``relative_path`` as a dbproc ``dir`` (date fields only)."""
    fields = set(_FIELD.findall(relative_path))
    bad = sorted(f for f in fields if f not in DIR_FIELDS)
    if not bad:
        return relative_path or "."
    fixed = _FIELD.sub(
        lambda m: m.group(0) if m.group(1) in DIR_FIELDS else m.group(1), relative_path
    )
    report.note(
        "dir",
        what,
        f"relative_path {relative_path!r} uses {', '.join(bad)}; a dbproc dir "
        "takes only date fields",
        "choose a dir; existing files stay where they are",
        f"dir {fixed!r}",
    )
    return fixed


def parse_arguments(text: str | None) -> tuple[dict[str, str], list[str]]:
    """``"k=v k=v"`` as dbprocessing reads inspector arguments (it stops at the first token
    without ``=``); the dropped tokens come back second."""
    args: dict[str, str] = {}
    tokens = (text or "").split()
    for n, token in enumerate(tokens):
        key, eq, value = token.partition("=")
        if not eq:
            return args, tokens[n:]
        args[key] = value
    return args, []


def resolve_dirs(m: LegacyMission, root: Path) -> dict[str, Path]:
    """dbprocessing's folder rules (getDirectory): everything relative to rootdir; codedir
    defaults to rootdir, inspectordir to codedir, errordir to codedir/errors."""

    def under(value: str | None, default: Path) -> Path:
        if not value:
            return default
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else root / p

    codes = under(m.codedir, root)
    return {
        "root": root,
        "incoming": under(m.incoming_dir, root),
        "codes": codes,
        "inspectors": under(m.inspectordir, codes),
        "errors": under(m.errordir, codes / "errors"),
    }


def _mission_table(m: LegacyMission, dirs: Mapping[str, Path]) -> dict[str, Any]:
    return {
        "name": m.name,
        "root": str(dirs["root"]),
        "incoming": str(dirs["incoming"]),
        "errors": str(dirs["errors"]),
        "codes": str(dirs["codes"]),
    }


def translate(
    mission: LegacyMission,
    root: Path,
    products: Sequence[LegacyProduct],
    inspectors: Sequence[LegacyInspector],
    processes: Sequence[LegacyProcess],
    codes: Sequence[LegacyCode],
    adapter: Path,
    report: ImportReport,
) -> Translation:
    """The dbproc mission document for a dbprocessing mission."""
    dirs = resolve_dirs(mission, root)
    out = Translation({"mission": _mission_table(mission, dirs), "products": {}, "processes": {}})
    outputs = {p.output_product for p in processes if p.output_product is not None}
    taken: set[str] = set()
    by_product = {}
    for insp in inspectors:
        if insp.product_id not in by_product or insp.active:
            by_product[insp.product_id] = insp
    for p in products:
        _product(
            out, p, by_product.get(p.id), p.id in outputs, mission, dirs, adapter, taken, report
        )
    translate_processes(out, processes, codes, report)
    return out


def _product(
    out: Translation,
    p: LegacyProduct,
    insp: LegacyInspector | None,
    is_output: bool,
    mission: LegacyMission,
    dirs: Mapping[str, Path],
    adapter: Path,
    taken: set[str],
    report: ImportReport,
) -> None:
    """One legacy product as a ``[products.NAME]`` table of ``out.doc`` (its id mapped)."""
    name = usable_name(p.name, taken)
    if name != p.name:
        report.note(
            "name",
            p.name,
            "not a usable dbproc product name",
            "nothing, or rename it in the mission file before the first apply",
            f"named {name!r}",
        )
    values = _name_values(mission, p)
    legacy_dir = expand_names(p.relative_path, values)
    out.legacy_dirs[p.id] = legacy_dir
    table: dict[str, Any] = {
        "level": int(p.level) if float(p.level).is_integer() else p.level,
        "dir": translate_dir(legacy_dir, name, report),
        "format": translate_format(
            expand_names(p.format, values), output=is_output, what=name, report=report
        ),
    }
    _inspector_keys(table, insp, dirs, adapter, name, report)
    for key, value in (
        ("instrument", p.instrument),
        ("satellite", p.satellite),
        ("description", p.description),
    ):
        if value:
            table[key] = value
    out.doc["products"][name] = table
    out.products[p.id] = name


def _name_values(mission: LegacyMission, p: LegacyProduct) -> dict[str, str]:
    """The values of dbprocessing's name fields ({MISSION}, ...) for one product."""
    return {
        "MISSION": mission.name,
        "SPACECRAFT": p.satellite or "",
        "SATELLITE": p.satellite or "",
        "INSTRUMENT": p.instrument or "",
        "PRODUCT": p.name,
        "LEVEL": f"{p.level:g}",
    }


def _inspector_keys(
    table: dict[str, Any],
    insp: LegacyInspector | None,
    dirs: Mapping[str, Path],
    adapter: Path,
    name: str,
    report: ImportReport,
) -> None:
    """The product's inspector (the adapter running dbprocessing's one) into ``table``."""
    if insp is not None:
        args, dropped = parse_arguments(insp.arguments)
        path = dirs["inspectors"] / insp.relative_path / insp.filename
        table["inspector"] = f"{adapter}:inspect"
        table["inspector_args"] = {"dbprocessing_inspector": str(path), **args}
        if dropped:
            report.note(
                "inspector",
                name,
                f"inspector arguments {' '.join(dropped)!r} are not key=value "
                "(dbprocessing ignored them too: it stops at the first such token)",
                "drop them, or turn them into key = value inspector_args",
                "dropped",
            )
        if not insp.active:
            report.note(
                "inspector",
                name,
                "its inspector is not active in dbprocessing",
                "remove the inspector from the product if files must not be recognised",
                "referenced anyway",
            )
    else:
        report.note(
            "inspector",
            name,
            "the product has no inspector row",
            "add an inspector, or rely on the format alone (it needs a date)",
            "identified by its format alone",
        )
