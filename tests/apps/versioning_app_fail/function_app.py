"""Release 1 of the versioning test app (its code is in ../versioning_app/versioned.py)."""

import sys
from pathlib import Path

import azure.functions as func

import orchestration as df

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "versioning_app"))
from versioned import register

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
register(app, release=1)
