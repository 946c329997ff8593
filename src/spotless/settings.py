"""Typed settings, built once from the environment and passed in (never read at import)."""

from __future__ import annotations

import builtins
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

import msgspec
from msgspec import Meta

from spotless import photo_settings as photo_config
from spotless import storage_settings as storage_config
from spotless.integration_settings import IntegrationSettings, integration_prod_problems, load_integration_settings
from spotless.messaging_settings import EmailSettings, MessagingConfig, load_messaging_settings, messaging_prod_problems
from spotless.retention_settings import RetentionSettings, load_retention
from spotless.secret_strength import MIN_SECRET_LENGTH, WEAK_SECRETS, secret_weakness
from spotless.stripe_settings import StripeSettings, load_stripe_settings, stripe_prod_problems, stripe_urls
from spotless.webhook_settings import WebhookSettings, load_webhook_settings, webhook_prod_problems

AppEnv = Literal["dev", "test", "prod"]

# Values that must never reach production: defaults from .env.example and obvious placeholders.


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration cannot be used; names the variable."""


def _var(name: str, **bounds: Any) -> Meta:
    """Bounds of a setting and the environment variable it is read from: `load_settings` checks
    every bound with msgspec.convert and names the variable in the error."""
    return Meta(extra={"env": name}, **bounds)


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    # Migrations run as the owner of the tables; the app acts as a role that owns nothing and
    # cannot bypass row-level security (see migrations/versions/0001).
    migration_url: str
    app_role: Annotated[str, _var("DATABASE_APP_ROLE", pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "spotless_app"
    pool_size: Annotated[int, _var("DATABASE_POOL_SIZE", ge=1, le=200)] = 10
    max_overflow: Annotated[int, _var("DATABASE_MAX_OVERFLOW", ge=0, le=200)] = 10
    pool_timeout_seconds: Annotated[float, _var("DATABASE_POOL_TIMEOUT_SECONDS", gt=0, le=300)] = 10.0
    # 0 would switch the server-side limit off: one slow query could then hold a connection forever.
    statement_timeout_ms: Annotated[int, _var("DATABASE_STATEMENT_TIMEOUT_MS", ge=100, le=600_000)] = 15_000
    echo: bool = False


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    # redis://, rediss:// (TLS) or unix://; user and password come from the URL.
    url: str
    socket_timeout_seconds: Annotated[float, _var("REDIS_SOCKET_TIMEOUT_SECONDS", gt=0, le=60)] = 2.0
    # TLS for rediss:// (managed Redis): a CA bundle (else the system's), a client cert and key for mutual TLS.
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_check_hostname: bool = True
    # The circuit breaker shared by every hot-path use of one Redis (lib/circuit.py): after a timeout or
    # connection error, calls go to their fallback for this long, then one PING probe (bounded by the
    # probe timeout) decides whether Redis is back; repeated until it is.
    breaker_cooldown_seconds: Annotated[float, _var("REDIS_BREAKER_COOLDOWN_SECONDS", gt=0, le=300)] = 1.0
    breaker_probe_timeout_ms: Annotated[int, _var("REDIS_BREAKER_PROBE_TIMEOUT_MS", ge=1, le=10_000)] = 250


class JobSettings(msgspec.Struct, frozen=True, kw_only=True):
    heartbeat_required: bool = False
    heartbeat_ttl_seconds: Annotated[int, _var("JOB_HEARTBEAT_TTL_SECONDS", ge=5, le=86_400)] = 180
    tick_interval_seconds: Annotated[int, _var("JOB_TICK_INTERVAL_SECONDS", ge=1, le=3_600)] = 30
    namespace: Annotated[str, _var("JOB_NAMESPACE", min_length=1, max_length=100, pattern=r"^[\w.:-]+$")] = "spotless"
    outbox_relay_interval_seconds: Annotated[float, _var("OUTBOX_RELAY_INTERVAL_SECONDS", gt=0, le=60)] = 1.0
    # A worker silent for this long is dead: broker maintenance (JOB_BROKER_MAINTENANCE_INTERVAL_SECONDS)
    # requeues its in-flight messages. Workers heartbeat several times per timeout, so a live one stays.
    broker_heartbeat_timeout_seconds: Annotated[int, _var("JOB_BROKER_HEARTBEAT_TIMEOUT_SECONDS", ge=5, le=600)] = 15
    broker_maintenance_interval_seconds: Annotated[
        float, _var("JOB_BROKER_MAINTENANCE_INTERVAL_SECONDS", gt=0, le=60)
    ] = 5.0


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = True
    token: str | None = None
    multiproc_dir: str | None = None
    # Workers and the scheduler have no HTTP server of their own: one process per container serves
    # that container's series on this port (0 = off). Same bearer METRICS_TOKEN as the API's.
    process_port: Annotated[int, _var("METRICS_PROCESS_PORT", ge=0, le=65535)] = 9191


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    secret_key: str
    access_token_ttl_minutes: Annotated[int, _var("AUTH_ACCESS_TOKEN_TTL_MINUTES", ge=1, le=24 * 60)] = 15
    session_ttl_minutes: Annotated[int, _var("AUTH_SESSION_TTL_MINUTES", ge=5, le=60 * 24 * 366)] = 60 * 24 * 30
    refresh_token_ttl_minutes: Annotated[int, _var("AUTH_REFRESH_TOKEN_TTL_MINUTES", ge=5, le=60 * 24 * 366)] = (
        60 * 24 * 14
    )
    # Identity (issue 3): argon2id cost, password policy, sign-in throttling, reset tokens.
    argon2_time_cost: Annotated[int, _var("AUTH_ARGON2_TIME_COST", ge=1, le=20)] = 3
    argon2_memory_kib: Annotated[int, _var("AUTH_ARGON2_MEMORY_KIB", ge=1_024, le=4_194_304)] = 65_536
    argon2_parallelism: Annotated[int, _var("AUTH_ARGON2_PARALLELISM", ge=1, le=64)] = 4
    password_min_length: Annotated[int, _var("AUTH_PASSWORD_MIN_LENGTH", ge=8, le=128)] = 10
    login_max_failures: Annotated[int, _var("AUTH_LOGIN_MAX_FAILURES", ge=1, le=1_000)] = 5
    login_max_failures_per_ip: Annotated[int, _var("AUTH_LOGIN_MAX_FAILURES_PER_IP", ge=1, le=1_000_000)] = 50
    # From all addresses together (issue 9): a generous ceiling; the per-(account, address) budget is the tight one.
    login_max_failures_per_account: Annotated[int, _var("AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT", ge=1, le=1_000_000)] = (
        100
    )
    login_lockout_seconds: Annotated[int, _var("AUTH_LOGIN_LOCKOUT_SECONDS", ge=1, le=86_400)] = 900
    password_reset_ttl_minutes: Annotated[int, _var("AUTH_PASSWORD_RESET_TTL_MINUTES", ge=5, le=24 * 60)] = 30
    password_reset_url: Annotated[str, _var("AUTH_PASSWORD_RESET_URL", pattern=r"^https?://[^\s]+$")] = (
        "http://localhost:3000/reset-password"
    )
    invitation_ttl_hours: Annotated[int, _var("AUTH_INVITATION_TTL_HOURS", ge=1, le=24 * 90)] = 168
    invitation_url: Annotated[str, _var("AUTH_INVITATION_URL", pattern=r"^https?://[^\s]+$")] = (
        "http://localhost:3000/invitations"
    )
    session_check_timeout_ms: Annotated[int, _var("AUTH_SESSION_CHECK_TIMEOUT_MS", ge=1, le=10_000)] = 250


class RateLimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = True
    # A class's limit of 0 switches that class off; burst 0 means the whole minute's quota at once.
    per_minute: Annotated[int, _var("RATE_LIMIT_PER_MINUTE", ge=0, le=1_000_000)] = 120
    burst: Annotated[int, _var("RATE_LIMIT_BURST", ge=0, le=1_000_000)] = 30
    auth_per_minute: Annotated[int, _var("AUTH_RATE_LIMIT_PER_MINUTE", ge=0, le=1_000_000)] = 10
    admin_action_per_minute: Annotated[int, _var("ADMIN_ACTION_RATE_LIMIT_PER_MINUTE", ge=0, le=1_000_000)] = 30
    public_per_minute: Annotated[int, _var("PUBLIC_RATE_LIMIT_PER_MINUTE", ge=0, le=1_000_000)] = 30
    expensive_per_minute: Annotated[int, _var("EXPENSIVE_RATE_LIMIT_PER_MINUTE", ge=0, le=1_000_000)] = 5
    cleanup_minutes: Annotated[int, _var("RATE_LIMIT_CLEANUP_MINUTES", ge=1, le=24 * 60)] = 5
    redis_timeout_ms: Annotated[int, _var("RATE_LIMIT_REDIS_TIMEOUT_MS", ge=1, le=5_000)] = 50
    # Superseded by REDIS_BREAKER_COOLDOWN_SECONDS (its default when that is unset).
    redis_retry_seconds: Annotated[float, _var("RATE_LIMIT_REDIS_RETRY_SECONDS", gt=0, le=300)] = 1.0
    # A Redis of its own for the counters if set; REDIS_URL otherwise.
    redis_url: str | None = None


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, _var("PORT", ge=1, le=65_535)] = 8000
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ("*",)
    max_body_bytes: Annotated[int, _var("MAX_REQUEST_BODY_BYTES", ge=512, le=1_073_741_824)] = 1_048_576
    trust_proxy_headers: bool = False
    trusted_proxy_ips: tuple[str, ...] = ()
    trusted_proxy_cidrs: tuple[str, ...] = ()
    # The one header our trusted proxies write: honouring a second one would let clients forge it.
    trusted_proxy_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    strict_cors: bool = False


class SchedulingConfig(msgspec.Struct, frozen=True, kw_only=True):
    # Recurring series are materialised as bookings this many days ahead.
    horizon_days: Annotated[int, _var("SCHEDULING_HORIZON_DAYS", ge=1, le=731)] = 60
    materialise_interval_seconds: Annotated[int, _var("SCHEDULING_MATERIALISE_INTERVAL_SECONDS", ge=1, le=86_400)] = (
        3600
    )
    # Availability answers at most this many local days per request.
    max_availability_days: Annotated[int, _var("SCHEDULING_MAX_AVAILABILITY_DAYS", ge=1, le=366)] = 31
    # Finishing more than this percentage over the planned minutes requires a reason.
    overrun_percent: Annotated[int, _var("SCHEDULING_OVERRUN_PERCENT", ge=0, le=1_000)] = 20


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
    stripe: StripeSettings = msgspec.field(default_factory=StripeSettings)
    messaging: MessagingConfig = msgspec.field(default_factory=MessagingConfig)
    storage: storage_config.StorageSettings = msgspec.field(default_factory=storage_config.StorageSettings)
    exports: storage_config.ExportSettings = msgspec.field(default_factory=storage_config.ExportSettings)
    webhooks: WebhookSettings = msgspec.field(default_factory=WebhookSettings)
    photos: photo_config.PhotoSettings = msgspec.field(default_factory=photo_config.PhotoSettings)
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)
    integrations: IntegrationSettings = msgspec.field(default_factory=IntegrationSettings)

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
            process_port=env.int("METRICS_PROCESS_PORT", 9191),
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
            login_max_failures_per_account=env.int("AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT", 100),
            login_lockout_seconds=env.int("AUTH_LOGIN_LOCKOUT_SECONDS", 900),
            password_reset_ttl_minutes=env.int("AUTH_PASSWORD_RESET_TTL_MINUTES", 30),
            password_reset_url=env.str("AUTH_PASSWORD_RESET_URL", "http://localhost:3000/reset-password")
            or "http://localhost:3000/reset-password",
            invitation_ttl_hours=env.int("AUTH_INVITATION_TTL_HOURS", 168),
            invitation_url=env.str("AUTH_INVITATION_URL", "http://localhost:3000/invitations")
            or "http://localhost:3000/invitations",
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
            sendgrid_api_key=env.str("SENDGRID_API_KEY"),
            sendgrid_host=env.str("SENDGRID_SMTP_HOST", "smtp.sendgrid.net") or "smtp.sendgrid.net",
            max_attempts=env.int("EMAIL_MAX_ATTEMPTS", 8),
            retry_backoff_seconds=env.float("EMAIL_RETRY_BACKOFF_SECONDS", 30.0),
            retry_backoff_max_seconds=env.float("EMAIL_RETRY_BACKOFF_MAX_SECONDS", 3_600.0),
        ),
        "messaging": load_messaging_settings(env, is_prod),
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
        "stripe": load_stripe_settings(env, is_prod),
        "webhooks": load_webhook_settings(env, is_prod),
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
    values["storage"], values["exports"] = storage_config.load_storage_settings(env), storage_config.load_export(env)
    values["photos"] = photo_config.load_photo_settings(env)
    values["retention"] = load_retention(env)
    values["integrations"] = load_integration_settings(env, is_prod)
    _check_redis_tls(values["redis"], values["rate_limit"].redis_url)
    if (is_prod or values["http"].strict_cors) and "*" in values["http"].cors_origins:
        raise ConfigError("CORS_ORIGINS must list explicit origins in prod (or with STRICT_CORS), not '*'")
    settings = _validated(Settings(**values))
    if is_prod:
        problems = prod_problems(settings, allow_loopback=set(env.csv("ALLOW_LOOPBACK_URLS")))
        if problems:
            # All at once: an operator fixes the whole list in one deploy, not one per restart.
            raise ConfigError("refusing to start in prod:\n- " + "\n- ".join(problems))
    return settings


# --- validation ---------------------------------------------------------------------------------

_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def _validated(settings: Settings) -> Settings:
    """Check every bound declared with `_var` (the Structs' constructors do not validate: only
    msgspec.convert does), naming the variable the bad value came from."""
    raw = msgspec.to_builtins(settings)
    try:
        return msgspec.convert(raw, Settings)
    except msgspec.ValidationError as exc:
        found = _AT_PATH.match(str(exc))
        message = found.group("message") if found else str(exc)
        path = (found.group("path") or "").lstrip(".") if found else ""
        name, value = _variable_at(path, raw)
        raise ConfigError(f"{name}: {message}, got {value!r}") from None


def _variable_at(path: str, raw: Any) -> tuple[str, Any]:
    """The environment variable and raw value behind a msgspec error path such as
    `database.statement_timeout_ms` (the field's path when no variable is declared)."""
    info: Any = msgspec.inspect.type_info(Settings)
    value = raw
    name = path or "settings"
    for part in path.split(".") if path else ():
        value = value.get(part) if isinstance(value, dict) else None
        fields = {f.name: f for f in getattr(info, "fields", ())}
        field = fields.get(part)
        if field is None:
            break
        info = field.type
        if isinstance(info, msgspec.inspect.Metadata) and info.extra and "env" in info.extra:
            name = info.extra["env"]
    return name, value


# --- production rules ---------------------------------------------------------------------------

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_local_host(host: str) -> bool:
    """Loopback, unspecified (0.0.0.0) or a Unix socket: only this machine can answer there."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if not host or host.startswith("/") or host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _url_hosts(url: str) -> list[str]:
    """Every host a URL names: libpq allows several (`h1:5432,h2:5432`) and `?host=` overrides them."""
    parts = urlsplit(url)
    query_hosts = [h for value in parse_qs(parts.query).get("host", []) for h in value.split(",")]
    if query_hosts:
        return query_hosts
    netloc = parts.netloc.rpartition("@")[2]
    hosts = []
    for item in netloc.split(","):
        if item.startswith("["):
            hosts.append(item[1 : item.find("]")])
        else:
            hosts.append(item.rsplit(":", 1)[0] if item.count(":") == 1 else item)
    return hosts


def _is_local_url(url: str) -> bool:
    return any(_is_local_host(h) for h in _url_hosts(url))


_HOW_TO_GENERATE = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def prod_problems(settings: Settings, *, allow_loopback: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Everything that makes `settings` unfit for production, each naming its variable.
    `allow_loopback` lists variables that deliberately point at this machine (ALLOW_LOOPBACK_URLS,
    e.g. DATABASE_URL behind a cloud-sql-proxy sidecar)."""
    problems: list[str] = []

    def secret(name: str, value: str | None, min_length: int = MIN_SECRET_LENGTH) -> None:
        weakness = secret_weakness(value or "", min_length)
        if weakness:
            problems.append(f"{name} {weakness}; {_HOW_TO_GENERATE}")

    secret("AUTH_SECRET_KEY", settings.auth.secret_key)
    problems.extend(stripe_prod_problems(settings.stripe, secret_weakness))
    problems.extend(webhook_prod_problems(settings.webhooks, secret_weakness))
    if settings.metrics.enabled:
        if not settings.metrics.token:
            problems.append("METRICS_TOKEN is required in prod while METRICS_ENABLED=true (/metrics would be public)")
        else:
            secret("METRICS_TOKEN", settings.metrics.token, min_length=16)
    email = settings.email
    if email.mode == "log":
        problems.append("EMAIL_MODE=log writes emails (reset links included) to the logs; use smtp (or off) in prod")
    problems.extend(
        messaging_prod_problems(
            settings.messaging, sendgrid_key_missing=email.mode == "sendgrid" and not email.sendgrid_api_key
        )
    )
    if email.mode == "smtp":
        if email.smtp_username and not email.smtp_password:
            problems.append("SMTP_PASSWORD is required in prod when SMTP_USERNAME is set")
        elif email.smtp_password and email.smtp_password.strip().lower() in WEAK_SECRETS:
            problems.append("SMTP_PASSWORD is a known placeholder")
        if _is_local_host(email.smtp_host) and "SMTP_HOST" not in allow_loopback:
            problems.append(f"SMTP_HOST points at this machine ({email.smtp_host}); set the mail relay's address")
    urls = {
        "DATABASE_URL": settings.database.url,
        "DATABASE_MIGRATION_URL": settings.database.migration_url,
        "REDIS_URL": settings.redis.url,
        "RATE_LIMIT_REDIS_URL": settings.rate_limit.redis_url,
        "AUTH_PASSWORD_RESET_URL": settings.auth.password_reset_url,
        "AUTH_INVITATION_URL": settings.auth.invitation_url,
        **stripe_urls(settings.stripe),
    }
    for name, url in urls.items():
        if url and name not in allow_loopback and _is_local_url(url):
            problems.append(
                f"{name} points at this machine (localhost, loopback or a local socket); in prod it must name "
                f"the service's host (list {name} in ALLOW_LOOPBACK_URLS if a local sidecar proxy is intended)"
            )
    problems.extend(storage_config.prod_problems(settings.storage, secret_weakness, _is_local_url, allow_loopback))
    problems.extend(integration_prod_problems(settings.integrations, secret_weakness, _is_local_url, allow_loopback))
    if "*" in settings.http.allowed_hosts:
        problems.append("ALLOWED_HOSTS must list the API's host names in prod, not '*'")
    return problems


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


def _email_mode(value: str) -> Literal["smtp", "sendgrid", "log", "off"]:
    if value not in ("smtp", "sendgrid", "log", "off"):
        raise ConfigError(f"EMAIL_MODE must be one of smtp, sendgrid, log, off, got {value!r}")
    return value  # type: ignore[return-value]
