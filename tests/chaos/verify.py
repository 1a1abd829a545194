"""Checks of the design's rules on finished instances: final status and output, no duplicated
history event, every result applied once, every activity run (at least once), and every
operation on the shared `counter` entities applied exactly once (their final values).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEDULING = ("TaskScheduled", "TimerCreated", "SubOrchestrationInstanceCreated", "EventSent")
# A call's answer comes back as an event named after its request (orchestration.core.entities).
ENTITY_OPERATION = "@op"
RESPONSE_PREFIX = "@response:"
RESULTS = {
    "TaskCompleted": ("TaskScheduled", "TaskScheduledId"),
    "TaskFailed": ("TaskScheduled", "TaskScheduledId"),
    "TimerFired": ("TimerCreated", "TimerId"),
    "SubOrchestrationInstanceCompleted": ("SubOrchestrationInstanceCreated", "TaskScheduledId"),
    "SubOrchestrationInstanceFailed": ("SubOrchestrationInstanceCreated", "TaskScheduledId"),
}


def history_problems(
    history: list[dict[str, Any]],
    raised: Mapping[str, int] | None = None,
    uncertain: Mapping[str, int] | None = None,
) -> list[str]:
    """Everything wrong with one instance's history; empty when it keeps rules 1 and 3.

    `raised` counts the external events sent to the instance, by name: each must appear
    exactly that many times, or up to `uncertain` more where a send's outcome was unknown
    (the storage call failed after it may have been applied) and the sender sent again.
    """
    problems: list[str] = []
    kinds = Counter(e["EventType"] for e in history)
    if kinds["ExecutionStarted"] != 1:
        problems.append(f"{kinds['ExecutionStarted']} ExecutionStarted events")
    if kinds["ExecutionCompleted"] > 1:
        problems.append(f"{kinds['ExecutionCompleted']} ExecutionCompleted events")
    scheduled: dict[str, Counter[int]] = {k: Counter() for k in SCHEDULING}
    for event in history:
        if event["EventType"] in scheduled:
            scheduled[event["EventType"]][event["EventId"]] += 1
    for kind, ids in scheduled.items():
        for event_id, count in ids.items():
            if count > 1:
                problems.append(f"{kind} with EventId {event_id} appears {count} times")
    answered: Counter[tuple[str, int]] = Counter()
    for event in history:
        rule = RESULTS.get(event["EventType"])
        if rule is None:
            continue
        origin, key = rule
        target = event.get(key)
        if target not in scheduled[origin]:
            problems.append(f"{event['EventType']} for {key}={target}, never scheduled")
        answered[(origin, target)] += 1
    for (origin, target), count in answered.items():
        if count > 1:
            problems.append(f"{count} results applied for {origin} {target}")
    events = Counter(e.get("Name") for e in history if e["EventType"] == "EventRaised")
    sent = [e for e in history if e["EventType"] == "EventSent"]
    calls = {request_id_of(e) for e in sent}
    with_inputs = any("Input" in e for e in sent)  # else read without payloads
    for name, count in events.items():
        if not isinstance(name, str) or not name.startswith(RESPONSE_PREFIX):
            continue
        if count > 1:
            problems.append(f"entity answer {name} applied {count} times")
        if with_inputs and name[len(RESPONSE_PREFIX) :] not in calls:
            problems.append(f"entity answer {name} for a request never sent")
    for name, count in (raised or {}).items():
        extra = (uncertain or {}).get(name, 0)
        if not count <= events[name] <= count + extra:
            problems.append(f"event {name!r} raised {count} time(s), in history {events[name]}")
    return problems


def request_id_of(event: Mapping[str, Any]) -> str | None:
    """The id of the entity operation request an EventSent carries (None: another event)."""
    if event.get("Name") != ENTITY_OPERATION:
        return None
    request = event.get("Input")
    if isinstance(request, str):  # history read without its payloads decoded
        try:
            request = json.loads(request)
        except ValueError:
            return None
    return str(request["id"]) if isinstance(request, dict) and "id" in request else None


def read_ledger(folder: Path) -> Counter[tuple[str, str]]:
    """Executions per (activity name, key) from every process's ledger file."""
    runs: Counter[tuple[str, str]] = Counter()
    for path in folder.glob("ledger-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split(" ")
            if len(parts) == 3:
                runs[(parts[0], parts[1])] += 1
    return runs


@dataclass
class Verdict:
    """What the checks found over all instances."""

    instances: int = 0
    completed_as_expected: int = 0
    wrong_status: list[str] = field(default_factory=list)
    wrong_output: list[str] = field(default_factory=list)
    duplicated_history: list[str] = field(default_factory=list)
    activities_never_run: list[str] = field(default_factory=list)
    history_events: int = 0
    activity_keys: int = 0
    activity_executions: int = 0
    activity_reruns: int = 0
    # Shared counter entities: key -> {"expected": n, "actual": n or None (no such entity)}.
    counters: dict[str, dict[str, int | None]] = field(default_factory=dict)
    wrong_counters: list[str] = field(default_factory=list)
    entity_operations: int = 0
    # Requests the senders' histories hold, looked up in the entities' batch rows.
    entity_requests_checked: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.wrong_status
            or self.wrong_output
            or self.duplicated_history
            or self.activities_never_run
            or self.wrong_counters
        )

    def summary(self) -> dict[str, Any]:
        return {
            "instances_checked": self.instances,
            "completed_as_expected": self.completed_as_expected,
            "wrong_status": len(self.wrong_status),
            "wrong_output": len(self.wrong_output),
            "duplicated_history_events": len(self.duplicated_history),
            "activities_never_run": len(self.activities_never_run),
            "history_events": self.history_events,
            "activity_keys": self.activity_keys,
            "activity_executions": self.activity_executions,
            "activity_reruns": self.activity_reruns,
            "entity_operations": self.entity_operations,
            "counters": self.counters,
            "entity_requests_checked": self.entity_requests_checked,
            "wrong_counters": len(self.wrong_counters),
            "problems": (
                self.wrong_counters
                + self.wrong_status
                + self.wrong_output
                + self.duplicated_history
                + self.activities_never_run
            )[:50],
        }


def check_instance(
    verdict: Verdict,
    instance_id: str,
    status: Any,
    expected_status: str,
    expected_output: Any,
    raised: Mapping[str, int] | None = None,
    uncertain: Mapping[str, int] | None = None,
) -> None:
    """Record one instance (a DurableOrchestrationStatus with history, or None)."""
    verdict.instances += 1
    if status is None:
        verdict.wrong_status.append(f"{instance_id}: missing")
        return
    actual = status.runtime_status.value
    good = True
    if actual != expected_status:
        verdict.wrong_status.append(f"{instance_id}: {actual} (expected {expected_status})")
        good = False
        if actual == "Failed":
            verdict.wrong_status[-1] += f": {str(status.output)[:300]}"
    elif status.output != expected_output:
        verdict.wrong_output.append(
            f"{instance_id}: output {status.output!r} (expected {expected_output!r})"
        )
        good = False
    history = status.history or []
    verdict.history_events += len(history)
    for problem in history_problems(history, raised, uncertain):
        verdict.duplicated_history.append(f"{instance_id}: {problem}")
        good = False
    if good:
        verdict.completed_as_expected += 1


def check_ledger(
    verdict: Verdict, runs: Counter[tuple[str, str]], expected_keys: Iterable[str]
) -> None:
    by_key: Counter[str] = Counter()
    for (_, key), count in runs.items():
        by_key[key] += count
    for key in expected_keys:
        verdict.activity_keys += 1
        if by_key[key] == 0:
            verdict.activities_never_run.append(f"activity {key}: never ran")
    verdict.activity_executions = sum(runs.values())
    # `flaky` fails on purpose before it succeeds: its runs are retries, not re-runs.
    verdict.activity_reruns = sum(
        max(0, count - 1) for (name, _), count in runs.items() if name != "flaky"
    )


def counter_exact(expected: int, actual: int | None) -> bool:
    """A counter holds exactly what was added to it (None, no entity: nothing was)."""
    return actual == expected or (actual is None and expected == 0)


def check_counters(
    verdict: Verdict,
    expected: Mapping[str, int],
    actual: Mapping[str, int | None],
    operations: int = 0,
    not_once: Mapping[str, list[str]] | None = None,
    requests_checked: int = 0,
) -> None:
    """Each shared counter must hold exactly the sum of the adds sent to it (None: the
    entity does not exist), and each request sent to it must be in exactly one of its
    committed batches: `not_once` names, per counter, the requests that were not (lost,
    doubled, or applied but never sent)."""
    verdict.entity_operations = operations
    verdict.entity_requests_checked = requests_checked
    for key in sorted(set(expected) | set(actual)):
        want, got = expected.get(key, 0), actual.get(key)
        verdict.counters[key] = {"expected": want, "actual": got}
        if not counter_exact(want, got):
            if got is None:
                what = f"no such entity: all {want} add(s) lost"
            elif got < want:
                what = f"{want - got} add(s) lost"
            else:
                what = f"{got - want} add(s) too many (doubled)"
            verdict.wrong_counters.append(f"counter {key}: expected {want}, actual {got} ({what})")
        for line in (not_once or {}).get(key, [])[:20]:
            verdict.wrong_counters.append(f"counter {key}: {line}")
