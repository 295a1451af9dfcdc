"""The outbound settings fail loudly, and the test-only overrides cannot reach production
by accident."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({k: getattr(settings, k) for k in ("
    "'EXECUTION_TIMEOUT_SECONDS', 'EXECUTION_MAX_RESPONSE_BYTES', 'OUTBOUND_ALLOWED_PORTS', "
    "'OUTBOUND_TEST_ALLOWLIST', 'OUTBOUND_TEST_CA_BUNDLE')}))"
)


def load(**variables: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OUTBOUND_", "EXECUTION_")) and k not in {"DEBUG", "CI"}
    }
    env.update(DJANGO_SETTINGS_MODULE="opencx.settings", SECRET_KEY="s" * 50, **variables)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_production_defaults_have_no_allowlist_and_a_60_second_deadline():
    result = load()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "EXECUTION_TIMEOUT_SECONDS": 60,
        "EXECUTION_MAX_RESPONSE_BYTES": 1048576,
        "OUTBOUND_ALLOWED_PORTS": [443, 8443],
        "OUTBOUND_TEST_ALLOWLIST": [],
        "OUTBOUND_TEST_CA_BUNDLE": None,
    }


def test_the_test_allowlist_without_debug_refuses_to_start():
    result = load(OUTBOUND_TEST_ALLOWLIST="127.0.0.1/32")
    assert result.returncode != 0
    assert "OUTBOUND_TEST_OVERRIDES_UNSAFE=1" in result.stderr


def test_the_test_overrides_start_with_debug_or_an_explicit_opt_in(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    for opt_in in ({"DEBUG": "1"}, {"OUTBOUND_TEST_OVERRIDES_UNSAFE": "1"}):
        result = load(
            OUTBOUND_TEST_ALLOWLIST="127.0.0.1/32, ::1/128",
            OUTBOUND_TEST_CA_BUNDLE=str(bundle),
            OUTBOUND_ALLOWED_PORTS="443,9443",
            **opt_in,
        )
        assert result.returncode == 0, result.stderr
        loaded = json.loads(result.stdout)
        assert loaded["OUTBOUND_TEST_ALLOWLIST"] == ["127.0.0.1/32", "::1/128"]
        assert loaded["OUTBOUND_ALLOWED_PORTS"] == [443, 9443]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OUTBOUND_TEST_ALLOWLIST": "127.0.0.1/8", "DEBUG": "1"}, "is not an IP network"),
        ({"OUTBOUND_TEST_ALLOWLIST": "localhost", "DEBUG": "1"}, "is not an IP network"),
        ({"OUTBOUND_ALLOWED_PORTS": "443,http"}, "is not a port number"),
        ({"OUTBOUND_ALLOWED_PORTS": "70000"}, "is not a port number"),
        ({"EXECUTION_TIMEOUT_SECONDS": "0"}, "EXECUTION_TIMEOUT_SECONDS must be positive"),
        ({"EXECUTION_TIMEOUT_SECONDS": "1m"}, "is not a whole number"),
        ({"EXECUTION_MAX_RESPONSE_BYTES": "-1"}, "EXECUTION_MAX_RESPONSE_BYTES must be positive"),
        ({"OUTBOUND_TEST_CA_BUNDLE": "/nonexistent.pem", "DEBUG": "1"}, "not found"),
    ],
)
def test_bad_values_stop_start_up_with_a_message(variables, message):
    result = load(**variables)
    assert result.returncode != 0
    assert message in result.stderr
