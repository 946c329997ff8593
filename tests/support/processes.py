"""Child processes for tests that need the real thing: Dramatiq workers, API nodes, schedulers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class ManagedProcess:
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(args: list[str], env: dict[str, str], name: str) -> tuple[subprocess.Popen[bytes], Path]:
    log_dir = Path(os.environ.get("TEST_LOG_DIR", "/tmp/spotless-test-logs"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{time.time_ns()}.log"
    full_env = {**os.environ, **env, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    handle = log_path.open("wb")
    popen = subprocess.Popen(args, env=full_env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    return popen, log_path


def start_worker(env: dict[str, str], processes: int = 1, threads: int = 4) -> ManagedProcess:
    popen, log = _spawn(
        [str(BIN / "dramatiq"), "workers.worker", "--processes", str(processes), "--threads", str(threads)],
        env,
        "worker",
    )
    return ManagedProcess(popen, log)


def start_scheduler(env: dict[str, str]) -> ManagedProcess:
    popen, log = _spawn([sys.executable, "-m", "workers.scheduler"], env, "scheduler")
    return ManagedProcess(popen, log)


def start_asgi(target: str, env: dict[str, str], *, factory: bool, probe: str, timeout: float = 90) -> ManagedProcess:
    """A uvicorn node on a free loopback port, returned once `probe` answers."""
    port = free_port()
    args = [str(BIN / "uvicorn"), *(["--factory"] if factory else []), target, "--no-proxy-headers"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    popen, log = _spawn(args, env, f"{target.split(':')[0]}-{port}")
    proc = ManagedProcess(popen, log, port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{target} exited early:\n{proc.log()}")
        try:
            with urllib.request.urlopen(f"{proc.base_url}{probe}", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"{target} did not start:\n{proc.log()}")


def start_api(env: dict[str, str], timeout: float = 90) -> ManagedProcess:
    return start_asgi("spotless.app:create_app_from_env", env, factory=True, probe="/healthz", timeout=timeout)
