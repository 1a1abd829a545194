#!/usr/bin/env bash
# Idempotent: create bench/peers/.venv (python3.11) and install the pinned peer engines.
# Skips the install when the stamp file is newer than requirements.txt.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
req="$here/requirements.txt"
stamp="$venv/.installed.stamp"
python="${PYTHON:-python3.11}"

if [[ -f "$stamp" && "$stamp" -nt "$req" && -x "$venv/bin/python" ]]; then
    echo "bench/peers: .venv up to date (stamp newer than requirements.txt)" >&2
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
# This machine's pip config lists local indexes that may not exist; drop those warnings.
quiet_pip() {
    "$venv/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
quiet_pip install --quiet --disable-pip-version-check -r "$req"
touch "$stamp"
echo "bench/peers: installed $(grep -v '^#' "$req" | tr '\n' ' ')" >&2
