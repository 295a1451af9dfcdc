"""Advice on how well the AI will understand an action: warnings, never errors.

The AI chooses an action from its name and description alone, so a generic name
("get_data") or a description without a verb and an object ("Orders endpoint")
leads it to pick the wrong action or none. These checks are heuristics; they warn
and let the admin decide.
"""

import re

GENERIC_NAMES = frozenset(
    {
        "action",
        "api",
        "api_call",
        "call",
        "call_api",
        "data",
        "do",
        "do_it",
        "endpoint",
        "execute",
        "fetch",
        "fetch_data",
        "function",
        "get",
        "get_data",
        "get_info",
        "handle",
        "handler",
        "info",
        "main",
        "my_action",
        "new_action",
        "post",
        "post_data",
        "process",
        "query",
        "request",
        "run",
        "send",
        "send_data",
        "submit",
        "test",
        "test_action",
        "tool",
        "update",
        "update_data",
        "webhook",
    }
)

# Verbs that start what a support action does; enough to recognise a task sentence.
VERBS = frozenset(
    [
        "add",
        "adds",
        "apply",
        "applies",
        "approve",
        "approves",
        "assign",
        "assigns",
        "book",
        "books",
        "calculate",
        "calculates",
        "cancel",
        "cancels",
        "change",
        "changes",
        "charge",
        "charges",
        "check",
        "checks",
        "close",
        "closes",
        "confirm",
        "confirms",
        "create",
        "creates",
        "deactivate",
        "deactivates",
        "delete",
        "deletes",
        "deliver",
        "disable",
        "disables",
        "download",
        "downloads",
        "edit",
        "edits",
        "enable",
        "enables",
        "escalate",
        "escalates",
        "estimate",
        "estimates",
        "extend",
        "extends",
        "fetch",
        "fetches",
        "find",
        "finds",
        "generate",
        "generates",
        "get",
        "gets",
        "issue",
        "issues",
        "list",
        "lists",
        "locate",
        "locates",
        "look",
        "looks",
        "lookup",
        "mark",
        "marks",
        "modify",
        "modifies",
        "move",
        "moves",
        "notify",
        "notifies",
        "open",
        "opens",
        "order",
        "orders",
        "pause",
        "pauses",
        "pay",
        "pays",
        "place",
        "places",
        "post",
        "posts",
        "provide",
        "provides",
        "read",
        "reads",
        "record",
        "records",
        "redeem",
        "redeems",
        "refund",
        "refunds",
        "register",
        "registers",
        "reject",
        "rejects",
        "remove",
        "removes",
        "renew",
        "renews",
        "reopen",
        "reopens",
        "replace",
        "replaces",
        "report",
        "reports",
        "request",
        "requests",
        "reschedule",
        "reschedules",
        "reserve",
        "reserves",
        "reset",
        "resets",
        "resend",
        "resends",
        "resume",
        "resumes",
        "retrieve",
        "retrieves",
        "return",
        "returns",
        "schedule",
        "schedules",
        "search",
        "searches",
        "send",
        "sends",
        "set",
        "sets",
        "ship",
        "ships",
        "show",
        "shows",
        "start",
        "starts",
        "stop",
        "stops",
        "submit",
        "submits",
        "subscribe",
        "subscribes",
        "suspend",
        "suspends",
        "track",
        "tracks",
        "transfer",
        "transfers",
        "unsubscribe",
        "unsubscribes",
        "update",
        "updates",
        "upgrade",
        "upgrades",
        "upload",
        "uploads",
        "validate",
        "validates",
        "verify",
        "verifies",
        "view",
        "views",
    ]
)

STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "that",
        "the",
        "their",
        "them",
        "then",
        "this",
        "to",
        "use",
        "used",
        "uses",
        "using",
        "was",
        "when",
        "which",
        "who",
        "will",
        "with",
        "you",
        "your",
    ]
)

# After one of these, a word from VERBS is a noun: "issue a refund", "the customer's
# order" ("customer's" reads as "customer", "s").
DETERMINERS = frozenset(
    [
        "a",
        "an",
        "any",
        "each",
        "every",
        "her",
        "his",
        "its",
        "my",
        "our",
        "s",
        "some",
        "that",
        "the",
        "their",
        "these",
        "this",
        "those",
        "your",
    ]
)

_WORD_RE = re.compile(r"[A-Za-z]+")
_NUMBERED_RE = re.compile(r"(action|api|call|endpoint|function|request|test|tool)_?\d+")


def name_warnings(name: str, tool_name: str) -> list[str]:
    candidates = {name.strip().lower().replace(" ", "_"), tool_name.lower()}
    if candidates & GENERIC_NAMES or any(_NUMBERED_RE.fullmatch(c) for c in candidates):
        return [
            f"“{name}” is a generic name: the AI tells actions apart by name, so say what "
            "this one does (for example “Cancel subscription” rather than “get_data”)."
        ]
    return []


# The shortest limit a model provider puts on a tool description (OpenAI's).
DESCRIPTION_SOFT_MAX = 1024


def description_warnings(description: str) -> list[str]:
    warnings = []
    if len(description) > DESCRIPTION_SOFT_MAX:
        warnings.append(
            f"The description is {len(description)} characters; OpenAI models see only "
            f"the first {DESCRIPTION_SOFT_MAX}, so put what matters most first."
        )
    words = [w.lower() for w in _WORD_RE.findall(description)]
    # Many support words are both ("order", "refund", "return"): a determiner decides.
    after_determiner = [i > 0 and words[i - 1] in DETERMINERS for i in range(len(words))]
    has_verb = any(w in VERBS and not det for w, det in zip(words, after_determiner, strict=True))
    has_noun = any(
        w not in STOP_WORDS and len(w) > 2 and (w not in VERBS or det)
        for w, det in zip(words, after_determiner, strict=True)
    )
    if not (has_verb and has_noun):
        warnings.append(
            "The description should say what the action does with what, with a verb and an "
            "object, for example “Cancels the customer's subscription at the end of the "
            "billing period. Use when the customer asks to cancel.”"
        )
    return warnings


def action_warnings(name: str, tool_name: str, description: str) -> list[str]:
    return name_warnings(name, tool_name) + description_warnings(description)
