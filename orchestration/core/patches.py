"""In-code patching: `context.is_patched(name)`, decided once per execution, kept in history.

A patch lets an orchestrator change its steps while instances started with the old code are
still running, without a version number:

    if context.is_patched("tax-v2"):
        yield context.call_activity("tax_v2", order)
    else:
        yield context.call_activity("tax", order)

The rules, which make the answer the same at every replay:

- The first time an execution asks about a patch, the answer is decided and kept for the
  rest of that execution (a continue-as-new starts a new execution, which decides again).
- Asked while the code runs for the first time (a live step), the answer is True, and the
  step records a `PatchApplied(name)` event in history, before the step's scheduling events.
- Asked while history is replayed, the answer is True exactly when history holds that
  patch's marker in the same episode (the step between two OrchestratorStarted events) or an
  earlier one; so history recorded before the patch existed replays down the old path.
- The marker takes no action sequence number and replay never compares it with the code's
  actions: adding an `is_patched` call leaves every older history replayable, and removing
  one (with its old branch) is safe once no running instance took the old path (which
  `python -m orchestration replay-check` verifies).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from orchestration.core.history import HistoryEvent, OrchestratorStarted, PatchApplied


class PatchBook:
    """One execution's patch decisions and the markers its history holds."""

    def __init__(self) -> None:
        self._taken: dict[str, bool] = {}
        self._in_history: dict[str, int] = {}  # patch name -> episode of its marker
        self._to_record: list[str] = []
        # Set when every step this runtime takes is itself replayed from history (the
        # Replayer's episode-by-episode check): history then decides every answer.
        self.history_decides = False

    def expect(self, events: Iterable[HistoryEvent], episode: int) -> None:
        """Note the markers of history about to be applied, from episode `episode` on."""
        for event in events:
            if isinstance(event, OrchestratorStarted):
                episode += 1
            elif isinstance(event, PatchApplied):
                self._in_history.setdefault(event.name, episode)

    def applied(self, name: str, episode: int) -> None:
        """A marker was applied from history."""
        self._in_history.setdefault(name, episode)

    def decide(self, name: str, episode: int, replaying: bool) -> bool:
        """Whether the execution takes patch `name`, asked in episode `episode`."""
        taken = self._taken.get(name)
        if taken is not None:
            return taken
        if replaying or self.history_decides:
            marked_in = self._in_history.get(name)
            taken = marked_in is not None and marked_in <= episode
        else:
            taken = True
        self._taken[name] = taken
        if taken and name not in self._in_history:
            self._to_record.append(name)
        return taken

    def markers(self, now: datetime) -> list[PatchApplied]:
        """The markers of patches taken since the last step, for the step to record."""
        names, self._to_record = self._to_record, []
        for name in names:
            self._in_history.setdefault(name, -1)
        return [PatchApplied(-1, now, name) for name in names]
