"""The log audit finds a key in any log of the run (and the redaction keeps them out)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from orchestration.host.logs import add_secrets, redact
from tests.log_audit import findings, known_secrets


def test_the_audit_finds_a_leaked_key_and_passes_clean_logs() -> None:
    # Outside pytest's temp dir: the audit of this very run must not see these planted leaks.
    with tempfile.TemporaryDirectory() as folder:
        check_planted_leaks(Path(folder))


def check_planted_leaks(tmp_path: Path) -> None:
    (tmp_path / "host-a").mkdir()
    (tmp_path / "host-a" / ".host-keys.json").write_text(
        '{"masterKey": "generated-master-1234", "functionKeys": {"default": "generated-fn-5678"}}'
    )
    clean = tmp_path / "host-a" / "host.log"
    clean.write_text("Host started\nGET /api/x?code=[redacted]\n")
    secrets = known_secrets(tmp_path)
    assert findings(tmp_path, secrets) == []
    leaky = tmp_path / "host-b.log"
    leaky.write_text("ok\nError handling request /api/x?q=1&code=generated-fn-5678\n")
    (tmp_path / "other.log").write_text("key test-master-key in a message\n")
    (tmp_path / "third.log").write_text("GET /api/y?code=unknownkey123\n")
    found = findings(tmp_path, secrets)
    assert any("host-b.log:2" in f for f in found)
    assert any("other.log:1" in f for f in found)
    assert any("third.log:1" in f and "unredacted" in f for f in found)
    assert all("generated-fn-5678" not in f for f in found)  # the report masks them


def test_redaction_removes_known_and_key_shaped_values() -> None:
    add_secrets(["a-key-the-host-holds"])
    line = redact(
        "a-key-the-host-holds / GET /api/x?code=abcdefgh&y=1 / x-functions-key: zzzzzzzz / "
        "AccountKey=Eby8+/==;TableEndpoint=t / SharedKeyLite acct:c2lnbmF0dXJl / zipcode=12345"
    )
    assert "a-key-the-host-holds" not in line and "abcdefgh" not in line
    assert "zzzzzzzz" not in line and "Eby8" not in line and "c2lnbmF0dXJl" not in line
    assert "zipcode=12345" in line and "TableEndpoint=t" in line
