"""Settings for OpenCX Actions, read from the environment.

Nothing needs to be set for a first run: with no DATABASE_URL the product uses an
embedded SQLite file, and with no CELERY_BROKER_URL tasks run in-process (eager).
Production sets DATABASE_URL (PostgreSQL), CELERY_BROKER_URL (Redis), SECRET_KEY and
ALLOWED_HOSTS; `.env.example` lists every variable. Bad values fail at start-up,
never later at request time.
"""

import base64
import hashlib
import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` is a convenience for development; real deployments use the
# process environment, which always wins.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """A boolean setting; a value that is neither clearly on nor off stops start-up."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no.")


def env_int(name: str, default: int) -> int:
    raw = env.str(name, default=str(default)).strip()
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None


def env_ports(name: str, default: list[int]) -> list[int]:
    """A comma-separated list of TCP ports."""
    ports = []
    for raw in env.list(name, default=[str(p) for p in default]):
        try:
            port = int(raw.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {raw!r} is not a port number.") from None
        if not 1 <= port <= 65535:
            raise ImproperlyConfigured(f"{name}: {port} is not a port number (1-65535).")
        ports.append(port)
    return ports


def env_networks(name: str) -> list[str]:
    """Strict CIDR networks: 127.0.0.1/8 (host bits set) is refused, so a typo cannot widen one."""
    networks = []
    for raw in env.list(name, default=[]):
        if not raw.strip():
            continue
        try:
            networks.append(str(ipaddress.ip_network(raw.strip())))
        except ValueError as error:
            raise ImproperlyConfigured(f"{name}: {raw!r} is not an IP network ({error}).") from None
    return networks


DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DEBUG=1 for a local development run."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - DEBUG only

# Keys that encrypt the organizations' secrets (global variables), newest first:
# Fernet keys, independent of SECRET_KEY. `manage.py rotate_secrets` re-encrypts
# every secret under the first; then an older key can be removed.
SECRET_ENCRYPTION_KEYS = env.list("SECRET_ENCRYPTION_KEYS", default=[])
if not SECRET_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_ENCRYPTION_KEYS is not set. Generate a key with: python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        )
    # Development only: a key derived from SECRET_KEY.
    SECRET_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "actions",
    "importer",
    "execution",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "opencx.urls"
WSGI_APPLICATION = "opencx.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: PostgreSQL in production (DATABASE_URL=postgres://...), an embedded
# SQLite file when unset so `make run` needs nothing running.
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's, without the health check's round trip right after a proven use.
    DATABASES["default"]["ENGINE"] = "opencx.db.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "actions.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Hashed, compressed files (after collectstatic) in production; plain files served
# from the apps' folders in development and tests, which need no collectstatic.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", default=not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# Security: safe defaults everywhere, HTTPS-only cookies once served over HTTPS.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", default=8 * 60 * 60)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=0)
# Only once every subdomain is served over HTTPS (and, for preload, submitted).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
if env_bool("BEHIND_TLS_PROXY", default=False):
    # Only behind a proxy that overwrites this header on every request.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery: Redis in production; in-process (eager) when no broker is configured.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged task after this; it must exceed the longest
# import (importer.jobs.IMPORT_HARD_TIME_LIMIT), or a slow import would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
# An import the queue lost (the broker was down when it was submitted, or its worker
# died and nothing redelivered it) is sent again once it has waited this long, by
# importer.jobs.sweep_imports: `celery beat` sends it every minute.
IMPORT_REQUEUE_AFTER_SECONDS = env_int("IMPORT_REQUEUE_AFTER_SECONDS", default=10 * 60)
if IMPORT_REQUEUE_AFTER_SECONDS < 1:
    raise ImproperlyConfigured("IMPORT_REQUEUE_AFTER_SECONDS must be at least 1.")
CELERY_BEAT_SCHEDULE = {
    "sweep-imports": {
        "task": "importer.tasks.sweep_imports_task",
        "schedule": 60.0,
        "options": {"expires": 60},  # a tick no worker took in time is not worth running
    },
}

# Caches: Redis in production (shared by every worker: tool lists, rate limits);
# in-process memory when unset.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://opencx")}

REST_FRAMEWORK = {
    # Machines only: an organization API key. Dashboard sessions never authenticate
    # an API call (and so need no CSRF exemption).
    "DEFAULT_AUTHENTICATION_CLASSES": ["actions.api.auth.APIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["actions.api.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["actions.api.auth.APIKeyRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "actions.api.parsers.JSONParser",  # DRF's, with a nesting limit
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # `?format=` belongs to the tool-list contract (openai, anthropic...), not to DRF.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "OpenCX Actions API",
    "DESCRIPTION": "The agent runtime's tool lists and contacts, staff management of "
    "actions, and OpenAPI import for CI. Authenticate with an organization API key.",
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "actions.api.schema.add_common_errors",
    ],
    # Swagger UI and Redoc ship with the product: the docs page needs no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Requests per minute per API key, by kind of endpoint.
API_RATE_LIMITS = {
    "default": env_int("API_RATE_LIMIT", default=600),
    "tools": env_int("API_RATE_LIMIT_TOOLS", default=6000),
    "staff": env_int("API_RATE_LIMIT_STAFF", default=600),
    "import": env_int("API_RATE_LIMIT_IMPORT", default=30),
}

# Tool lists: how long a rendering stays in the shared cache, and how many bytes of
# renderings each process keeps in memory.
TOOL_LIST_CACHE_SECONDS = env_int("TOOL_LIST_CACHE_SECONDS", default=24 * 60 * 60)
TOOL_LIST_LOCAL_CACHE_BYTES = env_int("TOOL_LIST_LOCAL_CACHE_BYTES", default=64 * 1024 * 1024)

# The largest OpenAPI document an import accepts, in bytes (dashboard, API and command).
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", default=50 * 1024 * 1024)

# Outbound calls to customers' APIs (execution/http.py, the only module that talks HTTP).
# A wall-clock deadline for the whole call (DNS, connect, TLS, headers and body), and
# the most response bytes read (after decompression); the rest is cut, `truncated`.
EXECUTION_TIMEOUT_SECONDS = env_int("EXECUTION_TIMEOUT_SECONDS", default=60)
EXECUTION_MAX_RESPONSE_BYTES = env_int("EXECUTION_MAX_RESPONSE_BYTES", default=1024 * 1024)
if EXECUTION_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("EXECUTION_TIMEOUT_SECONDS must be positive (seconds).")
if EXECUTION_MAX_RESPONSE_BYTES <= 0:
    raise ImproperlyConfigured("EXECUTION_MAX_RESPONSE_BYTES must be positive (bytes).")
# How much of an upstream body the AI is shown (characters; the rest is cut, with
# truncated: true).
EXECUTION_MAX_CHARS_FOR_AI = env_int("EXECUTION_MAX_CHARS_FOR_AI", default=100_000)
# How long a form the customer must submit ("Require form submission") stays open.
FORM_SUBMISSION_TTL_SECONDS = env_int("FORM_SUBMISSION_TTL_SECONDS", default=30 * 60)
if FORM_SUBMISSION_TTL_SECONDS <= 0:
    raise ImproperlyConfigured("FORM_SUBMISSION_TTL_SECONDS must be positive (seconds).")
# Ports a customer URL may name (443 is always allowed).
OUTBOUND_ALLOWED_PORTS = env_ports("OUTBOUND_ALLOWED_PORTS", default=[443, 8443])
# TEST ONLY. Networks that skip the public-address check (never the cloud metadata
# endpoints), so a test or benchmark can call its own HTTPS server on loopback; and the
# CA bundle that signed that server's certificate (verification is never turned off).
# Both are empty in production, and setting either with DEBUG off stops start-up
# unless OUTBOUND_TEST_OVERRIDES_UNSAFE=1 says it is deliberate (a benchmark host).
# The test suite sets them per test with the `settings` fixture instead.
OUTBOUND_TEST_ALLOWLIST = env_networks("OUTBOUND_TEST_ALLOWLIST")
OUTBOUND_TEST_CA_BUNDLE = env.str("OUTBOUND_TEST_CA_BUNDLE", default="") or None
if OUTBOUND_TEST_CA_BUNDLE and not Path(OUTBOUND_TEST_CA_BUNDLE).is_file():
    raise ImproperlyConfigured(f"OUTBOUND_TEST_CA_BUNDLE: {OUTBOUND_TEST_CA_BUNDLE!r} not found.")
if (
    (OUTBOUND_TEST_ALLOWLIST or OUTBOUND_TEST_CA_BUNDLE)
    and not DEBUG
    and not env_bool("OUTBOUND_TEST_OVERRIDES_UNSAFE", default=False)
):
    raise ImproperlyConfigured(
        "OUTBOUND_TEST_ALLOWLIST / OUTBOUND_TEST_CA_BUNDLE are for tests and benchmarks: they "
        "let outbound calls reach private addresses or trust another CA. Unset them, or set "
        "OUTBOUND_TEST_OVERRIDES_UNSAFE=1 if this machine is a test bench."
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # urllib3 logs every request line at DEBUG, query string included, and a query
    # can carry an organization's secret ({{global.NAME}}): never below INFO.
    "loggers": {"urllib3": {"level": "INFO"}},
}
