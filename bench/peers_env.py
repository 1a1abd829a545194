"""The bench-only virtual environment of the peers (bench/.venv-peers), never the app's .venv.

Installs bench/requirements-peers.txt with pip, all at once, or package by package when that
fails, so one package that does not install leaves the others usable. A stamp file newer
than the requirements skips the install on later runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-peers"
REQUIREMENTS = HERE / "requirements-peers.txt"
STAMP = VENV / ".installed.stamp"
PYTHON = VENV / "bin" / "python"
INSTALL_TIMEOUT = 600


def requirements() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def _pip(*args: str) -> tuple[bool, str]:
    command = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    try:
        done = subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=INSTALL_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return False, f"pip timed out after {INSTALL_TIMEOUT}s"
    errors = [
        line
        for line in done.stderr.splitlines()
        if line.strip() and "is ignored: it is neither a file nor a directory" not in line
    ]
    return done.returncode == 0, (errors[-1] if errors else f"pip exit {done.returncode}")


def ensure() -> dict[str, str]:
    """Create and fill the venv; the packages that failed to install, with the reason."""
    if STAMP.exists() and STAMP.stat().st_mtime > REQUIREMENTS.stat().st_mtime:
        return {}
    if not PYTHON.exists():
        base = shutil.which("python3.11") or sys.executable
        made = subprocess.run(
            [base, "-m", "venv", str(VENV)], capture_output=True, text=True, timeout=120
        )
        if made.returncode != 0:
            reason = f"venv creation failed: {made.stderr.strip()[-200:]}"
            return {package: reason for package in requirements()}
    print(f"bench: installing the peers into {VENV.relative_to(HERE.parent)} ...", flush=True)
    ok, _ = _pip("-r", str(REQUIREMENTS))
    failed: dict[str, str] = {}
    if not ok:
        for package in requirements():
            ok_one, reason = _pip(package)
            if not ok_one:
                failed[package] = reason
    if not failed:
        STAMP.touch()
    return failed
