"""Server-drawn SVG: the lineage graph and the small plots. Every text is escaped here,
so a hostile file name or metadata value stays text."""

from __future__ import annotations

import statistics
from html import escape
from typing import Any
from urllib.parse import quote

#: at most this many files per column of the lineage graph
MAX_PER_COLUMN = 30
NODE_W, NODE_H, COL_GAP, ROW_GAP = 250, 34, 70, 12


def _text(x: float, y: float, body: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(body)}</text>'


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(label)}">'
        + "".join(body)
        + "</svg>"
    )


def file_href(filename: str, hops: int | None = None) -> str:
    """The dashboard address of a file page."""
    return "/files/" + quote(filename, safe="") + (f"?hops={hops}" if hops else "")


def lineage_graph(data: dict[str, Any], hops: int) -> str:
    """The lineage of ``data`` (a ``lineage`` result) as columns by generation: ancestors
    left, descendants right; each node links to its own page; edges follow the links."""
    columns: dict[int, list[dict[str, Any]]] = {0: [data]}
    for item in data["ancestors"]:
        columns.setdefault(-item["depth"], []).append(item)
    for item in data["descendants"]:
        columns.setdefault(item["depth"], []).append(item)
    order = sorted(columns)
    hidden: dict[int, int] = {}
    for level in order:
        if len(columns[level]) > MAX_PER_COLUMN:
            hidden[level] = len(columns[level]) - MAX_PER_COLUMN
            columns[level] = columns[level][:MAX_PER_COLUMN]
    rows = max(len(c) + (1 if hidden.get(level) else 0) for level, c in columns.items())
    width = len(order) * (NODE_W + COL_GAP) - COL_GAP + 20
    height = rows * (NODE_H + ROW_GAP) + 20
    where: dict[str, tuple[float, float]] = {}
    body: list[str] = []
    for index, level in enumerate(order):
        x = 10.0 + index * (NODE_W + COL_GAP)
        for row, node in enumerate(columns[level]):
            where[node["filename"]] = (x, 10 + row * (NODE_H + ROW_GAP))
    for parent, child in data["edges"]:
        if parent in where and child in where:
            (px, py), (cx, cy) = where[parent], where[child]
            body.append(
                f'<line class="edge" x1="{px + NODE_W:.1f}" y1="{py + NODE_H / 2:.1f}" '
                f'x2="{cx:.1f}" y2="{cy + NODE_H / 2:.1f}"/>'
            )
    for index, level in enumerate(order):
        for node in columns[level]:
            x, y = where[node["filename"]]
            me = node["filename"] == data["filename"]
            css = "node self" if me else "node" + ("" if node.get("newest", True) else " old")
            name = node["filename"]
            shown = name if len(name) <= 34 else name[:31] + "..."
            body.append(
                f'<a href="{escape(file_href(name))}" class="{css}" data-filename="{escape(name)}">'
                f"<title>{escape(name)}</title>"
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="5"/>'
                + _text(x + 8, y + 14, shown)
                + _text(x + 8, y + 28, f"{node['product']} v{node['version']}", class_="sub")
                + "</a>"
            )
        if hidden.get(level):
            x = 10.0 + index * (NODE_W + COL_GAP)
            y = 10 + len(columns[level]) * (NODE_H + ROW_GAP)
            body.append(_text(x + 8, y + 18, f"... and {hidden[level]} more", class_="sub"))
    return _svg(width, height, body, f"lineage of {data['filename']} to {hops} hops")


def bars(
    points: list[tuple[str, float, float]],
    *,
    label: str,
    unit: str,
    width: int = 720,
    height: int = 160,
) -> str:
    """A bar chart: (label, total, highlighted part) per bar, e.g. runs and failed runs."""
    if not points:
        return f'<p class="empty">no data for {escape(label)}</p>'
    top = float(max(p[1] for p in points) or 1.0)
    step = min((width - 50) / len(points), 40.0)
    body = [
        _text(4, 12, f"{top:g} {unit}", class_="axis"),
        f'<line class="axis" x1="40" y1="{height - 20}" x2="{width}" y2="{height - 20}"/>',
    ]
    for i, (name, total, part) in enumerate(points):
        x = 45 + i * step
        h = (height - 40) * total / top
        hp = (height - 40) * part / top
        body.append(
            f"<g><title>{escape(name)}: {total:g} {escape(unit)}"
            + (f", {part:g} failed" if part else "")
            + "</title>"
            f'<rect class="bar" x="{x:.1f}" y="{height - 20 - h:.1f}" '
            f'width="{max(step - 1, 1):.1f}" height="{h:.1f}"/>'
            + (
                f'<rect class="bar bad" x="{x:.1f}" y="{height - 20 - hp:.1f}" '
                f'width="{max(step - 1, 1):.1f}" height="{hp:.1f}"/>'
                if part
                else ""
            )
            + "</g>"
        )
    body.append(_text(45, height - 5, points[0][0], class_="axis"))
    body.append(_text(width - 80, height - 5, points[-1][0], class_="axis"))
    return _svg(width, height, body, label)


def ranges(series: list[tuple[str, list[float]]], *, label: str, width: int = 720) -> str:
    """Per series: min..max line with the median as a dot (run durations by code version)."""
    if not series:
        return f'<p class="empty">no data for {escape(label)}</p>'
    top = max(max(v) for _, v in series) or 1.0
    height = 24 * len(series) + 30
    left, span = 230, width - 250
    body = [_text(left, 12, f"0 .. {top:.3g} s", class_="axis")]
    for i, (name, values) in enumerate(series):
        y = 30 + i * 24
        lo, mid, hi = min(values), statistics.median(values), max(values)
        body.append(
            f"<g><title>{escape(name)}: {len(values)} runs, median {mid:.3g} s, "
            f"{lo:.3g}..{hi:.3g} s</title>"
            + _text(4, y + 4, name if len(name) < 34 else name[:31] + "...")
            + f'<line class="range" x1="{left + span * lo / top:.1f}" y1="{y}" '
            f'x2="{left + span * hi / top:.1f}" y2="{y}"/>'
            + f'<circle class="median" cx="{left + span * mid / top:.1f}" cy="{y}" r="4"/></g>'
        )
    return _svg(width, height, body, label)
