"""The process half of a pass: plan, run, record, repeat until nothing is left.

The loop plans the pending (process, date) keys, submits the builds that nothing
upstream still changes (:mod:`dbproc.build.scheduling`), and records each result as it
arrives, together with the others already finished (one group: a transaction for all
of them each way, see :meth:`~dbproc.build.recording.Recorder.record_all`); what a
recorded output queues is planned at once, so an L2 starts as soon as its L1 is
recorded. The session is only ever in a transaction for one unit of work, and never
while a code runs.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dbproc.build.bounds import BEAT_SECONDS, bounded, stop_in_flight
from dbproc.build.catalogue import load_catalogue
from dbproc.build.pending_work import pending_work
from dbproc.build.planner import BuildAction, Decision, PlanKey, Status, plan
from dbproc.build.process_report import OK_STATUSES, ProcessReport
from dbproc.build.recording import Finished, Recorder
from dbproc.build.run_start import start_runs
from dbproc.build.scheduling import BuildQueue, ProcessGraph
from dbproc.build.snapshot import PLAN_CHUNK, SnapshotLoader
from dbproc.control import activity
from dbproc.control.signals import held
from dbproc.db.file_paths import MissionPaths
from dbproc.db.files import product_rules
from dbproc.db.models import ForcedRebuild, Pending
from dbproc.db.queries import chunked
from dbproc.db.unit import commit, discard, release
from dbproc.executors.base import Executor, JobResult

logger = logging.getLogger("dbproc.processing")

Progress = Callable[[int, int, int], None]  # (done, total known, failed)
#: decisions after which a forced rebuild of the key is dropped: nothing can be built
UNBUILDABLE = frozenset(
    {Status.NOT_EXPECTED, Status.MISSING_INPUT, Status.OUTSIDE_VALIDITY, Status.NO_CODE}
)
Fence = Callable[[], None]
#: the most results recorded as one group (one transaction each way)
GROUP_MAX = 64


class Processor:
    """Builds everything buildable (one pass's process half)."""

    def __init__(
        self,
        session: Session,
        paths: MissionPaths,
        executor: Executor,
        *,
        pass_id: int | None,
        kill_grace: float = 10.0,
        code_timeout: float | None = None,
        log_limit: int | None = None,
        retry_failed: bool = False,
        fence: Fence | None = None,
        progress: Progress | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.session = session
        self.paths = paths
        self.executor = executor
        self.pass_id = pass_id
        self.kill_grace = kill_grace
        self.code_timeout = code_timeout
        self.log_limit = log_limit
        self.retry_failed = retry_failed
        self.fence = fence or (lambda: None)
        self.progress = progress
        self.clock = clock or time.monotonic
        self.catalogue = load_catalogue(session)
        self.loader = SnapshotLoader(session, self.catalogue)
        self.graph = ProcessGraph(self.catalogue.processes)
        rules = {r.name: r for r in product_rules(session)}
        self.recorder = Recorder(
            session,
            paths,
            rules,
            self.catalogue.process_ids,
            {n: p.output for n, p in self.catalogue.processes.items()},
            clean_in_background=True,
        )
        release(session)
        self.report = ProcessReport()
        self._waiting = BuildQueue(self.graph)
        self._failures = 0  # failed runs so far, for progress without rescanning
        self._active: dict[int, BuildAction] = {}
        self._outstanding: Counter[tuple[str, dt.date]] = Counter()
        #: per (process, date), per slot: the highest pending id the latest plan of that
        #: slot saw; the date's rows are settled up to the lowest of them (every slot's
        #: latest plan saw those rows), by the plan or by recording the date's last build
        self._marks: dict[tuple[str, dt.date], dict[str, int]] = {}
        self._to_plan: set[PlanKey] = set()
        self._everything: set[str] = set()
        self.pending_max_id = 0

    def run(self) -> ProcessReport:
        """Plan, run and record until nothing is left; return the report."""
        started = self.clock()
        self.begin()
        try:
            while self.step():
                pass
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP (control/passes.py)
            discard(self.session)
            stop_in_flight(self)
            raise
        finally:
            discard(self.session)
            self.recorder.close()
        self.finish()
        self.report.seconds = self.clock() - started
        return self.report

    # The loop in three parts, so tests can step it with an in-memory executor
    # (dbproc.executors.memory): begin(), step() until it says False, finish().

    def begin(self) -> None:
        """Read what is pending: the keys the first plan covers."""
        work = pending_work(self.session, self.catalogue, retry_failed=self.retry_failed)
        self.pending_max_id = work.max_pending_id
        release(self.session)
        self._to_plan = set(work.keys)
        self._everything = {name for name, day in self._to_plan if day is None}

    def step(self) -> bool:
        """One turn: plan what is due, start what can start, then wait for one result and
        record it with the others finished by then. False when nothing is left to run or
        plan."""
        while True:
            if self._plan_now(self._to_plan):
                self._plan(self._to_plan)
                self._to_plan = set()
            self._submit()
            if self._active:
                break
            if not self._to_plan:
                return False
        running = len(self._active)
        activity.report(f"running {running} code{'s' if running != 1 else ''}")
        result = self.executor.next_result(timeout=activity.interval(BEAT_SECONDS))
        if result is not None:
            self._take(self._with_finished(result))
        return True

    def _with_finished(self, result: JobResult) -> list[JobResult]:
        """``result`` and the others finished already (the executor's poll): one group."""
        results = [result]
        while len(results) < GROUP_MAX and (more := self.executor.next_result(timeout=0)):
            results.append(more)
        return results

    @property
    def active(self) -> list[BuildAction]:
        """The builds submitted and not yet recorded."""
        return list(self._active.values())

    @property
    def waiting(self) -> int:
        """How many planned builds wait for a slot or for their inputs."""
        return len(self._waiting)

    def _take(self, results: list[JobResult]) -> None:
        """Record results that finished together: what they free (their slots, refilled
        first so codes run meanwhile), and what they make due (successors, replans). A
        finished build counts as active until recorded, so nothing that waits for its
        output (or shares its key) starts before that. A stop signal waits until the group
        is recorded (:func:`~dbproc.control.signals.held`)."""
        with held():
            self._submit(freed=len(results))
            finished: list[Finished] = []
            for result in results:
                action = self._active.pop(result.run_id)
                key = (action.process, action.date)
                self._outstanding[key] -= 1
                settle = self._outstanding[key] <= 0
                pending_max_id = min(self._marks.get(key, {}).values(), default=0)
                finished.append(Finished(action, result, settle, pending_max_id))
                if settle:
                    self._marks.pop(key, None)
                if self._waiting.pop(action.key) is not None:
                    # planned before this run was recorded: plan again
                    self._outstanding[key] -= 1
                    self._to_plan.add(key)
            self.fence()
            for outcome in self.recorder.record_all(finished):
                self.report.runs.append(outcome)
                self._failures += outcome.status not in OK_STATUSES
                for process_id, day in outcome.queued:
                    name = self.catalogue.process_names.get(process_id)
                    if name in self.catalogue.processes:
                        self._to_plan.add((name, day))
            self._report_progress()

    def finish(self) -> None:
        """After the loop: settle the dated rows of processes planned date-less."""
        if self._everything and not self._waiting:
            # every date of these processes was planned after their rows up to
            # pending_max_id were read: dated rows the planner found nothing to do for
            # (no output expected that day) are settled with the date-less ones
            ids = [self.catalogue.process_ids[n] for n in self._everything]
            self.session.execute(
                delete(Pending).where(
                    Pending.process_id.in_(ids),
                    Pending.id <= self.pending_max_id,
                )
            )
            commit(self.session)

    def _plan_now(self, to_plan: set[PlanKey]) -> bool:
        """Plan the keys results have queued now, or let more gather first?

        Planning costs a snapshot (a few queries) whatever its size, so while enough
        builds wait to keep every slot busy the keys gather, and are planned together
        when the queue runs low, a slot would stay idle, nothing runs, or a chunk's
        worth has gathered.
        """
        if not to_plan:
            return False
        if not self._active or len(to_plan) >= PLAN_CHUNK:
            return True
        if len(self._waiting) < 4 * self.executor.slots:
            return True
        free = self.executor.slots - len(self._active)
        return free > 0 and len(self._waiting.ready(self._active.values(), free)) < free

    def _pending_seen(self, keys: set[PlanKey]) -> dict[PlanKey, int]:
        """The highest pending id of each key (a date-less key: of each date of its
        process), read before the snapshot: the plan covers every row up to it.

        A key's rows are settled only up to its own mark, so rows queued after the
        plan (by this pass's outputs, or by ``config apply``) stay for the next plan.
        """
        everything = {name for name, day in keys if day is None}
        dated: dict[str, set[dt.date]] = {}
        for name, day in keys:
            if day is not None and name not in everything:
                dated.setdefault(name, set()).add(day)
        queries = [(name, None) for name in sorted(everything)] + [
            (name, batch) for name, days in sorted(dated.items()) for batch in chunked(sorted(days))
        ]
        seen: dict[PlanKey, int] = {}
        for name, batch in queries:
            stmt = select(Pending.date, func.max(Pending.id)).where(
                Pending.process_id == self.catalogue.process_ids[name]
            )
            if batch is not None:
                stmt = stmt.where(Pending.date.in_(batch))
            for day, top in self.session.execute(stmt.group_by(Pending.date)):
                seen[(name, day)] = int(top)
        return seen

    def _plan(self, keys: set[PlanKey]) -> None:
        seen = self._pending_seen(keys)
        settled: set[tuple[str, dt.date]] = set()
        planned: set[tuple[str, dt.date]] = set()
        unbuildable: set[tuple[str, dt.date, str]] = set()
        activity.report("planning")
        for chunk in chunked(self.loader.dated_keys(keys), PLAN_CHUNK):
            activity.beat()
            # one chunk's snapshot and decisions at a time: memory follows the chunk
            decisions = plan(self.loader.load(chunk, retry_failed=self.retry_failed), chunk)
            for decision in decisions:
                date_key = (decision.process, decision.date)
                if decision.action is not None or self._outstanding[date_key] <= 0:
                    # (a "nothing to do" decided while a build of the date is in flight
                    # keeps the mark of that build's plan)
                    self._marks.setdefault(date_key, {})[decision.slot] = seen.get(date_key, 0)
                if decision.action is not None:
                    self._wait(decision.action)
                    planned.add(date_key)
                else:
                    settled.add(date_key)
                    self._note_blocked(decision)
                    if decision.status in UNBUILDABLE:
                        unbuildable.add((decision.process, decision.date, decision.slot))
            decided = {(d.process, d.date) for d in decisions}
            settled.update(key for key in chunk if key not in decided)
        release(self.session)
        self._settle(settled - planned, seen, unbuildable)

    def _wait(self, action: BuildAction) -> None:
        if action.key not in self._waiting:
            self._outstanding[(action.process, action.date)] += 1
        self._waiting.put(action)

    def _note_blocked(self, decision: Decision) -> None:
        if decision.status is not None and decision.status.value in (
            "failed",
            "collision",
            "name_error",
        ):
            self.report.blocked.append(
                {
                    "process": decision.process,
                    "date": decision.date.isoformat(),
                    "status": decision.status.value,
                    "evidence": list(decision.evidence),
                }
            )

    def _settle(
        self,
        keys: set[tuple[str, dt.date]],
        seen: dict[PlanKey, int],
        unbuildable: set[tuple[str, dt.date, str]] | None = None,
    ) -> None:
        """Delete pending rows (up to what the plan saw) of keys with nothing left to do,
        and forced rebuilds that cannot happen (no input, outside validity), in one
        transaction."""
        keys = {k for k in keys if self._outstanding[k] <= 0}
        marks = {k: min(self._marks.pop(k, {}).values(), default=seen.get(k, 0)) for k in keys}
        keys = {k for k in keys if marks[k] > 0}
        if not keys and not unbuildable:
            return
        self.fence()
        for name, day in keys:
            self.session.execute(
                delete(Pending).where(
                    Pending.process_id == self.catalogue.process_ids[name],
                    Pending.date == day,
                    Pending.id <= marks[(name, day)],
                )
            )
        for name, day, slot in unbuildable or ():
            deleted = self.session.execute(
                delete(ForcedRebuild).where(
                    ForcedRebuild.process_id == self.catalogue.process_ids[name],
                    ForcedRebuild.date == day,
                    ForcedRebuild.slot == slot,
                )
            )
            if getattr(deleted, "rowcount", 0):
                logger.warning(
                    "dropped the forced rebuild of %s %s: nothing can be built for it now",
                    name,
                    day,
                )
        commit(self.session)

    def _submit(self, freed: int = 0) -> None:
        """Start what can start in the free slots: their runs' rows in one transaction.
        A stop signal waits until every run started is known to the executor and to the
        loop, so that :func:`~dbproc.build.bounds.stop_in_flight` stops and records it."""
        slots = self.executor.slots - len(self._active) + freed
        if slots <= 0 or not self._waiting:
            return
        actions = self._waiting.ready(self._active.values(), slots)
        if not actions:
            return
        with held():
            self.fence()
            for action in actions:
                self._waiting.pop(action.key)
            specs = start_runs(
                self.session,
                [(action, self.catalogue.process_ids[action.process]) for action in actions],
                pass_id=self.pass_id,
                paths=self.paths,
                kill_grace=self.kill_grace,
            )
            for action, spec in zip(actions, specs, strict=True):
                self.executor.submit(bounded(spec, self.code_timeout, self.log_limit))
                self._active[spec.run_id] = action
                logger.debug(
                    "run %s: started %s %s (%s)",
                    spec.run_id,
                    action.process,
                    action.date,
                    action.reason.value,
                )

    def _report_progress(self) -> None:
        if self.progress is not None:
            done = len(self.report.runs)
            total = done + len(self._active) + len(self._waiting)
            self.progress(done, total, self._failures)
