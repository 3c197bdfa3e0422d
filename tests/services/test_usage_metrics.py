"""Pool usage metrics from the recorded samples: core-hours per pool per 30-minute interval, listed once the
interval has ended, within starttime/endtime, by $filter on the pool id, and after the pool is gone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from openbatch.domain.intervals import Intervals
from openbatch.odata.fields import FILTERS
from openbatch.odata.fields import parse_filter
from openbatch.services.context import ListQuery
from tests.services.conftest import ACCOUNT, World

T0 = datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc)


def entries(world: World, start: datetime | None = None, end: datetime | None = None,
            query: ListQuery | None = None) -> list[tuple[str, str, float]]:
    page = world.services.pools.usage_metrics(ACCOUNT, start, end, query or ListQuery())
    return [(r.body["poolId"], r.body["startTime"], round(float(r.row["core_seconds"]) / 3600, 3))
            for r in page.records]


def test_core_hours_per_pool_and_interval(world: World) -> None:
    now = [T0]
    world.services.ctx.now = lambda: now[0]
    world.services.ctx.intervals = Intervals(sample_period=timedelta(minutes=1))
    world.pool("big", nodes=1, vmSize="standard_d4s_v3")     # 1 node x 4 cores
    world.pool("small", nodes=1, vmSize="standard_d2s_v3")   # 1 node x 2 cores
    for minute in range(60):                                 # a sample a minute, 10:00 to 11:00
        now[0] = T0 + timedelta(minutes=minute)
        world.services.autoscale.record_samples(now[0])
    world.services.pools.delete(ACCOUNT, "small")
    now[0] = T0 + timedelta(minutes=70)
    assert entries(world) == [("big", "2026-07-01T10:30:00.000000Z", 2.0),      # the last ended interval:
                              ("small", "2026-07-01T10:30:00.000000Z", 1.0)]    # 30 min x 4 cores, x 2 cores
    both = entries(world, T0, T0 + timedelta(hours=1))
    assert [e[:2] for e in both] == [("big", "2026-07-01T10:00:00.000000Z"), ("small", "2026-07-01T10:00:00.000000Z"),
                                     ("big", "2026-07-01T10:30:00.000000Z"), ("small", "2026-07-01T10:30:00.000000Z")]
    big = ListQuery(filter=parse_filter("poolId eq 'BIG'", FILTERS["Pool_ListUsageMetrics"]), limit=1)
    page = world.services.pools.usage_metrics(ACCOUNT, T0, None, big)
    assert [r.body["poolId"] for r in page.records] == ["big"] and page.next_after is not None
    after = ListQuery(filter=big.filter, after=page.next_after, limit=1)
    assert [r.body["startTime"] for r in world.services.pools.usage_metrics(ACCOUNT, T0, None, after).records] == [
        "2026-07-01T10:30:00.000000Z"]
    assert entries(world, T0 + timedelta(minutes=40), T0 + timedelta(minutes=50)) == []   # no whole interval
