"""The project's own function_app.py, run with this directory's host.json (fast test settings).

`AzureWebJobsScriptRoot` tells `df.DFApp` where host.json lives, so the engine reads this
directory's `durableTask` settings (task hub from `%WORKFLOWS_TEST_HUB%`, fast timer sweep).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

os.environ["AzureWebJobsScriptRoot"] = str(HERE)  # noqa: SIM112 - Azure's own name
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_spec = importlib.util.spec_from_file_location("project_function_app", ROOT / "function_app.py")
assert _spec is not None and _spec.loader is not None
_project = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_project)

app = _project.app
