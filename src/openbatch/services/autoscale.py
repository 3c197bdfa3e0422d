"""Autoscale use cases: enable, disable and evaluate a pool's formula, the evaluations the clock
starts, and the samples of pool metrics formulas read.

An evaluation runs in one transaction with the pool locked: the formula sees the pool's recorded
samples and its nodes now; its ``autoScaleRun`` is stored whatever the outcome; when it succeeded
its targets resize the pool (by ``$NodeDeallocationOption``) and the next evaluation is due one
interval later. Enable and Pool Add with enableAutoScale evaluate at once; EvaluateAutoScale
answers at once and changes nothing. Samples are recorded for every active pool every sample
period (``ServiceContext.intervals``), so a formula enabled later has history to read.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from .. import metrics
from ..domain import clock, pool_autoscale as rules, usage_metrics
from ..domain.autoscale import Evaluation
from ..domain.errors import BatchError
from ..domain.models import PoolEnableAutoScaleParameter
from ..domain.states import AllocationState
from ..store import autoscale_queries as queries
from ..store.engine import Connection, after_commit
from ..store.records import POOLS, Record
from .context import ServiceContext, require_pool
from .pools import PoolService

Json = dict[str, Any]
log = logging.getLogger("openbatch.pools")

#: How many sample periods of history a formula can read (30 s: a little over a day).
HISTORY_SAMPLES = 3000
#: An agent's reported usage counts while it has called within this time (a lost agent's last report does not).
USAGE_FRESH_FOR = timedelta(seconds=30)


class AutoscaleService:
    def __init__(self, ctx: ServiceContext, pools: PoolService) -> None:
        self.ctx = ctx
        self.pools = pools
        pools.autoscale_in = self.evaluate_in
        self._last_sampled: datetime | None = None
        #: The last sample this server recorded of each pool (by pk) and when: the next one's totals count from it.
        self._previous: dict[int, dict] = {}
        self._previous_at: datetime | None = None

    # -- the operations --------------------------------------------------------------------

    def enable(self, account: str, pool_id: str, param: PoolEnableAutoScaleParameter) -> Record:
        """Set (or change) the formula and interval and evaluate at once; the interval counts from now."""
        rules.check_interval(param.autoScaleEvaluationInterval, self.ctx.intervals.autoscale_minimum)
        with self.ctx.store.write() as conn:
            record = require_pool(conn, account, pool_id, for_update=True)
            body = record.body
            if body["state"] == "deleting":
                raise BatchError("PoolBeingDeleted", "The specified pool has been marked for deletion.")
            if not body.get("enableAutoScale") and body["allocationState"] != AllocationState.STEADY.value:
                raise BatchError("PoolBeingResized", "Autoscale cannot be enabled while the pool is resizing.",
                                 [("AllocationState", body["allocationState"])])
            text = param.autoScaleFormula or (body.get("autoScaleFormula") if body.get("enableAutoScale") else None)
            rules.parsed(text)
            now = self.ctx.now()
            enabled = rules.enabled_body(body, text or "", param.autoScaleEvaluationInterval)
            record = POOLS.update(conn, record, enabled, now)
            return self.evaluate_in(conn, account, record)

    def disable(self, account: str, pool_id: str) -> Record:
        with self.ctx.store.write() as conn:
            record = require_pool(conn, account, pool_id, for_update=True)
            if record.body["state"] == "deleting":
                raise BatchError("PoolBeingDeleted", "The specified pool has been marked for deletion.")
            return POOLS.update(conn, record, rules.disabled_body(record.body), self.ctx.now(),
                                {"autoscale_due_at": None})

    def evaluate(self, account: str, pool_id: str, text: str | None) -> Json:
        """The autoScaleRun ``text`` gives on the pool now; nothing is applied."""
        formula = rules.parsed(text)
        with self.ctx.store.read() as conn:
            record = require_pool(conn, account, pool_id)
            if not record.body.get("enableAutoScale"):
                raise BatchError("OperationInvalidForCurrentState",
                                 "Autoscale must be enabled on the pool to evaluate a formula on it.",
                                 [("PoolId", record.body["id"])])
            autoscale_run, _ = rules.run(formula, self._inputs(conn, account, record, self.ctx.now()))
        return autoscale_run

    # -- evaluations -----------------------------------------------------------------------

    def evaluate_in(self, conn: Connection, account: str, record: Record) -> Record:
        """Evaluate the pool's formula now and apply it (in the caller's transaction, pool locked)."""
        now = self.ctx.now()
        formula = rules.parsed(record.body["autoScaleFormula"])
        autoscale_run, evaluation = rules.run(formula, self._inputs(conn, account, record, now))
        due = now + rules.interval_of(record.body)
        record = POOLS.update(conn, record, {**record.body, "autoScaleRun": autoscale_run}, now,
                              {"autoscale_due_at": clock.naive(due)})
        outcome = "error" if evaluation.error is not None else "ok"
        after_commit(conn, metrics.AUTOSCALE_EVALUATIONS.labels(outcome).inc)
        if evaluation.error is not None:
            log.info("pool %s: its autoscale formula failed: %s: %s", record.body["id"], evaluation.error.code,
                     evaluation.error.message)
        return self._apply(conn, account, record, evaluation)

    def _apply(self, conn: Connection, account: str, record: Record, evaluation: Evaluation) -> Record:
        if evaluation.error is not None or record.body["state"] == "deleting":
            return record
        dedicated = evaluation.target_dedicated if evaluation.target_dedicated is not None else \
            record.body["targetDedicatedNodes"]
        low = evaluation.target_low_priority if evaluation.target_low_priority is not None else \
            record.body["targetLowPriorityNodes"]
        return self.pools.retarget_in(conn, account, record, dedicated, low,
                                      evaluation.deallocation_option or "requeue")

    def _inputs(self, conn: Connection, account: str, record: Record, now: datetime) -> Any:
        period = self.ctx.intervals.sample_period
        samples = queries.recent_samples(conn, record.pk, now - period * HISTORY_SAMPLES)
        scalars = rules.node_scalars(record.body, queries.node_kinds(conn, account, record.row["id_key"]))
        return rules.inputs(record.body, now, period, samples, scalars)

    def run_due(self) -> datetime | None:
        """Evaluate every pool whose interval has passed, record samples when their period has;
        when the next evaluation is due."""
        now = self.ctx.now()
        with self.ctx.store.read() as conn:
            due = queries.due(conn, now)
        for account, pool_id in due:
            with self.ctx.store.write() as conn:
                record = POOLS.get(conn, (account,), (pool_id,), for_update=True)
                due_at = record.row["autoscale_due_at"] if record is not None else None
                if due_at is not None and clock.aware(due_at) <= now and record.body.get("enableAutoScale"):
                    self.evaluate_in(conn, account, record)
        period = self.ctx.intervals.sample_period
        if self._last_sampled is None or now - self._last_sampled >= period:
            self._last_sampled = now
            self.record_samples(now)
        with self.ctx.store.read() as conn:
            return queries.next_due(conn)

    def record_samples(self, now: datetime) -> None:
        """One sample of every active pool: its jobs' tasks, its nodes and what its agents' hosts use (a
        few grouped reads and one insert, however many pools there are); and its core seconds in the
        current usage interval (Pool_ListUsageMetrics), for the time since the sample before (at most
        two periods: after a gap, such as another server leading, nothing is counted twice)."""
        period = self.ctx.intervals.sample_period
        fresh = self._previous_at is not None and now - self._previous_at <= 2 * period
        previous_samples = self._previous if fresh else {}
        elapsed = (now - self._previous_at) if fresh and self._previous_at is not None else period
        with self.ctx.store.write(lock="none") as conn:
            tasks = queries.task_totals_by_pool(conn)
            nodes = queries.node_kinds_by_pool(conn)
            usage = queries.agent_usage_by_pool(conn, now - USAGE_FRESH_FOR)
            samples = {}
            for pk, account, pool_key, body in queries.sampled_pools(conn):
                key = (account, pool_key)
                previous = previous_samples.get(pk)
                if previous is None:    # the first sample this server records of the pool (lately)
                    previous = queries.last_sample(conn, pk)
                samples[pk] = rules.sample_values(
                    tasks.get(key, {"active": 0, "running": 0, "succeeded": 0, "failed": 0}),
                    rules.node_scalars(body, nodes.get(key, [])), previous, usage.get(key, {}), period)
                queries.add_usage(conn, account, usage_metrics.entry_body(body["id"], body["vmSize"],
                                                                          usage_metrics.interval_start(now)),
                                  usage_metrics.core_seconds(body["vmSize"], nodes.get(key, []),
                                                             elapsed.total_seconds()))
            if samples:   # the agents' running totals stay here (the next sample's increases), not in the history
                queries.record_samples(conn, now, {pk: {k: v for k, v in values.items() if k != "agents"}
                                                   for pk, values in samples.items()})
            self._previous, self._previous_at = samples, now
            queries.prune_samples(conn, now - period * HISTORY_SAMPLES)
