"""Builds dbproc's code launcher (dbproc/executors/launcher.c) beside the Python package.

Everything else is in pyproject.toml. The launcher starts every code in one small exec
(parent-death signal, the code's own peak memory, no shell); where no C compiler is
found, dbproc installs without it and starts codes through setpriv and GNU time instead
(slower by about 3 ms a run), and says so here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

SOURCE = Path("dbproc") / "executors" / "launcher.c"
BINARY = "dbproc-launch"


def _compiler() -> list[str] | None:
    for candidate in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc"):
        if not candidate:
            continue
        words = shlex.split(candidate)
        if shutil.which(words[0]):
            return words
    return None


def build_launcher(target: Path) -> None:
    """Compile the launcher to ``target``: static where the C library allows it (no
    dynamic loader at each start), else dynamic; nothing, with a warning, without a
    compiler or off Linux."""
    if not sys.platform.startswith("linux"):
        return
    compiler = _compiler()
    if compiler is None:
        print("warning: no C compiler: codes will start through setpriv and GNU time")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    base = [*compiler, "-O2", "-Wall", "-o", str(partial), str(SOURCE)]
    for flags in (["-static"], []):
        done = subprocess.run([*base, *flags], capture_output=True, text=True)
        if done.returncode == 0:
            os.chmod(partial, 0o755)
            os.replace(partial, target)
            return
    print(
        f"warning: the code launcher did not compile ({done.stderr.strip()[-500:]}): "
        "codes will start through setpriv and GNU time"
    )


class BuildPyWithLauncher(build_py):
    """build_py, then the launcher: into the build tree for a wheel, into the source tree
    for an editable install (which imports dbproc from there)."""

    def run(self) -> None:
        super().run()
        root = Path(".") if getattr(self, "editable_mode", False) else Path(self.build_lib)
        build_launcher(root / "dbproc" / "executors" / BINARY)


class BinaryDistribution(Distribution):
    """A wheel that carries the launcher is tagged for its platform, so that it is never
    installed on a machine that cannot execute the launcher."""

    def has_ext_modules(self) -> bool:
        return sys.platform.startswith("linux")


setup(cmdclass={"build_py": BuildPyWithLauncher}, distclass=BinaryDistribution)
