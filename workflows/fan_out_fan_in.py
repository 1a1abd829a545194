"""Fan-out/fan-in: count the words of N documents in parallel and sum them."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import orchestration as df

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def word_count(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Generate `{"documents": N}` documents, count each one's words in parallel, sum."""
    count = int((context.get_input() or {}).get("documents", 5))
    documents = yield context.call_activity("generate_documents", count)
    counts = yield context.task_all([context.call_activity("count_words", d) for d in documents])
    return {"documents": len(documents), "per_document": counts, "total_words": sum(counts)}
