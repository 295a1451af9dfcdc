"""The Masker: every secret of a call, in the forms it travels in, becomes [REDACTED]."""

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from execution.run import MASK, Masker

SECRET = "sk_live_4eC39HqLyjWDarjtT1zdp7dc/+="


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        base64.b64encode(SECRET.encode()).decode(),
    ],
    ids=["plain", "percent", "form", "json", "base64"],
)
def test_each_encoding_of_a_secret_is_masked(form):
    masked = Masker([SECRET]).text(f"before {form} after")

    assert masked == f"before {MASK} after"


@pytest.mark.parametrize("user", ["a", "ab", "abc", "api"])
def test_a_secret_inside_basic_credentials_is_masked_at_any_alignment(user):
    credentials = base64.b64encode(f"{user}:{SECRET}".encode()).decode()

    masked = Masker([SECRET]).text(f"Authorization: Basic {credentials}")

    assert MASK in masked
    # What is left of the base64 text can no longer spell the secret.
    leftover = masked.split("Basic ", 1)[1].replace(MASK, "")
    assert len(leftover) < 8


def test_masking_json_text_keeps_it_json():
    body = json.dumps({"echo": {"authorization": f"Bearer {SECRET}"}, "n": 1})

    masked = json.loads(Masker([SECRET]).text(body))

    assert masked == {"echo": {"authorization": f"Bearer {MASK}"}, "n": 1}


def test_short_values_are_not_masked_so_ordinary_text_survives():
    assert Masker(["abc"]).text("abc abc") == "abc abc"
