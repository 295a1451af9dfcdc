"""Production settings pass Django's deployment checklist; the dashboard resists CSRF."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.factories import make_organization, make_user

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION = {
    "SECRET_ENCRYPTION_KEYS": "G7Z692euxmDO3tFYdF_0ce5dCaLS2bt3A7dGl86sbsU=",
    "SECRET_KEY": "k" * 20 + "Zq8!x" * 10,
    "ALLOWED_HOSTS": "actions.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://actions.example.com",
    "DATABASE_URL": "sqlite:////tmp/opencx-deploy-check.sqlite3",
    "CACHE_URL": "redis://redis.internal:6379/1",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}


def deploy_check(**overrides: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DEBUG",
            "CI",
            "SECRET_KEY",
            "DATABASE_URL",
            "STATIC_MANIFEST",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env.update(PRODUCTION, DJANGO_SETTINGS_MODULE="opencx.settings")
    env.update(overrides)
    env = {name: value for name, value in env.items() if value}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_production_settings_pass_the_deployment_checklist():
    result = deploy_check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_cache_private_to_each_process_is_flagged_for_production():
    result = deploy_check(CACHE_URL="")  # unset: the in-memory default

    assert result.returncode == 1
    assert "opencx.W001" in result.stdout + result.stderr
    assert "CACHE_URL" in result.stdout + result.stderr


@pytest.mark.django_db
def test_a_dashboard_post_without_a_csrf_token_is_refused():
    user = make_user(make_organization(), password="correct-horse-battery")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/admin/actions/tag/add/", {"name": "billing"})
    assert response.status_code == 403


def test_a_request_for_an_unlisted_host_is_refused(client):
    response = client.get("/admin/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
