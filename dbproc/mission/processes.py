"""The ``[processes.*]`` tables: inputs, code, output formats, cycles."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping

from dbproc.executors.launch import exec_problem
from dbproc.mission.fields import (
    Problems,
    check_code_file,
    check_keys,
    integer,
    is_table,
    parse_date,
    string,
)
from dbproc.mission.model import (
    NAME_RE,
    TIMEBASES,
    CodeConfig,
    InputConfig,
    MissionSettings,
    ProcessConfig,
    ProductConfig,
)
from dbproc.mission.tables import CODE_KEYS, INPUT_KEYS, PROCESS_KEYS
from dbproc.naming import FilenameFormat, FormatError
from dbproc.version import Version


def parse_inputs(
    problems: Problems,
    table: str,
    value: object,
    products: Mapping[str, ProductConfig],
    product_names: set[str],
) -> tuple[InputConfig, ...]:
    if value is None:
        problems.add(table, "inputs", "missing key", "list the input products")
        return ()
    if not isinstance(value, list) or not value:
        problems.add(
            table,
            "inputs",
            "must be a non-empty list of tables",
            'write inputs = [{ product = "L0" }]',
        )
        return ()
    inputs: list[InputConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        key = f"inputs[{i}]"
        if isinstance(item, str):
            item = {"product": item}
        if not isinstance(item, dict):
            problems.add(
                table,
                key,
                f"must be a table, got {item!r}",
                'write { product = "NAME", before = 0, after = 0 }',
            )
            continue
        check_keys(problems, f"{table}.{key}", item, INPUT_KEYS, required=("product",))
        product = string(problems, table, f"{key}.product", item.get("product"))
        if product is not None and product not in product_names:
            problems.add(
                table,
                f"{key}.product",
                f"names unknown product {product!r}",
                "define it under [products] or fix the name",
            )
        if product is not None and product in seen:
            problems.add(
                table,
                f"{key}.product",
                f"product {product!r} is listed twice",
                "list each input product once",
            )
        before = integer(problems, table, f"{key}.before", item.get("before"), 0, 0)
        after = integer(problems, table, f"{key}.after", item.get("after"), 0, 0)
        optional = item.get("optional", False)
        if not isinstance(optional, bool):
            problems.add(
                table,
                f"{key}.optional",
                f"must be true or false, got {optional!r}",
                "write optional = true",
            )
            optional = False
        if product is not None:
            seen.add(product)
            inputs.append(InputConfig(product, before, after, optional))
    if inputs and all(i.optional for i in inputs):
        problems.add(
            table,
            "inputs",
            "every input is optional",
            "make at least one input required (optional = false)",
        )
    return tuple(inputs)


def parse_codes(
    problems: Problems, table: str, value: object, mission: MissionSettings | None
) -> tuple[CodeConfig, ...]:
    """``code``: one table, or an array of tables (``[[processes.NAME.code]]``) whose
    ``valid_from..valid_until`` ranges do not overlap; sorted by ``valid_from``."""
    if not isinstance(value, list):
        one = parse_code(problems, table, value, mission)
        return (one,) if one is not None else ()
    if not value:
        problems.add(table, "code", "is an empty array", f"add a [[{table}.code]] table")
        return ()
    codes: list[CodeConfig] = []
    for i, item in enumerate(value):
        parsed = parse_code(problems, table, item, mission, f"{table}.code[{i}]")
        if parsed is not None:
            codes.append(parsed)
    if len(codes) != len(value):
        return ()
    codes.sort(key=lambda c: c.valid_from or dt.date.min)
    seen: dict[Version, CodeConfig] = {}
    for code in codes:
        if code.version in seen:
            problems.add(
                f"{table}.code",
                "version",
                f"two codes have version {code.version} ({seen[code.version].path} and "
                f"{code.path})",
                "give each code of a process its own version",
            )
        seen[code.version] = code
    for a, b in itertools.combinations(codes, 2):
        if _ranges_overlap(a, b):
            problems.add(
                f"{table}.code",
                "valid_from",
                f"code {describe_code(a)} and code {describe_code(b)} overlap "
                f"{max(a.valid_from or dt.date.min, b.valid_from or dt.date.min)}.."
                f"{min(a.valid_until or dt.date.max, b.valid_until or dt.date.max)}",
                "make the valid_from..valid_until ranges disjoint "
                "(each output date is built by one code)",
            )
    return tuple(codes)


def describe_code(code: CodeConfig) -> str:
    """``"1.0.0 (l1.py, 2010-01-01..2014-12-31)"``."""
    return (
        f"{code.version} ({code.path}, {code.valid_from or '-inf'}..{code.valid_until or '+inf'})"
    )


def _ranges_overlap(a: CodeConfig, b: CodeConfig) -> bool:
    a_lo, a_hi = a.valid_from or dt.date.min, a.valid_until or dt.date.max
    b_lo, b_hi = b.valid_from or dt.date.min, b.valid_until or dt.date.max
    return a_lo <= b_hi and b_lo <= a_hi


def parse_code(
    problems: Problems,
    table: str,
    value: object,
    mission: MissionSettings | None,
    ctable: str | None = None,
) -> CodeConfig | None:
    ctable = ctable or f"{table}.code"
    if value is None:
        problems.add(table, "code", "missing key", f"add a [{ctable}] table with path and version")
        return None
    if not is_table(problems, ctable, value):
        return None
    assert isinstance(value, dict)
    check_keys(problems, ctable, value, CODE_KEYS, required=("path", "version"))
    path = string(problems, ctable, "path", value.get("path"))
    if path is not None and mission is not None:
        resolved = check_code_file(problems, ctable, "path", mission.codes, path)
        problem = exec_problem(resolved) if resolved is not None else None
        if problem is not None:
            problems.add(
                ctable,
                "path",
                f"{resolved}: {problem.split(': add ')[0]}",
                "add a first line such as '#!/usr/bin/env python3', or name a Python code *.py",
            )
    version = None
    raw_version = value.get("version")
    if raw_version is not None:
        try:
            version = Version.parse(raw_version) if isinstance(raw_version, str) else None
        except ValueError:
            version = None
        if version is None:
            problems.add(
                ctable,
                "version",
                f"{raw_version!r} is not a version x.y.z",
                'write e.g. version = "1.0.0" (interface >= 1)',
            )
    output_interface = integer(
        problems, ctable, "output_interface", value.get("output_interface"), 1, 1
    )
    args = value.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        problems.add(
            ctable,
            "args",
            f"must be a list of strings, got {args!r}",
            'write e.g. args = ["--flag", "{DATE}"]',
        )
        args = []
    elif any("\x00" in a for a in args):
        problems.add(ctable, "args", "an argument contains a NUL character", "remove it")
    valid_from = parse_date(problems, ctable, "valid_from", value.get("valid_from"))
    valid_until = parse_date(problems, ctable, "valid_until", value.get("valid_until"))
    if valid_from and valid_until and valid_from > valid_until:
        problems.add(
            ctable,
            "valid_until",
            f"{valid_until} is before valid_from {valid_from}",
            "swap or fix the dates",
        )
    timeout = value.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        problems.add(
            ctable,
            "timeout",
            f"must be a number of seconds > 0, got {timeout!r}",
            "write e.g. timeout = 3600",
        )
        timeout = None
    description = string(problems, ctable, "description", value.get("description"))
    if path is None or version is None:
        return None
    return CodeConfig(
        path,
        version,
        output_interface,
        tuple(args),
        valid_from,
        valid_until,
        float(timeout) if timeout is not None else None,
        description,
    )


def parse_processes(
    problems: Problems,
    value: object,
    products: Mapping[str, ProductConfig],
    declared: set[str],
    mission: MissionSettings | None,
) -> dict[str, ProcessConfig]:
    out: dict[str, ProcessConfig] = {}
    if not is_table(problems, "processes", value):
        return out
    assert isinstance(value, dict)
    product_names = declared
    outputs: dict[str, str] = {}
    for name, body in value.items():
        table = f"processes.{name}"
        if not NAME_RE.match(name):
            problems.add(
                table,
                None,
                f"process name {name!r} is not usable",
                "use letters, digits, '_', '-', '.' (at most 100)",
            )
        if not is_table(problems, table, body):
            continue
        check_keys(problems, table, body, PROCESS_KEYS, required=("timebase", "inputs", "code"))
        timebase = string(problems, table, "timebase", body.get("timebase"))
        if timebase is not None and timebase not in TIMEBASES:
            problems.add(
                table, "timebase", f"{timebase!r} is not a timebase", "use DAILY, FILE or RUN"
            )
            timebase = None
        output = string(problems, table, "output", body.get("output"))
        if timebase == "RUN" and output is not None:
            problems.add(
                table,
                "output",
                "a RUN process makes no file",
                "remove output, or use timebase DAILY or FILE",
            )
        if timebase in ("DAILY", "FILE") and output is None and "output" not in body:
            problems.add(
                table,
                "output",
                f"a {timebase} process needs an output product",
                'add output = "PRODUCT" (or use timebase RUN)',
            )
        if output is not None and output not in product_names:
            problems.add(
                table,
                "output",
                f"names unknown product {output!r}",
                "define it under [products] or fix the name",
            )
        elif output is not None and output in outputs:
            problems.add(
                table,
                "output",
                f"product {output!r} is already the output of process {outputs[output]!r}",
                "give each output product one process",
            )
        elif output is not None:
            outputs[output] = name
        inputs = parse_inputs(problems, table, body.get("inputs"), products, product_names)
        codes = parse_codes(problems, table, body.get("code"), mission)
        description = string(problems, table, "description", body.get("description"))
        if output is not None and timebase != "RUN" and output in products:
            check_output_format(problems, table, products[output], timebase, inputs, products)
        first = next((i for i in inputs if not i.optional), None)
        if timebase == "FILE" and first is not None and (first.before or first.after):
            problems.add(
                table,
                "inputs",
                f"the first required input {first.product!r} of a "
                "FILE process is the file itself and takes no window",
                "set its before and after to 0 (windows apply to the other inputs)",
            )
        if timebase is None or not codes or not inputs:
            continue
        early_cutoff = body.get("early_cutoff", False)
        if not isinstance(early_cutoff, bool):
            problems.add(
                table,
                "early_cutoff",
                f"must be true or false, got {early_cutoff!r}",
                "write early_cutoff = true",
            )
            early_cutoff = False
        out[name] = ProcessConfig(
            name,
            output if timebase != "RUN" else None,
            timebase,
            inputs,
            codes[0],
            description,
            codes if len(codes) > 1 else (),
            early_cutoff,
        )
    check_cycles(problems, out)
    return out


def check_output_format(
    problems: Problems,
    table: str,
    product: ProductConfig,
    timebase: str | None,
    inputs: tuple[InputConfig, ...],
    products: Mapping[str, ProductConfig],
) -> None:
    try:
        fmt = FilenameFormat.parse(product.format)
    except FormatError:
        return  # reported with the product
    where = f"products.{product.name}"
    if not fmt.has_version:
        problems.add(
            where,
            "format",
            f"{product.format!r} is the output of {table} but has no {{VERSION}}",
            "add {VERSION} so each rebuild gets its own name",
        )
    if not fmt.has_date:
        problems.add(
            where,
            "format",
            f"{product.format!r} is the output of {table} but has no complete date",
            "add {Y}{m}{d} (or {DATE}, or {Y}{j})",
        )
    if timebase == "DAILY" and fmt.free_fields:
        problems.add(
            where,
            "format",
            f"{product.format!r} is a DAILY output with free fields {', '.join(fmt.free_fields)}",
            "remove them: there is one output per date",
        )
    if timebase == "FILE" and fmt.free_fields:
        first = next((i for i in inputs if not i.optional), None)
        source = products.get(first.product) if first else None
        if source is not None and source.inspector is None:
            src_fields = set(FilenameFormat.parse(source.format).free_fields)
            missing = [f for f in fmt.free_fields if f not in src_fields]
            if missing:
                problems.add(
                    where,
                    "format",
                    f"free field(s) {', '.join(missing)} are not "
                    f"fields of the first input {source.name!r}",
                    "use only free fields the input file's name has",
                )


def check_cycles(problems: Problems, processes: Mapping[str, ProcessConfig]) -> None:
    producer = {p.output: p.name for p in processes.values() if p.output}
    graph = {
        p.name: {producer[i.product] for i in p.inputs if i.product in producer}
        for p in processes.values()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> bool:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                problems.add(
                    f"processes.{node}",
                    "inputs",
                    f"processes form a cycle: {' <- '.join(cycle)}",
                    "break the cycle: no process may consume its own output",
                )
                return True
            if state.get(nxt) is None and visit(nxt):
                return True
        stack.pop()
        state[node] = 2
        return False

    for node in sorted(graph):
        if state.get(node) is None and visit(node):
            return
