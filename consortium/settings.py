"""Settings read from the environment, as docs/running.md describes.

With no configuration at all the project runs embedded: SQLite in ./var, an in-memory channel layer
and Celery tasks executed in-process, so `python dev.py demo` works on a fresh machine. Setting
DATABASE_URL and REDIS_URL switches to the production engines; nothing else in the code changes.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("VR_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def _networks(name: str, default: str) -> list[str]:
    """A comma-separated list of addresses or networks (CIDR) from the environment, each checked."""
    entries = [a.strip() for a in os.environ.get(name, default).split(",") if a.strip()]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {entry!r} is not an address or network") from None
    return entries


DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED = not DATABASE_URL and not REDIS_URL

DEBUG = env_bool("DJANGO_DEBUG", EMBEDDED)
if DEBUG and not EMBEDDED and not env_bool("VR_ALLOW_DEBUG_WITH_PRODUCTION_ENGINES", False):
    # Debug pages leak settings and SQL; on the production engines that is a deployment mistake.
    raise ImproperlyConfigured("DJANGO_DEBUG must be false when DATABASE_URL or REDIS_URL is set")
HTTPS = env_bool("HTTPS", not DEBUG)

_DEV_KEY_FILE = DATA_DIR / "dev-secret-key"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false")
    if not _DEV_KEY_FILE.exists():
        _DEV_KEY_FILE.write_text("dev-" + secrets.token_urlsafe(40))
    SECRET_KEY = _DEV_KEY_FILE.read_text().strip()
elif not DEBUG and (SECRET_KEY.startswith("dev-") or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY looks like a development key; use a long random one")
elif not DEBUG and "change-me" in SECRET_KEY.lower():
    # deploy/env.example's placeholder is long enough to pass the test above: a copied example file must
    # not become a deployment whose sessions and tokens anyone who has read the example can forge.
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is still the CHANGE-ME placeholder of deploy/env.example; "
                               "use a long random one")

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
if DEBUG:
    ALLOWED_HOSTS += ["testserver"]

INSTALLED_APPS = [
    "daphne",
    "consortium.admin_site.ConsortiumAdminConfig",  # the admin, with access by staff role
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",  # before consortium: consortium/admin_signin.py replaces axes' admin of the attempts
    "consortium",
    "libraries",
    "routing",
    "coordination",
    "texting",
    "review",
    "knowledge",  # the knowledge base of answers (issue 17)
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on our own HTML pages, with a per-request nonce (see consortium/security.py).
    "consortium.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The staff member's chosen language (consortium/language.py); patron pages choose the patron's.
    "consortium.language.StaffLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "consortium.middleware.ApiErrorMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the 429 page (consortium/signin.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "consortium.urls"
ASGI_APPLICATION = "consortium.asgi.application"
WSGI_APPLICATION = None

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
                "consortium.security.csp_nonce",  # {{ csp_nonce }} for an inline <script nonce=...>
            ],
        },
    },
]

if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "db.sqlite3"),
            # One process, many threads: wait for the writer rather than failing at once.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("TEST", {})
    # Keep the URL's own options (?sslmode=verify-full for a database on another host); add a connect timeout.
    DATABASES["default"]["OPTIONS"] = {"connect_timeout": 5, **DATABASES["default"].get("OPTIONS", {})}
    if env_bool("VR_DB_TRANSACTION_POOLING", False):
        # Behind pgbouncer in transaction mode (docs/scaling.md) one connection's queries may reach different
        # server sessions: no server-side cursors, no prepared statements (psycopg prepares repeated queries).
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
    else:
        # psycopg prepares a statement asked to (routing's writes, the message store, the structure's stamp:
        # prepare=True) and one run five times on its own server-binding cursors. Django turns that off
        # unless this is set, and psycopg then ignores prepare=True: each step timeout parsed and planned
        # its seven statements again, a third of its time (docs/benchmarks.md, session 20). Django's own
        # queries bind on the client and are never prepared either way.
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
    # A pool of connections per process (psycopg_pool). Without one, every database call of a socket
    # opened a new PostgreSQL connection (CONN_MAX_AGE=0: a backend forked, 10-25 ms on a busy
    # machine) and closed it again; persistent connections are no cure under ASGI, where each HTTP
    # request runs in a thread of its own and leaves its connection behind ("too many clients" under
    # load: docs/benchmarks.md, "Real time"). The pool also caps what one process takes from
    # max_connections (or from pgbouncer): past VR_DB_POOL_MAX busy connections, callers wait (up to
    # `timeout` seconds) instead of failing. VR_DB_POOL_MAX=0 turns the pool off.
    _pool_max = int(os.environ.get("VR_DB_POOL_MAX", "10"))
    if _pool_max > 0:
        DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": _pool_max, "timeout": 10}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if REDIS_URL:
    # The channel layer may be spread over several independent Redis servers (VR_CHANNEL_REDIS_URLS,
    # comma-separated; docs/scaling.md): each channel and group lives on the one its name hashes to. REDIS_URL
    # then keeps only the Celery broker and the rate limits. channels-redis cannot use Redis Cluster.
    _layer_urls = [u.strip() for u in os.environ.get("VR_CHANNEL_REDIS_URLS", "").split(",") if u.strip()]
    CHANNEL_LAYERS: dict[str, Any] = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": url} for url in _layer_urls or [REDIS_URL]],
                "prefix": os.environ.get("VR_CHANNEL_PREFIX", "vr"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Under daphne, a frame goes to the client's socket when it is sent, not on the reactor's next turn
# (consortium/twisted_writes.py); false keeps Twisted's own buffered writes.
VR_DIRECT_WRITES = env_bool("VR_DIRECT_WRITES", True)

# Under daphne, once the application is loaded it is frozen out of the garbage collector's scans, and
# the young generation is collected after this many allocations (CPython: 700): full collections
# stalled every socket of a process for 0.1-0.7 s at 1,000 chats (consortium/collector.py). 0 leaves
# CPython's collector as it is.
VR_GC_YOUNG = int(os.environ.get("VR_GC_YOUNG", "10000"))

# Celery: Redis in production; in the embedded default every task runs in-process at once (kombu's
# in-memory transport, named with a host: without one kombu warned "No hostname was supplied" at the
# demo's start, which reads as a misconfiguration to a newcomer).
CELERY_BROKER_URL = REDIS_URL or "memory://localhost//"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
# One queue name per deployment (or per test stack sharing a Redis): workers take only their own tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("VR_CELERY_QUEUE", "vr")
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker killed mid-task (SIGKILL, out of memory, the host gone) cannot acknowledge or give back
# its task: Redis keeps it as unacknowledged and the broker hands it to a worker again once it is
# `visibility_timeout` old. Kombu's default is an hour, swept for every 100 s: a transcript a patron
# asked for would go out an hour late. Our tasks take seconds; one still running past the timeout
# is handed out a second time, which the mail tasks shrug off (each mail once per task id:
# routing.tasks) and the nightly scrub too. The fault tests shorten it to see the re-run.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("VR_CELERY_VISIBILITY_TIMEOUT", "600")),
    "unacked_restore_interval": 5,  # look for such tasks every 5 s ...
    "unacked_restore_throttle": 1,  # ... each time (one small sorted-set read)
}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, Any] = {
    # Nightly (08:00 UTC is the small hours across the US): scrub chats past their retention (routing/privacy.py).
    "scrub-expired-chats": {"task": "routing.tasks.chats_scrub_expired", "schedule": crontab(hour=8, minute=0)},
    # The keys that keep a mail task run again from mailing twice (routing.tasks.send_once), past a month.
    "prune-sent-mail": {"task": "routing.tasks.sent_mail_prune", "schedule": crontab(hour=8, minute=30)},
    # Texts and phone numbers past the retention (texting/privacy.py).
    "scrub-expired-texts": {"task": "texting.tasks.texts_scrub_expired", "schedule": crontab(hour=8, minute=15)},
    # A text whose sending task was lost (texting/tasks.py), every five minutes.
    "resend-stuck-texts": {"task": "texting.tasks.texts_resend_stuck", "schedule": crontab(minute="*/5")},
    # A texted question nobody took within sms_idle becomes a follow-up (texting/idle.py).
    "queued-sms-idle": {"task": "texting.tasks.sms_queued_idle", "schedule": crontab(minute="*")},
    # Transcript review's monthly sample (review/sampling.py), daily: the first run of a month draws the
    # previous month's; the others only catch up on libraries that had no reviewer yet.
    # Follow-ups' reminders before they are due, and their moves to the partners and the consortium
    # past due (routing/followup_clock.py): deadlines are in hours, five minutes late is on time.
    "followup-deadlines": {"task": "routing.tasks.followups_sweep_due", "schedule": crontab(minute="*/5")},
    "sample-reviews": {"task": "review.tasks.reviews_sample_due", "schedule": crontab(hour=9, minute=0)},
    # Answers past their review date, told to their owners once (knowledge/tasks.py).
    "answers-review-due": {"task": "knowledge.tasks.answers_review_due", "schedule": crontab(hour=9, minute=30)},
    # Alerts to coordinators (alerts/): every minute, so that "unstaffed for 10 minutes" is 10 minutes.
    "evaluate-alerts": {"task": "alerts.tasks.alerts_evaluate_all", "schedule": crontab(minute="*")},
}
# Texting (docs/sms.md). Without the account's SID and auth token texting is off: /sms/twilio/ is a 404.
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
# Twilio's own API host; tests point it at a local fake of the Messages resource.
TWILIO_API_BASE = os.environ.get("TWILIO_API_BASE", "https://api.twilio.com").rstrip("/")
TWILIO_TIMEOUT = float(os.environ.get("TWILIO_TIMEOUT", "10"))
# Seconds before each retry of a text that met a timeout or a 5xx: 6 tries over about 10 minutes.
TWILIO_RETRY_DELAYS = [int(s) for s in os.environ.get("TWILIO_RETRY_DELAYS", "3,15,60,180,360").split(",") if s]
# The service's public base URL: Twilio signs the address it called, so the webhook checks that one
# (behind a proxy the request's own Host may differ). Also the start of links in texts.
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# The demo's SMS simulator (texting/simulator.py), switched on by `dev.py demo`: the embedded default only.
SMS_SIMULATOR = os.environ.get("VR_SMS_SIMULATOR", "") == "1"
if SMS_SIMULATOR and not EMBEDDED:
    raise ImproperlyConfigured("VR_SMS_SIMULATOR is for the embedded demo only (no DATABASE_URL, no REDIS_URL)")

# Keep the LOGGING below (JSON lines, the privacy filter) in workers too, instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "consortium.signin.SignInBackend",  # refuses a locked account or client before the password is tried
    "django.contrib.auth.backends.ModelBackend",
]

# Staff sign-in throttling (consortium/signin.py, docs/security.md): django-axes, counted in the database
# (shared by every process). AXES_FAILURE_LIMIT is the per-account limit; the per-client one is our own.
AXES_HANDLER = "consortium.signin.SignInHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # this order: SignInHandler reads them so
AXES_FAILURE_LIMIT = int(os.environ.get("VR_SIGNIN_ACCOUNT_FAILURES", "5"))
SIGNIN_CLIENT_FAILURE_LIMIT = int(os.environ.get("VR_SIGNIN_CLIENT_FAILURES", "20"))
if not 1 <= AXES_FAILURE_LIMIT <= SIGNIN_CLIENT_FAILURE_LIMIT:
    raise ImproperlyConfigured("VR_SIGNIN_CLIENT_FAILURES must be at least VR_SIGNIN_ACCOUNT_FAILURES (>= 1)")
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("VR_SIGNIN_COOLOFF_MINUTES", "15")))
# A success does not wipe the count: axes would wipe the client's failures as well, so one good account
# would reset the per-client limit. Failures while locked do not extend the lock (see consortium/signin.py).
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "consortium.signin.lockout_response"
AXES_CLIENT_IP_CALLABLE = "consortium.signin.client_address"
AXES_SENSITIVE_PARAMETERS: list[str] = []  # log the user name and address of a failure; axes always masks the password
AXES_VERBOSE = False  # no "AXES: BEGIN" line at every start of every process
# Axes would also keep a row per successful sign-in (address, browser) for ever, pruned by nothing: we keep
# only the failures, which age out with the cool-off.
AXES_DISABLE_ACCESS_LOG = True
# Addresses (or networks) of the proxies in front of daphne whose X-Forwarded-For and X-Forwarded-Proto are
# believed, for every client address (rate limits, sign-in, /metrics) and for https (consortium/clients.py).
# Unset: the machine itself (nginx on 127.0.0.1, as deploy/ sets it up); set but empty: no proxy at all.
TRUSTED_PROXIES = _networks("TRUSTED_PROXIES", "127.0.0.1/32,::1/128")
# Password reset requests (consortium/signin.py), per client address and per email address asked for.
PASSWORD_RESET_CLIENT_RATE = os.environ.get("VR_PASSWORD_RESET_CLIENT_RATE", "10/h")
PASSWORD_RESET_EMAIL_RATE = os.environ.get("VR_PASSWORD_RESET_EMAIL_RATE", "3/h")

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/staff/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "/static/"
# Where collectstatic puts the files nginx serves. Outside the data folder in production (VR_STATIC_ROOT), so
# that nginx may read them while the data folder (chat files, mail) stays private to the service user.
STATIC_ROOT = Path(os.environ.get("VR_STATIC_ROOT", DATA_DIR / "static"))
MEDIA_ROOT = Path(os.environ.get("VR_MEDIA_ROOT", DATA_DIR / "media"))

# Email: smtp://user:pass@host:port, console:, or file:///dir (default: a folder under var/).
EMAIL_URL = os.environ.get("EMAIL_URL", f"file://{DATA_DIR / 'mail'}")
_email = urlparse(EMAIL_URL)
if _email.scheme in {"smtp", "smtps"}:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email.hostname or "localhost"
    EMAIL_PORT = _email.port or (465 if _email.scheme == "smtps" else 25)
    EMAIL_HOST_USER = _email.username or ""
    EMAIL_HOST_PASSWORD = _email.password or ""
    EMAIL_USE_SSL = _email.scheme == "smtps"
elif _email.scheme == "console":
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
elif _email.scheme == "file":
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = _email.path
else:
    raise ImproperlyConfigured(f"EMAIL_URL {EMAIL_URL!r}: use smtp://, console: or file:///dir")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Ask a Librarian <noreply@localhost>")

CHAT_START_RATE = os.environ.get("CHAT_START_RATE", "20/m")
# Admission of new chats per web process (routing/admission.py, docs/scaling.md "Overload"): past these a
# chat start is answered 503 with Retry-After at once instead of queueing. 0 switches a check off.
CHAT_START_MAX_IN_FLIGHT = int(os.environ.get("VR_CHAT_START_MAX_IN_FLIGHT", "12"))
CHAT_START_MAX_LOOP_LAG = float(os.environ.get("VR_CHAT_START_MAX_LOOP_LAG", "0.25"))
CHAT_START_RETRY_AFTER = int(os.environ.get("VR_CHAT_START_RETRY_AFTER", "15"))
CHAT_START_MAX_DB_BACKLOG = float(os.environ.get("VR_CHAT_START_MAX_DB_BACKLOG", "12"))
# The chats one web process carries at most (its patron sockets joined to a chat): its knee, measured with
# bench/capacity.py on the machine it runs on (docs/scaling.md "Overload"). The default is the lowest knee
# measured on a 2-core machine since chat starts cost a few round trips (docs/benchmarks.md).
MAX_CHATS_PER_PROCESS = int(os.environ.get("VR_MAX_CHATS_PER_PROCESS", "800"))
# The rate limits' counters in Redis (consortium/ratelimit.py), kept apart per deployment like the channel layer.
RATE_LIMIT_PREFIX = os.environ.get("VR_CHANNEL_PREFIX", "vr")
# Transcript mails one client address may ask for (docs/security.md; each chat has its own bound besides).
TRANSCRIPT_MAIL_CLIENT_RATE = os.environ.get("VR_TRANSCRIPT_MAIL_CLIENT_RATE", "30/h")
# The offline question form: questions per client address (refused past it), confirmation mails per address
# and per consortium (skipped past them; the question is kept). docs/security.md.
QUESTION_CLIENT_RATE = os.environ.get("VR_QUESTION_CLIENT_RATE", "20/h")
QUESTION_MAIL_EMAIL_RATE = os.environ.get("VR_QUESTION_MAIL_EMAIL_RATE", "3/h")
QUESTION_MAIL_CONSORTIUM_RATE = os.environ.get("VR_QUESTION_MAIL_CONSORTIUM_RATE", "200/h")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# With HTTPS on, pages on plain http are never ours (they can be altered in transit): https origins only.
_SCHEMES = ("https",) if HTTPS else ("http", "https")
CSRF_TRUSTED_ORIGINS = [f"{scheme}://{h}" for h in ALLOWED_HOSTS for scheme in _SCHEMES
                        if h not in {"*", "testserver"} and not h.startswith(".")]
if HTTPS:
    # Production behind the TLS proxy (deploy/nginx/vr.conf): cookies only over https, every plain-http
    # request redirected, and browsers told to use https only for a year (HSTS). Whether a request came
    # over https is the scheme X-Forwarded-Proto names when a TRUSTED_PROXIES peer sends it, set in the
    # ASGI scope by consortium/clients.py (no SECURE_PROXY_SSL_HEADER: Django would believe anyone's).
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # HSTS preload is a commitment for the whole domain: opt in only when the operator asks for it.
    SECURE_HSTS_PRELOAD = env_bool("VR_HSTS_PRELOAD", False)
    # Probes and Prometheus talk plain http to a daphne port on the machine itself: no redirect for them.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Uploads: the per-file limit lives in routing.files. Django keeps an upload in memory only up to
# FILE_UPLOAD_MAX_MEMORY_SIZE and spools anything larger to a temporary file, so a 10 MB file (or many at once)
# never sits whole in a process's memory. DATA_UPLOAD_MAX_MEMORY_SIZE bounds a request's non-file fields.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler",
                        "django.core.files.uploadhandler.TemporaryFileUploadHandler"]
# Files one chat may hold, in number and in total size, and files a consortium's unscrubbed chats may hold
# together (routing/files.py; docs/security.md, "Uploads").
CHAT_FILES_MAX_COUNT = int(os.environ.get("VR_CHAT_FILES_MAX", "20"))
CHAT_FILES_MAX_BYTES = int(os.environ.get("VR_CHAT_FILES_MAX_MB", "50")) * 1024 * 1024
CONSORTIUM_FILES_BUDGET_BYTES = int(os.environ.get("VR_CONSORTIUM_FILES_BUDGET_MB", "20480")) * 1024 * 1024
# Files one chat may receive (patron and librarian together), as N/s, N/m or N/h.
CHAT_FILE_UPLOAD_RATE = os.environ.get("VR_CHAT_FILE_UPLOAD_RATE", "10/m")
# Knowledge base searches per client address (GET /api/v1/<c>/answers, consortium/ratelimit.py).
ANSWERS_SEARCH_RATE = os.environ.get("VR_ANSWERS_SEARCH_RATE", "300/m")

# Screen sharing (routing/sharing.py; docs/deploy.md, "Screen sharing: STUN and TURN"). ICE_SERVERS: stun:,
# turn: and turns: URLs, separated by spaces or commas. TURN_SECRET: coturn's static-auth-secret, from which
# each share gets a credential valid for TURN_CREDENTIAL_SECONDS. VR_SHARE_RELAY_ONLY: browsers use the TURN
# relay only, so neither side learns the other's address (a privacy choice that costs relay bandwidth).
ICE_SERVERS = os.environ.get("ICE_SERVERS", "")
if any(not u.startswith(("stun:", "stuns:", "turn:", "turns:")) for u in ICE_SERVERS.replace(",", " ").split()):
    raise ImproperlyConfigured("ICE_SERVERS holds stun:, stuns:, turn: or turns: URLs only")
TURN_SECRET = os.environ.get("TURN_SECRET", "")
TURN_CREDENTIAL_SECONDS = int(os.environ.get("TURN_CREDENTIAL_SECONDS", "3600"))
SHARE_RELAY_ONLY = env_bool("VR_SHARE_RELAY_ONLY", False)

# /metrics (routing/metrics.py) answers only these client addresses or networks (CIDR allowed); 404 for
# everyone else. Behind nginx the address is the one nginx puts in X-Forwarded-For (TRUSTED_PROXIES).
METRICS_ALLOWED_IPS = _networks("METRICS_ALLOWED_IPS", "127.0.0.1,::1")

# Logs go to stderr (journald or the container runtime keeps them). LOG_FORMAT=json writes one JSON object a
# line with chat and consortium ids where there are some (the default on the production engines); plain is
# for people reading a terminal (the embedded default). Either way the privacy filter drops what must never
# be logged: patron names, emails, message bodies, tokens (consortium/logging.py).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if EMBEDDED else "json").strip().lower()
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"privacy": {"()": "consortium.logging.PrivacyFilter"}},
    "formatters": {"plain": {"()": "consortium.logging.PlainFormatter"},
                   "json": {"()": "consortium.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["privacy"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}
