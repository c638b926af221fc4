"""Environment-driven configuration with safe development defaults."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from cryptography.fernet import Fernet

INSTANCE_DIR = Path(os.environ.get("BULKAPP_INSTANCE_DIR", Path(__file__).resolve().parent.parent / "instance"))


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def normalise_database_url(url: str) -> str:
    """Accept Heroku's ``postgres://`` form and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _local_secret(filename: str, make) -> str:
    """Read (or create once) a development secret kept under instance/."""
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / filename
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


MPESA_BASE_URLS = {"sandbox": "https://sandbox.safaricom.co.ke", "production": "https://api.safaricom.co.ke"}
# Safaricom's public sandbox "Lipa na M-Pesa Online" test shortcode and passkey (published in the Daraja docs).
SANDBOX_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma- or space-separated list of addresses/CIDR blocks (``196.201.214.0/24, 10.0.0.1``)."""
    networks = []
    for part in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise RuntimeError(f"MPESA_ALLOWED_IPS: {part!r} is not an IP address or CIDR block") from None
    return tuple(networks)


# What production needs (BULKAPP_ENV=production): each unset one is named in the start-up error.
PRODUCTION_REQUIRED = (
    ("SECRET_KEY", "signs sessions"),
    ("FERNET_KEYS", "encrypts credentials at rest"),
    ("DATABASE_URL", "the PostgreSQL database"),
    ("BASE_URL", "the public address that reply links, callbacks and emails point to"),
    ("MPESA_CALLBACK_TOKEN", "authenticates M-Pesa callbacks; without it anyone could credit a wallet"),
)


def check_production(environ) -> None:
    """Refuse to start production with a missing secret or a setting that would move fake money: one error
    that lists every problem, so one deploy fixes them all."""
    problems = [f"{name} ({why})" for name, why in PRODUCTION_REQUIRED if not (environ.get(name) or "").strip()]
    if (environ.get("MPESA_ENV") or "").strip().lower() == "simulated":
        problems.append("MPESA_ENV=simulated (credits wallets without payment; never in production)")
    if problems:
        raise RuntimeError("BULKAPP_ENV=production cannot start: " + "; ".join(problems))


class Config:
    """Settings read from the environment once, at app creation."""

    def __init__(self) -> None:
        self.ENV_NAME = os.environ.get("BULKAPP_ENV", "development")
        production = self.ENV_NAME == "production"
        if production:
            check_production(os.environ)
        secret = os.environ.get("SECRET_KEY")
        fernet_keys = os.environ.get("FERNET_KEYS")
        self.SECRET_KEY = secret or _local_secret("secret_key", lambda: os.urandom(32).hex())
        self.FERNET_KEYS = fernet_keys or _local_secret("fernet.key", lambda: Fernet.generate_key().decode())

        default_db = f"sqlite:///{INSTANCE_DIR / 'bulkapp.db'}"
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(os.environ.get("DATABASE_URL", default_db))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

        self.REDIS_URL = os.environ.get("REDIS_URL") or None
        # "inline" runs jobs at enqueue time (tests); "thread" is the embedded in-process worker.
        self.JOBS_MODE = os.environ.get("JOBS_MODE") or ("rq" if self.REDIS_URL else "thread")

        self.RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or self.REDIS_URL or "memory://"
        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
        # No X-RateLimit-* headers: they cost every limited request a storage read. The API's 429 still says
        # Retry-After (blueprints/api/errors.py).
        self.RATELIMIT_HEADERS_ENABLED = False
        # Sign-in POSTs per client address (failed sign-ins also slow each account down: blueprints/auth/throttle.py).
        self.LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
        # Accepted sign-ups and confirmation resends per client address; resends per email address.
        self.SIGNUP_RATE_LIMIT = os.environ.get("SIGNUP_RATE_LIMIT", "10 per hour")
        self.RESEND_RATE_LIMIT = os.environ.get("RESEND_RATE_LIMIT", "3 per hour")
        # "Forgot password?" answers (and email change requests, bad reset links) per client address; resets per email.
        self.PASSWORD_RESET_RATE_LIMIT = os.environ.get("PASSWORD_RESET_RATE_LIMIT", "10 per hour")
        self.PASSWORD_RESET_EMAIL_RATE_LIMIT = os.environ.get("PASSWORD_RESET_EMAIL_RATE_LIMIT", "3 per hour")
        # API requests with a missing or unknown key, per client address (random keys are throttled too).
        self.API_AUTH_FAILURE_RATE_LIMIT = os.environ.get("API_AUTH_FAILURE_RATE_LIMIT", "20 per minute")
        # REST API requests per API key (per client IP when no key is sent).
        self.API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "120 per minute")
        # The public reply link /x/<code>: page views per IP and per code; replies per IP, per code and in all.
        self.SHORTLINK_RATE_LIMIT = os.environ.get("SHORTLINK_RATE_LIMIT", "60 per minute")
        self.SHORTLINK_CODE_RATE_LIMIT = os.environ.get("SHORTLINK_CODE_RATE_LIMIT", "30 per minute")
        # Unknown reply-link codes looked up from all addresses together; once spent, an address that looked up
        # an unknown code within SHORTLINK_MISS_MEMORY gets 429 (blueprints/shortlinks/guard.py).
        self.SHORTLINK_UNKNOWN_RATE_LIMIT = os.environ.get("SHORTLINK_UNKNOWN_RATE_LIMIT", "300 per minute")
        self.SHORTLINK_MISS_MEMORY = os.environ.get("SHORTLINK_MISS_MEMORY", "1 per 10 minutes")
        self.REPLY_RATE_LIMIT = os.environ.get("REPLY_RATE_LIMIT", "10 per minute;60 per day")
        self.REPLY_CODE_RATE_LIMIT = os.environ.get("REPLY_CODE_RATE_LIMIT", "5 per minute;30 per day")
        self.REPLY_GLOBAL_RATE_LIMIT = os.environ.get("REPLY_GLOBAL_RATE_LIMIT", "600 per minute")
        self.REPLY_FORM_MIN_SECONDS = float(os.environ.get("REPLY_FORM_MIN_SECONDS", 3))

        # Number of reverse proxies in front of the app (1 on Heroku); 0 = trust no X-Forwarded-* header.
        self.PROXY_HOPS = int(os.environ.get("PROXY_HOPS", 1 if production else 0))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", production)
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.PERMANENT_SESSION_LIFETIME = int(os.environ.get("SESSION_LIFETIME_SECONDS", 12 * 3600))
        # The server-side sign-in record decides (services/accounts/sessions.py): unused this long, or this old,
        # a session is over whatever its cookie says.
        self.SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", 12 * 60))
        self.SESSION_MAX_DAYS = int(os.environ.get("SESSION_MAX_DAYS", 30))
        self.WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session

        # The public address links start with; unset in development: the address the app is served on
        # (bulkapp/public_url.py). Production refuses to start without it.
        self.BASE_URL = os.environ.get("BASE_URL", "").strip().rstrip("/") or None
        self.DEFAULT_PRICE_PER_UNIT = os.environ.get("DEFAULT_PRICE_PER_UNIT", "0.80")
        # Send pipeline: how long a reply link (/x/<code>) works, and when a send stuck in "sending" (its worker
        # died) is given up as "unknown" (never resent).
        self.SHORT_LINK_TTL_DAYS = int(os.environ.get("SHORT_LINK_TTL_DAYS", 90))
        # How long a process reuses its count of live reply links (which sets the code length); 0: count each time.
        self.SHORTLINK_COUNT_SECONDS = float(os.environ.get("SHORTLINK_COUNT_SECONDS", 60))
        # How long each web process keeps a reply link's page (business name, expiry, form); 0 turns it off.
        self.SHORTLINK_CACHE_SECONDS = float(os.environ.get("SHORTLINK_CACHE_SECONDS", 30))
        # With Redis: how often a web process adds the reply-link views it counted to Redis (0: at each view).
        self.LINK_CLICK_PUSH_SECONDS = float(os.environ.get("LINK_CLICK_PUSH_SECONDS", 1))
        self.MESSAGE_SENDING_TIMEOUT_SECONDS = int(os.environ.get("MESSAGE_SENDING_TIMEOUT_SECONDS", 900))
        self.DEFAULT_TIMEZONE = os.environ.get("DEFAULT_TIMEZONE", "Africa/Nairobi")
        self.MAX_CONTENT_LENGTH = int(os.environ.get("MAX_UPLOAD_BYTES", 10 * 1024 * 1024))
        # Large contact CSVs wait here for the background import: web and worker must both see this folder.
        self.CONTACT_IMPORT_DIR = os.environ.get("CONTACT_IMPORT_DIR") or str(INSTANCE_DIR / "imports")

        self.MPESA_CALLBACK_TOKEN = os.environ.get("MPESA_CALLBACK_TOKEN") or None
        self.MPESA_ALLOWED_IPS = parse_networks(os.environ.get("MPESA_ALLOWED_IPS", ""))
        self._mpesa(production)
        self.WEBHOOK_ALLOW_PRIVATE_URLS = _bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
        # Platform mail server for notification emails (unset: notifications stay in the app).
        self.MAIL_HOST = os.environ.get("MAIL_HOST") or None
        self.MAIL_PORT = int(os.environ.get("MAIL_PORT", 587))
        self.MAIL_SECURITY = os.environ.get("MAIL_SECURITY", "starttls")
        self.MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
        self.MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
        self.MAIL_FROM = os.environ.get("MAIL_FROM", "Bulkapp <no-reply@bulkapp.local>")
        # Every SQLite transaction takes the write lock up front (see bulkapp/database.py).
        self.SQLITE_BEGIN_IMMEDIATE = True
        self.TESTING = False

    def _mpesa(self, production: bool) -> None:
        """Daraja settings. ``MPESA_ENV=simulated`` (the ``make run`` default; refused in production) runs
        top-ups against an in-process simulated M-Pesa; otherwise, without consumer key and secret, top-ups
        are not available."""
        env = os.environ.get("MPESA_ENV", "sandbox").strip().lower()
        if env not in MPESA_BASE_URLS and env != "simulated":
            raise RuntimeError("MPESA_ENV must be sandbox, production or simulated")
        live = env == "production"
        self.MPESA_ENV = env
        self.MPESA_BASE_URL = (os.environ.get("MPESA_BASE_URL") or MPESA_BASE_URLS.get(env, "")).rstrip("/")
        self.MPESA_CONSUMER_KEY = os.environ.get("MPESA_CONSUMER_KEY") or None
        self.MPESA_CONSUMER_SECRET = os.environ.get("MPESA_CONSUMER_SECRET") or None
        self.MPESA_SHORTCODE = os.environ.get("MPESA_SHORTCODE") or (None if live else SANDBOX_SHORTCODE)
        self.MPESA_PASSKEY = os.environ.get("MPESA_PASSKEY") or (None if live else SANDBOX_PASSKEY)
        if live and not (
            self.MPESA_CONSUMER_KEY and self.MPESA_CONSUMER_SECRET and self.MPESA_SHORTCODE and self.MPESA_PASSKEY
        ):
            raise RuntimeError(
                "MPESA_ENV=production needs MPESA_CONSUMER_KEY, MPESA_CONSUMER_SECRET, MPESA_SHORTCODE "
                "and MPESA_PASSKEY"
            )
        self.MPESA_PAYBILL = os.environ.get("MPESA_PAYBILL") or self.MPESA_SHORTCODE
        # Daraja needs a public https URL for callbacks; unset means BASE_URL (set it behind a tunnel).
        self.MPESA_CALLBACK_BASE_URL = (os.environ.get("MPESA_CALLBACK_BASE_URL") or "").rstrip("/") or None
        self.MPESA_CONNECT_TIMEOUT = float(os.environ.get("MPESA_CONNECT_TIMEOUT", 5))
        self.MPESA_READ_TIMEOUT = float(os.environ.get("MPESA_READ_TIMEOUT", 20))
        self.MPESA_SIMULATED_DELAY_SECONDS = float(os.environ.get("MPESA_SIMULATED_DELAY_SECONDS", 5))
        self.MPESA_RECONCILE_AFTER_SECONDS = int(os.environ.get("MPESA_RECONCILE_AFTER_SECONDS", 180))
        self.MPESA_PENDING_EXPIRY_SECONDS = int(os.environ.get("MPESA_PENDING_EXPIRY_SECONDS", 86400))
        self.TOPUP_MIN_AMOUNT = int(os.environ.get("TOPUP_MIN_AMOUNT", 10))
        self.TOPUP_MAX_AMOUNT = int(os.environ.get("TOPUP_MAX_AMOUNT", 150000))

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k.isupper()}
