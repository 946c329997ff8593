"""A failing SQL statement never writes its values (emails, hashes) to the logs."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import text

from spotless.db.engine import create_engine
from spotless.lib.logging import JsonFormatter

EMAIL = "victim.person@example.com"

# Raw SQL: the failing statements and their parameter values are the subject of these tests.
FAILING = {
    # The server's DETAIL line quotes the duplicate key.
    "unique violation": [
        ("CREATE TEMP TABLE probe (email text UNIQUE)", {}),
        ("INSERT INTO probe VALUES (:email), (:email)", {"email": EMAIL}),
    ],
    # The server's primary message quotes the bad input.
    "server-side bad input": [("SELECT CAST(CAST(:email AS text) AS integer)", {"email": EMAIL})],
    # asyncpg's own encoding error quotes the argument.
    "driver-side bad input": [("SELECT CAST(:email AS integer)", {"email": EMAIL})],
}


@pytest.fixture
def log_output():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("spotless.errors")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("case", sorted(FAILING))
async def test_a_failing_statement_logs_no_parameter_values(settings, log_output, case: str) -> None:
    engine = create_engine(settings.database, application_name="log-test")
    assert engine.sync_engine.hide_parameters is True
    try:
        with pytest.raises(Exception) as caught:
            async with engine.connect() as conn:
                for sql, params in FAILING[case]:
                    await conn.execute(text(sql), params)
    finally:
        await engine.dispose()
    # The engine's own text lists no parameters (its message may still quote a bad value: below).
    assert "SQL parameters hidden" in str(caught.value)
    logger = logging.getLogger("spotless.errors")
    # The two ways code logs an error: with the traceback (lib/errors.py), and as a message argument.
    logger.error("unhandled error", exc_info=caught.value)
    logger.error("job failed: %s", caught.value)
    logger.error(caught.value)
    written = log_output.getvalue()
    assert written.count("\n") == 3
    assert EMAIL not in written
    assert "victim.person" not in written
    # Still diagnosable: the SQLSTATE (or the driver's error class) and the statement.
    assert "sqlstate=" in written and "[SQL: " in written
