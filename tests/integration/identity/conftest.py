from tests.support.smtp import smtp_server  # noqa: F401 (fixture for the password-reset tests)
