from tests.support.smtp import smtp_server  # noqa: F401 (fixture for the password-reset tests)
from tests.support.smtp_refusing import refusing_smtp  # noqa: F401 (fixture: a 451 retry of a reset email)
