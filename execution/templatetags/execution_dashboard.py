"""Execution's pieces of other apps' dashboard pages.

    {% load execution_dashboard %}
    {% action_performance original %}   on an action's change page
    {% test_action_panel original %}    its Test panel (after the action's form)

Template tags, so the action page shows execution figures and the Test button while
`actions` imports nothing from `execution` (the dependency points one way).
"""

import re
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from execution.admin import test_panel_context
from execution.models import TestCall
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


@register.inclusion_tag("admin/execution/test_action.html", takes_context=True)
def test_action_panel(context, action) -> dict:
    """The Test panel, for whoever may change the action; with the result of the test
    call named by ``?test=`` (one of this action's, in the user's organization), where
    the panel's form redirects after sending."""
    if action is None or action.pk is None or not context.get("has_change_permission"):
        return {"action": None}
    request = context["request"]
    shown = request.GET.get("test", "")
    test_call = None
    if re.fullmatch(r"[0-9]{1,18}", shown):
        test_call = (
            TestCall.objects.for_user(request.user)
            .select_related("execution")
            .filter(pk=shown, action=action)
            .first()
        )
    return test_panel_context(action, test_call=test_call)
