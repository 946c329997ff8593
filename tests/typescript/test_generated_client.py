"""The apps generate their clients from our OpenAPI (openapi-typescript): a client that reads the fields
a response always carries, without null checks, type-checks against the types generated from the
snapshot (tests/snapshots/openapi.json, which test_openapi.py keeps equal to what the code serves).

Node tools come from `package.json` and its lock here (`npm ci`; .ci/run installs them first)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SNAPSHOT = HERE.parent / "snapshots" / "openapi.json"
BIN = HERE / "node_modules" / ".bin"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def node_tools() -> Path:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot generate TypeScript types from the OpenAPI")
    if not (BIN / "tsc").exists() or not (BIN / "openapi-typescript").exists():
        installed = _run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], HERE)
        assert installed.returncode == 0, installed.stdout + installed.stderr
    return BIN


def test_a_client_reads_always_present_fields_without_null_checks(node_tools: Path, tmp_path: Path) -> None:
    for name in ("client.ts", "tsconfig.json"):
        shutil.copy(HERE / name, tmp_path / name)
    generated = _run(
        [str(node_tools / "openapi-typescript"), str(SNAPSHOT), "-o", str(tmp_path / "generated" / "openapi.ts")],
        tmp_path,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    checked = _run([str(node_tools / "tsc"), "-p", str(tmp_path / "tsconfig.json")], tmp_path)
    assert checked.returncode == 0, "the generated client does not type-check:\n" + checked.stdout + checked.stderr
