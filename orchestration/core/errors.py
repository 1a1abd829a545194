"""Exceptions the core raises, each with a message a user can act on."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestration.core.history import FailureDetails


class OrchestrationError(Exception):
    """Base of the engine's own errors."""


class TaskFailedError(OrchestrationError):
    """Raised inside an orchestrator at the `yield` of a task that failed.

    `failure` holds the failed activity's (or sub-orchestration's) exception type, message and
    traceback, so `except TaskFailedError as e: e.failure.error_type` can branch on it.
    """

    def __init__(self, message: str, failure: FailureDetails) -> None:
        super().__init__(message)
        self.failure = failure

    @property
    def error_type(self) -> str:
        return self.failure.error_type


class NonDeterminismError(OrchestrationError):
    """Replay asked for an action that the recorded history does not hold at that point.

    Its message names the step, what history holds there and what the code asked for
    (`non_determinism_message`); `non_determinism_parts` reads them back from a stored
    failure, so the dashboard can show the two side by side."""


CODE_RETURNED = "the code has already returned"
CODE_SCHEDULED_NOTHING = "the code did not schedule anything there"
CODE_STILL_WAITING = "the code is still waiting"
_HINT = "Did the orchestrator's code change while this instance was running?"
_PARTS = re.compile(
    r"Non-deterministic orchestrator (?P<name>'.*?'|\".*?\")"
    r"(?: at step (?P<step>-?\d+))? \(episode (?P<episode>\d+)\): "
    r"history (?:has (?P<history>.+?)(?: at this step)?|says (?P<ended>the orchestration "
    r"ended)), but (?:the code now asks for (?P<code>.+?)|(?P<plain>the code .+?))\.(?: |$)",
    re.DOTALL,
)


def non_determinism_message(
    name: str, episode: int, step: int | None, history: str, code: str
) -> str:
    """The message of a NonDeterminismError: at `step`, history holds `history` (an action's
    description, or "the orchestration ended"); `code` is the action the code asks for
    instead, or one of the CODE_* situations."""
    where = f" at step {step}" if step is not None else ""
    if code in (CODE_RETURNED, CODE_SCHEDULED_NOTHING):
        said = f"history has {history} at this step, but {code}"
    elif code == CODE_STILL_WAITING:
        said = f"history says {history}, but {code}"
    else:
        said = f"history has {history}, but the code now asks for {code}"
    return f"Non-deterministic orchestrator {name!r}{where} (episode {episode}): {said}. {_HINT}"


def non_determinism_parts(message: str) -> dict[str, Any] | None:
    """{step, episode, history, code} of a non-determinism message; None for others."""
    found = _PARTS.search(message)
    if found is None:
        return None
    step = found.group("step")
    return {
        "orchestrator": found.group("name")[1:-1],
        "step": int(step) if step is not None else None,
        "episode": int(found.group("episode")),
        "history": found.group("history") or found.group("ended"),
        "code": found.group("code") or found.group("plain"),
    }


class OrchestratorNotRegisteredError(OrchestrationError):
    """History names an orchestrator that the app does not register."""


class OrchestratorUsageError(OrchestrationError):
    """The orchestrator function broke a rule of the programming model (e.g. yielded a non-task)."""
