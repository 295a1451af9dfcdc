"""Execution's pieces of other apps' dashboard pages.

    {% load execution_dashboard %}
    {% action_performance original %}   on an action's change page

A template tag, so the action page shows execution figures while `actions` imports
nothing from `execution` (the dependency points one way).
"""

from urllib.parse import urlencode

from django import template
from django.urls import reverse

from execution.performance import action_performance as summarize

register = template.Library()


@register.inclusion_tag("admin/execution/action_performance.html")
def action_performance(action) -> dict:
    """Success rate and p50/p95 latency of the action's recent calls, and a link to its
    execution log. Nothing for an action not saved yet."""
    if action is None or action.pk is None:
        return {"performance": None}
    return {
        "performance": summarize(action.pk),
        "log_url": reverse("admin:execution_execution_changelist")
        + "?"
        + urlencode({"action": action.pk}),
    }
