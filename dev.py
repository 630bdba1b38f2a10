#!/usr/bin/env python3
"""Set up and run Parley from a fresh clone with nothing but Python 3.11+.

    python3 dev.py bot [telegram|discord]   create .venv, install Parley, run `parley run ...`
    python3 dev.py chat                     same, then `parley chat`
    python3 dev.py test [pytest args]       create .venv, install Parley with its dev tools, run the tests
    python3 dev.py lint                     ruff check, ruff format --check and mypy

The virtual environment is (re)installed only when pyproject.toml changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py itself may be started by an older python3
        sys.exit(f"dev.py: Parley needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    if not (BIN / "python").exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".parley-installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print(f"dev.py: installing Parley{f' [{extras}]' if extras else ''} into .venv", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run([*pip, "install", "--editable", target], check=True, cwd=ROOT)
    stamp.write_text(wanted)


def run(args: list[str]) -> int:
    return subprocess.run(args, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command in ("bot", "chat"):
        ensure_venv("")
        return run([str(BIN / "parley"), "run" if command == "bot" else "chat", *rest])
    if command == "test":
        ensure_venv("dev")
        return run([str(BIN / "python"), "-m", "pytest", *rest])
    if command == "lint":
        ensure_venv("dev")
        return (
            run([str(BIN / "ruff"), "check", "."])
            or run([str(BIN / "ruff"), "format", "--check", "."])
            or run([str(BIN / "mypy")])
        )
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
