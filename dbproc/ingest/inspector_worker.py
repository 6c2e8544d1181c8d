"""The worker process that runs inspectors, outside the controller (contract section 10).

Run as a script (``python inspector_worker.py MAX_ANSWER_BYTES``); it imports nothing of
dbproc, so it starts fast and a crash in an inspector (``os._exit``, a segfault in a C
reader) ends only this process. Protocol, one JSON object per line:

- in (stdin): ``{"i": id, "m": module path, "f": function, "p": file path, "a": args}``
- out (the stdout it was started with): ``{"i": id, "r": answer}`` where the answer is
  null or the inspector's dict with dates tagged (``{"$d": iso}``, ``{"$dt": iso}``), or
  ``{"i": id, "e": message, "t": traceback}`` when the inspector could not answer.

What inspectors print goes to /dev/null: file descriptor 1 is not the protocol pipe. The
worker ends at the end of its input, or when its parent is gone.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import sys
import threading
import time
import traceback
from types import ModuleType
from typing import Any, TextIO


def _encode(value: object) -> object:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$d": value.isoformat()}
    if type(value).__name__ == "Version" and type(value).__module__.startswith("dbproc"):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


class Worker:
    def __init__(self, out: TextIO, max_answer: int) -> None:
        self.out = out
        self.max_answer = max_answer
        self.modules: dict[str, ModuleType | BaseException] = {}
        self.failed_tb: dict[str, str] = {}

    def module(self, path: str) -> ModuleType:
        found = self.modules.get(path)
        if found is None:
            found = self._load(path)
            self.modules[path] = found
        if isinstance(found, BaseException):
            raise LoadFailure(repr(found), self.failed_tb.get(path, ""))
        return found

    def _load(self, path: str) -> ModuleType | BaseException:
        name = f"dbproc_inspector_{abs(hash(path)):x}"
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                return ImportError(f"cannot load {path} as Python")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except BaseException as exc:  # noqa: BLE001 - user code
            sys.modules.pop(name, None)
            self.failed_tb[path] = traceback.format_exc(limit=-3)
            return exc
        return module

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        ident = request.get("i")
        try:
            module = self.module(request["m"])
        except LoadFailure as exc:
            return {"i": ident, "e": str(exc), "t": exc.detail, "k": "load"}
        fn = getattr(module, request["f"], None)
        if not callable(fn):
            return {
                "i": ident,
                "e": f"{request['m']} defines no function {request['f']!r}",
                "k": "load",
            }
        try:
            result = fn(request["p"], **request.get("a", {}))
        except BaseException as exc:  # noqa: BLE001 - user code, SystemExit included
            return {"i": ident, "e": f"raised {exc!r}", "t": traceback.format_exc(limit=-3)}
        if result is not None and not isinstance(result, dict):
            return {
                "i": ident,
                "e": "returned an invalid result: expected a dict or None, "
                f"got {type(result).__name__}",
                "k": "invalid",
            }
        return {"i": ident, "r": result}

    def reply(self, message: dict[str, Any]) -> None:
        try:
            line = json.dumps(message, default=_encode, allow_nan=False)
        except (TypeError, ValueError) as exc:
            line = json.dumps(
                {
                    "i": message.get("i"),
                    "e": "returned an invalid result: "
                    f"{_which_part(message.get('r'))} is not JSON-able: {exc}",
                    "k": "invalid",
                }
            )
        if len(line) > self.max_answer:
            line = json.dumps(
                {
                    "i": message.get("i"),
                    "e": "returned an invalid result: "
                    f"the answer is {len(line)} bytes as JSON, more than the "
                    f"limit of {self.max_answer} ([ingest] max_answer_bytes)",
                    "k": "invalid",
                }
            )
        self.out.write(line + "\n")
        self.out.flush()


def _which_part(answer: object) -> str:
    if isinstance(answer, dict) and "metadata" in answer:
        rest = {k: v for k, v in answer.items() if k != "metadata"}
        try:
            json.dumps(rest, default=_encode, allow_nan=False)
        except (TypeError, ValueError):
            return "the answer"
        return "'metadata'"
    return "the answer"


class LoadFailure(Exception):
    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def _watch_parent(parent: int) -> None:
    """End this process when the controller that started it is gone (even while an
    inspector hangs): a worker never outlives its pass."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(70)


def main() -> None:
    max_answer = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 20
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # what inspectors print, even from C, goes nowhere
    os.close(devnull)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    worker = Worker(protocol, max_answer)
    for raw in sys.stdin:
        if not raw.strip():
            continue
        request = json.loads(raw)
        worker.reply(worker.answer(request))


if __name__ == "__main__":
    main()
