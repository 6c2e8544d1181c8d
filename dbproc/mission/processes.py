"""The ``[processes.*]`` tables: inputs, outputs, output formats, cycles (the ``code`` of
each is read by :mod:`dbproc.mission.codes`)."""

from __future__ import annotations

from collections.abc import Mapping

from dbproc.mission.codes import parse_codes
from dbproc.mission.fields import (
    Problems,
    check_keys,
    integer,
    is_table,
    string,
)
from dbproc.mission.model import (
    NAME_RE,
    TIMEBASES,
    InputConfig,
    MissionSettings,
    ProcessConfig,
    ProductConfig,
)
from dbproc.mission.tables import INPUT_KEYS, PROCESS_KEYS
from dbproc.naming import FilenameFormat, FormatError


def parse_inputs(
    problems: Problems,
    table: str,
    value: object,
    products: Mapping[str, ProductConfig],
    product_names: set[str],
) -> tuple[InputConfig, ...]:
    """``inputs``: a non-empty list of input products (tables, or bare names)."""
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
        parsed = _parse_input(problems, table, f"inputs[{i}]", item, product_names, seen)
        if parsed is not None:
            inputs.append(parsed)
    if inputs and all(i.optional for i in inputs):
        problems.add(
            table,
            "inputs",
            "every input is optional",
            "make at least one input required (optional = false)",
        )
    return tuple(inputs)


def _parse_input(
    problems: Problems,
    table: str,
    key: str,
    item: object,
    product_names: set[str],
    seen: set[str],
) -> InputConfig | None:
    """One entry of ``inputs`` (its product is added to ``seen``)."""
    if isinstance(item, str):
        item = {"product": item}
    if not isinstance(item, dict):
        problems.add(
            table,
            key,
            f"must be a table, got {item!r}",
            'write { product = "NAME", before = 0, after = 0 }',
        )
        return None
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
    optional = _flag(problems, table, f"{key}.optional", item.get("optional", False), "optional")
    if product is None:
        return None
    seen.add(product)
    return InputConfig(product, before, after, optional)


def _flag(problems: Problems, table: str, key: str, value: object, name: str) -> bool:
    """A true/false key (``name`` is how the fix writes it); false when it is not one."""
    if isinstance(value, bool):
        return value
    problems.add(table, key, f"must be true or false, got {value!r}", f"write {name} = true")
    return False


def parse_processes(
    problems: Problems,
    value: object,
    products: Mapping[str, ProductConfig],
    declared: set[str],
    mission: MissionSettings | None,
) -> dict[str, ProcessConfig]:
    """Every ``[processes.NAME]`` table that is usable, then a check for cycles."""
    out: dict[str, ProcessConfig] = {}
    if not is_table(problems, "processes", value):
        return out
    assert isinstance(value, dict)
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
        process = _parse_process(problems, name, body, products, declared, outputs, mission)
        if process is not None:
            out[name] = process
    check_cycles(problems, out)
    return out


def _parse_process(
    problems: Problems,
    name: str,
    body: dict[str, object],
    products: Mapping[str, ProductConfig],
    product_names: set[str],
    outputs: dict[str, str],
    mission: MissionSettings | None,
) -> ProcessConfig | None:
    """One ``[processes.NAME]`` table, or None when it is unusable."""
    table = f"processes.{name}"
    check_keys(problems, table, body, PROCESS_KEYS, required=("timebase", "inputs", "code"))
    timebase = string(problems, table, "timebase", body.get("timebase"))
    if timebase is not None and timebase not in TIMEBASES:
        problems.add(table, "timebase", f"{timebase!r} is not a timebase", "use DAILY, FILE or RUN")
        timebase = None
    output = _parse_output(problems, name, body, timebase, product_names, outputs)
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
        return None
    early_cutoff = _flag(
        problems, table, "early_cutoff", body.get("early_cutoff", False), "early_cutoff"
    )
    return ProcessConfig(
        name,
        output if timebase != "RUN" else None,
        timebase,
        inputs,
        codes[0],
        description,
        codes if len(codes) > 1 else (),
        early_cutoff,
    )


def _parse_output(
    problems: Problems,
    name: str,
    body: dict[str, object],
    timebase: str | None,
    product_names: set[str],
    outputs: dict[str, str],
) -> str | None:
    """``output``: a declared product no other process makes (noted in ``outputs``)."""
    table = f"processes.{name}"
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
    return output


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
