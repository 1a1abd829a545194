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
_PREFIX = "Non-deterministic orchestrator "
_HEAD = re.compile(r"(?P<name>.+?)(?: at step (?P<step>-?\d+))? \(episode (?P<episode>\d+)")
_MAX_PARSED = 8_192  # longer messages are not ours (descriptions are short)


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
    """{orchestrator, step, episode, history, code} of a message `non_determinism_message`
    wrote; None for any other. Linear in the message: it reads stored failures, which may be
    anything a user's exception said."""
    if len(message) > _MAX_PARSED or not message.startswith(_PREFIX):
        return None
    head, found, said = message[len(_PREFIX) :].partition("): ")
    parts = _HEAD.fullmatch(head) if found and len(head) < 512 else None
    if parts is None or not said.endswith(f". {_HINT}"):
        return None
    said = said.removesuffix(f". {_HINT}")
    history: str | None = None
    code: str | None = None
    for situation in (CODE_RETURNED, CODE_SCHEDULED_NOTHING):
        tail = f" at this step, but {situation}"
        if said.startswith("history has ") and said.endswith(tail):
            history, code = said[len("history has ") : -len(tail)], situation
    if code is None and said.startswith("history says "):
        history, found, code = said[len("history says ") :].partition(", but ")
        code = code if found else None
    elif code is None and said.startswith("history has "):
        history, found, code = said[len("history has ") :].partition(", but the code now asks for ")
        code = code if found else None
    if not history or not code:
        return None
    name = parts.group("name")
    step = parts.group("step")
    return {
        "orchestrator": name[1:-1] if name[:1] in "'\"" and len(name) > 1 else name,
        "step": int(step) if step is not None else None,
        "episode": int(parts.group("episode")),
        "history": history,
        "code": code,
    }


class OrchestratorNotRegisteredError(OrchestrationError):
    """History names an orchestrator that the app does not register."""


class OrchestratorUsageError(OrchestrationError):
    """The orchestrator function broke a rule of the programming model (e.g. yielded a non-task)."""
