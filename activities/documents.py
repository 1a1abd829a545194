"""Fan-out/fan-in: generate documents and count their words."""

from __future__ import annotations

import orchestration as df

bp = df.Blueprint()

VOCABULARY = (
    "durable", "functions", "replay", "history", "storage", "queue", "table", "timer",
    "activity", "orchestrator", "event", "checkpoint",
)  # fmt: skip
BASE_WORDS = 10


def document_text(index: int) -> str:
    """The text of document `index`: BASE_WORDS + index words from VOCABULARY."""
    count = BASE_WORDS + index
    return " ".join(VOCABULARY[(index + k) % len(VOCABULARY)] for k in range(count))


@bp.activity_trigger(input_name="count")
def generate_documents(count: int) -> list[str]:
    """Generate `count` documents (deterministic text)."""
    return [document_text(index) for index in range(count)]


@bp.activity_trigger(input_name="text")
def count_words(text: str) -> int:
    """The number of words in `text`."""
    return len(text.split())
