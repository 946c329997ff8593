"""Typed settings, built once from the environment and passed in (never read at import)."""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

AppEnv = Literal["dev", "test", "prod"]

# Values that must never reach production: defaults from .env.example and obvious placeholders.
_WEAK_SECRETS = {
    "",
    "change-me",
    "changeme",
    "secret",
    "dev-secret",
    "dev-insecure-secret-change-me-0123456789",
    "test",
}
_MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration cannot be used; names the variable."""


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    # Migrations run as the owner of the tables; the app acts as a role that owns nothing and
    # cannot bypass row-level security (see migrations/versions/0001).
    migration_url: str
    app_role: str = "spotless_app"
    pool_size: int = 10
    max_overflow: int = 10
    pool_timeout_seconds: float = 10.0
    statement_timeout_ms: int = 15_000
    echo: bool = False


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    # redis://, rediss:// (TLS) or unix://; user and password come from the URL.
    url: str
    socket_timeout_seconds: float = 2.0
    # TLS for rediss:// URLs (managed Redis): a CA bundle to verify the server with (else the
    # system's), and a client certificate and key when the server asks for one (mutual TLS).
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_check_hostname: bool = True
    # The circuit breaker shared by every hot-path use of one Redis (lib/circuit.py): after a
    # timeout or connection error, calls go to their fallback for this long, then one PING probe
    # (bounded by the probe timeout) decides whether Redis is back; repeated until it is.
    breaker_cooldown_seconds: float = 1.0
    breaker_probe_timeout_ms: int = 250


class JobSettings(msgspec.Struct, frozen=True, kw_only=True):
    heartbeat_required: bool = False
    heartbeat_ttl_seconds: int = 180
    tick_interval_seconds: int = 30
    namespace: str = "spotless"
    outbox_relay_interval_seconds: float = 1.0


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = True
    token: str | None = None
    multiproc_dir: str | None = None


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    secret_key: str
    access_token_ttl_minutes: int = 15
    session_ttl_minutes: int = 60 * 24 * 30
    refresh_token_ttl_minutes: int = 60 * 24 * 14
    # Identity (issue 3): argon2id cost, password policy, sign-in throttling, reset tokens.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65_536
    argon2_parallelism: int = 4
    password_min_length: int = 10
    login_max_failures: int = 5
    login_max_failures_per_ip: int = 50
    login_lockout_seconds: int = 900
    password_reset_ttl_minutes: int = 30
    password_reset_url: str = "http://localhost:3000/reset-password"
    session_check_timeout_ms: int = 250


class EmailSettings(msgspec.Struct, frozen=True, kw_only=True):
    mode: Literal["smtp", "log", "off"] = "log"
    from_address: str = "no-reply@spotless.local"
    from_name: str = "Spotless"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    # Put temporary passwords in the onboarding/reset emails (else the email only notifies).
    temp_passwords: bool = False


class RateLimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = True
    per_minute: int = 120
    burst: int = 30
    auth_per_minute: int = 10
    admin_action_per_minute: int = 30
    public_per_minute: int = 30
    expensive_per_minute: int = 5
    cleanup_minutes: int = 5
    redis_timeout_ms: int = 50
    # Superseded by REDIS_BREAKER_COOLDOWN_SECONDS (its default when that is unset).
    redis_retry_seconds: float = 1.0
    # A Redis of its own for the counters if set; REDIS_URL otherwise.
    redis_url: str | None = None


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ("*",)
    max_body_bytes: int = 1_048_576
    trust_proxy_headers: bool = False
    trusted_proxy_ips: tuple[str, ...] = ()
    trusted_proxy_cidrs: tuple[str, ...] = ()
    # The one header our trusted proxies write: honouring a second one would let clients forge it.
    trusted_proxy_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    strict_cors: bool = False


class SchedulingConfig(msgspec.Struct, frozen=True, kw_only=True):
    # Recurring series are materialised as bookings this many days ahead.
    horizon_days: int = 60
    materialise_interval_seconds: int = 3600
    # Availability answers at most this many local days per request.
    max_availability_days: int = 31
    # Finishing more than this percentage over the planned minutes requires a reason.
    overrun_percent: int = 20


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    app_env: AppEnv = "dev"
    log_level: str = "INFO"
    database: DatabaseSettings
    redis: RedisSettings
    jobs: JobSettings = msgspec.field(default_factory=JobSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    auth: AuthSettings
    email: EmailSettings = msgspec.field(default_factory=EmailSettings)
    rate_limit: RateLimitSettings = msgspec.field(default_factory=RateLimitSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    scheduling: SchedulingConfig = msgspec.field(default_factory=SchedulingConfig)

    @property
    def is_prod(self) -> bool:
        return self.app_env == "prod"


def normalize_database_url(url: str) -> str:
    """Accept the plain libpq form operators paste (postgresql://, postgres://) and use asyncpg."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ConfigError(f"DATABASE_URL must be a PostgreSQL URL (postgresql://...), got scheme of {url[:20]!r}")


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def _float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


class _Env:
    def __init__(self, environ: Mapping[builtins.str, builtins.str]) -> None:
        self.environ = environ

    def str(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str | None:
        value = self.environ.get(name)
        return default if value is None or value == "" else value

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.environ.get(name)
        return default if value is None else _bool(value, name)

    def int(self, name: builtins.str, default: builtins.int) -> builtins.int:
        value = self.environ.get(name)
        return default if value is None or value == "" else _int(value, name)

    def float(self, name: builtins.str, default: builtins.float) -> builtins.float:
        value = self.environ.get(name)
        return default if value is None or value == "" else _float(value, name)

    def csv(self, name: builtins.str, default: tuple[builtins.str, ...] = ()) -> tuple[builtins.str, ...]:
        value = self.environ.get(name)
        return default if value is None else _csv(value)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment; in prod, refuse missing or weak secrets by name."""
    env = _Env(os.environ if environ is None else environ)
    app_env = env.str("APP_ENV", "dev") or "dev"
    if app_env not in ("dev", "test", "prod"):
        raise ConfigError(f"APP_ENV must be one of dev, test, prod, got {app_env!r}")
    is_prod = app_env == "prod"

    database_url = env.str("DATABASE_URL")
    if not database_url:
        raise ConfigError("DATABASE_URL is required (postgresql://user:pass@host:5432/db)")
    redis_url = env.str("REDIS_URL")
    if not redis_url:
        raise ConfigError("REDIS_URL is required (redis://host:6379/0)")
    secret = env.str("AUTH_SECRET_KEY", "" if is_prod else "dev-insecure-secret-change-me-0123456789") or ""
    if is_prod:
        _require_strong("AUTH_SECRET_KEY", secret)
        metrics_token = env.str("METRICS_TOKEN")
        if env.bool("METRICS_ENABLED", True) and metrics_token is not None:
            _require_strong("METRICS_TOKEN", metrics_token, min_length=16)
        if env.str("EMAIL_MODE", "log") == "smtp" and env.str("SMTP_USERNAME") and not env.str("SMTP_PASSWORD"):
            raise ConfigError("SMTP_PASSWORD is required in prod when SMTP_USERNAME is set")

    app_url = normalize_database_url(database_url)
    values: dict[str, Any] = {
        "app_env": app_env,
        "log_level": (env.str("LOG_LEVEL", "INFO") or "INFO").upper(),
        "database": DatabaseSettings(
            url=app_url,
            migration_url=normalize_database_url(env.str("DATABASE_MIGRATION_URL") or database_url),
            app_role=env.str("DATABASE_APP_ROLE", "spotless_app") or "spotless_app",
            pool_size=env.int("DATABASE_POOL_SIZE", 10),
            max_overflow=env.int("DATABASE_MAX_OVERFLOW", 10),
            pool_timeout_seconds=env.float("DATABASE_POOL_TIMEOUT_SECONDS", 10.0),
            statement_timeout_ms=env.int("DATABASE_STATEMENT_TIMEOUT_MS", 15_000),
            echo=env.bool("DATABASE_ECHO", False),
        ),
        "redis": RedisSettings(
            url=redis_url,
            socket_timeout_seconds=env.float("REDIS_SOCKET_TIMEOUT_SECONDS", 2.0),
            tls_ca_file=env.str("REDIS_TLS_CA_FILE"),
            tls_cert_file=env.str("REDIS_TLS_CERT_FILE"),
            tls_key_file=env.str("REDIS_TLS_KEY_FILE"),
            tls_check_hostname=env.bool("REDIS_TLS_CHECK_HOSTNAME", True),
            # RATE_LIMIT_REDIS_RETRY_SECONDS was the limiter's own probe interval before the breaker.
            breaker_cooldown_seconds=env.float(
                "REDIS_BREAKER_COOLDOWN_SECONDS", env.float("RATE_LIMIT_REDIS_RETRY_SECONDS", 1.0)
            ),
            breaker_probe_timeout_ms=env.int("REDIS_BREAKER_PROBE_TIMEOUT_MS", 250),
        ),
        "jobs": JobSettings(
            heartbeat_required=env.bool("JOB_HEARTBEAT_REQUIRED", False),
            heartbeat_ttl_seconds=env.int("JOB_HEARTBEAT_TTL_SECONDS", 180),
            tick_interval_seconds=env.int("JOB_TICK_INTERVAL_SECONDS", 30),
            namespace=env.str("JOB_NAMESPACE", "spotless") or "spotless",
            outbox_relay_interval_seconds=env.float("OUTBOX_RELAY_INTERVAL_SECONDS", 1.0),
        ),
        "metrics": MetricsSettings(
            enabled=env.bool("METRICS_ENABLED", True),
            token=env.str("METRICS_TOKEN"),
            multiproc_dir=env.str("PROMETHEUS_MULTIPROC_DIR"),
        ),
        "auth": AuthSettings(
            secret_key=secret,
            access_token_ttl_minutes=env.int("AUTH_ACCESS_TOKEN_TTL_MINUTES", 15),
            session_ttl_minutes=env.int("AUTH_SESSION_TTL_MINUTES", 60 * 24 * 30),
            refresh_token_ttl_minutes=env.int("AUTH_REFRESH_TOKEN_TTL_MINUTES", 60 * 24 * 14),
            argon2_time_cost=env.int("AUTH_ARGON2_TIME_COST", 3),
            argon2_memory_kib=env.int("AUTH_ARGON2_MEMORY_KIB", 65_536),
            argon2_parallelism=env.int("AUTH_ARGON2_PARALLELISM", 4),
            password_min_length=env.int("AUTH_PASSWORD_MIN_LENGTH", 10),
            login_max_failures=env.int("AUTH_LOGIN_MAX_FAILURES", 5),
            login_max_failures_per_ip=env.int("AUTH_LOGIN_MAX_FAILURES_PER_IP", 50),
            login_lockout_seconds=env.int("AUTH_LOGIN_LOCKOUT_SECONDS", 900),
            password_reset_ttl_minutes=env.int("AUTH_PASSWORD_RESET_TTL_MINUTES", 30),
            password_reset_url=env.str("AUTH_PASSWORD_RESET_URL", "http://localhost:3000/reset-password")
            or "http://localhost:3000/reset-password",
            session_check_timeout_ms=env.int("AUTH_SESSION_CHECK_TIMEOUT_MS", 250),
        ),
        "email": EmailSettings(
            mode=_email_mode(env.str("EMAIL_MODE", "log") or "log"),
            from_address=env.str("EMAIL_FROM", "no-reply@spotless.local") or "no-reply@spotless.local",
            from_name=env.str("EMAIL_FROM_NAME", "Spotless") or "Spotless",
            smtp_host=env.str("SMTP_HOST", "127.0.0.1") or "127.0.0.1",
            smtp_port=env.int("SMTP_PORT", 25),
            smtp_username=env.str("SMTP_USERNAME"),
            smtp_password=env.str("SMTP_PASSWORD"),
            smtp_starttls=env.bool("SMTP_STARTTLS", False),
            smtp_timeout_seconds=env.float("SMTP_TIMEOUT_SECONDS", 10.0),
            temp_passwords=env.bool("EMAIL_TEMP_PASSWORDS", False),
        ),
        "rate_limit": RateLimitSettings(
            enabled=env.bool("RATE_LIMIT_ENABLED", True),
            per_minute=env.int("RATE_LIMIT_PER_MINUTE", 120),
            burst=env.int("RATE_LIMIT_BURST", 30),
            auth_per_minute=env.int("AUTH_RATE_LIMIT_PER_MINUTE", 10),
            admin_action_per_minute=env.int("ADMIN_ACTION_RATE_LIMIT_PER_MINUTE", 30),
            public_per_minute=env.int("PUBLIC_RATE_LIMIT_PER_MINUTE", 30),
            expensive_per_minute=env.int("EXPENSIVE_RATE_LIMIT_PER_MINUTE", 5),
            cleanup_minutes=env.int("RATE_LIMIT_CLEANUP_MINUTES", 5),
            redis_timeout_ms=env.int("RATE_LIMIT_REDIS_TIMEOUT_MS", 50),
            redis_retry_seconds=env.float("RATE_LIMIT_REDIS_RETRY_SECONDS", 1.0),
            redis_url=env.str("RATE_LIMIT_REDIS_URL"),
        ),
        "scheduling": SchedulingConfig(
            horizon_days=env.int("SCHEDULING_HORIZON_DAYS", 60),
            materialise_interval_seconds=env.int("SCHEDULING_MATERIALISE_INTERVAL_SECONDS", 3600),
            max_availability_days=env.int("SCHEDULING_MAX_AVAILABILITY_DAYS", 31),
            overrun_percent=env.int("SCHEDULING_OVERRUN_PERCENT", 20),
        ),
        "http": HttpSettings(
            host=env.str("HOST", "127.0.0.1") or "127.0.0.1",
            port=env.int("PORT", 8000),
            cors_origins=env.csv("CORS_ORIGINS"),
            allowed_hosts=env.csv("ALLOWED_HOSTS", ("*",)),
            max_body_bytes=env.int("MAX_REQUEST_BODY_BYTES", 1_048_576),
            trust_proxy_headers=env.bool("TRUST_PROXY_HEADERS", False),
            trusted_proxy_ips=env.csv("TRUSTED_PROXY_IPS"),
            trusted_proxy_cidrs=env.csv("TRUSTED_PROXY_CIDRS"),
            trusted_proxy_header=_proxy_header(env.str("TRUSTED_PROXY_HEADER", "x-forwarded-for") or ""),
            strict_cors=env.bool("STRICT_CORS", is_prod),
        ),
    }
    _check_redis_tls(values["redis"], values["rate_limit"].redis_url)
    if (is_prod or values["http"].strict_cors) and "*" in values["http"].cors_origins:
        raise ConfigError("CORS_ORIGINS must list explicit origins in prod (or with STRICT_CORS), not '*'")
    return Settings(**values)


def _check_redis_tls(redis: RedisSettings, rate_limit_url: str | None) -> None:
    """TLS files that would be silently unused, or that cannot be read, stop start-up."""
    files = {
        "REDIS_TLS_CA_FILE": redis.tls_ca_file,
        "REDIS_TLS_CERT_FILE": redis.tls_cert_file,
        "REDIS_TLS_KEY_FILE": redis.tls_key_file,
    }
    named = {name: path for name, path in files.items() if path}
    urls = [redis.url, *([rate_limit_url] if rate_limit_url else [])]
    if named and not any(url.startswith("rediss://") for url in urls):
        raise ConfigError(f"{', '.join(named)} set but REDIS_URL is not a rediss:// (TLS) URL")
    if redis.tls_key_file and not redis.tls_cert_file:
        raise ConfigError("REDIS_TLS_KEY_FILE is set without REDIS_TLS_CERT_FILE")
    for name, path in named.items():
        if not os.path.isfile(path):
            raise ConfigError(f"{name} does not name a readable file: {path!r}")


def _proxy_header(value: str) -> Literal["x-forwarded-for", "forwarded"]:
    lowered = value.strip().lower()
    if lowered not in ("x-forwarded-for", "forwarded"):
        raise ConfigError(f"TRUSTED_PROXY_HEADER must be x-forwarded-for or forwarded, got {value!r}")
    return lowered  # type: ignore[return-value]


def _email_mode(value: str) -> Literal["smtp", "log", "off"]:
    if value not in ("smtp", "log", "off"):
        raise ConfigError(f"EMAIL_MODE must be one of smtp, log, off, got {value!r}")
    return value  # type: ignore[return-value]


def _require_strong(name: str, value: str, min_length: int = _MIN_SECRET_LENGTH) -> None:
    if value.strip().lower() in _WEAK_SECRETS:
        raise ConfigError(f"{name} is missing or a known placeholder; set a strong random value in prod")
    if len(value) < min_length:
        raise ConfigError(f"{name} is too weak: at least {min_length} characters are required in prod")
