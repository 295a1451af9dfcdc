"""The dashboard's pages as a test sees them: POST builders and readers of responses."""

import re
from html.parser import HTMLParser

from django.contrib.messages import get_messages
from django.urls import reverse

from actions.models import Action

ADD_URL = reverse("admin:actions_action_add")
LIST_URL = reverse("admin:actions_action_changelist")
DESCRIPTION = (
    "Looks up an order by its number and returns its status and delivery estimate. "
    "Use when the customer asks where their order is."
)


def change_url(action: Action) -> str:
    return reverse("admin:actions_action_change", args=[action.pk])


def rows(prefix: str, *forms: dict, initial: int = 0) -> dict:
    """POST fields for an inline formset: its management form and one dict per row."""
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(forms)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, form in enumerate(forms):
        data.update({f"{prefix}-{index}-{field}": value for field, value in form.items()})
    return data


def header(key: str, kind: str = "static", value: str = "", magic_field: str = "") -> dict:
    return {
        "key": key,
        "kind": kind,
        "value": value,
        "magic_field": magic_field,
        "description": "",
        "required": "on",
    }


def parameter(location: str, key: str, kind: str = "static", value: str = "", **extra) -> dict:
    return {
        "location": location,
        "key": key,
        "kind": kind,
        "value": value,
        "magic_field": "",
        "description": "",
        "required": "on",
        **extra,
    }


def action_form(*, headers=(), parameters=(), **fields) -> dict:
    """A POST of the add form as a browser sends it: every field, both inline formsets."""
    data = {
        "name": "Look up an order",
        "description": DESCRIPTION,
        "tool_name": "",
        "method": "GET",
        "endpoint": "https://api.shop.example/v1/orders/{order_id}",
        "body_format": "json",
        "body_schema": "",
        "body_sample": "",
        "channels": ["widget"],
        "_save": "Save",
        **rows("headers", *headers),
        **rows("parameters", *parameters),
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


class _FormFields(HTMLParser):
    """What a browser would submit for one <form>: its successful controls."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, list[str]] = {}
        self._select: tuple[str, bool] | None = None
        self._options: list[str] = []
        self._chosen: list[str] = []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
            return
        name = attrs.get("name")
        if not self.inside or "disabled" in attrs:
            return
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in {"submit", "button", "reset", "image", "file"}:
                return
            if kind in {"checkbox", "radio"} and "checked" not in attrs:
                return
            default = "on" if kind in {"checkbox", "radio"} else ""
            self.fields.setdefault(name, []).append(attrs.get("value") or default)
        elif tag == "select" and name:
            self._select = (name, "multiple" in attrs)
            self._options, self._chosen = [], []
        elif tag == "option" and self._select:
            self._options.append(attrs.get("value", ""))
            if "selected" in attrs:
                self._chosen.append(attrs.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select:
            name, multiple = self._select
            chosen = self._chosen or ([] if multiple or not self._options else self._options[:1])
            self.fields.setdefault(name, []).extend(chosen)
            self._select = None
        elif tag == "textarea" and self._textarea:
            # Browsers drop the newline that follows <textarea>.
            self.fields[self._textarea] = ["".join(self._text).removeprefix("\n")]
            self._textarea = None


def rendered_form(response, form_id: str = "action_form") -> dict:
    """The form on a rendered page as its browser would post it (template rows left out)."""
    parser = _FormFields(form_id)
    parser.feed(response.content.decode())
    return {
        name: values if len(values) > 1 or name in {"channels", "segments", "tags"} else values[0]
        for name, values in parser.fields.items()
        if "__prefix__" not in name
    }


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


def shown_names(response) -> list[str]:
    return [action.name for action in response.context["cl"].result_list]


def sent_messages(response) -> list[tuple[int, str]]:
    return [(message.level, message.message) for message in get_messages(response.wsgi_request)]


def result_rows(response) -> list[dict[str, str]]:
    """The changelist table as rendered: one {column: cell HTML} per row."""
    html = response.content.decode()
    start = html.index('<table id="result_list">')
    table = html[start : html.index("</table>", start)]
    return [
        dict(re.findall(r'<t[hd] class="field-(\w+)">(.*?)</t[hd]>', row))
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)[1:]
    ]
