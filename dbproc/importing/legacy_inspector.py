"""Running a dbprocessing inspector (a class ``Inspector`` in a file) as a dbproc inspector.

An imported product keeps its old inspector file where it is: the mission file names a
small adapter (``dbprocessing_inspector.py`` beside it) whose ``inspect(path, **args)``
calls :func:`run_legacy` with ``dbprocessing_inspector`` = the old file. dbprocessing need
not be installed: when it is not importable, a minimal stand-in for the parts inspectors
use (``dbprocessing.inspector.inspector``, ``dbprocessing.Version``) is provided. The
``Diskfile`` parameters the inspector fills become dbproc's answer: ``utc_file_date`` →
``date``, ``utc_start_time``/``utc_stop_time`` → ``start``/``stop``, ``version``,
``process_keywords`` (``k=v k=v``) → ``keywords``, QA fields → ``metadata``.
This runs in dbproc's inspector worker processes, never in the controller.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import sys
import types
from functools import total_ordering
from typing import Any

_MODULES: dict[str, Any] = {}
_METADATA_KEYS = ("quality_comment", "caveats", "met_start_time", "met_stop_time")


@total_ordering
class Version:
    """Stand-in for ``dbprocessing.Version.Version``."""

    def __init__(self, interface: int, quality: int, revision: int) -> None:
        self.interface, self.quality, self.revision = int(interface), int(quality), int(revision)

    @classmethod
    def fromString(cls, text: str) -> Version:  # noqa: N802 - dbprocessing's name
        a, b, c = text.strip().split(".")
        return cls(int(a), int(b), int(c))

    def _key(self) -> tuple[int, int, int]:
        return (self.interface, self.quality, self.revision)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return "{}.{}.{}".format(*self._key())


class _Diskfile:
    def __init__(self, path: str) -> None:
        self.filename = path
        self.params: dict[str, Any] = {
            "utc_file_date": None,
            "utc_start_time": None,
            "utc_stop_time": None,
            "version": None,
            "process_keywords": None,
        }


def extract_YYYYMMDD(filename: str) -> dt.datetime | None:  # noqa: N802
    """Stand-in for ``dbprocessing.inspector.extract_YYYYMMDD``."""
    for match in re.finditer(r"(?<!\d)((?:19|20)\d{6})(?!\d)", filename):
        try:
            return dt.datetime.strptime(match.group(1), "%Y%m%d")
        except ValueError:
            continue
    return None


class inspector:  # noqa: N801 - dbprocessing's name
    """Stand-in for ``dbprocessing.inspector.inspector``."""

    code_name = "inspector"

    def __init__(self, filename: str, dbu: Any = None, product: Any = None, **kwargs: Any) -> None:
        self.filename = filename
        self.basename = os.path.basename(filename)
        self.dirname = os.path.dirname(filename)
        self.dbu = dbu
        self.product = product
        self.diskfile = _Diskfile(filename)
        self.output = self.inspect(kwargs)

    def inspect(self, kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def extract_YYYYMMDD(self) -> dt.datetime | None:  # noqa: N802
        return extract_YYYYMMDD(self.basename)

    def __call__(self) -> Any:
        return self.diskfile if self.output is not None else None


def _install_stand_in() -> None:
    if "dbprocessing" in sys.modules or importlib.util.find_spec("dbprocessing") is not None:
        return
    package = types.ModuleType("dbprocessing")
    package.__path__ = []
    version_module = types.ModuleType("dbprocessing.Version")
    version_module.Version = Version  # type: ignore[attr-defined]
    inspector_module = types.ModuleType("dbprocessing.inspector")
    inspector_module.inspector = inspector  # type: ignore[attr-defined]
    inspector_module.extract_YYYYMMDD = extract_YYYYMMDD  # type: ignore[attr-defined]
    package.Version = version_module  # type: ignore[attr-defined]
    package.inspector = inspector_module  # type: ignore[attr-defined]
    sys.modules.update(
        {
            "dbprocessing": package,
            "dbprocessing.Version": version_module,
            "dbprocessing.inspector": inspector_module,
        }
    )


def _load(path: str) -> Any:
    module = _MODULES.get(path)
    if module is None:
        _install_stand_in()
        spec = importlib.util.spec_from_file_location(
            f"_dbprocessing_inspector_{len(_MODULES)}", path
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load the dbprocessing inspector {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, "Inspector"):
            raise ImportError(f"{path} defines no class Inspector (a dbprocessing inspector)")
        _MODULES[path] = module
    return module


def keywords_of(text: str | None) -> dict[str, str]:
    """``process_keywords`` (``k=v k=v``) as a dict; tokens without ``=`` are skipped."""
    out: dict[str, str] = {}
    for token in (text or "").split():
        key, eq, value = token.partition("=")
        if eq and key.isidentifier():
            out[key] = value
    return out


def run_legacy(path: str, *, dbprocessing_inspector: str, **args: Any) -> dict[str, Any] | None:
    """Ask the dbprocessing inspector at ``dbprocessing_inspector`` about ``path``."""
    module = _load(dbprocessing_inspector)
    instance = module.Inspector(path, None, None, **{k: str(v) for k, v in args.items()})
    diskfile = instance()
    if diskfile is None:
        return None
    params = diskfile.params
    if params.get("utc_file_date") is None or params.get("version") is None:
        return None
    answer: dict[str, Any] = {"date": params["utc_file_date"], "version": str(params["version"])}
    if params.get("utc_start_time") is not None:
        answer["start"] = params["utc_start_time"]
    if params.get("utc_stop_time") is not None:
        answer["stop"] = params["utc_stop_time"]
    keywords = keywords_of(params.get("process_keywords"))
    if keywords:
        answer["keywords"] = keywords
    metadata = {k: params[k] for k in _METADATA_KEYS if params.get(k) is not None}
    if metadata:
        answer["metadata"] = metadata
    return answer


ADAPTER_SOURCE = '''"""dbproc inspector adapter written by `dbproc import-dbprocessing`: runs the
dbprocessing inspector named by inspector_args.dbprocessing_inspector."""


def inspect(path, **args):
    from dbproc.importing.legacy_inspector import run_legacy

    return run_legacy(path, **args)
'''
