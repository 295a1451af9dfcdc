"""Settings come from the environment, with an embedded default that needs nothing running."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
    "'name': str(settings.DATABASES['default']['NAME']), "
    "'eager': settings.CELERY_TASK_ALWAYS_EAGER, 'broker': settings.CELERY_BROKER_URL, "
    "'debug': settings.DEBUG, 'secure_cookies': settings.SESSION_COOKIE_SECURE}))"
)
SERVICE_VARIABLES = {
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "DEBUG",
    "SECRET_KEY",
    "CI",
    "SECRET_ENCRYPTION_KEYS",
}


def load_settings(**variables: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with exactly these variables set."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env.update(DJANGO_SETTINGS_MODULE="opencx.settings", **variables)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_nothing_set_in_debug_gives_sqlite_and_in_process_tasks():
    result = load_settings(DEBUG="1")
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["name"].endswith("db.sqlite3")
    assert loaded["eager"] is True
    assert loaded["debug"] is True


def test_service_urls_switch_to_postgresql_and_redis():
    result = load_settings(
        SECRET_KEY="s" * 50,
        SECRET_ENCRYPTION_KEYS="G7Z692euxmDO3tFYdF_0ce5dCaLS2bt3A7dGl86sbsU=",
        DATABASE_URL="postgres://opencx:pw@db.internal:5432/opencx",
        CELERY_BROKER_URL="redis://redis.internal:6379/0",
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["engine"] == "opencx.db.postgresql"
    assert loaded["name"] == "opencx"
    assert loaded["eager"] is False
    assert loaded["broker"] == "redis://redis.internal:6379/0"
    assert loaded["debug"] is False
    assert loaded["secure_cookies"] is True


def test_production_without_a_secret_key_refuses_to_start_and_says_how_to_fix_it():
    result = load_settings()
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "DEBUG=1" in result.stderr


def test_a_boolean_that_is_neither_on_nor_off_refuses_to_start():
    result = load_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_production_without_secret_encryption_keys_refuses_to_start():
    result = load_settings(SECRET_KEY="s" * 50)
    assert result.returncode != 0
    assert "SECRET_ENCRYPTION_KEYS is not set" in result.stderr
