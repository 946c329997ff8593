"""The shape the next domains build on: contexts meet only through public modules and events,
and no module grows past what one reader can hold."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src" / "spotless"
DOMAIN = SRC / "domain"
# A context's face to the others: its public module (reads and commands) and its events.
PUBLIC_MODULES = {"public", "events"}
# The assembly point (controllers, models, jobs of every context) is not a context.
ASSEMBLY = {DOMAIN / "registry.py"}
MAX_LINES = 600


def _context_of(path: Path) -> str | None:
    relative = path.relative_to(DOMAIN)
    return relative.parts[0] if len(relative.parts) > 1 else None


def _cross_context_imports() -> list[str]:
    found: list[str] = []
    for path in sorted(DOMAIN.rglob("*.py")):
        if path in ASSEMBLY:
            continue
        own = _context_of(path)
        for node in ast.walk(ast.parse(path.read_text())):
            modules: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
                if node.module.count(".") == 2:  # `from spotless.domain.x import services`
                    modules = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                parts = module.split(".")
                if parts[:2] != ["spotless", "domain"] or len(parts) < 4 or parts[2] == own:
                    continue
                if parts[3] not in PUBLIC_MODULES:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} imports {module}")
    return found


def test_contexts_use_each_other_only_through_public_modules_and_events() -> None:
    offending = _cross_context_imports()
    assert not offending, "import another context's public.py or events.py instead:\n" + "\n".join(offending)


def test_no_module_imports_another_modules_private_names() -> None:
    crossing: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spotless."):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    crossing.append(f"{path.relative_to(SRC)}:{node.lineno} imports {node.module}.{private}")
    assert not crossing, "private names used outside their module:\n" + "\n".join(crossing)


def test_no_module_is_longer_than_one_reader_can_hold() -> None:
    sizes = {p: len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    long = sorted(f"{p.relative_to(SRC)}: {n} lines" for p, n in sizes.items() if n > MAX_LINES)
    assert not long, f"split by what changes together (limit {MAX_LINES}):\n" + "\n".join(long)
