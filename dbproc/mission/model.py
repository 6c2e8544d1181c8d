"""The mission as frozen values: what a valid mission file says."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbproc.feed.config import FeedSettings
from dbproc.version import Version

TIMEBASES = ("DAILY", "FILE", "RUN")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
DEFAULT_INSPECTOR_FUNCTION = "inspect"


@dataclass(frozen=True)
class MissionSettings:
    """The ``[mission]`` table with every folder made absolute."""

    name: str
    root: Path
    incoming: Path
    errors: Path
    codes: Path


@dataclass(frozen=True)
class IngestSettings:
    """The optional ``[ingest]`` table."""

    settle_seconds: float = 5.0
    settle_check_seconds: float = 1.0
    #: seconds one inspector call may take (a product may set its own)
    inspector_timeout: float = 60.0
    #: worker processes that run inspectors
    inspector_workers: int = 2
    #: the largest inspector answer accepted, as JSON (metadata included)
    max_answer_bytes: int = 65536
    #: register zero-byte files instead of refusing them
    allow_empty: bool = False


@dataclass(frozen=True)
class LockSettings:
    """The optional ``[lock]`` table."""

    stale_after_seconds: float = 600.0
    heartbeat_seconds: float = 30.0


@dataclass(frozen=True)
class ExecutionSettings:
    """The optional ``[execution]`` table."""

    executor: str = "local"
    jobs: int | None = None
    scheduler: str | None = None
    kill_grace_seconds: float = 10.0
    #: the timeout of codes without their own ``timeout`` (None: no limit)
    code_timeout: float | None = None
    #: what each of a run's stdout and stderr keeps (head and tail), in bytes
    log_limit_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class RetentionSettings:
    """The optional ``[retention]`` table."""

    #: days the logs of successful runs are kept (0: forever)
    run_logs_days: float = 90.0


@dataclass(frozen=True)
class ProductConfig:
    """One ``[products.NAME]`` table."""

    name: str
    level: float
    dir: str
    format: str
    inspector: str | None = None
    inspector_args: Mapping[str, Any] = field(default_factory=dict)
    instrument: str | None = None
    satellite: str | None = None
    description: str | None = None
    inspector_timeout: float | None = None
    #: each new file waits for a verdict before consumers use it (§13)
    review: bool = False
    #: expected spacing of files below a day, e.g. "1h" (``files --missing --by hour``)
    cadence: str | None = None


@dataclass(frozen=True)
class InputConfig:
    """One entry of a process's ``inputs``."""

    product: str
    before: int = 0
    after: int = 0
    optional: bool = False


@dataclass(frozen=True)
class CodeConfig:
    """A process's ``code`` table."""

    path: str
    version: Version
    output_interface: int = 1
    args: tuple[str, ...] = ()
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    timeout: float | None = None
    description: str | None = None


@dataclass(frozen=True)
class ProcessConfig:
    """One ``[processes.NAME]`` table."""

    name: str
    output: str | None
    timebase: str
    inputs: tuple[InputConfig, ...]
    code: CodeConfig
    description: str | None = None
    #: every code of the process, by valid_from (``[[processes.NAME.code]]``); empty means
    #: just ``code``. ``code`` is the first of them.
    codes: tuple[CodeConfig, ...] = ()

    @property
    def all_codes(self) -> tuple[CodeConfig, ...]:
        """The process's codes: several with disjoint date ranges, or the one ``code``."""
        return self.codes or (self.code,)

    #: a rebuild with the newest version's exact bytes registers no new version
    early_cutoff: bool = False


@dataclass(frozen=True)
class MissionConfig:
    """A whole, valid mission file."""

    mission: MissionSettings
    products: Mapping[str, ProductConfig]
    processes: Mapping[str, ProcessConfig]
    ingest: IngestSettings = IngestSettings()
    lock: LockSettings = LockSettings()
    execution: ExecutionSettings = ExecutionSettings()
    retention: RetentionSettings = RetentionSettings()
    feed: FeedSettings = FeedSettings()


def split_inspector_spec(spec: str) -> tuple[str, str]:
    """``"path.py:func"`` → ``("path.py", "func")``; the function defaults to ``inspect``."""
    path, sep, function = spec.rpartition(":")
    if not sep or not function or "/" in function or not path:
        return spec, DEFAULT_INSPECTOR_FUNCTION
    return path, function


def resolve_code_path(codes: Path, path: str) -> Path:
    """A code or inspector path relative to ``codes`` (or absolute) as an absolute path."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else codes / p
