"""Judging a successful run's output before it is recorded (reliability.md B4 steps 2-3).

:func:`check_output` says whether the code wrote the planned file and whether its
product's inspector reads it as the planned date, version and keywords;
:func:`durable_digest` makes the output durable (or takes the worker's fsynced digest)
and checksums it. Neither touches the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dbproc.build.planner import BuildAction
from dbproc.build.run_log_files import what_was_written
from dbproc.executors.base import JobResult
from dbproc.ingest.facts import FileFacts
from dbproc.ingest.inspection import InspectorSet
from dbproc.ingest.placement import Digest, fsync_file, hash_file


def check_output(
    inspectors: InspectorSet,
    output_products: Mapping[str, str | None],
    action: BuildAction,
    result: JobResult,
    output: Path,
) -> FileFacts | str:
    """The facts of ``output`` as its product's inspector reads them, or why the run
    failed (no such file, not recognised, not the planned date, version or keywords)."""
    assert result.run_dir is not None and action.output_filename is not None
    if output.is_symlink() or not output.is_file():
        return f"the code exited 0 but wrote no file {action.output_filename}" + what_was_written(
            Path(result.run_dir), action.output_filename
        )
    product = output_products[action.process]
    assert product is not None
    verdict = inspectors.identify(output, action.output_filename, only=product)
    facts = verdict.facts
    problem = _output_problem(action, facts, verdict.message)
    if problem is not None or facts is None:
        return problem or "unrecognised output"
    return facts


def durable_digest(result: JobResult, output: Path) -> Digest:
    """The digest of the fsynced output; OSError when it cannot be made durable."""
    if result.output_error is not None:  # never retry a failed fsync
        raise OSError(result.output_error)
    digest = _worker_digest(result, output)
    if digest is None:  # an executor that does not: make it durable here
        fsync_file(output)
        digest = hash_file(output)
    return digest


def _worker_digest(result: JobResult, output: Path) -> Digest | None:
    """The digest the worker took after fsyncing the output, if it still fits the file."""
    if result.output_sha256 is None or result.output_size is None:
        return None
    if output.stat().st_size != result.output_size:
        return None
    return Digest(result.output_sha256, result.output_size)


def _output_problem(
    action: BuildAction, facts: FileFacts | None, message: str | None
) -> str | None:
    if facts is None:
        return f"the output {action.output_filename} is not recognised: {message}"
    expected = (action.date, action.output_version, action.slot)
    found = (facts.date, facts.version, facts.slot)
    if found != expected:
        return (
            f"the output {action.output_filename} reads as date {facts.date}, version "
            f"{facts.version}, keywords {facts.slot or '-'}; expected {action.date}, "
            f"{action.output_version}, {action.slot or '-'}"
        )
    return None
