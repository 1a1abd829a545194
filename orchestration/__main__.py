"""The command line: `python -m orchestration ...`."""

from __future__ import annotations

from orchestration.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
