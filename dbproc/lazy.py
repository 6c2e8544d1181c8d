"""Imports paid for only when used: every command starts a new interpreter, and most
commands need a small part of dbproc.

:func:`lazy_module` stands for a module and imports it at its first attribute access;
:func:`lazy_names` stands for names of a module (functions, classes) and imports the module
at the first call or attribute access of one of them. Both are for a module's *global*
names; type checkers should see the real import, so use them as::

    if TYPE_CHECKING:
        from dbproc.admin import registry
        from dbproc.control.passes import PassOptions, run_pass
    else:
        registry = lazy_module("dbproc.admin.registry")
        PassOptions, run_pass = lazy_names("dbproc.control.passes", "PassOptions", "run_pass")

A lazy name is a stand-in, not the object itself: call it or read its attributes, but do
not use it with ``isinstance`` or as a base class (import the real name for that).
Importing is thread-safe (Python's import lock); after the first use each access costs one
dictionary look-up in ``sys.modules``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """A module imported at the first access of one of its attributes."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"lazy stand-in for {name}")

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"


class LazyName:
    """A stand-in for ``module.name``, imported at the first call or attribute access."""

    __slots__ = ("_module", "_name")

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name

    def resolve(self) -> Any:
        """The real object (importing its module if needed)."""
        return getattr(importlib.import_module(self._module), self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.resolve(), attr)

    def __repr__(self) -> str:
        return f"<lazy {self._module}.{self._name}>"


def lazy_module(name: str) -> ModuleType:
    """A stand-in for the module ``name`` that imports it when first used."""
    return LazyModule(name)


def lazy_names(module: str, *names: str) -> tuple[Any, ...]:
    """Stand-ins for ``names`` of ``module``, in order, that import it when first used."""
    return tuple(LazyName(module, name) for name in names)
