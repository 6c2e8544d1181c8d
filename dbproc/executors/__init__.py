"""Executors: where and how codes run (local threads by default, Dask for clusters)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbproc.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from dbproc.executors.base import Executor, JobResult, JobSpec
    from dbproc.executors.local import LocalExecutor, default_jobs

EXECUTORS = ("local", "dask")
#: names this package gives from its modules, imported at first use (the CLI needs only
#: EXECUTORS to parse ``--executor``)
_LAZY = {
    "Executor": "base",
    "JobResult": "base",
    "JobSpec": "base",
    "LocalExecutor": "local",
    "default_jobs": "local",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"dbproc.executors.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_executor(
    name: str = "local", *, jobs: int | None = None, scheduler: str | None = None
) -> Executor:
    """The executor called ``name`` (``local`` or ``dask``)."""
    if name == "local":
        from dbproc.executors.local import LocalExecutor

        return LocalExecutor(jobs)
    if name == "dask":
        if not scheduler:
            raise UsageError(
                "the dask executor needs a scheduler address: --scheduler "
                "tcp://host:8786 (or [execution] scheduler in the mission file)"
            )
        try:
            from dbproc.executors.dask import DaskExecutor
        except ImportError as exc:
            raise ConfigError(
                f"the dask executor needs dask.distributed ({exc}); install it "
                "with `pip install 'dbproc[dask]'`"
            ) from exc
        executor: Executor = DaskExecutor(scheduler, jobs=jobs)
        return executor
    raise UsageError(f"unknown executor {name!r}; use one of: {', '.join(EXECUTORS)}")


__all__ = [
    "EXECUTORS",
    "Executor",
    "JobResult",
    "JobSpec",
    "LocalExecutor",
    "default_jobs",
    "make_executor",
]
