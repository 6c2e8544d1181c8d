"""The benchmark mission: two raw products (L0_a, L0_b), a DAILY L1 concatenating both
(window 0/0), a FILE L2 (ROT13 of each L1) and a RUN step logging each L2 — the rot13
example's shape with one raw file per product and day (or ``per_day`` hourly ones).

The codes are tiny Python scripts following the calling convention
``CODE [args...] INPUT... OUTPUT``; :func:`direct_argv` builds the same command lines
for the controller-free baseline.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

PREFIX = "bm"

CONCAT = '''"""L0 -> L1: concatenate INPUT... into OUTPUT."""
import sys

*inputs, output = sys.argv[1:]
with open(output, "wb") as out:
    for name in inputs:
        with open(name, "rb") as fh:
            out.write(fh.read())
'''

ROT13 = '''"""L1 -> L2: ROT13 of INPUT into OUTPUT."""
import codecs
import sys

source, output = sys.argv[1:]
with open(source, encoding="utf-8") as fh:
    text = fh.read()
with open(output, "w", encoding="utf-8") as out:
    out.write(codecs.encode(text, "rot13"))
'''

LOGGER = '''"""RUN: append "DATE INPUT..." to LOGFILE."""
import os
import sys

logfile, date, *inputs = sys.argv[1:]
with open(logfile, "a", encoding="utf-8") as out:
    out.write(date + " " + " ".join(os.path.basename(i) for i in inputs) + "\\n")
'''

INSPECTOR = '''"""Inspector for bm_<tag>_<YYYYMMDD>.raw: date from the name, first line kept."""
import datetime
import os
import re


def inspect(path, tag="a"):
    match = re.fullmatch(r"bm_" + re.escape(tag) + r"_([0-9]{8})\\.raw", os.path.basename(path))
    if match is None:
        return None
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8", "replace").strip()
    day = datetime.datetime.strptime(match[1], "%Y%m%d").date()
    return {"date": day, "metadata": {"first_line": first}}
'''

SCRIPTS = {"l0_to_l1.py": CONCAT, "l1_to_l2.py": ROT13, "log_l2.py": LOGGER}

#: the same three codes as shell scripts of a millisecond or two (the throughput benchmark:
#: recorded runs per second when the codes cost next to nothing)
SHELL_SCRIPTS = {
    "l0_to_l1.sh": '''#!/bin/sh
# L0 -> L1: concatenate INPUT... into OUTPUT (the last argument)
eval "out=\\${$#}"
: > "$out"
while [ $# -gt 1 ]; do cat "$1" >> "$out"; shift; done
''',
    "l1_to_l2.sh": '''#!/bin/sh
# L1 -> L2: ROT13 of INPUT into OUTPUT
tr 'A-Za-z' 'N-ZA-Mn-za-m' < "$1" > "$2"
''',
    "log_l2.sh": '''#!/bin/sh
# RUN: append "DATE INPUT..." to LOGFILE
logfile=$1; date=$2; shift 2
line=$date
for i; do line="$line ${i##*/}"; done
echo "$line" >> "$logfile"
''',
}


@dataclass(frozen=True)
class Mission:
    """A written benchmark mission."""

    toml: Path
    root: Path
    incoming: Path
    codes: Path
    hourly: bool

    def l0_name(self, tag: str, day: dt.date, hour: int = 0) -> str:
        """The raw file name of product L0_<tag> for ``day`` (and ``hour``)."""
        if self.hourly:
            return f"{PREFIX}_{tag}_{day:%Y%m%d}_{hour:02d}.raw"
        return f"{PREFIX}_{tag}_{day:%Y%m%d}.raw"

    @staticmethod
    def l1_name(day: dt.date) -> str:
        """The first L1 file of ``day``."""
        return f"{PREFIX}_{day:%Y%m%d}_v1.0.0.cat"

    @staticmethod
    def l2_name(day: dt.date) -> str:
        """The first L2 file of ``day``."""
        return f"{PREFIX}_{day:%Y%m%d}_v1.0.0.rot"

    def drop_l0(self, days: list[dt.date], per_day: int = 1) -> list[Path]:
        """Write raw files for ``days`` into incoming; return their paths."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        out: list[Path] = []
        for day in days:
            for tag in ("a", "b"):
                for hour in range(per_day):
                    path = self.incoming / self.l0_name(tag, day, hour)
                    path.write_text(f"{tag} {day} {hour} raw part.\n", encoding="utf-8")
                    out.append(path)
        return out


def write_mission(dest: Path, *, hourly: bool = False, inspector: bool = False,
                  shell: bool = False) -> Mission:
    """Write mission.toml and its codes under ``dest`` (``shell``: the shell-script codes)."""
    codes = dest / "codes"
    (codes / "scripts").mkdir(parents=True, exist_ok=True)
    (codes / "inspectors").mkdir(parents=True, exist_ok=True)
    for name, text in SCRIPTS.items():
        (codes / "scripts" / name).write_text(text, encoding="utf-8")
    for name, text in SHELL_SCRIPTS.items():
        (codes / "scripts" / name).write_text(text, encoding="utf-8")
        (codes / "scripts" / name).chmod(0o755)
    ext = "sh" if shell else "py"
    (codes / "inspectors" / "l0.py").write_text(INSPECTOR, encoding="utf-8")
    hour = "_{H}" if hourly else ""
    products = []
    for tag in ("a", "b"):
        extra = ""
        if inspector:
            extra = (
                'inspector = "inspectors/l0.py:inspect"\n'
                f'inspector_args = {{ tag = "{tag}" }}\n'
            )
        products.append(
            f"[products.L0_{tag}]\nlevel = 0\ndir = \"L0/{{Y}}\"\n"
            f'format = "{PREFIX}_{tag}_{{DATE}}{hour}.raw"\n{extra}'
        )
    text = f"""# dbproc benchmark mission (written by scripts/bench)
[mission]
name = "bench"
root = "data"
incoming = "incoming"
errors = "errors"
codes = "codes"

{chr(10).join(products)}
[products.L1]
level = 1
dir = "L1/{{Y}}"
format = "{PREFIX}_{{DATE}}_v{{VERSION}}.cat"

[products.L2]
level = 2
dir = "L2/{{Y}}/{{m}}"
format = "{PREFIX}_{{DATE}}_v{{VERSION}}.rot"

[processes.L0_to_L1]
output = "L1"
timebase = "DAILY"
inputs = [{{ product = "L0_a" }}, {{ product = "L0_b" }}]
[processes.L0_to_L1.code]
path = "scripts/l0_to_l1.{ext}"
version = "1.0.0"

[processes.L1_to_L2]
output = "L2"
timebase = "FILE"
inputs = [{{ product = "L1" }}]
[processes.L1_to_L2.code]
path = "scripts/l1_to_l2.{ext}"
version = "1.0.0"

[processes.L2_log]
timebase = "RUN"
inputs = [{{ product = "L2" }}]
[processes.L2_log.code]
path = "scripts/log_l2.{ext}"
version = "1.0.0"
args = ["{{ROOTDIR}}/L2-log.txt", "{{DATE}}"]
"""
    toml = dest / "mission.toml"
    toml.write_text(text, encoding="utf-8")
    root = dest / "data"
    incoming = root / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    return Mission(toml, root, incoming, codes, hourly)


def direct_argv(codes: Path, script: str, *args: str | Path) -> list[str]:
    """The command line dbproc uses for a ``.py`` code without its run bit."""
    return [sys.executable, str(codes / "scripts" / script), *(str(a) for a in args)]


def days_from(first: dt.date, count: int) -> list[dt.date]:
    """``count`` consecutive days from ``first``."""
    return [first + dt.timedelta(days=i) for i in range(count)]
