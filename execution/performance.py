"""How an action has been doing: its success rate and latency over recent calls.

    performance = action_performance(action.pk, days=30)
    performance.success_rate, performance.p50_ms, performance.p95_ms

Counted are the calls that were sent (2xx, an upstream error status, not completed,
outcome unknown); the Test button's calls are left out, and the calls refused before
sending are counted apart. The percentiles are PostgreSQL's percentile_cont over the
whole window; on other databases (SQLite, the embedded default) the same
interpolation runs in Python over the most recent LATENCY_SAMPLE calls.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections
from django.db.models import Aggregate, Count, FloatField, Q
from django.utils import timezone

from execution.models import Execution

LATENCY_SAMPLE = 10_000
SENT = [
    Execution.Outcome.SUCCEEDED,
    Execution.Outcome.FAILED,
    Execution.Outcome.ERROR,
    Execution.Outcome.UNKNOWN,
]


@dataclass(frozen=True)
class Performance:
    days: int
    calls: int  # sent
    succeeded: int
    refused: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def success_rate(self) -> float | None:
        """Percent of the calls sent that got a 2xx."""
        return 100 * self.succeeded / self.calls if self.calls else None


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate: the value at `fraction`, interpolated."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra) -> None:
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def action_performance(
    action_id: int, *, days: int = 30, now: datetime | None = None
) -> Performance:
    since = (now or timezone.now()) - timedelta(days=days)
    recent = Execution.objects.filter(action_id=action_id, is_test=False, created_at__gte=since)
    sent = Q(outcome__in=SENT)
    timed = sent & Q(duration_ms__isnull=False)
    aggregates = {
        "calls": Count("pk", filter=sent),
        "succeeded": Count("pk", filter=Q(outcome=Execution.Outcome.SUCCEEDED)),
        "refused": Count("pk", filter=Q(outcome=Execution.Outcome.REFUSED)),
    }
    in_database = connections[recent.db].vendor == "postgresql"
    if in_database:
        aggregates["p50"] = PercentileCont("duration_ms", 0.5, filter=timed)
        aggregates["p95"] = PercentileCont("duration_ms", 0.95, filter=timed)
    totals = recent.aggregate(**aggregates)
    if not in_database:
        durations = sorted(
            recent.filter(timed)
            .order_by("-created_at")
            .values_list("duration_ms", flat=True)[:LATENCY_SAMPLE]
        )
        totals["p50"] = percentile(durations, 0.5)
        totals["p95"] = percentile(durations, 0.95)
    return Performance(
        days=days,
        calls=totals["calls"],
        succeeded=totals["succeeded"],
        refused=totals["refused"],
        p50_ms=totals["p50"],
        p95_ms=totals["p95"],
    )


def percentile(ordered: list[float], fraction: float) -> float | None:
    """The value at `fraction` of sorted values, interpolated between the closest ranks
    exactly as PostgreSQL's percentile_cont does.

    >>> percentile([10, 20, 30, 40], 0.5), round(percentile([10, 20, 30, 40], 0.95), 6)
    (25.0, 38.5)
    >>> percentile([7.0], 0.95), percentile([], 0.5)
    (7.0, None)
    """
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return float(ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower))
