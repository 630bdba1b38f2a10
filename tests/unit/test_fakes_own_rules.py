"""The fakes state the platforms' rules themselves: a fake that took a limit from the code it checks
would pass any limit that code chose."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKES = ROOT / "tests" / "fakes"
# What a Profile or Settings tells about pace, length and units: only the code under test reads these.
LIMIT_ATTRIBUTES = frozenset(
    {"max_message_units", "caption_max_units", "length_unit", "edit_interval_seconds", "typing_interval_seconds"}
)
# FakeSurface stands for our own Surface port, so it speaks core's types and errors; none of them is a limit.
LIVE_SURFACE_MAY_IMPORT = {
    "core.errors": {"FormattingRejectedError", "ParleyError", "SurfaceError", "SurfaceRateLimitError"},
    "core.events": {"Completed", "Event", "Image", "ReasoningDelta", "TextDelta"},
    "core.live.markdown": {"visible_text"},
    "core.live.surface": {"Handle", "Profile", "Rendered"},
}


def _imports(path: Path) -> list[tuple[str, set[str]]]:
    found: list[tuple[str, set[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, set()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, {alias.name for alias in node.names}))
    return found


def _is_ours(module: str) -> bool:
    return module.split(".")[0] in ("core", "bots")


def test_platform_fakes_import_nothing_from_core_or_bots() -> None:
    servers = [*(FAKES / "telegram").rglob("*.py"), *(FAKES / "discord").rglob("*.py"), FAKES / "upstream.py"]
    bad = {
        str(path.relative_to(ROOT)): sorted(module for module, _ in _imports(path) if _is_ours(module))
        for path in servers
    }
    assert {path: modules for path, modules in bad.items() if modules} == {}


def test_the_fake_surface_takes_no_limit_from_the_profile_it_checks() -> None:
    path = FAKES / "live_surface.py"
    imported = {(module, name) for module, names in _imports(path) if _is_ours(module) for name in names or {"*"}}
    allowed = {(module, name) for module, names in LIVE_SURFACE_MAY_IMPORT.items() for name in names}
    assert imported - allowed == set()
    read = {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in LIMIT_ATTRIBUTES
    }
    assert read == set()
