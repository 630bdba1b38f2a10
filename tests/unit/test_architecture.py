"""Dependencies point one way: bots -> core. Adapters see only `core`'s public surface."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(folder: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / folder).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_adapters_import_only_the_core_surface() -> None:
    forbidden = ("sqlalchemy", "httpx", "core.", "alembic", "asyncpg", "aiosqlite")
    bad = {path: sorted(n for n in names if n.startswith(forbidden)) for path, names in imports("bots").items()}
    assert {path: names for path, names in bad.items() if names} == {}


def test_core_never_imports_adapters_or_platform_libraries() -> None:
    forbidden = ("telegram", "discord", "bots")
    bad = {path: sorted(n for n in names if n.split(".")[0] in forbidden) for path, names in imports("core").items()}
    assert {path: names for path, names in bad.items() if names} == {}


def test_live_engine_depends_only_on_events_and_errors() -> None:
    allowed_core = {"core.events", "core.errors"}
    bad = {
        path: sorted(
            n for n in names if n.startswith("core") and n not in allowed_core and not n.startswith("core.live")
        )
        for path, names in imports("core/live").items()
    }
    assert {path: names for path, names in bad.items() if names} == {}
