"""Settings for the Jules team portal, all read from the environment.

Every variable is listed in `.env.example` and in the README's configuration table. With
nothing set, the portal runs on the embedded defaults: SQLite under `var/`, Celery on
an embedded file broker (julesweb/broker.py), and DEBUG off.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from julesweb.env import env, envbool, envfloat, envgroups, envint, envlist, secret
from julesweb.priority import parse_nice

BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the portal writes at run time (the SQLite file, the embedded broker's
# folders, generated dev secrets) lives under one folder that git ignores.
DATA_DIR = Path(env("DATA_DIR", str(BASE_DIR / "var")))

if not DATA_DIR.exists():
    DATA_DIR.mkdir(parents=True, exist_ok=True)

TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")

DEBUG = envbool("DEBUG", False)

SECRET_KEY = secret("SECRET_KEY")
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = "insecure-dev-only-key-set-SECRET_KEY-in-production-0123456789abcdef"  # noqa: S105
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE); `make run` creates one."
        )

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
# The container's HEALTHCHECK asks /healthz on loopback, whatever the public host names are.
for _loopback in ("127.0.0.1", "localhost"):
    if _loopback not in ALLOWED_HOSTS:
        ALLOWED_HOSTS.append(_loopback)
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
# A form with a stale token gets a page in the portal's look, not Django's bare one.
CSRF_FAILURE_VIEW = "sessions_app.web.views.csrf_failure"
SITE_URL = env("SITE_URL", "http://localhost:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    # Listed so that the API docs page uses the packaged Swagger UI files, not a CDN.
    "ninja",
    "sessions_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "sessions_app.web.headers.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "sessions_app.web.headers.NoStoreWhenSignedInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "sessions_app.web.middleware.HtmxMessagesMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Axes goes last so that it sees the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "julesweb.urls"
WSGI_APPLICATION = "julesweb.wsgi.application"
ASGI_APPLICATION = "julesweb.asgi.application"

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
                "sessions_app.web.context_processors.portal",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if "postgresql" in DATABASES["default"]["ENGINE"]:
    # Server-side binding sends parameters apart from the SQL; client-side quoting of the
    # arrays that bulk inserts use costs more than the sync's downloads themselves.
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server and the embedded worker share one file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing with PBKDF2 at full strength would dominate the test suite's time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "sessions_app:session-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(exist_ok=True)
# After `collectstatic` (the Docker image runs it at build) static files get hashed names
# and compressed copies; before it (tests, a first `make run`) WhiteNoise serves them
# straight from the finders under their plain names.
_COLLECTED = (STATIC_ROOT / "staticfiles.json").exists()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if _COLLECTED
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not _COLLECTED

# Security. Production sets SECURE_SSL_REDIRECT and the cookie flags through the environment;
# `python manage.py check --deploy` passes with the values in the README.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", False)
if envbool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
# This origin only, and no inline script or style (sessions_app/web/headers.py).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Media in agent output are shown as data: URLs (sessions/rendering.py).
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 60 * 60 * 12)
# The silenced check is the health endpoint's own: /healthz must answer over plain HTTP
# to a container runtime, so it is exempt from the SSL redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Field encryption: comma-separated Fernet keys. The first encrypts; all of them decrypt,
# so a key is rotated by putting the new one first and running `rotate_field_key`.
FIELD_ENCRYPTION_KEYS = envlist("FIELD_ENCRYPTION_KEY", secret("FIELD_ENCRYPTION_KEY"))

# Redis and Celery. Without REDIS_URL the portal runs on an embedded broker: files in
# folders under DATA_DIR, so `make run` needs no server.
REDIS_URL = env("REDIS_URL")
BROKER_DIR = DATA_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Socket timeouts, so that a broker that hangs fails a publish within seconds instead
    # of holding a web request (kombu waits forever by default); the request then leaves
    # its action pending for the outbox sweep (docs/reliability.md). The read timeout must
    # stay above kombu's one-second BRPOP wait.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": 3600,
        "socket_timeout": 2,
        "socket_connect_timeout": 3,
    }
    # Everything cached can be recomputed, so a Redis outage answers as misses rather than
    # failing pages (julesweb/cache.py); short socket timeouts keep a hung Redis from
    # holding requests.
    CACHES = {
        "default": {
            "BACKEND": "julesweb.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "TIMEOUT": 300,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    # julesweb/broker.py: kombu's filesystem transport with messages written and claimed by
    # atomic renames (docs/operations.md, "The embedded broker").
    _folders = {
        name: BROKER_DIR / name for name in ("queue", "control", "incoming", "claimed", "rejected")
    }
    for _folder in _folders.values():
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "julesweb.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_folders["queue"]),
        "data_folder_out": str(_folders["queue"]),
        "control_folder": str(_folders["control"]),
        "incoming_folder": str(_folders["incoming"]),
        "claimed_folder": str(_folders["claimed"]),
        "rejected_folder": str(_folders["rejected"]),
        "store_processed": False,
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Per-process memory for what the sessions list keys by its own content (counts, menus,
# fragments; docs/architecture.md): a hit costs no round trip to Redis.
CACHES["local"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "portal-local",
    "TIMEOUT": 300,
    "OPTIONS": {"MAX_ENTRIES": 1000},
}
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# Jules.
JULES_API_BASE_URL = env("JULES_API_BASE_URL", "https://jules.googleapis.com/v1alpha")
JULES_API_KEY = secret("JULES_API_KEY")
JULES_CONNECT_TIMEOUT = envfloat("JULES_CONNECT_TIMEOUT", 5.0)
JULES_READ_TIMEOUT = envfloat("JULES_READ_TIMEOUT", 30.0)
JULES_RETRY_BUDGET = envfloat("JULES_RETRY_BUDGET", 60.0)
# The most one call to Jules may take, retries included, however slowly the answer comes,
# and the largest answer read: docs/reliability.md#remote-deadline
JULES_TOTAL_TIMEOUT = envfloat("JULES_TOTAL_TIMEOUT", 60.0)
JULES_MAX_RESPONSE_BYTES = envint("JULES_MAX_RESPONSE_BYTES", 64 * 1024 * 1024)
# Where connections may point besides JULES_API_BASE_URL (simulators, proxies); the
# operator's choice, never a team's: docs/reliability.md#jules-address
JULES_ALLOWED_BASE_URLS = envlist("JULES_ALLOWED_BASE_URLS")
# The outbox's first wait after a failed delivery, doubled after each further failure.
OUTBOX_BACKOFF_SECONDS = envint("OUTBOX_BACKOFF_SECONDS", 5)
# Requests a minute each API token may make; 0 turns the limit off (docs/api.md).
API_RATE_LIMIT = envint("API_RATE_LIMIT", 600)
# Sync cadences in seconds: active sessions are re-read fast, finished ones slowly, and a
# full re-list catches revived or changed old sessions that the createTime order hides.
SYNC_ACTIVE_SECONDS = envint("SYNC_ACTIVE_SECONDS", 10)
# The changes pass: the first list page, whose updateTimes say which sessions changed;
# 0 turns it off (passes then come every SYNC_ACTIVE_SECONDS). docs/architecture.md#sync
SYNC_CHANGES_SECONDS = envint("SYNC_CHANGES_SECONDS", 4)
SYNC_IDLE_SECONDS = envint("SYNC_IDLE_SECONDS", 300)
SYNC_LIST_SECONDS = envint("SYNC_LIST_SECONDS", 30)
SYNC_FULL_SECONDS = envint("SYNC_FULL_SECONDS", 3600)
SYNC_SOURCES_SECONDS = envint("SYNC_SOURCES_SECONDS", 900)
# Requests in flight per sync pass (the SDK allows 50): docs/jules-api.md#quotas-and-rate-limits
JULES_SYNC_CONCURRENCY = envint("JULES_SYNC_CONCURRENCY", 4)
# Ceiling of the adaptive GETs in flight per sync client; CONCURRENCY is where it starts.
JULES_SYNC_MAX_IN_FLIGHT = envint("JULES_SYNC_MAX_IN_FLIGHT", 16)
# How far a worker that consumes only the sync queue lowers its CPU priority, so that pages
# stay quick while a large account syncs: docs/operations.md#cpu-priority-of-the-sync
SYNC_WORKER_NICE = parse_nice(env("SYNC_WORKER_NICE", "10") or "10")

# Notifications (docs/notifications.md). Email goes through Django's backend: the console
# backend prints messages to the terminal unless an SMTP host is set.
EMAIL_HOST = env("EMAIL_HOST")
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Jules team portal <portal@localhost>")
# Webhook destinations (team channels) must be public addresses unless allowed here.
WEBHOOK_ALLOWED_HOSTS = envlist("WEBHOOK_ALLOWED_HOSTS")
WEBHOOK_ALLOW_PRIVATE = envbool("WEBHOOK_ALLOW_PRIVATE", False)
WEBHOOK_TIMEOUT_SECONDS = envfloat("WEBHOOK_TIMEOUT_SECONDS", 10.0)
WEBHOOK_MAX_BYTES = envint("WEBHOOK_MAX_BYTES", 256 * 1024)
# First wait after a failed notification delivery, doubled after each failure (at most an
# hour); a delivery is retried for NOTIFY_RETRY_HOURS before it fails for good.
NOTIFY_BACKOFF_SECONDS = envfloat("NOTIFY_BACKOFF_SECONDS", 10.0)
NOTIFY_RETRY_HOURS = envfloat("NOTIFY_RETRY_HOURS", 26.0)
# Emails about one session within this many seconds go out as one message.
NOTIFY_GROUP_SECONDS = envint("NOTIFY_GROUP_SECONDS", 30)

# Sign-in lockout (django-axes): too many failures for one account or from one address.
# Sign-in lockout (django-axes). Each comma-separated item of AXES_LOCKOUT_PARAMETERS is
# counted on its own, `+` joins parameters counted together: by default one account from one
# address (AXES_FAILURE_LIMIT), so a stranger cannot lock a named person out from elsewhere,
# and one address over all accounts (AXES_ADDRESS_FAILURE_LIMIT), against a guesser.
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
AXES_ADDRESS_FAILURE_LIMIT = envint("AXES_ADDRESS_FAILURE_LIMIT", 30)
AXES_COOLOFF_TIME = envfloat("AXES_COOLOFF_MINUTES", 15.0) / 60.0
AXES_LOCKOUT_PARAMETERS = envgroups("AXES_LOCKOUT_PARAMETERS", "username+ip_address,ip_address")
for _group in AXES_LOCKOUT_PARAMETERS:
    if not ({_group} if isinstance(_group, str) else set(_group)) <= {
        "username",
        "ip_address",
        "user_agent",
    }:
        raise ImproperlyConfigured(f"AXES_LOCKOUT_PARAMETERS: unknown parameter in {_group!r}")
AXES_HANDLER = "sessions_app.audit.lockout.PortalAxesHandler"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = False
# The proxies in front of the portal that append to X-Forwarded-For (docs/operations.md);
# the client's address, for the lockout and the audit, is the one the outermost one saw.
TRUSTED_PROXY_COUNT = envint("AXES_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "sessions_app.web.client_address.client_address"

# How long an invitation to a team can be accepted.
INVITATION_DAYS = envint("INVITATION_DAYS", 7)

# A schedule's slot missed while beat was down runs once when it comes back, if it is at
# most this old; older ones are recorded as missed (docs/templates.md).
SCHEDULE_CATCH_UP_HOURS = envint("SCHEDULE_CATCH_UP_HOURS", 24)

LOG_LEVEL = env("LOG_LEVEL", "INFO")
# Error pages and mails hide anything that looks like a key, in every frame.
DEFAULT_EXCEPTION_REPORTER_FILTER = "sessions_app.web.error_reports.KeySafeExceptionReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# Sign-in with the company's identity provider, OpenID Connect (docs/sign-in.md). Off
# unless OIDC_ISSUER is set; PASSWORD_SIGN_IN=0 turns local passwords off.
OIDC_ISSUER = env("OIDC_ISSUER").strip().rstrip("/")
OIDC_CLIENT_ID = env("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = secret("OIDC_CLIENT_SECRET")
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_SCOPES = env("OIDC_SCOPES", "openid email profile")
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", "groups")
# `group=team-slug:role` items, comma-separated (sessions_app/identity/mapping.py).
OIDC_GROUP_ROLES = env("OIDC_GROUP_ROLES")
# Addresses besides the issuer's own host that the portal may call for the provider (its
# token or key endpoints elsewhere, a provider on loopback); `*` as the port allows any.
OIDC_ALLOWED_URLS = envlist("OIDC_ALLOWED_URLS")
OIDC_TIMEOUT_SECONDS = envfloat("OIDC_TIMEOUT_SECONDS", 10.0)
PASSWORD_SIGN_IN = envbool("PASSWORD_SIGN_IN", True)
# After authentication and messages: a session whose provider tokens expired is refreshed
# or ends, with a notice.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.messages.middleware.MessageMiddleware") + 1,
    "sessions_app.identity.middleware.ProviderSessionMiddleware",
)
# Passwords go through a backend that PASSWORD_SIGN_IN=0 turns off (the admin's sign-in too).
AUTHENTICATION_BACKENDS[
    AUTHENTICATION_BACKENDS.index("django.contrib.auth.backends.ModelBackend")
] = "sessions_app.identity.backends.PasswordBackend"

# Search (docs/search.md): the sync keeps the search index in the same transaction as the
# rows it writes. Off only to measure what that costs (bench/search.py); then run
# `manage.py rebuild_search_index`.
SEARCH_INDEX_ON_SYNC = envbool("SEARCH_INDEX_ON_SYNC", True)
