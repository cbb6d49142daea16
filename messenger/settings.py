"""Settings for the messenger, read from the environment in one place.

With nothing set, the server runs the embedded default: SQLite under DATA_DIR and the
in-memory channel layer. Production sets DATABASE_URL (MySQL/MariaDB) and REDIS_URL.
"""

import contextlib
import os
import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from messenger.redis_conn import layer_host, parse_sentinels
from messenger.security_headers import client_headers

# Lets classes such as ModelAdmin[Chat] be subscripted at run time, as the type hints spell them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean strictly: an unknown value is a configuration error, not False."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _make_private(path: Path) -> None:
    """Readable and writable by the server's user only (0600): an existing file too, if looser."""
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _write_private(path: Path, text: str) -> None:
    """Create `path` holding `text`, mode 0600 from its first byte, unless it exists by then: written
    beside it and linked into place, so a process starting at the same time reads all or nothing."""
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process's key won
    finally:
        draft.unlink()


DEBUG = env_bool("DEBUG", default=False)
TESTING = "pytest" in sys.modules or env_bool("TESTING", default=False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off. Set SECRET_KEY to a long random string, "
            "or set DEBUG=true for local development."
        )
    # Development keeps a generated key under DATA_DIR so tokens survive a restart.
    _key_file = Path(os.environ.get("DATA_DIR", BASE_DIR / "data")).resolve() / "dev-secret-key"
    _key_file.parent.mkdir(parents=True, exist_ok=True)
    if not _key_file.exists():
        _write_private(_key_file, "dev-" + secrets.token_urlsafe(48))
    _make_private(_key_file)
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if (DEBUG or TESTING) else [])

# Where the server keeps its state in the embedded default (SQLite) and uploaded files (always).
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "data")).resolve()
UPLOADS_DIR = DATA_DIR / "uploads"
DATA_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: /api/docs/ needs no internet
    "channels",
    "accounts",
    "chats",
    "media",
]

MIDDLEWARE = [
    # Outermost: an HTML error page under /api/ (a 404 of no route, a 500) becomes JSON.
    "messenger.api_errors.JsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "messenger.urls"
WSGI_APPLICATION = "messenger.wsgi.application"
ASGI_APPLICATION = "messenger.asgi.application"
# Long-lived threads for REST requests under ASGI, each keeping its database connection
# (messenger/http_threads.py), and the only ones: a process holds at most this many REST
# connections. A request finding none free waits up to HTTP_QUEUE_SECONDS, then gets 503.
# A process's connections in all: these, the real-time core's (database_sync_to_async with
# thread_sensitive=False: the event loop's default executor, min(32, cores + 4) threads) and
# one for /healthz's database check (messenger/health.py), closed after each check.
HTTP_THREADS = env_int("HTTP_THREADS", 8)
HTTP_QUEUE_SECONDS = env_int("HTTP_QUEUE_SECONDS", 5)

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def database_from_url(url: str) -> dict[str, object]:
    """Turn mysql://user:pass@host:port/name?opt=value into Django's DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"mysql", "mariadb"}:
        raise ImproperlyConfigured(f"DATABASE_URL scheme {parsed.scheme!r} is not supported (use mysql://)")
    statement_seconds = env_int("DATABASE_STATEMENT_SECONDS", 5)
    options: dict[str, object] = {
        "charset": "utf8mb4",
        # Strict mode: MySQL refuses bad data instead of truncating it. And on MariaDB (the /*M!
        # comment is a comment to MySQL) no statement runs longer than DATABASE_STATEMENT_SECONDS
        # (lock waits included): https://mariadb.com/kb/en/aborting-statements/
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"
        + (f" /*M!, SESSION max_statement_time={statement_seconds} */" if statement_seconds > 0 else ""),
        # A stalled or unreachable server fails a request within seconds (503, messenger.exceptions)
        # instead of holding its thread: mysqlclient's connect/read/write timeouts, in seconds.
        # https://mysqlclient.readthedocs.io/user_guide.html#functions-and-attributes
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 3),
        "read_timeout": env_int("DATABASE_READ_TIMEOUT", 6),
        "write_timeout": env_int("DATABASE_WRITE_TIMEOUT", 6),
    }
    for key, values in parse_qs(parsed.query).items():
        options[key] = values[-1]
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "127.0.0.1",
        "PORT": str(parsed.port or 3306),
        "OPTIONS": options,
        # https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections
        "CONN_MAX_AGE": env_int("CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    }


DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    # Every account's password hash is in this file: it is created 0600 (an empty file is an empty
    # database), and SQLite gives its -wal and -shm files the database file's mode.
    _sqlite_file = DATA_DIR / "messenger.sqlite3"
    with contextlib.suppress(FileExistsError):
        os.close(os.open(_sqlite_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for _suffix in ("", "-wal", "-shm"):
        _make_private(Path(f"{_sqlite_file}{_suffix}"))
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _sqlite_file,
            # WAL lets readers and the writer proceed together; the timeout waits out short locks.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "CONN_MAX_AGE": env_int("CONN_MAX_AGE", 60),
        }
    }
    if TESTING:
        # pytest-django's default SQLite test database lives in memory with a shared cache, whose
        # locks refuse a second writer at once; a file of its own (WAL, BEGIN IMMEDIATE, as the
        # server runs SQLite) lets the concurrency tests run on the embedded default too.
        # tests/conftest.py removes it and its -wal and -shm files after the run.
        _test_db = Path(tempfile.gettempdir()) / f"messenger-test-{os.getpid()}.sqlite3"
        DATABASES["default"]["TEST"] = {"NAME": str(_test_db)}

# The message search index is written after the commit by a thread of each process (chats/search.py);
# off, each search indexes its chats' latest changes itself (the tests: no thread outlives a test).
SEARCH_INDEX_IN_BACKGROUND = env_bool("SEARCH_INDEX_IN_BACKGROUND", default=not TESTING)
# How long the indexer gathers notices before a batch (a search never waits for it: it catches up).
SEARCH_INDEX_DELAY_MS = env_int("SEARCH_INDEX_DELAY_MS", 200)

REDIS_URL = os.environ.get("REDIS_URL", "")
# Redis Sentinel (messenger/redis_conn.py): host:port,... of the sentinels watching the primary
# named REDIS_SENTINEL_MASTER; every client then connects to whichever server they name primary,
# and REDIS_URL gives only the database number and credentials (default redis://<master>/0).
REDIS_SENTINELS = parse_sentinels(os.environ.get("REDIS_SENTINELS", ""))
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "") or "messenger"
if REDIS_SENTINELS and not REDIS_URL:
    REDIS_URL = f"redis://{REDIS_SENTINEL_MASTER}/0"
# redis-py 8 caps an async pool at 100 connections and channels-redis does not raise it;
# connection storms then fail. Size the pool explicitly.
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 1000)
# The real-time path's uses of daphne's, Twisted's, autobahn's, channels' and channels-redis's
# internals, all in chats/realtime/adapter.py; false runs plain ASGI and the stock layers (what
# to try first when an upgrade of one of them misbehaves; CI runs the real-time suite both ways).
SERVER_INTERNALS = env_bool("SERVER_INTERNALS", default=True)
if REDIS_URL:
    # The PubSub layer: one PUBLISH per event and Redis pushes it to every process's hub (one
    # subscription per group per process); why not the core RedisChannelLayer: docs/realtime.md.
    # channels-redis hands this host dict to redis-py's ConnectionPool.from_url, which honours
    # max_connections.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chats.realtime.adapter.BatchedRedisPubSubChannelLayer"
            if SERVER_INTERNALS
            else "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # A Redis that does not answer is down after seconds (a connect 2, a command 5: more
                # than any stall of a busy loop), not the OS's minutes or never (paused).
                "hosts": [
                    layer_host(
                        REDIS_URL,
                        REDIS_SENTINELS,
                        REDIS_SENTINEL_MASTER,
                        max_connections=REDIS_MAX_CONNECTIONS,
                        socket_connect_timeout=2,
                        socket_timeout=5,
                    )
                ],
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "messenger"),
            },
        }
    }
    # Rate-limit history, shared; while Redis is unreachable each process counts on its own
    # (messenger/cache.py), so logins and refreshes never fail for it.
    CACHES = {
        "default": {
            "BACKEND": "messenger.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CHANNEL_LAYER_PREFIX", "messenger"),
            "OPTIONS": {
                "socket_connect_timeout": 1,
                "socket_timeout": 1,
                **({"pool_class": "messenger.redis_conn.SentinelCachePool"} if REDIS_SENTINELS else {}),
            },
        }
    }
else:
    # One process: the hub's one channel receives every event, so its queue must hold a burst
    # (the default capacity of 100 would drop events silently). Channels' in-memory layer, with
    # its expiry sweep run once a second instead of on every event (chats/realtime/adapter.py).
    _in_memory_layer: dict[str, Any] = {
        "BACKEND": "chats.realtime.adapter.SweepingInMemoryChannelLayer"
        if SERVER_INTERNALS
        else "channels.layers.InMemoryChannelLayer",
        "CONFIG": {"capacity": 100_000},
    }
    CHANNEL_LAYERS = {"default": _in_memory_layer}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing with PBKDF2 dominates a test run; the algorithm is not what the tests check.
    PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",  # the demo fixture's hashes
    ]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
# The client's renderer is plain ES modules; WhiteNoise serves its folder at the site root.
WHITENOISE_ROOT = BASE_DIR / "client" / "renderer"
WHITENOISE_INDEX_FILE = True
# X-Frame-Options: DENY and the client's Content-Security-Policy on every file WhiteNoise serves.
WHITENOISE_ADD_HEADERS_FUNCTION = client_headers
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Demo data for `manage.py loaddata demo`; tests build their own with factories.
FIXTURE_DIRS = [BASE_DIR / "fixtures"]

# Clients: the browser client is same-origin; the desktop client and other front ends are listed here.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Origins allowed to open WebSockets beyond ALLOWED_HOSTS (see accounts/ws_auth.origin_allowed).
# The desktop client's file:// pages send "file://" (Electron, older Chromium) or "null"
# (Chromium 92+); sockets authenticate by bearer token, never by cookie, so "null" is safe here.
WEBSOCKET_ALLOWED_ORIGINS = env_list("WEBSOCKET_ALLOWED_ORIGINS", ["file://", "null", "app://messenger"])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# https://docs.djangoproject.com/en/5.2/ref/middleware/#http-strict-transport-security
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Request bodies: JSON is small; uploads stream to disk past this size.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
FILE_UPLOAD_TEMP_DIR = None

# The contract's limits.
MESSAGE_MAX_LENGTH = env_int("MESSAGE_MAX_LENGTH", 4000)
CHAT_TITLE_MAX_LENGTH = 128
GROUP_MAX_MEMBERS = env_int("GROUP_MAX_MEMBERS", 1000)
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", 40_000_000)
# Any other file (kind "file": not an image by its bytes) may be this large (media.services).
FILE_MAX_BYTES = env_int("FILE_MAX_BYTES", 50 * 1024 * 1024)
# Link previews (chats.previews): after a message with an http(s) URL is stored, its first URL's page is
# fetched (1 MB, 5 s, never a private, loopback, link-local or metadata address) and its Open Graph data
# sent as `message.updated`. Off by default under the test runner: no test may reach the internet.
LINK_PREVIEWS = env_bool("LINK_PREVIEWS", default=not TESTING)
# Hosts a preview may fetch whatever they resolve to, "host" (ports 80 and 443) or "host:port" (that port):
# an intranet wiki, or a test's own server. Nothing else reaches a non-public address.
LINK_PREVIEW_ALLOWED_HOSTS = env_list("LINK_PREVIEW_ALLOWED_HOSTS", [])
# How long a fetched page (or a failed fetch) stands for every message with its URL.
LINK_PREVIEW_CACHE_SECONDS = env_int("LINK_PREVIEW_CACHE_SECONDS", 24 * 3600)
# An animation's cost to its viewers: frames x width x height (media.validation._check_animation).
UPLOAD_MAX_FRAMES = env_int("UPLOAD_MAX_FRAMES", 2000)
UPLOAD_MAX_ANIMATION_PIXELS = env_int("UPLOAD_MAX_ANIMATION_PIXELS", 400_000_000)
# Image decodes at once per process (each up to ~160 MB at 40 MP), and how long an upload waits for one (then 503).
UPLOAD_MAX_CONCURRENT_DECODES = env_int("UPLOAD_MAX_CONCURRENT_DECODES", 2)
UPLOAD_DECODE_WAIT_SECONDS = env_int("UPLOAD_DECODE_WAIT_SECONDS", 10)
# What a user's uploads may take in all (each upload its stored size, shared bytes too; 0: no quota), and
# how long an upload no message carries is kept (swept on later uploads, media.services; 0: kept).
UPLOAD_QUOTA_BYTES = env_int("UPLOAD_QUOTA_BYTES", 1024 * 1024 * 1024)
UPLOAD_UNATTACHED_HOURS = env_int("UPLOAD_UNATTACHED_HOURS", 24)
# /healthz reports the disk "full" (503) when the uploads' file system has less free than this.
DISK_MIN_FREE_BYTES = env_int("DISK_MIN_FREE_BYTES", 64 * 1024 * 1024)
# How long a browser may keep an attachment's bytes (content-addressed, so they never change).
ATTACHMENT_CACHE_SECONDS = env_int("ATTACHMENT_CACHE_SECONDS", 86400)
# Behind nginx, let it send the file: SENDFILE_HEADER=X-Accel-Redirect with an `internal` location at
# SENDFILE_URL_PREFIX aliased to UPLOADS_DIR (see README). X-Sendfile (Apache, lighttpd) gets the file path.
# https://nginx.org/en/docs/http/ngx_http_core_module.html#internal
SENDFILE_HEADER = os.environ.get("SENDFILE_HEADER", "")
SENDFILE_URL_PREFIX = os.environ.get("SENDFILE_URL_PREFIX", "/protected-uploads/")
# Where blobs live (media.store): "local" (UPLOADS_DIR, the default) or "s3", an S3-compatible bucket
# through django-storages + boto3, with the same content-addressed keys (<prefix>ab/cd/abcd…). Uploads are
# still received and hashed in UPLOADS_DIR/tmp. With "s3", SENDFILE_HEADER is not used: the server streams
# the bytes itself after the access check (README "Media in object storage").
# https://django-storages.readthedocs.io/en/latest/backends/amazon-S3.html
MEDIA_STORAGE = os.environ.get("MEDIA_STORAGE", "local").strip().lower() or "local"
if MEDIA_STORAGE not in {"local", "s3"}:
    raise ImproperlyConfigured(f"MEDIA_STORAGE={MEDIA_STORAGE!r} is not a storage (use local or s3)")
S3_BUCKET = os.environ.get("S3_BUCKET", "")
if MEDIA_STORAGE == "s3" and not S3_BUCKET:
    raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs S3_BUCKET")
# Empty: AWS S3 itself. MinIO, Ceph RGW, Cloudflare R2…: their URL (README).
S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL", "")
S3_REGION = os.environ.get("S3_REGION", "")
S3_PREFIX = os.environ.get("S3_PREFIX", "")  # a folder inside the bucket, e.g. "messenger/"
# "path" (bucket in the URL's path) suits MinIO, Ceph and endpoints given by address; AWS takes "virtual".
S3_ADDRESSING_STYLE = os.environ.get("S3_ADDRESSING_STYLE", "") or ("path" if S3_ENDPOINT_URL else "auto")
if S3_ADDRESSING_STYLE not in {"auto", "path", "virtual"}:
    raise ImproperlyConfigured(f"S3_ADDRESSING_STYLE={S3_ADDRESSING_STYLE!r} is not one (use auto, path or virtual)")
# Empty: boto3's own chain (AWS_* in the environment, ~/.aws, an instance role).
S3_ACCESS_KEY_ID = os.environ.get("AWS_ACCESS_KEY_ID", "")
S3_SECRET_ACCESS_KEY = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
MESSAGE_PAGE_MAX = 100
# A longer client frame gets an `error` (too_large) and the socket stays open. Run daphne with
# --websocket-max-message-size / --websocket-max-frame-size above this (twice, say) so that the
# server refuses much larger ones before buffering them.
WEBSOCKET_MAX_FRAME_BYTES = env_int("WEBSOCKET_MAX_FRAME_BYTES", 64 * 1024)
# Flood control per socket: a token bucket of client frames (rate per second, burst). A frame
# over it gets `rate_limited`; more than FLOOD_CLOSE_AFTER refused frames, forgotten at one a
# second, close the socket with 4429.
WEBSOCKET_RATE_PER_SECOND = env_int("WEBSOCKET_RATE_PER_SECOND", 20)
WEBSOCKET_RATE_BURST = env_int("WEBSOCKET_RATE_BURST", 40)
WEBSOCKET_FLOOD_CLOSE_AFTER = env_int("WEBSOCKET_FLOOD_CLOSE_AFTER", 20)
# At most this many open sockets per user, across every process (0: no limit); one more closes the
# user's oldest with 4429 (chats.realtime.limits).
WEBSOCKET_MAX_PER_USER = env_int("WEBSOCKET_MAX_PER_USER", 20)
# `message.send` frames per second per user, all their sockets on one process together (burst
# twice that; 0: no limit); one over it gets `rate_limited` (chats.realtime.sends.UserRates).
WEBSOCKET_SENDS_PER_SECOND_PER_USER = env_int("WEBSOCKET_SENDS_PER_SECOND_PER_USER", 50)
# At most one `typing` event per user and chat in this many seconds.
TYPING_THROTTLE_SECONDS = env_int("TYPING_THROTTLE_SECONDS", 2)
# Presence: each process renews its claims every HEARTBEAT seconds; a crashed process's fade after TTL.
PRESENCE_HEARTBEAT_SECONDS = env_int("PRESENCE_HEARTBEAT_SECONDS", 30)
PRESENCE_TTL_SECONDS = env_int("PRESENCE_TTL_SECONDS", 90)

# How many proxies of ours stand in front of the server and append to X-Forwarded-For: the client's
# address (rate limits, logs) is the TRUSTED_PROXIES-th from the right; 0 ignores the header, which
# a client can write anything in (accounts/throttles.py). Behind one nginx: 1.
# https://www.django-rest-framework.org/api-guide/settings/#num_proxies
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)
if TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES={TRUSTED_PROXIES} must be 0 or more")
# Mail: confirmation codes for email addresses (accounts/email_confirmation.py). The console backend
# (the default) prints them to the server's output; set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend
# with EMAIL_HOST etc. to send them. https://docs.djangoproject.com/en/5.2/topics/email/
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "messenger@localhost")
EMAIL_CONFIRM_DAYS = env_int("EMAIL_CONFIRM_DAYS", 3)

# Failed logins per username (an email counts as its user's name) within a window that starts at
# the first; then 429 with Retry-After until it ends, whichever the address (accounts/throttles.py).
LOGIN_FAILURES_PER_USERNAME = env_int("LOGIN_FAILURES_PER_USERNAME", 10)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.sessions.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": [
        "messenger.json_input.StrictJSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "messenger.schema.ContractAutoSchema",
    "EXCEPTION_HANDLER": "messenger.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "auth": os.environ.get("THROTTLE_AUTH", "30/min"),
        "upload": os.environ.get("THROTTLE_UPLOAD", "60/min"),
        # PATCH /api/auth/me with an email, per user (accounts.views.MeView).
        "email": os.environ.get("THROTTLE_EMAIL", "10/hour"),
        # Per user: POST /api/chats with is_group true, PATCH /api/chats/{id} (chats.views.ChatViewSet).
        "group_create": os.environ.get("THROTTLE_GROUP_CREATE", "20/hour"),
        "rename": os.environ.get("THROTTLE_RENAME", "30/hour"),
    },
    "UNAUTHENTICATED_USER": None,
    # Every throttle names the client by accounts.throttles.client_address; DRF's own get_ident
    # reads the same number, so that a stock throttle added later agrees.
    "NUM_PROXIES": TRUSTED_PROXIES,
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("ACCESS_TOKEN_MINUTES", 5)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("REFRESH_TOKEN_DAYS", 14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

# A refresh token rotated less than this many seconds ago is still answered, with the successor it was
# answered the first time (a client whose answer was lost stays signed in); 0 turns it off (accounts/rotation.py).
REFRESH_GRACE_SECONDS = env_int("REFRESH_GRACE_SECONDS", 60)

SPECTACULAR_SETTINGS = {
    "TITLE": "Messenger API",
    "DESCRIPTION": (
        "REST API of the messenger (the contract: docs/API.md). The WebSocket protocol is described by "
        "[/api/asyncapi.yaml](/api/asyncapi.yaml) (AsyncAPI), readable at [/api/ws-docs/](/api/ws-docs/)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # https://drf-spectacular.readthedocs.io/en/latest/settings.html#self-contained-ui-installation
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api",
    # Two choice sets share the field name "role": name both, or the schema gets "Role978Enum".
    # https://drf-spectacular.readthedocs.io/en/latest/settings.html
    "PREPROCESSING_HOOKS": ["messenger.schema.contract_paths"],
    # Every error status an operation can answer is documented by messenger.schema.ContractAutoSchema
    # (the 503 of a database failure included); the hook adds the Error and ValidationError shapes.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "messenger.schema.error_components",
    ],
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "chats.models.ChatUser.Role",
        "AssignableRoleEnum": "chats.serializers.ASSIGNABLE_ROLES",
        # Not "KindEnum": a message's kind (text, system) is another choice set of that name.
        "AttachmentKindEnum": "media.models.Attachment.Kind",
    },
}

# MariaDB has no indexes on expressions; there the columns' case-insensitive collation
# (utf8mb4_unicode_ci) enforces what the Lower() unique constraints enforce on SQLite.
SILENCED_SYSTEM_CHECKS = ["models.W044"] if DATABASE_URL else []

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # daphne logs the full request path, which carries ?token= on WebSocket connects.
        "django.channels.server": {"level": "WARNING"},
    },
}
APPEND_SLASH = False
