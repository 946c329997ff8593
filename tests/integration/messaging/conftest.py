"""Messaging's fixtures: an SMTP server (and one that can refuse), a fake of Twilio; every context's jobs
and message kinds loaded (a kind must be declared before its deliveries run)."""

from spotless.domain import registry
from tests.support.fake_twilio import fake_twilio  # noqa: F401 (fixture)
from tests.support.smtp import smtp_server  # noqa: F401 (fixture)
from tests.support.smtp_refusing import refusing_smtp  # noqa: F401 (fixture)

registry.import_jobs()
