"""Identity metrics (shared multiprocess registry, like lib/metrics)."""

from __future__ import annotations

from prometheus_client import Counter

SESSION_CHECKS = Counter(
    "auth_session_checks_total", "Per-request session checks by where they were answered", ["source"]
)
LOGIN_ATTEMPTS = Counter("auth_login_attempts_total", "Sign-in attempts by outcome", ["outcome"])
REFRESH_REUSE = Counter("auth_refresh_reuse_total", "Already-used refresh tokens presented (session revoked)")
