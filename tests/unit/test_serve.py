"""`python -m spotless.serve` (`just api`, the image): one switch for the server, workers = cores."""

from __future__ import annotations

import pytest

from spotless.serve import DEFAULT_SERVER, FACTORY, command, cores


def test_default_server_runs_the_factory_with_one_worker_per_core() -> None:
    argv = command({})
    assert argv[0] == DEFAULT_SERVER == "granian"
    assert FACTORY in argv and "--factory" in argv
    assert argv[argv.index("--workers") + 1] == str(cores())
    assert argv[argv.index("--host") + 1] == "0.0.0.0" and argv[argv.index("--port") + 1] == "8000"
    assert "--no-access-log" in argv and argv[argv.index("--loop") + 1] == "uvloop"


def test_uvicorn_uses_uvloop_httptools_and_leaves_proxy_headers_and_access_log_to_the_app() -> None:
    argv = command({"API_SERVER": "uvicorn", "HOST": "127.0.0.1", "PORT": "9000", "WEB_CONCURRENCY": "3"})
    assert argv[:3] == ["uvicorn", "--factory", FACTORY]
    assert argv[argv.index("--loop") + 1] == "uvloop" and argv[argv.index("--http") + 1] == "httptools"
    assert {"--no-access-log", "--no-proxy-headers"} <= set(argv)
    assert argv[argv.index("--workers") + 1] == "3" and argv[argv.index("--port") + 1] == "9000"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"API_SERVER": "gunicorn"}, "API_SERVER"),
        ({"WEB_CONCURRENCY": "many"}, "WEB_CONCURRENCY"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
    ],
)
def test_a_bad_value_stops_the_start_with_its_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        command(env)
